# syntax=docker/dockerfile:1
# Multi-stage build of soc2-operator on a minimal non-root glibc base (the
# same C library and allocator settings the scale benchmark measures: see
# BENCHMARKS.md; musl's allocator is slow under concurrent allocation).
FROM docker.io/library/rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY build.rs ./
COPY src ./src
COPY controls ./controls
COPY benches ./benches
# The workspace's other member (the tests' support crate) must be present for
# Cargo to load the workspace; it is not built.
COPY crates ./crates
RUN cargo build --release --locked --bin soc2-operator \
 && cp target/release/soc2-operator /soc2-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /soc2-operator /usr/local/bin/soc2-operator
# Two malloc arenas instead of eight per core: less fragmentation of the watch
# caches' many small objects (the chart sets it too).
ENV MALLOC_ARENA_MAX=2
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/soc2-operator"]
CMD ["run"]

# syntax=docker/dockerfile:1
# Multi-stage build of a static soc2-operator binary on a minimal non-root base.
FROM docker.io/library/rust:1-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY build.rs ./
COPY src ./src
COPY controls ./controls
COPY benches ./benches
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin soc2-operator \
 && cp target/x86_64-unknown-linux-musl/release/soc2-operator /soc2-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /soc2-operator /usr/local/bin/soc2-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/soc2-operator"]
CMD ["run"]

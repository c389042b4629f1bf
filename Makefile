# soc2-operator — developer entry points. `make test` is the test command (CI runs it).
CP := hack/control-plane
CARGO ?= cargo

.PHONY: all prerequisites control-plane cluster-up cluster-down test lint fmt crds bench bench-engine bench-cache bench-scale demo demo-down chart-files docs
# Prerequisites are made in the order written (prerequisites before anything
# of `test`), also under `make -j`; cargo and go build parallelise themselves.
.NOTPARALLEL:

all: test

## prerequisites: check the tools the tests need; installs missing ones with apt-get (not with SOC2_NO_INSTALL=1)
prerequisites:
	@hack/prerequisites.sh

## control-plane: build etcd, kube-apiserver, kube-controller-manager, kubectl and helm from source (cached)
control-plane:
	@$(CP)/build.sh >/dev/null

## cluster-up / cluster-down: a local control plane for manual use (prints `export KUBECONFIG=...`)
cluster-up: control-plane
	@$(CP)/cluster.sh up
cluster-down:
	@$(CP)/cluster.sh down

## test: check or install the prerequisites, build what is missing, then every test against a real control plane
test: prerequisites control-plane
	$(CARGO) test --all-targets

## lint: formatting, clippy and rustdoc, as CI runs them
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace --quiet

fmt:
	$(CARGO) fmt --all

## crds: regenerate the committed CRD YAML from the Rust types
crds:
	$(CARGO) run --quiet -- crd > crds/controls.soc2-operator.dev.yaml

## bench: the engine benchmark, bytes per cached object, then the scale benchmark (figures go in BENCHMARKS.md, never into assertions)
bench: bench-engine bench-cache bench-scale

## bench-cache: bytes per cached object, per kind, from objects a real API server served (bench/fixtures/served.json)
bench-cache:
	$(CARGO) bench --bench cache_size

## bench-engine: criterion, the pure engine over 10,000 synthetic namespaces
bench-engine:
	$(CARGO) bench --bench engine

## bench-scale: the operator on a fresh local control plane per namespace count; writes bench/results.json
## (NAMESPACES=1000,10000 TRIALS=50 OUTPUT=bench/results.json by default: about 25 minutes on 2 cores)
NAMESPACES ?= 1000,10000
TRIALS ?= 50
OUTPUT ?= bench/results.json
bench-scale: control-plane
	$(CARGO) bench --bench scale -- --namespaces $(NAMESPACES) --trials $(TRIALS) --output $(OUTPUT)

## demo: the main job on a local cluster with real workloads (see README)
demo:
	@hack/demo/up.sh

## demo-down: stop the demo
demo-down:
	@hack/demo/down.sh

## chart-files: copy the CRDs, the dashboard and the starter Controls into the chart (a test checks they match)
chart-files:
	cp crds/*.yaml charts/soc2-operator/crds/
	cp dashboards/soc2-operator.json charts/soc2-operator/files/dashboard.json
	rm -f charts/soc2-operator/files/controls/*.yaml && cp controls/*.yaml charts/soc2-operator/files/controls/

## docs: regenerate docs/controls.md from the catalog (a test fails when it is out of date)
docs:
	@mkdir -p docs
	$(CARGO) run --quiet -- docs > docs/controls.md

# soc2-operator — developer entry points. `make test` is the test command (CI runs it).
CP := hack/control-plane
CARGO ?= cargo

.PHONY: all control-plane cluster-up cluster-down test lint fmt crds bench demo demo-down chart-files docs

all: test

## control-plane: build etcd, kube-apiserver, kube-controller-manager, kubectl and helm from source (cached)
control-plane:
	@$(CP)/build.sh >/dev/null

## cluster-up / cluster-down: a local control plane for manual use (prints `export KUBECONFIG=...`)
cluster-up: control-plane
	@$(CP)/cluster.sh up
cluster-down:
	@$(CP)/cluster.sh down

## test: build what is missing, then every test against a real control plane
test: control-plane
	$(CARGO) test --all-targets

## lint: formatting and clippy, as CI runs them
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## crds: regenerate the committed CRD YAML from the Rust types
crds:
	$(CARGO) run --quiet -- crd > crds/controls.soc2-operator.dev.yaml

## bench: criterion benchmarks (figures go in the closing notes, never into assertions)
bench:
	$(CARGO) bench --bench engine

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

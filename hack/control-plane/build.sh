#!/usr/bin/env bash
# Builds the local test control plane from source into a versioned cache:
#   etcd, kube-apiserver, kube-controller-manager, kubectl, helm
# Only missing binaries are built. Prints the bin directory on stdout.
# A binary whose build recipe changed since it was built counts as missing:
# helm's ldflags are recorded in .helm.ldflags next to it.
#
#   SOC2_CP_BIN_DIR   override the cache directory
#                     (default ${XDG_CACHE_HOME:-$HOME/.cache}/soc2-operator/bin/<versions>)
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

# Helm's ldflags, as Helm's own Makefile (v3.22.0) sets them for a release:
# the version, and the default Kubernetes version (.Capabilities.KubeVersion of
# `helm template` without --kube-version, and the version `helm lint` checks
# deprecations against) derived from the k8s.io/client-go version Helm builds
# with: client-go v0.X.Y -> Kubernetes v1.X (major 0+1, minor X). Without them
# Helm built from source defaults to v1.20.0. Read from the wrapper's go.mod
# (which lists every module of the build), so no Go is needed to compare.
client_go=$(sed -n 's/^[[:space:]]*k8s\.io\/client-go \(v[0-9][^ ]*\).*/\1/p' "$CP_HERE/helm/go.mod")
[[ "$client_go" =~ ^v([0-9]+)\.([0-9]+)\. ]] || cp_die "cannot read the k8s.io/client-go version from $CP_HERE/helm/go.mod (found '$client_go')"
helm_k8s_major=$((BASH_REMATCH[1] + 1)) helm_k8s_minor=${BASH_REMATCH[2]}
helm_ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  helm_ldflags+=" -X $p.k8sVersionMajor=$helm_k8s_major -X $p.k8sVersionMinor=$helm_k8s_minor"
done
helm_stamp="$CP_BIN_DIR/.helm.ldflags"

find_missing() { # sets missing: binaries absent, or built with another recipe
  missing=()
  local b
  for b in "${CP_BINARIES[@]}"; do [ -x "$CP_BIN_DIR/$b" ] || missing+=("$b"); done
  if [ -x "$CP_BIN_DIR/helm" ] && [ "$(cat "$helm_stamp" 2>/dev/null)" != "$helm_ldflags" ]; then
    missing+=(helm)
  fi
}

find_missing
if [ ${#missing[@]} -eq 0 ]; then
  cp_log "all binaries present in $CP_BIN_DIR"
  echo "$CP_BIN_DIR"; exit 0
fi
# Go is needed only when something must be built.
command -v go >/dev/null 2>&1 || cp_die "Go is not installed or not on PATH; install Go >= 1.$GO_MIN_MINOR (https://go.dev/doc/install)"
gov=$(go env GOVERSION 2>/dev/null || true)
[[ "$gov" =~ ^go1\.([0-9]+) ]] || cp_die "cannot read the Go version (go env GOVERSION said '$gov')"
(( BASH_REMATCH[1] >= GO_MIN_MINOR )) || cp_die "Go $gov is too old; kubernetes $K8S_VERSION needs Go >= 1.$GO_MIN_MINOR"

mkdir -p "$CP_BIN_DIR"
# One build at a time per cache dir; a second caller waits, then finds the binaries.
exec 8>"$CP_BIN_DIR/.build.lock"
if ! flock -n 8; then
  cp_log "another build is running in $CP_BIN_DIR; waiting for it"
  flock 8
fi
find_missing
if [ ${#missing[@]} -eq 0 ]; then echo "$CP_BIN_DIR"; exit 0; fi
rm -rf "$CP_BIN_DIR"/.build.?????? # staging dirs of an interrupted build
stage=$(mktemp -d "$CP_BIN_DIR/.build.XXXXXX")
trap 'rm -rf "$stage"' EXIT

export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"
common=(-trimpath)

download() { # dir
  cp_log "downloading Go modules for $(basename "$1") (first run only; the module cache is reused)"
  if ! (cd "$1" && go mod download 2>"$stage/download.err"); then
    cat "$stage/download.err" >&2 || true
    cp_die "could not download Go modules for $1; is the Go module proxy ($(go env GOPROXY)) reachable?"
  fi
}

build() { # dir ldflags pkg...
  local dir=$1 ldflags=$2; shift 2
  local t0=$SECONDS
  cp_log "building $(printf '%s ' "${@##*/}")(this takes a while on a small machine)"
  (cd "$dir" && go build "${common[@]}" -ldflags "$ldflags" -o "$stage/" "$@") || cp_die "go build failed in $dir"
  cp_log "built $(printf '%s ' "${@##*/}")in $((SECONDS - t0))s"
}

want() { printf '%s\n' "${missing[@]}" | grep -qx "$1"; }

# Kubernetes: report the real version from /version and `kubectl version`.
k8s_pkgs=()
for b in kube-apiserver kube-controller-manager kubectl; do want "$b" && k8s_pkgs+=("k8s.io/kubernetes/cmd/$b"); done
if [ ${#k8s_pkgs[@]} -gt 0 ]; then
  download "$CP_HERE/kubernetes"
  major=${K8S_VERSION#v}; major=${major%%.*}
  minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  vflags=""
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    vflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    vflags+=" -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  build "$CP_HERE/kubernetes" "-s -w$vflags" "${k8s_pkgs[@]}"
fi
if want etcd; then
  download "$CP_HERE/etcd"
  t0=$SECONDS
  cp_log "building etcd"
  (cd "$CP_HERE/etcd" && go build "${common[@]}" -ldflags "-s -w" -o "$stage/etcd" go.etcd.io/etcd/server/v3) ||
    cp_die "go build failed in $CP_HERE/etcd"
  cp_log "built etcd in $((SECONDS - t0))s"
fi
if want helm; then
  download "$CP_HERE/helm"
  # The same derivation as Helm's Makefile (`go list -m k8s.io/client-go`), now that Go is here.
  listed=$(cd "$CP_HERE/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)
  [ "$listed" = "$client_go" ] || cp_die "k8s.io/client-go is $listed in the helm build but $client_go in its go.mod; run gen-modules.sh"
  build "$CP_HERE/helm" "$helm_ldflags" helm.sh/helm/v3/cmd/helm
fi
if want helm; then rm -f "$helm_stamp"; fi # it must never describe a helm it did not build
for b in "${missing[@]}"; do
  [ -x "$stage/$b" ] || cp_die "expected $b after the build, found: $(ls "$stage")"
  mv -f "$stage/$b" "$CP_BIN_DIR/$b"
done
# Only once helm is in place: an interrupted build leaves no stamp, so helm is rebuilt.
if want helm; then echo "$helm_ldflags" >"$helm_stamp"; fi
cp_log "binaries in $CP_BIN_DIR ($(du -sh "$CP_BIN_DIR" | cut -f1))"
echo "$CP_BIN_DIR"

# Shared helpers for hack/control-plane scripts. Sourced, not executed.
# shellcheck shell=bash
CP_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
. "$CP_HERE/versions.env"

CP_VERSIONS="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"
# Where built binaries live: a versioned cache outside the repo.
CP_BIN_DIR=${SOC2_CP_BIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/soc2-operator/bin/$CP_VERSIONS}
[[ "$CP_BIN_DIR" = /* ]] || CP_BIN_DIR="$PWD/$CP_BIN_DIR"
CP_BINARIES=(etcd kube-apiserver kube-controller-manager kubectl helm)

cp_die() { echo "$(basename "$0"): error: $*" >&2; exit 1; }
cp_log() { echo "$(basename "$0"): $*" >&2; }

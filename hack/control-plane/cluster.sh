#!/usr/bin/env bash
# A real local Kubernetes control plane on loopback: etcd, kube-apiserver and
# kube-controller-manager, built from source by build.sh.
#
#   cluster.sh up     [--state-dir DIR] [--watch-pid PID] [--encryption aescbc]
#   cluster.sh down   [--state-dir DIR]
#   cluster.sh status [--state-dir DIR]
#   cluster.sh env    [--state-dir DIR]      prints `export KUBECONFIG=...`
#
# up: starts etcd (temporary data dir, --unsafe-no-fsync), kube-apiserver on
#     127.0.0.1 (generated CA and serving certificate, service-account issuer and
#     signing key, --authorization-mode=RBAC, an admin client certificate in group
#     system:masters) and kube-controller-manager (garbage collection, namespace
#     deletion, service-account tokens) with the same keys; picks free ports; waits
#     for /readyz; writes DIR/kubeconfig and prints `export KUBECONFIG=...` on stdout.
#     Idempotent: when DIR already holds a healthy control plane it only prints the
#     export line. --watch-pid PID stops everything when process PID exits (tests).
#     --encryption aescbc starts the API server with --encryption-provider-config
#     (Secrets encrypted at rest with a generated AES-CBC key).
# down: stops only the processes recorded in DIR's pid files, then removes DIR.
#
# Environment: SOC2_CP_STATE_DIR (default ${TMPDIR:-/tmp}/soc2-operator-cp),
# SOC2_CP_APISERVER_PORT / SOC2_CP_ETCD_PORT (fixed ports instead of free ones),
# SOC2_CP_BIN_DIR (see build.sh).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

cmd=${1:-}; [ $# -gt 0 ] && shift
state=${SOC2_CP_STATE_DIR:-${TMPDIR:-/tmp}/soc2-operator-cp}
watch_pid=""
encryption=""
while [ $# -gt 0 ]; do
  case "$1" in
    --state-dir) state=${2:?--state-dir needs a directory}; shift 2 ;;
    --watch-pid) watch_pid=${2:?--watch-pid needs a pid}; shift 2 ;;
    --encryption) encryption=${2:?--encryption needs a provider (aescbc)}; shift 2 ;;
    *) cp_die "unknown argument '$1' (see the header of $0)" ;;
  esac
done
case "$encryption" in ""|aescbc) ;; *) cp_die "--encryption supports only 'aescbc', got '$encryption'" ;; esac
[[ "$state" = /* ]] || state="$PWD/$state"
COMPONENTS=(etcd kube-apiserver kube-controller-manager)

# --- helpers -----------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 30000))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  cp_die "no free port found on 127.0.0.1 after 200 tries"
}

# running PID: the process exists and is not a zombie waiting to be reaped.
running() { [ -d "/proc/$1" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]; }

# pid_alive NAME: the recorded pid runs and is still our binary (guards pid reuse).
pid_alive() {
  local f="$state/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  running "$pid" || return 1
  [ "$1" = watchdog ] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$1" || return 1
}

log_tail() { [ -f "$state/$1.log" ] && { echo "--- last lines of $state/$1.log:" >&2; tail -n 15 "$state/$1.log" >&2; } || true; }

stop_pid_file() { # NAME
  local f="$state/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if pid_alive "$1"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

admin_curl() { # PATH
  curl -sS --max-time 5 --cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" --key "$state/pki/admin.key" \
    "https://127.0.0.1:$(cat "$state/apiserver.port")$1"
}

print_env() { echo "export KUBECONFIG=$state/kubeconfig"; }

# status: 0 when every component runs and /readyz answers ok; otherwise says what is wrong.
check_status() {
  local c bad=0
  for c in "${COMPONENTS[@]}"; do
    if ! pid_alive "$c"; then
      echo "cluster.sh: $c is not running (pid file $state/$c.pid: $(cat "$state/$c.pid" 2>/dev/null || echo missing))" >&2
      bad=1
    fi
  done
  [ $bad -eq 0 ] || return 1
  local ready
  ready=$(admin_curl /readyz 2>&1) || { echo "cluster.sh: kube-apiserver /readyz does not answer: $ready" >&2; return 1; }
  [ "$ready" = ok ] || { echo "cluster.sh: kube-apiserver /readyz: $ready" >&2; return 1; }
}

# --- certificates --------------------------------------------------------------
gen_pki() {
  local d="$state/pki"
  mkdir -p "$d"
  command -v openssl >/dev/null || cp_die "openssl is not installed (apt-get install openssl)"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=soc2-operator-local-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    sign() { # name subject extfile-content
      openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      printf '%s\n' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    sign apiserver "/CN=kube-apiserver" "$(printf '%s\n' \
      "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
      "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")"
    client_ext=$(printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth")
    sign admin "/O=system:masters/CN=soc2-admin" "$client_ext"
    sign kube-controller-manager "/CN=system:kube-controller-manager" "$client_ext"
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  ) || cp_die "generating certificates with openssl failed"
}

write_kubeconfig() { # file user
  cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: soc2-local
  cluster:
    server: https://127.0.0.1:$(cat "$state/apiserver.port")
    certificate-authority: $state/pki/ca.crt
users:
- name: $2
  user:
    client-certificate: $state/pki/$2.crt
    client-key: $state/pki/$2.key
contexts:
- name: soc2-local
  context: {cluster: soc2-local, user: $2}
current-context: soc2-local
KC
}

start() { # name args...
  local name=$1; shift
  setsid "$CP_BIN_DIR/$name" "$@" >"$state/$name.log" 2>&1 </dev/null &
  echo $! >"$state/$name.pid"
}

# wait_for NAME SECONDS CHECK...: polls CHECK until it succeeds; fails fast if NAME died.
wait_for() {
  local name=$1 secs=$2 i; shift 2
  for i in $(seq 1 $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    if ! pid_alive "$name"; then
      log_tail "$name"
      cp_die "$name exited during start-up (see $state/$name.log)"
    fi
    sleep 0.2
  done
  log_tail "$name"
  cp_die "$name was not ready within ${secs}s (see $state/$name.log)"
}

up() {
  if [ -d "$state" ]; then
    if check_status 2>/dev/null; then
      cp_log "control plane in $state is already running"
      print_env; return 0
    fi
    check_status || true
    cp_die "state dir $state exists but its control plane is not healthy (stale state from an earlier run, or a component was killed); run '$CP_HERE/cluster.sh down --state-dir $state' and try again"
  fi
  "$CP_HERE/build.sh" >/dev/null
  command -v curl >/dev/null || cp_die "curl is not installed (apt-get install curl)"

  local etcd_port peer_port api_port
  etcd_port=${SOC2_CP_ETCD_PORT:-$(free_port)}
  api_port=${SOC2_CP_APISERVER_PORT:-$(free_port)}
  peer_port=$(free_port)
  for p in "$etcd_port" "$api_port"; do
    port_in_use "$p" && cp_die "port $p on 127.0.0.1 is already in use (set SOC2_CP_ETCD_PORT / SOC2_CP_APISERVER_PORT to free ports, or unset them to pick free ones)"
  done
  [ "$etcd_port" != "$api_port" ] || cp_die "etcd and kube-apiserver cannot share port $api_port"

  mkdir -p "$state"
  # From here on, a failure must not leave processes behind.
  trap 'rc=$?; if [ $rc -ne 0 ]; then cp_log "start-up failed; stopping what was started"; down_quiet; fi' EXIT
  echo "$api_port" >"$state/apiserver.port"
  echo "$etcd_port" >"$state/etcd.port"
  gen_pki

  cp_log "starting etcd on 127.0.0.1:$etcd_port"
  start etcd --name=soc2-local --data-dir="$state/etcd-data" --unsafe-no-fsync \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="soc2-local=http://127.0.0.1:$peer_port" --log-level=warn
  wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

  local extra=()
  if [ "$encryption" = aescbc ]; then
    cat >"$state/encryption-config.yaml" <<EC
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - aescbc:
      keys:
      - name: key1
        secret: $(head -c 32 /dev/urandom | base64)
  - identity: {}
EC
    extra+=(--encryption-provider-config="$state/encryption-config.yaml")
  fi

  cp_log "starting kube-apiserver on https://127.0.0.1:$api_port"
  start kube-apiserver --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --cert-dir="$state/pki" --tls-cert-file="$state/pki/apiserver.crt" --tls-private-key-file="$state/pki/apiserver.key" \
    --client-ca-file="$state/pki/ca.crt" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$state/pki/sa.pub" --service-account-signing-key-file="$state/pki/sa.key" \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    --profiling=false --v=1 "${extra[@]}"
  wait_for kube-apiserver 120 bash -c "[ \"\$(curl -s --max-time 3 --cacert '$state/pki/ca.crt' --cert '$state/pki/admin.crt' --key '$state/pki/admin.key' https://127.0.0.1:$api_port/readyz)\" = ok ]"

  write_kubeconfig "$state/kubeconfig" admin
  write_kubeconfig "$state/kube-controller-manager.kubeconfig" kube-controller-manager
  cp_log "starting kube-controller-manager"
  start kube-controller-manager --kubeconfig="$state/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=0 --leader-elect=false \
    --use-service-account-credentials=true --service-account-private-key-file="$state/pki/sa.key" \
    --root-ca-file="$state/pki/ca.crt" --controllers='*,-nodeipam,-nodelifecycle,-service-lb-controller' --v=1
  # Ready when it has come up and stays up for a moment (it has no probe with --secure-port=0).
  sleep 1
  pid_alive kube-controller-manager || { log_tail kube-controller-manager; cp_die "kube-controller-manager exited during start-up"; }

  if [ -n "$watch_pid" ]; then
    # Stops everything when the watched process ends, however it ends (panic, kill, success).
    setsid bash -c "while [ -d /proc/$watch_pid ] && [ \"\$(sed 's/.*) //' /proc/$watch_pid/stat 2>/dev/null | cut -d' ' -f1)\" != Z ]; do sleep 0.5; done; '$CP_HERE/cluster.sh' down --state-dir '$state'" \
      >/dev/null 2>&1 </dev/null &
    echo $! >"$state/watchdog.pid"
  fi
  trap - EXIT
  cp_log "control plane ready ($(admin_curl /version | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p'))"
  print_env
}

down_quiet() {
  stop_pid_file kube-controller-manager
  stop_pid_file kube-apiserver
  stop_pid_file etcd
}

down() {
  [ -d "$state" ] || { cp_log "nothing to stop: $state does not exist"; return 0; }
  [ -f "$state/apiserver.port" ] || [ -f "$state/etcd.pid" ] ||
    cp_die "$state does not look like a control-plane state dir; refusing to remove it"
  down_quiet
  # The watchdog may be the caller; stop it last and never wait on ourselves.
  local wp
  wp=$(cat "$state/watchdog.pid" 2>/dev/null || true)
  if [ -n "$wp" ] && [ "$wp" != "$$" ] && [ "$wp" != "$PPID" ]; then stop_pid_file watchdog; fi
  rm -rf "$state"
  cp_log "stopped and removed $state"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  status) [ -d "$state" ] || cp_die "no control plane: $state does not exist"; check_status && cp_log "control plane in $state is healthy" ;;
  env) [ -f "$state/kubeconfig" ] || cp_die "no control plane: $state/kubeconfig does not exist"; print_env ;;
  *) cp_die "usage: cluster.sh up|down|status|env [--state-dir DIR] [--watch-pid PID] [--encryption aescbc]" ;;
esac

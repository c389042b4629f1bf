#!/usr/bin/env bash
# A real local Kubernetes control plane on loopback: etcd, kube-apiserver and
# kube-controller-manager, built from source by build.sh.
#
#   cluster.sh up     [--state-dir DIR] [--watch-pid PID] [--encryption aescbc]
#                     [--audit-policy FILE] [--controller-qps N]
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
#     --audit-policy FILE turns on the API server's audit log (JSON lines in
#     DIR/audit.log) with that audit.k8s.io/v1 Policy (the scale benchmark counts
#     the operator's requests by verb with it).
#     --controller-qps N sets kube-controller-manager's --kube-api-qps (burst 2N),
#     so that a large cluster settles in minutes (default: the component's 20).
# down: stops only the processes recorded in DIR's pid files, then removes DIR.
#
# Environment: SOC2_CP_STATE_DIR (default ${TMPDIR:-/tmp}/soc2-operator-cp),
# SOC2_CP_APISERVER_PORT / SOC2_CP_ETCD_PORT (fixed ports instead of free ones),
# SOC2_CP_BIN_DIR (see build.sh).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

usage="usage: cluster.sh up|down|status|env [--state-dir DIR] [--watch-pid PID] [--encryption aescbc] [--audit-policy FILE] [--controller-qps N]"
cmd=""
state=${SOC2_CP_STATE_DIR:-${TMPDIR:-/tmp}/soc2-operator-cp}
watch_pid=""
encryption=""
audit_policy=""
controller_qps=""
need_value() { [ $# -ge 2 ] && [ -n "$2" ] || cp_die "$1 needs a value ($usage)"; }
while [ $# -gt 0 ]; do
  case "$1" in
    up|down|status|env) [ -z "$cmd" ] || cp_die "two commands given: '$cmd' and '$1' ($usage)"; cmd=$1; shift ;;
    --state-dir) need_value "$@"; state=$2; shift 2 ;;
    --watch-pid) need_value "$@"; watch_pid=$2; shift 2 ;;
    --encryption) need_value "$@"; encryption=$2; shift 2 ;;
    --audit-policy) need_value "$@"; audit_policy=$2; shift 2 ;;
    --controller-qps) need_value "$@"; controller_qps=$2; shift 2 ;;
    *) cp_die "unknown argument '$1' ($usage)" ;;
  esac
done
[ -n "$cmd" ] || cp_die "$usage"
case "$encryption" in ""|aescbc) ;; *) cp_die "--encryption supports only 'aescbc', got '$encryption'" ;; esac
if [ -n "$audit_policy" ]; then
  [ -f "$audit_policy" ] || cp_die "--audit-policy $audit_policy: no such file"
  audit_policy=$(cd "$(dirname "$audit_policy")" && pwd)/$(basename "$audit_policy")
fi
if [ -n "$controller_qps" ]; then
  [[ "$controller_qps" =~ ^[1-9][0-9]*$ ]] || cp_die "--controller-qps must be a positive whole number, got '$controller_qps'"
fi
if [ -n "$watch_pid" ]; then
  [[ "$watch_pid" =~ ^[0-9]+$ ]] || cp_die "--watch-pid must be a process id, got '$watch_pid'"
  [ -d "/proc/$watch_pid" ] || cp_die "--watch-pid $watch_pid: no such process"
fi
[[ "$state" = /* ]] || state="$PWD/$state"
state=${state%/}
COMPONENTS=(etcd kube-apiserver kube-controller-manager)
umask 077

# --- helpers -----------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Free ports are picked below the kernel's ephemeral range, so an outgoing
# connection cannot hold a port that a connect test reports as free.
PORT_LOW=20000
PORT_HIGH=$(( $(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768) - 1 ))
(( PORT_HIGH > PORT_LOW + 1000 )) || PORT_HIGH=$((PORT_LOW + 10000))
taken_ports=" "
free_port() {
  local p i
  for i in $(seq 1 500); do
    p=$((PORT_LOW + RANDOM % (PORT_HIGH - PORT_LOW)))
    [[ "$taken_ports" == *" $p "* ]] && continue
    if ! port_in_use "$p"; then taken_ports+="$p "; echo "$p"; return 0; fi
  done
  cp_die "no free port found on 127.0.0.1 in $PORT_LOW-$PORT_HIGH after 500 tries"
}

check_port() { # NAME VALUE
  [[ "$2" =~ ^[0-9]+$ ]] && (( $2 > 0 && $2 < 65536 )) || cp_die "$1 must be a port number (1-65535), got '$2'"
  port_in_use "$2" && cp_die "port $2 on 127.0.0.1 is already in use (set SOC2_CP_ETCD_PORT / SOC2_CP_APISERVER_PORT to free ports, or unset them to pick free ones)"
  [[ "$taken_ports" == *" $2 "* ]] && cp_die "$1: port $2 is already used by another component"
  taken_ports+="$2 "
}

# running PID: the process exists and is not a zombie waiting to be reaped.
running() {
  [ -d "/proc/$1" ] || return 1
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

# pid_alive NAME: the recorded pid runs and is still ours (guards pid reuse):
# a component runs our binary; the watchdog's command line names this state dir.
pid_alive() {
  local f="$state/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  running "$pid" || return 1
  if [ "$1" = watchdog ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$state" || return 1
  else
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$CP_BIN_DIR/$1")" ] || return 1
  fi
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

print_env() { printf 'export KUBECONFIG=%q\n' "$state/kubeconfig"; }

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
  # 9>&-: the components must not inherit the lock on $state.lock.
  setsid "$CP_BIN_DIR/$name" "$@" >"$state/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$state/$name.pid"
}

apiserver_ready() { [ "$(admin_curl /readyz 2>/dev/null)" = ok ]; }
etcd_ready() { curl -sf --max-time 3 "http://127.0.0.1:$(cat "$state/etcd.port")/health" >/dev/null; }
kcm_ready() { [ "$(curl -sk --max-time 3 "https://127.0.0.1:$(cat "$state/kube-controller-manager.port")/healthz")" = ok ]; }

# wait_for NAME SECONDS CHECK...: polls CHECK until it succeeds; fails fast if NAME died.
wait_for() {
  local name=$1 secs=$2 i; shift 2
  for i in $(seq 1 $((secs * 5))); do
    "$@" >/dev/null 2>&1 && return 0
    if ! pid_alive "$name"; then
      log_tail "$name"
      cp_die "$name exited during start-up (see the log above)"
    fi
    sleep 0.2
  done
  log_tail "$name"
  cp_die "$name was not ready within ${secs}s (see the log above)"
}

# The options a control plane was started with, to refuse silently different ones.
options_line() { echo "encryption=${encryption:-none} audit=${audit_policy:-none} controller-qps=${controller_qps:-default}"; }

# A state dir with nothing of ours in it (for example from mktemp -d) counts as new.
is_fresh_dir() { [ -d "$state" ] && [ -z "$(ls -A "$state")" ]; }

up() {
  mkdir -p "$(dirname "$state")"
  exec 9>"$state.lock"
  flock -n 9 || cp_die "another cluster.sh is working on $state (lock $state.lock)"
  trap '[ -d "$state" ] || rm -f "$state.lock"' EXIT
  if [ -d "$state" ] && ! is_fresh_dir; then
    if check_status 2>/dev/null; then
      if [ "$(cat "$state/options" 2>/dev/null)" != "$(options_line)" ]; then
        cp_die "the control plane in $state runs with '$(cat "$state/options" 2>/dev/null)', not '$(options_line)'; run '$CP_HERE/cluster.sh down --state-dir $state' first"
      fi
      [ -z "$watch_pid" ] || cp_die "--watch-pid cannot be added to the control plane already running in $state"
      cp_log "control plane in $state is already running"
      print_env; return 0
    fi
    check_status || true
    cp_die "state dir $state exists but its control plane is not healthy (stale state from an earlier run, or a component was killed); run '$CP_HERE/cluster.sh down --state-dir $state' and try again"
  fi
  "$CP_HERE/build.sh" >/dev/null
  command -v curl >/dev/null || cp_die "curl is not installed (apt-get install curl)"
  command -v flock >/dev/null || cp_die "flock is not installed (apt-get install util-linux)"

  local etcd_port peer_port api_port kcm_port
  if [ -n "${SOC2_CP_ETCD_PORT:-}" ]; then check_port SOC2_CP_ETCD_PORT "$SOC2_CP_ETCD_PORT"; etcd_port=$SOC2_CP_ETCD_PORT; fi
  if [ -n "${SOC2_CP_APISERVER_PORT:-}" ]; then check_port SOC2_CP_APISERVER_PORT "$SOC2_CP_APISERVER_PORT"; api_port=$SOC2_CP_APISERVER_PORT; fi
  # free_port runs in a subshell: record each pick so the next one differs.
  [ -n "${etcd_port:-}" ] || { etcd_port=$(free_port); taken_ports+="$etcd_port "; }
  [ -n "${api_port:-}" ] || { api_port=$(free_port); taken_ports+="$api_port "; }
  peer_port=$(free_port); taken_ports+="$peer_port "
  kcm_port=$(free_port); taken_ports+="$kcm_port "

  mkdir -p "$state"
  # From here on, a failure or an interrupt must not leave processes behind.
  trap 'rc=$?; trap - EXIT INT TERM HUP; if [ $rc -ne 0 ]; then cp_log "start-up failed; stopping what was started"; down_quiet; stop_pid_file watchdog; rm -rf "$state" "$state.lock"; fi; exit $rc' EXIT
  trap 'exit 130' INT TERM HUP
  options_line >"$state/options"
  echo "$api_port" >"$state/apiserver.port"
  echo "$etcd_port" >"$state/etcd.port"
  echo "$kcm_port" >"$state/kube-controller-manager.port"
  if [ -n "$watch_pid" ]; then
    # Stops everything when the watched process ends, however it ends (panic,
    # kill, success). Started first so that it also covers a failed start-up.
    # Paths reach it as arguments, never pasted into the script text.
    setsid bash -c 'w=$1; st=$2; here=$3
      alive() { [ -d "/proc/$w" ] && [ "$(sed "s/.*) //" "/proc/$w/stat" 2>/dev/null | cut -d" " -f1)" != Z ]; }
      while alive; do sleep 0.5; done
      exec "$here/cluster.sh" down --state-dir "$st"' soc2-cp-watchdog "$watch_pid" "$state" "$CP_HERE" \
      >/dev/null 2>&1 </dev/null 9>&- &
    echo $! >"$state/watchdog.pid"
  fi
  gen_pki

  cp_log "starting etcd on 127.0.0.1:$etcd_port"
  start etcd --name=soc2-local --data-dir="$state/etcd-data" --unsafe-no-fsync \
    --listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="soc2-local=http://127.0.0.1:$peer_port" --log-level=warn
  wait_for etcd 30 etcd_ready

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
  if [ -n "$audit_policy" ]; then
    cp "$audit_policy" "$state/audit-policy.yaml"
    extra+=(--audit-policy-file="$state/audit-policy.yaml" --audit-log-path="$state/audit.log" --audit-log-format=json --audit-log-maxsize=0)
  fi
  local kcm_extra=()
  [ -z "$controller_qps" ] || kcm_extra+=(--kube-api-qps="$controller_qps" --kube-api-burst=$((controller_qps * 2)))

  cp_log "starting kube-apiserver on https://127.0.0.1:$api_port"
  # --endpoint-reconciler-type=none: the advertise address is loopback, which the
  # default reconciler refuses to publish as the kubernetes Service endpoint.
  start kube-apiserver --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" \
    --endpoint-reconciler-type=none \
    --cert-dir="$state/pki" --tls-cert-file="$state/pki/apiserver.crt" --tls-private-key-file="$state/pki/apiserver.key" \
    --client-ca-file="$state/pki/ca.crt" --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$state/pki/sa.pub" --service-account-signing-key-file="$state/pki/sa.key" \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    --profiling=false --v=1 "${extra[@]}"
  wait_for kube-apiserver 120 apiserver_ready

  write_kubeconfig "$state/kubeconfig" admin
  write_kubeconfig "$state/kube-controller-manager.kubeconfig" kube-controller-manager
  cp_log "starting kube-controller-manager"
  start kube-controller-manager --kubeconfig="$state/kube-controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$kcm_port" --cert-dir="$state/pki/kcm" --leader-elect=false \
    --use-service-account-credentials=true --service-account-private-key-file="$state/pki/sa.key" \
    --root-ca-file="$state/pki/ca.crt" --controllers='*,-nodeipam,-nodelifecycle,-service-lb-controller' --v=1 "${kcm_extra[@]}"
  wait_for kube-controller-manager 60 kcm_ready

  trap - EXIT INT TERM HUP
  cp_log "control plane ready ($(admin_curl /version | sed -n 's/.*"gitVersion": "\(.*\)".*/\1/p'))"
  print_env
}

down_quiet() {
  stop_pid_file kube-controller-manager
  stop_pid_file kube-apiserver
  stop_pid_file etcd
}

down() {
  [ -d "$state" ] || { cp_log "nothing to stop: $state does not exist"; rm -f "$state.lock"; return 0; }
  if ! is_fresh_dir; then
    [ -f "$state/apiserver.port" ] || [ -f "$state/etcd.pid" ] ||
      cp_die "$state does not look like a control-plane state dir; refusing to remove it"
  fi
  down_quiet
  # The watchdog may be the caller (it execs this script); never stop ourselves.
  local wp
  wp=$(cat "$state/watchdog.pid" 2>/dev/null || true)
  if [ -n "$wp" ] && [ "$wp" != "$$" ] && [ "$wp" != "$PPID" ]; then stop_pid_file watchdog; fi
  rm -rf "$state" "$state.lock"
  cp_log "stopped and removed $state"
}

case "$cmd" in
  up) up ;;
  down) down ;;
  status) [ -d "$state" ] || cp_die "no control plane: $state does not exist"; check_status && cp_log "control plane in $state is healthy" ;;
  env) [ -f "$state/kubeconfig" ] || cp_die "no control plane: $state/kubeconfig does not exist"; print_env ;;
esac

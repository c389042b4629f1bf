#!/usr/bin/env bash
# make demo: a local control plane with real workloads, the starter Controls and
# the operator running against them; prints the verdicts and how to flip one.
#
#   SOC2_DEMO_DIR   state (default ${TMPDIR:-/tmp}/soc2-operator-demo)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
fxabs="$root/tests/fixtures/real"
demo=${SOC2_DEMO_DIR:-${TMPDIR:-/tmp}/soc2-operator-demo}
state="$demo/control-plane"
fx=tests/fixtures/real
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if [ -f "$demo/operator.pid" ] && kill -0 "$(cat "$demo/operator.pid")" 2>/dev/null; then
  say "the demo is already running (make demo-down stops it)"
  exit 1
fi

say "building soc2-operator"
cargo build --quiet --bin soc2-operator
say "building the local control plane (first run: several minutes)"
bin=$(hack/control-plane/build.sh 2>/dev/null) || bin=$(hack/control-plane/build.sh)
mkdir -p "$demo"
say "starting etcd, kube-apiserver, kube-controller-manager"
eval "$(hack/control-plane/cluster.sh up --state-dir "$state" 2> >(grep -v 'all binaries present' >&2))"
k() { "$bin/kubectl" "$@"; }

say "installing CRDs: Control, Velero"
k apply --server-side -f crds/ >/dev/null
for f in $fx/velero/crds/*.yaml; do k apply --server-side -f "$f" >/dev/null; done
k wait --for=condition=Established crd/controls.soc2-operator.dev crd/schedules.velero.io crd/backups.velero.io >/dev/null

say "Online Boutique in namespace online-boutique (no network policies)"
k create namespace online-boutique --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -n online-boutique -f $fx/microservices-demo/kubernetes-manifests.yaml >/dev/null

say "kube-prometheus RBAC, NetworkPolicies, workloads in namespace monitoring"
k create namespace monitoring --dry-run=client -o yaml | k apply -f - >/dev/null
for f in $fx/kube-prometheus/*-{serviceAccount,clusterRole,clusterRoleBinding,clusterRoleAggregatedMetricsReader,clusterRoleServerResources,clusterRoleBindingDelegator,roleBindingAuthReader,roleConfig,roleBindingConfig,networkPolicy,deployment,podDisruptionBudget}.yaml; do
  [ -f "$f" ] && k apply -f "$f" >/dev/null
done

say "Velero: a storage location, a daily schedule and its backups (a recent PartiallyFailed one, an older Completed one)"
k create namespace velero --dry-run=client -o yaml | k apply -f - >/dev/null
ago() { date -u -d "-$1 hours" +%Y-%m-%dT%H:%M:%SZ; }
k apply -f - >/dev/null <<YAML
apiVersion: velero.io/v1
kind: BackupStorageLocation
metadata: {name: default, namespace: velero}
spec: {provider: aws, objectStorage: {bucket: soc2-demo-backups}}
status: {phase: Available}
---
apiVersion: velero.io/v1
kind: Schedule
metadata: {name: daily, namespace: velero}
spec:
  schedule: "0 1 * * *"
  template: {includedNamespaces: ["online-boutique", "velero"], storageLocation: default}
status: {phase: Enabled, lastBackup: "$(ago 1)"}
---
apiVersion: velero.io/v1
kind: Backup
metadata: {name: daily-failed, namespace: velero, labels: {velero.io/schedule-name: daily}}
spec: {storageLocation: default}
status: {phase: PartiallyFailed, completionTimestamp: "$(ago 1)"}
---
apiVersion: velero.io/v1
kind: Backup
metadata: {name: daily-ok, namespace: velero, labels: {velero.io/schedule-name: daily}}
spec: {storageLocation: default}
status: {phase: Completed, completionTimestamp: "$(ago 20)"}
YAML

say "the starter Controls (controls/)"
k apply -f controls/ >/dev/null

say "starting the operator"
: >"$demo/operator.log"
KUBECONFIG="$state/kubeconfig" setsid target/debug/soc2-operator --log-format json run \
  --metrics-addr 127.0.0.1:0 --leader-election=false >/dev/null 2>"$demo/operator.log" </dev/null &
echo $! >"$demo/operator.pid"
addr=""
for _ in $(seq 1 100); do
  addr=$(grep -o '"addr":"[^"]*"' "$demo/operator.log" | head -1 | cut -d'"' -f4 || true)
  [ -n "$addr" ] && break
  kill -0 "$(cat "$demo/operator.pid")" 2>/dev/null || { cat "$demo/operator.log" >&2; echo "the operator exited" >&2; exit 1; }
  sleep 0.1
done
echo "$addr" >"$demo/metrics.addr"

say "waiting until every Control is evaluated"
n=$(k get controls --no-headers | wc -l)
evaluated=0
for _ in $(seq 1 300); do
  done_=$(k get controls -o jsonpath='{range .items[*]}{.status.observedGeneration}{"\n"}{end}' | grep -c . || true)
  if [ "$done_" -ge "$n" ]; then evaluated=1; break; fi
  sleep 0.2
done
if [ $evaluated -eq 0 ]; then
  echo "only $done_ of $n Controls were evaluated within 60 s; see $demo/operator.log" >&2
  tail -20 "$demo/operator.log" >&2
  exit 1
fi

echo
k get controls -o wide
echo
cat <<TXT
Metrics:   curl -s http://$addr/metrics | grep ^soc2_
Cluster:   export KUBECONFIG=$state/kubeconfig   (kubectl: $bin/kubectl)
Details:   kubectl get control network-default-deny -o yaml; kubectl get events -n default
Logs:      $demo/operator.log

Flip a result:
  # a cluster-admin binding to a person: no-unexpected-cluster-admins turns False
  $bin/kubectl create clusterrolebinding mallory --clusterrole=cluster-admin --user=mallory
  # Online Boutique's own network policies: online-boutique leaves network-default-deny's
  # violations (8 -> 6; still False: default, monitoring and velero have none)
  $bin/kubectl apply -n online-boutique -f $fxabs/microservices-demo/network-policies/
  $bin/kubectl get controls; $bin/kubectl get events -n default   # an Event per verdict change

Stop everything: make demo-down
TXT

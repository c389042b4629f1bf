#!/usr/bin/env bash
# make demo-down: stops the demo's operator and control plane, removes its state.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
demo=${SOC2_DEMO_DIR:-${TMPDIR:-/tmp}/soc2-operator-demo}
if [ -f "$demo/operator.pid" ]; then
  pid=$(cat "$demo/operator.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
fi
"$root/hack/control-plane/cluster.sh" down --state-dir "$demo/control-plane"
rm -rf "$demo"
echo "demo stopped"

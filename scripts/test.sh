#!/usr/bin/env bash
# The whole test suite: installs the real tools the tests use when missing, then runs
# formatting, lints, every test, and the benchmarks' quick CI mode.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
eval "$(./scripts/setup-test-tools.sh)"
echo "== tools: $(nix-instantiate --version | head -1); $(sops --version 2>/dev/null | head -1); $(ssh -V 2>&1)"
echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --quiet "$@"
echo "== benchmarks (quick mode; full figures: ./scripts/bench.sh)"
./scripts/bench.sh --quick

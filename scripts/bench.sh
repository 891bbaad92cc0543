#!/usr/bin/env bash
# Every benchmark, each comparing vmctl with a reference run in the same process or run.
#   ./scripts/bench.sh            full runs (figures for issue notes)
#   ./scripts/bench.sh --quick    one short pass each (what CI runs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
eval "$(./scripts/setup-test-tools.sh)"
if [ "${1:-}" = "--quick" ]; then export VMCTL_BENCH_QUICK=1; fi
benches=$(sed -n 's/^name = "\(.*\)"$/\1/p' <(awk '/^\[\[bench\]\]/{f=1;next} f&&/^name/{print;f=0}' Cargo.toml))
# Every bench built in one cargo run first, so their compiles and links share the cores; one
# build per bench, each waiting for the one before to have run, left a core idle.
echo "== building the benches"
cargo bench --quiet --no-run $(printf -- '--bench %s ' $benches)
for b in $benches; do
  echo "== bench $b"
  cargo bench --quiet --bench "$b"
done

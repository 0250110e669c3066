#!/usr/bin/env bash
# cgroups: create + apply typical limits (memory, cpu, pids) + enter a fresh child + remove.
# Prints the median and p90 of the cgroup work per round (spawning and reaping the child
# are not counted). Needs root. Usage: bench/cgroups.sh [ROUNDS] [--devices] [--phases]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/h-cgroups}
cargo build --quiet --release -p condo-cgroups --example cgbench
exe="$CARGO_TARGET_DIR/release/examples/cgbench"
# One warm-up pass, then the measured one.
"$exe" 50 >/dev/null
"$exe" "${1:-500}" "${@:2}"

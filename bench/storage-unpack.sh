#!/bin/bash
# Layer unpack speed: Condo's safe unpacker against GNU tar on the same layer, side by side
# (A B A B ...), each run into a fresh directory on the same filesystem; prints medians and ratio.
# Usage: bench/storage-unpack.sh [ROUNDS] [SOURCE_DIR]
set -euo pipefail
ROUNDS=${1:-5}
SRC=${2:-usr/share/doc usr/include usr/lib/python3.11}  # relative to /
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/h-storage}
# A quicker release build than the workspace's LTO profile; the unpack loop is what is measured.
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo build -q --release -p condo-storage --example unpack
BIN=$CARGO_TARGET_DIR/release/examples/unpack
# BENCH_DIR picks the filesystem (default /dev/shm: tmpfs, so disk writeback noise stays out).
W=$(mktemp -d "${BENCH_DIR:-/dev/shm}/condo-bench-unpack.XXXXXX")
trap 'rm -rf "$W"' EXIT
tar -cf "$W/layer.tar" -C / $SRC 2>/dev/null || true
TARFLAGS=-xf
if [ "${COMPRESS:-}" = gzip ]; then
  # COMPRESS=gzip compares `tar -xzf` (gzip(1) as a filter) with Condo's built-in zlib-rs.
  gzip -1 "$W/layer.tar" && mv "$W/layer.tar.gz" "$W/layer.tar"
  TARFLAGS=-xzf
fi
SIZE=$(du -m "$W/layer.tar" | cut -f1)
ENTRIES=$(tar -t${TARFLAGS#-x} "$W/layer.tar" | wc -l)
now() { date +%s%N; }
declare -a A B
for i in $(seq "$ROUNDS"); do
  sync; cat "$W/layer.tar" > /dev/null
  t0=$(now); mkdir "$W/tar$i"; tar $TARFLAGS "$W/layer.tar" -C "$W/tar$i"; t1=$(now)
  A+=($(( (t1 - t0) / 1000000 )))
  sync; cat "$W/layer.tar" > /dev/null
  t0=$(now); "$BIN" "$W/layer.tar" "$W/condo$i"; t1=$(now)
  B+=($(( (t1 - t0) / 1000000 )))
  rm -rf "$W/tar$i" "$W/condo$i"; sync
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
MA=$(med "${A[@]}"); MB=$(med "${B[@]}")
echo "layer: $SRC as tar, ${SIZE} MiB, $ENTRIES entries, $ROUNDS rounds"
echo "gnu tar $TARFLAGS ms: ${A[*]}  median $MA"
echo "condo unpack ms: ${B[*]}  median $MB"
awk -v a="$MA" -v b="$MB" 'BEGIN { printf "ratio condo/tar: %.2f\n", b / a }'

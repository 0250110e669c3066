#!/bin/bash
# Instance create (10 MiB and 1 GiB images), snapshot after writing 1 GiB (stopped; and with a
# quota while mounted, right after the write and after `sync`, then unmounted), and clone, on
# overlayfs over ext4 (/var/tmp), btrfs (a loop-mounted image) and overlayfs over that btrfs, each
# beside a full `cp -a --reflink=auto` of the same tree. Usage: bench/storage-instances.sh [ROUNDS]
set -euo pipefail
ROUNDS=${1:-21}
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/h-storage}
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo build -q --release -p condo-storage --example instances
BIN=$CARGO_TARGET_DIR/release/examples/instances
W=$(mktemp -d /var/tmp/condo-bench-inst.XXXXXX)
cleanup() {
  # Everything still mounted below $W (an interrupted run: rootfs, quota images), deepest first.
  awk -v w="$W/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m"; done
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/ov"
"$BIN" overlay "$W/ov" "$ROUNDS"
truncate -s 16G "$W/btrfs.img"
mkfs.btrfs -q "$W/btrfs.img" >/dev/null
mkdir -p "$W/btrfs"
mount -o loop "$W/btrfs.img" "$W/btrfs"
"$BIN" btrfs "$W/btrfs" "$ROUNDS"
mkdir -p "$W/btrfs/ov"
"$BIN" overlay "$W/btrfs/ov" "$ROUNDS"

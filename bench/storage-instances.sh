#!/bin/bash
# Instance create (10 MiB and 1 GiB images), snapshot after writing 1 GiB, and clone, on
# overlayfs (over ext4 in /var/tmp) and btrfs (a loop-mounted image), each beside a full
# `cp -a --reflink=auto` of the same tree. Usage: bench/storage-instances.sh [ROUNDS]
set -euo pipefail
ROUNDS=${1:-21}
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/h-storage}
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo build -q --release -p condo-storage --example instances
BIN=$CARGO_TARGET_DIR/release/examples/instances
W=$(mktemp -d /var/tmp/condo-bench-inst.XXXXXX)
cleanup() {
  umount -R "$W/btrfs" 2>/dev/null || true
  umount "$W/ov/mnt" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/ov"
"$BIN" overlay "$W/ov" "$ROUNDS"
truncate -s 8G "$W/btrfs.img"
mkfs.btrfs -q "$W/btrfs.img" >/dev/null
mkdir -p "$W/btrfs"
mount -o loop "$W/btrfs.img" "$W/btrfs"
"$BIN" btrfs "$W/btrfs" "$ROUNDS"

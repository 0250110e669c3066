#!/usr/bin/env bash
# templates.sh — instances of a built template, created and started until healthy, per second;
# and the disk 100 instances use against one, beside what full copies of the rootfs would use
# (what a directory backend does).
#
#   bench/templates.sh [COUNT] [TEMPLATE] [NAME=VALUE…]      (defaults: 100 busybox)
#
# NAME=VALUE are the instances' parameters (wordpress requires site_name and admin_password).
# Runs its own condod (release build) with its state in a temporary directory; the template is
# built from templates/ (wordpress needs the Debian mirror and a few minutes the first time).
# HEALTHY_WITHIN (seconds, default 120) is how long an instance may take to become healthy.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-100}
template=${2:-busybox}
params=()
for p in "${@:3}"; do params+=(-p "$p"); done
within=${HEALTHY_WITHIN:-120}
bin=${BIN:-target/release}
[ -x "$bin/condod" ] || cargo build --release -q -p condod -p condo -p condo-monitor
root=$(mktemp -d /var/tmp/condo-bench-tpl.XXXXXX)
cleanup() {
  CONDO_HOST=unix://$root/condod.sock "$bin/condo" ps -a -q 2>/dev/null |
    xargs -r -n 50 env CONDO_HOST=unix://$root/condod.sock "$bin/condo" rm -f >/dev/null 2>&1 || true
  [ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  rm -rf "$root" "$root.log"
}
trap cleanup EXIT
"$bin/condod" --root "$root" --monitor "$bin/condo-monitor" --templates "$PWD/templates" \
  --log warn 2>"$root.log" &
daemon=$!
export CONDO_HOST=unix://$root/condod.sock
for _ in $(seq 100); do "$bin/condo" system info >/dev/null 2>&1 && break; sleep 0.1; done
condo() { "$bin/condo" "$@"; }

echo "building $template"
t0=$(date +%s.%N)
condo template build "$template" >/dev/null
t1=$(date +%s.%N)
condo template build "$template" >/dev/null
t2=$(date +%s.%N)
printf 'build %.1f s, rebuild of the unchanged template %.2f s\n' "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"

used() { du -sx --block-size=1 "$root/storage" | cut -f1; }
base=$(used)
status_of() { condo inspect "$1" | jq -r '.[0] | .health.status // .state'; }
# Waits until instance $1 is healthy; gives up after $within seconds.
wait_healthy() {
  local deadline=$((SECONDS + within))
  until [ "$(status_of "$1")" = healthy ]; do
    ((SECONDS < deadline)) || { echo "templates.sh: $1 is not healthy after $within s: $(condo inspect "$1" | jq -c '.[0] | {state, health}')" >&2; exit 1; }
    sleep 0.05
  done
}
# The memory the running instances use (their cgroups' usage, page cache included), in MiB.
memory() { condo stats --no-stream --output json | jq '[.[].memory_bytes] | add // 0 | . / 1048576 | floor'; }

# One instance: create, start, wait for healthy.
s=$(date +%s.%N)
condo run -d --name inst0 --template "$template" "${params[@]}" >/dev/null
wait_healthy inst0
e=$(date +%s.%N)
one=$(( $(used) - base ))
printf 'one instance: created, started and healthy in %.2f s; disk %d KiB; memory %d MiB\n' "$(echo "$e - $s" | bc)" $((one / 1024)) "$(memory)"

# COUNT-1 more, as fast as the daemon takes them, then until every one is healthy.
s=$(date +%s.%N)
for i in $(seq 1 $((count - 1))); do
  condo run -d --name "inst$i" --template "$template" "${params[@]}" >/dev/null
done
c=$(date +%s.%N)
for i in $(seq 0 $((count - 1))); do
  wait_healthy "inst$i"
done
e=$(date +%s.%N)
all=$(( $(used) - base ))
n=$((count - 1))
printf '%d more instances: created and started in %.2f s (%.1f per second), all healthy after %.2f s (%.1f per second)\n' \
  "$n" "$(echo "$c - $s" | bc)" "$(echo "$n / ($c - $s)" | bc -l)" "$(echo "$e - $s" | bc)" "$(echo "$n / ($e - $s)" | bc -l)"
rootfs=$(du -s --block-size=1 "$root/containers/$(condo inspect inst0 | jq -r '.[0].id')/rootfs" | cut -f1)
printf 'disk: %d instances %d KiB, one %d KiB (%.1fx); full copies of the rootfs (%d KiB each) would take %d KiB\n' \
  "$count" $((all / 1024)) $((one / 1024)) "$(echo "$all / $one" | bc -l)" $((rootfs / 1024)) $((rootfs * count / 1024))
printf 'memory of the %d running instances: %d MiB\n' "$count" "$(memory)"

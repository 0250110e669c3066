#!/usr/bin/env bash
# Container network setup + teardown: condo-net against the CNI bridge plugin (host-local
# IPAM), run side by side (A B A B ...) inside a private network namespace.
# Usage: bench/net-setup.sh [ROUNDS] [CYCLES_PER_ROUND]
set -euo pipefail
ROUNDS=${1:-10}
PER=${2:-20}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target/h-net}
CNI=${CNI_BRIDGE:-/usr/lib/cni/bridge}

if [[ "${CONDO_BENCH_INNER:-}" != 1 ]]; then
    [[ -n "${CONDO_BENCH_NO_BUILD:-}" ]] || (cd "$ROOT" && cargo build -q --release -p condo-net --example net_bench)
    [[ -x $CNI ]] || { echo "missing $CNI (apt-get install containernetworking-plugins)" >&2; exit 1; }
    exec env CONDO_BENCH_INNER=1 unshare -n --mount-proc -m -f "$0" "$ROUNDS" "$PER"
fi

BIN=$CARGO_TARGET_DIR/release/examples/net_bench
WORK=$(mktemp -d)
trap 'umount "$WORK/ns" 2>/dev/null; umount "$WORK" 2>/dev/null; rmdir "$WORK" 2>/dev/null || true' EXIT
mount -t tmpfs none "$WORK"
touch "$WORK/ns"
unshare --net="$WORK/ns" true
cat > "$WORK/cni.json" <<JSON
{"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"cni-bench","isGateway":true,
 "ipMasq":false,"ipam":{"type":"host-local","subnet":"10.92.0.0/24","dataDir":"$WORK/ipam"}}
JSON

cni_round() {
    local i t0 t1
    for ((i = 0; i < PER; i++)); do
        t0=$(date +%s%N)
        CNI_COMMAND=ADD CNI_CONTAINERID=c$i CNI_NETNS=$WORK/ns CNI_IFNAME=eth0 \
            CNI_PATH=/usr/lib/cni "$CNI" < "$WORK/cni.json" > /dev/null
        CNI_COMMAND=DEL CNI_CONTAINERID=c$i CNI_NETNS=$WORK/ns CNI_IFNAME=eth0 \
            CNI_PATH=/usr/lib/cni "$CNI" < "$WORK/cni.json" > /dev/null
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >> "$WORK/cni.txt"
    done
}

for ((r = 0; r < ROUNDS; r++)); do
    "$BIN" "$PER" "$WORK/state" >> "$WORK/condo.txt"
    cni_round
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.3f", m / 1000}'; }
c=$(median "$WORK/condo.txt")
n=$(median "$WORK/cni.txt")
echo "cycles per tool: $((ROUNDS * PER)) (A B A B in $ROUNDS rounds of $PER)"
echo "condo-net attach+detach median: $c ms"
echo "cni bridge ADD+DEL median:      $n ms"
awk -v c="$c" -v n="$n" 'BEGIN {printf "ratio cni/condo: %.1fx\n", n / c}'

#!/usr/bin/env bash
# Container network setup and teardown: condo-net against the CNI bridge plugin (host-local
# IPAM), run side by side (A B A B ...) inside a private network and mount namespace.
#
# Each cycle gives a fresh network namespace (made before the clock starts) to one "container".
# condo-net: setup = Networks::attach; teardown = Networks::release + dropping the namespace,
# as condod does when a container's last process has ended (the veth then goes with the
# namespace, in the kernel's cleanup). CNI: setup = ADD; teardown = DEL (which deletes the veth
# and waits for it); the namespace is unmounted after the clock stops, in CNI's favour.
# Both keep their IPAM state in the same place: on disk (/var/tmp) by default, on tmpfs with
# NET_BENCH_STATE=tmpfs (neither flushes a lease change to disk; condo-net flushes a new network).
# After each condo round the script also reports how long the kernel took to remove the
# released veths (the work moved off the path).
# Usage: [NET_BENCH_STATE=tmpfs] bench/net-setup.sh [ROUNDS] [CYCLES_PER_ROUND]
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
DISK=$(mktemp -d /var/tmp/condo-net-bench.XXXXXX)
trap 'for f in "$WORK"/ns*; do umount "$f" 2>/dev/null || true; done; umount "$WORK" 2>/dev/null; rmdir "$WORK" 2>/dev/null; rm -rf "$DISK"' EXIT
mount -t tmpfs none "$WORK"
if [[ "${NET_BENCH_STATE:-disk}" == tmpfs ]]; then
    rmdir "$DISK"
    DISK=$WORK/state
    mkdir "$DISK"
fi
cat > "$WORK/cni.json" <<JSON
{"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"cni-bench","isGateway":true,
 "ipMasq":false,"ipam":{"type":"host-local","subnet":"10.92.0.0/24","dataDir":"$DISK/ipam"}}
JSON

cni() {
    CNI_COMMAND=$1 CNI_CONTAINERID=c$2 CNI_NETNS=$WORK/ns$2 CNI_IFNAME=eth0 \
        CNI_PATH=/usr/lib/cni "$CNI" < "$WORK/cni.json" > /dev/null
}

cni_round() {
    local i t0 t1 t2
    for ((i = 0; i < PER; i++)); do
        touch "$WORK/ns$i"
        unshare --net="$WORK/ns$i" true
        t0=$(date +%s%N)
        cni ADD "$i"
        t1=$(date +%s%N)
        cni DEL "$i"
        t2=$(date +%s%N)
        umount "$WORK/ns$i"
        rm "$WORK/ns$i"
        echo "$(((t1 - t0) / 1000)) $(((t2 - t1) / 1000))" >> "$WORK/cni.txt"
    done
}

for ((r = 0; r < ROUNDS; r++)); do
    "$BIN" "$PER" "$DISK/state" >> "$WORK/condo.txt" 2>> "$WORK/drain.txt"
    cni_round
done

median() { sort -n | awk '{a[NR]=$1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.3f", m / 1000}'; }
col() { awk -v c="$2" '{print $c}' "$1"; }
cs=$(col "$WORK/condo.txt" 1 | median)
ct=$(col "$WORK/condo.txt" 2 | median)
cc=$(awk '{print $1 + $2}' "$WORK/condo.txt" | median)
ns=$(col "$WORK/cni.txt" 1 | median)
nt=$(col "$WORK/cni.txt" 2 | median)
nc=$(awk '{print $1 + $2}' "$WORK/cni.txt" | median)
dr=$(awk '{print $2}' "$WORK/drain.txt" | median)
echo "cycles per tool: $((ROUNDS * PER)) (A B A B in $ROUNDS rounds of $PER), state on ${NET_BENCH_STATE:-disk}"
echo "median ms        setup   teardown  cycle"
echo "condo-net        $cs   $ct    $cc"
echo "cni bridge       $ns   $nt    $nc"
echo "condo-net: kernel removal of a round's released veths after its last cycle, median $dr ms"
awk -v c="$cc" -v n="$nc" 'BEGIN {printf "ratio cni/condo (cycle): %.1fx\n", n / c}'

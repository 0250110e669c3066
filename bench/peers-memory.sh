#!/usr/bin/env bash
# peers-memory.sh [N] — host-side memory of N idle containers (busybox `sleep`) under the peers,
# for comparison with `bench/manager.py scale` (Condo):
#   Docker: dockerd + its containerd + one containerd-shim-runc-v2 per container (runc);
#   containerd alone: N more containers through `ctr run` on the same containerd (runc), whose
#     shims are counted on their own (the per-container process beside condo-monitor);
#   Podman: one conmon per container (runc; Podman has no daemon).
# Prints each group's process count, summed PSS and RSS, and per-process peak RSS (VmHWM).
# Needs root, docker.io, containerd, podman, conmon, runc, busybox-static. Everything runs in a
# private mount and PID namespace with its own /run (tests/engines/lib.sh): no daemon of the
# host is touched, and nothing outlives the script. Default N: 200.
set -euo pipefail
source "$(dirname "$0")/../tests/engines/lib.sh"
BENCH=$(cd "$(dirname "$0")" && pwd)
isolate "$@"
N=${1:-200}
need dockerd docker containerd ctr containerd-shim-runc-v2 podman conmon runc
make_work peers
DOCKERD=

finish() {
  set +e
  if [ -S "$WORK/d.sock" ]; then
    ids=$(docker ps -aq)
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1
  fi
  for t in $(ctr task ls -q 2>/dev/null); do
    ctr task kill -s KILL "$t" >/dev/null 2>&1
    ctr task delete "$t" >/dev/null 2>&1
  done
  "${POD[@]}" rm -a -f -t 0 >/dev/null 2>&1
  stop_pid "$DOCKERD" dockerd
  unmount_under "$WORK"
  rmdir /sys/fs/cgroup/*/docker /sys/fs/cgroup/*/bench /sys/fs/cgroup/*/libpod_parent/conmon \
    /sys/fs/cgroup/*/libpod_parent 2>/dev/null
  rm -rf "$WORK"
}
trap finish EXIT

image_tar
report() { python3 "$BENCH/manager.py" mem "$@"; }
echo "# $(date -u '+%Y-%m-%d %H:%M') N=$N load=$(cut -d' ' -f1 /proc/loadavg)"

# Docker, on its own containerd; runc is its default runtime.
export DOCKER_HOST=unix://$WORK/d.sock DOCKER_CONFIG=$WORK/docker-cli
dockerd --data-root "$WORK/docker" --exec-root "$WORK/x" --pidfile "$WORK/dockerd.pid" \
  -H "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
  --ip-masq=false --exec-opt native.cgroupdriver=cgroupfs >"$WORK/dockerd.log" 2>&1 &
DOCKERD=$!
wait_for 60 dockerd docker info || { tail "$WORK/dockerd.log" >&2; exit 1; }
docker load -q -i "$IMAGE_TAR" >/dev/null
for i in $(seq "$N"); do
  docker run -d --network none --name "d$i" busybox sleep 1000000 >/dev/null
done
sleep 2
report "dockerd=dockerd" "containerd (Docker's)=containerd" \
  "shims of Docker's containers=containerd-shim-runc-v2:-namespace moby"

# containerd through ctr, on the same containerd.
export CONTAINERD_ADDRESS=$WORK/x/containerd/containerd.sock CONTAINERD_NAMESPACE=bench
ctr images import "$IMAGE_TAR" >/dev/null
for i in $(seq "$N"); do
  ctr run -d docker.io/library/busybox:latest "c$i" sleep 1000000 >/dev/null
done
sleep 2
report "containerd-shim-runc-v2 (ctr)=containerd-shim-runc-v2:-namespace bench"

# Podman: conmon per container, runc as the runtime.
mkdir -p "$WORK/pod/net" "$WORK/pod/tmp"
printf '[engine]\nevents_logger = "file"\nlock_type = "file"\n[network]\nnetwork_config_dir = "%s"\n' \
  "$WORK/pod/net" >"$WORK/pod/containers.conf"
export CONTAINERS_CONF=$WORK/pod/containers.conf CONTAINERS_REGISTRIES_CONF=/dev/null
POD=(env -u DOCKER_CONFIG podman --root "$WORK/pod/root" --runroot "$WORK/pod/run" --tmpdir "$WORK/pod/tmp"
  --runtime runc --cgroup-manager cgroupfs --events-backend file --storage-driver overlay)
"${POD[@]}" load -q -i "$IMAGE_TAR" >/dev/null
for i in $(seq "$N"); do
  "${POD[@]}" run -d --network none --name "p$i" busybox sleep 1000000 >/dev/null
done
sleep 2
report "conmon (Podman)=conmon"

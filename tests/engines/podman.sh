#!/usr/bin/env bash
# Podman through condo-oci: private storage, run root, tmp dir, config files and file locks;
# `--runtime condo-oci --cgroup-manager cgroupfs --network none` for each operation.
#   CONDO_OCI=/path/to/condo-oci tests/engines/podman.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ENGINE=podman
isolate "$@"
oci_binary
need podman conmon script
make_work podman
POD_ID=

P=(podman --root "$WORK/root" --runroot "$WORK/runroot" --tmpdir "$WORK/tmp"
  --runtime "$CONDO_OCI" --cgroup-manager cgroupfs --events-backend file)

cleanup() {
  set +e
  timeout 30 "${P[@]}" rm -a -f -t 0 >/dev/null 2>&1
  unmount_under "$WORK"
  # The engine's parent cgroups, which it leaves behind (rmdir fails on any that is in use).
  # Podman removes a pod's cgroup only in the controllers it knows, not under name=systemd.
  [ -z "$POD_ID" ] || rmdir /sys/fs/cgroup/*/libpod_parent/"$POD_ID" 2>/dev/null
  rmdir /sys/fs/cgroup/*/libpod_parent/conmon /sys/fs/cgroup/*/libpod_parent 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

image_tar
mkdir -p "$WORK/net" "$WORK/tmp"
# Podman as root asks for RLIMIT_NOFILE and RLIMIT_NPROC hard limits of 1048576; raising a hard
# limit needs CAP_SYS_RESOURCE, which this sandbox's root lacks (runc and crun fail the same
# way), so the containers get limits below the host's.
cat >"$WORK/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORK/events.log"
lock_type = "file"
tmp_dir = "$WORK/tmp"
static_dir = "$WORK/root/libpod"
volume_path = "$WORK/root/volumes"
[network]
network_config_dir = "$WORK/net"
EOF
printf '[storage]\ndriver = "overlay"\nrunroot = "%s/runroot"\ngraphroot = "%s/root"\n' \
  "$WORK" "$WORK" >"$WORK/storage.conf"
: >"$WORK/registries.conf"
export CONTAINERS_CONF=$WORK/containers.conf CONTAINERS_STORAGE_CONF=$WORK/storage.conf \
  CONTAINERS_REGISTRIES_CONF=$WORK/registries.conf

RUN=("${P[@]}" run --network none)
expect "podman load" 0 "Loaded image.*busybox" -- "${P[@]}" load -i "$IMAGE_TAR"

# run: exit codes and output. Podman reads the runtime's error text for 127 and 126.
expect "run exit 0 with stdout" 0 '^hello from condo$' -- "${RUN[@]}" --rm busybox echo hello from condo
expect "run exit code 7" 7 "" -- "${RUN[@]}" --rm busybox sh -c 'exit 7'
expect "run stderr" 0 "to-stderr" -- "${RUN[@]}" --rm busybox sh -c 'echo to-stderr >&2'
expect "run missing program: 127" 127 "" -- "${RUN[@]}" --rm busybox /nonexistent
expect "run program not in PATH: 127" 127 "" -- "${RUN[@]}" --rm busybox nonexistent
expect "run non-executable file: 126" 126 "" -- "${RUN[@]}" --rm busybox /etc/passwd
expect "run sees pid 1, lo only, its hostname" 0 '^1 lo cid$' -- \
  "${RUN[@]}" --rm --hostname cid busybox sh -c 'echo $$ $(ls /sys/class/net) $(hostname)'
set +e
OUT=$(echo piped-in | timeout "$STEP_TIMEOUT" "${RUN[@]}" --rm -i busybox cat 2>&1)
RC=$?
set -e
check_last "run -i passes stdin" 0 '^piped-in$'
expect "run with user, read-only root, no caps" 0 '^65534 65534 CapEff: 0000000000000000$' -- \
  "${RUN[@]}" --rm --user 65534:65534 --read-only --cap-drop ALL busybox \
  sh -c 'touch /x 2>/dev/null && echo writable; echo $(id -u) $(id -g) $(grep CapEff /proc/self/status)'
expect "memory limit applied" 0 '^67108864$' -- \
  "${RUN[@]}" --rm --memory 64m busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes

# A long-running container for exec, top, pause, stop, logs.
expect "run -d" 0 "" -- "${RUN[@]}" -d --name bg busybox \
  sh -c 'trap "echo got-term; exit 0" TERM; echo started; while true; do sleep 0.2; done'
id=$("${P[@]}" inspect -f '{{.Id}}' bg 2>/dev/null || true)
expect "condo-oci holds the container" 0 '"status": *"running"' -- "$CONDO_OCI" state "$id"
expect "exec output and exit code" 4 '^in-exec$' -- "${P[@]}" exec bg sh -c 'echo in-exec; exit 4'
expect "exec joins the pid namespace" 0 'trap' -- "${P[@]}" exec bg sh -c 'tr "\0" " " </proc/1/cmdline'
set +e
OUT=$(echo to-exec | timeout "$STEP_TIMEOUT" "${P[@]}" exec -i bg cat 2>&1)
RC=$?
set -e
check_last "exec -i passes stdin" 0 '^to-exec$'
expect "exec missing program: 127" 127 "" -- "${P[@]}" exec bg /nonexistent
expect "top" 0 'sleep' -- "${P[@]}" top bg
expect "pause" 0 "" -- "${P[@]}" pause bg
expect "state paused" 0 '^paused$' -- "${P[@]}" inspect -f '{{.State.Status}}' bg
expect "unpause" 0 "" -- "${P[@]}" unpause bg
expect "state running" 0 '^running$' -- "${P[@]}" inspect -f '{{.State.Status}}' bg
# Podman 4.3's update has no --pids-limit.
expect "update resources" 0 "" -- "${P[@]}" update --memory 128m --memory-swap 256m --cpu-shares 512 --cpu-quota 50000 --cpu-period 100000 bg
expect "update reached the cgroup" 0 '^134217728 512 50000$' -- "${P[@]}" exec bg sh -c \
  'echo $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us)'
expect "the cgroup is the container's" 0 'libpod' -- "${P[@]}" exec bg cat /proc/self/cgroup
start=$SECONDS
expect "stop (SIGTERM, trapped)" 0 "" -- "${P[@]}" stop -t 10 bg
ok_if "stop was prompt" "took $((SECONDS - start))s" [ $((SECONDS - start)) -lt 8 ]
expect "exited 0 after SIGTERM" 0 '^exited 0$' -- "${P[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' bg
expect "logs" 0 'started' -- "${P[@]}" logs bg
ok_if "logs: the trap ran" "logs: $OUT" grep -q got-term <<<"$OUT"
expect "start again after stop" 0 "" -- "${P[@]}" start bg
expect "running again" 0 '^running$' -- "${P[@]}" inspect -f '{{.State.Status}}' bg
expect "restart" 0 "" -- "${P[@]}" restart -t 5 bg
expect "exec after restart" 0 '^alive$' -- "${P[@]}" exec bg echo alive
expect "rm -f a running container" 0 "" -- "${P[@]}" rm -f -t 2 bg

# stop of a program that ignores SIGTERM: SIGKILL after the timeout.
expect "run -d sleeper" 0 "" -- "${RUN[@]}" -d --name sl busybox sleep 1000
start=$SECONDS
expect "stop -t 2 (SIGTERM ignored)" any "" -- "${P[@]}" stop -t 2 sl
ok_if "stop waited for the timeout, then killed" "took $((SECONDS - start))s" \
  [ $((SECONDS - start)) -ge 2 -a $((SECONDS - start)) -lt 10 ]
expect "exited 137" 0 '^exited 137$' -- "${P[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' sl
expect "rm" 0 "" -- "${P[@]}" rm sl

# kill: default SIGKILL, and a chosen signal.
expect "run -d for kill" 0 "" -- "${RUN[@]}" -d --name k1 busybox \
  sh -c 'trap "echo got-usr1; exit 3" USR1; while true; do sleep 0.2; done'
expect "kill -s USR1" 0 "" -- "${P[@]}" kill -s USR1 k1
expect "wait gives the trap's code" 0 '^3$' -- "${P[@]}" wait k1
expect "logs after USR1" 0 'got-usr1' -- "${P[@]}" logs k1
expect "run -d for SIGKILL" 0 "" -- "${RUN[@]}" -d --name k2 busybox sleep 1000
expect "kill" 0 "" -- "${P[@]}" kill k2
expect "wait gives 137" 0 '^137$' -- "${P[@]}" wait k2
expect "rm killed" 0 "" -- "${P[@]}" rm k1 k2

# tty.
expect_tty "run -t gets a terminal" 2 '/dev/pts/0' -- \
  "${RUN[@]}" --rm -t busybox sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo isatty; exit 2'
ok_if "run -t: stdin and stdout are the tty" "output: $OUT" grep -q isatty <<<"$OUT"
expect "run -d for exec -t" 0 "" -- "${RUN[@]}" -d --name tx busybox sleep 1000
expect_tty "exec -t gets a terminal" 3 '/dev/pts/' -- "${P[@]}" exec -t tx sh -c 'tty; exit 3'
expect "rm -f tty container" 0 "" -- "${P[@]}" rm -f -t 0 tx

# Options as Podman turns them into config.json.
mkdir -p "$WORK/vol" && echo from-host >"$WORK/vol/f"
expect "bind mount rw" 0 '^from-host$' -- "${RUN[@]}" --rm -v "$WORK/vol:/v" busybox sh -c 'cat /v/f; echo w >/v/g'
ok_if "bind mount wrote to the host" "no $WORK/vol/g" [ -f "$WORK/vol/g" ]
expect "bind mount ro" 1 'Read-only file system' -- "${RUN[@]}" --rm -v "$WORK/vol:/v:ro" busybox sh -c 'echo w >/v/h'
expect "user namespace (--uidmap)" 0 '^0 100000 65536 0$' -- \
  "${RUN[@]}" --rm --uidmap 0:100000:65536 --gidmap 0:100000:65536 busybox \
  sh -c 'echo $(cat /proc/self/uid_map) $(stat -c %u /bin/busybox)'
expect "run -d for exec options" 0 "" -- "${RUN[@]}" -d --name ex busybox sleep 1000
expect "exec --user -w -e" 0 '^65534 /tmp 1$' -- "${P[@]}" exec --user 65534 -w /tmp -e X=1 ex sh -c 'echo $(id -u) $(pwd) $X'
expect "--pid container:" 0 '^ +1 sleep' -- "${P[@]}" run --rm --network none --pid container:ex busybox ps -o pid,comm
expect "rm ex" 0 "" -- "${P[@]}" rm -f -t 0 ex
expect "pod create" 0 "" -- "${P[@]}" pod create --name pd --network none --infra-image busybox --infra-command 'sleep 1000'
POD_ID=$(tail -1 <<<"$OUT")
expect "run in the pod (its uts namespace)" 0 '^pd$' -- "${P[@]}" run --rm --pod pd busybox hostname
expect "pod rm" 0 "" -- "${P[@]}" pod rm -f -t 0 pd

# Nothing left: no containers, no condo-oci state, no cgroups, no rootfs mounts.
expect "no containers left" 0 '^$' -- "${P[@]}" ps -aq
left=$(ls -A /run/condo-oci 2>/dev/null || true)
ok_if "no condo-oci state left" "left: $left" [ -z "$left" ]
left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 4 -type d -name 'libpod-*' 2>/dev/null || true)
ok_if "no container cgroups left" "left: $left" [ -z "$left" ]
left=$(awk -v d="$WORK/root/overlay" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo)
ok_if "no rootfs mounts left" "left: $left" [ -z "$left" ]

summary

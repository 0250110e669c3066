#!/usr/bin/env bash
# Docker through condo-oci: a private dockerd (own data root, exec root, socket and supervised
# containerd; no bridge, no iptables, no forwarding) with condo-oci added as the runtime "condo".
#   CONDO_OCI=/path/to/condo-oci tests/engines/docker.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ENGINE=docker
isolate "$@"
oci_binary
need dockerd docker containerd containerd-shim-runc-v2 script
make_work docker
DAEMON_PID=
export DOCKER_HOST=unix://$WORK/docker.sock DOCKER_CONFIG=$WORK/cli

cleanup() {
  set +e
  if [ -S "$WORK/docker.sock" ]; then
    ids=$(timeout 10 docker ps -aq 2>/dev/null)
    [ -z "$ids" ] || timeout 30 docker rm -f $ids >/dev/null 2>&1
  fi
  stop_pid "$DAEMON_PID" dockerd
  unmount_under "$WORK"
  # The engine's parent cgroups, which it leaves behind (rmdir fails on any that is in use).
  rmdir /sys/fs/cgroup/*/docker 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

image_tar
mkdir -p "$WORK/cli"
cat >"$WORK/daemon.json" <<EOF
{"runtimes": {"condo": {"path": "$CONDO_OCI"}}, "default-runtime": "condo"}
EOF
dockerd --config-file "$WORK/daemon.json" --data-root "$WORK/data" --exec-root "$WORK/exec" \
  --pidfile "$WORK/docker.pid" -H "unix://$WORK/docker.sock" \
  --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
  --userland-proxy=false --exec-opt native.cgroupdriver=cgroupfs --storage-driver overlay2 \
  >"$WORK/dockerd.log" 2>&1 &
DAEMON_PID=$!
if ! wait_for 60 "dockerd's socket" docker version; then
  tail -20 "$WORK/dockerd.log" >&2
  fail_check "dockerd starts" "no answer on $WORK/docker.sock within 60s"
  summary
fi
pass_check "dockerd starts"

D=(docker)
RUN=(docker run --runtime condo --network none)
expect "docker load" 0 "Loaded image: busybox:latest" -- docker load -i "$IMAGE_TAR"

# run: exit codes and output. Docker reads the runtime's error text for 127 and 126.
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
ok_if "read-only root is read-only" "output: $OUT" bash -c '! grep -q writable <<<"$1"' _ "$OUT"
expect "memory limit applied" 0 '^67108864$' -- \
  "${RUN[@]}" --rm --memory 64m busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes

# A long-running container for exec, top, pause, update, stop, logs.
expect "run -d" 0 "" -- "${RUN[@]}" -d --name bg busybox \
  sh -c 'trap "echo got-term; exit 0" TERM; echo started; while true; do sleep 0.2; done'
id=$(docker inspect -f '{{.Id}}' bg 2>/dev/null || true)
expect "condo-oci holds the container" 0 '"status": *"running"' -- \
  "$CONDO_OCI" --root "$WORK/exec/runtime-runc/moby" state "$id"
expect "exec output and exit code" 4 '^in-exec$' -- "${D[@]}" exec bg sh -c 'echo in-exec; exit 4'
expect "exec joins the pid namespace" 0 'trap' -- "${D[@]}" exec bg sh -c 'tr "\0" " " </proc/1/cmdline'
set +e
OUT=$(echo to-exec | timeout "$STEP_TIMEOUT" docker exec -i bg cat 2>&1)
RC=$?
set -e
check_last "exec -i passes stdin" 0 '^to-exec$'
expect "exec missing program fails" 126 "no such file or directory" -- "${D[@]}" exec bg /nonexistent
expect "top" 0 'sleep' -- "${D[@]}" top bg
expect "pause" 0 "" -- "${D[@]}" pause bg
expect "state paused" 0 '^paused$' -- "${D[@]}" inspect -f '{{.State.Status}}' bg
expect "unpause" 0 "" -- "${D[@]}" unpause bg
expect "state running" 0 '^running$' -- "${D[@]}" inspect -f '{{.State.Status}}' bg
expect "update resources" 0 "" -- "${D[@]}" update --memory 128m --memory-swap 256m --pids-limit 50 --cpu-shares 512 bg
expect "update reached the cgroup" 0 '^134217728 50 512$' -- "${D[@]}" exec bg sh -c \
  'echo $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares)'
expect "stats" 0 'bg +[0-9.]+%' -- "${D[@]}" stats --no-stream bg
start=$SECONDS
expect "stop (SIGTERM, trapped)" 0 "" -- "${D[@]}" stop -t 10 bg
ok_if "stop was prompt" "took $((SECONDS - start))s" [ $((SECONDS - start)) -lt 8 ]
expect "exited 0 after SIGTERM" 0 '^exited 0$' -- "${D[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' bg
expect "logs" 0 'started' -- "${D[@]}" logs bg
ok_if "logs: the trap ran" "logs: $OUT" grep -q got-term <<<"$OUT"
expect "start again after stop" 0 "" -- "${D[@]}" start bg
expect "running again" 0 '^running$' -- "${D[@]}" inspect -f '{{.State.Status}}' bg
expect "restart" 0 "" -- "${D[@]}" restart -t 5 bg
expect "exec after restart" 0 '^alive$' -- "${D[@]}" exec bg echo alive
expect "rm -f a running container" 0 "" -- "${D[@]}" rm -f bg

# stop of a program that ignores SIGTERM: SIGKILL after the timeout.
expect "run -d sleeper" 0 "" -- "${RUN[@]}" -d --name sl busybox sleep 1000
start=$SECONDS
expect "stop -t 2 (SIGTERM ignored)" 0 "" -- "${D[@]}" stop -t 2 sl
ok_if "stop waited for the timeout, then killed" "took $((SECONDS - start))s" \
  [ $((SECONDS - start)) -ge 2 -a $((SECONDS - start)) -lt 10 ]
expect "exited 137" 0 '^exited 137$' -- "${D[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' sl
expect "rm" 0 "" -- "${D[@]}" rm sl

# kill: default SIGKILL, and a chosen signal.
expect "run -d for kill" 0 "" -- "${RUN[@]}" -d --name k1 busybox \
  sh -c 'trap "echo got-usr1; exit 3" USR1; while true; do sleep 0.2; done'
expect "kill -s USR1" 0 "" -- "${D[@]}" kill -s USR1 k1
expect "wait gives the trap's code" 0 '^3$' -- "${D[@]}" wait k1
expect "logs after USR1" 0 'got-usr1' -- "${D[@]}" logs k1
expect "run -d for SIGKILL" 0 "" -- "${RUN[@]}" -d --name k2 busybox sleep 1000
expect "kill" 0 "" -- "${D[@]}" kill k2
expect "wait gives 137" 0 '^137$' -- "${D[@]}" wait k2
expect "rm killed" 0 "" -- "${D[@]}" rm k1 k2

# tty.
expect_tty "run -t gets a terminal" 2 '/dev/pts/0' -- \
  "${RUN[@]}" --rm -t busybox sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo isatty; exit 2'
ok_if "run -t: stdin and stdout are the tty" "output: $OUT" grep -q isatty <<<"$OUT"
expect "run -d for exec -t" 0 "" -- "${RUN[@]}" -d --name tx busybox sleep 1000
# The pause: see containerd.sh (the same shim).
expect_tty "exec -t gets a terminal" 3 '/dev/pts/' -- "${D[@]}" exec -t tx sh -c 'tty; sleep 0.2; exit 3'
expect "rm -f tty container" 0 "" -- "${D[@]}" rm -f tx

# Options engines commonly pass, as Docker turns them into config.json.
mkdir -p "$WORK/vol" && echo from-host >"$WORK/vol/f"
expect "--init: docker-init is pid 1" 0 '1 docker-init' -- \
  "${RUN[@]}" --rm --init busybox ps -o pid,comm
expect "bind mount rw" 0 '^from-host$' -- "${RUN[@]}" --rm -v "$WORK/vol:/v" busybox sh -c 'cat /v/f; echo w >/v/g'
ok_if "bind mount wrote to the host" "no $WORK/vol/g" [ -f "$WORK/vol/g" ]
expect "bind mount ro" 1 'Read-only file system' -- "${RUN[@]}" --rm -v "$WORK/vol:/v:ro" busybox sh -c 'echo w >/v/h'
expect "tmpfs mount" 0 '^tmpfs /scratch tmpfs .*size=1024k' -- \
  "${RUN[@]}" --rm --tmpfs /scratch:size=1m busybox grep /scratch /proc/mounts
expect "named volume" 0 '^x$' -- "${RUN[@]}" --rm -v condovol:/data busybox sh -c 'echo x >/data/x; ls /data'
expect "--ulimit" 0 '^100 200$' -- "${RUN[@]}" --rm --ulimit nofile=100:200 busybox sh -c 'echo $(ulimit -n) $(ulimit -Hn)'
expect "--sysctl" 0 '^1$' -- "${RUN[@]}" --rm --sysctl net.ipv4.ip_forward=1 busybox cat /proc/sys/net/ipv4/ip_forward
expect "--device" 0 '^c.* 1, +3 .*/dev/mynull$' -- "${RUN[@]}" --rm --device /dev/null:/dev/mynull busybox ls -l /dev/mynull
expect "no-new-privileges" 0 'NoNewPrivs:.1' -- \
  "${RUN[@]}" --rm --security-opt no-new-privileges busybox grep NoNewPrivs /proc/self/status
expect "default seccomp profile refuses unshare" 1 'Operation not permitted' -- "${RUN[@]}" --rm busybox unshare -m true
expect "--pids-limit" any "can't fork" -- "${RUN[@]}" --rm --pids-limit 5 busybox \
  sh -c 'for i in 1 2 3 4 5 6 7; do sleep 3 & done; wait'
expect "OOM kill: 137" 137 "" -- "${RUN[@]}" --name oom --memory 20m busybox \
  sh -c 'x=$(head -c 100000000 /dev/zero | tr "\0" a)'
expect "OOMKilled reported" 0 '^true$' -- "${D[@]}" inspect -f '{{.State.OOMKilled}}' oom
expect "rm oom" 0 "" -- "${D[@]}" rm oom
# Joining another container's namespaces by path.
expect "run -d for joining" 0 "" -- "${RUN[@]}" -d --name base --ipc shareable busybox sleep 1000
expect "--pid container:" 0 '^ +1 sleep' -- "${D[@]}" run --rm --runtime condo --network none --pid container:base busybox ps -o pid,comm
expect "--network container:" 0 '^lo$' -- "${D[@]}" run --rm --runtime condo --network container:base busybox ls /sys/class/net
expect "--ipc container:" 0 "" -- "${D[@]}" run --rm --runtime condo --network none --ipc container:base busybox true
expect "--uts host" 0 "^$(hostname)$" -- "${RUN[@]}" --rm --uts host busybox hostname
expect "rm base" 0 "" -- "${D[@]}" rm -f base
# The daemon restarting a failing container, and health checks through exec.
expect "restart policy" 0 "" -- "${RUN[@]}" -d --name rp --restart on-failure:2 busybox sh -c 'echo ran; exit 1'
poll_until 30 bash -c '[ "$(docker inspect -f "{{.RestartCount}} {{.State.Status}}" rp)" = "2 exited" ]' || true
expect "restarted twice, then gave up" 0 '^2 exited$' -- "${D[@]}" inspect -f '{{.RestartCount}} {{.State.Status}}' rp
expect "rm rp" 0 "" -- "${D[@]}" rm -f rp
expect "run -d with a health check" 0 "" -- "${RUN[@]}" -d --name hc --health-cmd 'test -d /proc/1' \
  --health-interval 1s busybox sleep 1000
poll_until 30 bash -c '[ "$(docker inspect -f "{{.State.Health.Status}}" hc)" = healthy ]' || true
expect "healthy" 0 '^healthy$' -- "${D[@]}" inspect -f '{{.State.Health.Status}}' hc
expect "kill a paused container" 0 "" -- bash -c 'docker pause hc && docker kill hc'
expect "it exited" 0 '^exited$' -- "${D[@]}" inspect -f '{{.State.Status}}' hc
expect "rm hc" 0 "" -- "${D[@]}" rm -f hc

# Nothing left: no condo-oci state, no cgroups, no rootfs mounts.
left=$(ls -A "$WORK/exec/runtime-runc/moby" 2>/dev/null || true)
ok_if "no condo-oci state left" "left: $left" [ -z "$left" ]
poll_until 10 bash -c '[ -z "$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path "*/docker/*")" ]' || true
left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*/docker/*' 2>/dev/null || true)
ok_if "no container cgroups left" "left: $left" [ -z "$left" ]
left=$(awk -v d="$WORK/data/overlay2" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo)
ok_if "no rootfs mounts left" "left: $left" [ -z "$left" ]

summary

#!/usr/bin/env bash
# containerd through condo-oci: a private containerd (own root, state and sockets, CRI off),
# the local busybox image imported, and `ctr run --runc-binary condo-oci` for each operation.
#   CONDO_OCI=/path/to/condo-oci tests/engines/containerd.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ENGINE=containerd
isolate "$@"
oci_binary
need containerd ctr containerd-shim-runc-v2 script
make_work containerd
DAEMON_PID=

cleanup() {
  set +e
  # Tasks first, so the shims exit and release their mounts.
  if [ -S "$WORK/c.sock" ]; then
    for t in $(timeout 10 ctr --address "$WORK/c.sock" -n condoeng task ls -q 2>/dev/null); do
      timeout 10 ctr --address "$WORK/c.sock" -n condoeng task kill -s KILL "$t" >/dev/null 2>&1
      timeout 10 ctr --address "$WORK/c.sock" -n condoeng task delete "$t" >/dev/null 2>&1
    done
  fi
  stop_pid "$DAEMON_PID" containerd
  unmount_under "$WORK"
  # The namespace's parent cgroups, which runtimes leave like runc does.
  rmdir /sys/fs/cgroup/*/condoeng 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

image_tar
mkdir -p "$WORK/root" "$WORK/state"
cat >"$WORK/config.toml" <<EOF
version = 2
root = "$WORK/root"
state = "$WORK/state"
# Only what ctr needs: no CRI (it would configure networking), no other snapshotters.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
]
[grpc]
  address = "$WORK/c.sock"
[ttrpc]
  address = "$WORK/c.sock.ttrpc"
[debug]
  address = "$WORK/debug.sock"
  level = "info"
[metrics]
  address = ""
EOF
containerd --config "$WORK/config.toml" >"$WORK/containerd.log" 2>&1 &
DAEMON_PID=$!
if ! wait_for 30 "containerd's socket" ctr --address "$WORK/c.sock" version; then
  tail -20 "$WORK/containerd.log" >&2
  fail_check "containerd starts" "no answer on $WORK/c.sock within 30s"
  summary
fi
pass_check "containerd starts"

CTR=(ctr --address "$WORK/c.sock" -n condoeng)
RT=(--runc-binary "$CONDO_OCI" --runc-root "$WORK/oci" --fifo-dir "$WORK/fifo")
IMG=docker.io/library/busybox:latest

expect "import image" 0 "busybox" -- "${CTR[@]}" images import "$IMAGE_TAR"

# run: exit codes and output.
expect "run exit 0 with stdout" 0 '^hello from condo$' -- \
  "${CTR[@]}" run --rm "${RT[@]}" $IMG r0 echo hello from condo
expect "run exit code 7" 7 "" -- "${CTR[@]}" run --rm "${RT[@]}" $IMG r7 sh -c 'exit 7'
expect "run stderr is captured" 0 "to-stderr" -- \
  "${CTR[@]}" run --rm "${RT[@]}" $IMG r2 sh -c 'echo to-stderr >&2'
expect "run missing program fails" any "no such file or directory" -- \
  "${CTR[@]}" run --rm "${RT[@]}" $IMG rmiss /nonexistent
ok_if "run missing program: non-zero" "exit code $RC" [ "$RC" -ne 0 ]
# What the container sees: own pid namespace, no network but lo, the image's rootfs.
expect "run sees pid 1, lo only" 0 '^1 lo$' -- \
  "${CTR[@]}" run --rm "${RT[@]}" $IMG rns sh -c 'echo $$ $(ls /sys/class/net)'

# A long-running task for exec, ps, pause/resume, kill.
expect "run -d" 0 "" -- "${CTR[@]}" run -d "${RT[@]}" $IMG bg \
  sh -c 'trap "echo got-term; exit 0" TERM; while true; do sleep 0.2; done'
expect "task is RUNNING" 0 'bg +[0-9]+ +RUNNING' -- "${CTR[@]}" task ls
expect "exec output and exit code" 5 '^from-exec$' -- \
  "${CTR[@]}" task exec --fifo-dir "$WORK/fifo" --exec-id e1 bg sh -c 'echo from-exec; exit 5'
expect "exec joins the task's pid namespace" 0 'got-term' -- \
  "${CTR[@]}" task exec --fifo-dir "$WORK/fifo" --exec-id e2 bg sh -c 'tr "\0" " " </proc/1/cmdline'
expect "task ps" 0 '^[0-9]+ ' -- "${CTR[@]}" task ps bg
expect "task pause" 0 "" -- "${CTR[@]}" task pause bg
expect "task is PAUSED" 0 'bg +[0-9]+ +PAUSED' -- "${CTR[@]}" task ls
expect "task resume" 0 "" -- "${CTR[@]}" task resume bg
expect "task is RUNNING again" 0 'bg +[0-9]+ +RUNNING' -- "${CTR[@]}" task ls
expect "exec after resume" 0 '^alive$' -- \
  "${CTR[@]}" task exec --fifo-dir "$WORK/fifo" --exec-id e3 bg echo alive
expect "task metrics" 0 'pids.current|memory' -- "${CTR[@]}" task metrics bg
expect "task kill TERM" 0 "" -- "${CTR[@]}" task kill -s TERM bg
poll_until 10 bash -c "${CTR[*]} task ls | grep -Eq 'bg +[0-9]+ +STOPPED'" ||
  true
expect "TERM stops a task that traps it" 0 'bg +[0-9]+ +STOPPED' -- "${CTR[@]}" task ls
expect "task delete" 0 "" -- "${CTR[@]}" task delete bg
expect "container delete" 0 "" -- "${CTR[@]}" containers delete bg

# SIGKILL of a task that ignores SIGTERM.
expect "run -d sleeper" 0 "" -- "${CTR[@]}" run -d "${RT[@]}" $IMG sl sleep 1000
expect "task kill KILL" 0 "" -- "${CTR[@]}" task kill -s KILL sl
poll_until 10 bash -c "${CTR[*]} task ls | grep -Eq 'sl +[0-9]+ +STOPPED'" || true
expect "KILL stops it" 0 'sl +[0-9]+ +STOPPED' -- "${CTR[@]}" task ls
expect "task delete reports 137" any 'exit with non-zero exit code 137|137' -- "${CTR[@]}" task delete sl
expect "container delete after kill" 0 "" -- "${CTR[@]}" containers delete sl

# tty: run -t and exec -t under a pseudo-terminal.
expect_tty "run -t gets a terminal" 4 '/dev/pts/0' -- \
  "${CTR[@]}" run --rm -t "${RT[@]}" $IMG tt sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo isatty; exit 4'
ok_if "run -t: stdin and stdout are the tty" "output: $OUT" grep -q isatty <<<"$OUT"
expect "run -d for exec -t" 0 "" -- "${CTR[@]}" run -d "${RT[@]}" $IMG tx sleep 1000
expect_tty "exec -t gets a terminal" 3 '/dev/pts/' -- \
  "${CTR[@]}" task exec -t --fifo-dir "$WORK/fifo" --exec-id et tx sh -c 'tty; exit 3'
run "${CTR[@]}" task kill -s KILL tx
poll_until 10 bash -c "${CTR[*]} task ls | grep -Eq 'tx +[0-9]+ +STOPPED'" || true
expect "delete tty task" any "" -- "${CTR[@]}" task delete tx
expect "delete tty container" 0 "" -- "${CTR[@]}" containers delete tx

# Nothing left: no condo-oci state, no cgroup, no rootfs mount.
left=$(ls -A "$WORK/oci/condoeng" 2>/dev/null || true)
ok_if "no condo-oci state left" "left: $left" [ -z "$left" ]
left=$(find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -path '*/condoeng/*' 2>/dev/null || true)
ok_if "no container cgroups left" "left: $left" [ -z "$left" ]
left=$(awk -v d="$WORK/state" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo)
ok_if "no rootfs mounts left" "left: $left" [ -z "$left" ]

summary

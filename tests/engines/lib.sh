# Shared helpers for the engine tests; sourced by containerd.sh, docker.sh and podman.sh.
# Each engine script runs in its own mount and PID namespace (see `isolate`), so its daemons,
# shims and mounts cannot outlive it, and its /run is a private tmpfs.

ENGINES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PASSED=0
FAILED=0
FAILED_NAMES=()
# Seconds one engine command may take before it counts as a hang.
STEP_TIMEOUT=${STEP_TIMEOUT:-60}

say() { printf '%s\n' "$*" >&2; }

# isolate "$@": re-executes the calling script in a new mount and PID namespace with a private
# /proc and /run. The namespace's init is the script's own bash, which reaps the shims that
# daemons double-fork (this host's PID 1 does not), and when it exits the kernel kills every
# process left inside.
isolate() {
  if [ "${CONDO_ENGINES_ISOLATED:-}" != 1 ]; then
    export CONDO_ENGINES_ISOLATED=1
    # --kill-child: a SIGTERM to unshare (a timeout) reaches the script, which cleans up.
    exec unshare --mount --pid --fork --kill-child=SIGTERM --mount-proc --propagation private \
      -- bash "$0" "$@"
  fi
  # As PID 1 of its namespace bash ignores signals it has no handler for.
  trap 'exit 143' TERM INT HUP
  mount -t tmpfs -o mode=755 condo-engines-run /run
  mkdir -p /run/lock
}

# need CMD...: every command must exist, else the whole engine fails with a clear message.
need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || {
      say "missing $c: install Debian's containerd, docker.io, podman, conmon and busybox-static"
      fail_check "tools present" "$c not found"
      summary
    }
  done
}

# The condo-oci binary under test: $CONDO_OCI, made absolute.
oci_binary() {
  [ -n "${CONDO_OCI:-}" ] || { say "CONDO_OCI is not set (run-all.sh sets it)"; exit 2; }
  [ -x "$CONDO_OCI" ] || { say "CONDO_OCI=$CONDO_OCI is not executable"; exit 2; }
  CONDO_OCI=$(readlink -f "$CONDO_OCI")
}

# The busybox image tar: $CONDO_ENGINES_IMAGE or a fresh one in the work dir.
image_tar() {
  if [ -n "${CONDO_ENGINES_IMAGE:-}" ] && [ -f "$CONDO_ENGINES_IMAGE" ]; then
    IMAGE_TAR=$CONDO_ENGINES_IMAGE
  else
    IMAGE_TAR=$WORK/busybox.tar
    "$ENGINES_DIR/mkimage.sh" "$IMAGE_TAR"
  fi
}

# A short work dir (unix socket paths are limited to 108 bytes).
make_work() {
  WORK=$(mktemp -d "/tmp/condo-$1.XXXXXX")
}

# wait_for SECONDS DESCRIPTION CMD...: polls CMD every 0.1 s; false after SECONDS.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$end" ]; then
      say "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.1
  done
}

# stop_pid PID NAME: SIGTERM, up to 15 s, then SIGKILL.
stop_pid() {
  local pid=$1 name=$2
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local end=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$end" ]; then
      say "$name ($pid) ignored SIGTERM for 15s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null || true
}

# Unmounts whatever is still mounted under DIR, deepest first.
unmount_under() {
  local dir=$1 m
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# Runs one engine command with a timeout; sets OUT (stdout and stderr) and RC.
run() {
  set +e
  OUT=$(timeout -k 5 "$STEP_TIMEOUT" "$@" </dev/null 2>&1)
  RC=$?
  set -e
}

# Like run, in a pseudo-terminal (script(1)), for -t.
run_tty() {
  set +e
  OUT=$(timeout -k 5 "$STEP_TIMEOUT" script -qec "$(printf '%q ' "$@")" /dev/null </dev/null 2>&1)
  RC=$?
  set -e
  OUT=${OUT//$'\r'/}
}

pass_check() {
  PASSED=$((PASSED + 1))
  printf 'ok   %s\n' "$1"
}

fail_check() {
  FAILED=$((FAILED + 1))
  FAILED_NAMES+=("$1")
  printf 'FAIL %s: %s\n' "$1" "$2"
}

# expect NAME RC REGEX -- CMD...: runs CMD; passes when its exit code is RC ("any" for any) and
# its output matches the extended regex REGEX ("" for no check on the output).
expect() {
  local name=$1 want_rc=$2 want_out=$3
  shift 3
  [ "$1" = -- ] && shift
  run "$@"
  check_last "$name" "$want_rc" "$want_out"
}

# expect_tty: expect, in a pseudo-terminal.
expect_tty() {
  local name=$1 want_rc=$2 want_out=$3
  shift 3
  [ "$1" = -- ] && shift
  run_tty "$@"
  check_last "$name" "$want_rc" "$want_out"
}

# check_last NAME RC REGEX: judges the last run's OUT and RC.
check_last() {
  local name=$1 want_rc=$2 want_out=$3 why=""
  if [ "$RC" = 124 ] || [ "$RC" = 137 ] && [ "$want_rc" != "$RC" ]; then
    why="timed out after ${STEP_TIMEOUT}s (rc $RC)"
  elif [ "$want_rc" != any ] && [ "$RC" != "$want_rc" ]; then
    why="exit code $RC, want $want_rc"
  elif [ -n "$want_out" ] && ! grep -Eq -- "$want_out" <<<"$OUT"; then
    why="output does not match /$want_out/"
  fi
  if [ -z "$why" ]; then
    pass_check "$name"
  else
    fail_check "$name" "$why"
    sed 's/^/     | /' <<<"$OUT" | head -40
  fi
}

# ok_if NAME DETAIL CMD...: a check that is a plain shell condition.
ok_if() {
  local name=$1 detail=$2
  shift 2
  if "$@"; then pass_check "$name"; else fail_check "$name" "$detail"; fi
}

# poll_until SECONDS CMD...: like wait_for, quietly.
poll_until() {
  local secs=$1
  shift
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.1
  done
}

# Cgroup directories, in any hierarchy, whose name contains $1.
cgroups_named() {
  find /sys/fs/cgroup -mindepth 2 -maxdepth 6 -type d -name "*$1*" 2>/dev/null
}

# Prints "<engine>: N passed, N failed" and exits 1 on any failure.
summary() {
  local f
  for f in "${FAILED_NAMES[@]}"; do say "failed: $f"; done
  printf '%s: %d passed, %d failed\n' "$ENGINE" "$PASSED" "$FAILED"
  [ "$FAILED" -eq 0 ]
  exit $?
}

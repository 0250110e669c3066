# lib.sh — shared by tests/security/run.sh: a condod on a temporary root, a busybox rootfs,
# helpers to run containers and to read what the host sees of them. Sourced, not run.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${CONDO_BIN:-${CARGO_TARGET_DIR:-$repo/target}/debug}
for b in condod condo condo-monitor; do
  [ -x "$bin/$b" ] || { echo "security: $bin/$b is missing (cargo build -p condod -p condo -p condo-monitor, or set CONDO_BIN)" >&2; exit 2; }
done
((EUID == 0)) || { echo "security: run as root" >&2; exit 2; }

tmp=$(mktemp -d /tmp/condo-security.XXXXXX)
# Container roots are unprivileged ids on the host: they must pass through, as through /var/lib.
chmod 711 "$tmp"
root=$tmp/root
port=$((20000 + RANDOM % 20000))
export CONDO_HOST=unix://$root/condod.sock
export CONDO_TOKEN=
daemon_pid=

c() { "$bin/condo" "$@"; }

# A rootfs with busybox and all its applets at $1.
make_rootfs() {
  local r=$1
  mkdir -p "$r"/{bin,etc,proc,sys,dev,tmp,root,mnt,www}
  chmod 1777 "$r/tmp"
  cp /bin/busybox "$r/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do
    [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' > "$r/etc/group"
  echo hello > "$r/www/index.html"
}

start_daemon() {
  "$bin/condod" --root "$root" --monitor "$bin/condo-monitor" --listen "tcp://127.0.0.1:$port" \
    >>"$tmp/condod.log" 2>&1 &
  daemon_pid=$!
  local i
  for i in $(seq 200); do
    c system info >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "security: condod did not come up; log:" >&2
  tail -20 "$tmp/condod.log" >&2
  return 1
}

stop_daemon() {
  [ -n "$daemon_pid" ] || return 0
  kill "$daemon_pid" 2>/dev/null
  wait "$daemon_pid" 2>/dev/null
  daemon_pid=
}

# Mount points under $tmp, as the host sees them.
mounts_under_tmp() {
  awk -v t="$tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo
}

cleanup() {
  local ids
  if [ -n "$daemon_pid" ]; then
    ids=$(c ps -a -q 2>/dev/null)
    [ -n "$ids" ] && c rm -f $ids >/dev/null 2>&1
  fi
  stop_daemon
  local left
  left=$(mounts_under_tmp)
  if [ -n "$left" ]; then
    echo "security: FAILED: mounts left behind:" >&2
    echo "$left" >&2
    failed+=("nothing left mounted")
    local m
    for m in $(echo "$left" | sort -r); do umount -l "$m" 2>/dev/null; done
  fi
  rm -rf "$tmp"
}

# Field $2 (a Python expression on `c`, the container) of `condo inspect $1`.
field() {
  c inspect "$1" | python3 -c "import json,sys; c=json.load(sys.stdin)[0]; print($2)"
}

# Runs a detached container NAME on the shared rootfs: run_d NAME [condo run options] -- CMD...
run_d() {
  local name=$1; shift
  local opts=()
  while (($#)) && [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  # CONDO_SECURITY_OPTS (e.g. --privileged) weakens the containers, to see a check fail.
  c run -d --name "$name" --rootfs "$rootfs" ${CONDO_SECURITY_OPTS:-} "${opts[@]}" "$@" >/dev/null
}

# The host uid of process $1.
host_uid() { awk '/^Uid:/ { print $2 }' "/proc/$1/status"; }

# Median of the numbers on stdin.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "nan" }'; }

# Times (s) of $2 HTTP requests to the httpd of container $1, one a line, from inside its
# network namespace over its loopback.
latencies() {
  local pid args=() i
  pid=$(field "$1" "c['pid']")
  for i in $(seq "$2"); do args+=(-o /dev/null "http://127.0.0.1:8080/index.html"); done
  nsenter --net="/proc/$pid/ns/net" curl -s --max-time 5 -w '%{time_total}\n' "${args[@]}"
}

# Median time (s) of $2 HTTP requests to the httpd of container $1.
latency() { latencies "$@" | median; }

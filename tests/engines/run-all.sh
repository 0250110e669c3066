#!/usr/bin/env bash
# Runs the engine tests: containerd, Docker and Podman driving condo-oci.
#   tests/engines/run-all.sh [containerd|docker|podman ...]
# Builds condo-oci (release) unless CONDO_OCI names a binary, builds the busybox image once,
# runs each engine's script under a hard timeout, prints "engines: N passed, N failed" and exits
# non-zero on any failure. Needs root and Debian's containerd, docker.io, podman, conmon,
# busybox-static and util-linux (unshare, script).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
engines=("$@")
[ ${#engines[@]} -gt 0 ] || engines=(containerd docker podman)
# Seconds one engine's script may take in all.
ENGINE_TIMEOUT=${ENGINE_TIMEOUT:-240}

if [ "$(id -u)" != 0 ]; then
  echo "engine tests need root" >&2
  exit 1
fi

if [ -z "${CONDO_OCI:-}" ]; then
  echo "building condo-oci (release)" >&2
  (cd "$repo" && cargo build --release -q -p condo-oci)
  CONDO_OCI=${CARGO_TARGET_DIR:-$repo/target}/release/condo-oci
fi
CONDO_OCI=$(readlink -f "$CONDO_OCI")
export CONDO_OCI
version=$("$CONDO_OCI" --version)
echo "condo-oci: $CONDO_OCI (${version%%$'\n'*})"

work=$(mktemp -d /tmp/condo-engines.XXXXXX)
trap 'rm -rf "$work"' EXIT
export CONDO_ENGINES_IMAGE=$work/busybox.tar
"$here/mkimage.sh" "$CONDO_ENGINES_IMAGE"

passed=0
failed=0
for e in "${engines[@]}"; do
  echo "== $e"
  log=$work/$e.log
  start=$SECONDS
  set +e
  timeout -k 20 "$ENGINE_TIMEOUT" bash "$here/$e.sh" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  line=$(grep -E "^$e: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -1 || true)
  if [ -n "$line" ]; then
    p=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$line")
    f=$(sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$line")
  else
    p=0
    f=0
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    # The script stopped before its summary (a timeout or an error outside a check).
    [ "$rc" -eq 124 ] && echo "FAIL $e: exceeded ${ENGINE_TIMEOUT}s" || echo "FAIL $e: exited $rc"
    failed=$((failed + 1))
  fi
  echo "== $e took $((SECONDS - start))s"
done
echo "engines: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# smoke.sh — runs every fuzz target for a short fixed time; exits non-zero if any crashes,
# hangs or runs out of memory. Installs what it needs (cargo-fuzz; the C++ compiler libFuzzer
# is built with and libseccomp on Debian), so CI can call it on a fresh machine.
#
#   fuzz/smoke.sh                 every target, 20 s each
#   FUZZ_SECS=120 fuzz/smoke.sh   longer
#   fuzz/smoke.sh dns_message     some targets only
#
# The seeds in corpus/<target>/ are read, never written: what the fuzzer finds goes to
# target/corpus/<target>/ (kept between runs on one machine) and crashing inputs to
# artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

secs=${FUZZ_SECS:-20}
# cargo-fuzz passes nightly-only flags; the project's single stable toolchain takes them so.
export RUSTC_BOOTSTRAP=1

need=()
for p in build-essential pkg-config libseccomp-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
  if ((EUID != 0)); then
    echo "smoke: missing Debian packages ${need[*]} (run as root to install)" >&2
    exit 1
  fi
  echo "smoke: installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "smoke: installing cargo-fuzz"
  cargo install --locked cargo-fuzz >/dev/null
fi

# No sanitizer: the harnesses are safe Rust over safe Rust crates, so ASan would add little and
# cost a nightly-only runtime; panics, overflow checks, hangs and OOM are what we look for.
flags=(--sanitizer none --release)
cargo fuzz build "${flags[@]}" 2>&1 | grep -v "^ *Compiling" >&2

# Run the binaries just built: `cargo fuzz run` would rebuild whenever a crate changed since.
bin="${CARGO_TARGET_DIR:-target}/$(rustc -vV | sed -n 's/^host: //p')/release"

targets=("$@")
((${#targets[@]})) || mapfile -t targets < <(cargo fuzz list)

failed=()
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t" "artifacts/$t"
  log="target/smoke-$t.log"
  start=$SECONDS
  if "$bin/$t" "target/corpus/$t" "corpus/$t" \
      -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    echo "smoke: $t ok: ${runs:-?} runs in $((SECONDS - start)) s"
  else
    echo "smoke: $t FAILED; log $PWD/$log; input(s):" >&2
    ls -1 "artifacts/$t" >&2 || true
    grep -m5 -E "panicked at|ERROR: libFuzzer|SUMMARY" "$log" >&2 || true
    failed+=("$t")
  fi
done

n=${#targets[@]}
echo "$((n - ${#failed[@]})) passed, ${#failed[@]} failed"
((${#failed[@]} == 0))

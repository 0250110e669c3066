#!/bin/sh
# Runs the dashboard's end-to-end test in headless Chromium against freshly built binaries.
# Needs: chromium (apt), node and npm; installs playwright-core (no browser download) itself.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
cargo build -q -p condod -p condo-monitor
cd "$here"
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --ignore-scripts
exec node e2e.mjs

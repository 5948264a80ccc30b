#!/usr/bin/env bash
# Builds the JavaScript origin into a component:
#   examples/javascript-origin/build.sh [OUT.wasm]   (default: $CARGO_TARGET_DIR or target/, examples/javascript-origin.wasm)
# componentize-js (from npm) is installed once under the target directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
tools="$target/tools/js"
out="${1:-$target/examples/javascript-origin.wasm}"
if [ ! -x "$tools/node_modules/.bin/componentize-js" ]; then
    echo "javascript-origin: installing componentize-js into $tools" >&2
    mkdir -p "$tools"
    (cd "$tools" && npm install --silent --no-audit --no-fund @bytecodealliance/componentize-js@0.23.0)
fi
mkdir -p "$(dirname "$out")"
# No HTTP: the host grants none, and a component importing it would not load.
"$tools/node_modules/.bin/componentize-js" --wit "$root/wit" --world-name storehost:origin/blob-origin \
    --disable http fetch-event -o "$out" "$here/app.js"

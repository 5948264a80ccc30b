#!/usr/bin/env bash
# Builds the JavaScript origin into a component:
#   examples/javascript-origin/build.sh [OUT.wasm]   (default: $CARGO_TARGET_DIR or target/, examples/javascript-origin.wasm)
# componentize-js (from npm) is installed once under the target directory. The WIT it builds
# against is assembled here: the storehost packages, this example's world (which adds the WASI
# filesystem), and the WASI packages that the wasmtime-wasi crate ships.
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
wasi_wit="$(cargo metadata --format-version 1 --manifest-path "$root/Cargo.toml" | python3 -c '
import json, os, sys
meta = json.load(sys.stdin)
wasi = next(p for p in meta["packages"] if p["name"] == "wasmtime-wasi")
print(os.path.join(os.path.dirname(wasi["manifest_path"]), "src", "p2", "wit", "deps"))')"
wit="$target/examples/javascript-origin-wit"
rm -rf "$wit" && mkdir -p "$wit/deps"
cp "$root"/wit/*.wit "$here/world.wit" "$wit/"
cp -r "$root/wit/deps/host" "$wit/deps/host"
for package in io clocks filesystem; do cp "$wasi_wit/$package.wit" "$wit/deps/"; done
mkdir -p "$(dirname "$out")"
# No HTTP: the host grants none, and a component importing it would not load.
"$tools/node_modules/.bin/componentize-js" --wit "$wit" --world-name storehost:origin/javascript-blob-origin \
    --disable http fetch-event -o "$out" "$here/app.js"

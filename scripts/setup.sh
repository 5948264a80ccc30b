#!/usr/bin/env bash
# Installs what building and testing storehost needs on a fresh machine. Idempotent: each step
# checks first. Sourced by scripts/serve and scripts/test.
set -euo pipefail

# The built-in plugins are WASI components built for wasm32-wasip2.
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: installing the wasm32-wasip2 rustup target" >&2
    rustup target add wasm32-wasip2
fi

# The sql capability's tests use the PostgreSQL on 127.0.0.1:5432 (or STOREHOST_TEST_DATABASE_URL).
if [ -z "${STOREHOST_TEST_DATABASE_URL:-}" ] && command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    echo "setup: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi

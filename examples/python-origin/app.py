"""A storehost origin in Python: gateway artifacts and runner artifacts in a preopened directory.

Built with componentize-py against the `storehost:origin/blob-origin` world (see build.sh).
Layout under the root (`config.root`, default `/data`): `artifacts/<seg>/.../<last>=` and
`runs/<run>/<seg>/.../<last>=`, every segment percent-encoded. An artifact file is
`[u32 LE header length][metadata JSON][body]`; writes go to `.tmp/` and are renamed into place.
"""

import hashlib
import json
import os
import struct
import time
from typing import List, Optional
from urllib.parse import quote, unquote

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.artifacts import Artifact, ArtifactMeta, ArtifactPage
from wit_world.exports.plugin import PluginInfo
from wit_world.imports import log
from wit_world.imports.types import (
    StoreError_Internal,
    StoreError_Invalid,
    StoreError_NotFound,
)

ROOT = "/data"
_counter = 0


def invalid(message: str) -> Err:
    return Err(StoreError_Invalid(message))


def check_key(key: str) -> None:
    """The contract's key rules: 1-1024 bytes, '/'-separated, no empty/'.'/'..' segment, no NUL."""
    size = len(key.encode("utf-8"))
    if size == 0 or size > 1024:
        raise invalid(f"a key must be 1 to 1024 bytes, got {size}")
    if "\0" in key:
        raise invalid("a key must not contain NUL")
    if key.startswith("/") or any(s in ("", ".", "..") for s in key.split("/")):
        raise invalid(f"key {key!r} has a leading '/' or an empty, '.' or '..' segment")


def check_run(run: str) -> None:
    if not run or "/" in run or "\0" in run or run in (".", "..") or len(run.encode("utf-8")) > 256:
        raise invalid(f"run {run!r} is not a single path segment")


def encode(segment: str) -> str:
    # Only [A-Za-z0-9_.-] stay; a leading '.' is encoded too, and '=' marks value files.
    encoded = quote(segment, safe="")
    return "%2E" + encoded[1:] if encoded.startswith(".") else encoded


def path_of(base: str, key: str) -> str:
    segments = key.split("/")
    return os.path.join(base, *[encode(s) for s in segments[:-1]], encode(segments[-1]) + "=")


def read_file(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def write_atomic(path: str, data: bytes) -> None:
    global _counter
    _counter += 1
    temp = os.path.join(ROOT, ".tmp", f"{os.getpid()}-{time.time_ns()}-{_counter}")
    with open(temp, "wb") as f:
        f.write(data)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.replace(temp, path)


def remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def walk(base: str, prefix: str) -> List[str]:
    """Keys under `base` that start with `prefix`, sorted (code point order is UTF-8 byte order)."""
    keys = []
    for directory, _dirs, files in os.walk(base):
        rel = os.path.relpath(directory, base)
        parts = [] if rel == "." else [unquote(p) for p in rel.split(os.sep)]
        for name in files:
            if name.endswith("="):
                key = "/".join(parts + [unquote(name[:-1])])
                if key.startswith(prefix):
                    keys.append(key)
    keys.sort()
    return keys


def pack(meta: ArtifactMeta, body: bytes) -> bytes:
    header = json.dumps(
        {"key": meta.key, "size": meta.size, "content_type": meta.content_type, "sha256": meta.sha256, "created_at": meta.created_at}
    ).encode("utf-8")
    return struct.pack("<I", len(header)) + header + body


def unpack(key: str, data: bytes) -> Artifact:
    (length,) = struct.unpack("<I", data[:4])
    m = json.loads(data[4 : 4 + length])
    meta = ArtifactMeta(m["key"], m["size"], m["content_type"], m["sha256"], m["created_at"])
    body = data[4 + length :]
    if len(body) != meta.size:
        raise Err(StoreError_Internal(f"artifact {key!r} is damaged"))
    return Artifact(meta, body)


def load(key: str) -> Artifact:
    check_key(key)
    data = read_file(path_of(os.path.join(ROOT, "artifacts"), key))
    if data is None:
        raise Err(StoreError_NotFound(f"artifact {key!r}"))
    return unpack(key, data)


class Plugin(exports.Plugin):
    def describe(self) -> PluginInfo:
        return PluginInfo("python-origin", "0.1.0", False)

    def init(self, config) -> None:
        global ROOT
        ROOT = dict(config).get("root", ROOT)
        try:
            os.makedirs(os.path.join(ROOT, ".tmp"), exist_ok=True)
        except OSError as e:
            raise Err(StoreError_Internal(f"cannot prepare {ROOT}: {e}"))
        log.log(log.Level.DEBUG, f"python origin ready on {ROOT}")


class Artifacts(exports.Artifacts):
    def put(self, key: str, body: bytes, content_type: Optional[str]) -> ArtifactMeta:
        check_key(key)
        meta = ArtifactMeta(key, len(body), content_type, hashlib.sha256(body).hexdigest(), time.time_ns() // 1_000_000)
        write_atomic(path_of(os.path.join(ROOT, "artifacts"), key), pack(meta, body))
        return meta

    def get(self, key: str) -> Artifact:
        return load(key)

    def head(self, key: str) -> ArtifactMeta:
        return load(key).meta

    def list(self, prefix: str, cursor: Optional[str], limit: int) -> ArtifactPage:
        limit = 100 if limit == 0 else min(limit, 1000)
        keys = [k for k in walk(os.path.join(ROOT, "artifacts"), prefix) if cursor is None or k > cursor]
        page = keys[:limit]
        items = [load(k).meta for k in page]
        return ArtifactPage(items, page[-1] if len(keys) > limit else None)

    def get_url(self, key: str, expires_in_secs: int) -> Optional[str]:
        load(key)
        return None

    def delete(self, key: str) -> None:
        check_key(key)
        remove(path_of(os.path.join(ROOT, "artifacts"), key))


class RunnerArtifacts(exports.RunnerArtifacts):
    def _path(self, run: str, name: str) -> str:
        check_run(run)
        check_key(name)
        return path_of(os.path.join(ROOT, "runs", encode(run)), name)

    def read(self, run: str, name: str) -> bytes:
        data = read_file(self._path(run, name))
        if data is None:
            raise Err(StoreError_NotFound(f"runner artifact {name!r} of run {run!r}"))
        return data

    def write(self, run: str, name: str, data: bytes) -> None:
        write_atomic(self._path(run, name), data)

    def remove(self, run: str, name: str) -> None:
        remove(self._path(run, name))

    def list(self, run: str, prefix: str) -> List[str]:
        check_run(run)
        return walk(os.path.join(ROOT, "runs", encode(run)), prefix)

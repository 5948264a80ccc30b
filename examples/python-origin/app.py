"""A storehost origin in Python: gateway artifacts and runner artifacts in a preopened directory.

Built with componentize-py against the `storehost:origin/blob-origin` world (see build.sh).
Layout under the root (`config.root`, default `/data`): `artifacts/<seg>/.../<last>=` and
`runs/<run>/<seg>/.../<last>=`, every segment percent-encoded (a long one split over names of
200 bytes, see `encode`). An artifact file is
`[u32 LE header length][metadata JSON][body]`; writes go to `.tmp/` and are renamed into place.

Bodies can also be read and written in chunks (`open-read`, `open-write`): the host gets a
reader or a writer, an exported resource, and calls it once per chunk.

How a dropped resource is handled: componentize-py does not tell an exported resource that
the host dropped it. Its runtime keeps the Python object alive for the rest of the instance and
its destructor hook does nothing, so neither `__del__` nor `__exit__` is ever called. Writers
here therefore hold no open file between calls (each call opens, appends, and closes), a reader
holds its file only while it has bytes left to give (see `Chunks`), and a writer the host drops unfinished leaves only its temporary file in
`.tmp/`, which `sweep_temp` removes once it has not been written for an hour (at `init` and at
every `open-write`). Nothing of it is visible in the meantime: only `finish` renames it into place.
"""

import hashlib
import json
import os
import struct
import time
from typing import List, Optional, Tuple
from urllib.parse import quote, unquote

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import artifacts, runner_artifacts
from wit_world.exports.artifacts import Artifact, ArtifactMeta, ArtifactPage
from wit_world.exports.plugin import PluginInfo
from wit_world.exports.runner_artifacts import RunPage
from wit_world.imports import log
from wit_world.imports.types import (
    StoreError_Internal,
    StoreError_Invalid,
    StoreError_NotFound,
    StoreError_Unavailable,
)

ROOT = "/data"
_counter = 0

# A temporary file not written for this long belongs to a writer the host dropped.
STALE_TEMP_SECS = 3600
# The widest values an artifact header holds: a streamed body's header is written first with
# room for them, and filled in at `finish` when the size and the SHA-256 are known.
MAX_U64 = 2**64 - 1


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


# The longest file name written: an encoded segment longer than this is split into names of at
# most this many bytes, each but the last ending in "+" (a directory, continued inside it), which
# no encoded name holds ("+" is encoded as %2B).
NAME_PIECE = 200


def encode(segment: str) -> str:
    """A key segment as a relative path: one file name, or several for a long segment."""
    # Only [A-Za-z0-9_.-] stay; a leading '.' is encoded too, and '=' marks value files.
    encoded = quote(segment, safe="")
    encoded = "%2E" + encoded[1:] if encoded.startswith(".") else encoded
    pieces = []
    while len(encoded) > NAME_PIECE:
        cut = NAME_PIECE
        # An escape is never split.
        while "%" in encoded[cut - 2 : cut]:
            cut -= 1
        pieces.append(encoded[:cut] + "+")
        encoded = encoded[cut:]
    pieces.append(encoded)
    return "/".join(pieces)


def decode_path(path: str) -> List[str]:
    """The key segments of a relative path of encoded names (pieces of long ones joined)."""
    return [unquote(s) for s in path.replace("+/", "").split("/")]


def path_of(base: str, key: str) -> str:
    segments = key.split("/")
    return os.path.join(base, *[encode(s) for s in segments[:-1]], encode(segments[-1]) + "=")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def read_file(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def temp_path() -> str:
    # Unique across instances sharing the directory: time, randomness and a per-instance counter.
    global _counter
    _counter += 1
    return os.path.join(ROOT, ".tmp", f"{time.time_ns()}-{os.urandom(4).hex()}-{_counter}")


def write_atomic(path: str, data: bytes) -> None:
    temp = temp_path()
    try:
        with open(temp, "wb") as f:
            f.write(data)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.replace(temp, path)
    except BaseException:
        remove(temp)
        raise


def remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def sweep_temp() -> None:
    """Removes temporary files not written for STALE_TEMP_SECS: those of writers the host dropped
    without `finish` (or of an instance that was cut off mid-write)."""
    tmp = os.path.join(ROOT, ".tmp")
    oldest = time.time() - STALE_TEMP_SECS
    for name in os.listdir(tmp):
        path = os.path.join(tmp, name)
        try:
            if os.stat(path).st_mtime < oldest:
                os.remove(path)
        except FileNotFoundError:
            pass  # another instance swept it first


def walk(base: str, prefix: str) -> List[str]:
    """Keys under `base` that start with `prefix`, sorted (code point order is UTF-8 byte order)."""
    keys = []
    for directory, _dirs, files in os.walk(base):
        rel = os.path.relpath(directory, base)
        for name in files:
            if name.endswith("="):
                key = "/".join(decode_path(name[:-1] if rel == "." else f"{rel}/{name[:-1]}"))
                if key.startswith(prefix):
                    keys.append(key)
    keys.sort()
    return keys


def run_ids(base: str, rel: str) -> List[str]:
    """The runs under `base/rel`: its directories, and those inside a long id's pieces."""
    try:
        names = os.listdir(os.path.join(base, rel))
    except FileNotFoundError:
        return []
    ids = []
    for name in names:
        path = name if not rel else f"{rel}/{name}"
        if name.endswith("+"):
            ids.extend(run_ids(base, path))
        elif not name.endswith("="):
            ids.append(decode_path(path)[0])
    return ids


def has_files(base: str) -> bool:
    return any(name.endswith("=") for _dir, _dirs, files in os.walk(base) for name in files)


def header_of(meta: ArtifactMeta) -> bytes:
    return json.dumps(
        {"key": meta.key, "size": meta.size, "content_type": meta.content_type, "sha256": meta.sha256, "created_at": meta.created_at}
    ).encode("utf-8")


def pack(meta: ArtifactMeta, body: bytes) -> bytes:
    header = header_of(meta)
    return struct.pack("<I", len(header)) + header + body


def meta_of(header: bytes) -> ArtifactMeta:
    # A streamed body's header is padded with spaces, which JSON allows.
    m = json.loads(header)
    return ArtifactMeta(m["key"], m["size"], m["content_type"], m["sha256"], m["created_at"])


def unpack(key: str, data: bytes) -> Artifact:
    (length,) = struct.unpack("<I", data[:4])
    meta = meta_of(data[4 : 4 + length])
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


def open_artifact(key: str):
    """Opens the artifact at `key` and reads only its header: the open file, the metadata, and
    where the body starts."""
    check_key(key)
    path = path_of(os.path.join(ROOT, "artifacts"), key)
    damaged = Err(StoreError_Internal(f"artifact {key!r} is damaged"))
    try:
        f = open(path, "rb")
    except (FileNotFoundError, NotADirectoryError):
        raise Err(StoreError_NotFound(f"artifact {key!r}"))
    try:
        prefix = f.read(4)
        if len(prefix) != 4:
            raise damaged
        (length,) = struct.unpack("<I", prefix)
        header = f.read(length)
        if len(header) != length:
            raise damaged
        meta = meta_of(header)
        if os.fstat(f.fileno()).st_size - 4 - length != meta.size:
            raise damaged
    except BaseException:
        f.close()
        raise
    return f, meta, 4 + length


def artifact_meta(key: str) -> ArtifactMeta:
    f, meta, _ = open_artifact(key)
    f.close()
    return meta


def byte_range(size: int, offset: int, length: Optional[int]) -> Tuple[int, int]:
    """`[start, end)` of `length` bytes (`None`: to the end) from `offset`, within `size`."""
    start = min(offset, size)
    end = size if length is None else min(start + length, size)
    return start, end


# A range of up to this many bytes is read whole at `open-read`.
READ_AT_OPEN = 1 << 20
# A reader left unread this long is taken as dropped by the host, and its file closed.
READER_IDLE_SECS = 600

# The files of open long readers: see `Chunks`.
open_readers: List["Chunks"] = []


class Chunks:
    """Bytes `[start, end)` of the file opened at `open-read`, read a chunk per call: the
    version that existed then, whole, whatever is written or removed at its path afterwards
    (a write renames a new file into place, a removal unlinks it; the open file keeps its
    bytes). A range of up to `READ_AT_OPEN` bytes is read at once and holds no file. A longer
    one holds its file until its last byte is read; since the host's drop of a reader is never
    seen here (see the module's note), a reader not read for `READER_IDLE_SECS` is closed at
    the next `open-read`."""

    def __init__(self, what: str, f, start: int, end: int):
        self.what = what
        self.next = start
        self.end = end
        self.held = None
        self.file = None
        self.used = time.monotonic()
        if end - start <= READ_AT_OPEN:
            f.seek(start)
            self.held = f.read(end - start)
            f.close()
            if len(self.held) != end - start:
                raise Err(StoreError_Internal(f"{self.what} ended early"))
            self.next = 0
            self.end = len(self.held)
        else:
            close_idle_readers()
            self.file = f
            open_readers.append(self)

    def read(self, max_len: int) -> Optional[bytes]:
        if self.next >= self.end or max_len == 0:
            self.close()
            return None
        want = min(max_len, self.end - self.next)
        if self.held is not None:
            chunk = self.held[self.next : self.next + want]
        elif self.file is None:
            raise Err(StoreError_Unavailable(f"{self.what} was left unread for {READER_IDLE_SECS} s and closed"))
        else:
            self.file.seek(self.next)
            chunk = self.file.read(want)
        if not chunk:
            self.close()
            raise Err(StoreError_Internal(f"{self.what} ended early"))
        self.next += len(chunk)
        self.used = time.monotonic()
        if self.next >= self.end:
            self.close()
        return chunk

    def close(self) -> None:
        self.held = None if self.next >= self.end else self.held
        if self.file is not None:
            self.file.close()
            self.file = None
            open_readers.remove(self)


def close_idle_readers() -> None:
    now = time.monotonic()
    for reader in [r for r in open_readers if now - r.used > READER_IDLE_SECS]:
        reader.close()


class TempFile:
    """New contents for `path`, appended to a temporary file in `.tmp/` (opened for each call,
    see the module's note) and renamed over `path` by `commit`, at once."""

    def __init__(self, path: str, start: bytes = b""):
        self.path = path
        self.temp = temp_path()
        self.size = 0
        self.done = False
        with open(self.temp, "xb") as f:
            f.write(start)

    def _open(self):
        if self.done:
            raise invalid("the writer was already finished")
        try:
            return open(self.temp, "r+b")
        except FileNotFoundError:
            raise Err(StoreError_Unavailable("the writer was idle too long and was discarded"))

    def append(self, chunk: bytes) -> None:
        with self._open() as f:
            f.seek(0, os.SEEK_END)
            f.write(chunk)
        self.size += len(chunk)

    def commit(self, start: bytes = b"") -> None:
        """Overwrites the first bytes with `start` (filled in only now), then renames into place."""
        with self._open() as f:
            f.write(start)
        self.done = True
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            os.replace(self.temp, self.path)
        except BaseException:
            remove(self.temp)
            raise


class BodyReader(artifacts.BodyReader):
    def __init__(self, chunks: Chunks):
        self.chunks = chunks

    def read(self, max_len: int) -> Optional[bytes]:
        return self.chunks.read(max_len)


class BodyWriter(artifacts.BodyWriter):
    """An artifact file whose header is written first with room for the final metadata (the
    widest size, SHA-256 and time), then filled in and padded with spaces at `finish`."""

    def __init__(self, key: str, content_type: Optional[str]):
        self.key = key
        self.content_type = content_type
        self.room = len(header_of(ArtifactMeta(key, MAX_U64, content_type, "0" * 64, MAX_U64)))
        start = struct.pack("<I", self.room) + b" " * self.room
        self.file = TempFile(path_of(os.path.join(ROOT, "artifacts"), key), start)

    def write(self, chunk: bytes) -> None:
        self.file.append(chunk)

    def finish(self, sha256: str) -> ArtifactMeta:
        # The host hashes what it wrote and hands the digest over.
        meta = ArtifactMeta(self.key, self.file.size, self.content_type, sha256, now_ms())
        self.file.commit(struct.pack("<I", self.room) + header_of(meta).ljust(self.room))
        return meta


class FileReader(runner_artifacts.FileReader):
    def __init__(self, chunks: Chunks):
        self.chunks = chunks

    def read(self, max_len: int) -> Optional[bytes]:
        return self.chunks.read(max_len)


class FileWriter(runner_artifacts.FileWriter):
    def __init__(self, path: str):
        self.file = TempFile(path)

    def write(self, chunk: bytes) -> None:
        self.file.append(chunk)

    def finish(self) -> int:
        self.file.commit()
        return self.file.size


class Plugin(exports.Plugin):
    def describe(self) -> PluginInfo:
        # Called after `init`, and before it when the host only inspects the component: it must
        # not depend on `init` having run.
        return PluginInfo("python-origin", "0.2.0", False, None)

    def init(self, config) -> None:
        global ROOT
        ROOT = dict(config).get("root", ROOT)
        try:
            os.makedirs(os.path.join(ROOT, ".tmp"), exist_ok=True)
            sweep_temp()
        except OSError as e:
            raise Err(StoreError_Internal(f"cannot prepare {ROOT}: {e}"))
        log.log(log.Level.DEBUG, f"python origin ready on {ROOT}")


class Artifacts(exports.Artifacts):
    def put(self, key: str, body: bytes, content_type: Optional[str]) -> ArtifactMeta:
        check_key(key)
        meta = ArtifactMeta(key, len(body), content_type, hashlib.sha256(body).hexdigest(), now_ms())
        write_atomic(path_of(os.path.join(ROOT, "artifacts"), key), pack(meta, body))
        return meta

    def get(self, key: str) -> Artifact:
        return load(key)

    def head(self, key: str) -> ArtifactMeta:
        return artifact_meta(key)

    def list(self, prefix: str, cursor: Optional[str], limit: int) -> ArtifactPage:
        limit = 100 if limit == 0 else min(limit, 1000)
        keys = [k for k in walk(os.path.join(ROOT, "artifacts"), prefix) if cursor is None or k > cursor]
        page = keys[:limit]
        items = [artifact_meta(k) for k in page]
        return ArtifactPage(items, page[-1] if len(keys) > limit else None)

    def get_url(self, key: str, expires_in_secs: int) -> Optional[str]:
        artifact_meta(key)
        return None

    def delete(self, key: str) -> None:
        check_key(key)
        remove(path_of(os.path.join(ROOT, "artifacts"), key))

    def open_read(self, key: str, offset: int, length: Optional[int]) -> Tuple[ArtifactMeta, BodyReader]:
        f, meta, body_start = open_artifact(key)
        start, end = byte_range(meta.size, offset, length)
        chunks = Chunks(f"artifact {key!r}", f, body_start + start, body_start + end)
        return meta, BodyReader(chunks)

    def open_write(self, key: str, content_type: Optional[str], size_hint: Optional[int]) -> BodyWriter:
        check_key(key)
        sweep_temp()
        return BodyWriter(key, content_type)


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

    def list_runs(self, cursor: Optional[str], limit: int) -> RunPage:
        limit = 100 if limit == 0 else min(limit, 1000)
        base = os.path.join(ROOT, "runs")
        # A run whose files were all removed keeps its directory: only runs with a file count.
        candidates = sorted(r for r in run_ids(base, "") if cursor is None or r > cursor)
        runs = []
        for run in candidates:
            if has_files(os.path.join(base, encode(run))):
                runs.append(run)
                if len(runs) > limit:
                    break
        page = runs[:limit]
        return RunPage(page, page[-1] if len(runs) > limit else None)

    def open_read(self, run: str, name: str, offset: int, length: Optional[int]) -> Tuple[int, FileReader]:
        path = self._path(run, name)
        try:
            f = open(path, "rb")
        except (FileNotFoundError, NotADirectoryError):
            raise Err(StoreError_NotFound(f"runner artifact {name!r} of run {run!r}"))
        size = os.fstat(f.fileno()).st_size
        start, end = byte_range(size, offset, length)
        chunks = Chunks(f"runner artifact {name!r} of run {run!r}", f, start, end)
        return size, FileReader(chunks)

    def open_write(self, run: str, name: str, size_hint: Optional[int]) -> FileWriter:
        path = self._path(run, name)
        sweep_temp()
        return FileWriter(path)

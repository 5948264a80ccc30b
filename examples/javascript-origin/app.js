// A storehost origin in JavaScript: gateway artifacts and runner artifacts in its preopened
// directory, built with componentize-js (see build.sh).
//
// Layout under the root (`config.root`, default `/data`): `artifacts/<seg>/.../<last>=` and
// `runs/<run>/<seg>/.../<last>=`, every segment percent-encoded (a long one split over names of
// 200 bytes, see `encode`). An artifact file is
// `[u32 LE header length][metadata JSON][body]`; writes go to `.tmp/` and are renamed into place.
//
// Bodies can also be read and written in chunks (`open-read`, `open-write`): the host gets a
// reader or a writer, an exported resource, and calls it once per chunk. An exported resource
// is a class on the interface's object (`artifacts.BodyReader`, …), and the objects returned
// must be instances of it. When the host drops one, componentize-js calls the object's
// `[Symbol.dispose]()`: a reader closes its file there, and a writer that was not finished
// closes and removes its temporary file, so an aborted write leaves no trace. (A temporary file
// outlives its writer only when the instance is cut off mid-write; `init` sweeps those.)
//
// WIT to JavaScript: records are objects with camelCase fields, u64 is BigInt, option<T> is
// T or undefined, a variant is { tag, val }, an error result is thrown, and WASI calls throw
// an error whose `payload` is the error code.

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';

let rootPath = '/data';
let root = null;
let counter = 0;
// Several instances share the directory: temporary names carry an id of this instance.
let instanceId = '';

// A temporary file not written for this long was left by an instance that was cut off.
const STALE_TEMP_SECS = 3600n;
// The widest values an artifact header holds: a streamed body's header is written first with
// room for them, and filled in at `finish` when the size and the SHA-256 are known.
const MAX_U64 = 2n ** 64n - 1n;

function fail(tag, val) {
  const error = new Error(`${tag}: ${val}`);
  error.payload = { tag, val };
  throw error;
}

function code(e) {
  return e && e.payload !== undefined ? e.payload : e;
}

function utf8Length(s) {
  return new TextEncoder().encode(s).length;
}

function checkKey(key) {
  const size = utf8Length(key);
  if (size === 0 || size > 1024) fail('invalid', `a key must be 1 to 1024 bytes, got ${size}`);
  if (key.includes('\0')) fail('invalid', 'a key must not contain NUL');
  if (key.startsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    fail('invalid', `key ${JSON.stringify(key)} has a leading '/' or an empty, '.' or '..' segment`);
  }
}

function checkRun(run) {
  if (run === '' || run.includes('/') || run.includes('\0') || run === '.' || run === '..' || utf8Length(run) > 256) {
    fail('invalid', `run ${JSON.stringify(run)} is not a single path segment`);
  }
}

// UTF-8 byte order is code point order; JavaScript compares UTF-16 units, so compare code points.
function compare(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

// The longest file name written: an encoded segment longer than this is split into names of at
// most this many bytes, each but the last ending in '+' (a directory, continued inside it), which
// no encoded name holds ('+' is encoded as %2B).
const NAME_PIECE = 200;

// A key segment as a relative path: one file name, or several for a long segment.
function encode(segment) {
  let e = encodeURIComponent(segment).replace(/[!'()*~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  if (e.startsWith('.')) e = '%2E' + e.slice(1);
  const pieces = [];
  while (e.length > NAME_PIECE) {
    let cut = NAME_PIECE;
    // An escape is never split.
    while (e.slice(cut - 2, cut).includes('%')) cut--;
    pieces.push(e.slice(0, cut) + '+');
    e = e.slice(cut);
  }
  pieces.push(e);
  return pieces.join('/');
}

// The key segments of a relative path of encoded names (pieces of long ones joined).
function decodePath(path) {
  return path.replaceAll('+/', '').split('/').map(decodeURIComponent);
}

function pathOf(base, key) {
  const segments = key.split('/').map(encode);
  segments[segments.length - 1] += '=';
  return `${base}/${segments.join('/')}`;
}

function hex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// ---- files, through WASI descriptors relative to the preopened root ----

// The open file at `path`, or undefined when there is none.
function openFile(path) {
  try {
    return root.openAt({}, path, {}, { read: true });
  } catch (e) {
    const c = code(e);
    if (c === 'no-entry' || c === 'not-directory') return undefined;
    fail('internal', `reading ${path}: ${c}`);
  }
}

// `len` bytes of `file` from `offset` (fewer only at its end).
function readAt(file, offset, len) {
  const chunks = [];
  let got = 0n;
  while (got < len) {
    const [data, end] = file.read(len - got, offset + got);
    if (data.length === 0) break;
    chunks.push(data);
    got += BigInt(data.length);
    if (end) break;
  }
  const out = new Uint8Array(Number(got));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

function writeAt(file, data, offset) {
  let done = 0;
  while (done < data.length) {
    done += Number(file.write(data.subarray(done), offset + BigInt(done)));
  }
}

// Closes a WASI descriptor (or any imported resource) now rather than when it is
// garbage-collected.
function closeFile(file) {
  file[Symbol.dispose]();
}

function readFile(path) {
  const file = openFile(path);
  if (file === undefined) return undefined;
  try {
    return readAt(file, 0n, file.stat().size);
  } finally {
    closeFile(file);
  }
}

function makeDirs(path) {
  const parts = path.split('/');
  for (let i = 1; i <= parts.length; i++) {
    try {
      root.createDirectoryAt(parts.slice(0, i).join('/'));
    } catch (e) {
      if (code(e) !== 'exist') fail('internal', `creating ${parts.slice(0, i).join('/')}: ${code(e)}`);
    }
  }
}

// A new temporary file, opened for writing; `exclusive` makes a clash of names fail, not share.
function createTemp() {
  counter += 1;
  const path = `.tmp/${Date.now()}-${instanceId}-${counter}`;
  try {
    return [path, root.openAt({}, path, { create: true, exclusive: true }, { write: true })];
  } catch (e) {
    fail('internal', `creating ${path}: ${code(e)}`);
  }
}

// Renames `temp` over `path` (a rename within one directory tree is atomic); on failure the
// temporary file is removed.
function moveIntoPlace(temp, path) {
  try {
    makeDirs(path.slice(0, path.lastIndexOf('/')));
    root.renameAt(temp, root, path);
  } catch (e) {
    removeFile(temp);
    if (code(e) === 'no-entry') fail('unavailable', 'the temporary file was swept away (the writer was idle too long)');
    if (e.payload?.tag) throw e;
    fail('internal', `renaming into ${path}: ${code(e)}`);
  }
}

function writeAtomic(path, data) {
  const [temp, file] = createTemp();
  try {
    writeAt(file, data, 0n);
  } catch (e) {
    removeFile(temp);
    fail('internal', `writing ${temp}: ${code(e)}`);
  } finally {
    closeFile(file);
  }
  moveIntoPlace(temp, path);
}

function removeFile(path) {
  try {
    root.unlinkFileAt(path);
  } catch (e) {
    const c = code(e);
    if (c !== 'no-entry' && c !== 'not-directory') fail('internal', `removing ${path}: ${c}`);
  }
}

// Entries of the directory at `dir`, or none when it does not exist.
function entriesOf(dir) {
  let directory;
  try {
    directory = root.openAt({}, dir, { directory: true }, { read: true });
  } catch (e) {
    if (code(e) === 'no-entry') return [];
    fail('internal', `listing ${dir}: ${code(e)}`);
  }
  const entries = [];
  const stream = directory.readDirectory();
  try {
    for (let entry = stream.readDirectoryEntry(); entry !== undefined; entry = stream.readDirectoryEntry()) {
      entries.push(entry);
    }
  } catch (e) {
    fail('internal', `listing ${dir}: ${code(e)}`);
  } finally {
    closeFile(stream);
    closeFile(directory);
  }
  return entries;
}

function walk(base, prefix) {
  const keys = [];
  const visit = (dir, rel) => {
    for (const entry of entriesOf(dir)) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.type === 'directory') {
        visit(`${dir}/${entry.name}`, path);
      } else if (entry.name.endsWith('=')) {
        const key = decodePath(path.slice(0, -1)).join('/');
        if (key.startsWith(prefix)) keys.push(key);
      }
    }
  };
  visit(base, '');
  return keys.sort(compare);
}

// The runs under `base/rel`: its directories, and those inside a long id's pieces.
function runIds(base, rel) {
  const ids = [];
  for (const entry of entriesOf(rel === '' ? base : `${base}/${rel}`)) {
    if (entry.type !== 'directory') continue;
    const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.name.endsWith('+')) ids.push(...runIds(base, path));
    else ids.push(decodePath(path)[0]);
  }
  return ids;
}

function hasFiles(dir) {
  return entriesOf(dir).some((e) => (e.type === 'directory' ? hasFiles(`${dir}/${e.name}`) : e.name.endsWith('=')));
}

// Removes temporary files not written for STALE_TEMP_SECS: what an instance cut off mid-write
// (a trap, a deadline) left, since it never got to drop its writers. Best effort: a file that
// cannot be looked at (another instance swept it first, say) is left alone.
function sweepTemp() {
  const oldest = BigInt(Date.now()) / 1000n - STALE_TEMP_SECS;
  for (const entry of entriesOf('.tmp')) {
    const path = `.tmp/${entry.name}`;
    try {
      const written = root.statAt({}, path).dataModificationTimestamp;
      if (written !== undefined && written.seconds < oldest) root.unlinkFileAt(path);
    } catch (_) {
      // gone already, or not ours to remove
    }
  }
}

// `[start, end)` of `len` bytes (undefined: to the end) from `offset`, within `size`.
function byteRange(size, offset, len) {
  const start = offset < size ? offset : size;
  const end = len === undefined || start + len > size ? size : start + len;
  return [start, end];
}

// Bytes `[start, end)` of an open file, read a chunk per call. The file stays open (a write
// replaces a file by rename, so this one keeps the contents `open-read` saw) until the range
// is read or the host drops the reader.
class RangeReader {
  constructor(what, file, start, end) {
    this.what = what;
    this.file = file;
    this.next = start;
    this.end = end;
    if (start >= end) this.close();
  }

  read(maxLen) {
    if (this.next >= this.end || maxLen === 0) return undefined;
    if (this.file === undefined) fail('internal', `${this.what} cannot be read further`);
    const want = this.end - this.next < BigInt(maxLen) ? this.end - this.next : BigInt(maxLen);
    let chunk;
    try {
      [chunk] = this.file.read(want, this.next);
    } catch (e) {
      this.close();
      fail('internal', `reading ${this.what}: ${code(e)}`);
    }
    if (chunk.length === 0) {
      this.close();
      fail('internal', `${this.what} ended early`);
    }
    this.next += BigInt(chunk.length);
    if (this.next >= this.end) this.close();
    return chunk;
  }

  close() {
    if (this.file !== undefined) closeFile(this.file);
    this.file = undefined;
  }

  // The host dropped the reader.
  [Symbol.dispose]() {
    this.close();
  }
}

// New contents for `path`, written to a temporary file in `.tmp/` after `start` and renamed
// over `path`, at once, by `commit`; `abort` removes the temporary file.
class TempFile {
  constructor(path, start = new Uint8Array()) {
    this.path = path;
    [this.temp, this.file] = createTemp();
    this.at = 0n; // where the next chunk goes
    try {
      this.append(start);
    } catch (e) {
      this.abort();
      throw e;
    }
    this.start = this.at;
  }

  // Bytes written after `start`.
  get size() {
    return this.at - this.start;
  }

  check() {
    if (this.file === undefined) fail('invalid', 'the writer was already finished');
  }

  append(chunk) {
    this.check();
    try {
      writeAt(this.file, chunk, this.at);
    } catch (e) {
      fail('internal', `writing ${this.temp}: ${code(e)}`);
    }
    this.at += BigInt(chunk.length);
  }

  // Overwrites the first bytes with `start` (known only now), then renames into place.
  commit(start = new Uint8Array()) {
    this.check();
    const file = this.file;
    this.file = undefined;
    try {
      writeAt(file, start, 0n);
    } catch (e) {
      removeFile(this.temp);
      fail('internal', `writing ${this.temp}: ${code(e)}`);
    } finally {
      closeFile(file);
    }
    moveIntoPlace(this.temp, this.path);
  }

  abort() {
    if (this.file === undefined) return; // finished, or aborted already
    closeFile(this.file);
    this.file = undefined;
    try {
      root.unlinkFileAt(this.temp);
    } catch (_) {
      // swept already; a dispose must not throw
    }
  }
}

// ---- artifacts ----

async function sha256(bytes) {
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
}

function headerOf(meta) {
  return new TextEncoder().encode(JSON.stringify({ ...meta, size: Number(meta.size), createdAt: Number(meta.createdAt) }));
}

// `[u32 LE header.length + padding][header][padding spaces]`.
function headerBlock(header, room = header.length) {
  const out = new Uint8Array(4 + room).fill(0x20);
  new DataView(out.buffer).setUint32(0, room, true);
  out.set(header, 4);
  return out;
}

function pack(meta, body) {
  const header = headerBlock(headerOf(meta));
  const out = new Uint8Array(header.length + body.length);
  out.set(header, 0);
  out.set(body, header.length);
  return out;
}

// A streamed body's header is padded with spaces, which JSON allows.
function metaOf(header) {
  const m = JSON.parse(new TextDecoder().decode(header));
  return { key: m.key, size: BigInt(m.size), contentType: m.contentType ?? undefined, sha256: m.sha256, createdAt: BigInt(m.createdAt) };
}

function load(key) {
  checkKey(key);
  const data = readFile(pathOf('artifacts', key));
  if (data === undefined) fail('not-found', `artifact ${JSON.stringify(key)}`);
  const length = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
  const meta = metaOf(data.subarray(4, 4 + length));
  const body = data.slice(4 + length);
  if (BigInt(body.length) !== meta.size) fail('internal', `artifact ${JSON.stringify(key)} is damaged`);
  return { meta, body };
}

// The artifact at `key` opened, with its metadata and where its body starts; only the header is
// read. The caller closes `file`.
function openArtifact(key) {
  checkKey(key);
  const file = openFile(pathOf('artifacts', key));
  if (file === undefined) fail('not-found', `artifact ${JSON.stringify(key)}`);
  const damaged = () => fail('internal', `artifact ${JSON.stringify(key)} is damaged`);
  try {
    const prefix = readAt(file, 0n, 4n);
    if (prefix.length !== 4) damaged();
    const length = BigInt(new DataView(prefix.buffer).getUint32(0, true));
    const header = readAt(file, 4n, length);
    if (BigInt(header.length) !== length) damaged();
    const meta = metaOf(header);
    if (file.stat().size - 4n - length !== meta.size) damaged();
    return { file, meta, bodyStart: 4n + length };
  } catch (e) {
    closeFile(file);
    throw e;
  }
}

function headOf(key) {
  const { file, meta } = openArtifact(key);
  closeFile(file);
  return meta;
}

class BodyReader extends RangeReader {}

// An artifact file whose header is written first with room for the final metadata (the widest
// size, SHA-256 and time), then filled in and padded with spaces at `finish`.
class BodyWriter {
  constructor(key, contentType) {
    this.key = key;
    this.contentType = contentType;
    this.room = headerOf({ key, size: MAX_U64, contentType, sha256: '0'.repeat(64), createdAt: MAX_U64 }).length;
    this.file = new TempFile(pathOf('artifacts', key), headerBlock(new Uint8Array(), this.room));
  }

  write(chunk) {
    const bytes = new Uint8Array(chunk);
    this.file.append(bytes);
  }

  // The host hashes what it wrote and hands the digest over.
  finish(sha256) {
    this.file.check();
    const meta = { key: this.key, size: this.file.size, contentType: this.contentType, sha256, createdAt: BigInt(Date.now()) };
    this.file.commit(headerBlock(headerOf(meta), this.room));
    return meta;
  }

  // The host dropped the writer: unfinished, it leaves nothing behind.
  [Symbol.dispose]() {
    this.file.abort();
  }
}

export const plugin = {
  // Called after `init`, and before it when the host only inspects the component: it must not
  // depend on `init` having run.
  describe() {
    return { name: 'javascript-origin', version: '0.2.0', stateful: false, maxKeyBytes: undefined };
  },
  init(config) {
    rootPath = new Map(config).get('root') ?? rootPath;
    const found = getDirectories().find(([, path]) => path === rootPath);
    if (!found) fail('unavailable', `${rootPath} is not a preopened directory (grant it in the manifest's dirs)`);
    root = found[0];
    instanceId = hex(crypto.getRandomValues(new Uint8Array(8)));
    makeDirs('.tmp');
    sweepTemp();
  },
};

export const artifacts = {
  BodyReader,
  BodyWriter,
  async put(key, body, contentType) {
    checkKey(key);
    const data = new Uint8Array(body);
    const meta = { key, size: BigInt(data.length), contentType, sha256: await sha256(data), createdAt: BigInt(Date.now()) };
    writeAtomic(pathOf('artifacts', key), pack(meta, data));
    return meta;
  },
  get(key) {
    return load(key);
  },
  head(key) {
    return headOf(key);
  },
  list(prefix, cursor, limit) {
    const max = limit === 0 ? 100 : Math.min(limit, 1000);
    const keys = walk('artifacts', prefix).filter((k) => cursor === undefined || compare(k, cursor) > 0);
    const page = keys.slice(0, max);
    return { items: page.map(headOf), nextCursor: keys.length > max ? page[page.length - 1] : undefined };
  },
  getUrl(key, _expiresInSecs) {
    headOf(key);
    return undefined;
  },
  delete(key) {
    checkKey(key);
    removeFile(pathOf('artifacts', key));
  },
  openRead(key, offset, len) {
    const { file, meta, bodyStart } = openArtifact(key);
    const [start, end] = byteRange(meta.size, offset, len);
    return [meta, new BodyReader(`artifact ${JSON.stringify(key)}`, file, bodyStart + start, bodyStart + end)];
  },
  openWrite(key, contentType, _sizeHint) {
    checkKey(key);
    return new BodyWriter(key, contentType);
  },
};

function runPath(run, name) {
  checkRun(run);
  checkKey(name);
  return pathOf(`runs/${encode(run)}`, name);
}

class FileReader extends RangeReader {}

class FileWriter {
  constructor(path) {
    this.file = new TempFile(path);
  }

  write(chunk) {
    this.file.append(new Uint8Array(chunk));
  }

  finish() {
    this.file.commit();
    return this.file.size;
  }

  // The host dropped the writer: unfinished, it leaves nothing behind.
  [Symbol.dispose]() {
    this.file.abort();
  }
}

export const runnerArtifacts = {
  FileReader,
  FileWriter,
  read(run, name) {
    const data = readFile(runPath(run, name));
    if (data === undefined) fail('not-found', `runner artifact ${JSON.stringify(name)} of run ${JSON.stringify(run)}`);
    return data;
  },
  write(run, name, data) {
    writeAtomic(runPath(run, name), new Uint8Array(data));
  },
  remove(run, name) {
    removeFile(runPath(run, name));
  },
  list(run, prefix) {
    checkRun(run);
    return walk(`runs/${encode(run)}`, prefix);
  },
  listRuns(cursor, limit) {
    const max = limit === 0 ? 100 : Math.min(limit, 1000);
    // A run whose files were all removed keeps its directory: only runs with a file count.
    const candidates = runIds('runs', '')
      .filter((r) => cursor === undefined || compare(r, cursor) > 0)
      .sort(compare);
    const runs = [];
    for (const run of candidates) {
      if (runs.length > max) break;
      if (hasFiles(`runs/${encode(run)}`)) runs.push(run);
    }
    const page = runs.slice(0, max);
    return { runs: page, nextCursor: runs.length > max ? page[page.length - 1] : undefined };
  },
  openRead(run, name, offset, len) {
    const path = runPath(run, name);
    const file = openFile(path);
    if (file === undefined) fail('not-found', `runner artifact ${JSON.stringify(name)} of run ${JSON.stringify(run)}`);
    const size = file.stat().size;
    const [start, end] = byteRange(size, offset, len);
    return [size, new FileReader(`runner artifact ${JSON.stringify(name)} of run ${JSON.stringify(run)}`, file, start, end)];
  },
  openWrite(run, name, _sizeHint) {
    return new FileWriter(runPath(run, name));
  },
};

// A storehost origin in JavaScript: gateway artifacts and runner artifacts in its preopened
// directory, built with componentize-js (see build.sh).
//
// Layout under the root (`config.root`, default `/data`): `artifacts/<seg>/.../<last>=` and
// `runs/<run>/<seg>/.../<last>=`, every segment percent-encoded. An artifact file is
// `[u32 LE header length][metadata JSON][body]`; writes go to `.tmp/` and are renamed into place.
//
// WIT to JavaScript: records are objects with camelCase fields, u64 is BigInt, option<T> is
// T or undefined, a variant is { tag, val }, an error result is thrown, and WASI calls throw
// an error whose `payload` is the error code.

import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';

let rootPath = '/data';
let root = null;
let counter = 0;

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

function encode(segment) {
  const e = encodeURIComponent(segment).replace(/[!'()*~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
  return e.startsWith('.') ? '%2E' + e.slice(1) : e;
}

function pathOf(base, key) {
  const segments = key.split('/').map(encode);
  segments[segments.length - 1] += '=';
  return `${base}/${segments.join('/')}`;
}

// ---- files, through WASI descriptors relative to the preopened root ----

function readFile(path) {
  let file;
  try {
    file = root.openAt({}, path, {}, { read: true });
  } catch (e) {
    const c = code(e);
    if (c === 'no-entry' || c === 'not-directory') return undefined;
    fail('internal', `reading ${path}: ${c}`);
  }
  const size = file.stat().size;
  const chunks = [];
  let offset = 0n;
  while (offset < size) {
    const [data, end] = file.read(size - offset, offset);
    if (data.length === 0) break;
    chunks.push(data);
    offset += BigInt(data.length);
    if (end) break;
  }
  const out = new Uint8Array(Number(offset));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
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

function writeAtomic(path, data) {
  counter += 1;
  const temp = `.tmp/${Date.now()}-${counter}-${Math.floor(Math.random() * 1e9)}`;
  const file = root.openAt({}, temp, { create: true, truncate: true }, { write: true });
  let offset = 0;
  while (offset < data.length) {
    offset += Number(file.write(data.subarray(offset), BigInt(offset)));
  }
  makeDirs(path.slice(0, path.lastIndexOf('/')));
  root.renameAt(temp, root, path);
}

function removeFile(path) {
  try {
    root.unlinkFileAt(path);
  } catch (e) {
    const c = code(e);
    if (c !== 'no-entry' && c !== 'not-directory') fail('internal', `removing ${path}: ${c}`);
  }
}

function walk(base, prefix) {
  const keys = [];
  const visit = (dir, parts) => {
    let entries;
    try {
      entries = root.openAt({}, dir, { directory: true }, { read: true }).readDirectory();
    } catch (e) {
      if (code(e) === 'no-entry') return;
      fail('internal', `listing ${dir}: ${code(e)}`);
    }
    for (let entry = entries.readDirectoryEntry(); entry !== undefined; entry = entries.readDirectoryEntry()) {
      if (entry.type === 'directory') {
        visit(`${dir}/${entry.name}`, [...parts, decodeURIComponent(entry.name)]);
      } else if (entry.name.endsWith('=')) {
        const key = [...parts, decodeURIComponent(entry.name.slice(0, -1))].join('/');
        if (key.startsWith(prefix)) keys.push(key);
      }
    }
  };
  visit(base, []);
  return keys.sort(compare);
}

// ---- artifacts ----

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function pack(meta, body) {
  const header = new TextEncoder().encode(
    JSON.stringify({ ...meta, size: Number(meta.size), createdAt: Number(meta.createdAt) }),
  );
  const out = new Uint8Array(4 + header.length + body.length);
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 4);
  out.set(body, 4 + header.length);
  return out;
}

function load(key) {
  checkKey(key);
  const data = readFile(pathOf('artifacts', key));
  if (data === undefined) fail('not-found', `artifact ${JSON.stringify(key)}`);
  const length = new DataView(data.buffer, data.byteOffset).getUint32(0, true);
  const m = JSON.parse(new TextDecoder().decode(data.subarray(4, 4 + length)));
  const meta = { key: m.key, size: BigInt(m.size), contentType: m.contentType ?? undefined, sha256: m.sha256, createdAt: BigInt(m.createdAt) };
  const body = data.slice(4 + length);
  if (BigInt(body.length) !== meta.size) fail('internal', `artifact ${JSON.stringify(key)} is damaged`);
  return { meta, body };
}

export const plugin = {
  describe() {
    return { name: 'javascript-origin', version: '0.1.0', stateful: false };
  },
  init(config) {
    rootPath = new Map(config).get('root') ?? rootPath;
    const found = getDirectories().find(([, path]) => path === rootPath);
    if (!found) fail('unavailable', `${rootPath} is not a preopened directory (grant it in the manifest's dirs)`);
    root = found[0];
    makeDirs('.tmp');
  },
};

export const artifacts = {
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
    return load(key).meta;
  },
  list(prefix, cursor, limit) {
    const max = limit === 0 ? 100 : Math.min(limit, 1000);
    const keys = walk('artifacts', prefix).filter((k) => cursor === undefined || compare(k, cursor) > 0);
    const page = keys.slice(0, max);
    return { items: page.map((k) => load(k).meta), nextCursor: keys.length > max ? page[page.length - 1] : undefined };
  },
  getUrl(key, _expiresInSecs) {
    load(key);
    return undefined;
  },
  delete(key) {
    checkKey(key);
    removeFile(pathOf('artifacts', key));
  },
};

function runPath(run, name) {
  checkRun(run);
  checkKey(name);
  return pathOf(`runs/${encode(run)}`, name);
}

export const runnerArtifacts = {
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
};

// A storehost origin in JavaScript: gateway artifacts and runner artifacts, kept in the
// instance (describe() says stateful, so the host runs one instance). Built with
// componentize-js against the `storehost:origin/blob-origin` world (see build.sh).
//
// WIT to JavaScript: records are objects with camelCase fields, u64 is BigInt, option<T> is
// T or undefined, a variant is { tag, val }, and an error result is thrown.

const blobs = new Map(); // key -> { meta, body }
const runs = new Map(); // run -> Map(name -> Uint8Array)

function fail(tag, val) {
  // componentize-js turns a thrown { payload } into the `err` of a result.
  const error = new Error(`${tag}: ${val}`);
  error.payload = { tag, val };
  throw error;
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

// Byte order of UTF-8 equals code point order; JavaScript compares UTF-16 code units, which
// differ above U+FFFF, so compare code points.
function compare(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function lookup(key) {
  checkKey(key);
  const found = blobs.get(key);
  if (!found) fail('not-found', `artifact ${JSON.stringify(key)}`);
  return found;
}

export const plugin = {
  describe() {
    return { name: 'javascript-origin', version: '0.1.0', stateful: true };
  },
  init(_config) {},
};

export const artifacts = {
  async put(key, body, contentType) {
    checkKey(key);
    const copy = new Uint8Array(body);
    const meta = { key, size: BigInt(copy.length), contentType, sha256: await sha256(copy), createdAt: BigInt(Date.now()) };
    blobs.set(key, { meta, body: copy });
    return meta;
  },
  get(key) {
    const { meta, body } = lookup(key);
    return { meta, body };
  },
  head(key) {
    return lookup(key).meta;
  },
  list(prefix, cursor, limit) {
    const max = limit === 0 ? 100 : Math.min(limit, 1000);
    const keys = [...blobs.keys()]
      .filter((k) => k.startsWith(prefix) && (cursor === undefined || compare(k, cursor) > 0))
      .sort(compare);
    const page = keys.slice(0, max);
    return { items: page.map((k) => blobs.get(k).meta), nextCursor: keys.length > max ? page[page.length - 1] : undefined };
  },
  getUrl(key, _expiresInSecs) {
    lookup(key);
    return undefined;
  },
  delete(key) {
    checkKey(key);
    blobs.delete(key);
  },
};

export const runnerArtifacts = {
  read(run, name) {
    checkRun(run);
    checkKey(name);
    const data = runs.get(run)?.get(name);
    if (data === undefined) fail('not-found', `runner artifact ${JSON.stringify(name)} of run ${JSON.stringify(run)}`);
    return data;
  },
  write(run, name, data) {
    checkRun(run);
    checkKey(name);
    if (!runs.has(run)) runs.set(run, new Map());
    runs.get(run).set(name, new Uint8Array(data));
  },
  remove(run, name) {
    checkRun(run);
    checkKey(name);
    runs.get(run)?.delete(name);
  },
  list(run, prefix) {
    checkRun(run);
    return [...(runs.get(run)?.keys() ?? [])].filter((n) => n.startsWith(prefix)).sort(compare);
  },
};

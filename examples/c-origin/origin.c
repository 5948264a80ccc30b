/*
 * A storehost origin in C: gateway artifacts and runner files, with the 0.2.1 body interfaces
 * (`artifact-bodies`, `runner-bodies`), for the world `storehost:origin/blob-origin-bodies`.
 *
 * It keeps its data in memory, in its instance: `describe()` says `stateful`, so the host runs
 * exactly one instance of it, and the data lasts as long as that instance (a restart of the
 * host, or a trap, starts from nothing). Its one setting, `max_body` in the manifest's
 * `config`, bounds a body (default 64MiB, at most 256MiB).
 *
 * build.sh builds it: `wit-bindgen c` writes the bindings (blob_origin_bodies.h and .c, and an
 * object holding the world's type), `zig cc` compiles them with this file for wasm32-wasi as a
 * reactor, and `wasm-tools component new` turns the module into a component, adapting its
 * WASI preview1 imports (wasi-libc's) to WASI 0.2.
 *
 * How the bindings hand memory over: an exported function owns its arguments (it frees them or
 * keeps them) and returns what it allocated with malloc, which the bindings free once the host
 * has copied it out; a string or list of length 0 is never freed, so none is allocated for it.
 * A function returns true with its result in `ret`, or false with a `store-error` in `err`.
 *
 * Bodies are reference-counted blobs. A reader holds the blob it was opened on, so it yields
 * that version whole, whatever is written or deleted afterwards. A writer gathers its chunks in
 * a buffer of its own and stores them only at `finish`: a writer the host drops unfinished (its
 * destructor frees the buffer) leaves nothing.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob_origin_bodies.h"

typedef blob_origin_bodies_string_t string_t;
typedef blob_origin_bodies_list_u8_t bytes_t;
typedef blob_origin_bodies_option_list_u8_t option_bytes_t;
typedef storehost_origin_types_store_error_t store_error_t;
typedef exports_storehost_origin_artifacts_artifact_meta_t artifact_meta_t;
typedef exports_storehost_origin_artifacts_body_reader_t body_reader_t;
typedef exports_storehost_origin_artifacts_body_writer_t body_writer_t;
typedef exports_storehost_origin_runner_artifacts_file_reader_t file_reader_t;
typedef exports_storehost_origin_runner_artifacts_file_writer_t file_writer_t;

#define NOT_FOUND STOREHOST_ORIGIN_TYPES_STORE_ERROR_NOT_FOUND
#define INVALID STOREHOST_ORIGIN_TYPES_STORE_ERROR_INVALID

/* The contract's limits: key and id lengths, and list pages (0 asks for the default). */
#define MAX_KEY_BYTES 1024
#define MAX_RUN_BYTES 256
#define DEFAULT_PAGE 100
#define MAX_PAGE 1000

#define DEFAULT_MAX_BODY ((size_t)64 << 20)
#define LARGEST_MAX_BODY ((size_t)256 << 20)

/* The longest body this origin stores (config `max_body`). */
static size_t max_body = DEFAULT_MAX_BODY;

/* ---- memory ---- */

/* Running out of memory traps the call; the host then starts a fresh instance. */
static void *xmalloc(size_t size) {
    void *p = malloc(size ? size : 1);
    if (!p) abort();
    return p;
}

/* A copy of `len` bytes, as the bindings return one: NULL when empty. */
static uint8_t *copy_bytes(const uint8_t *bytes, size_t len) {
    if (len == 0) return NULL;
    uint8_t *copy = xmalloc(len);
    memcpy(copy, bytes, len);
    return copy;
}

static string_t copy_string(const string_t *s) {
    return (string_t){copy_bytes(s->ptr, s->len), s->len};
}

/* Takes a string the bindings handed over: the caller owns it now, and `s` is left empty (so
 * that freeing it does nothing). An empty string is NULL. */
static string_t take_string(string_t *s) {
    string_t taken = {s->len ? s->ptr : NULL, s->len};
    *s = (string_t){NULL, 0};
    return taken;
}

static void free_string(string_t *s) {
    blob_origin_bodies_string_free(s);
}

/* Fills `err` with a store-error of kind `tag` and a printf-style message; returns false, which
 * an exported function returns for an error. */
static bool fail(store_error_t *err, uint8_t tag, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int len = vsnprintf(NULL, 0, format, args);
    va_end(args);
    char *message = xmalloc((size_t)len + 1);
    va_start(args, format);
    vsnprintf(message, (size_t)len + 1, format, args);
    va_end(args);
    err->tag = tag;
    /* Every case of `store-error` holds a string, in the same place. */
    err->val.invalid = (string_t){(uint8_t *)message, (size_t)len};
    return false;
}

/* Formats a string for "%.*s": its length as an int, then its bytes. */
#define SHOW(s) (int)(s)->len, (const char *)(s)->ptr

/* ---- names ---- */

/* The contract's rule for artifact keys and runner file names: 1 to 1024 bytes of UTF-8 (the
 * host checks that a string is UTF-8), `/`-separated, with no empty, `.` or `..` segment, no
 * NUL and no leading `/`. `what` names the value in the message. */
static bool check_key(const string_t *key, const char *what, store_error_t *err) {
    if (key->len == 0 || key->len > MAX_KEY_BYTES)
        return fail(err, INVALID, "a %s must be 1 to %d bytes, got %zu", what, MAX_KEY_BYTES, key->len);
    if (memchr(key->ptr, '\0', key->len))
        return fail(err, INVALID, "a %s must not contain NUL", what);
    size_t start = 0;
    for (size_t i = 0; i <= key->len; i++) {
        if (i < key->len && key->ptr[i] != '/') continue;
        const uint8_t *segment = key->ptr + start;
        size_t len = i - start;
        if (len == 0 || (len == 1 && segment[0] == '.') || (len == 2 && segment[0] == '.' && segment[1] == '.'))
            return fail(err, INVALID, "%s \"%.*s\" has a leading '/' or an empty, '.' or '..' segment", what, SHOW(key));
        start = i + 1;
    }
    return true;
}

/* A run is one path segment: 1 to 256 bytes, no `/`, no NUL, not `.` or `..`. */
static bool check_run(const string_t *run, store_error_t *err) {
    if (run->len == 0 || run->len > MAX_RUN_BYTES)
        return fail(err, INVALID, "a run must be 1 to %d bytes, got %zu", MAX_RUN_BYTES, run->len);
    if (memchr(run->ptr, '\0', run->len))
        return fail(err, INVALID, "a run must not contain NUL");
    bool dots = (run->len == 1 && run->ptr[0] == '.') || (run->len == 2 && run->ptr[0] == '.' && run->ptr[1] == '.');
    if (dots || memchr(run->ptr, '/', run->len))
        return fail(err, INVALID, "run \"%.*s\" is not one path segment (no '/', not '.' or '..')", SHOW(run));
    return true;
}

static bool check_body_size(uint64_t size, store_error_t *err) {
    if (size > max_body)
        return fail(err, INVALID, "a body of %llu bytes is over this origin's limit of %zu bytes (config max_body)",
                    (unsigned long long)size, max_body);
    return true;
}

/* Byte order, the order of every listing: memcmp, then the shorter first. */
static int compare(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len) {
    size_t common = a_len < b_len ? a_len : b_len;
    int c = common ? memcmp(a, b, common) : 0;
    if (c != 0) return c;
    return (a_len > b_len) - (a_len < b_len);
}

static bool starts_with(const string_t *s, const uint8_t *prefix, size_t len) {
    return s->len >= len && (len == 0 || memcmp(s->ptr, prefix, len) == 0);
}

/* ---- SHA-256 (FIPS 180-4), for `put`: a streamed body's digest comes from the host ---- */

static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
}

/* Folds one 64-byte block into the state `h`. */
static void sha256_block(uint32_t h[8], const uint8_t block[64]) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 | (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i];
        uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

/* The SHA-256 of `len` bytes as 64 lower-case hex digits and a NUL. */
static void sha256_hex(const uint8_t *data, size_t len, char out[65]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t whole = len - len % 64;
    for (size_t at = 0; at < whole; at += 64) sha256_block(h, data + at);
    /* The rest, the bit 1, zeros, and the length in bits (big-endian): one block or two. */
    uint8_t tail[128] = {0};
    size_t rest = len - whole;
    if (rest) memcpy(tail, data + whole, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t at = 0; at < tail_len; at += 64) sha256_block(h, tail + at);
    for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", h[i]);
}

static bool is_sha256_hex(const string_t *s) {
    if (s->len != 64) return false;
    for (size_t i = 0; i < 64; i++)
        if (!((s->ptr[i] >= '0' && s->ptr[i] <= '9') || (s->ptr[i] >= 'a' && s->ptr[i] <= 'f'))) return false;
    return true;
}

static uint64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* ---- the store: two tables of entries sorted by key ---- */

/* A body, shared by the entry that holds it and the readers opened on it. */
typedef struct {
    size_t refs;
    uint8_t *bytes; /* NULL when empty */
    size_t len;
} blob_t;

/* Makes a blob of `bytes` (malloc'd, or NULL when `len` is 0), which it takes. */
static blob_t *blob_new(uint8_t *bytes, size_t len) {
    blob_t *blob = xmalloc(sizeof *blob);
    *blob = (blob_t){1, bytes, len};
    return blob;
}

static void blob_release(blob_t *blob) {
    if (blob && --blob->refs == 0) {
        free(blob->bytes);
        free(blob);
    }
}

/* An artifact (its metadata and body), or a runner file (its key and body only). */
typedef struct {
    /* An artifact's key; a runner file's run, a NUL and its name (NUL is in neither, so the
     * files sort by run, then by name, in byte order). */
    string_t key;
    blob_t *body;
    bool has_content_type;
    string_t content_type;
    char sha256[65];
    uint64_t created_at;
} entry_t;

typedef struct {
    entry_t *items;
    size_t len, cap;
} table_t;

static table_t artifacts;
static table_t runner_files;

static void entry_free(entry_t *entry) {
    free_string(&entry->key);
    free_string(&entry->content_type);
    blob_release(entry->body);
}

/* The index of the first entry whose key is not below `key`. */
static size_t lower_bound(const table_t *table, const uint8_t *key, size_t len) {
    size_t lo = 0, hi = table->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (compare(table->items[mid].key.ptr, table->items[mid].key.len, key, len) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* The index of the first entry whose key is above `key`. */
static size_t upper_bound(const table_t *table, const uint8_t *key, size_t len) {
    size_t i = lower_bound(table, key, len);
    if (i < table->len && compare(table->items[i].key.ptr, table->items[i].key.len, key, len) == 0) i++;
    return i;
}

static entry_t *find(const table_t *table, const string_t *key) {
    size_t i = lower_bound(table, key->ptr, key->len);
    if (i < table->len && compare(table->items[i].key.ptr, table->items[i].key.len, key->ptr, key->len) == 0)
        return &table->items[i];
    return NULL;
}

/* Puts `entry` (whose memory it takes) in place of the entry of its key, or inserts it. */
static entry_t *table_put(table_t *table, entry_t entry) {
    size_t i = lower_bound(table, entry.key.ptr, entry.key.len);
    if (i < table->len && compare(table->items[i].key.ptr, table->items[i].key.len, entry.key.ptr, entry.key.len) == 0) {
        entry_free(&table->items[i]);
        table->items[i] = entry;
        return &table->items[i];
    }
    if (table->len == table->cap) {
        table->cap = table->cap ? 2 * table->cap : 64;
        table->items = realloc(table->items, table->cap * sizeof *table->items);
        if (!table->items) abort();
    }
    memmove(&table->items[i + 1], &table->items[i], (table->len - i) * sizeof *table->items);
    table->items[i] = entry;
    table->len++;
    return &table->items[i];
}

/* Removes the entry of `key`, if there is one. */
static void table_remove(table_t *table, const string_t *key) {
    entry_t *entry = find(table, key);
    if (!entry) return;
    size_t i = (size_t)(entry - table->items);
    entry_free(entry);
    memmove(&table->items[i], &table->items[i + 1], (table->len - i - 1) * sizeof *table->items);
    table->len--;
}

/* ---- readers and writers, shared by artifacts and runner files ---- */

/* Bytes [next, end) of a blob, read a chunk per call. The blob is the version that was opened,
 * held until the range is read or the reader dropped. */
typedef struct {
    blob_t *blob;
    size_t next, end;
} range_t;

/* `len` bytes (NULL: to the end) of `blob` from `offset`, clamped to the blob. */
static range_t range_open(blob_t *blob, uint64_t offset, const uint64_t *len) {
    size_t start = offset < blob->len ? (size_t)offset : blob->len;
    size_t end = !len || *len > blob->len - start ? blob->len : start + (size_t)*len;
    blob->refs++;
    return (range_t){blob, start, end};
}

static void range_close(range_t *range) {
    blob_release(range->blob);
    range->blob = NULL;
}

/* The next chunk of at most `max_len` bytes, never empty; none at the end. */
static void range_read(range_t *range, uint32_t max_len, option_bytes_t *ret) {
    size_t left = range->next < range->end ? range->end - range->next : 0;
    size_t len = left < max_len ? left : max_len;
    if (len == 0) {
        if (left == 0) range_close(range);
        *ret = (option_bytes_t){.is_some = false};
        return;
    }
    *ret = (option_bytes_t){.is_some = true, .val = {copy_bytes(range->blob->bytes + range->next, len), len}};
    range->next += len;
    if (range->next == range->end) range_close(range);
}

/* Chunks gathered by a writer, seen by no one until it finishes. */
typedef struct {
    uint8_t *bytes;
    size_t len, cap;
    bool finished;
} buffer_t;

/* Appends `chunk` (which it frees). */
static bool buffer_append(buffer_t *buffer, bytes_t *chunk, store_error_t *err) {
    bool ok = true;
    if (buffer->finished) {
        ok = fail(err, INVALID, "the writer was already finished");
    } else if (chunk->len > max_body - buffer->len) {
        ok = fail(err, INVALID, "the body grew over this origin's limit of %zu bytes (config max_body)", max_body);
    } else if (chunk->len > 0) {
        if (buffer->len + chunk->len > buffer->cap) {
            size_t cap = buffer->cap ? 2 * buffer->cap : (size_t)1 << 20;
            if (cap < buffer->len + chunk->len) cap = buffer->len + chunk->len;
            if (cap > max_body) cap = max_body;
            buffer->bytes = realloc(buffer->bytes, cap);
            if (!buffer->bytes) abort();
            buffer->cap = cap;
        }
        memcpy(buffer->bytes + buffer->len, chunk->ptr, chunk->len);
        buffer->len += chunk->len;
    }
    blob_origin_bodies_list_u8_free(chunk);
    return ok;
}

/* The bytes written, as a blob; the buffer is left finished and empty. */
static blob_t *buffer_finish(buffer_t *buffer) {
    uint8_t *bytes = NULL;
    if (buffer->len > 0) {
        bytes = realloc(buffer->bytes, buffer->len); /* gives back the spare room */
        if (!bytes) bytes = buffer->bytes;
    } else {
        free(buffer->bytes);
    }
    blob_t *blob = blob_new(bytes, buffer->len);
    *buffer = (buffer_t){.finished = true};
    return blob;
}

static void buffer_free(buffer_t *buffer) {
    free(buffer->bytes);
    *buffer = (buffer_t){.finished = true};
}

static uint32_t page_size(uint32_t limit) {
    return limit == 0 ? DEFAULT_PAGE : limit > MAX_PAGE ? MAX_PAGE : limit;
}

/* ---- plugin ---- */

void exports_storehost_origin_plugin_describe(exports_storehost_origin_plugin_plugin_info_t *ret) {
    blob_origin_bodies_string_dup(&ret->name, "c-origin");
    blob_origin_bodies_string_dup(&ret->version, "0.2.1");
    ret->stateful = true; /* the data is in this instance: the host must run only this one */
    ret->max_key_bytes.is_some = false;
}

static bool equals(const string_t *s, const char *text) {
    return compare(s->ptr, s->len, (const uint8_t *)text, strlen(text)) == 0;
}

/* A size as the manifest's text gives it, within 1 byte and LARGEST_MAX_BODY: a number of
 * bytes (`1048576`), or of KiB, MiB or GiB (`64MiB`). */
static bool parse_size(const string_t *value, size_t *size) {
    size_t digits = 0;
    unsigned long long n = 0;
    for (; digits < value->len && value->ptr[digits] >= '0' && value->ptr[digits] <= '9'; digits++) {
        n = n * 10 + (value->ptr[digits] - '0');
        if (n > LARGEST_MAX_BODY) return false;
    }
    string_t unit = {value->ptr + digits, value->len - digits};
    unsigned long long scale = unit.len == 0 || equals(&unit, "B") ? 1
                             : equals(&unit, "KiB")                ? 1ull << 10
                             : equals(&unit, "MiB")                ? 1ull << 20
                             : equals(&unit, "GiB")                ? 1ull << 30
                                                                   : 0;
    if (digits == 0 || scale == 0 || n * scale == 0 || n * scale > LARGEST_MAX_BODY) return false;
    *size = (size_t)(n * scale);
    return true;
}

/* The manifest's `config` table: `max_body`, a size. */
bool exports_storehost_origin_plugin_init(blob_origin_bodies_list_tuple2_string_string_t *config, store_error_t *err) {
    bool ok = true;
    for (size_t i = 0; ok && i < config->len; i++) {
        const string_t *key = &config->ptr[i].f0, *value = &config->ptr[i].f1;
        if (!equals(key, "max_body"))
            ok = fail(err, INVALID, "config \"%.*s\" is not a setting of this origin (it has max_body)", SHOW(key));
        else if (!parse_size(value, &max_body))
            ok = fail(err, INVALID, "config max_body must be a size from 1 byte to 256MiB (a number of bytes, or of KiB, MiB or GiB), got \"%.*s\"", SHOW(value));
    }
    blob_origin_bodies_list_tuple2_string_string_free(config);
    if (ok) {
        char message[80];
        snprintf(message, sizeof message, "c origin ready: data in memory, bodies up to %zu bytes", max_body);
        string_t text;
        blob_origin_bodies_string_set(&text, message);
        storehost_host_log_log(STOREHOST_HOST_LOG_LEVEL_DEBUG, &text);
    }
    return ok;
}

/* ---- artifacts ---- */

struct exports_storehost_origin_artifacts_body_reader_t {
    range_t range;
};

struct exports_storehost_origin_artifacts_body_writer_t {
    string_t key;
    bool has_content_type;
    string_t content_type;
    buffer_t buffer;
};

/* The metadata of an artifact, as a result (every string a copy). */
static artifact_meta_t meta_of(const entry_t *entry) {
    artifact_meta_t meta = {0};
    meta.key = copy_string(&entry->key);
    meta.size = entry->body->len;
    meta.content_type.is_some = entry->has_content_type;
    if (entry->has_content_type) meta.content_type.val = copy_string(&entry->content_type);
    meta.sha256 = (string_t){copy_bytes((const uint8_t *)entry->sha256, 64), 64};
    meta.created_at = entry->created_at;
    return meta;
}

/* Stores the artifact at `key` (all of whose memory it takes) and returns its metadata. */
static artifact_meta_t store_artifact(string_t key, bool has_content_type, string_t content_type, blob_t *body, const char *sha256) {
    entry_t entry = {.key = key, .body = body, .has_content_type = has_content_type, .content_type = content_type, .created_at = now_ms()};
    memcpy(entry.sha256, sha256, 64);
    entry.sha256[64] = '\0';
    return meta_of(table_put(&artifacts, entry));
}

/* The artifact at `key`, or NULL with `not-found` or `invalid` in `err`. */
static const entry_t *lookup_artifact(const string_t *key, store_error_t *err) {
    if (!check_key(key, "key", err)) return NULL;
    const entry_t *entry = find(&artifacts, key);
    if (!entry) fail(err, NOT_FOUND, "artifact \"%.*s\"", SHOW(key));
    return entry;
}

bool exports_storehost_origin_artifacts_put(string_t *key, bytes_t *body, string_t *maybe_content_type, artifact_meta_t *ret, store_error_t *err) {
    bool ok = check_key(key, "key", err) && check_body_size(body->len, err);
    if (ok) {
        char sha256[65];
        sha256_hex(body->ptr, body->len, sha256);
        blob_t *blob = blob_new(body->len ? body->ptr : NULL, body->len);
        *body = (bytes_t){NULL, 0}; /* the blob has it */
        string_t content_type = maybe_content_type ? take_string(maybe_content_type) : (string_t){NULL, 0};
        *ret = store_artifact(take_string(key), maybe_content_type != NULL, content_type, blob, sha256);
    }
    free_string(key);
    blob_origin_bodies_list_u8_free(body);
    if (maybe_content_type) free_string(maybe_content_type);
    return ok;
}

bool exports_storehost_origin_artifacts_get(string_t *key, exports_storehost_origin_artifacts_artifact_t *ret, store_error_t *err) {
    const entry_t *entry = lookup_artifact(key, err);
    if (entry) {
        ret->meta = meta_of(entry);
        ret->body = (bytes_t){copy_bytes(entry->body->bytes, entry->body->len), entry->body->len};
    }
    free_string(key);
    return entry != NULL;
}

bool exports_storehost_origin_artifacts_head(string_t *key, artifact_meta_t *ret, store_error_t *err) {
    const entry_t *entry = lookup_artifact(key, err);
    if (entry) *ret = meta_of(entry);
    free_string(key);
    return entry != NULL;
}

/* Keys that start with `prefix`, after `cursor` (the last key of the page before), in byte order. */
bool exports_storehost_origin_artifacts_list(string_t *prefix, string_t *maybe_cursor, uint32_t limit,
                                             exports_storehost_origin_artifacts_artifact_page_t *ret, store_error_t *err) {
    bool ok = !maybe_cursor || check_key(maybe_cursor, "cursor", err);
    if (ok) {
        size_t want = page_size(limit);
        size_t first = lower_bound(&artifacts, prefix->ptr, prefix->len);
        if (maybe_cursor) {
            size_t after = upper_bound(&artifacts, maybe_cursor->ptr, maybe_cursor->len);
            if (after > first) first = after;
        }
        size_t end = first;
        while (end < artifacts.len && end - first < want && starts_with(&artifacts.items[end].key, prefix->ptr, prefix->len)) end++;
        size_t count = end - first;
        *ret = (exports_storehost_origin_artifacts_artifact_page_t){0};
        ret->items.ptr = count ? xmalloc(count * sizeof *ret->items.ptr) : NULL;
        ret->items.len = count;
        for (size_t i = 0; i < count; i++) ret->items.ptr[i] = meta_of(&artifacts.items[first + i]);
        /* A further page when the next key is under the prefix too. */
        if (count > 0 && end < artifacts.len && starts_with(&artifacts.items[end].key, prefix->ptr, prefix->len)) {
            ret->next_cursor.is_some = true;
            ret->next_cursor.val = copy_string(&artifacts.items[end - 1].key);
        }
    }
    free_string(prefix);
    if (maybe_cursor) free_string(maybe_cursor);
    return ok;
}

/* No URL of its own: the host signs one. */
bool exports_storehost_origin_artifacts_get_url(string_t *key, uint32_t expires_in_secs, blob_origin_bodies_option_string_t *ret, store_error_t *err) {
    (void)expires_in_secs;
    const entry_t *entry = lookup_artifact(key, err);
    if (entry) ret->is_some = false;
    free_string(key);
    return entry != NULL;
}

bool exports_storehost_origin_artifacts_delete(string_t *key, store_error_t *err) {
    bool ok = check_key(key, "key", err);
    if (ok) table_remove(&artifacts, key);
    free_string(key);
    return ok;
}

bool exports_storehost_origin_artifacts_open_read(string_t *key, uint64_t offset, uint64_t *maybe_len,
                                                  exports_storehost_origin_artifacts_tuple2_artifact_meta_own_body_reader_t *ret, store_error_t *err) {
    const entry_t *entry = lookup_artifact(key, err);
    if (entry) {
        body_reader_t *reader = xmalloc(sizeof *reader);
        reader->range = range_open(entry->body, offset, maybe_len);
        ret->f0 = meta_of(entry);
        ret->f1 = exports_storehost_origin_artifacts_body_reader_new(reader);
    }
    free_string(key);
    return entry != NULL;
}

bool exports_storehost_origin_artifacts_open_write(string_t *key, string_t *maybe_content_type, uint64_t *maybe_size_hint,
                                                   exports_storehost_origin_artifacts_own_body_writer_t *ret, store_error_t *err) {
    bool ok = check_key(key, "key", err) && (!maybe_size_hint || check_body_size(*maybe_size_hint, err));
    if (ok) {
        body_writer_t *writer = xmalloc(sizeof *writer);
        *writer = (body_writer_t){.key = take_string(key), .has_content_type = maybe_content_type != NULL};
        if (maybe_content_type) writer->content_type = take_string(maybe_content_type);
        *ret = exports_storehost_origin_artifacts_body_writer_new(writer);
    }
    free_string(key);
    if (maybe_content_type) free_string(maybe_content_type);
    return ok;
}

bool exports_storehost_origin_artifacts_method_body_reader_read(body_reader_t *self, uint32_t max_len, option_bytes_t *ret, store_error_t *err) {
    (void)err;
    range_read(&self->range, max_len, ret);
    return true;
}

void exports_storehost_origin_artifacts_body_reader_destructor(body_reader_t *reader) {
    range_close(&reader->range);
    free(reader);
}

bool exports_storehost_origin_artifacts_method_body_writer_write(body_writer_t *self, bytes_t *chunk, store_error_t *err) {
    return buffer_append(&self->buffer, chunk, err);
}

/* Stores the body under the SHA-256 the host computed of the chunks it sent. */
bool exports_storehost_origin_artifacts_method_body_writer_finish(body_writer_t *self, string_t *sha256, artifact_meta_t *ret, store_error_t *err) {
    bool ok = true;
    if (self->buffer.finished) ok = fail(err, INVALID, "the writer was already finished");
    else if (!is_sha256_hex(sha256)) ok = fail(err, INVALID, "sha256 must be 64 lower-case hex digits, got \"%.*s\"", SHOW(sha256));
    if (ok) {
        blob_t *body = buffer_finish(&self->buffer);
        string_t content_type = self->has_content_type ? take_string(&self->content_type) : (string_t){NULL, 0};
        *ret = store_artifact(take_string(&self->key), self->has_content_type, content_type, body, (const char *)sha256->ptr);
    }
    free_string(sha256);
    return ok;
}

/* Dropped: a writer that did not finish stored nothing, and its chunks go. */
void exports_storehost_origin_artifacts_body_writer_destructor(body_writer_t *writer) {
    free_string(&writer->key);
    free_string(&writer->content_type);
    buffer_free(&writer->buffer);
    free(writer);
}

/* A body in memory cannot be handed over as a file: it is read through a reader. */
bool exports_storehost_origin_artifact_bodies_open(string_t *key, uint64_t offset, uint64_t *maybe_len,
                                                   exports_storehost_origin_artifact_bodies_tuple2_artifact_meta_body_t *ret, store_error_t *err) {
    exports_storehost_origin_artifacts_tuple2_artifact_meta_own_body_reader_t opened;
    if (!exports_storehost_origin_artifacts_open_read(key, offset, maybe_len, &opened, err)) return false;
    ret->f0 = opened.f0;
    ret->f1.tag = EXPORTS_STOREHOST_ORIGIN_ARTIFACT_BODIES_BODY_READER;
    ret->f1.val.reader = opened.f1;
    return true;
}

/* ---- runner files ---- */

struct exports_storehost_origin_runner_artifacts_file_reader_t {
    range_t range;
};

struct exports_storehost_origin_runner_artifacts_file_writer_t {
    string_t key;
    buffer_t buffer;
};

/* `run`, a NUL and `name`: a key of `runner_files` (`name` may be a prefix of names). */
static string_t join_run(const string_t *run, const string_t *name) {
    string_t key = {xmalloc(run->len + 1 + name->len), run->len + 1 + name->len};
    memcpy(key.ptr, run->ptr, run->len);
    key.ptr[run->len] = '\0';
    if (name->len) memcpy(key.ptr + run->len + 1, name->ptr, name->len);
    return key;
}

/* The key of the file `name` of `run`, or false with `invalid` in `err`. */
static bool file_key(const string_t *run, const string_t *name, string_t *key, store_error_t *err) {
    if (!check_run(run, err) || !check_key(name, "file name", err)) return false;
    *key = join_run(run, name);
    return true;
}

/* The file `name` of `run`, or NULL with `not-found` or `invalid` in `err`. */
static const entry_t *lookup_file(const string_t *run, const string_t *name, store_error_t *err) {
    string_t key;
    if (!file_key(run, name, &key, err)) return NULL;
    const entry_t *entry = find(&runner_files, &key);
    free_string(&key);
    if (!entry) fail(err, NOT_FOUND, "file \"%.*s\" of run \"%.*s\"", SHOW(name), SHOW(run));
    return entry;
}

/* The run of a key of `runner_files`: its bytes before the NUL. */
static string_t run_of(const entry_t *entry) {
    const uint8_t *nul = memchr(entry->key.ptr, '\0', entry->key.len);
    return (string_t){entry->key.ptr, (size_t)(nul - entry->key.ptr)};
}

bool exports_storehost_origin_runner_artifacts_read(string_t *run, string_t *name, bytes_t *ret, store_error_t *err) {
    const entry_t *entry = lookup_file(run, name, err);
    if (entry) *ret = (bytes_t){copy_bytes(entry->body->bytes, entry->body->len), entry->body->len};
    free_string(run);
    free_string(name);
    return entry != NULL;
}

bool exports_storehost_origin_runner_artifacts_write(string_t *run, string_t *name, bytes_t *data, store_error_t *err) {
    string_t key;
    bool ok = file_key(run, name, &key, err);
    if (ok && !check_body_size(data->len, err)) {
        free_string(&key);
        ok = false;
    }
    if (ok) {
        table_put(&runner_files, (entry_t){.key = key, .body = blob_new(data->len ? data->ptr : NULL, data->len)});
        *data = (bytes_t){NULL, 0}; /* the blob has it */
    }
    free_string(run);
    free_string(name);
    blob_origin_bodies_list_u8_free(data);
    return ok;
}

bool exports_storehost_origin_runner_artifacts_remove(string_t *run, string_t *name, store_error_t *err) {
    string_t key;
    bool ok = file_key(run, name, &key, err);
    if (ok) {
        table_remove(&runner_files, &key);
        free_string(&key);
    }
    free_string(run);
    free_string(name);
    return ok;
}

/* The names of the files of `run` that start with `prefix`, in byte order. */
bool exports_storehost_origin_runner_artifacts_list(string_t *run, string_t *prefix, blob_origin_bodies_list_string_t *ret, store_error_t *err) {
    bool ok = check_run(run, err);
    if (ok) {
        string_t under = join_run(run, prefix);
        size_t first = lower_bound(&runner_files, under.ptr, under.len), end = first;
        while (end < runner_files.len && starts_with(&runner_files.items[end].key, under.ptr, under.len)) end++;
        ret->len = end - first;
        ret->ptr = ret->len ? xmalloc(ret->len * sizeof *ret->ptr) : NULL;
        for (size_t i = 0; i < ret->len; i++) {
            const string_t *key = &runner_files.items[first + i].key;
            string_t name = {key->ptr + run->len + 1, key->len - run->len - 1};
            ret->ptr[i] = copy_string(&name);
        }
        free_string(&under);
    }
    free_string(run);
    free_string(prefix);
    return ok;
}

/* The runs that have files (a run is only in the table through its files), after `cursor`. */
bool exports_storehost_origin_runner_artifacts_list_runs(string_t *maybe_cursor, uint32_t limit,
                                                         exports_storehost_origin_runner_artifacts_run_page_t *ret, store_error_t *err) {
    bool ok = !maybe_cursor || check_run(maybe_cursor, err);
    if (ok) {
        size_t want = page_size(limit), count = 0;
        *ret = (exports_storehost_origin_runner_artifacts_run_page_t){0};
        string_t *runs = xmalloc(want * sizeof *runs);
        size_t i = maybe_cursor ? lower_bound(&runner_files, maybe_cursor->ptr, maybe_cursor->len) : 0;
        for (; i < runner_files.len; i++) {
            string_t run = run_of(&runner_files.items[i]);
            if (maybe_cursor && compare(run.ptr, run.len, maybe_cursor->ptr, maybe_cursor->len) <= 0) continue;
            if (count > 0 && compare(run.ptr, run.len, runs[count - 1].ptr, runs[count - 1].len) == 0) continue;
            if (count == want) {
                /* A run beyond the page: the page gets a cursor. */
                ret->next_cursor.is_some = true;
                ret->next_cursor.val = copy_string(&runs[count - 1]);
                break;
            }
            runs[count++] = copy_string(&run);
        }
        if (count == 0) {
            free(runs);
            runs = NULL;
        }
        ret->runs = (blob_origin_bodies_list_string_t){runs, count};
    }
    if (maybe_cursor) free_string(maybe_cursor);
    return ok;
}

bool exports_storehost_origin_runner_artifacts_open_read(string_t *run, string_t *name, uint64_t offset, uint64_t *maybe_len,
                                                         exports_storehost_origin_runner_artifacts_tuple2_u64_own_file_reader_t *ret, store_error_t *err) {
    const entry_t *entry = lookup_file(run, name, err);
    if (entry) {
        file_reader_t *reader = xmalloc(sizeof *reader);
        reader->range = range_open(entry->body, offset, maybe_len);
        ret->f0 = entry->body->len;
        ret->f1 = exports_storehost_origin_runner_artifacts_file_reader_new(reader);
    }
    free_string(run);
    free_string(name);
    return entry != NULL;
}

bool exports_storehost_origin_runner_artifacts_open_write(string_t *run, string_t *name, uint64_t *maybe_size_hint,
                                                          exports_storehost_origin_runner_artifacts_own_file_writer_t *ret, store_error_t *err) {
    string_t key;
    bool ok = file_key(run, name, &key, err);
    if (ok && maybe_size_hint && !check_body_size(*maybe_size_hint, err)) {
        free_string(&key);
        ok = false;
    }
    if (ok) {
        file_writer_t *writer = xmalloc(sizeof *writer);
        *writer = (file_writer_t){.key = key};
        *ret = exports_storehost_origin_runner_artifacts_file_writer_new(writer);
    }
    free_string(run);
    free_string(name);
    return ok;
}

bool exports_storehost_origin_runner_artifacts_method_file_reader_read(file_reader_t *self, uint32_t max_len, option_bytes_t *ret, store_error_t *err) {
    (void)err;
    range_read(&self->range, max_len, ret);
    return true;
}

void exports_storehost_origin_runner_artifacts_file_reader_destructor(file_reader_t *reader) {
    range_close(&reader->range);
    free(reader);
}

bool exports_storehost_origin_runner_artifacts_method_file_writer_write(file_writer_t *self, bytes_t *chunk, store_error_t *err) {
    return buffer_append(&self->buffer, chunk, err);
}

bool exports_storehost_origin_runner_artifacts_method_file_writer_finish(file_writer_t *self, uint64_t *ret, store_error_t *err) {
    if (self->buffer.finished) return fail(err, INVALID, "the writer was already finished");
    blob_t *body = buffer_finish(&self->buffer);
    *ret = body->len;
    table_put(&runner_files, (entry_t){.key = take_string(&self->key), .body = body});
    return true;
}

/* Dropped: a writer that did not finish stored nothing, and its chunks go. */
void exports_storehost_origin_runner_artifacts_file_writer_destructor(file_writer_t *writer) {
    free_string(&writer->key);
    buffer_free(&writer->buffer);
    free(writer);
}

/* As `artifact-bodies.open`: the contents are read through a reader. */
bool exports_storehost_origin_runner_bodies_open(string_t *run, string_t *name, uint64_t offset, uint64_t *maybe_len,
                                                 exports_storehost_origin_runner_bodies_tuple2_u64_body_t *ret, store_error_t *err) {
    exports_storehost_origin_runner_artifacts_tuple2_u64_own_file_reader_t opened;
    if (!exports_storehost_origin_runner_artifacts_open_read(run, name, offset, maybe_len, &opened, err)) return false;
    ret->f0 = opened.f0;
    ret->f1.tag = EXPORTS_STOREHOST_ORIGIN_RUNNER_BODIES_BODY_READER;
    ret->f1.val.reader = opened.f1;
    return true;
}

//! Bodies in chunks. A body being written is staged as rows of `upload_chunks` (one per
//! [`CHUNK`] bytes) under an upload id, and `finish` puts them together into the destination's
//! `bytea` in the one transaction that makes it visible: an unfinished upload is never seen, and
//! a writer dropped unfinished deletes its rows. Reads take `substring`s of the stored `bytea`, so
//! a body is never held whole in the plugin.

use std::cell::{Cell, RefCell};

use storehost_plugin_kit::bindings::storehost::host::sql::SqlValue;
use storehost_plugin_kit::{Result, StoreError};

use crate::check_body;
use crate::db::{Db, Row, int, text};

/// Bytes staged per row.
const CHUNK: usize = 1 << 20;

/// A body being staged.
pub struct Upload {
    id: String,
    buffer: RefCell<Vec<u8>>,
    next_seq: Cell<u64>,
    size: Cell<u64>,
    finished: Cell<bool>,
}

impl Upload {
    pub fn start() -> Result<Upload> {
        let row = Db::Pool.query_opt("SELECT md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text)", &[])?;
        let id = Row(row.ok_or_else(|| StoreError::Internal("no upload id".into()))?).text(0)?;
        Ok(Upload { id, buffer: RefCell::new(Vec::new()), next_seq: Cell::new(0), size: Cell::new(0), finished: Cell::new(false) })
    }

    pub fn size(&self) -> u64 {
        self.size.get()
    }

    pub fn write(&self, chunk: &[u8]) -> Result<()> {
        if self.finished.get() {
            return Err(StoreError::Invalid("the writer was already finished".into()));
        }
        let size = self.size.get() + chunk.len() as u64;
        check_body(size as usize)?;
        self.size.set(size);
        let mut buffer = self.buffer.borrow_mut();
        buffer.extend_from_slice(chunk);
        while buffer.len() >= CHUNK {
            let rest = buffer.split_off(CHUNK);
            self.stage(std::mem::replace(&mut *buffer, rest))?;
        }
        Ok(())
    }

    fn stage(&self, bytes: Vec<u8>) -> Result<()> {
        let seq = self.next_seq.get();
        Db::Pool.execute(
            "INSERT INTO {s}.upload_chunks (upload, seq, data) VALUES ($1, $2, $3)",
            &[text(self.id.as_str()), int(seq), SqlValue::Bytes(bytes)],
        )?;
        self.next_seq.set(seq + 1);
        Ok(())
    }

    /// Stages what is left and runs `place`, which moves the staged body into its destination
    /// (`$1` is the upload id; `(SELECT body FROM staged)` is the body), in one transaction with
    /// the deletion of the staged rows.
    pub fn finish(&self, place: &str, params: Vec<SqlValue>) -> Result<()> {
        if self.finished.get() {
            return Err(StoreError::Invalid("the writer was already finished".into()));
        }
        let rest = std::mem::take(&mut *self.buffer.borrow_mut());
        if !rest.is_empty() {
            self.stage(rest)?;
        }
        let tx = crate::db::begin()?;
        let db = Db::Tx(&tx);
        let mut all = vec![text(self.id.as_str())];
        all.extend(params);
        db.execute(
            &format!(
                "WITH staged AS (SELECT coalesce(string_agg(data, ''::bytea ORDER BY seq), ''::bytea) AS body
                                 FROM {{s}}.upload_chunks WHERE upload = $1)
                 {place}"
            ),
            &all,
        )?;
        db.execute("DELETE FROM {s}.upload_chunks WHERE upload = $1", &[text(self.id.as_str())])?;
        crate::db::commit(tx)?;
        self.finished.set(true);
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.finished.get() {
            // Best effort: an upload left by an instance that died is deleted by `init` later.
            let _ = Db::Pool.execute("DELETE FROM {s}.upload_chunks WHERE upload = $1", &[text(self.id.as_str())]);
        }
    }
}

/// A range of a stored `bytea`, read a `substring` at a time. `select` takes `$1` (the offset,
/// 1-based), `$2` (the length) and its own parameters after them, and returns the bytes.
pub struct Ranged {
    select: String,
    params: Vec<SqlValue>,
    next: Cell<u64>,
    end: u64,
}

impl Ranged {
    pub fn new(select: String, params: Vec<SqlValue>, start: u64, end: u64) -> Ranged {
        Ranged { select, params, next: Cell::new(start), end }
    }

    pub fn read(&self, max_len: u32, what: &str) -> Result<Option<Vec<u8>>> {
        let next = self.next.get();
        if next >= self.end || max_len == 0 {
            return Ok(None);
        }
        let len = (self.end - next).min(u64::from(max_len)).min(CHUNK as u64 * 4);
        let mut params = vec![int(next + 1), int(len)];
        params.extend(self.params.iter().cloned());
        let row = Db::Pool.query_opt(&self.select, &params)?;
        let bytes = Row(row.ok_or_else(|| StoreError::Unavailable(format!("{what} changed or was deleted while it was read")))?).take_bytes(0)?;
        if bytes.is_empty() {
            return Err(StoreError::Unavailable(format!("{what} changed while it was read")));
        }
        self.next.set(next + bytes.len() as u64);
        Ok(Some(bytes))
    }
}

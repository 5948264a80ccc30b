//! Bodies in chunks. A body being written is staged as rows of `upload_chunks` (one per
//! [`CHUNK`] bytes) under an upload id, and `finish` puts them together into the destination's
//! `bytea` in the one transaction that makes it visible: an unfinished upload is never seen, and
//! a writer dropped unfinished deletes its rows. Reads take `substring`s of the stored `bytea`, so
//! a body is never held whole in the plugin, and every read of a body sees one version of it
//! ([`Stored::open`]).

use std::cell::{Cell, RefCell};

use storehost_plugin_kit::bindings::storehost::host::sql::{SqlValue, Transaction};
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

/// A range asked for at open up to this size is read with the metadata, in the one statement
/// that finds the row: it is one version by construction, and needs no transaction.
const READ_AT_OPEN: u64 = CHUNK as u64;

/// The most one `substring` of a longer range reads.
const READ_MOST: u64 = 4 * CHUNK as u64;

/// A stored `bytea` column and the row it is in: `SELECT {columns}, <size>, <range> FROM {from}`,
/// where `from` names the table and its `WHERE` clause with `$1`…`$n` standing for `params`.
pub struct Stored<'a> {
    pub columns: &'a str,
    pub column: &'a str,
    pub from: &'a str,
    pub params: Vec<SqlValue>,
}

impl Stored<'_> {
    /// The statement that reads `columns`, the body's size and `substring`s of the body: its
    /// two last parameters are the 1-based position and the length.
    fn select(&self, columns: &str) -> String {
        let n = self.params.len();
        let range = format!("substring({} FROM ${}::int FOR ${}::int)", self.column, n + 1, n + 2);
        let columns = if columns.is_empty() { range } else { format!("{columns}, {range}") };
        format!("SELECT {columns} FROM {}", self.from)
    }

    fn params(&self, from: u64, len: u64) -> Vec<SqlValue> {
        // A `bytea` holds at most 1 GiB, so a position past `int` reads nothing either way.
        let position = from.saturating_add(1).min(i32::MAX as u64);
        let mut params = self.params.clone();
        params.extend([int(position), int(len.min(i32::MAX as u64))]);
        params
    }

    /// Opens `len` bytes (`None`: to the end) from `offset` of the body, with the row's
    /// `columns`; `None` when there is no row.
    ///
    /// The body read is the version of the row that existed at open, whatever is written or
    /// deleted afterwards: a range of up to [`READ_AT_OPEN`] bytes is read with the row in one
    /// statement; a longer one is read inside a read-only `REPEATABLE READ` transaction that the
    /// reader holds (and so one pooled connection) until it is dropped, all of whose statements
    /// see the one snapshot its first statement took.
    pub fn open(&self, offset: u64, len: Option<u64>) -> Result<Option<(Row, BodyRead)>> {
        let Some(found) = self.find(&Db::Pool, offset, len)? else { return Ok(None) };
        if found.end - found.start <= READ_AT_OPEN {
            return Ok(Some((found.row, BodyRead::held(found.bytes, found.end - found.start)?)));
        }
        let tx = crate::db::begin()?;
        Db::Tx(&tx).execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", &[])?;
        // The snapshot is taken here: the row and its body as they are now, which may be a
        // newer version than the one found above.
        let Some(Found { row, start, end, bytes }) = self.find(&Db::Tx(&tx), offset, len)? else { return Ok(None) };
        let next = start + bytes.len() as u64;
        let snapshot = Snapshot { tx, select: self.select(""), params: self.params.clone(), next: Cell::new(next), end };
        Ok(Some((row, BodyRead { pending: RefCell::new(bytes), at: Cell::new(0), snapshot: Some(snapshot) })))
    }

    /// The row, the range `[start, end)` of the body asked for, and its first
    /// [`READ_AT_OPEN`] bytes, in one statement.
    fn find(&self, db: &Db<'_>, offset: u64, len: Option<u64>) -> Result<Option<Found>> {
        let columns = format!("{}, octet_length({})::bigint", self.columns, self.column);
        let ask = len.unwrap_or(u64::MAX).min(READ_AT_OPEN);
        let Some(row) = db.query_opt(&self.select(&columns), &self.params(offset, ask))? else { return Ok(None) };
        let mut row = Row(row);
        let width = row.0.len();
        let size = row.u64(width - 2)?;
        let bytes = row.take_bytes(width - 1)?;
        row.0.truncate(width - 2);
        let start = offset.min(size);
        let end = len.map_or(size, |len| start.saturating_add(len).min(size));
        Ok(Some(Found { row, start, end, bytes }))
    }
}

/// What [`Stored::find`] found.
struct Found {
    row: Row,
    start: u64,
    end: u64,
    bytes: Vec<u8>,
}

/// A body being read: the bytes in hand, then (for a long range) the rest from the snapshot.
pub struct BodyRead {
    pending: RefCell<Vec<u8>>,
    at: Cell<usize>,
    snapshot: Option<Snapshot>,
}

/// The rest of a long range, read inside the transaction whose snapshot the read began in.
struct Snapshot {
    tx: Transaction,
    select: String,
    params: Vec<SqlValue>,
    next: Cell<u64>,
    end: u64,
}

impl BodyRead {
    fn held(bytes: Vec<u8>, len: u64) -> Result<BodyRead> {
        if bytes.len() as u64 != len {
            return Err(StoreError::Internal(format!("postgres: read {} bytes of a range of {len}", bytes.len())));
        }
        Ok(BodyRead { pending: RefCell::new(bytes), at: Cell::new(0), snapshot: None })
    }

    /// The next at most `max_len` bytes; `None` at the end of the range.
    pub fn read(&self, max_len: u32) -> Result<Option<Vec<u8>>> {
        if max_len == 0 {
            return Ok(None);
        }
        let mut pending = self.pending.borrow_mut();
        let at = self.at.get();
        if at < pending.len() {
            let n = (pending.len() - at).min(max_len as usize);
            let out = if at == 0 && n == pending.len() { std::mem::take(&mut *pending) } else { pending[at..at + n].to_vec() };
            if at + n >= pending.len() {
                pending.clear();
                self.at.set(0);
            } else {
                self.at.set(at + n);
            }
            return Ok(Some(out));
        }
        let Some(snapshot) = &self.snapshot else { return Ok(None) };
        let next = snapshot.next.get();
        if next >= snapshot.end {
            return Ok(None);
        }
        let len = (snapshot.end - next).min(u64::from(max_len)).min(READ_MOST);
        let mut params = snapshot.params.clone();
        params.extend([int(next + 1), int(len)]);
        let row = Db::Tx(&snapshot.tx).query_opt(&snapshot.select, &params)?;
        // The snapshot still holds the row: anything else is a fault, not a writer.
        let bytes = Row(row.ok_or_else(|| StoreError::Internal("postgres: the row left the read's snapshot".into()))?).take_bytes(0)?;
        if bytes.len() as u64 != len {
            return Err(StoreError::Internal(format!("postgres: the snapshot gave {} bytes at {next}, not {len}", bytes.len())));
        }
        snapshot.next.set(next + len);
        Ok(Some(bytes))
    }
}

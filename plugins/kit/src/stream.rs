//! Values read and written in pieces: what the streaming calls (`open-read`, `open-write`) are
//! built on.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use crate::{Backend, Result, StoreError, Table};

/// A stored value opened for reading at offsets.
pub trait ValueReader {
    /// The value's length in bytes.
    fn size(&self) -> u64;
    /// At most `len` bytes from `offset` (fewer only at the end).
    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>>;
}

/// A value being written in pieces: invisible until [`commit`](Self::commit), and gone when
/// dropped before it.
pub trait ValueWriter {
    /// Appends `bytes`.
    fn append(&mut self, bytes: &[u8]) -> Result<()>;
    /// Overwrites bytes already written, at `offset`.
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()>;
    /// Makes the value visible, replacing the old one at once.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A range of an opened value, handed out chunk by chunk: what the streaming readers of
/// artifacts and runner files share.
pub(crate) struct RangeReader {
    value: RefCell<Box<dyn ValueReader>>,
    /// Where the next read starts, and where the range ends, as offsets into the value.
    next: Cell<u64>,
    end: u64,
}

impl RangeReader {
    /// Bytes `start..end` of `value`.
    pub(crate) fn new(value: Box<dyn ValueReader>, start: u64, end: u64) -> Self {
        Self { value: RefCell::new(value), next: Cell::new(start), end }
    }

    /// The next chunk of at most `max_len` bytes; `None` at the end of the range. A value that
    /// ends before the range does is `ended_early()`.
    pub(crate) fn next_chunk(&self, max_len: u32, ended_early: impl FnOnce() -> StoreError) -> Result<Option<Vec<u8>>> {
        let next = self.next.get();
        if next >= self.end || max_len == 0 {
            return Ok(None);
        }
        let len = (self.end - next).min(u64::from(max_len)) as usize;
        let chunk = self.value.borrow_mut().read_at(next, len)?;
        if chunk.is_empty() {
            return Err(ended_early());
        }
        self.next.set(next + chunk.len() as u64);
        Ok(Some(chunk))
    }
}

/// A whole value in memory.
pub(crate) struct InMemory(pub(crate) Vec<u8>);

impl ValueReader for InMemory {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let start = (offset as usize).min(self.0.len());
        let end = start.saturating_add(len).min(self.0.len());
        Ok(self.0[start..end].to_vec())
    }
}

/// Pieces gathered in memory and put at once.
pub(crate) struct Buffered<B> {
    table: Table,
    key: String,
    bytes: Vec<u8>,
    max_len: u64,
    backend: PhantomData<B>,
}

impl<B> Buffered<B> {
    pub(crate) fn new(table: Table, key: &str, max_len: u64) -> Self {
        Self { table, key: key.to_string(), bytes: Vec::new(), max_len, backend: PhantomData }
    }
}

impl<B: Backend> ValueWriter for Buffered<B> {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if self.bytes.len() as u64 + bytes.len() as u64 > self.max_len {
            return Err(StoreError::Invalid(format!("the value grew over this backend's limit of {} bytes", self.max_len)));
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let start = offset as usize;
        let end = start + bytes.len();
        if end > self.bytes.len() {
            return Err(StoreError::Internal("write past the end of a value being written".into()));
        }
        self.bytes[start..end].copy_from_slice(bytes);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let Buffered { table, key, bytes, .. } = *self;
        B::with(|b| b.put(table, &key, &bytes))
    }
}

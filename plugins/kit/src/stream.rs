//! Values read and written in pieces: what the streaming calls (`open-read`, `open-write`) are
//! built on.

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

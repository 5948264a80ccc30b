//! Runner artifacts, stored under `run/name`.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use crate::artifacts::MAX_BODY;
use crate::bindings::exports::storehost::origin::runner_artifacts::{FileReader, FileWriter, Guest, GuestFileReader, GuestFileWriter, RunPage};
use crate::bindings::exports::storehost::origin::runner_bodies::{self, Body, BodyFile};
use crate::stream::RangeReader;
use crate::{
    Backend, Opened, Origin, Result, StoreError, Table, ValueReader, ValueWriter, page_limit, prefix_successor, validate_artifact_key, validate_run,
};

fn not_found(run: &str, name: &str) -> StoreError {
    StoreError::NotFound(format!("runner artifact {name:?} of run {run:?}"))
}

/// A range of a file being read.
pub struct KitFileReader<B> {
    run: String,
    range: RangeReader,
    backend: PhantomData<B>,
}

impl<B: Backend> GuestFileReader for KitFileReader<B> {
    fn read(&self, max_len: u32) -> Result<Option<Vec<u8>>> {
        B::with(|b| b.before_call("runner-artifacts.file-reader.read", &self.run))?;
        self.range.next_chunk(max_len, || StoreError::Internal(format!("a file of run {:?} ended early", self.run)))
    }
}

/// New contents of a file; nothing is visible until `finish`.
pub struct KitFileWriter<B> {
    run: String,
    value: RefCell<Option<Box<dyn ValueWriter>>>,
    size: Cell<u64>,
    backend: PhantomData<B>,
}

impl<B: Backend> GuestFileWriter for KitFileWriter<B> {
    fn write(&self, chunk: Vec<u8>) -> Result<()> {
        B::with(|b| b.before_call("runner-artifacts.file-writer.write", &self.run))?;
        let mut value = self.value.borrow_mut();
        value.as_mut().ok_or_else(|| StoreError::Invalid("the writer was already finished".into()))?.append(&chunk)?;
        self.size.set(self.size.get() + chunk.len() as u64);
        Ok(())
    }

    fn finish(&self) -> Result<u64> {
        B::with(|b| b.before_call("runner-artifacts.file-writer.finish", &self.run))?;
        let value = self.value.borrow_mut().take().ok_or_else(|| StoreError::Invalid("the writer was already finished".into()))?;
        value.commit()?;
        Ok(self.size.get())
    }
}

/// The size of `value` and a reader of `len` bytes (`None`: to the end) of it from `offset`.
fn file_reader<B: Backend>(run: String, value: Box<dyn ValueReader>, offset: u64, len: Option<u64>) -> (u64, FileReader) {
    let size = value.size();
    let start = offset.min(size);
    let end = len.map_or(size, |len| start.saturating_add(len).min(size));
    (size, FileReader::new(KitFileReader::<B> { run, range: RangeReader::new(value, start, end), backend: PhantomData }))
}

impl<B: Backend> runner_bodies::Guest for Origin<B> {
    /// The same call as `open-read` to the backend, answered with the file where the backend
    /// has one: a run's file is the whole value. `before_call` sees it by its own name.
    fn open(run: String, name: String, offset: u64, len: Option<u64>) -> Result<(u64, Body)> {
        B::with(|b| {
            b.before_call("runner-bodies.open", &run)?;
            match b.open_body(Table::Runs, &key(&run, &name)?)?.ok_or_else(|| not_found(&run, &name))? {
                Opened::File(file) => Ok((file.size(), Body::File(BodyFile { file, start: 0 }))),
                Opened::Value(value) => {
                    let (size, reader) = file_reader::<B>(run, value, offset, len);
                    Ok((size, Body::Reader(reader)))
                }
            }
        })
    }
}

fn key(run: &str, name: &str) -> Result<String> {
    validate_run(run)?;
    validate_artifact_key(name)?;
    Ok(format!("{run}/{name}"))
}

impl<B: Backend> Guest for Origin<B> {
    type FileReader = KitFileReader<B>;
    type FileWriter = KitFileWriter<B>;

    fn read(run: String, name: String) -> Result<Vec<u8>> {
        B::with(|b| {
            b.before_call("runner-artifacts.read", &run)?;
            b.get(Table::Runs, &key(&run, &name)?)?.ok_or_else(|| not_found(&run, &name))
        })
    }

    fn write(run: String, name: String, data: Vec<u8>) -> Result<()> {
        B::with(|b| {
            b.before_call("runner-artifacts.write", &run)?;
            b.put(Table::Runs, &key(&run, &name)?, &data)
        })
    }

    fn remove(run: String, name: String) -> Result<()> {
        B::with(|b| {
            b.before_call("runner-artifacts.remove", &run)?;
            b.delete(Table::Runs, &key(&run, &name)?)
        })
    }

    fn list(run: String, prefix: String) -> Result<Vec<String>> {
        B::with(|b| {
            b.before_call("runner-artifacts.list", &run)?;
            validate_run(&run)?;
            let base = format!("{run}/");
            let keys = b.keys(Table::Runs, &format!("{base}{prefix}"), None, usize::MAX)?;
            Ok(keys.into_iter().map(|k| k[base.len()..].to_string()).collect())
        })
    }

    fn list_runs(cursor: Option<String>, limit: u32) -> Result<RunPage> {
        B::with(|b| {
            b.before_call("runner-artifacts.list-runs", "")?;
            let limit = page_limit(limit);
            // Keys are `run/name`: one key read per run, then past every key of that run.
            let past = |run: &str| prefix_successor(&format!("{run}/"));
            let mut after = cursor.as_deref().and_then(past);
            let mut runs: Vec<String> = Vec::new();
            while runs.len() <= limit {
                let Some(next) = b.keys(Table::Runs, "", after.as_deref(), 1)?.into_iter().next() else { break };
                let run = next.split('/').next().unwrap_or_default().to_string();
                after = past(&run);
                runs.push(run);
            }
            let more = runs.len() > limit;
            runs.truncate(limit);
            let next_cursor = if more { runs.last().cloned() } else { None };
            Ok(RunPage { runs, next_cursor })
        })
    }

    fn open_read(run: String, name: String, offset: u64, len: Option<u64>) -> Result<(u64, FileReader)> {
        B::with(|b| {
            b.before_call("runner-artifacts.open-read", &run)?;
            let value = b.open_value(Table::Runs, &key(&run, &name)?)?.ok_or_else(|| not_found(&run, &name))?;
            Ok(file_reader::<B>(run, value, offset, len))
        })
    }

    fn open_write(run: String, name: String, _size_hint: Option<u64>) -> Result<FileWriter> {
        B::with(|b| {
            b.before_call("runner-artifacts.open-write", &run)?;
            let value = b.create_value(Table::Runs, &key(&run, &name)?, MAX_BODY as u64)?;
            Ok(FileWriter::new(KitFileWriter::<B> { run, value: RefCell::new(Some(value)), size: Cell::new(0), backend: PhantomData }))
        })
    }
}

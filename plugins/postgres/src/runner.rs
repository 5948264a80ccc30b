//! The runner store: one row per file of a run.

use storehost_plugin_kit::bindings::exports::storehost::origin::runner_artifacts::{
    FileReader, FileWriter, Guest, GuestFileReader, GuestFileWriter, RunPage,
};
use storehost_plugin_kit::bindings::exports::storehost::origin::runner_bodies::{self, Body};
use storehost_plugin_kit::bindings::storehost::host::sql::SqlValue;
use storehost_plugin_kit::{Result, StoreError, page_limit, prefix_successor, validate_artifact_key, validate_run};

use crate::db::{Db, Row, int, opt_text, text};
use crate::stream::{BodyRead, Stored, Upload};
use crate::{Postgres, check_body};

fn not_found(run: &str, name: &str) -> StoreError {
    StoreError::NotFound(format!("runner artifact {name:?} of run {run:?}"))
}

/// A range of a file, as it was at open.
pub struct PgFileReader(BodyRead);

impl GuestFileReader for PgFileReader {
    fn read(&self, max_len: u32) -> Result<Option<Vec<u8>>> {
        self.0.read(max_len)
    }
}

/// A file being staged.
pub struct PgFileWriter {
    run: String,
    name: String,
    upload: Upload,
}

impl GuestFileWriter for PgFileWriter {
    fn write(&self, chunk: Vec<u8>) -> Result<()> {
        self.upload.write(&chunk)
    }

    fn finish(&self) -> Result<u64> {
        self.upload.finish(
            "INSERT INTO {s}.runner_files (run, name, data) SELECT $2, $3, body FROM staged
             ON CONFLICT (run, name) DO UPDATE SET data = excluded.data",
            vec![text(self.run.as_str()), text(self.name.as_str())],
        )?;
        Ok(self.upload.size())
    }
}

fn check(run: &str, name: &str) -> Result<()> {
    validate_run(run)?;
    validate_artifact_key(name)
}

impl Guest for Postgres {
    type FileReader = PgFileReader;
    type FileWriter = PgFileWriter;

    fn read(run: String, name: String) -> Result<Vec<u8>> {
        check(&run, &name)?;
        let row = Db::Pool.query_opt("SELECT data FROM {s}.runner_files WHERE run = $1 AND name = $2", &[text(run.as_str()), text(name.as_str())])?;
        let mut row = Row(row.ok_or_else(|| not_found(&run, &name))?);
        row.take_bytes(0)
    }

    fn list_runs(cursor: Option<String>, limit: u32) -> Result<RunPage> {
        let limit = page_limit(limit);
        let rows = Db::Pool.query(
            "SELECT DISTINCT run FROM {s}.runner_files WHERE ($1::text IS NULL OR run > $1) ORDER BY run LIMIT $2",
            &[opt_text(cursor), int(limit as u64 + 1)],
        )?;
        let more = rows.len() > limit;
        let runs = rows.into_iter().take(limit).map(|r| Row(r).text(0)).collect::<Result<Vec<_>>>()?;
        let next_cursor = if more { runs.last().cloned() } else { None };
        Ok(RunPage { runs, next_cursor })
    }

    fn open_read(run: String, name: String, offset: u64, len: Option<u64>) -> Result<(u64, FileReader)> {
        check(&run, &name)?;
        let stored = Stored {
            columns: "octet_length(data)::bigint",
            column: "data",
            from: "{s}.runner_files WHERE run = $1 AND name = $2",
            params: vec![text(run.as_str()), text(name.as_str())],
        };
        let (row, body) = stored.open(offset, len)?.ok_or_else(|| not_found(&run, &name))?;
        Ok((row.u64(0)?, FileReader::new(PgFileReader(body))))
    }

    fn open_write(run: String, name: String, size_hint: Option<u64>) -> Result<FileWriter> {
        check(&run, &name)?;
        if let Some(size) = size_hint {
            check_body(size as usize)?;
        }
        Ok(FileWriter::new(PgFileWriter { run, name, upload: Upload::start()? }))
    }

    fn write(run: String, name: String, data: Vec<u8>) -> Result<()> {
        check(&run, &name)?;
        check_body(data.len())?;
        Db::Pool.execute(
            "INSERT INTO {s}.runner_files (run, name, data) VALUES ($1, $2, $3) ON CONFLICT (run, name) DO UPDATE SET data = excluded.data",
            &[text(run), text(name), SqlValue::Bytes(data)],
        )?;
        Ok(())
    }

    fn remove(run: String, name: String) -> Result<()> {
        check(&run, &name)?;
        Db::Pool.execute("DELETE FROM {s}.runner_files WHERE run = $1 AND name = $2", &[text(run), text(name)])?;
        Ok(())
    }

    fn list(run: String, prefix: String) -> Result<Vec<String>> {
        validate_run(&run)?;
        let rows = Db::Pool.query(
            "SELECT name FROM {s}.runner_files WHERE run = $1 AND name >= $2 AND ($3::text IS NULL OR name < $3) ORDER BY name",
            &[text(run), text(prefix.as_str()), opt_text(prefix_successor(&prefix))],
        )?;
        rows.into_iter().map(|r| Row(r).text(0)).collect()
    }
}

/// Files are rows: always read through the plugin, as `open-read` reads them.
impl runner_bodies::Guest for Postgres {
    fn open(run: String, name: String, offset: u64, len: Option<u64>) -> Result<(u64, Body)> {
        <Postgres as Guest>::open_read(run, name, offset, len).map(|(size, reader)| (size, Body::Reader(reader)))
    }
}

//! The runner store: one row per file of a run.

use storehost_plugin_kit::bindings::exports::storehost::origin::runner_artifacts::Guest;
use storehost_plugin_kit::bindings::storehost::host::sql::SqlValue;
use storehost_plugin_kit::{Result, StoreError, prefix_successor, validate_artifact_key, validate_run};

use crate::db::{Db, Row, opt_text, text};
use crate::{Postgres, check_body};

fn check(run: &str, name: &str) -> Result<()> {
    validate_run(run)?;
    validate_artifact_key(name)
}

impl Guest for Postgres {
    fn read(run: String, name: String) -> Result<Vec<u8>> {
        check(&run, &name)?;
        let row = Db::Pool.query_opt("SELECT data FROM {s}.runner_files WHERE run = $1 AND name = $2", &[text(run.as_str()), text(name.as_str())])?;
        let mut row = Row(row.ok_or_else(|| StoreError::NotFound(format!("runner artifact {name:?} of run {run:?}")))?);
        row.take_bytes(0)
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

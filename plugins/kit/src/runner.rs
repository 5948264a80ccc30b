//! Runner artifacts, stored under `run/name`.

use crate::bindings::exports::storehost::origin::runner_artifacts::Guest;
use crate::{Backend, Origin, Result, StoreError, Table, validate_artifact_key, validate_run};

fn key(run: &str, name: &str) -> Result<String> {
    validate_run(run)?;
    validate_artifact_key(name)?;
    Ok(format!("{run}/{name}"))
}

impl<B: Backend> Guest for Origin<B> {
    fn read(run: String, name: String) -> Result<Vec<u8>> {
        B::with(|b| {
            b.before_call("runner-artifacts.read", &run)?;
            b.get(Table::Runs, &key(&run, &name)?)?.ok_or_else(|| StoreError::NotFound(format!("runner artifact {name:?} of run {run:?}")))
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
}

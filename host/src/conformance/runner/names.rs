use anyhow::Result;
use bytes::Bytes;

use super::store;
use crate::conformance::{ctx, invalid, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(RunnerArtifacts, "names"; bad_runs_and_names_are_invalid);

async fn bad_runs_and_names_are_invalid(s: Stores) -> Result<()> {
    let st = store(&s);
    for run in ["", "a/b", "..", "."] {
        invalid(&format!("write in run {run:?}"), st.write(&ctx(), run, "f", Bytes::from_static(b".")).await)?;
    }
    let run = unique("run");
    for name in ["", "/abs", "../escape", "a/../../b", "nul\0"] {
        invalid(&format!("write of name {name:?}"), st.write(&ctx(), &run, name, Bytes::from_static(b".")).await)?;
    }
    Ok(())
}

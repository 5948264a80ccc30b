use anyhow::{Result, ensure};
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, invalid, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(RunnerArtifacts, "names"; bad_runs_and_names_are_invalid, longest_runs_and_names_round_trip);

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

/// A run id of 256 bytes and names whose segments are longer than a file name may be are
/// written, read, listed in byte order and removed.
async fn longest_runs_and_names_round_trip(s: Stores) -> Result<()> {
    let st = store(&s);
    let mut run = unique("run");
    while run.len() + "日".len() <= 256 {
        run.push('日');
    }
    while run.len() < 256 {
        run.push('r');
    }
    let mut names = vec![format!("{}/x", "n".repeat(300)), format!("{}/y", "é".repeat(150)), "n".repeat(280), "short".to_string()];
    for name in &names {
        st.write(&ctx(), &run, name, Bytes::from(name.clone().into_bytes())).await.step(&format!("write a name of {} bytes", name.len()))?;
        ensure!(st.read(&ctx(), &run, name).await.step("read")? == name.as_bytes(), "a long name read back other bytes");
    }
    names.sort();
    let listed = st.list(&ctx(), &run, "").await.step("list")?;
    ensure!(listed == names, "the run's names are listed as {} names, not the {} written in byte order", listed.len(), names.len());
    for name in &names {
        st.remove(&ctx(), &run, name).await.step("remove")?;
    }
    ensure!(st.list(&ctx(), &run, "").await.step("list after removing")?.is_empty(), "removed names are listed");
    Ok(())
}

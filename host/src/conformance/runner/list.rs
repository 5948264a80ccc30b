use anyhow::{Result, ensure};
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(RunnerArtifacts, "list"; list_sorted_with_prefix, list_is_per_run);

async fn list_sorted_with_prefix(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    for name in ["logs/b.txt", "out.bin", "logs/a.txt", "logs2", "Logs/c"] {
        st.write(&ctx(), &run, name, Bytes::from_static(b".")).await.step("write")?;
    }
    let all = st.list(&ctx(), &run, "").await.step("list")?;
    ensure!(all == ["Logs/c", "logs/a.txt", "logs/b.txt", "logs2", "out.bin"], "listed {all:?}");
    let logs = st.list(&ctx(), &run, "logs/").await.step("list logs/")?;
    ensure!(logs == ["logs/a.txt", "logs/b.txt"], "prefix logs/ listed {logs:?}");
    Ok(())
}

async fn list_is_per_run(s: Stores) -> Result<()> {
    let (st, a, b) = (store(&s), unique("run"), unique("run"));
    st.write(&ctx(), &a, "f", Bytes::from_static(b".")).await.step("write")?;
    ensure!(st.list(&ctx(), &b, "").await.step("list b")?.is_empty(), "run b lists run a's file");
    Ok(())
}

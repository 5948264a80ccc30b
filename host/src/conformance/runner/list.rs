use anyhow::{Result, ensure};
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, all_pages, ctx, ordered_and_holding, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(RunnerArtifacts, "list"; list_sorted_with_prefix, list_is_per_run, list_runs_pages_every_run);

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

async fn list_runs_pages_every_run(s: Stores) -> Result<()> {
    let st = store(&s);
    let base = unique("run");
    let ours: Vec<String> = ["c", "a", "b"].iter().map(|x| format!("{base}-{x}")).collect();
    for run in &ours {
        st.write(&ctx(), run, "logs/out.txt", Bytes::from_static(b".")).await.step("write")?;
        st.write(&ctx(), run, "other", Bytes::from_static(b".")).await.step("write")?;
    }
    let page = |cursor: Option<String>| {
        let st = st.clone();
        async move { st.list_runs(&ctx(), cursor.as_deref(), 2).await.map(|p| (p.runs, p.next_cursor)) }
    };
    let listed = all_pages("list-runs", page).await?;
    ordered_and_holding("the runs' listing", &listed, &ours)
}

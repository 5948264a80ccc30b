use anyhow::Result;
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, not_found, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(RunnerArtifacts, "remove"; remove_deletes, remove_missing_succeeds);

async fn remove_deletes(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    st.write(&ctx(), &run, "f", Bytes::from_static(b"x")).await.step("write")?;
    st.remove(&ctx(), &run, "f").await.step("remove")?;
    not_found("read after remove", st.read(&ctx(), &run, "f").await)
}

async fn remove_missing_succeeds(s: Stores) -> Result<()> {
    store(&s).remove(&ctx(), &unique("run"), "nothing").await.step("remove of a missing file")
}

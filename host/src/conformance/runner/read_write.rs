use anyhow::{Result, ensure};
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, not_found, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(RunnerArtifacts, "read/write"; write_then_read, write_replaces, read_missing_is_not_found);

async fn write_then_read(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    let data = Bytes::from((0..10_000u32).flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>());
    st.write(&ctx(), &run, "out/result.bin", data.clone()).await.step("write")?;
    ensure!(st.read(&ctx(), &run, "out/result.bin").await.step("read")? == data, "read differs from write");
    Ok(())
}

async fn write_replaces(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    st.write(&ctx(), &run, "f", Bytes::from_static(b"a much longer first version")).await.step("write")?;
    st.write(&ctx(), &run, "f", Bytes::from_static(b"second")).await.step("overwrite")?;
    let got = st.read(&ctx(), &run, "f").await.step("read")?;
    ensure!(&got[..] == b"second", "overwrite left {got:?}");
    Ok(())
}

async fn read_missing_is_not_found(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    not_found("read in an unknown run", st.read(&ctx(), &run, "f").await)?;
    st.write(&ctx(), &run, "f", Bytes::from_static(b"x")).await.step("write")?;
    not_found("read of a missing name", st.read(&ctx(), &run, "g").await)
}

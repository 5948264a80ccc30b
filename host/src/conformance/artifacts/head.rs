use anyhow::{Result, ensure};
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, not_found, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Artifacts, "head"; head_returns_metadata, head_missing_is_not_found);

async fn head_returns_metadata(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("head/meta"));
    let meta = st.put(&ctx(), &key, Bytes::from_static(b"abc"), Some("text/csv".into())).await.step("put")?;
    let head = st.head(&ctx(), &key).await.step("head")?;
    ensure!(head == meta, "head {head:?} differs from put's {meta:?}");
    Ok(())
}

async fn head_missing_is_not_found(s: Stores) -> Result<()> {
    not_found("head of a missing key", store(&s).head(&ctx(), &unique("head/missing")).await)
}

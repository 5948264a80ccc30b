use anyhow::Result;
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, not_found, same, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Artifacts, "head"; head_returns_metadata, head_missing_is_not_found);

async fn head_returns_metadata(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("head/meta"));
    let meta = st.put(&ctx(), &key, Bytes::from_static(b"abc"), Some("text/csv".into())).await.step("put")?;
    let head = st.head(&ctx(), &key).await.step("head")?;
    same("head", &head, "put's metadata", &meta)?;
    Ok(())
}

async fn head_missing_is_not_found(s: Stores) -> Result<()> {
    not_found("head of a missing key", store(&s).head(&ctx(), &unique("head/missing")).await)
}

use anyhow::{Result, ensure};
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, not_found, same, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Artifacts, "get"; get_returns_what_was_put, get_missing_is_not_found);

async fn get_returns_what_was_put(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("get/roundtrip"));
    let body = Bytes::from((0..=255u8).collect::<Vec<u8>>());
    let meta = st.put(&ctx(), &key, body.clone(), Some("application/x-test".into())).await.step("put")?;
    let got = st.get(&ctx(), &key).await.step("get")?;
    ensure!(got.body == body, "body differs");
    same("get's metadata", &got.meta, "put's", &meta)?;
    Ok(())
}

async fn get_missing_is_not_found(s: Stores) -> Result<()> {
    not_found("get of a missing key", store(&s).get(&ctx(), &unique("get/missing")).await)
}

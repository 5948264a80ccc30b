use anyhow::Result;
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, not_found, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Artifacts, "delete"; delete_removes, delete_missing_succeeds);

async fn delete_removes(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("delete/it"));
    st.put(&ctx(), &key, Bytes::from_static(b"x"), None).await.step("put")?;
    st.delete(&ctx(), &key).await.step("delete")?;
    not_found("get after delete", st.get(&ctx(), &key).await)?;
    not_found("head after delete", st.head(&ctx(), &key).await)
}

async fn delete_missing_succeeds(s: Stores) -> Result<()> {
    store(&s).delete(&ctx(), &unique("delete/missing")).await.step("delete of a missing key")
}

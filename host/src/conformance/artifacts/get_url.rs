use anyhow::Result;
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, not_found, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Artifacts, "get-url"; get_url_of_existing, get_url_of_missing_is_not_found);

async fn get_url_of_existing(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("url/it"));
    st.put(&ctx(), &key, Bytes::from_static(b"x"), None).await.step("put")?;
    // `None` (the host signs its own URL) and `Some(url)` are both valid answers.
    if let Some(url) = st.get_url(&ctx(), &key, 60).await.step("get-url")? {
        anyhow::ensure!(url.starts_with("http://") || url.starts_with("https://"), "get-url returned {url:?}, not an http(s) URL");
    }
    Ok(())
}

async fn get_url_of_missing_is_not_found(s: Stores) -> Result<()> {
    not_found("get-url of a missing key", store(&s).get_url(&ctx(), &unique("url/missing"), 60).await)
}

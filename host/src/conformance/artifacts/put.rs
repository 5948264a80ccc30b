use anyhow::{Result, ensure};
use bytes::Bytes;

use super::{sha256_hex, store};
use crate::conformance::{Step, ctx, same, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Artifacts, "put"; put_returns_metadata, put_replaces, put_empty_and_large_bodies);

async fn put_returns_metadata(s: Stores) -> Result<()> {
    let key = unique("put/meta");
    let before = crate::conformance::now_ms().saturating_sub(60_000);
    let meta = store(&s).put(&ctx(), &key, Bytes::from_static(b"hello world"), Some("text/plain".into())).await.step("put")?;
    ensure!(meta.key == key, "meta.key is {:?}, expected {key:?}", meta.key);
    ensure!(meta.size == 11, "meta.size is {}, expected 11", meta.size);
    ensure!(meta.content_type.as_deref() == Some("text/plain"), "content type {:?}", meta.content_type);
    ensure!(meta.sha256 == sha256_hex(b"hello world"), "sha256 {} is not the body's", meta.sha256);
    ensure!(meta.created_at >= before, "created_at {} is not a current unix-ms time", meta.created_at);
    Ok(())
}

async fn put_replaces(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("put/replace"));
    st.put(&ctx(), &key, Bytes::from_static(b"first version"), None).await.step("first put")?;
    let meta = st.put(&ctx(), &key, Bytes::from_static(b"second"), Some("application/octet-stream".into())).await.step("second put")?;
    let got = st.get(&ctx(), &key).await.step("get")?;
    ensure!(&got.body[..] == b"second", "get after overwrite returned {:?}", got.body);
    same("get's metadata", &got.meta, "the last put's", &meta)?;
    Ok(())
}

async fn put_empty_and_large_bodies(s: Stores) -> Result<()> {
    let st = store(&s);
    let empty = unique("put/empty");
    st.put(&ctx(), &empty, Bytes::new(), None).await.step("put empty")?;
    let got = st.get(&ctx(), &empty).await.step("get empty")?;
    ensure!(got.body.is_empty() && got.meta.size == 0, "empty body came back as {} bytes", got.body.len());
    let large = unique("put/large");
    let body: Vec<u8> = (0..(1 << 20) + 7).map(|i| (i * 31 % 251) as u8).collect();
    st.put(&ctx(), &large, Bytes::from(body.clone()), None).await.step("put 1 MiB")?;
    let got = st.get(&ctx(), &large).await.step("get 1 MiB")?;
    ensure!(got.body[..] == body[..], "1 MiB body differs after the round trip");
    ensure!(got.meta.sha256 == sha256_hex(&body), "sha256 of the 1 MiB body is wrong");
    Ok(())
}

use anyhow::{Result, ensure};
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, invalid, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Artifacts, "keys"; bad_keys_are_invalid, unusual_keys_round_trip, longest_key_round_trips);

async fn bad_keys_are_invalid(s: Stores) -> Result<()> {
    let st = store(&s);
    let long = "k".repeat(1025);
    for key in ["", "/leading", "a//b", "a/./b", "a/../b", "..", ".", "trailing/", "nul\0byte", long.as_str()] {
        invalid(&format!("put {key:?}"), st.put(&ctx(), key, Bytes::from_static(b"x"), None).await)?;
        invalid(&format!("get {key:?}"), st.get(&ctx(), key).await)?;
    }
    Ok(())
}

async fn unusual_keys_round_trip(s: Stores) -> Result<()> {
    let (st, base) = (store(&s), unique("keys/odd"));
    for name in ["with space", "ünïcødé/日本", "plus+sign", "100%", "quote'\"", "semi;colon--dash", "a=b&c", ".hidden/x", "~tilde"] {
        let key = format!("{base}/{name}");
        st.put(&ctx(), &key, Bytes::from(name.as_bytes().to_vec()), None).await.step(&format!("put {key:?}"))?;
        let got = st.get(&ctx(), &key).await.step(&format!("get {key:?}"))?;
        ensure!(got.body == name.as_bytes(), "{key:?} read back {:?}", got.body);
        ensure!(got.meta.key == key, "{key:?} came back as {:?}", got.meta.key);
    }
    let page = st.list(&ctx(), &format!("{base}/"), None, 100).await.step("list")?;
    ensure!(page.items.len() == 9, "listed {} of 9 unusual keys", page.items.len());
    Ok(())
}

/// The longest key the origin says it holds (1024 bytes unless its `describe()` reports less)
/// round-trips, and one byte more is refused.
async fn longest_key_round_trips(s: Stores) -> Result<()> {
    let st = store(&s);
    let max = st.max_key_bytes();
    let base = unique("keys/long");
    let mut key = base.clone();
    while key.len() < max {
        match max - key.len() {
            1 => key.push('s'),
            left => {
                key.push('/');
                key.push_str(&"s".repeat((left - 1).min(100)));
            }
        }
    }
    ensure!(key.len() == max, "test key is {} bytes, not {max}", key.len());
    st.put(&ctx(), &key, Bytes::from_static(b"long"), None).await.step(&format!("put a {max}-byte key"))?;
    let got = st.get(&ctx(), &key).await.step(&format!("get a {max}-byte key"))?;
    ensure!(&got.body[..] == b"long" && got.meta.key == key, "the {max}-byte key did not round-trip");
    invalid(&format!("put a key of {} bytes", max + 1), st.put(&ctx(), &format!("{key}s"), Bytes::from_static(b"x"), None).await)
}

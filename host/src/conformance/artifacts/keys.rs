use anyhow::{Result, ensure};
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, invalid, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Artifacts, "keys"; bad_keys_are_invalid, unusual_keys_round_trip, longest_key_round_trips, long_segments_list_in_byte_order);

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
    // Segments longer than a file name may be, of characters of one to three bytes.
    let mut key = base.clone();
    for piece in ["é", "s", "日"].iter().cycle() {
        if key.len() >= max {
            break;
        }
        let left = max - key.len() - 1;
        if left == 0 {
            key.push('s');
            continue;
        }
        key.push('/');
        let mut segment = piece.repeat((left / piece.len()).min(400 / piece.len()));
        while segment.len() < left.min(400) {
            segment.push('s');
        }
        key.push_str(&segment);
    }
    ensure!(key.len() == max, "test key is {} bytes, not {max}", key.len());
    st.put(&ctx(), &key, Bytes::from_static(b"long"), None).await.step(&format!("put a {max}-byte key"))?;
    let got = st.get(&ctx(), &key).await.step(&format!("get a {max}-byte key"))?;
    ensure!(&got.body[..] == b"long" && got.meta.key == key, "the {max}-byte key did not round-trip");
    invalid(&format!("put a key of {} bytes", max + 1), st.put(&ctx(), &format!("{key}s"), Bytes::from_static(b"x"), None).await)
}

/// Keys whose segments are longer than a file name may be (of one-byte and multi-byte
/// characters) round-trip, are listed in byte order across pages under a prefix that ends inside
/// such a segment, and are deleted.
async fn long_segments_list_in_byte_order(s: Stores) -> Result<()> {
    let (st, base) = (store(&s), unique("keys/longseg"));
    let a300 = "a".repeat(300);
    let e100 = "é".repeat(100);
    let mut keys: Vec<String> = [
        format!("{base}/{a300}"),
        format!("{base}/{a300}b"),
        format!("{base}/{a300}/x"),
        format!("{base}/{a300}-"),
        format!("{base}/{a300}/y/{e100}"),
        format!("{base}/{e100}"),
        format!("{base}/{e100}/z"),
        format!("{base}/{}", "a".repeat(299)),
        format!("{base}/a"),
    ]
    .into();
    for key in &keys {
        st.put(&ctx(), key, Bytes::from(key.clone().into_bytes()), None).await.step(&format!("put a key of {} bytes", key.len()))?;
        let got = st.get(&ctx(), key).await.step(&format!("get a key of {} bytes", key.len()))?;
        ensure!(got.body == key.as_bytes() && got.meta.key == *key, "a key of {} bytes did not round-trip", key.len());
    }
    keys.sort();
    for prefix in [format!("{base}/"), format!("{base}/{}", "a".repeat(250)), format!("{base}/{a300}/")] {
        let want: Vec<&String> = keys.iter().filter(|k| k.starts_with(&prefix)).collect();
        let mut listed = Vec::new();
        let mut cursor = None;
        loop {
            let page = st.list(&ctx(), &prefix, cursor.as_deref(), 2).await.step("list")?;
            listed.extend(page.items.into_iter().map(|m| m.key));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
            ensure!(listed.len() <= keys.len() * 2, "the listing does not end");
        }
        ensure!(
            listed.iter().collect::<Vec<_>>() == want,
            "under a prefix of {} bytes, listed {} keys out of order or not all ({} expected)",
            prefix.len(),
            listed.len(),
            want.len()
        );
    }
    for key in &keys {
        st.delete(&ctx(), key).await.step("delete")?;
        crate::conformance::not_found("get after delete", st.get(&ctx(), key).await.map(|a| a.meta))?;
    }
    let page = st.list(&ctx(), &format!("{base}/"), None, 100).await.step("list after the deletes")?;
    ensure!(page.items.is_empty(), "deleted keys are listed: {}", page.items.len());
    Ok(())
}

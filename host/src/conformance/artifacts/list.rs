use anyhow::{Result, ensure};
use bytes::Bytes;

use super::store;
use crate::conformance::{Step, ctx, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Artifacts, "list"; list_in_byte_order_with_paging, list_filters_by_prefix, list_empty_prefix);

async fn list_in_byte_order_with_paging(s: Stores) -> Result<()> {
    let (st, base) = (store(&s), unique("list/order"));
    // Inserted out of order, with names whose byte order differs from a naive ordering.
    let names = ["b", "a/z", "a", "B", "a-b", "é", "c/d/e"];
    for name in names {
        st.put(&ctx(), &format!("{base}/{name}"), Bytes::from(name.as_bytes().to_vec()), None).await.step("put")?;
    }
    let mut expected: Vec<String> = names.iter().map(|n| format!("{base}/{n}")).collect();
    expected.sort();
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        let page = st.list(&ctx(), &format!("{base}/"), cursor.as_deref(), 3).await.step("list")?;
        ensure!(page.items.len() <= 3, "a page of limit 3 held {} items", page.items.len());
        seen.extend(page.items.iter().map(|m| m.key.clone()));
        pages += 1;
        ensure!(pages <= 10, "paging did not end");
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ensure!(seen == expected, "{}", listing_differs(&seen, &expected, pages));
    ensure!(pages == 3, "7 keys at 3 per page took {pages} pages");
    let page = st.list(&ctx(), &format!("{base}/"), None, 100).await.step("list all")?;
    ensure!(page.next_cursor.is_none(), "a complete page still has a cursor");
    ensure!(page.items.iter().all(|m| m.size == m.key.len() as u64 - base.len() as u64 - 1), "list metadata sizes are wrong");
    Ok(())
}

/// What a paged listing that is not `expected` got wrong: a listing that stopped early says that
/// `next-cursor` was none after its last page.
fn listing_differs(seen: &[String], expected: &[String], pages: usize) -> String {
    let missing: Vec<&String> = expected.iter().filter(|key| !seen.contains(key)).collect();
    if seen.len() < expected.len() && expected.starts_with(seen) {
        format!(
            "listed {} of the {} keys: next-cursor was none after page {pages}, with {missing:?} still to come (a page ends the listing only when no key is left)",
            seen.len(),
            expected.len()
        )
    } else {
        format!("listed {seen:?} over {pages} pages, expected {expected:?} (missing {missing:?})")
    }
}

async fn list_filters_by_prefix(s: Stores) -> Result<()> {
    let (st, base) = (store(&s), unique("list/prefix"));
    for key in ["logs/1", "logs/2", "logsX", "log", "other/logs/3"] {
        st.put(&ctx(), &format!("{base}/{key}"), Bytes::from_static(b"."), None).await.step("put")?;
    }
    let keys = |p: crate::domain::ArtifactPage| p.items.into_iter().map(|m| m.key[base.len() + 1..].to_string()).collect::<Vec<_>>();
    let got = keys(st.list(&ctx(), &format!("{base}/logs/"), None, 0).await.step("list logs/")?);
    ensure!(got == ["logs/1", "logs/2"], "prefix logs/ listed {got:?}");
    let got = keys(st.list(&ctx(), &format!("{base}/logs"), None, 0).await.step("list logs")?);
    ensure!(got == ["logs/1", "logs/2", "logsX"], "prefix logs listed {got:?}");
    let got = keys(st.list(&ctx(), &format!("{base}/nothing"), None, 0).await.step("list nothing")?);
    ensure!(got.is_empty(), "an unused prefix listed {got:?}");
    Ok(())
}

async fn list_empty_prefix(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("list-all"));
    st.put(&ctx(), &key, Bytes::from_static(b"."), None).await.step("put")?;
    let (mut cursor, mut found, mut last) = (None::<String>, false, None::<String>);
    for _ in 0..10_000 {
        let page = st.list(&ctx(), "", cursor.as_deref(), 500).await.step("list everything")?;
        for m in &page.items {
            ensure!(last.as_deref() < Some(m.key.as_str()), "keys out of order: {last:?} then {:?}", m.key);
            found |= m.key == key;
            last = Some(m.key.clone());
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ensure!(found, "{key} missing from the full listing");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::listing_differs;

    #[test]
    fn a_listing_that_stopped_early_says_where() {
        let expected: Vec<String> = ["a", "b", "c", "d"].map(String::from).into();
        let message = listing_differs(&expected[..2], &expected, 1);
        assert!(message.starts_with("listed 2 of the 4 keys: next-cursor was none after page 1"), "{message}");
        assert!(message.contains(r#"["c", "d"]"#), "{message}");
        let message = listing_differs(&["b".into(), "a".into()], &expected, 2);
        assert!(message.contains("missing [\"c\", \"d\"]"), "{message}");
    }
}

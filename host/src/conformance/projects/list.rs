use anyhow::{Result, ensure};

use super::{input, store};
use crate::conformance::{Step, ctx, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Projects, "list"; list_pages_in_id_order);

async fn list_pages_in_id_order(s: Stores) -> Result<()> {
    let (st, base) = (store(&s), unique("plist"));
    let mut mine: Vec<String> = ["c", "a", "b", "aa", "Z"].iter().map(|n| format!("{base}-{n}")).collect();
    for id in &mine {
        st.save(&ctx(), input(id, id), None).await.step("save")?;
    }
    mine.sort();
    let (mut seen, mut cursor, mut last) = (Vec::new(), None::<String>, None::<String>);
    for _ in 0..100_000 {
        let page = st.list(&ctx(), cursor.as_deref(), 2).await.step("list")?;
        ensure!(page.items.len() <= 2, "a page of limit 2 held {} projects", page.items.len());
        for p in page.items {
            ensure!(last.as_deref() < Some(p.id.as_str()), "ids out of order: {last:?} then {:?}", p.id);
            last = Some(p.id.clone());
            if p.id.starts_with(&base) {
                seen.push(p.id);
            }
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ensure!(seen == mine, "listed {seen:?}, expected {mine:?}");
    Ok(())
}

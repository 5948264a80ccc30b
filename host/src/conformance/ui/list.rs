use anyhow::Result;

use super::{insert, store};
use crate::conformance::{Step, all_pages, ctx, ordered_and_holding, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(UiDocuments, "list"; list_pages_every_written_document);

async fn list_pages_every_written_document(s: Stores) -> Result<()> {
    let st = store(&s);
    let base = unique("doc");
    let ours: Vec<String> = ["c", "a", "b"].iter().map(|x| format!("{base}-{x}")).collect();
    for id in &ours {
        st.apply_ops(&ctx(), id, None, vec![insert("root", None, 0)]).await.step("apply-ops")?;
    }
    let page = |cursor: Option<String>| {
        let st = st.clone();
        async move { st.list(&ctx(), cursor.as_deref(), 2).await.map(|p| (p.ids, p.next_cursor)) }
    };
    let listed = all_pages("list", page).await?;
    ordered_and_holding("the documents' listing", &listed, &ours)
}

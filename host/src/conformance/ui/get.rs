use anyhow::{Result, ensure};

use super::{insert, store};
use crate::conformance::{Step, ctx, not_found, same, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(UiDocuments, "get"; get_missing_is_not_found, get_returns_applied);

async fn get_missing_is_not_found(s: Stores) -> Result<()> {
    not_found("get of a missing document", store(&s).get(&ctx(), &unique("doc")).await)
}

async fn get_returns_applied(s: Stores) -> Result<()> {
    let (st, id) = (store(&s), unique("doc"));
    let applied = st.apply_ops(&ctx(), &id, None, vec![insert("root", None, 0)]).await.step("apply-ops")?;
    let got = st.get(&ctx(), &id).await.step("get")?;
    if let Some(applied) = applied {
        same("get", &*got, "apply-ops' answer", &*applied)?;
    }
    ensure!(got.version == 1 && got.nodes.len() == 1 && got.id == id, "got {got:?}");
    Ok(())
}

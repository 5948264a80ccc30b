use anyhow::Result;

use super::{input, store};
use crate::conformance::{ctx, invalid, suite_cases};
use crate::domain::Stores;

suite_cases!(Projects, "ids"; bad_ids_are_invalid);

async fn bad_ids_are_invalid(s: Stores) -> Result<()> {
    let st = store(&s);
    let long = "p".repeat(257);
    for id in ["", "a/b", ".", "..", "nul\0byte", long.as_str()] {
        invalid(&format!("save {id:?}"), st.save(&ctx(), input(id, "x"), None).await)?;
        invalid(&format!("get {id:?}"), st.get(&ctx(), id).await)?;
        invalid(&format!("delete {id:?}"), st.delete(&ctx(), id, None).await)?;
    }
    Ok(())
}

use anyhow::{Result, ensure};

use super::{input, store};
use crate::conformance::{Step, ctx, invalid, not_found, suite_cases, unique};
use crate::domain::Stores;

suite_cases!(Projects, "ids"; bad_ids_are_invalid, longest_ids_round_trip);

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

/// Ids of 256 bytes, of one-byte and of multi-byte characters (longer than a file name may be
/// once encoded), are saved, read, listed in byte order and deleted.
async fn longest_ids_round_trip(s: Stores) -> Result<()> {
    let st = store(&s);
    let base = unique("p");
    let pad = |piece: &str| {
        let mut id = base.clone();
        while id.len() + piece.len() <= 256 {
            id.push_str(piece);
        }
        while id.len() < 256 {
            id.push('p');
        }
        id
    };
    let mut ids = vec![pad("p"), pad("日"), pad("é")];
    for id in &ids {
        st.save(&ctx(), input(id, "x"), None).await.step(&format!("save an id of {} bytes", id.len()))?;
        let got = st.get(&ctx(), id).await.step("get")?;
        ensure!(got.id == *id, "an id of 256 bytes came back as one of {}", got.id.len());
    }
    ids.sort();
    let listed = crate::conformance::all_pages("list", |cursor| {
        let st = st.clone();
        async move { st.list(&ctx(), cursor.as_deref(), 2).await.map(|p| (p.items.into_iter().map(|p| p.id).collect(), p.next_cursor)) }
    })
    .await?;
    crate::conformance::ordered_and_holding("the listing", &listed, &ids)?;
    for id in &ids {
        st.delete(&ctx(), id, None).await.step("delete")?;
        not_found("get after delete", st.get(&ctx(), id).await)?;
    }
    Ok(())
}

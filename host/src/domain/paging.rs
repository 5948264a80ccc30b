//! Walking a paged listing to its end: the listings of every domain page by a cursor.

use crate::base::{Result, StoreError};

/// Every item of a listing: `page(cursor)` gives one page and the cursor of the next (`None` on
/// the last), starting from `None`. A cursor that comes back unchanged would never end; it is
/// an `internal` error instead.
pub async fn every_page<T, F>(mut page: impl FnMut(Option<String>) -> F) -> Result<Vec<T>>
where
    F: Future<Output = Result<(Vec<T>, Option<String>)>>,
{
    let (mut all, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let (items, next) = page(cursor.clone()).await?;
        all.extend(items);
        match next {
            Some(next) if cursor.as_ref() == Some(&next) => {
                return Err(StoreError::Internal(format!("the listing gave the cursor {next:?} twice in a row")));
            }
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

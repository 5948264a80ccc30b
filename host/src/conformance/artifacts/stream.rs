//! The streaming calls: `open-write` in pieces, `open-read` of ranges, empty bodies, bodies at
//! the chunk boundaries, and writers dropped before they finish.

use std::time::Duration;

use anyhow::{Result, ensure};
use bytes::Bytes;
use futures_util::FutureExt;

use super::{sha256_hex, store};
use crate::conformance::stream::{BOUNDARIES, Change, OPENED_SIZES, check_range, feed, next_version, pattern, ranges, read_while_changed};
use crate::conformance::{Step, ctx, invalid, not_found, suite_cases, unique};
use crate::domain::body::{ByteRange, CHUNK, collect};
use crate::domain::{ArtifactMeta, ArtifactStore, Stores};

suite_cases!(Artifacts, "stream";
    written_in_pieces_reads_back,
    ranges_read_exactly,
    empty_body,
    chunk_boundaries,
    dropped_writer_leaves_nothing,
    dropped_writer_keeps_the_old_body,
    replaced_by_a_stream,
    missing_and_bad_keys,
    a_read_is_the_version_opened_while_it_is_replaced,
    a_read_is_the_version_opened_after_a_delete,
);

async fn write(st: &std::sync::Arc<dyn ArtifactStore>, key: &str, body: &Bytes, content_type: Option<&str>) -> Result<ArtifactMeta> {
    let mut sink = st.clone().open_write(&ctx(), key, content_type.map(String::from), Some(body.len() as u64)).await.step("open-write")?;
    feed(&mut sink, body).await?;
    sink.finish(&ctx()).await.step("finish")
}

async fn written_in_pieces_reads_back(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("stream/pieces"));
    let body = pattern(3 * CHUNK + 17);
    let meta = write(&st, &key, &body, Some("application/x-test")).await?;
    ensure!(meta.key == key && meta.size == body.len() as u64, "finish answered {meta:?}");
    ensure!(meta.sha256 == sha256_hex(&body), "finish's sha256 is not the body's");
    ensure!(meta.content_type.as_deref() == Some("application/x-test"), "content type {:?}", meta.content_type);
    let head = st.head(&ctx(), &key).await.step("head")?;
    ensure!(head.size == meta.size && head.sha256 == meta.sha256, "head {head:?} differs from finish {meta:?}");
    let got = st.get(&ctx(), &key).await.step("get")?;
    ensure!(got.body == body, "get of a streamed body differs");
    let reader = st.open_read(&ctx(), &key, ByteRange::ALL).await.step(st.read_call())?;
    ensure!(reader.meta.sha256 == meta.sha256 && reader.meta.size == meta.size, "{}'s metadata {:?}", st.read_call(), reader.meta);
    check_range(st.read_call(), ByteRange::ALL, reader.range, reader.body, &body).await
}

async fn ranges_read_exactly(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("stream/ranges"));
    let body = pattern(2 * CHUNK + 301);
    write(&st, &key, &body, None).await?;
    for range in ranges(body.len() as u64) {
        let reader = st.open_read(&ctx(), &key, range).await.step(&format!("{} {range:?}", st.read_call()))?;
        ensure!(reader.meta.size == body.len() as u64, "{} {range:?}: size {}", st.read_call(), reader.meta.size);
        check_range(st.read_call(), range, reader.range, reader.body, &body).await?;
    }
    // A body written whole is read in ranges too.
    let small = pattern(1000);
    st.put(&ctx(), &key, small.clone(), None).await.step("put")?;
    for range in [ByteRange::new(0, Some(1)), ByteRange::new(999, None), ByteRange::new(10, Some(20)), ByteRange::new(1000, None)] {
        let reader = st.open_read(&ctx(), &key, range).await.step(&format!("{} {range:?} of a put body", st.read_call()))?;
        check_range(&format!("{} of a put body", st.read_call()), range, reader.range, reader.body, &small).await?;
    }
    Ok(())
}

async fn empty_body(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("stream/empty"));
    let sink = st.clone().open_write(&ctx(), &key, None, Some(0)).await.step("open-write")?;
    let meta = sink.finish(&ctx()).await.step("finish with nothing written")?;
    ensure!(meta.size == 0 && meta.sha256 == sha256_hex(b""), "an empty body finished as {meta:?}");
    let reader = st.open_read(&ctx(), &key, ByteRange::ALL).await.step(st.read_call())?;
    ensure!(reader.meta.size == 0 && reader.range == (0..0), "{} of an empty body: {:?} {:?}", st.read_call(), reader.meta, reader.range);
    ensure!(collect(reader.body).await.step("read")?.is_empty(), "an empty body yielded bytes");
    let got = st.get(&ctx(), &key).await.step("get")?;
    ensure!(got.body.is_empty(), "get of an empty body yielded {} bytes", got.body.len());
    Ok(())
}

async fn chunk_boundaries(s: Stores) -> Result<()> {
    let st = store(&s);
    for size in BOUNDARIES {
        let key = unique("stream/boundary");
        let body = pattern(size);
        // One write of the whole body, and reads of the whole and of the last byte.
        let mut sink = st.clone().open_write(&ctx(), &key, None, None).await.step("open-write")?;
        sink.write(&ctx(), body.clone()).await.step("write")?;
        let meta = sink.finish(&ctx()).await.step("finish")?;
        ensure!(meta.size == size as u64, "{size} bytes finished as {}", meta.size);
        for range in [ByteRange::ALL, ByteRange::new(size as u64 - 1, None), ByteRange::new(0, Some(CHUNK as u64))] {
            let reader = st.open_read(&ctx(), &key, range).await.step(st.read_call())?;
            check_range(&format!("a body of {size} bytes"), range, reader.range, reader.body, &body).await?;
        }
    }
    Ok(())
}

async fn dropped_writer_leaves_nothing(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("stream/dropped"));
    let mut sink = st.clone().open_write(&ctx(), &key, None, None).await.step("open-write")?;
    feed(&mut sink, &pattern(CHUNK + 10)).await?;
    // Another caller does not see the body before it finishes. With one instance, that call
    // waits for the writer's instance; it is only checked when it can answer meanwhile.
    if let Ok(result) = tokio::time::timeout(Duration::from_secs(1), st.head(&ctx(), &key)).await {
        not_found("head of a body being written", result)?;
    }
    drop(sink);
    // The abort runs in the background; however soon a read comes, it finds nothing.
    for _ in 0..3 {
        not_found("get after a dropped writer", st.get(&ctx(), &key).await)?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page = st.list(&ctx(), &key, None, 10).await.step("list")?;
    ensure!(page.items.is_empty(), "a dropped writer's key is listed: {:?}", page.items);
    Ok(())
}

async fn dropped_writer_keeps_the_old_body(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("stream/keep"));
    st.put(&ctx(), &key, Bytes::from_static(b"old body"), None).await.step("put")?;
    let mut sink = st.clone().open_write(&ctx(), &key, None, None).await.step("open-write")?;
    feed(&mut sink, &pattern(2 * CHUNK)).await?;
    drop(sink);
    // Reads after the drop see the old body, however soon the abort runs.
    for _ in 0..3 {
        let got = st.get(&ctx(), &key).await.step("get")?;
        ensure!(&got.body[..] == b"old body", "a dropped writer replaced the body ({} bytes)", got.body.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn replaced_by_a_stream(s: Stores) -> Result<()> {
    let (st, key) = (store(&s), unique("stream/replace"));
    let long = pattern(CHUNK + 5000);
    write(&st, &key, &long, None).await?;
    let short = Bytes::from_static(b"short");
    let meta = write(&st, &key, &short, None).await?;
    ensure!(meta.size == 5, "replacement finished as {meta:?}");
    let got = st.get(&ctx(), &key).await.step("get")?;
    ensure!(got.body == short, "a shorter body streamed over a longer one read back {} bytes", got.body.len());
    st.delete(&ctx(), &key).await.step("delete")?;
    not_found(&format!("{} after delete", st.read_call()), st.open_read(&ctx(), &key, ByteRange::ALL).await.map(|r| r.meta))
}

async fn missing_and_bad_keys(s: Stores) -> Result<()> {
    let st = store(&s);
    not_found(
        &format!("{} of a missing key", st.read_call()),
        st.open_read(&ctx(), &unique("stream/missing"), ByteRange::ALL).await.map(|r| r.meta),
    )?;
    for key in ["", "/leading", "a//b", "a/../b"] {
        invalid(&format!("{} {key:?}", st.read_call()), st.open_read(&ctx(), key, ByteRange::ALL).await.map(|r| r.meta))?;
        invalid(&format!("open-write {key:?}"), st.clone().open_write(&ctx(), key, None, None).await.map(|_| ()))?;
    }
    Ok(())
}

/// A body opened is the version that existed at open, whole, while other versions replace it
/// before each read; and the new version is there afterwards.
async fn a_read_is_the_version_opened_while_it_is_replaced(s: Stores) -> Result<()> {
    let st = store(&s);
    for size in OPENED_SIZES {
        for range in [ByteRange::ALL, ByteRange::new(1, None)] {
            let key = unique("stream/opened");
            let body = pattern(size);
            st.put(&ctx(), &key, body.clone(), None).await.step("put")?;
            let reader = st.open_read(&ctx(), &key, range).await.step(st.read_call())?;
            let want = range.within(size as u64);
            let expected = body.slice(want.start as usize..want.end as usize);
            let (writer, written) = (st.clone(), key.clone());
            let last = std::sync::Arc::new(parking_lot::Mutex::new(Bytes::new()));
            let seen = last.clone();
            let change: Change = Box::new(move |round| {
                let (st, key, last) = (writer.clone(), written.clone(), seen.clone());
                let next = next_version(size, round);
                Some(
                    async move {
                        st.put(&ctx(), &key, next.clone(), None).await?;
                        *last.lock() = next;
                        Ok(())
                    }
                    .boxed(),
                )
            });
            read_while_changed(&format!("a body of {size} bytes, {range:?}, replaced before each read"), reader.body, &expected, change).await?;
            let now = st.get(&ctx(), &key).await.step("get after the replaces")?;
            ensure!(now.body == *last.lock(), "after the replaces, get read {} bytes that are not the last version", now.body.len());
        }
    }
    Ok(())
}

/// A body opened is the version that existed at open, whole, when the artifact is deleted
/// before its first read or after it; and it is gone afterwards.
async fn a_read_is_the_version_opened_after_a_delete(s: Stores) -> Result<()> {
    let st = store(&s);
    for size in OPENED_SIZES {
        for delete_at in [0, 1] {
            let key = unique("stream/deleted");
            let body = pattern(size);
            st.put(&ctx(), &key, body.clone(), None).await.step("put")?;
            let reader = st.open_read(&ctx(), &key, ByteRange::ALL).await.step(st.read_call())?;
            let (writer, deleted) = (st.clone(), key.clone());
            let change: Change = Box::new(move |round| {
                let (st, key) = (writer.clone(), deleted.clone());
                (round == delete_at).then(|| async move { st.delete(&ctx(), &key).await }.boxed())
            });
            read_while_changed(&format!("a body of {size} bytes deleted before read {delete_at}"), reader.body, &body, change).await?;
            not_found("get after the delete", st.get(&ctx(), &key).await.map(|a| a.meta))?;
        }
    }
    Ok(())
}

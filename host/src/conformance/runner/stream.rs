//! The streaming calls on runner files: `open-write` in pieces, `open-read` of ranges, empty
//! files, the chunk boundaries, and writers dropped before they finish.

use std::time::Duration;

use anyhow::{Result, ensure};
use bytes::Bytes;
use futures_util::FutureExt;

use super::store;
use crate::conformance::stream::{BOUNDARIES, Change, OPENED_SIZES, check_range, feed, next_version, pattern, ranges, read_while_changed};
use crate::conformance::{Step, ctx, invalid, not_found, suite_cases, unique};
use crate::domain::body::{ByteRange, CHUNK};
use crate::domain::{RunnerStore, Stores};

suite_cases!(RunnerArtifacts, "stream";
    ranges_read_exactly,
    empty_and_boundaries,
    dropped_writer_leaves_nothing,
    missing_and_bad_names,
    a_read_is_the_file_opened_while_it_is_replaced_or_removed,
);

async fn write(st: &std::sync::Arc<dyn RunnerStore>, run: &str, name: &str, body: &Bytes) -> Result<u64> {
    let mut sink = st.clone().open_write(&ctx(), run, name, Some(body.len() as u64)).await.step("open-write")?;
    feed(&mut sink, body).await?;
    sink.finish(&ctx()).await.step("finish")
}

async fn ranges_read_exactly(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    let body = pattern(2 * CHUNK + 77);
    let size = write(&st, &run, "logs/out.bin", &body).await?;
    ensure!(size == body.len() as u64, "finish answered {size} bytes for {}", body.len());
    ensure!(st.read(&ctx(), &run, "logs/out.bin").await.step("read")? == body, "read of a streamed file differs");
    for range in ranges(body.len() as u64) {
        let reader = st.open_read(&ctx(), &run, "logs/out.bin", range).await.step(&format!("{} {range:?}", st.read_call()))?;
        ensure!(reader.size == body.len() as u64, "{} {range:?}: size {}", st.read_call(), reader.size);
        check_range(st.read_call(), range, reader.range, reader.body, &body).await?;
    }
    Ok(())
}

async fn empty_and_boundaries(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    ensure!(write(&st, &run, "empty", &Bytes::new()).await? == 0, "an empty file has a size");
    ensure!(st.read(&ctx(), &run, "empty").await.step("read")?.is_empty(), "an empty file read back bytes");
    for size in BOUNDARIES {
        let body = pattern(size);
        let name = format!("b{size}");
        write(&st, &run, &name, &body).await?;
        for range in [ByteRange::ALL, ByteRange::new(size as u64 - 1, None)] {
            let reader = st.open_read(&ctx(), &run, &name, range).await.step(st.read_call())?;
            check_range(&format!("a file of {size} bytes"), range, reader.range, reader.body, &body).await?;
        }
    }
    Ok(())
}

async fn dropped_writer_leaves_nothing(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    st.write(&ctx(), &run, "kept", Bytes::from_static(b"old")).await.step("write")?;
    for name in ["kept", "new"] {
        let mut sink = st.clone().open_write(&ctx(), &run, name, None).await.step("open-write")?;
        feed(&mut sink, &pattern(CHUNK + 3)).await?;
        drop(sink);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let names = st.list(&ctx(), &run, "").await.step("list")?;
        if names == ["kept"] {
            break;
        }
        ensure!(tokio::time::Instant::now() < deadline, "after dropped writers the run lists {names:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ensure!(&st.read(&ctx(), &run, "kept").await.step("read")?[..] == b"old", "a dropped writer replaced a file");
    not_found("read of a dropped writer's file", st.read(&ctx(), &run, "new").await)
}

async fn missing_and_bad_names(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    not_found(&format!("{} of a missing file", st.read_call()), st.open_read(&ctx(), &run, "nothing", ByteRange::ALL).await.map(|r| r.size))?;
    invalid("open-write of a bad name", st.clone().open_write(&ctx(), &run, "a//b", None).await.map(|_| ()))?;
    invalid("open-write in a bad run", st.clone().open_write(&ctx(), "", "f", None).await.map(|_| ()))?;
    Ok(())
}

/// A file opened is the version that existed at open, whole, while it is rewritten before each
/// read, or removed before its first read or after it.
async fn a_read_is_the_file_opened_while_it_is_replaced_or_removed(s: Stores) -> Result<()> {
    let (st, run) = (store(&s), unique("run"));
    for size in OPENED_SIZES {
        for remove_at in [None, Some(0), Some(1)] {
            let name = unique("opened/file");
            let body = pattern(size);
            st.write(&ctx(), &run, &name, body.clone()).await.step("write")?;
            let reader = st.open_read(&ctx(), &run, &name, ByteRange::ALL).await.step(st.read_call())?;
            let (writer, run_, name_) = (st.clone(), run.clone(), name.clone());
            let change: Change = Box::new(move |round| {
                let (st, run, name) = (writer.clone(), run_.clone(), name_.clone());
                match remove_at {
                    None => {
                        let next = next_version(size, round);
                        Some(async move { st.write(&ctx(), &run, &name, next).await }.boxed())
                    }
                    Some(at) if at == round => Some(async move { st.remove(&ctx(), &run, &name).await }.boxed()),
                    Some(_) => None,
                }
            });
            let what = match remove_at {
                None => format!("a file of {size} bytes rewritten before each read"),
                Some(at) => format!("a file of {size} bytes removed before read {at}"),
            };
            read_while_changed(&what, reader.body, &body, change).await?;
            if remove_at.is_some() {
                not_found("read after the remove", st.read(&ctx(), &run, &name).await)?;
            }
        }
    }
    Ok(())
}

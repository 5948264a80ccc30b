//! What the streaming cases of artifacts and runner artifacts share: bodies with a pattern that
//! shows where a wrong byte came from, the pieces a writer is fed in, and the ranges to read.

use anyhow::{Result, ensure};
use bytes::Bytes;

use crate::domain::body::{ByteRange, CHUNK, collect};
use crate::domain::{BodySink, BodyStream};

/// `len` bytes in which no two nearby offsets hold the same byte.
pub(crate) fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect::<Vec<u8>>().into()
}

/// Sizes around the chunk the host carries in one call.
pub(crate) const BOUNDARIES: [usize; 3] = [CHUNK - 1, CHUNK, CHUNK + 1];

/// Writes `body` into `sink` in uneven pieces (1 byte, a chunk less one, a chunk and one, and
/// the rest), so that pieces cross the chunk boundaries at odd places.
pub(crate) async fn feed<Done>(sink: &mut Box<dyn BodySink<Done>>, body: &Bytes) -> Result<()> {
    let mut at = 0;
    for piece in [1, CHUNK - 1, CHUNK + 1, usize::MAX].into_iter().cycle() {
        if at >= body.len() {
            break;
        }
        let end = at.saturating_add(piece).min(body.len());
        sink.write(&super::ctx(), body.slice(at..end)).await.map_err(|e| anyhow::anyhow!("write at {at}: {e}"))?;
        at = end;
    }
    Ok(())
}

/// The ranges the range cases read of a body of `size` bytes: the first and the last byte, a
/// middle range across a chunk boundary, a suffix, an open range, one running past the end,
/// and empty ones at and past the end.
pub(crate) fn ranges(size: u64) -> Vec<ByteRange> {
    let c = CHUNK as u64;
    vec![
        ByteRange::new(0, Some(1)),
        ByteRange::new(size - 1, Some(1)),
        ByteRange::new(c - 7, Some(14)),
        ByteRange::new(c - 1, Some(c + 2)),
        ByteRange::new(size - 100, None),
        ByteRange::new(17, None),
        ByteRange::new(size - 5, Some(50)),
        ByteRange::new(size, Some(1)),
        ByteRange::new(size + 10, None),
        ByteRange::ALL,
    ]
}

/// Reads `body` (of `size` bytes) whole and checks it is `expected[range]`.
pub(crate) async fn check_range(what: &str, range: ByteRange, got: std::ops::Range<u64>, body: BodyStream, expected: &Bytes) -> Result<()> {
    let want = range.within(expected.len() as u64);
    ensure!(got == want, "{what} {range:?}: the reader covers {got:?}, expected {want:?}");
    let bytes = collect(body).await.map_err(|e| anyhow::anyhow!("{what} {range:?}: {e}"))?;
    let want = &expected[want.start as usize..want.end as usize];
    ensure!(bytes.len() == want.len(), "{what} {range:?}: read {} bytes, expected {}", bytes.len(), want.len());
    ensure!(bytes == want, "{what} {range:?}: the bytes differ from what was written");
    Ok(())
}

/// The sizes the read-while-written cases open: 1 byte, one chunk, one chunk and a byte, and
/// several chunks.
pub(crate) const OPENED_SIZES: [usize; 4] = [1, CHUNK, CHUNK + 1, 3 * CHUNK];

/// The reads of a read-while-written case that a change comes before (a body read in small
/// pieces is not rewritten before every one of them).
const CHANGED_READS: u32 = 4;

/// The version a read-while-written case writes in `round` over a body of `size` bytes: of
/// another size each round (shorter, then longer, than the one opened), and differing from
/// [`pattern`] (and from other rounds) at every offset.
pub(crate) fn next_version(size: usize, round: u32) -> Bytes {
    let len = if round.is_multiple_of(2) { 3 } else { size + CHUNK / 2 };
    pattern(len).iter().map(|b| b ^ (0x5a ^ round as u8) | 1).collect::<Vec<u8>>().into()
}

/// What a read-while-written case does to what the reader was opened on, before a read:
/// `None` when it leaves it alone that round.
pub(crate) type Change = Box<dyn FnMut(u32) -> Option<futures_util::future::BoxFuture<'static, crate::domain::Result<()>>> + Send>;

/// Reads `body` to its end, running `change` before each read (a replace or a delete of what it
/// was opened on), and checks that it yields `expected` whole: the version that existed at open.
///
/// A target that runs one call at a time (one instance) cannot run a change while a reader holds
/// it: a change that has not finished within a second is left queued behind the reader, and
/// awaited once the reader is dropped.
pub(crate) async fn read_while_changed(what: &str, mut body: BodyStream, expected: &Bytes, mut change: Change) -> Result<()> {
    use futures_util::StreamExt;
    let mut queued = None;
    let mut got = Vec::with_capacity(expected.len());
    for round in 0.. {
        if queued.is_none()
            && round < CHANGED_READS
            && let Some(future) = change(round)
        {
            let mut task = tokio::spawn(future);
            match tokio::time::timeout(std::time::Duration::from_secs(1), &mut task).await {
                Ok(done) => done
                    .map_err(|e| anyhow::anyhow!("{what}: the change panicked: {e}"))?
                    .map_err(|e| anyhow::anyhow!("{what}: change {round}: {e}"))?,
                Err(_) => queued = Some(task),
            }
        }
        match body.next().await {
            Some(Ok(chunk)) => got.extend_from_slice(&chunk),
            Some(Err(e)) => anyhow::bail!("{what}: after {} of {} bytes, a change (round {round}) failed the read: {e}", got.len(), expected.len()),
            None => break,
        }
    }
    drop(body);
    if let Some(task) = queued {
        task.await.map_err(|e| anyhow::anyhow!("{what}: the change panicked: {e}"))?.map_err(|e| anyhow::anyhow!("{what}: a queued change: {e}"))?;
    }
    ensure!(got.len() == expected.len(), "{what}: read {} bytes of the {} opened", got.len(), expected.len());
    ensure!(got == expected[..], "{what}: the bytes read are not the version that was opened");
    Ok(())
}

//! The runner's artifact store (seed: `runner.ArtifactStore`), kept apart from the gateway
//! caches: no cache decorator, only metrics.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::artifact::check_whole;
use super::body::{self, BodySink, BodyStream, ByteRange, Gathered, WHOLE_BODY_LIMIT};
use super::operations;
use crate::base::{Ctx, Result};

operations!(
    /// The operations of [`RunnerStore`].
    RunnerOperation for Runner {
        Read = "read",
        Write = "write" [write],
        Remove = "remove" [write],
        List = "list",
        ListRuns = "list-runs",
        OpenRead = "open-read",
        OpenWrite = "open-write" [write],
        FinishWrite = "finish-write" [write],
    }
);

/// A streamed read of a run's file: its whole size, the bytes the read covers, and those bytes.
pub struct RunnerReader {
    pub size: u64,
    pub range: Range<u64>,
    pub body: BodyStream,
}

impl RunnerReader {
    /// `range` of a file read whole.
    pub fn sliced(data: Bytes, range: ByteRange) -> Self {
        let size = data.len() as u64;
        let range = range.within(size);
        Self { size, body: body::once(data.slice(range.start as usize..range.end as usize)), range }
    }
}

/// A page of the runs that have files, in byte order.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunPage {
    pub runs: Vec<String>,
    pub next_cursor: Option<String>,
}

/// Where a streamed write of a run's file goes; [`finish`](BodySink::finish) gives its size.
pub type RunnerSink = Box<dyn BodySink<u64>>;

/// A sink that gathers the data (up to [`WHOLE_BODY_LIMIT`]) and writes it whole into
/// `store`: the default [`RunnerStore::open_write`].
pub fn gathered<S: RunnerStore + ?Sized>(store: Arc<S>, run: &str, name: &str, size_hint: Option<u64>) -> Result<RunnerSink> {
    check_whole(size_hint)?;
    let (run, name) = (run.to_string(), name.to_string());
    Ok(Box::new(Gathered::new(
        WHOLE_BODY_LIMIT,
        Box::new(move |ctx, data: Bytes| {
            Box::pin(async move {
                let size = data.len() as u64;
                store.write(&ctx, &run, &name, data).await.map(|()| size)
            })
        }),
    )))
}

/// The runner artifact contract: files of a run, by name.
#[async_trait]
pub trait RunnerStore: Send + Sync + 'static {
    async fn read(&self, ctx: &Ctx, run: &str, name: &str) -> Result<Bytes>;
    async fn write(&self, ctx: &Ctx, run: &str, name: &str, data: Bytes) -> Result<()>;
    /// Removing a missing file succeeds.
    async fn remove(&self, ctx: &Ctx, run: &str, name: &str) -> Result<()>;
    /// Names starting with `prefix`, in byte order.
    async fn list(&self, ctx: &Ctx, run: &str, prefix: &str) -> Result<Vec<String>>;
    /// The runs that have files, in byte order, after `cursor`, at most `limit` (0: the default).
    async fn list_runs(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<RunPage>;

    /// Reads `range` of a file as a stream. By default, the whole file is read and sliced.
    async fn open_read(&self, ctx: &Ctx, run: &str, name: &str, range: ByteRange) -> Result<RunnerReader> {
        Ok(RunnerReader::sliced(self.read(ctx, run, name).await?, range))
    }

    /// Opens a streamed write of a file (`size_hint`: its length, when known); it changes when
    /// the sink finishes. By default the data is gathered (up to [`WHOLE_BODY_LIMIT`]) and
    /// written whole.
    async fn open_write(self: Arc<Self>, ctx: &Ctx, run: &str, name: &str, size_hint: Option<u64>) -> Result<RunnerSink> {
        let _ = ctx;
        gathered(self, run, name, size_hint)
    }

    /// Whether the `open_` calls stream (`false`: the defaults, which hold a file whole).
    fn streams(&self) -> bool {
        false
    }

    /// The origin call [`open_read`](Self::open_read) makes, as messages about it name it.
    fn read_call(&self) -> &'static str {
        "open-read"
    }
}

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::stream::{self, Writer};
use super::{check_key_len, open_body, open_session, plugin_call, plugin_call_v2, require_export, require_listing, session_call, streams_through};
use crate::base::{Ctx, Result};
use crate::domain::body::CHUNK;
use crate::domain::runner;
use crate::domain::{ByteRange, RunPage, RunnerReader, RunnerSink, RunnerStore};
use crate::runtime::{Interface, Plugin, Session};

/// [`RunnerStore`] over a plugin exporting `storehost:origin/runner-artifacts`. Files stream
/// through a 0.2.0 plugin; a 0.1.0 one takes and gives them whole.
#[derive(Clone, Debug)]
pub struct PluginRunnerStore {
    plugin: Plugin,
    streams: bool,
}

impl PluginRunnerStore {
    pub fn new(plugin: Plugin) -> anyhow::Result<Self> {
        require_export(&plugin, Interface::RunnerArtifacts)?;
        Ok(Self { streams: streams_through(&plugin), plugin })
    }

    fn check(&self, run: &str, name: &str) -> Result<(String, String)> {
        check_key_len(&self.plugin, "the file name", name)?;
        Ok((run.to_string(), name.to_string()))
    }

    /// `runner-bodies.open`: a file the plugin keeps as a file is read here, without the plugin,
    /// whose instance goes back to the pool at once; any other, through the plugin's reader as
    /// `open-read` gives it.
    async fn open_body(&self, ctx: &Ctx, run: String, name: String, range: ByteRange) -> Result<RunnerReader> {
        let (size, opened): (u64, _) =
            open_body!(self.plugin, ctx, "runner-bodies.open", runner_bodies, |g, s| g.call_open(&mut *s, &run, &name, range.offset, range.len))
                .await?;
        let range = range.within(size);
        let body = stream::opened(&self.plugin, size, range.clone(), opened, ctx, read_chunk)?;
        Ok(RunnerReader { size, range, body })
    }
}

/// The next chunk of a run's file from the plugin's reader.
fn read_chunk<'a>(session: &'a mut Session, ctx: &'a Ctx) -> futures_util::future::BoxFuture<'a, Result<Option<Vec<u8>>>> {
    session_call!(session, ctx, "runner-artifacts.file-reader.read", runner_artifacts.file_reader, |g, s, r| g.call_read(s, r, CHUNK as u32))
}

#[async_trait]
impl RunnerStore for PluginRunnerStore {
    async fn read(&self, ctx: &Ctx, run: &str, name: &str) -> Result<Bytes> {
        let (run, name) = self.check(run, name)?;
        let data: Vec<u8> = plugin_call!(self.plugin, ctx, "runner-artifacts.read", runner_artifacts, |g, s| g.call_read(s, &run, &name)).await?;
        Ok(Bytes::from(data))
    }

    async fn write(&self, ctx: &Ctx, run: &str, name: &str, data: Bytes) -> Result<()> {
        let (run, name) = self.check(run, name)?;
        plugin_call!(self.plugin, ctx, "runner-artifacts.write", runner_artifacts, |g, s| g.call_write(s, &run, &name, &data)).await
    }

    async fn remove(&self, ctx: &Ctx, run: &str, name: &str) -> Result<()> {
        let (run, name) = self.check(run, name)?;
        plugin_call!(self.plugin, ctx, "runner-artifacts.remove", runner_artifacts, |g, s| g.call_remove(s, &run, &name)).await
    }

    async fn list(&self, ctx: &Ctx, run: &str, prefix: &str) -> Result<Vec<String>> {
        let (run, prefix) = (run.to_string(), prefix.to_string());
        plugin_call!(self.plugin, ctx, "runner-artifacts.list", runner_artifacts, |g, s| g.call_list(s, &run, &prefix)).await
    }

    async fn list_runs(&self, ctx: &Ctx, cursor: Option<&str>, limit: u32) -> Result<RunPage> {
        require_listing(&self.plugin, "runs")?;
        let cursor = cursor.map(String::from);
        plugin_call_v2!(self.plugin, ctx, "runner-artifacts.list-runs", runner_artifacts, |g, s| async {
            let page = g.call_list_runs(s, cursor.as_deref(), limit).await?;
            Ok::<_, wasmtime::Error>(page.map(|p| RunPage { runs: p.runs, next_cursor: p.next_cursor }))
        })
        .await
    }

    async fn open_read(&self, ctx: &Ctx, run: &str, name: &str, range: ByteRange) -> Result<RunnerReader> {
        let (run, name) = self.check(run, name)?;
        if !self.streams {
            return Ok(RunnerReader::sliced(self.read(ctx, &run, &name).await?, range));
        }
        if self.plugin.exports().contains(Interface::RunnerBodies) {
            return self.open_body(ctx, run, name, range).await;
        }
        let (size, session) = open_session!(self.plugin, ctx, "runner-artifacts.open-read", runner_artifacts, |g, s| {
            g.call_open_read(s, &run, &name, range.offset, range.len)
        })
        .await?;
        let range = range.within(size);
        let body = stream::reader(session, ctx, range.end - range.start, read_chunk);
        Ok(RunnerReader { size, range, body })
    }

    async fn open_write(self: Arc<Self>, ctx: &Ctx, run: &str, name: &str, size_hint: Option<u64>) -> Result<RunnerSink> {
        let (run, name) = self.check(run, name)?;
        if !self.streams {
            // The plugin sees the names only at the end: refuse bad ones now.
            crate::domain::validate_run(&run)?;
            crate::domain::validate_key(&name)?;
            return runner::gathered(self, &run, &name, size_hint);
        }
        let ((), session) = open_session!(self.plugin, ctx, "runner-artifacts.open-write", runner_artifacts, |g, s| async {
            Ok::<_, wasmtime::Error>(g.call_open_write(s, &run, &name, size_hint).await?.map(|writer| ((), writer)))
        })
        .await?;
        Ok(Box::new(Writer::new(
            session,
            |session, ctx, chunk| {
                session_call!(session, ctx, "runner-artifacts.file-writer.write", runner_artifacts.file_writer, |g, s, w| g.call_write(s, w, &chunk))
            },
            |session, ctx, _| {
                session_call!(session, ctx, "runner-artifacts.file-writer.finish", runner_artifacts.file_writer, |g, s, w| g.call_finish(s, w))
            },
        )))
    }

    fn streams(&self) -> bool {
        self.streams
    }

    fn read_call(&self) -> &'static str {
        if !self.streams {
            "runner-artifacts.read"
        } else if self.plugin.exports().contains(Interface::RunnerBodies) {
            "runner-bodies.open"
        } else {
            "runner-artifacts.open-read"
        }
    }
}

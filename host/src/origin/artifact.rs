use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::stream::{self, Writer};
use super::{check_key_len, for_each_version, mirror, open_body, open_session, plugin_call, require_export, session_call, streams_through};
use crate::base::{Ctx, Result};
use crate::domain::artifact;
use crate::domain::body::CHUNK;
use crate::domain::{Artifact, ArtifactMeta, ArtifactPage, ArtifactReader, ArtifactSink, ArtifactStore, ByteRange, Served};
use crate::runtime::{Interface, Plugin, Session};

for_each_version!(artifacts =>
    mirror!(wit::ArtifactMeta => ArtifactMeta { key, size, content_type, sha256, created_at });

    impl From<wit::Artifact> for Artifact {
        fn from(a: wit::Artifact) -> Self {
            Artifact::new(a.meta.into(), Bytes::from(a.body))
        }
    }

    impl From<wit::ArtifactPage> for ArtifactPage {
        fn from(page: wit::ArtifactPage) -> Self {
            ArtifactPage { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor }
        }
    }
);

/// [`ArtifactStore`] over a plugin exporting `storehost:origin/artifacts`. Bodies stream through
/// a 0.2.0 plugin (see [`ArtifactStore::streams`]); a 0.1.0 one takes and gives them whole.
#[derive(Clone, Debug)]
pub struct PluginArtifactStore {
    plugin: Plugin,
    streams: bool,
}

impl PluginArtifactStore {
    pub fn new(plugin: Plugin) -> anyhow::Result<Self> {
        require_export(&plugin, Interface::Artifacts)?;
        Ok(Self { streams: streams_through(&plugin), plugin })
    }

    fn check(&self, key: &str) -> Result<String> {
        check_key_len(&self.plugin, "the key", key)?;
        Ok(key.to_string())
    }

    /// `artifact-bodies.open`: a body the plugin keeps in a file is read here, without the
    /// plugin, whose instance goes back to the pool at once; any other, through the plugin's
    /// reader as `open-read` gives it.
    async fn open_body(&self, ctx: &Ctx, key: String, range: ByteRange) -> Result<ArtifactReader> {
        let (meta, opened): (ArtifactMeta, _) =
            open_body!(self.plugin, ctx, "artifact-bodies.open", artifact_bodies, |g, s| g.call_open(&mut *s, &key, range.offset, range.len)).await?;
        let range = range.within(meta.size);
        let body = stream::opened(&self.plugin, meta.size, range.clone(), opened, ctx, read_chunk)?;
        Ok(ArtifactReader { meta, range, body, served: Served::Origin })
    }
}

/// The next chunk of an artifact's body from the plugin's reader.
fn read_chunk<'a>(session: &'a mut Session, ctx: &'a Ctx) -> futures_util::future::BoxFuture<'a, Result<Option<Vec<u8>>>> {
    session_call!(session, ctx, "artifacts.body-reader.read", artifacts.body_reader, |g, s, r| g.call_read(s, r, CHUNK as u32))
}

#[async_trait]
impl ArtifactStore for PluginArtifactStore {
    async fn put(&self, ctx: &Ctx, key: &str, body: Bytes, content_type: Option<String>) -> Result<ArtifactMeta> {
        let key = self.check(key)?;
        plugin_call!(self.plugin, ctx, "artifacts.put", artifacts, |g, s| g.call_put(s, &key, &body, content_type.as_deref())).await
    }

    async fn get(&self, ctx: &Ctx, key: &str) -> Result<Artifact> {
        let key = self.check(key)?;
        plugin_call!(self.plugin, ctx, "artifacts.get", artifacts, |g, s| g.call_get(s, &key)).await
    }

    async fn head(&self, ctx: &Ctx, key: &str) -> Result<ArtifactMeta> {
        let key = self.check(key)?;
        plugin_call!(self.plugin, ctx, "artifacts.head", artifacts, |g, s| g.call_head(s, &key)).await
    }

    async fn list(&self, ctx: &Ctx, prefix: &str, cursor: Option<&str>, limit: u32) -> Result<ArtifactPage> {
        let (prefix, cursor) = (prefix.to_string(), cursor.map(String::from));
        plugin_call!(self.plugin, ctx, "artifacts.list", artifacts, |g, s| g.call_list(s, &prefix, cursor.as_deref(), limit)).await
    }

    async fn get_url(&self, ctx: &Ctx, key: &str, expires_in_secs: u32) -> Result<Option<String>> {
        let key = self.check(key)?;
        plugin_call!(self.plugin, ctx, "artifacts.get-url", artifacts, |g, s| g.call_get_url(s, &key, expires_in_secs)).await
    }

    async fn delete(&self, ctx: &Ctx, key: &str) -> Result<()> {
        let key = self.check(key)?;
        plugin_call!(self.plugin, ctx, "artifacts.delete", artifacts, |g, s| g.call_delete(s, &key)).await
    }

    async fn open_read(&self, ctx: &Ctx, key: &str, range: ByteRange) -> Result<ArtifactReader> {
        let key = self.check(key)?;
        if !self.streams {
            return Ok(ArtifactReader::sliced(self.get(ctx, &key).await?, range));
        }
        if self.plugin.exports().contains(Interface::ArtifactBodies) {
            return self.open_body(ctx, key, range).await;
        }
        let (meta, session): (ArtifactMeta, _) = open_session!(self.plugin, ctx, "artifacts.open-read", artifacts, |g, s| async {
            Ok::<_, wasmtime::Error>(
                g.call_open_read(s, &key, range.offset, range.len).await?.map(|(meta, reader)| (ArtifactMeta::from(meta), reader)),
            )
        })
        .await?;
        let range = range.within(meta.size);
        let body = stream::reader(session, ctx, range.end - range.start, read_chunk);
        Ok(ArtifactReader { meta, range, body, served: Served::Origin })
    }

    async fn open_write(self: Arc<Self>, ctx: &Ctx, key: &str, content_type: Option<String>, size_hint: Option<u64>) -> Result<ArtifactSink> {
        let key = self.check(key)?;
        if !self.streams {
            // The plugin sees the key only at the end: refuse a bad one now.
            crate::domain::validate_key(&key)?;
            return artifact::gathered(self, &key, content_type, size_hint);
        }
        let ((), session) = open_session!(self.plugin, ctx, "artifacts.open-write", artifacts, |g, s| async {
            Ok::<_, wasmtime::Error>(g.call_open_write(s, &key, content_type.as_deref(), size_hint).await?.map(|writer| ((), writer)))
        })
        .await?;
        Ok(Box::new(Writer::hashed(
            session,
            |session, ctx, chunk| {
                session_call!(session, ctx, "artifacts.body-writer.write", artifacts.body_writer, |g, s, w| g.call_write(s, w, &chunk))
            },
            |session, ctx, sha256| {
                Box::pin(async move {
                    let sha256 = sha256.unwrap_or_default();
                    let meta: ArtifactMeta = session_call!(session, ctx, "artifacts.body-writer.finish", artifacts.body_writer, |g, s, w| g
                        .call_finish(s, w, &sha256))
                    .await?;
                    Ok(meta)
                })
            },
        )))
    }

    fn streams(&self) -> bool {
        self.streams
    }

    fn read_call(&self) -> &'static str {
        if !self.streams {
            "artifacts.get"
        } else if self.plugin.exports().contains(Interface::ArtifactBodies) {
            "artifact-bodies.open"
        } else {
            "artifacts.open-read"
        }
    }

    fn max_key_bytes(&self) -> usize {
        self.plugin.info().max_key_bytes as usize
    }
}

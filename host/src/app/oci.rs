//! Plugins from OCI registries: `source = { oci = "REGISTRY/REPOSITORY:TAG", digest = "sha256:…" }`.
//!
//! A component is stored in a registry as the Bytecode Alliance's tools store it (`wkg oci
//! push`): an OCI image manifest with one layer of type `application/wasm` and a config of type
//! `application/vnd.wasm.config.v0+json`. Every pull is verified: the manifest's bytes hash to
//! the digest asked for (when one is), and the layer's to the digest the manifest names. What was
//! pulled is kept by its manifest's digest in the components cache, beside the compiled-code
//! cache, so a host whose digest is known (the manifest's, the lock file's, or the one a tag last
//! resolved to) starts without the registry.
//!
//! Credentials come from `[registries."HOST"]` (`username`, `password`), or else from the
//! Docker configuration (`~/.docker/config.json`, or `$DOCKER_CONFIG`), or else none. A
//! registry is reached over HTTPS unless its table says `insecure = true`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::base::{chain, write_replacing};

/// The media type of a component's layer.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The media type of a component's config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The layer type of the earlier wasm-to-oci convention, still accepted in a pull.
const EARLIER_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";

/// Annotations of a pushed component's manifest: the storehost contract it exports and what its
/// `describe()` says.
pub const CONTRACT_ANNOTATION: &str = "dev.storehost.contract";
pub const NAME_ANNOTATION: &str = "dev.storehost.plugin.name";
pub const VERSION_ANNOTATION: &str = "org.opencontainers.image.version";
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";

/// `[registries."HOST"]`: how to reach one registry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub username: Option<String>,
    pub password: Option<String>,
    /// Plain HTTP instead of HTTPS (a registry on loopback or a private network).
    #[serde(default)]
    pub insecure: bool,
}

/// What is wrong with a digest as a manifest may write it (`sha256:` and 64 lower-case hex
/// digits), if anything.
pub fn digest_problem(digest: &str) -> Option<String> {
    let ok =
        digest.strip_prefix("sha256:").is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    (!ok).then(|| format!("{digest:?} is not a digest: `sha256:` and 64 lower-case hex digits"))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A reference, parsed.
pub fn parse(reference: &str) -> Result<Reference> {
    let parsed: Reference = reference.parse().map_err(|e| anyhow!("{reference:?} is not an OCI reference (REGISTRY/REPOSITORY:TAG): {e}"))?;
    if parsed.registry() == "docker.io" && !reference.starts_with("docker.io/") {
        bail!("{reference:?} names no registry: write it as REGISTRY/REPOSITORY:TAG (e.g. ghcr.io/team/plugin:1.0)");
    }
    Ok(parsed)
}

/// The registries a manifest describes, and the clients to reach them.
#[derive(Clone, Debug, Default)]
pub struct Registries {
    configs: BTreeMap<String, RegistryConfig>,
}

impl Registries {
    pub fn new(configs: BTreeMap<String, RegistryConfig>) -> Self {
        Self { configs }
    }

    /// These registries, with `host` reached over plain HTTP too.
    pub fn insecure(mut self, host: &str) -> Self {
        self.configs.entry(host.to_string()).or_default().insecure = true;
        self
    }

    /// A client for `reference`'s registry, and its credentials.
    fn client(&self, reference: &Reference) -> Result<(Client, RegistryAuth)> {
        static PROVIDER: std::sync::Once = std::sync::Once::new();
        PROVIDER.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let host = reference.resolve_registry();
        let config = self.configs.get(host).or_else(|| self.configs.get(reference.registry()));
        let protocol = match config {
            Some(c) if c.insecure => ClientProtocol::HttpsExcept(vec![host.to_string()]),
            _ => ClientProtocol::Https,
        };
        let client = Client::try_from(ClientConfig { protocol, ..Default::default() }).context("an OCI client")?;
        let auth = match config {
            Some(RegistryConfig { username: Some(user), password: Some(password), .. }) => RegistryAuth::Basic(user.clone(), password.clone()),
            Some(RegistryConfig { username: Some(_), password: None, .. }) | Some(RegistryConfig { username: None, password: Some(_), .. }) => {
                bail!("registries.{host:?}: username and password go together")
            }
            _ => match docker_credential::get_credential(host) {
                Ok(docker_credential::DockerCredential::UsernamePassword(user, password)) => RegistryAuth::Basic(user, password),
                _ => RegistryAuth::Anonymous,
            },
        };
        Ok((client, auth))
    }
}

/// Components pulled from registries, by the digest of their manifest: `DIR/sha256/HEX/` holds
/// the manifest as the registry served it and the component; `DIR/tags/` what each reference
/// last resolved to.
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join("sha256").join(digest.trim_start_matches("sha256:"))
    }

    fn tag_file(&self, reference: &str) -> PathBuf {
        self.dir.join("tags").join(hex::encode(Sha256::digest(reference.as_bytes())))
    }

    /// The component of `digest`, if it is kept and whole: its manifest hashes to `digest` and
    /// its bytes to the digest of the manifest's layer.
    pub fn get(&self, digest: &str) -> Option<Vec<u8>> {
        self.kept(digest).map(|(wasm, _)| wasm)
    }

    /// [`get`](Self::get), with the component's manifest.
    fn kept(&self, digest: &str) -> Option<(Vec<u8>, OciImageManifest)> {
        let entry = self.entry(digest);
        let manifest = std::fs::read(entry.join("manifest.json")).ok()?;
        if sha256(&manifest) != digest {
            return None;
        }
        let manifest: OciImageManifest = serde_json::from_slice(&manifest).ok()?;
        let wasm = std::fs::read(entry.join("component.wasm")).ok()?;
        (sha256(&wasm) == component_layer(&manifest).ok()?.digest).then_some((wasm, manifest))
    }

    fn put(&self, digest: &str, manifest: &[u8], wasm: &[u8]) -> Result<()> {
        let entry = self.entry(digest);
        // The manifest last: an entry without it is not kept.
        write_replacing(&entry.join("component.wasm"), wasm)?;
        write_replacing(&entry.join("manifest.json"), manifest)
    }

    /// The digest `reference` last resolved to.
    fn tag(&self, reference: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.tag_file(reference)).ok()?;
        let (named, digest) = text.trim().rsplit_once(' ')?;
        (named == reference && digest_problem(digest).is_none()).then(|| digest.to_string())
    }

    fn set_tag(&self, reference: &str, digest: &str) -> Result<()> {
        write_replacing(&self.tag_file(reference), format!("{reference} {digest}\n").as_bytes())
    }
}

/// How a pulled component was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// In the cache, by a digest the caller knew.
    Cache,
    /// In the cache, by the digest its tag last resolved to: the registry could not be reached.
    CachedTag,
    /// In the registry.
    Registry,
}

/// A component pulled (or found in the cache) and the digest of its manifest.
pub struct Pulled {
    pub wasm: Vec<u8>,
    pub digest: String,
    pub found: Found,
    /// Its manifest's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// The one layer of a component's manifest.
fn component_layer(manifest: &OciImageManifest) -> Result<&OciDescriptor> {
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == LAYER_MEDIA_TYPE || layer.media_type == EARLIER_LAYER_MEDIA_TYPE => Ok(layer),
        layers => bail!(
            "it is not a wasm component: a component has one layer of type {LAYER_MEDIA_TYPE}, this has [{}]",
            layers.iter().map(|l| l.media_type.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Whether an error is the registry not answering at all.
fn unreachable(error: &OciDistributionError) -> bool {
    matches!(error, OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout())
}

/// What a failed registry call means to the person who configured it.
fn explained(error: OciDistributionError) -> anyhow::Error {
    use oci_client::errors::OciErrorCode as Code;
    let codes: Vec<&Code> = match &error {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().map(|e| &e.code).collect(),
        _ => Vec::new(),
    };
    let status = match &error {
        OciDistributionError::ServerError { code, .. } => Some(*code),
        _ => None,
    };
    let unknown = matches!(error, OciDistributionError::ImageManifestNotFoundError(_))
        || status == Some(404)
        || codes.iter().any(|c| matches!(c, Code::ManifestUnknown | Code::NameUnknown | Code::NotFound | Code::BlobUnknown));
    let denied = matches!(error, OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_))
        || matches!(status, Some(401 | 403))
        || codes.iter().any(|c| matches!(c, Code::Unauthorized | Code::Denied));
    match &error {
        e if unreachable(e) => anyhow!("the registry cannot be reached: {}", chain(e)),
        _ if unknown => anyhow!("no such tag or digest in the registry ({error})"),
        _ if denied => anyhow!("the registry denied access ({error}); give credentials in [registries.\"HOST\"] or the Docker configuration"),
        OciDistributionError::DigestError(_) => anyhow!("the registry's bytes do not hash to their digest: refused ({error})"),
        _ => anyhow!("{}", chain(&error)),
    }
}

/// The component `reference` names, pinned to `digest` when given: from the cache when it holds
/// that digest, else from the registry (verified, then kept). Without a digest the registry
/// says what the tag names now; when it cannot be reached, the digest the tag last resolved to
/// is used, if its component is kept.
///
/// `bar` follows the component's bytes as they arrive (`ProgressBar::hidden()` for none).
pub async fn pull(reference: &str, digest: Option<&str>, cache: &Cache, registries: &Registries, bar: &indicatif::ProgressBar) -> Result<Pulled> {
    let parsed = parse(reference)?;
    let cached = |digest: &str, found| {
        let (wasm, manifest) = cache.kept(digest)?;
        Some(Pulled { wasm, digest: digest.to_string(), found, annotations: manifest.annotations.unwrap_or_default() })
    };
    if let Some(digest) = digest {
        if let Some(problem) = digest_problem(digest) {
            bail!("{problem}");
        }
        if let Some(pulled) = cached(digest, Found::Cache) {
            return Ok(pulled);
        }
    }
    let pinned = match digest {
        Some(digest) => Reference::with_digest(parsed.registry().to_string(), parsed.repository().to_string(), digest.to_string()),
        None => parsed.clone(),
    };
    let (client, auth) = registries.client(&parsed)?;
    let (raw, _) = match client.pull_manifest_raw(&pinned, &auth, &[OCI_IMAGE_MEDIA_TYPE]).await {
        Ok(fetched) => fetched,
        Err(e) if digest.is_none() && unreachable(&e) => {
            if let Some(pulled) = cache.tag(reference).and_then(|d| cached(&d, Found::CachedTag)) {
                return Ok(pulled);
            }
            bail!("{}, and no digest of it is cached (pin one with `digest`, or run `storehost lock` while the registry is up)", explained(e));
        }
        Err(e) => return Err(explained(e)),
    };
    let actual = sha256(&raw);
    if let Some(digest) = digest
        && actual != digest
    {
        bail!("the registry's manifest for {digest} hashes to {actual}: refused");
    }
    let manifest: OciImageManifest = serde_json::from_slice(&raw).context("its manifest is not an OCI image manifest")?;
    let layer = component_layer(&manifest)?.clone();
    let mut wasm = Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0));
    bar.set_length(u64::try_from(layer.size).unwrap_or(0));
    // The client hashes the bytes as they come and refuses them unless they are the layer's.
    client.pull_blob(&pinned, &layer, Counted { out: &mut wasm, bar }).await.map_err(explained)?;
    bar.finish_and_clear();
    cache.put(&actual, &raw, &wasm).context("keeping it in the components cache")?;
    if digest.is_none() {
        cache.set_tag(reference, &actual).context("recording its digest in the components cache")?;
    }
    Ok(Pulled { wasm, digest: actual, found: Found::Registry, annotations: manifest.annotations.unwrap_or_default() })
}

/// A pull's bytes, counted on a progress bar.
struct Counted<'a> {
    out: &'a mut Vec<u8>,
    bar: &'a indicatif::ProgressBar,
}

impl tokio::io::AsyncWrite for Counted<'_> {
    fn poll_write(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        this.out.extend_from_slice(buf);
        this.bar.inc(buf.len() as u64);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The digest `reference` names in its registry now.
pub async fn resolve(reference: &str, registries: &Registries) -> Result<String> {
    let parsed = parse(reference)?;
    let (client, auth) = registries.client(&parsed)?;
    let (raw, _) = client.pull_manifest_raw(&parsed, &auth, &[OCI_IMAGE_MEDIA_TYPE]).await.map_err(explained)?;
    Ok(sha256(&raw))
}

/// Pushes `wasm` (a component; `file_name` names its layer) to `reference` with `annotations`
/// on its manifest; the digest of the manifest pushed.
pub async fn push(wasm: Vec<u8>, file_name: &str, reference: &str, annotations: BTreeMap<String, String>, registries: &Registries) -> Result<String> {
    let parsed = parse(reference)?;
    let layer = ImageLayer::new(wasm, LAYER_MEDIA_TYPE.to_string(), Some(BTreeMap::from([(TITLE_ANNOTATION.to_string(), file_name.to_string())])));
    let config = serde_json::json!({
        "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer.sha256_digest()],
    });
    let config = Config::new(serde_json::to_vec(&config)?, CONFIG_MEDIA_TYPE.to_string(), None);
    let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, Some(annotations));
    manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_string());
    let (client, auth) = registries.client(&parsed)?;
    let pushed = client.push(&parsed, &[layer], config, &auth, Some(manifest)).await.map_err(explained)?;
    let digest = pushed.manifest_url.rsplit('/').next().unwrap_or_default().to_string();
    match digest_problem(&digest) {
        None => Ok(digest),
        Some(_) => resolve(reference, registries).await,
    }
}

/// The lock file beside a manifest (`m.toml` → `m.lock`): the digest each registry source
/// resolved to when `storehost lock` last ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    #[serde(default)]
    pub plugins: BTreeMap<String, Locked>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Locked {
    pub oci: String,
    pub digest: String,
}

impl Lock {
    /// The lock file of the manifest at `manifest`.
    pub fn path_of(manifest: &Path) -> PathBuf {
        manifest.with_extension("lock")
    }

    /// The lock file at `path`, if there is one.
    pub fn load(path: &Path) -> Result<Option<Lock>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let lock: Lock = toml::from_str(&text).with_context(|| format!("{}: not a storehost lock file", path.display()))?;
        for (name, locked) in &lock.plugins {
            if let Some(problem) = digest_problem(&locked.digest) {
                bail!("{}: plugins.{name}.digest: {problem}", path.display());
            }
        }
        Ok(Some(lock))
    }

    /// The digest locked for plugin `name`, if its reference is still `reference`.
    pub fn digest(&self, name: &str, reference: &str) -> Option<&str> {
        self.plugins.get(name).filter(|l| l.oci == reference).map(|l| l.digest.as_str())
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = String::from(
            "# Written by `storehost lock`: the digest each registry source resolved to. `serve` and `check`\n# load these bytes; run `storehost lock` again to pick up tags that moved.\n\n",
        );
        text.push_str(&toml::to_string(self)?);
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_references_are_checked() {
        assert!(digest_problem(&format!("sha256:{}", "a".repeat(64))).is_none());
        for bad in ["sha256:abc", "md5:aaaa", &format!("sha256:{}", "A".repeat(64))] {
            assert!(digest_problem(bad).is_some(), "{bad}");
        }
        assert_eq!(parse("127.0.0.1:5000/team/fs:1.0").unwrap().repository(), "team/fs");
        assert!(parse("team/fs:1.0").unwrap_err().to_string().contains("names no registry"));
        assert!(parse("Not A Reference").is_err());
    }

    #[test]
    fn the_cache_keeps_only_whole_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let wasm = b"\0asm component bytes".to_vec();
        let layer = ImageLayer::new(wasm.clone(), LAYER_MEDIA_TYPE.to_string(), None);
        let config = Config::new(b"{}".to_vec(), CONFIG_MEDIA_TYPE.to_string(), None);
        let manifest = serde_json::to_vec(&OciImageManifest::build(&[layer], &config, None)).unwrap();
        let digest = sha256(&manifest);
        cache.put(&digest, &manifest, &wasm).unwrap();
        assert_eq!(cache.get(&digest), Some(wasm.clone()));
        std::fs::write(cache.entry(&digest).join("component.wasm"), b"\0asm tampered").unwrap();
        assert_eq!(cache.get(&digest), None, "a changed component is not served");
        cache.set_tag("r.example/a:1", &digest).unwrap();
        assert_eq!(cache.tag("r.example/a:1").as_deref(), Some(digest.as_str()));
        assert_eq!(cache.tag("r.example/a:2"), None);
    }
}

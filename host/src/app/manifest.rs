//! The manifest (TOML): server, runtime, caches, plugins with their grants, and which plugin
//! is the origin of each domain.
//!
//! Strings may hold `${VAR}`, read from the host environment when the manifest is loaded.
//! Unknown keys are errors, and every error names the file and the key.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::base::Domain;
use crate::base::units::{Dur, Size};
use crate::capabilities::files::DirMode;
use crate::capabilities::{Capability, Grants, capability_table};
use crate::cluster::ClusterConfig;

/// The manifest `storehost serve` runs without `--manifest`: the built-in fs plugin for every
/// domain and the runner store under `./.storehost/`, memory and disk caches on.
pub const EMBEDDED_DEFAULT: &str = r#"
[runtime]
compiled_cache = ".storehost/compiled"

[cache.memory]
max_bytes = "256MiB"

[cache.disk]
dir = ".storehost/cache"
max_bytes = "4GiB"

[plugins.files]
source = "builtin:fs"
instances = 4
dirs = { "/data" = { host = ".storehost/data", mode = "rw" } }

[domains]
artifact = { origin = "files" }
project = { origin = "files", artifacts = "files" }
ui = { origin = "files" }
workspace = { origin = "files" }
runner = { origin = "files" }
"#;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub runtime: RuntimeSection,
    #[serde(default)]
    pub cache: CacheSection,
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginConfig>,
    #[serde(default)]
    pub domains: Domains,
    /// Replicas sharing origins: the invalidation log that keeps their caches coherent.
    pub cluster: Option<ClusterConfig>,
    /// Traces over OTLP (the `OTEL_*` environment variables win over it).
    pub telemetry: Option<crate::base::telemetry::TelemetryConfig>,
    /// How to reach the OCI registries plugins come from, by host (`host:port`): credentials
    /// (`${VAR}` allowed) and whether it is plain HTTP.
    #[serde(default)]
    pub registries: BTreeMap<String, super::oci::RegistryConfig>,
    /// The directory relative paths are resolved against (the manifest file's directory, or
    /// the working directory for the embedded default).
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where the manifest came from, for messages.
    #[serde(skip)]
    pub origin: String,
    /// The file it was read from (a reload reads it again); `None` for text and the embedded
    /// default.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer tokens and their scopes. Without any, the API is open, which is allowed only on a
    /// loopback address.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Replaced by a limit per domain (`[domains.NAME] max_body`); refused with a message saying
    /// so.
    pub max_body: Option<Size>,
    /// Deadline of one request, origin calls included (default 30s); past it, 504.
    pub request_timeout: Option<Dur>,
    /// Secret of host-signed artifact URLs (`${VAR}` allowed). Without it, the secret is made
    /// once and kept: with `[cluster]` in the log's database (one for every replica), otherwise
    /// in `url-secrets` under `state_dir`.
    pub url_secret: Option<String>,
    /// Where the server keeps what it must not lose across restarts (the URL secret), relative
    /// to the manifest (default `.storehost`).
    pub state_dir: Option<PathBuf>,
}

/// A bearer token of the HTTP API.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub token: String,
    /// `read` (GET, HEAD), `write` (PUT, POST, DELETE), `admin` (`/v1/admin/*`, `/metrics`).
    pub scopes: Vec<Scope>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

fn default_listen() -> String {
    "127.0.0.1:7070".into()
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { listen: default_listen(), tokens: Vec::new(), max_body: None, request_timeout: None, url_secret: None, state_dir: None }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Directory of the compiled-code cache; unset: compile at every start.
    pub compiled_cache: Option<PathBuf>,
    /// Upper bound of any plugin's `memory_limit` (default 4GiB).
    pub max_memory: Option<Size>,
    /// Instances of all plugins alive at once (default 256).
    pub max_instances: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    pub memory: Option<MemorySection>,
    pub disk: Option<DiskSection>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[cache.memory]`: the memory tier's budget, shared by the domains.
pub struct MemorySection {
    pub max_bytes: Option<Size>,
    /// Artifact bodies larger than this go through without entering the memory tier (default
    /// 8MiB).
    pub max_body: Option<Size>,
    pub max_entries: Option<u64>,
    pub ttl: Option<Dur>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
/// `[cache.disk]`: the disk tier (artifact blobs).
pub struct DiskSection {
    pub dir: PathBuf,
    pub max_bytes: Option<Size>,
    pub max_entries: Option<u64>,
    pub ttl: Option<Dur>,
}

/// Declares [`PluginConfig`] with a key per granted capability of the capability table.
macro_rules! plugin_config {
    (
        always { $($always:ident: $always_ty:ty),* $(,)? }
        granted { $($(#[$doc:meta])* $key:ident: $capability:ty),* $(,)? }
    ) => {
        /// `[plugins.NAME]`: a component, its limits, its config, its directories and its grants.
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct PluginConfig {
            /// `builtin:NAME`, a path to a `.wasm` component (relative to the manifest), or a
            /// component in an OCI registry (`{ oci = "REF", digest = "sha256:…" }`).
            pub source: Source,
            pub instances: Option<u32>,
            pub timeout: Option<Dur>,
            pub memory_limit: Option<Size>,
            /// Calls that may wait for a free instance.
            pub queue: Option<u32>,
            /// The plugin's own settings, readable through `storehost:host/config`.
            #[serde(default)]
            pub config: BTreeMap<String, ConfigValue>,
            /// Preopened directories: guest path → host directory.
            #[serde(default)]
            pub dirs: BTreeMap<String, DirConfig>,
            $($(#[$doc])* pub $key: Option<<$capability as Capability>::Grant>,)*
        }

        impl PluginConfig {
            /// The capabilities this table grants.
            pub fn grants(&self) -> Grants {
                Grants { $($key: self.$key.clone()),* }
            }
        }
    };
}

capability_table!(plugin_config! {});

/// Where a plugin's component comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `builtin:NAME`, or a path to a `.wasm` file.
    File(String),
    /// A component in an OCI registry (`REGISTRY/REPOSITORY[:TAG]`), pinned to the digest of its
    /// manifest when `digest` is given (only those bytes are accepted).
    Oci { reference: String, digest: Option<String> },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(file) => f.write_str(file),
            Source::Oci { reference, digest: None } => write!(f, "oci://{reference}"),
            Source::Oci { reference, digest: Some(digest) } => write!(f, "oci://{reference}@{digest}"),
        }
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Source;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"builtin:NAME\", a path to a .wasm file, or { oci = \"REGISTRY/REPOSITORY:TAG\", digest = \"sha256:…\" }")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Source, E> {
                Ok(Source::File(text.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Source, A::Error> {
                let (mut reference, mut digest) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "oci" => reference = Some(map.next_value::<String>()?),
                        "digest" => digest = Some(map.next_value::<String>()?),
                        other => return Err(serde::de::Error::unknown_field(other, &["oci", "digest"])),
                    }
                }
                let reference = reference.ok_or_else(|| serde::de::Error::missing_field("oci"))?;
                if let Some(problem) = digest.as_deref().and_then(super::oci::digest_problem) {
                    return Err(serde::de::Error::custom(format!("digest: {problem}")));
                }
                Ok(Source::Oci { reference, digest })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A config value: strings, numbers and booleans are passed to the plugin as text.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for ConfigValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigValue::Text(s) => f.write_str(s),
            ConfigValue::Integer(n) => write!(f, "{n}"),
            ConfigValue::Float(n) => write!(f, "{n}"),
            ConfigValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirConfig {
    pub host: PathBuf,
    #[serde(default = "default_mode")]
    pub mode: DirMode,
}

fn default_mode() -> DirMode {
    DirMode::Ro
}

impl<'de> Deserialize<'de> for DirMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "ro" => Ok(DirMode::Ro),
            "rw" => Ok(DirMode::Rw),
            other => Err(serde::de::Error::custom(format!("mode must be \"ro\" or \"rw\", got {other:?}"))),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Domains {
    pub artifact: Option<DomainConfig>,
    pub project: Option<DomainConfig>,
    pub ui: Option<DomainConfig>,
    pub workspace: Option<DomainConfig>,
    pub runner: Option<DomainConfig>,
}

impl Domains {
    /// The binding of `domain`, if the manifest has one.
    pub fn get(&self, domain: Domain) -> Option<&DomainConfig> {
        match domain {
            Domain::Artifact => self.artifact.as_ref(),
            Domain::Project => self.project.as_ref(),
            Domain::Ui => self.ui.as_ref(),
            Domain::Workspace => self.workspace.as_ref(),
            Domain::Runner => self.runner.as_ref(),
        }
    }

    pub fn get_mut(&mut self, domain: Domain) -> Option<&mut DomainConfig> {
        match domain {
            Domain::Artifact => self.artifact.as_mut(),
            Domain::Project => self.project.as_mut(),
            Domain::Ui => self.ui.as_mut(),
            Domain::Workspace => self.workspace.as_mut(),
            Domain::Runner => self.runner.as_mut(),
        }
    }

    /// Every bound domain with its binding.
    pub fn iter(&self) -> impl Iterator<Item = (Domain, &DomainConfig)> {
        Domain::ALL.into_iter().filter_map(|d| self.get(d).map(|c| (d, c)))
    }
}

/// Which plugin is a domain's origin, and the domain's cache settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    pub origin: String,
    /// project only: the origin of project artifact records (default: `origin`).
    pub artifacts: Option<String>,
    /// Time to live of cached entries.
    pub ttl: Option<Dur>,
    /// Memory budget of this domain's caches (default: a share of `[cache.memory]`).
    pub max_bytes: Option<Size>,
    /// Whether the disk tier caches this domain (default: on for artifacts when `[cache.disk]`
    /// is set).
    pub disk: Option<bool>,
    /// Whether to cache this domain at all (default true).
    pub cache: Option<bool>,
    /// Largest request body of the domain (default: 5TiB for artifact and runner bodies, which
    /// stream, 16MiB for the JSON domains); larger ones get 413.
    pub max_body: Option<Size>,
    /// How long past its TTL a cached entry may answer a read whose origin is unavailable or
    /// timed out (`X-Cache: stale`); entries dropped by a write never are. Default: never.
    pub stale_if_error: Option<Dur>,
    /// With `[cluster]`: one cache across the replicas. Each key has an owner among them (a
    /// consistent-hash ring over the live members); a replica that misses on a key it does not
    /// own asks the owner, which fills once from the origin. Artifacts only (default false).
    pub peer_fill: Option<bool>,
}

/// A manifest that could not be loaded: the file, the key, and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: malformed TOML: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: {key}: {message}")]
    Key { file: String, key: String, message: String },
}

impl Manifest {
    /// Loads a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ManifestError::Read { file: file.clone(), error })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut manifest = Self::parse(&text, &file, base, |name| std::env::var(name).ok())?;
        manifest.path = Some(path.to_path_buf());
        Ok(manifest)
    }

    /// The `origin` of the embedded default.
    pub const EMBEDDED_ORIGIN: &str = "<embedded default>";

    /// The embedded default, relative to the working directory.
    pub fn embedded_default() -> Manifest {
        Self::parse(EMBEDDED_DEFAULT, Self::EMBEDDED_ORIGIN, PathBuf::from("."), |_| None).expect("the embedded default manifest is valid")
    }

    /// Parses manifest text; `env` resolves `${VAR}`.
    pub fn parse(text: &str, file: &str, base_dir: PathBuf, env: impl Fn(&str) -> Option<String>) -> Result<Manifest, ManifestError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ManifestError::Syntax { file: file.into(), message: e.to_string().trim().to_string() })?;
        for (key, value) in table.iter_mut() {
            expand(value, key, &env).map_err(|(key, message)| ManifestError::Key { file: file.into(), key, message })?;
        }
        // A registry's host may be `${VAR}` too: the one table whose keys are values.
        if let Some(toml::Value::Table(registries)) = table.get_mut("registries") {
            let mut expanded = toml::Table::new();
            for (host, value) in std::mem::take(registries) {
                let host = expand_str(&host, &env).map_err(|message| ManifestError::Key {
                    file: file.into(),
                    key: format!("registries.{host}"),
                    message,
                })?;
                expanded.insert(host, value);
            }
            *registries = expanded;
        }
        let mut manifest: Manifest = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            ManifestError::Key { file: file.into(), key, message: e.into_inner().to_string() }
        })?;
        manifest.base_dir = base_dir;
        manifest.origin = file.into();
        manifest.validate()?;
        Ok(manifest)
    }

    /// Resolves a manifest path against the manifest's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.base_dir.join(path) }
    }

    fn key_error(&self, key: impl Into<String>, message: impl Into<String>) -> ManifestError {
        ManifestError::Key { file: self.origin.clone(), key: key.into(), message: message.into() }
    }

    /// Checks what serde cannot: references between tables.
    fn validate(&self) -> Result<(), ManifestError> {
        if self.server.max_body.is_some() {
            return Err(self.key_error(
                "server.max_body",
                "replaced by a limit per domain: set `max_body` in [domains.NAME] (e.g. artifact = { origin = \"fs\", max_body = \"10GiB\" })",
            ));
        }
        for (name, domain) in self.domains.iter() {
            let mut refs = vec![("origin", &domain.origin)];
            if let Some(artifacts) = &domain.artifacts {
                if name != Domain::Project {
                    return Err(self.key_error(format!("domains.{name}.artifacts"), "only the project domain has an `artifacts` origin"));
                }
                refs.push(("artifacts", artifacts));
            }
            if domain.stale_if_error.is_some() && (name == Domain::Runner || domain.cache == Some(false)) {
                return Err(
                    self.key_error(format!("domains.{name}.stale_if_error"), "needs a cache to keep entries in, and this domain is not cached")
                );
            }
            if domain.peer_fill == Some(true) {
                let key = format!("domains.{name}.peer_fill");
                if name != Domain::Artifact {
                    return Err(self.key_error(key, "only the artifact domain is filled from peers"));
                }
                if domain.cache == Some(false) {
                    return Err(self.key_error(key, "needs a cache to fill, and this domain is not cached"));
                }
                match &self.cluster {
                    None => return Err(self.key_error(key, "needs [cluster]: the replicas find each other through its log")),
                    Some(cluster) if cluster.peer_secret.is_none() => {
                        return Err(self.key_error(key, "needs [cluster] peer_secret: the secret the replicas ask each other with"));
                    }
                    Some(_) => {}
                }
            }
            for (field, plugin) in refs {
                if !self.plugins.contains_key(plugin) {
                    return Err(self.key_error(
                        format!("domains.{name}.{field}"),
                        format!("no plugin named {plugin:?} (defined plugins: {})", self.plugins.keys().cloned().collect::<Vec<_>>().join(", ")),
                    ));
                }
            }
        }
        if let Some((key, problem)) = self.cluster.as_ref().and_then(ClusterConfig::problem) {
            return Err(self.key_error(format!("cluster.{key}"), problem));
        }
        for (name, plugin) in &self.plugins {
            if plugin.instances == Some(0) {
                return Err(self.key_error(format!("plugins.{name}.instances"), "must be at least 1"));
            }
            for guest in plugin.dirs.keys() {
                if !guest.starts_with('/') {
                    return Err(self.key_error(format!("plugins.{name}.dirs.{guest:?}"), "the guest path must be absolute, e.g. \"/data\""));
                }
            }
        }
        Ok(())
    }
}

/// Replaces `${VAR}` in every string of `value`; the error names the key.
fn expand(value: &mut toml::Value, key: &str, env: &impl Fn(&str) -> Option<String>) -> Result<(), (String, String)> {
    match value {
        toml::Value::String(s) => {
            *s = expand_str(s, env).map_err(|m| (key.to_string(), m))?;
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                expand(v, &format!("{key}.{k}"), env)?;
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                expand(v, &format!("{key}[{i}]"), env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(text: &str, env: &impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        let name = &after[..end];
        let value = env(name).ok_or_else(|| format!("environment variable {name} is not set (used as ${{{name}}})"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, "test.toml", PathBuf::from("/etc/storehost"), |name| (name == "DB").then(|| "postgres://db".to_string()))
    }

    #[test]
    fn embedded_default_is_valid() {
        let m = Manifest::embedded_default();
        assert_eq!(m.plugins["files"].source, Source::File("builtin:fs".into()));
        assert_eq!(m.domains.runner.unwrap().origin, "files");
    }

    #[test]
    fn architecture_example_parses() {
        let m = parse(
            r#"
            [server]
            listen = "127.0.0.1:7070"
            [cache.memory]
            max_bytes = "256MiB"
            [cache.disk]
            dir = ".storehost/cache"
            max_bytes = "4GiB"
            [plugins.pg]
            source = "builtin:postgres"
            instances = 8
            timeout = "5s"
            memory_limit = "64MiB"
            sql = { url = "${DB}" }
            config = { schema = "storehost", retries = 3 }
            [plugins.s3]
            source = "builtin:s3"
            object_store = { bucket = "artifacts", endpoint = "http://127.0.0.1:9000", region = "us-east-1", path_style = true }
            [plugins.files]
            source = "builtin:fs"
            dirs = { "/data" = { host = ".storehost/data", mode = "rw" } }
            [domains]
            artifact = { origin = "s3", ttl = "10m" }
            project = { origin = "pg", artifacts = "pg" }
            ui = { origin = "pg" }
            workspace = { origin = "pg" }
            runner = { origin = "files" }
            "#,
        )
        .unwrap();
        let pg = &m.plugins["pg"];
        assert_eq!(pg.sql.as_ref().unwrap().url, "postgres://db");
        assert_eq!(pg.timeout.unwrap().0, std::time::Duration::from_secs(5));
        assert_eq!(pg.memory_limit.unwrap().0, 64 << 20);
        assert_eq!(pg.config["retries"].to_string(), "3");
        assert_eq!(m.plugins["files"].dirs["/data"].mode, DirMode::Rw);
        assert_eq!(m.resolve(Path::new("x.wasm")), PathBuf::from("/etc/storehost/x.wasm"));
    }

    #[test]
    fn peer_fill_needs_a_cluster_with_a_secret_and_is_for_artifacts_only() {
        let plugin = "[plugins.files]\nsource = \"builtin:fs\"\n";
        let cluster = "[cluster]\nlog = { url = \"${DB}\" }\n";
        let err = |text: &str| parse(text).unwrap_err().to_string();
        let alone = format!("{plugin}[domains]\nartifact = {{ origin = \"files\", peer_fill = true }}\n");
        assert!(err(&alone).contains("domains.artifact.peer_fill: needs [cluster]"), "{}", err(&alone));
        let no_secret = format!("{alone}{cluster}");
        assert!(err(&no_secret).contains("domains.artifact.peer_fill: needs [cluster] peer_secret"), "{}", err(&no_secret));
        let short = format!("{no_secret}peer_secret = \"short\"\n");
        assert!(err(&short).contains("cluster.peer_secret: must be at least 16 bytes"), "{}", err(&short));
        let uncached = format!("{plugin}[domains]\nartifact = {{ origin = \"files\", peer_fill = true, cache = false }}\n{cluster}");
        assert!(err(&uncached).contains("domains.artifact.peer_fill: needs a cache"), "{}", err(&uncached));
        let project = format!("{plugin}[domains]\nproject = {{ origin = \"files\", peer_fill = true }}\n{cluster}");
        assert!(err(&project).contains("domains.project.peer_fill: only the artifact domain"), "{}", err(&project));
        let beats = format!("{no_secret}peer_secret = \"sixteen bytes at least\"\nheartbeat = \"1s\"\nmember_timeout = \"2s\"\n");
        assert!(err(&beats).contains("cluster.member_timeout: must be at least three heartbeats"), "{}", err(&beats));
        let good = format!("{no_secret}peer_secret = \"sixteen bytes at least\"\nadvertise = \"10.0.0.7:8080\"\n");
        let m = parse(&good).unwrap();
        assert_eq!(m.domains.artifact.as_ref().unwrap().peer_fill, Some(true));
        assert_eq!(m.cluster.unwrap().advertise.as_deref(), Some("10.0.0.7:8080"));
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let err = parse("[plugins.pg]\nsource = \"builtin:fs\"\ntimout = \"5s\"\n").unwrap_err().to_string();
        assert!(err.starts_with("test.toml: plugins.pg"), "{err}");
        assert!(err.contains("unknown field `timout`"), "{err}");
    }

    #[test]
    fn malformed_toml_names_the_file_and_line() {
        let err = parse("[plugins.pg\nsource = 1").unwrap_err().to_string();
        assert!(err.starts_with("test.toml: malformed TOML"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = parse("[plugins.pg]\nsource = \"builtin:fs\"\ntimeout = \"5 years\"\n").unwrap_err().to_string();
        assert!(err.contains("plugins.pg.timeout") && err.contains("unknown unit"), "{err}");
        let err = parse("[plugins.pg]\nsource = \"builtin:fs\"\nsql = { url = \"${NOPE}\" }\n").unwrap_err().to_string();
        assert!(err.contains("plugins.pg.sql.url") && err.contains("NOPE is not set"), "{err}");
        let err = parse("[plugins.a]\nsource = \"builtin:fs\"\n[domains]\nui = { origin = \"b\" }\n").unwrap_err().to_string();
        assert!(err.contains("domains.ui.origin") && err.contains("no plugin named \"b\""), "{err}");
        let err = parse("[plugins.a]\nsource = \"builtin:fs\"\ndirs = { \"/d\" = { host = \"x\", mode = \"rwx\" } }\n").unwrap_err().to_string();
        assert!(err.contains("plugins.a.dirs./d.mode") || err.contains("plugins.a.dirs"), "{err}");
    }
}

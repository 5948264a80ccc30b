//! The HTTP/JSON API of ARCHITECTURE §8: every domain, health, metrics and admin, behind bearer
//! tokens. Artifact bodies travel as raw bytes; a cache hit is answered from memory with the
//! cached `Bytes`, with no plugin call and no copy.

mod admin;
mod artifacts;
mod auth;
mod body;
mod connection;
mod error;
mod extract;
mod guard;
pub mod log_seq;
pub mod openapi;
mod page;
mod peer;
mod projects;
mod reload;
mod runs;
mod server;
pub mod signing;
mod stale;
mod ui;
mod workspaces;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use parking_lot::RwLock;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, ApiResult};

use crate::app::manifest::TokenConfig;
use crate::app::{App, Manifest, ReloadError, ReloadReport};
use crate::base::{Ctx, Domain};
use crate::domain::body::WHOLE_BODY_LIMIT;
use signing::UrlSigner;

/// Limits of the HTTP layer.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body of each domain (indexed by [`Domain::index`]), for requests to no
    /// domain the JSON default.
    max_body: [u64; Domain::ALL.len()],
    pub request_timeout: Duration,
}

impl Default for Limits {
    /// The limits of a server whose manifest sets none, its stores streaming bodies.
    fn default() -> Self {
        let max_body = Domain::ALL.map(|domain| match domain {
            Domain::Artifact | Domain::Runner => Self::DEFAULT_STREAMED_MAX_BODY,
            _ => Self::DEFAULT_JSON_MAX_BODY,
        });
        Self { max_body, request_timeout: Duration::from_secs(30) }
    }
}

impl Limits {
    /// Default largest body of the artifact and runner domains, whose bodies stream (S3's
    /// largest object).
    pub const DEFAULT_STREAMED_MAX_BODY: u64 = 5 << 40;
    /// Default largest body of the JSON domains.
    pub const DEFAULT_JSON_MAX_BODY: u64 = 16 << 20;

    /// The largest body a request to `domain` may carry (`None`: no domain, the JSON default).
    pub fn max_body(&self, domain: Option<Domain>) -> u64 {
        domain.map_or(Self::DEFAULT_JSON_MAX_BODY, |d| self.max_body[d as usize])
    }

    fn new(app: &App) -> Self {
        let server = &app.manifest.server;
        let max_body = Domain::ALL.map(|domain| {
            let configured = app.manifest.domains.get(domain).and_then(|d| d.max_body).map(|s| s.0);
            let streams = match domain {
                Domain::Artifact => app.stores.artifact.as_ref().map(|s| s.streams()),
                Domain::Runner => app.stores.runner.as_ref().map(|s| s.streams()),
                _ => None,
            };
            match streams {
                Some(true) => configured.unwrap_or(Self::DEFAULT_STREAMED_MAX_BODY),
                // A store that takes bodies whole cannot take more than that.
                Some(false) => configured.unwrap_or(u64::MAX).min(WHOLE_BODY_LIMIT),
                None => configured.unwrap_or(Self::DEFAULT_JSON_MAX_BODY),
            }
        });
        Self { max_body, request_timeout: server.request_timeout.map_or(Duration::from_secs(30), |d| d.0) }
    }
}

/// The domain a request path is about.
fn domain_of(path: &str) -> Option<Domain> {
    let rest = path.strip_prefix("/v1/")?;
    let first = rest.split('/').next()?;
    Some(match first {
        "artifacts" | "artifact-urls" | "signed" => Domain::Artifact,
        "projects" => Domain::Project,
        "ui" => Domain::Ui,
        "workspaces" => Domain::Workspace,
        "runs" => Domain::Runner,
        _ => return None,
    })
}

/// What every handler shares.
pub struct ServerState {
    /// The configuration serving now; a reload puts another in its place. A request holds the
    /// one it started with until it ends.
    app: RwLock<Arc<App>>,
    pub signer: UrlSigner,
    pub limits: Limits,
    pub tokens: Vec<TokenConfig>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    pub(crate) reloads: AtomicU64,
    pub(crate) failed_reloads: AtomicU64,
    /// Bodies that failed after their head was sent, per domain (indexed as `Domain::ALL`).
    pub(crate) bodies_cut: [AtomicU64; Domain::ALL.len()],
    /// The address this server listens on, once bound.
    pub(crate) local: std::sync::OnceLock<SocketAddr>,
    /// `GET /openapi.json`'s answer, made at its first request.
    document: std::sync::OnceLock<bytes::Bytes>,
    /// The route templates (`/v1/artifacts/{*key}`), for a traced request's `http.route`.
    templates: std::sync::OnceLock<matchit::Router<String>>,
}

pub type Shared = Arc<ServerState>;

impl ServerState {
    /// A server state whose URL secret is `[server] url_secret`, or else one of this process's
    /// own ([`serve`] keeps it instead, see [`signing`]).
    pub fn new(app: App) -> Self {
        let signer = match &app.manifest.server.url_secret {
            Some(secret) => UrlSigner::new(secret.as_bytes()),
            None => UrlSigner::ephemeral().expect("the operating system's random source"),
        };
        Self::with_signer(app, signer)
    }

    pub fn with_signer(app: App, signer: UrlSigner) -> Self {
        let server = &app.manifest.server;
        let limits = Limits::new(&app);
        let tokens = server.tokens.clone();
        Self {
            app: RwLock::new(Arc::new(app)),
            signer,
            limits,
            tokens,
            reloading: tokio::sync::Mutex::new(()),
            reloads: AtomicU64::new(0),
            failed_reloads: AtomicU64::new(0),
            bodies_cut: Default::default(),
            local: Default::default(),
            document: Default::default(),
            templates: Default::default(),
        }
    }

    /// The configuration serving now.
    pub fn app(&self) -> Arc<App> {
        self.app.read().clone()
    }

    /// Reads the manifest again (from its file; the embedded default stays itself) and puts the
    /// configuration it describes in place of the current one ([`App::reload`]). A reload that
    /// fails changes nothing.
    /// Registry sources are pinned as `tags` says.
    pub async fn reload(&self, tags: crate::app::Tags) -> Result<ReloadReport, ReloadError> {
        let current = self.app();
        let manifest = match &current.manifest.path {
            Some(path) => Manifest::load(path).map_err(ReloadError::from),
            None if current.manifest.origin == Manifest::EMBEDDED_ORIGIN => Ok(Manifest::embedded_default()),
            None => Err(ReloadError { key: None, message: "this configuration was not read from a file: there is nothing to read again".into() }),
        };
        match manifest {
            Ok(manifest) => self.reload_with(manifest, tags).await,
            Err(error) => Err(self.refused(error)),
        }
    }

    /// Puts the configuration `manifest` describes in place of the current one.
    pub async fn reload_to(&self, manifest: Manifest) -> Result<ReloadReport, ReloadError> {
        self.reload_with(manifest, crate::app::Tags::Locked).await
    }

    async fn reload_with(&self, manifest: Manifest, tags: crate::app::Tags) -> Result<ReloadReport, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let (app, report) = self.app().reload(manifest, tags).await.map_err(|error| self.refused(error))?;
        *self.app.write() = Arc::new(app);
        self.reloads.fetch_add(1, Ordering::Relaxed);
        tracing::info!(loaded = ?report.loaded, kept = ?report.kept, cleared = ?report.cleared, restart_required = ?report.restart_required, "reloaded");
        Ok(report)
    }

    /// Counts and logs a refused reload.
    fn refused(&self, error: ReloadError) -> ReloadError {
        self.failed_reloads.fetch_add(1, Ordering::Relaxed);
        tracing::error!(key = error.key.as_deref().unwrap_or(""), %error, "reload refused; the running configuration is unchanged");
        error
    }

    /// The context of one request: the request timeout as its deadline.
    pub fn ctx(&self) -> Ctx {
        Ctx::with_timeout(self.limits.request_timeout)
    }
}

/// Every route: those behind the bearer tokens, and those that are not (health, the document,
/// signed URLs).
pub(crate) struct Routes {
    pub(crate) tokened: Router<Shared>,
    pub(crate) public: Router<Shared>,
}

/// The routes under `limits`, and their document as the handlers declare it
/// ([`openapi::complete`] adds what every operation shares).
fn routes(limits: &Limits) -> (Routes, utoipa::openapi::OpenApi) {
    let limit = |domain| DefaultBodyLimit::max(usize::try_from(limits.max_body(Some(domain))).unwrap_or(usize::MAX));
    let tokened = OpenApiRouter::new()
        // Byte bodies stream under their own limit (`body::upload`).
        .merge(artifacts::routes().layer(DefaultBodyLimit::disable()))
        .merge(projects::routes().layer(limit(Domain::Project)))
        .merge(ui::routes().layer(limit(Domain::Ui)))
        .merge(workspaces::routes().layer(limit(Domain::Workspace)))
        .merge(runs::routes().layer(DefaultBodyLimit::disable()))
        .merge(admin::routes())
        .merge(page::routes());
    let public = OpenApiRouter::new().merge(admin::public_routes()).merge(artifacts::public_routes());
    let (tokened, mut doc) = tokened.split_for_parts();
    let (public, public_doc) = public.split_for_parts();
    doc.merge(public_doc);
    (Routes { tokened, public }, doc)
}

/// The routes over a state, behind the layer around every request ([`guard::around`]); the
/// bearer tokens' check wraps the routes that need it, when there are tokens.
fn routed(state: &Shared) -> Router {
    let (Routes { tokened, public }, doc) = routes(&state.limits);
    state.templates.get_or_init(|| {
        let mut templates = matchit::Router::new();
        for path in doc.paths.paths.keys() {
            templates.insert(path.clone(), path.clone()).expect("the router took these routes");
        }
        templates
    });
    let tokened = if state.tokens.is_empty() { tokened } else { tokened.layer(middleware::from_fn_with_state(state.clone(), auth::require_scope)) };
    Router::new()
        .merge(public)
        .merge(tokened)
        .merge(peer::routes())
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(Limits::DEFAULT_JSON_MAX_BODY as usize))
        .with_state(state.clone())
}

/// What answers every request: the layer around it ([`guard::around`]), then the routes, or
/// for the hot read of an artifact (`GET /v1/artifacts/{key}`) its handler, called without
/// the router ([`artifacts::hot_read`]).
#[derive(Clone)]
pub(crate) struct Front {
    state: Shared,
    routed: Router,
}

impl Front {
    fn new(state: Shared) -> Self {
        Self { routed: routed(&state), state }
    }

    /// The answer to `request`.
    pub(crate) async fn respond(self, request: axum::extract::Request) -> axum::response::Response {
        guard::around(&self, request).await
    }

    /// The answer of the routes (or of the hot read's handler) to a request that passed the
    /// layer's checks, with its [`Slots`].
    async fn answer(&self, mut request: axum::extract::Request, slots: &Slots) -> axum::response::Response {
        use axum::response::IntoResponse as _;
        if let Some(hot) = artifacts::hot_read(&self.state, &request) {
            return match hot {
                artifacts::Hot::Refused(refused) => refused,
                artifacts::Hot::Read(store, key) => {
                    let ctx = slots.ctx(&self.state);
                    artifacts::serve(&self.state, store.as_ref(), &ctx, key, request.headers()).await.into_response()
                }
            };
        }
        request.extensions_mut().insert(slots.clone());
        let Ok(response) = tower_service::Service::call(&mut self.routed.clone(), request).await;
        response
    }
}

/// What the layer around a request gives its handler's `Ctx`: where it records a stale answer
/// ([`stale`]) and its writes' log positions ([`log_seq`]), and the position it must read at.
#[derive(Clone)]
pub(crate) struct Slots {
    pub(crate) stale: Arc<AtomicU64>,
    pub(crate) written: Arc<AtomicU64>,
    pub(crate) min_seq: Option<u64>,
}

impl Slots {
    fn new(min_seq: Option<u64>) -> Self {
        Self { stale: Arc::default(), written: Arc::default(), min_seq }
    }

    /// The request's context: the server's request timeout as its deadline, and these slots.
    pub(crate) fn ctx(&self, state: &ServerState) -> Ctx {
        let ctx = state.ctx().record_stale_in(self.stale.clone()).record_writes_in(self.written.clone());
        match self.min_seq {
            Some(seq) => ctx.min_log_seq(seq),
            None => ctx,
        }
    }
}

/// The router over a state: every route behind the layer around every request, as [`serve`]
/// serves them (for a server of the caller's own, or a test's).
pub fn router(state: Shared) -> Router {
    let front = Front::new(state);
    Router::new().fallback(move |request: axum::extract::Request| front.clone().respond(request))
}

/// Checks that the listen address is allowed with the configured tokens.
pub fn check_exposure(addr: &SocketAddr, tokens: &[TokenConfig]) -> Result<()> {
    if !addr.ip().is_loopback() && tokens.is_empty() {
        bail!("refusing to listen on {addr} without [server] tokens: a non-loopback address needs bearer tokens");
    }
    Ok(())
}

/// How `serve` runs, besides its configuration.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// The listen address instead of `[server] listen`.
    pub listen: Option<String>,
    /// Reload when the manifest file or a plugin's component file changes.
    pub watch: bool,
}

/// Serves until SIGINT or SIGTERM, then stops accepting, finishes in-flight requests and
/// flushes the disk cache index. SIGHUP reloads the manifest ([`ServerState::reload`]).
pub async fn serve(app: App, options: ServeOptions) -> Result<()> {
    let ServeOptions { listen, watch } = options;
    let listen = listen.unwrap_or_else(|| app.manifest.server.listen.clone());
    let addr: SocketAddr = tokio::net::lookup_host(&listen)
        .await
        .with_context(|| format!("server.listen: cannot resolve {listen:?}"))?
        .next()
        .with_context(|| format!("server.listen: {listen:?} resolves to no address"))?;
    check_exposure(&addr, &app.manifest.server.tokens)?;
    let signer = match &app.manifest.server.url_secret {
        Some(secret) => UrlSigner::new(secret.as_bytes()),
        None => UrlSigner::open(secret_store(&app)).await.context("the URL secret (server.url_secret, or where it is kept)")?,
    };
    let state = Arc::new(ServerState::with_signer(app, signer));
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    let _ = state.local.set(local);
    // The first line on stdout, for scripts and tests.
    println!("storehost listening on http://{local}");
    tracing::info!(%local, "serving");
    if let Some(node) = &state.app().cluster {
        node.join_ring(local);
    }
    let hangups = tokio::spawn(reload::on_hangup(state.clone()));
    let secrets = tokio::spawn(refresh_secrets(state.clone()));
    let watcher = watch.then(|| tokio::spawn(reload::watch(state.clone())));
    server::serve(listener, Front::new(state.clone()), shutdown_signal()).await?;
    hangups.abort();
    secrets.abort();
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    if let Some(node) = &state.app().cluster {
        node.leave_ring().await;
    }
    tracing::info!("shutting down: flushing caches");
    state.app().flush()?;
    Ok(())
}

/// Where the secret of host-signed URLs is kept (see [`signing`]).
fn secret_store(app: &App) -> signing::SecretStore {
    match &app.cluster {
        Some(node) => signing::SecretStore::Cluster(node.clone()),
        None => {
            let dir = app.manifest.resolve(app.manifest.server.state_dir.as_deref().unwrap_or(std::path::Path::new(".storehost")));
            signing::SecretStore::File(dir.join("url-secrets"))
        }
    }
}

/// Reads the URL secrets again now and then, to sign with one rotated on another replica.
async fn refresh_secrets(state: Shared) {
    loop {
        tokio::time::sleep(signing::REFRESH).await;
        if let Err(e) = state.signer.refresh().await {
            tracing::warn!(error = %format!("{e:#}"), "reading the URL secrets again failed");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The expected version of an optimistic write, from wherever the request gives it: the query's
/// `expected_version`, the body's, and `If-Match: "N"`. Where several are given they must agree.
pub(crate) fn expected_version(headers: &axum::http::HeaderMap, query: Option<u64>, body: Option<u64>) -> ApiResult<Option<u64>> {
    let if_match = match headers.get(axum::http::header::IF_MATCH) {
        None => None,
        Some(value) => {
            let text = value.to_str().map_err(|_| ApiError::invalid("If-Match is not text"))?;
            Some(if_match_version(text).ok_or_else(|| ApiError::invalid(format!("If-Match {text:?} is not a version: \"<number>\" or <number>")))?)
        }
    };
    let given = [("the query's expected_version", query), ("the body's expected_version", body), ("If-Match", if_match)];
    let mut agreed: Option<(&str, u64)> = None;
    for (source, version) in given {
        let Some(version) = version else { continue };
        match agreed {
            Some((first, v)) if v != version => return Err(ApiError::invalid(format!("{first} ({v}) and {source} ({version}) disagree"))),
            _ => agreed = Some((source, version)),
        }
    }
    Ok(agreed.map(|(_, v)| v))
}

/// The version of an `If-Match`: `"N"` (`W/"N"`) or `N`, of at most 19 digits.
fn if_match_version(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_prefix("W/").unwrap_or(text);
    let digits = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `ETag: "<version>"`: what a client sends back as `If-Match`.
pub(crate) fn version_etag(version: u64) -> [(axum::http::HeaderName, axum::http::HeaderValue); 1] {
    [(axum::http::header::ETAG, axum::http::HeaderValue::from_str(&format!("\"{version}\"")).expect("digits are a valid header"))]
}

/// The page size of a listing: 0 for the default, at most the contract's largest page.
pub(crate) fn page_limit(limit: u32) -> ApiResult<u32> {
    let most = storehost_plugin_rules::MAX_PAGE;
    if limit > most {
        return Err(ApiError::invalid(format!("limit must be at most {most}, got {limit}")));
    }
    Ok(limit)
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub use crate::base::encode_path;

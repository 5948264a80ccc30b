//! Health, readiness, Prometheus metrics and the admin views.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Shared;
use super::error::ErrorBody;
use super::extract::NoQuery;
use crate::app::metrics::render_histogram;
use crate::app::{DomainMetrics, ReloadReport, render_cluster, render_peers, render_prometheus};
use crate::base::{Ctx, Domain, ErrorKind, StoreError};

pub fn routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .routes(routes!(plugins))
        .routes(routes!(cache))
        .routes(routes!(reload))
        .routes(routes!(rotate_url_secret))
}

/// Routes without a token: health, readiness, the API's document.
pub fn public_routes() -> OpenApiRouter<Shared> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(super::openapi::openapi_json))
}

#[derive(Serialize, ToSchema)]
struct Health {
    /// `ok`
    status: &'static str,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "admin",
    operation_id = "healthz",
    summary = "Liveness: the process answers",
    security(()),
    responses((status = 200, description = "Alive", body = Health))
)]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// An origin answered (anything but an outage or a timeout counts as reachable).
fn reachable<T>(result: Result<T, StoreError>) -> Result<(), String> {
    match result {
        Err(e) if e.is_temporary() || e.kind() == ErrorKind::Internal => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// The answer of `/readyz`.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// Whether every domain's origin answered.
    ready: bool,
    /// The plugins loaded.
    plugins: usize,
    /// Each domain's origin: `ok`, or why it did not answer.
    origins: BTreeMap<&'static str, String>,
    /// With `[cluster]`: where this host is in the invalidation log.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterReadiness>,
}

/// Where a replica is in the cluster's invalidation log.
#[derive(Serialize, ToSchema)]
struct ClusterReadiness {
    host_id: String,
    /// Whether the caches are trusted (the last read of the log is recent).
    synced: bool,
    /// Since the last successful read of the log began.
    sync_age_ms: Option<f64>,
    /// Every event up to this position is applied.
    applied: u64,
    /// Events heard of and not yet applied.
    lag: u64,
    /// This host's invalidations waiting to be appended again.
    backlog: u64,
}

/// Ready when every plugin is loaded (it is, once serving) and every domain's origin answers
/// a cheap read within a second.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "admin",
    operation_id = "readyz",
    summary = "Readiness: every domain's origin answers a cheap read within a second",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready: `origins` says which origin failed and why", body = Readiness),
    )
)]
async fn readyz(State(state): State<Shared>) -> Response {
    let app = state.app();
    let origins = &app.origins;
    let ctx = || Ctx::with_timeout(Duration::from_secs(1));
    let probe = "storehost-readyz";
    let mut checks = BTreeMap::new();
    let mut record = |domain: &'static str, result: Result<(), String>| {
        checks.insert(domain, result.err().unwrap_or_else(|| "ok".into()));
    };
    if let Some(s) = &origins.artifact {
        record("artifact", reachable(s.head(&ctx(), probe).await));
    }
    if let Some(s) = &origins.project {
        record("project", reachable(s.get(&ctx(), probe).await));
    }
    if let Some(s) = &origins.project_artifacts {
        record("project-artifacts", reachable(s.list(&ctx(), probe).await));
    }
    if let Some(s) = &origins.ui {
        record("ui", reachable(s.get(&ctx(), probe).await));
    }
    if let Some(s) = &origins.workspace {
        record("workspace", reachable(s.get(&ctx(), probe).await));
    }
    if let Some(s) = &origins.runner {
        record("runner", reachable(s.list(&ctx(), probe, "").await));
    }
    let ready = checks.values().all(|v| v == "ok");
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    // A host that is not synced still answers correctly (from its origins), so it stays ready.
    let cluster = app.cluster.as_ref().map(|node| {
        let s = node.stats();
        ClusterReadiness {
            host_id: s.host_id,
            synced: s.synced,
            sync_age_ms: s.sync_age.map(|a| a.as_secs_f64() * 1000.0),
            applied: s.applied,
            lag: s.lag,
            backlog: s.backlog,
        }
    });
    (status, Json(Readiness { ready, plugins: app.plugins.len(), origins: checks, cluster })).into_response()
}

/// A metric family of the plugins by error kind: name, help, and the counts of one plugin's stats.
type KindFamily = (&'static str, &'static str, fn(&crate::runtime::PluginStats) -> &[(ErrorKind, u64)]);

/// A metric family of the plugins: name, type, help, and the value of one plugin's stats.
type PluginFamily = (&'static str, &'static str, &'static str, fn(&crate::runtime::PluginStats) -> u64);

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "admin",
    operation_id = "metrics",
    summary = "Prometheus metrics: domains, caches, origins, plugins, reloads, cluster",
    responses((status = 200, description = "The text exposition format", content_type = "text/plain", body = String))
)]
async fn metrics(State(state): State<Shared>) -> Response {
    let app = state.app();
    let mut out = String::new();
    render_prometheus(&mut out, &app.metrics());
    if let Some(node) = &app.cluster {
        render_cluster(&mut out, &node.stats());
        if let Some(peers) = node.peers() {
            render_peers(&mut out, &node.stats().host_id, &peers.stats());
        }
    }
    let reloads = [
        ("storehost_reloads_total", "Reloads that put a new configuration in place.", state.reloads.load(Ordering::Relaxed)),
        ("storehost_reload_failures_total", "Reloads refused (the running configuration stayed).", state.failed_reloads.load(Ordering::Relaxed)),
    ];
    for (name, help, value) in reloads {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    let (exported, queue_full, export_failed) = crate::base::telemetry::counts();
    let _ = writeln!(
        out,
        "# HELP storehost_trace_spans_exported_total Spans the OTLP collector accepted.\n# TYPE storehost_trace_spans_exported_total counter\nstorehost_trace_spans_exported_total {exported}\n\
         # HELP storehost_trace_spans_dropped_total Spans dropped: the export queue was full, or the collector did not take their batch.\n# TYPE storehost_trace_spans_dropped_total counter\n\
         storehost_trace_spans_dropped_total{{reason=\"queue_full\"}} {queue_full}\nstorehost_trace_spans_dropped_total{{reason=\"export_failed\"}} {export_failed}"
    );
    let _ = writeln!(
        out,
        "# HELP storehost_http_bodies_cut_total Answers whose body failed after the head was sent (the connection was closed short).\n# TYPE storehost_http_bodies_cut_total counter"
    );
    for domain in Domain::ALL {
        let _ = writeln!(out, "storehost_http_bodies_cut_total{{domain=\"{domain}\"}} {}", state.bodies_cut[domain as usize].load(Ordering::Relaxed));
    }
    let _ = writeln!(out, "# HELP storehost_plugin_generation Loads of a plugin so far (1 at start-up).\n# TYPE storehost_plugin_generation gauge");
    for (name, load) in &app.loads {
        let _ = writeln!(out, "storehost_plugin_generation{{plugin=\"{name}\"}} {}", load.generation);
    }
    let families: [PluginFamily; 9] = [
        ("storehost_plugin_calls_total", "counter", "Calls into a plugin.", |s| s.calls),
        ("storehost_plugin_traps_total", "counter", "Plugin calls that trapped.", |s| s.traps),
        ("storehost_plugin_timeouts_total", "counter", "Plugin calls cut at their deadline.", |s| s.timeouts),
        ("storehost_plugin_rejected_total", "counter", "Calls refused because the pool and its queue were full.", |s| s.rejected),
        ("storehost_plugin_instances_created_total", "counter", "Plugin instances started.", |s| s.instances_created),
        ("storehost_plugin_pool_size", "gauge", "Instances a plugin may run at once.", |s| s.pool_size.into()),
        ("storehost_plugin_pool_in_use", "gauge", "Instances running a call.", |s| s.pool_in_use.into()),
        ("storehost_plugin_pool_idle", "gauge", "Warm instances waiting for a call.", |s| s.pool_idle.into()),
        ("storehost_plugin_pool_waiting", "gauge", "Calls waiting for an instance.", |s| s.pool_waiting.into()),
    ];
    let stats: Vec<_> = app.plugins.iter().map(|(name, p)| (name, p.stats())).collect();
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (plugin, s) in &stats {
            let _ = writeln!(out, "{name}{{plugin=\"{plugin}\"}} {}", value(s));
        }
    }
    let latencies =
        stats.iter().map(|(plugin, s)| (format!("plugin=\"{plugin}\""), s.latency_buckets.as_slice(), Duration::from_nanos(s.latency_sum_ns)));
    render_histogram(&mut out, "storehost_plugin_call_duration_seconds", "How long the guest took over each call.", latencies);
    let by_kind: [KindFamily; 2] = [
        ("storehost_plugin_errors_total", "Plugin calls that failed, by kind (the origin's answers are counted apart).", |s| &s.errors_by_kind),
        ("storehost_plugin_answers_total", "Plugin calls answered not-found, conflict or invalid: expected outcomes, by kind.", |s| {
            &s.answers_by_kind
        }),
    ];
    for (name, help, counts) in by_kind {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (plugin, s) in &stats {
            for (kind, n) in counts(s) {
                let _ = writeln!(out, "{name}{{plugin=\"{plugin}\",kind=\"{kind}\"}} {n}");
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// The answer of `/v1/admin/plugins`.
#[derive(Serialize, ToSchema)]
struct PluginList {
    plugins: Vec<LoadedPlugin>,
}

/// One loaded plugin.
#[derive(Serialize, ToSchema)]
struct LoadedPlugin {
    /// Its name in the manifest.
    name: String,
    /// Where its component came from (a path, `builtin:<name>`, or `oci://<reference>@<digest>`).
    source: String,
    /// Loads of it so far: 1 at start, one more with each reload that replaced it.
    generation: u64,
    /// The sha256 of its component's bytes.
    sha256: String,
    /// When this generation was loaded, in milliseconds since the Unix epoch.
    loaded_at_ms: u64,
    /// What the plugin says of itself.
    describe: PluginDescription,
    /// The interfaces it exports and the contract version they are of.
    #[schema(value_type = Object)]
    exports: crate::runtime::Exports,
    /// The host interfaces it imports.
    imports: Vec<String>,
    /// Its limits (instances, timeout, memory, queue).
    #[schema(value_type = Object)]
    settings: crate::runtime::PluginSettings,
    /// Its counters and its pool of instances.
    #[schema(value_type = Object)]
    stats: crate::runtime::PluginStats,
    compile: Compile,
}

/// A plugin's `describe()`.
#[derive(Serialize, ToSchema)]
struct PluginDescription {
    name: String,
    version: String,
    /// A stateful plugin runs as one instance.
    stateful: bool,
    /// The longest key it can hold, in bytes.
    max_key_bytes: u32,
}

/// How a plugin's component was made ready.
#[derive(Serialize, ToSchema)]
struct Compile {
    /// `cache` (deserialized from the compiled-code cache) or `compiled`.
    #[schema(value_type = String)]
    source: crate::runtime::CompileSource,
    ms: f64,
}

#[utoipa::path(
    get,
    path = "/v1/admin/plugins",
    tag = "admin",
    operation_id = "admin_plugins",
    summary = "The loaded plugins: source, generation, sha256, describe(), exports, imports, settings, stats",
    responses((status = 200, description = "The loaded plugins, in name order", body = PluginList))
)]
async fn plugins(State(state): State<Shared>) -> Json<PluginList> {
    let app = state.app();
    let plugins = app
        .plugins
        .iter()
        .map(|(name, p)| {
            let (source, compile_time) = p.compile_source();
            let load = &app.loads[name];
            let info = p.info();
            LoadedPlugin {
                name: name.clone(),
                source: p.source().to_string(),
                generation: load.generation,
                sha256: load.sha256.clone(),
                loaded_at_ms: load.loaded_at_ms,
                describe: PluginDescription {
                    name: info.name.clone(),
                    version: info.version.clone(),
                    stateful: info.stateful,
                    max_key_bytes: info.max_key_bytes,
                },
                exports: p.exports().clone(),
                imports: p.imports().to_vec(),
                settings: p.settings().clone(),
                stats: p.stats(),
                compile: Compile { source, ms: compile_time.as_secs_f64() * 1000.0 },
            }
        })
        .collect();
    Json(PluginList { plugins })
}

/// A memory cache of a domain.
#[derive(Serialize, ToSchema)]
struct CacheView {
    name: &'static str,
    hits: u64,
    misses: u64,
    inserts: u64,
    updates: u64,
    evictions: u64,
    expirations: u64,
    refusals: u64,
    invalidations: u64,
    /// Misses answered from an expired entry because the origin could not answer.
    stale: u64,
    entries: u64,
    bytes: u64,
    /// Reads that shared another read's origin load.
    coalesced: u64,
}

/// The disk tier of the artifact domain.
#[derive(Serialize, ToSchema)]
struct DiskView {
    hits: u64,
    misses: u64,
    inserts: u64,
    evictions: u64,
    expirations: u64,
    entries: u64,
    bytes: u64,
}

/// A domain's calls to its origin.
#[derive(Serialize, ToSchema)]
struct OriginView {
    calls: u64,
    /// Calls by operation (`get`, `put`, …).
    by_operation: BTreeMap<String, u64>,
    /// Failed calls by error kind.
    errors: BTreeMap<String, u64>,
    latency_sum_ms: f64,
}

/// One domain's caches, disk tier and origin.
#[derive(Serialize, ToSchema)]
struct DomainView {
    #[schema(value_type = String)]
    domain: crate::base::Domain,
    caches: Vec<CacheView>,
    disk: Option<DiskView>,
    origin: OriginView,
}

#[derive(Serialize, ToSchema)]
struct CacheAnswer {
    domains: Vec<DomainView>,
}

impl From<&DomainMetrics> for DomainView {
    fn from(d: &DomainMetrics) -> Self {
        let caches = d
            .caches
            .iter()
            .map(|c| {
                let s = &c.stats;
                CacheView {
                    name: c.name,
                    hits: s.hits,
                    misses: s.misses,
                    inserts: s.inserts,
                    updates: s.updates,
                    evictions: s.evictions,
                    expirations: s.expirations,
                    refusals: s.refusals,
                    invalidations: s.invalidations,
                    stale: s.stale_hits,
                    entries: s.entries,
                    bytes: s.bytes,
                    coalesced: c.coalescing.coalesced,
                }
            })
            .collect();
        let disk = d.disk.as_ref().map(|s| DiskView {
            hits: s.hits,
            misses: s.misses,
            inserts: s.inserts,
            evictions: s.evictions,
            expirations: s.expirations,
            entries: s.entries,
            bytes: s.bytes,
        });
        let o = &d.origin;
        let origin = OriginView {
            calls: o.calls,
            by_operation: o.by_operation.iter().map(|(op, n)| (op.to_string(), *n)).collect(),
            errors: o.errors.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            latency_sum_ms: o.latency_sum.as_secs_f64() * 1000.0,
        };
        DomainView { domain: d.domain, caches, disk, origin }
    }
}

#[utoipa::path(
    get,
    path = "/v1/admin/cache",
    tag = "admin",
    operation_id = "admin_cache",
    summary = "Each domain's caches, disk tier and origin counts",
    responses((status = 200, description = "Every configured domain", body = CacheAnswer))
)]
async fn cache(State(state): State<Shared>) -> Json<CacheAnswer> {
    Json(CacheAnswer { domains: state.app().metrics().iter().map(DomainView::from).collect() })
}

#[derive(Serialize, ToSchema)]
struct Reloaded {
    reloaded: bool,
    report: ReloadReport,
}

/// `POST /v1/admin/reload`: reads the manifest again and swaps in what changed. 200 with what
/// it did; 422 with the manifest key and the reason when it is refused (nothing changed then).
/// The query of a reload.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReloadQuery {
    /// Ask the registries what the tags of registry sources name now, instead of keeping the
    /// lock file's digests (a plugin whose tag moved is then loaded anew).
    resolve: Option<bool>,
}

#[utoipa::path(
    post,
    path = "/v1/admin/reload",
    tag = "admin",
    operation_id = "reload",
    summary = "Read the manifest again and put what changed in place, without dropping a request",
    params(ReloadQuery),
    responses(
        (status = 200, description = "What the reload did", body = Reloaded),
        (status = 422, description = "Refused, nothing changed: `kind` is `reload-refused`, `key` the manifest key at fault", body = ErrorBody),
    )
)]
async fn reload(State(state): State<Shared>, super::extract::ApiQuery(query): super::extract::ApiQuery<ReloadQuery>) -> Response {
    let tags = if query.resolve == Some(true) { crate::app::Tags::Resolved } else { crate::app::Tags::Locked };
    match state.reload(tags).await {
        Ok(report) => Json(Reloaded { reloaded: true, report }).into_response(),
        Err(error) => {
            let body = ErrorBody::new("reload-refused", error.message).with_key(error.key);
            (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
        }
    }
}

#[derive(Serialize, ToSchema)]
struct Rotated {
    rotated: bool,
}

/// `POST /v1/admin/url-secret/rotate`: a new secret signs host-signed URLs from now on, on every
/// replica with `[cluster]`; URLs signed before stay valid until their own expiry.
#[utoipa::path(
    post,
    path = "/v1/admin/url-secret/rotate",
    tag = "admin",
    operation_id = "rotate_url_secret",
    summary = "Make a new secret current for host-signed URLs; URLs signed before stay valid until they expire",
    responses(
        (status = 200, description = "Rotated", body = Rotated),
        (status = 409, description = "The secret is `[server] url_secret`: it is changed in the manifest", body = ErrorBody),
    )
)]
async fn rotate_url_secret(State(state): State<Shared>, _: NoQuery) -> Response {
    if state.app().manifest.server.url_secret.is_some() {
        let body = ErrorBody::new("conflict", "the URL secret is [server] url_secret: change it in the manifest instead");
        return (StatusCode::CONFLICT, Json(body)).into_response();
    }
    match state.signer.rotate().await {
        Ok(()) => {
            tracing::info!("the URL secret was rotated");
            Json(Rotated { rotated: true }).into_response()
        }
        Err(e) => super::ApiError::from(StoreError::Unavailable(format!("rotating the URL secret: {e:#}"))).into_response(),
    }
}

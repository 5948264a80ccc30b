//! Traces over OTLP: off unless configured, by the standard environment variables
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `_PROTOCOL`,
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER` and `_ARG`, `OTEL_SDK_DISABLED`) or the
//! manifest's `[telemetry]` table, the environment first.
//!
//! `tracing` spans of the `storehost` targets become OpenTelemetry spans (through
//! `tracing-opentelemetry`); a request continues its caller's W3C `traceparent`. Finished spans
//! go into a bounded queue that a task of the server's runtime exports in batches: a request
//! never waits for the exporter, and a span that finds the queue full, or whose batch the
//! collector refused, is dropped and counted (`storehost_trace_spans_dropped_total`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider, Span, SpanData, SpanExporter as _, SpanProcessor};
use serde::Deserialize;
use tokio::sync::mpsc;

/// The manifest's `[telemetry]` table (strings may hold `${VAR}`). The environment's variables
/// win over it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `false` turns traces off whatever else says; default: on when an endpoint is known.
    pub enabled: Option<bool>,
    /// The collector's base URL (`http://collector:4317` for gRPC, `:4318` for HTTP, to which
    /// `/v1/traces` is added).
    pub endpoint: Option<String>,
    /// `grpc` (the default) or `http/protobuf`.
    pub protocol: Option<String>,
    /// The `service.name` of every span (default `storehost`).
    pub service_name: Option<String>,
    /// The share of traces sampled where no caller decided (0 to 1; default 1). A request with
    /// a `traceparent` follows its caller's decision.
    pub sampler_ratio: Option<f64>,
}

/// Spans waiting for export; past this, new ones are dropped.
const QUEUE: usize = 8192;
/// The most spans in one export.
const MAX_BATCH: usize = 512;
/// How long a span waits at most before its batch is exported.
const EXPORT_INTERVAL: Duration = Duration::from_millis(500);

static ON: AtomicBool = AtomicBool::new(false);
static EXPORTED: AtomicU64 = AtomicU64::new(0);
static DROPPED_QUEUE_FULL: AtomicU64 = AtomicU64::new(0);
static DROPPED_EXPORT_FAILED: AtomicU64 = AtomicU64::new(0);

/// Whether traces are on: what the request path checks before making a span.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Spans exported, and spans dropped because the queue was full or their export failed.
pub fn counts() -> (u64, u64, u64) {
    (EXPORTED.load(Ordering::Relaxed), DROPPED_QUEUE_FULL.load(Ordering::Relaxed), DROPPED_EXPORT_FAILED.load(Ordering::Relaxed))
}

/// Where and how to export, once the environment and the manifest agree that traces are on.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The endpoint to give the exporter, when the environment does not name one.
    endpoint: Option<String>,
    protocol: Protocol,
    service_name: Option<String>,
    /// A parent-based ratio sampler, when the environment names no sampler.
    ratio: Option<f64>,
}

impl Settings {
    /// The settings of `config` under the environment `vars` (an empty variable is an unset
    /// one), or `None` when traces are off.
    pub fn resolve(config: Option<&TelemetryConfig>, vars: impl Fn(&str) -> Option<String>) -> Result<Option<Settings>> {
        let env = |name: &str| vars(name).filter(|v| !v.trim().is_empty());
        let config = config.cloned().unwrap_or_default();
        let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let env_endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
        if disabled || config.enabled == Some(false) || (env_endpoint.is_none() && config.endpoint.is_none() && config.enabled != Some(true)) {
            return Ok(None);
        }
        let protocol =
            match env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL")).or(config.protocol.clone()).as_deref() {
                None | Some("grpc") => Protocol::Grpc,
                Some("http/protobuf") => Protocol::HttpBinary,
                Some(other) => bail!("telemetry.protocol: {other:?} is not one of \"grpc\" and \"http/protobuf\""),
            };
        let endpoint = match (env_endpoint, config.endpoint) {
            (Some(_), _) => None,
            (None, Some(base)) if protocol == Protocol::HttpBinary => Some(format!("{}/v1/traces", base.trim_end_matches('/'))),
            (None, base) => base,
        };
        let ratio = match config.sampler_ratio {
            Some(r) if !(0.0..=1.0).contains(&r) => bail!("telemetry.sampler_ratio: {r} is not between 0 and 1"),
            r if env("OTEL_TRACES_SAMPLER").is_none() => r,
            _ => None,
        };
        let service_name = if env("OTEL_SERVICE_NAME").is_some() { None } else { Some(config.service_name.unwrap_or_else(|| "storehost".into())) };
        Ok(Some(Settings { endpoint, protocol, service_name, ratio }))
    }
}

/// The tracer provider of a server with traces on; [`Telemetry::shutdown`] exports what is left.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Starts exporting on the current tokio runtime.
    pub fn start(settings: &Settings) -> Result<Telemetry> {
        let builder = opentelemetry_otlp::SpanExporter::builder();
        let mut exporter = match settings.protocol {
            Protocol::HttpBinary => {
                let builder = builder.with_http().with_protocol(Protocol::HttpBinary);
                match &settings.endpoint {
                    Some(endpoint) => builder.with_endpoint(endpoint).build(),
                    None => builder.build(),
                }
            }
            _ => {
                let builder = builder.with_tonic();
                match &settings.endpoint {
                    Some(endpoint) => builder.with_endpoint(endpoint).build(),
                    None => builder.build(),
                }
            }
        }
        .context("telemetry: the OTLP exporter")?;
        let mut resource = opentelemetry_sdk::Resource::builder();
        if let Some(name) = &settings.service_name {
            resource = resource.with_service_name(name.clone());
        }
        let resource = resource.build();
        exporter.set_resource(&resource);
        let (spans, queued) = mpsc::channel(QUEUE);
        let (flushes, flush_requests) = mpsc::unbounded_channel();
        tokio::spawn(export_loop(exporter, queued, flush_requests));
        let mut provider = SdkTracerProvider::builder().with_resource(resource).with_span_processor(Queue { spans, flushes });
        if let Some(ratio) = settings.ratio {
            provider = provider.with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio))));
        }
        ON.store(true, Ordering::Relaxed);
        Ok(Telemetry { provider: provider.build() })
    }

    /// The layer that makes the `storehost` targets' spans OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::Layer as _;
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("storehost"))
            .with_threads(false)
            .with_location(false)
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.target().starts_with("storehost")
                    && (meta.is_span() || meta.target() == "storehost::plugin" || *meta.level() <= tracing::Level::WARN)
            }))
    }

    /// Exports the spans still queued (waiting at most `timeout`) and stops.
    pub fn shutdown(self, timeout: Duration) {
        ON.store(false, Ordering::Relaxed);
        let _ = self.provider.shutdown_with_timeout(timeout);
    }
}

/// The span processor: finished spans into the export queue, never waiting.
#[derive(Debug)]
struct Queue {
    spans: mpsc::Sender<SpanData>,
    flushes: mpsc::UnboundedSender<std::sync::mpsc::Sender<()>>,
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.spans.try_send(span).is_err() {
            DROPPED_QUEUE_FULL.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush(Duration::from_secs(5))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.flush(timeout)
    }
}

impl Queue {
    /// Asks the export task to export what is queued, and waits for it (from outside the
    /// runtime's tasks: at shutdown).
    fn flush(&self, timeout: Duration) -> OTelSdkResult {
        let (done, exported) = std::sync::mpsc::channel();
        self.flushes.send(done).map_err(|_| opentelemetry_sdk::error::OTelSdkError::AlreadyShutdown)?;
        exported.recv_timeout(timeout).map_err(|_| opentelemetry_sdk::error::OTelSdkError::Timeout(timeout))
    }
}

async fn export_loop(
    exporter: opentelemetry_otlp::SpanExporter,
    mut queued: mpsc::Receiver<SpanData>,
    mut flushes: mpsc::UnboundedReceiver<std::sync::mpsc::Sender<()>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(EXPORT_INTERVAL);
    loop {
        tokio::select! {
            span = queued.recv() => {
                let Some(span) = span else { break };
                batch.push(span);
                if batch.len() >= MAX_BATCH {
                    export(&exporter, &mut batch).await;
                }
            }
            _ = tick.tick() => export(&exporter, &mut batch).await,
            done = flushes.recv() => {
                while let Ok(span) = queued.try_recv() {
                    batch.push(span);
                }
                export(&exporter, &mut batch).await;
                match done {
                    Some(done) => drop(done.send(())),
                    None => break,
                }
            }
        }
    }
    export(&exporter, &mut batch).await;
}

async fn export(exporter: &opentelemetry_otlp::SpanExporter, batch: &mut Vec<SpanData>) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::replace(batch, Vec::with_capacity(MAX_BATCH));
    let n = spans.len() as u64;
    match exporter.export(spans).await {
        Ok(()) => EXPORTED.fetch_add(n, Ordering::Relaxed),
        Err(_) => DROPPED_EXPORT_FAILED.fetch_add(n, Ordering::Relaxed),
    };
}

/// A request's headers as the W3C propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The caller's trace context (`traceparent`, `tracestate`), or an empty one.
pub fn caller(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

/// The W3C `traceparent` of `span` (with traces on, when its trace is sampled): what an event
/// carries to the hosts that apply it.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    if !on() {
        return None;
    }
    let cx = tracing_opentelemetry::OpenTelemetrySpanExt::context(span);
    if !cx.span().span_context().is_sampled() {
        return None;
    }
    let mut fields = std::collections::HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut fields);
    fields.remove("traceparent")
}

/// The trace context a `traceparent` names, if it is a valid one.
pub fn remote(traceparent: &str) -> Option<Context> {
    use opentelemetry::trace::TraceContextExt as _;
    let fields = std::collections::HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&fields);
    cx.span().span_context().is_valid().then_some(cx)
}

/// The trace and span ids of the current span, for a log line (none outside a traced request).
pub fn current_ids() -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt as _;
    if !on() {
        return None;
    }
    Context::map_current(|cx| {
        let span = cx.span();
        let ids = span.span_context();
        ids.is_valid().then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
    })
}

/// A log line's format, with the `trace_id` and `span_id` of the request it was logged in (with
/// traces on): as two more fields of the text line, or two more keys of the JSON object.
pub struct WithIds<F> {
    inner: F,
    json: bool,
}

impl<F> WithIds<F> {
    pub fn text(inner: F) -> Self {
        Self { inner, json: false }
    }

    pub fn json(inner: F) -> Self {
        Self { inner, json: true }
    }
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for WithIds<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some((trace_id, span_id)) = current_ids() else { return self.inner.format_event(ctx, writer, event) };
        let mut line = String::new();
        self.inner.format_event(ctx, tracing_subscriber::fmt::format::Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        match body.strip_prefix('{').filter(|_| self.json) {
            Some(rest) => writeln!(writer, "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"),
            None => writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(config: Option<TelemetryConfig>, vars: &[(&str, &str)]) -> Result<Option<Settings>> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::resolve(config.as_ref(), |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_known() {
        assert_eq!(resolve(None, &[]).unwrap(), None);
        assert_eq!(resolve(Some(TelemetryConfig::default()), &[]).unwrap(), None);
        let on = resolve(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]).unwrap().unwrap();
        assert_eq!((on.endpoint, on.protocol, on.service_name.as_deref()), (None, Protocol::Grpc, Some("storehost")));
        assert_eq!(resolve(None, &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"), ("OTEL_SDK_DISABLED", "true")]).unwrap(), None);
        let config = TelemetryConfig { endpoint: Some("http://c:4318/".into()), protocol: Some("http/protobuf".into()), ..Default::default() };
        let on = resolve(Some(config.clone()), &[]).unwrap().unwrap();
        assert_eq!(on.endpoint.as_deref(), Some("http://c:4318/v1/traces"), "a base URL, as the environment's");
        assert_eq!(resolve(Some(TelemetryConfig { enabled: Some(false), ..config }), &[]).unwrap(), None);
    }

    #[test]
    fn the_environment_wins_over_the_manifest() {
        let config = TelemetryConfig {
            endpoint: Some("http://m:4317".into()),
            service_name: Some("m".into()),
            sampler_ratio: Some(0.5),
            ..Default::default()
        };
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://e:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_SERVICE_NAME", "e"),
            ("OTEL_TRACES_SAMPLER", "always_on"),
        ];
        let on = resolve(Some(config.clone()), &vars).unwrap().unwrap();
        assert_eq!(on, Settings { endpoint: None, protocol: Protocol::HttpBinary, service_name: None, ratio: None });
        let on = resolve(Some(config), &[]).unwrap().unwrap();
        assert_eq!(
            on,
            Settings { endpoint: Some("http://m:4317".into()), protocol: Protocol::Grpc, service_name: Some("m".into()), ratio: Some(0.5) }
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = resolve(Some(TelemetryConfig { endpoint: Some("http://c".into()), protocol: Some("udp".into()), ..Default::default() }), &[])
            .unwrap_err();
        assert!(err.to_string().starts_with("telemetry.protocol:"), "{err}");
        let err =
            resolve(Some(TelemetryConfig { endpoint: Some("http://c".into()), sampler_ratio: Some(2.0), ..Default::default() }), &[]).unwrap_err();
        assert!(err.to_string().starts_with("telemetry.sampler_ratio:"), "{err}");
    }
}

//! Traces from the real binary to an OTLP/HTTP receiver started by the test: a request that
//! carries a sampled `traceparent` is a span of its caller's trace, with its plugin call inside
//! it; with the sampler at 0, a request without one is not traced; the log lines of a traced
//! request carry its ids; and a server without telemetry configured exports nothing.

mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// What the receiver was sent.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Span>>>);

impl Received {
    fn spans(&self) -> Vec<Span> {
        self.0.lock().unwrap().clone()
    }
}

/// An OTLP/HTTP receiver on a free loopback port: `POST /v1/traces` of protobuf.
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
                let spans = request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
                store.0.lock().unwrap().extend(spans);
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

/// An OTLP/gRPC receiver (the collector's `TraceService`) on a free loopback port.
async fn grpc_receiver() -> (String, Received) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};

    struct Collector(Received);

    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let spans = request.into_inner().resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
            self.0.0.lock().unwrap().extend(spans);
            Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
        }
    }

    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let service = TraceServiceServer::new(Collector(received.clone()));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap()
    });
    (base, received)
}

/// `storehost serve` on the embedded default in `dir`, with `env`, its log in JSON on a pipe.
struct Served {
    server: support::Server,
    log: std::thread::JoinHandle<String>,
}

fn serve(dir: &std::path::Path, env: &[(&str, &str)]) -> Served {
    serve_with(dir, env, &[])
}

/// [`serve`] with more arguments to `serve`.
fn serve_with(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> Served {
    let mut command = Command::new(support::binary());
    command.current_dir(dir).args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"]).args(args).env("RUST_LOG", "info");
    command.envs(env.iter().copied()).stderr(Stdio::piped());
    let mut server = support::Server::launch(command, dir);
    let mut stderr = server.child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    Served { server, log }
}

impl Served {
    fn base(&self) -> &str {
        &self.server.base
    }

    /// SIGTERM (which exports the spans still queued), and the log.
    fn stop(self) -> String {
        self.server.stop();
        self.log.join().unwrap()
    }
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_continues_its_callers_trace_into_the_plugin_call() {
    let (collector, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0"),
            ("OTEL_SERVICE_NAME", "storehost-under-test"),
        ],
    );
    let http = reqwest::Client::new();
    let traced = |request: reqwest::RequestBuilder| request.header("traceparent", format!("00-{TRACE}-{PARENT}-01"));
    let url = format!("{}/v1/artifacts/traced/one.txt", server.base());
    let put = traced(http.put(&url)).body("hello").send().await.unwrap();
    assert_eq!(put.status(), 200);
    let get = traced(http.get(&url)).send().await.unwrap();
    assert_eq!(get.status(), 200);
    // Not sampled: no traceparent, and the ratio is 0.
    let untraced = http.get(format!("{}/v1/artifacts/untraced", server.base())).send().await.unwrap();
    assert_eq!(untraced.status(), 404);
    let log = server.stop();

    let spans = received.spans();
    let trace = hex::decode(TRACE).unwrap();
    assert!(spans.iter().all(|s| s.trace_id == trace), "only the caller's trace was sampled: {spans:#?}");
    let requests: Vec<&Span> = spans.iter().filter(|s| s.name == "PUT" || s.name == "GET").collect();
    assert_eq!(requests.len(), 2, "{spans:#?}");
    for request in &requests {
        assert_eq!(request.parent_span_id, hex::decode(PARENT).unwrap(), "the caller's span is the request's parent");
        assert_eq!(attribute(request, "http.response.status_code"), Some(AnyValue::IntValue(200)), "{request:#?}");
        assert_eq!(attribute(request, "url.path"), Some(AnyValue::StringValue("/v1/artifacts/traced/one.txt".into())));
        let calls: Vec<&Span> = spans.iter().filter(|s| s.parent_span_id == request.span_id).collect();
        assert!(calls.iter().all(|c| attribute(c, "rpc.service") == Some(AnyValue::StringValue("files".into()))), "{calls:#?}");
        assert!(calls.iter().all(|c| attribute(c, "storehost.wait_us").is_some() && c.trace_id == trace), "{calls:#?}");
    }
    // The upload's plugin call is a child of the PUT (the GET may be answered by a cache).
    let put = requests.iter().find(|r| r.name == "PUT").unwrap();
    let put_calls: Vec<&str> = spans.iter().filter(|s| s.parent_span_id == put.span_id).map(|s| s.name.as_str()).collect();
    assert!(put_calls.contains(&"artifacts.open-write"), "{put_calls:?}");

    // The request's log line carries the ids of its span.
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "request" && l["fields"]["path"] == "/v1/artifacts/traced/one.txt")
        .unwrap_or_else(|| panic!("no request line in the log:\n{log}"));
    assert_eq!(line["trace_id"], TRACE, "{line}");
    let ids: Vec<String> = requests.iter().map(|r| hex::encode(&r.span_id)).collect();
    assert!(ids.contains(&line["span_id"].as_str().unwrap().to_string()), "{line} vs {ids:?}");
    let untraced_line = log.lines().find(|l| l.contains("/v1/artifacts/untraced")).expect("the untraced request's line");
    assert!(!untraced_line.contains(TRACE), "{untraced_line}");
}

/// gRPC, the default protocol, configured by the manifest's `[telemetry]` alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_alone_exports_over_grpc() {
    let (collector, received) = grpc_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest =
        format!("[telemetry]\nendpoint = \"{collector}\"\nservice_name = \"from-the-manifest\"\n{}", storehost::app::manifest::EMBEDDED_DEFAULT);
    std::fs::write(dir.path().join("storehost.toml"), manifest).unwrap();
    let server = serve_with(dir.path(), &[], &["--manifest", "storehost.toml"]);
    let http = reqwest::Client::new();
    let put = http.put(format!("{}/v1/artifacts/grpc/one", server.base())).body("over grpc").send().await.unwrap();
    assert_eq!(put.status(), 200);
    server.stop();
    let spans = received.spans();
    let request = spans.iter().find(|s| s.name == "PUT").unwrap_or_else(|| panic!("no PUT span: {spans:#?}"));
    assert!(request.parent_span_id.is_empty(), "no caller: the request is the trace's root");
    assert!(spans.iter().any(|s| s.parent_span_id == request.span_id && s.name == "artifacts.open-write"), "{spans:#?}");
}

/// Each SQL statement a plugin runs is a span inside its plugin call: the operation and the
/// table, the rows; never the statement's text or its parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_sql_statements_are_spans_of_its_call() {
    use sqlx::Connection as _;
    let (collector, received) = receiver().await;
    let url = std::env::var("STOREHOST_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let schema = format!("telemetry_{}_{nanos}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        "[plugins.pg]\nsource = \"builtin:postgres\"\nsql = {{ url = \"{url}\", max_connections = 2 }}\nconfig = {{ schema = \"{schema}\" }}\n\n[domains]\nproject = {{ origin = \"pg\", cache = false }}\n"
    );
    std::fs::write(dir.path().join("storehost.toml"), manifest).unwrap();
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")];
    let server = serve_with(dir.path(), &env, &["--manifest", "storehost.toml"]);
    let http = reqwest::Client::new();
    let secret = "do-not-export-me";
    let saved =
        http.put(format!("{}/v1/projects/traced", server.base())).json(&serde_json::json!({ "name": secret, "state": {} })).send().await.unwrap();
    assert_eq!(saved.status(), 200);
    let read = http.get(format!("{}/v1/projects/traced", server.base())).send().await.unwrap();
    assert_eq!(read.status(), 200);
    server.stop();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut conn).await.unwrap();

    let spans = received.spans();
    let statements: Vec<&Span> =
        spans.iter().filter(|s| attribute(s, "db.system.name") == Some(AnyValue::StringValue("postgresql".into()))).collect();
    assert!(!statements.is_empty(), "{spans:#?}");
    let calls: Vec<&Span> = spans.iter().filter(|s| attribute(s, "rpc.service") == Some(AnyValue::StringValue("pg".into()))).collect();
    for statement in &statements {
        // `init()`'s statements (the schema's creation) run outside any request: roots of their own.
        assert!(statement.parent_span_id.is_empty() || calls.iter().any(|c| c.span_id == statement.parent_span_id), "{statement:#?}");
        assert!(attribute(statement, "db.operation.name").is_some() && attribute(statement, "db.response.returned_rows").is_some(), "{statement:#?}");
    }
    let select = statements
        .iter()
        .find(|s| {
            attribute(s, "db.operation.name") == Some(AnyValue::StringValue("SELECT".into()))
                && attribute(s, "db.collection.name") == Some(AnyValue::StringValue("projects".into()))
        })
        .unwrap_or_else(|| panic!("no SELECT of projects: {statements:#?}"));
    assert_eq!(select.name, "SELECT projects");
    assert!(calls.iter().any(|c| c.span_id == select.parent_span_id), "the read's statement is a child of its plugin call: {select:#?}");
    assert!(!format!("{spans:?}").contains(secret), "a parameter's value reached a span");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_telemetry_configured_nothing_is_exported_and_metrics_say_so() {
    let (collector, received) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    // The collector is there, but nothing names it: traces stay off.
    let server = serve(dir.path(), &[("OTEL_SERVICE_NAME", "storehost-under-test")]);
    let http = reqwest::Client::new();
    let traced = http.get(format!("{}/healthz", server.base())).header("traceparent", format!("00-{TRACE}-{PARENT}-01")).send().await.unwrap();
    assert_eq!(traced.status(), 200);
    let metrics = http.get(format!("{}/metrics", server.base())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("storehost_trace_spans_exported_total 0"), "{metrics}");
    assert!(metrics.contains("storehost_trace_spans_dropped_total{reason=\"queue_full\"} 0"), "{metrics}");
    let log = server.stop();
    assert!(!log.contains("trace_id"), "{log}");
    assert!(received.spans().is_empty(), "nothing names the collector {collector}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_only_dropped_spans() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
    let http = reqwest::Client::new();
    for _ in 0..20 {
        assert_eq!(http.get(format!("{}/healthz", server.base())).send().await.unwrap().status(), 200);
    }
    // The export interval passes; the failed batch is counted.
    let mut dropped = 0.0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let metrics = http.get(format!("{}/metrics", server.base())).send().await.unwrap().text().await.unwrap();
        dropped = metrics
            .lines()
            .find_map(|l| l.strip_prefix("storehost_trace_spans_dropped_total{reason=\"export_failed\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if dropped >= 20.0 {
            break;
        }
    }
    assert!(dropped >= 20.0, "the spans of 20 requests were dropped and counted, got {dropped}");
    server.stop();
}

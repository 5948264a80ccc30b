//! Traces from the real binary to an OTLP receiver started by the test: a request that carries a
//! sampled `traceparent` is a span of its caller's trace, and under it the cache lookup, the
//! plugin call, and the plugin's own `files` opens, SQL statements or S3 requests; a trap is an
//! error on its call, with the plugin's log line as an event; a write on one replica and its
//! application on the others are one trace, linked; the log lines of a traced request carry its
//! ids; a server without telemetry configured exports nothing, and one whose collector is down
//! only counts what it dropped.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{self, Server};
use storehost_tests::otlp::{Span, grpc_receiver, http_receiver, int, text};
use storehost_tests::pg::TestDatabase;
use storehost_tests::proxy::Proxy;
use storehost_tests::s3::{BUCKET, S3Server};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// The caller's sampled trace context.
fn traceparent() -> String {
    format!("00-{TRACE}-{PARENT}-01")
}

/// Exporting to `collector` over HTTP/protobuf, as `service`, every trace sampled.
fn exporting<'a>(collector: &'a str, service: &'a str) -> [(&'a str, &'a str); 3] {
    [("OTEL_EXPORTER_OTLP_ENDPOINT", collector), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"), ("OTEL_SERVICE_NAME", service)]
}

/// The spans whose parent is `parent`.
fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.parent_span_id == parent.span_id).collect()
}

/// The one span named `name` among `spans`.
fn named<'a>(spans: &[&'a Span], name: &str) -> &'a Span {
    let found: Vec<&&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one {name:?} span among {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    found[0]
}

/// The span of a traced request (`METHOD /route`) for `path`.
fn request<'a>(spans: &'a [Span], name: &str, path: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name && text(s, "url.path").as_deref() == Some(path))
        .unwrap_or_else(|| panic!("no {name} span for {path}: {:#?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()))
}

/// The artifact manifest of the trace tests: `plugin` (a `[plugins.origin]` body) behind the
/// caches, whose memory tier keeps bodies of at most 1 KiB (a 4 KiB body is read from the origin
/// every time).
fn artifacts_on(plugin: &str) -> String {
    format!("[cache.memory]\nmax_body = \"1KiB\"\n\n[plugins.origin]\n{plugin}\n\n[domains]\nartifact = {{ origin = \"origin\" }}\n")
}

const FS: &str = "source = \"builtin:fs\"\ndirs = { \"/data\" = { host = \"data\", mode = \"rw\" } }\nconfig = { fsync = false }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_a_span_of_its_callers_trace_with_its_lookup_call_and_file_opens() {
    let (collector, received) = http_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("storehost.toml"), artifacts_on(FS)).unwrap();
    let mut command = Command::new(support::binary());
    command.current_dir(dir.path()).args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0", "--manifest", "storehost.toml"]);
    command.envs(exporting(&collector, "storehost-under-test")).env("RUST_LOG", "info").stderr(Stdio::piped());
    // Only sampled callers are traced.
    command.env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio").env("OTEL_TRACES_SAMPLER_ARG", "0");
    let mut server = Server::launch(command, dir.path());
    let mut stderr = server.child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });

    let http = reqwest::Client::new();
    let path = "/v1/artifacts/traced/one.bin";
    let body = vec![7u8; 4096];
    let put = http.put(server.url(path)).header("traceparent", traceparent()).body(body.clone()).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let get = http.get(server.url(path)).header("traceparent", traceparent()).send().await.unwrap();
    assert_eq!(get.status(), 200);
    assert_eq!(get.bytes().await.unwrap(), body);
    let untraced = http.get(server.url("/v1/artifacts/untraced")).send().await.unwrap();
    assert_eq!(untraced.status(), 404);
    server.stop();
    let log = log.join().unwrap();

    let spans = received.spans();
    let trace = hex::decode(TRACE).unwrap();
    assert!(spans.iter().all(|s| s.trace_id == trace), "only the caller's trace was sampled: {spans:#?}");
    let put = request(&spans, "PUT /v1/artifacts/{*key}", path);
    let get = request(&spans, "GET /v1/artifacts/{*key}", path);
    for request in [put, get] {
        assert_eq!(request.parent_span_id, hex::decode(PARENT).unwrap(), "the caller's span is the request's parent");
        assert_eq!(int(request, "http.response.status_code"), Some(200), "{request:#?}");
        assert_eq!(text(request, "http.route").as_deref(), Some("/v1/artifacts/{*key}"));
    }
    assert_eq!(int(get, "http.response.body.size"), Some(4096), "the bytes sent: {get:#?}");
    // PUT: the upload's plugin call, straight under the request.
    let call = named(&children(&spans, put), "artifacts.open-write");
    assert_eq!(text(call, "rpc.service").as_deref(), Some("origin"));
    assert!(int(call, "storehost.wait_us").is_some(), "{call:#?}");
    // GET: request → cache lookup (a miss: the body is over the memory tier's bound) → the
    // plugin's call → its open of the file, with the file's size.
    let lookup = named(&children(&spans, get), "cache artifact.blob");
    assert_eq!((text(lookup, "storehost.cache.tier").as_deref(), text(lookup, "storehost.cache.result").as_deref()), (Some("origin"), Some("miss")));
    let call = named(&children(&spans, lookup), "artifact-bodies.open");
    let open = named(&children(&spans, call), "files.open");
    // The file holds the body and the plugin's record of its metadata.
    assert!(int(open, "file.size").is_some_and(|size| size >= 4096), "{open:#?}");
    assert!(text(open, "file.path").is_some_and(|p| p.starts_with("/data/")), "{open:#?}");

    // The request's log line carries the ids of its span.
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "request" && l["fields"]["path"] == path && l["fields"]["method"] == "GET")
        .unwrap_or_else(|| panic!("no request line in the log:\n{log}"));
    assert_eq!(line["trace_id"], TRACE, "{line}");
    assert_eq!(line["span_id"], hex::encode(&get.span_id), "{line}");
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
    let server = Server::start(dir.path(), Some(&manifest), &[]);
    let http = reqwest::Client::new();
    let put = http.put(server.url("/v1/artifacts/grpc/one")).body("over grpc").send().await.unwrap();
    assert_eq!(put.status(), 200);
    let get = http.get(server.url("/v1/artifacts/grpc/one")).send().await.unwrap();
    assert_eq!(get.text().await.unwrap(), "over grpc");
    server.stop();
    let spans = received.of("from-the-manifest");
    let put = request(&spans, "PUT /v1/artifacts/{*key}", "/v1/artifacts/grpc/one");
    assert!(put.parent_span_id.is_empty(), "no caller: the request is the trace's root");
    named(&children(&spans, put), "artifacts.open-write");
    // A memory hit (the write filled the cache) is recorded on the request's span, not a span of its own.
    let get = request(&spans, "GET /v1/artifacts/{*key}", "/v1/artifacts/grpc/one");
    assert!(children(&spans, get).is_empty(), "{:#?}", children(&spans, get));
    let found = ["storehost.cache.domain", "storehost.cache.name", "storehost.cache.tier", "storehost.cache.result"].map(|k| text(get, k));
    assert_eq!(found, ["artifact", "blob", "memory", "hit"].map(|v| Some(v.to_string())), "{get:#?}");
}

/// request → cache lookup → plugin call → SQL statements on the postgres plugin: each statement
/// its operation and table and rows, never its text or its parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_read_is_a_lookup_a_call_and_its_statements() {
    let (collector, received) = http_receiver().await;
    let db = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    // Entries live 1 ms: the read after the save misses.
    let manifest = format!(
        "[plugins.pg]\nsource = \"builtin:postgres\"\nsql = {{ url = \"{}\", max_connections = 2 }}\n\n[domains]\nproject = {{ origin = \"pg\", ttl = \"1ms\" }}\n",
        db.url
    );
    let server = Server::start(dir.path(), Some(&manifest), &exporting(&collector, "pg-under-test"));
    let http = reqwest::Client::new();
    let secret = "do-not-export-me";
    let saved = http.put(server.url("/v1/projects/traced")).json(&serde_json::json!({ "name": secret, "state": {} })).send().await.unwrap();
    assert_eq!(saved.status(), 200);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let read = http.get(server.url("/v1/projects/traced")).header("traceparent", traceparent()).send().await.unwrap();
    assert_eq!(read.status(), 200);
    server.stop();

    let spans = received.spans();
    let get = request(&spans, "GET /v1/projects/{id}", "/v1/projects/traced");
    let lookup = named(&children(&spans, get), "cache project.project");
    assert_eq!(text(lookup, "storehost.cache.result").as_deref(), Some("miss"), "{lookup:#?}");
    let call = named(&children(&spans, lookup), "projects.get");
    assert_eq!((text(call, "rpc.service").as_deref(), text(call, "rpc.system").as_deref()), (Some("pg"), Some("wasm-component")));
    let select = named(&children(&spans, call), "SELECT projects");
    assert_eq!(text(select, "db.system.name").as_deref(), Some("postgresql"));
    assert_eq!(text(select, "db.operation.name").as_deref(), Some("SELECT"));
    assert_eq!(int(select, "db.response.returned_rows"), Some(1), "{select:#?}");
    assert!(select.trace_id == hex::decode(TRACE).unwrap());
    assert!(!format!("{spans:?}").contains(secret), "a parameter's value reached a span");
}

/// request → cache lookup → plugin call → S3 requests on the s3 plugin: the operation, the
/// bucket, the bytes each way, the status and the resends (the SDK's retries of a request to a
/// store that cannot be reached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_read_and_write_are_calls_and_their_s3_requests() {
    let (collector, received) = http_receiver().await;
    let s3 = S3Server::start().await;
    // The store through a proxy the test cuts, for a request the SDK sends three times.
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://").parse().unwrap()).await;
    let plugin = format!(
        "source = \"builtin:s3\"\nobject_store = {{ bucket = \"{BUCKET}\", endpoint = \"http://{}\", region = \"us-east-1\", path_style = true, access_key_id = \"{}\", secret_access_key = \"{}\", max_retries = 2 }}",
        proxy.addr, s3.access_key, s3.secret_key
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), Some(&artifacts_on(&plugin)), &exporting(&collector, "s3-under-test"));
    let http = reqwest::Client::new();
    let path = "/v1/artifacts/traced/object.bin";
    let body = vec![3u8; 4096];
    let put = http.put(server.url(path)).header("traceparent", traceparent()).body(body.clone()).send().await.unwrap();
    assert_eq!(put.status(), 200);
    let get = http.get(server.url(path)).header("traceparent", traceparent()).send().await.unwrap();
    assert_eq!(get.bytes().await.unwrap(), body);
    proxy.cut();
    let failed = http.get(server.url("/v1/artifacts/traced/cut-off.bin")).header("traceparent", traceparent()).send().await.unwrap();
    assert_eq!(failed.status(), 503);
    server.stop();

    let spans = received.spans();
    let s3_requests = |call: &Span| -> Vec<Span> {
        children(&spans, call).into_iter().filter(|s| text(s, "rpc.system").as_deref() == Some("aws-api")).cloned().collect()
    };
    let put = request(&spans, "PUT /v1/artifacts/{*key}", path);
    let upload = named(&children(&spans, put), "artifacts.open-write");
    let sent: i64 = s3_requests(upload).iter().filter_map(|s| int(s, "http.request.body.size")).sum();
    assert!(sent >= 4096, "the upload's S3 requests carried its bytes: {:#?}", s3_requests(upload));
    let get = request(&spans, "GET /v1/artifacts/{*key}", path);
    let lookup = named(&children(&spans, get), "cache artifact.blob");
    let call = named(&children(&spans, lookup), "artifacts.open-read");
    let requests = s3_requests(call);
    let object = requests.iter().find(|s| text(s, "rpc.method").as_deref() == Some("GetObject")).unwrap_or_else(|| panic!("{requests:#?}"));
    assert_eq!(object.name, "S3/GetObject");
    assert_eq!(text(object, "aws.s3.bucket").as_deref(), Some(BUCKET));
    assert_eq!((int(object, "http.response.status_code"), int(object, "http.response.body.size")), (Some(200), Some(4096)), "{object:#?}");
    assert_eq!(int(object, "http.request.resend_count"), Some(0), "{object:#?}");
    // The store cut off: the SDK sent the request three times, and the span says so, as an error.
    let get = request(&spans, "GET /v1/artifacts/{*key}", "/v1/artifacts/traced/cut-off.bin");
    let lookup = named(&children(&spans, get), "cache artifact.blob");
    let requests = s3_requests(named(&children(&spans, lookup), "artifacts.open-read"));
    let object = requests.iter().find(|s| text(s, "rpc.method").as_deref() == Some("GetObject")).unwrap_or_else(|| panic!("{requests:#?}"));
    assert_eq!(int(object, "http.request.resend_count"), Some(2), "{object:#?}");
    assert_eq!(object.status.as_ref().map(|s| s.code), Some(2), "{object:#?}");
}

/// A trap is the error status of its plugin call (and of the request's 5xx), and the line the
/// plugin logged before it is an event of the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trap_is_an_error_on_its_call_with_the_plugins_log_line() {
    let (collector, received) = http_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest =
        "[plugins.m]\nsource = \"builtin:mock\"\nconfig = { \"fault.*\" = \"trap\" }\n\n[domains]\nartifact = { origin = \"m\", cache = false }\n";
    let server = Server::start(dir.path(), Some(manifest), &exporting(&collector, "trap-under-test"));
    let http = reqwest::Client::new();
    let got = http.get(server.url("/v1/artifacts/doomed")).header("traceparent", traceparent()).send().await.unwrap();
    assert!(got.status().is_server_error(), "{}", got.status());
    server.stop();

    let spans = received.spans();
    let get = request(&spans, "GET /v1/artifacts/{*key}", "/v1/artifacts/doomed");
    assert_eq!(get.status.as_ref().map(|s| s.code), Some(2), "a 5xx is an error: {get:#?}");
    let call = children(&spans, get).into_iter().find(|s| text(s, "rpc.service").as_deref() == Some("m")).expect("the plugin call");
    let status = call.status.as_ref().expect("a status");
    assert_eq!(status.code, 2, "a trap is an error: {call:#?}");
    assert!(status.message.contains("trapped"), "{status:?}");
    assert!(
        call.events.iter().any(|e| e.name.contains("mock: injecting a trap in")),
        "the plugin's log line is an event of its call: {:#?}",
        call.events
    );
}

/// Three replicas: a write on one appends its invalidation in a span of the writer's trace, and
/// each other replica applies it in a span of that trace, linked to the append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_and_its_application_on_the_other_replicas_are_one_trace() {
    let (collector, received) = http_receiver().await;
    let db = TestDatabase::create().await;
    let mut servers = Vec::new();
    let mut dirs = Vec::new();
    for i in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let manifest = format!(
            "[plugins.pg]\nsource = \"builtin:postgres\"\nsql = {{ url = \"{0}\", max_connections = 2 }}\n\n[domains]\nproject = {{ origin = \"pg\" }}\n\n[cluster]\nlog = {{ url = \"{0}\" }}\nhost_id = \"host-{i}\"\npoll = \"250ms\"\n",
            db.url
        );
        let service = format!("replica-{i}");
        servers.push(Server::start(dir.path(), Some(&manifest), &exporting(&collector, &service)));
        dirs.push(dir);
    }
    let http = reqwest::Client::new();
    // Every replica caches the project before the write.
    let saved = http.put(servers[0].url("/v1/projects/shared")).json(&serde_json::json!({ "name": "v1", "state": {} })).send().await.unwrap();
    assert_eq!(saved.status(), 200);
    for server in &servers {
        let read: serde_json::Value = http.get(server.url("/v1/projects/shared")).send().await.unwrap().json().await.unwrap();
        assert_eq!(read["name"], "v1");
    }
    let write = http
        .put(servers[0].url("/v1/projects/shared"))
        .header("traceparent", traceparent())
        .json(&serde_json::json!({ "name": "v2", "state": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 200);
    let seq = write.headers()["storehost-log-seq"].to_str().unwrap().to_string();
    // Applied on each other replica: they answer the new value to a read that names the position.
    for server in &servers[1..] {
        let read: serde_json::Value =
            http.get(server.url("/v1/projects/shared")).header("storehost-min-seq", &seq).send().await.unwrap().json().await.unwrap();
        assert_eq!(read["name"], "v2");
    }
    for server in servers {
        server.stop();
    }

    let trace = hex::decode(TRACE).unwrap();
    let writer = received.of("replica-0");
    let put = writer.iter().find(|s| s.name == "PUT /v1/projects/{id}" && s.trace_id == trace).expect("the traced write's span");
    let append = writer.iter().find(|s| s.name == "invalidation log append" && s.trace_id == trace).expect("the append's span");
    assert_eq!(int(append, "storehost.log.seq").map(|s| s.to_string()), Some(seq.clone()), "{append:#?}");
    let mut ancestor = append;
    while ancestor.span_id != put.span_id {
        ancestor = writer.iter().find(|s| s.span_id == ancestor.parent_span_id).unwrap_or_else(|| panic!("the append is under the PUT: {append:#?}"));
    }
    for replica in ["replica-1", "replica-2"] {
        let spans = received.of(replica);
        let applied: Vec<&Span> = spans.iter().filter(|s| s.name == "invalidation apply" && s.trace_id == trace).collect();
        assert!(!applied.is_empty(), "{replica} applied the write in a span of its trace: {spans:#?}");
        for apply in applied {
            assert_eq!((apply.trace_id.clone(), apply.parent_span_id.clone()), (trace.clone(), append.span_id.clone()), "{apply:#?}");
            assert!(apply.links.iter().any(|l| l.trace_id == trace && l.span_id == append.span_id), "linked to the append: {apply:#?}");
            assert_eq!(text(apply, "storehost.cluster.writer").as_deref(), Some("host-0"));
        }
    }
}

/// With peer fill, a read of a key another replica owns: the asking replica's lookup says the
/// owner answered, and the owner's request span is a child of that lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_filled_by_the_keys_owner_continues_in_the_owners_request() {
    let (collector, received) = http_receiver().await;
    let db = TestDatabase::create().await;
    let shared = tempfile::tempdir().unwrap();
    let (mut servers, mut dirs) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let manifest = format!(
            "[plugins.files]\nsource = \"builtin:fs\"\ndirs = {{ \"/data\" = {{ host = \"{}\", mode = \"rw\" }} }}\nconfig = {{ fsync = false }}\n\n[domains]\nartifact = {{ origin = \"files\", peer_fill = true }}\n\n[cluster]\nlog = {{ url = \"{}\" }}\nhost_id = \"host-{i}\"\npoll = \"250ms\"\npeer_secret = \"the trace test's peer secret\"\nheartbeat = \"100ms\"\nmember_timeout = \"1s\"\n",
            shared.path().display(),
            db.url
        );
        servers.push(Server::start(dir.path(), Some(&manifest), &exporting(&collector, &format!("replica-{i}"))));
        dirs.push(dir);
    }
    let http = reqwest::Client::new();
    for server in &servers {
        let started = std::time::Instant::now();
        while !http.get(server.url("/admin")).send().await.unwrap().text().await.unwrap().contains("on a ring of 3") {
            assert!(started.elapsed() < Duration::from_secs(10), "no ring of three");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Keys written through replica 0 and read through replica 1, until one is answered by its
    // owner (replica 0 or 2).
    let mut found = None;
    for k in 0..64 {
        let path = format!("/v1/artifacts/owned/{k}");
        assert_eq!(http.put(servers[0].url(&path)).body(vec![9u8; 2048]).send().await.unwrap().status(), 200);
        let read = http.get(servers[1].url(&path)).header("traceparent", traceparent()).send().await.unwrap();
        let peer = read.headers().get("x-cache").is_some_and(|v| v == "peer");
        assert_eq!(read.bytes().await.unwrap().len(), 2048);
        if peer {
            found = Some(path);
            break;
        }
    }
    let path = found.expect("replica 1 read no key from an owner");
    for server in servers {
        server.stop();
    }
    let trace = hex::decode(TRACE).unwrap();
    let asker = received.of("replica-1");
    let get = request(&asker, "GET /v1/artifacts/{*key}", &path);
    let lookup = named(&children(&asker, get), "cache artifact.blob");
    assert_eq!((text(lookup, "storehost.cache.tier").as_deref(), text(lookup, "storehost.cache.result").as_deref()), (Some("peer"), Some("hit")));
    let owners: Vec<Span> = ["replica-0", "replica-2"].iter().flat_map(|r| received.of(r)).collect();
    let answered = owners
        .iter()
        .find(|s| s.trace_id == trace && text(s, "url.path").is_some_and(|p| p.starts_with("/_storehost/peer/artifacts/owned/")))
        .unwrap_or_else(|| panic!("no owner's request span in the trace"));
    assert_eq!(answered.parent_span_id, lookup.span_id, "the owner's request is a child of the asking lookup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_telemetry_configured_nothing_is_exported_and_metrics_say_so() {
    let (collector, received) = http_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    // The collector is there, but nothing names it: traces stay off.
    let server = Server::start(dir.path(), None, &[("OTEL_SERVICE_NAME", "storehost-under-test")]);
    let http = reqwest::Client::new();
    let traced = http.get(server.url("/healthz")).header("traceparent", traceparent()).send().await.unwrap();
    assert_eq!(traced.status(), 200);
    let metrics = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("storehost_trace_spans_exported_total 0"), "{metrics}");
    assert!(metrics.contains("storehost_trace_spans_dropped_total{reason=\"queue_full\"} 0"), "{metrics}");
    server.stop();
    assert!(received.spans().is_empty(), "nothing names the collector {collector}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_only_dropped_spans() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), None, &exporting(&endpoint, "nowhere"));
    let http = reqwest::Client::new();
    for _ in 0..20 {
        assert_eq!(http.get(server.url("/healthz")).send().await.unwrap().status(), 200);
    }
    // The export interval passes; the failed batch is counted.
    let mut dropped = 0.0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let metrics = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
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

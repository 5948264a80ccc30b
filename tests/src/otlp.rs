//! OTLP receivers for the trace tests, on free loopback ports: the HTTP/protobuf one
//! (`POST /v1/traces`) and the gRPC one (the collector's `TraceService`, on tonic). Each keeps
//! every span it was sent, with the `service.name` of the process that sent it.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
pub use opentelemetry_proto::tonic::common::v1::any_value::Value;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// What a receiver was sent: each span with its process's `service.name`.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<(String, Span)>>>);

impl Received {
    /// Every span so far.
    pub fn spans(&self) -> Vec<Span> {
        self.0.lock().unwrap().iter().map(|(_, span)| span.clone()).collect()
    }

    /// The spans of the processes named `service`.
    pub fn of(&self, service: &str) -> Vec<Span> {
        self.0.lock().unwrap().iter().filter(|(name, _)| name == service).map(|(_, span)| span.clone()).collect()
    }

    fn keep(&self, request: ExportTraceServiceRequest) {
        let mut kept = self.0.lock().unwrap();
        for resource in request.resource_spans {
            let attributes = resource.resource.map(|r| r.attributes).unwrap_or_default();
            let service = attributes
                .iter()
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(name) => Some(name.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            kept.extend(resource.scope_spans.into_iter().flat_map(|s| s.spans).map(|span| (service.clone(), span)));
        }
    }
}

/// A span's attribute.
pub fn attribute(span: &Span, key: &str) -> Option<Value> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(|v| v.value)
}

/// A span's string attribute.
pub fn text(span: &Span, key: &str) -> Option<String> {
    match attribute(span, key)? {
        Value::StringValue(text) => Some(text),
        _ => None,
    }
}

/// A span's integer attribute.
pub fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        Value::IntValue(n) => Some(n),
        _ => None,
    }
}

/// An OTLP/HTTP receiver; its base URL (`http://127.0.0.1:PORT`), to which exporters add
/// `/v1/traces`.
pub async fn http_receiver() -> (String, Received) {
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let store = store.clone();
            async move {
                store.keep(ExportTraceServiceRequest::decode(body).expect("an OTLP trace export"));
                ([("content-type", "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, received)
}

struct Collector(Received);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(&self, request: tonic::Request<ExportTraceServiceRequest>) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.keep(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// An OTLP/gRPC receiver; its URL.
pub async fn grpc_receiver() -> (String, Received) {
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

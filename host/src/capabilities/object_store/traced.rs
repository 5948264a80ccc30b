//! Each S3 request a plugin's object-store calls make is a span of the plugin call (with traces
//! on): the operation, the bucket, the bytes sent or received, the HTTP status and how many times
//! the SDK resent it. An interceptor of the client opens the span when the SDK starts the
//! operation and ends it when the operation is done (for a streamed GET: when the head arrived).

use aws_sdk_s3::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// The interceptor: spans for the requests of one bucket's client.
#[derive(Debug)]
pub(super) struct Traced {
    pub(super) bucket: String,
}

/// The span of the operation under way, kept in the operation's config bag between hooks. An
/// operation cut before its last hook (its timeout, the plugin call's deadline) drops the bag
/// with the span still here: it ends as an error.
#[derive(Debug)]
struct Open(parking_lot::Mutex<Option<tracing::Span>>);

impl Drop for Open {
    fn drop(&mut self) {
        if let Some(span) = self.0.get_mut().take() {
            span.record("otel.status_code", "ERROR").record("otel.status_description", "cut before it ended (a timeout or the call's deadline)");
        }
    }
}

impl Storable for Open {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Traced {
    fn name(&self) -> &'static str {
        "storehost-traces"
    }

    /// The first hook that sees the operation's name (the client's `read_before_execution`
    /// runs before the operation's configuration is in the bag).
    fn read_before_serialization(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !crate::base::telemetry::on() {
            return Ok(());
        }
        let operation = cfg.load::<Metadata>().map_or("S3", Metadata::name).to_string();
        let span = tracing::info_span!(
            target: "storehost::object_store",
            "s3 request",
            otel.name = %format_args!("S3/{operation}"),
            otel.kind = "client",
            rpc.system = "aws-api",
            rpc.service = "S3",
            rpc.method = %operation,
            aws.s3.bucket = %self.bucket,
            http.request.body.size = tracing::field::Empty,
            http.response.body.size = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            http.request.resend_count = tracing::field::Empty,
            aws.s3.presigned = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
        );
        cfg.interceptor_state().store_put(Open(parking_lot::Mutex::new(Some(span))));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Open(span)) = cfg.load::<Open>()
            && let Some(span) = &*span.lock()
            && let Some(size) = context.request().body().content_length().filter(|size| *size > 0)
        {
            span.record("http.request.body.size", size as i64);
        }
        Ok(())
    }

    fn read_after_execution(&self, context: &FinalizerInterceptorContextRef<'_>, _: &RuntimeComponents, cfg: &mut ConfigBag) -> Result<(), BoxError> {
        let Some(span) = cfg.load::<Open>().and_then(|Open(span)| span.lock().take()) else { return Ok(()) };
        let attempts = cfg.load::<RequestAttempts>().map_or(1, RequestAttempts::attempts);
        span.record("http.request.resend_count", i64::from(attempts.saturating_sub(1)));
        if context.response().is_none() && context.output_or_error().is_some_and(|result| result.is_ok()) {
            // Signed, not sent: a presigned URL.
            span.record("aws.s3.presigned", true);
            return Ok(());
        }
        if let Some(response) = context.response() {
            span.record("http.response.status_code", i64::from(response.status().as_u16()));
            if let Some(size) = response.headers().get("content-length").and_then(|v| v.parse::<i64>().ok()) {
                span.record("http.response.body.size", size);
            }
        }
        // A missing key or object is an answer, not a failure.
        let failed = match context.response() {
            Some(response) => response.status().is_server_error() || (response.status().is_client_error() && response.status().as_u16() != 404),
            None => context.output_or_error().is_some_and(|result| result.is_err()),
        };
        if failed {
            span.record("otel.status_code", "ERROR");
        }
        Ok(())
    }
}

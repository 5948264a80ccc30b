//! The request log's line, written without `tracing`'s formatting: a request's line is the
//! one log line every request writes, and formatting it through an event (its fields visited,
//! its time formatted anew, an event dispatched) costs more than answering a cached read. The
//! line is the one `tracing_subscriber::fmt` would write for the event
//! `info!(target: "storehost::http", method, path, status, latency_us, "request")`, in text or
//! JSON, into the same [`LogBuffer`]; the `RUST_LOG` filter decides whether it is written, as it
//! decides for any event. The test below holds the two to the same bytes.
//!
//! [`install`] turns it on (the binary does, for a log without colours); until then, and in
//! a request with a trace (whose line carries the trace's ids), the event is logged through
//! `tracing` as before.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use super::log_buffer::LogBuffer;

/// The request log's target.
pub const TARGET: &str = "storehost::http";

struct Direct {
    out: LogBuffer,
    json: bool,
}

static DIRECT: OnceLock<Direct> = OnceLock::new();

/// Writes the request log's lines to `out` by hand, as JSON or as text (without colours).
pub fn install(out: LogBuffer, json: bool) {
    let _ = DIRECT.set(Direct { out, json });
}

/// One request's line.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub latency_us: u64,
}

/// Writes `request`'s line by hand; `false` when that is not on (the caller logs the event).
pub fn write(request: &Request<'_>) -> bool {
    let Some(direct) = DIRECT.get() else { return false };
    if !tracing::enabled!(kind: tracing::metadata::Kind::EVENT, target: TARGET, tracing::Level::INFO) {
        return true;
    }
    LINE.with_borrow_mut(|line| {
        line.clear();
        format(line, direct.json, SystemTime::now(), request);
        let _ = (&direct.out).write_all(line);
    });
    true
}

thread_local! {
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The second last formatted, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: RefCell<(u64, [u8; 19])> = const { RefCell::new((u64::MAX, [0; 19])) };
}

/// The line of `request` at `now`, as `tracing_subscriber::fmt` writes it.
fn format(line: &mut Vec<u8>, json: bool, now: SystemTime, request: &Request<'_>) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut stamp = [0u8; 27];
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != since.as_secs() {
            let time = chrono::DateTime::from_timestamp(since.as_secs() as i64, 0).unwrap_or_default();
            text.copy_from_slice(time.format("%Y-%m-%dT%H:%M:%S").to_string().as_bytes());
            *second = since.as_secs();
        }
        stamp[..19].copy_from_slice(&text[..]);
    });
    let _ = write!(&mut stamp[19..], ".{:06}Z", since.subsec_micros());
    let stamp = std::str::from_utf8(&stamp).unwrap_or_default();
    let Request { method, path, status, latency_us } = *request;
    if json {
        let path = serde_json::to_string(path).unwrap_or_default();
        let method = serde_json::to_string(method).unwrap_or_default();
        let _ = writeln!(
            line,
            "{{\"timestamp\":\"{stamp}\",\"level\":\"INFO\",\"fields\":{{\"message\":\"request\",\"method\":{method},\"path\":{path},\"status\":{status},\"latency_us\":{latency_us}}},\"target\":\"{TARGET}\"}}"
        );
    } else {
        let _ = writeln!(line, "{stamp}  INFO {TARGET}: request method={method} path={path} status={status} latency_us={latency_us}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines `tracing_subscriber::fmt` writes for the request event, with a fixed time.
    fn by_tracing(json: bool, request: &Request<'_>) -> String {
        struct Fixed;
        impl tracing_subscriber::fmt::time::FormatTime for Fixed {
            fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
                write!(w, "2026-12-06T00:19:41.000042Z")
            }
        }
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = out.clone();
        let make = move || Sink(sink.clone());
        let builder = tracing_subscriber::fmt().with_timer(Fixed).with_ansi(false).with_writer(make);
        let Request { method, path, status, latency_us } = *request;
        let event = || tracing::info!(target: "storehost::http", method = %method, path = %path, status, latency_us, "request");
        if json {
            tracing::subscriber::with_default(builder.json().finish(), event);
        } else {
            tracing::subscriber::with_default(builder.finish(), event);
        }
        let bytes = out.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn by_hand(json: bool, request: &Request<'_>) -> String {
        let at = UNIX_EPOCH + std::time::Duration::from_micros(1_796_516_381_000_042);
        let mut line = Vec::new();
        format(&mut line, json, at, request);
        String::from_utf8(line).unwrap()
    }

    #[test]
    fn the_line_is_the_one_tracing_writes() {
        let requests = [
            Request { method: "GET", path: "/v1/artifacts/bench/4k.bin", status: 200, latency_us: 12 },
            Request { method: "PUT", path: "/v1/artifacts/a b/\"quoted\"\\é", status: 413, latency_us: 0 },
            Request { method: "DELETE", path: "/", status: 503, latency_us: u64::MAX },
        ];
        for request in &requests {
            for json in [false, true] {
                assert_eq!(by_hand(json, request), by_tracing(json, request), "json: {json}");
            }
        }
    }

    #[test]
    fn the_time_is_utc_to_the_microsecond_across_seconds() {
        let mut line = Vec::new();
        let request = Request { method: "GET", path: "/", status: 200, latency_us: 1 };
        for (micros, stamp) in [(1_796_516_381_000_042, "2026-12-06T00:19:41.000042Z"), (1_796_516_382_999_999, "2026-12-06T00:19:42.999999Z")] {
            line.clear();
            format(&mut line, false, UNIX_EPOCH + std::time::Duration::from_micros(micros), &request);
            assert!(String::from_utf8_lossy(&line).starts_with(stamp), "{}", String::from_utf8_lossy(&line));
        }
    }
}

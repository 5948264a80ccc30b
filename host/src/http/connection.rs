//! The server's connections. A request that HTTP/1 parsing refuses (a header with a control
//! character, an over-long head) never reaches a handler: hyper answers it itself, with an empty
//! body, and closes. On the way out, such an answer (an error status, `content-length: 0`, no
//! content type: every answer of ours has a JSON body) is rewritten into the API's JSON error
//! shape, so every 4xx and 5xx a client sees is `{"error": {"kind", "message"}}`.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Accepts connections and wraps each in a [`Connection`].
pub(crate) struct Listener(pub(crate) TcpListener);

impl axum::serve::Listener for Listener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = stream.set_nodelay(true);
        (Connection { stream, rewritten: None }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A TCP connection whose bodiless error answers are rewritten as JSON.
pub(crate) struct Connection {
    stream: TcpStream,
    /// A rewritten answer still being written: its bytes, how many are written, and how many
    /// bytes of the caller's buffer it stands for.
    rewritten: Option<(Vec<u8>, usize, usize)>,
}

/// The JSON answer replacing `head`, when `head` is a whole bodiless error answer.
fn rewrite(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let (version, code, reason) = (parts.next()?, parts.next()?.parse::<u16>().ok()?, parts.next().unwrap_or(""));
    let headers: Vec<&str> = lines.collect();
    let bodiless = headers.iter().any(|h| h.eq_ignore_ascii_case("content-length: 0"));
    let typed = headers.iter().any(|h| h.to_ascii_lowercase().starts_with("content-type:"));
    if !rest.is_empty() || code < 400 || !bodiless || typed {
        return None;
    }
    let kind = match code {
        400 => "invalid",
        408 => "timeout",
        413 => "too-large",
        414 => "uri-too-long",
        431 => "headers-too-large",
        505 => "http-version-not-supported",
        c if c < 500 => "invalid",
        _ => "internal",
    };
    let message = format!("the request could not be read as HTTP/1.1: {}", if reason.is_empty() { "malformed" } else { reason });
    let body = serde_json::json!({ "error": { "kind": kind, "message": message } }).to_string();
    let mut out = format!("{version} {code} {reason}\r\n");
    for header in headers.iter().filter(|h| !h.eq_ignore_ascii_case("content-length: 0")) {
        out.push_str(header);
        out.push_str("\r\n");
    }
    out.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()));
    Some(out.into_bytes())
}

impl Connection {
    /// Writes out a rewritten answer; ready with the caller's byte count once it is all written.
    fn poll_rewritten(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while let Some((bytes, written, stands_for)) = &mut self.rewritten {
            if *written == bytes.len() {
                let n = *stands_for;
                self.rewritten = None;
                return Poll::Ready(Ok(n));
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(0))
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.rewritten.is_none() {
            match buf.starts_with(b"HTTP/1.").then(|| rewrite(buf)).flatten() {
                Some(json) => self.rewritten = Some((json, 0, buf.len())),
                None => return Pin::new(&mut self.stream).poll_write(cx, buf),
            }
        }
        self.poll_rewritten(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        // A bodiless answer is written as one slice; anything else passes straight through.
        match bufs.iter().filter(|b| !b.is_empty()).count() {
            1 if self.rewritten.is_none() => {
                let only = bufs.iter().find(|b| !b.is_empty()).expect("counted");
                self.poll_write(cx, only)
            }
            _ if self.rewritten.is_some() => self.poll_rewritten(cx),
            _ => Pin::new(&mut self.stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_rewritten(cx))?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_rewritten(cx))?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bodiless_error_answer_becomes_json() {
        let canned = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 11:06:40 GMT\r\n\r\n";
        let out = String::from_utf8(rewrite(canned).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n"), "{out}");
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{out}");
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["kind"], "invalid");
    }

    #[test]
    fn answers_with_bodies_or_types_pass() {
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\nhello").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none(), "an incomplete head");
    }
}

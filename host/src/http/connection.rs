//! The server's connections. A request whose body is framed both by `Content-Length` and by
//! `Transfer-Encoding` is made one that HTTP/1 parsing refuses ([`HeadScan`]). A request that HTTP/1 parsing refuses (a header with a control
//! character, an over-long head) never reaches a handler: hyper answers it itself, with an empty
//! body, and closes. On the way out, such an answer (an error status, `content-length: 0`, no
//! content type: every answer of ours has a JSON body) is rewritten into the API's JSON error
//! shape, so every 4xx and 5xx a client sees is `{"error": {"kind", "message"}}`.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A TCP connection whose bodiless error answers are rewritten as JSON.
pub(crate) struct Connection {
    stream: TcpStream,
    /// A rewritten answer still being written: its bytes, how many are written, and how many
    /// bytes of the caller's buffer it stands for.
    rewritten: Option<(Vec<u8>, usize, usize)>,
    heads: HeadScan,
}

/// Watches the request heads a connection brings for a body framed both by `Content-Length` and
/// by `Transfer-Encoding`, which hops in front of the server may read one way and the server the
/// other (request smuggling). hyper takes such a body as chunked; here the second of the two
/// headers is broken (its `:` becomes a control byte) before hyper reads it, so that hyper
/// refuses the request with 400 and closes the connection.
///
/// Bodies framed by `Content-Length` are skipped; after a chunked body the rest of the connection
/// is not watched (its framing would take decoding to follow).
#[derive(Debug, Default)]
struct HeadScan {
    state: Scan,
    /// The current line's first bytes, lower-cased, up to its `:`.
    name: [u8; 18],
    name_len: usize,
    /// Past the line's `:` (or past what any header name here can be).
    past_name: bool,
    /// Reading the value of a `Content-Length`.
    in_length: bool,
    length: Option<u64>,
    chunked: bool,
}

#[derive(Debug, Default, PartialEq)]
enum Scan {
    #[default]
    Head,
    Body(u64),
    Off,
}

impl HeadScan {
    /// Looks at bytes just read, breaking a header in them where the head is framed twice.
    fn scan(&mut self, bytes: &mut [u8]) {
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                Scan::Off => return,
                Scan::Body(left) => {
                    let n = left.min((bytes.len() - i) as u64);
                    i += n as usize;
                    self.state = if n == left { Scan::Head } else { Scan::Body(left - n) };
                    continue;
                }
                Scan::Head => {}
            }
            match bytes[i] {
                b'\n' => self.end_of_line(),
                b'\r' => {}
                b':' if !self.past_name => {
                    self.past_name = true;
                    match &self.name[..self.name_len] {
                        b"content-length" => {
                            self.in_length = true;
                            self.length = Some(self.length.unwrap_or(0));
                            if self.chunked {
                                bytes[i] = 0x01;
                            }
                        }
                        b"transfer-encoding" => {
                            self.chunked = true;
                            if self.length.is_some() {
                                bytes[i] = 0x01;
                            }
                        }
                        _ => {}
                    }
                }
                b if !self.past_name => {
                    if self.name_len < self.name.len() {
                        self.name[self.name_len] = b.to_ascii_lowercase();
                        self.name_len += 1;
                    } else {
                        self.past_name = true;
                    }
                }
                b if self.in_length && b.is_ascii_digit() => {
                    self.length = self.length.map(|n| n.saturating_mul(10).saturating_add(u64::from(b - b'0')));
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn end_of_line(&mut self) {
        let empty = self.name_len == 0 && !self.past_name;
        (self.name_len, self.past_name, self.in_length) = (0, false, false);
        if !empty {
            return;
        }
        self.state = match (self.chunked, self.length) {
            (true, _) => Scan::Off,
            (false, Some(n)) if n > 0 => Scan::Body(n),
            _ => Scan::Head,
        };
        (self.length, self.chunked) = (None, false);
    }
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
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self { stream, rewritten: None, heads: HeadScan::default() }
    }

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
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        self.heads.scan(&mut buf.filled_mut()[before..]);
        Poll::Ready(Ok(()))
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

    fn scanned(chunks: &[&[u8]]) -> Vec<u8> {
        let mut scan = HeadScan::default();
        let mut out = Vec::new();
        for chunk in chunks {
            let mut bytes = chunk.to_vec();
            scan.scan(&mut bytes);
            out.extend(bytes);
        }
        out
    }

    #[test]
    fn a_head_framed_twice_is_broken_whichever_header_comes_first_and_wherever_reads_split_it() {
        let heads: [&[u8]; 2] = [
            b"PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"PUT /a HTTP/1.1\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n",
        ];
        for head in heads {
            for split in 0..head.len() {
                let out = scanned(&[&head[..split], &head[split..]]);
                assert_eq!(out.iter().filter(|b| **b == 0x01).count(), 1, "split at {split}: {}", String::from_utf8_lossy(&out));
            }
        }
    }

    #[test]
    fn heads_framed_once_and_bodies_pass_untouched() {
        // A body that looks like a head framed twice is a body, skipped by its length; the next
        // request on the connection is watched again.
        let body = b"content-length: 1\r\ntransfer-encoding: chunked\r\n\r\n";
        let mut stream = format!("PUT /a HTTP/1.1\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        stream.extend_from_slice(body);
        stream.extend_from_slice(b"GET /b HTTP/1.1\r\nhost: x\r\n\r\nPUT /c HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(scanned(&[&stream]), stream);
        let twice = b"GET /b HTTP/1.1\r\n\r\nPUT /d HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(scanned(&[twice]).iter().filter(|b| **b == 0x01).count(), 1);
    }

    #[test]
    fn answers_with_bodies_or_types_pass() {
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\nhello").is_none());
        assert!(rewrite(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none(), "an incomplete head");
    }
}

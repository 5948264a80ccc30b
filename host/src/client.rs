//! Client subcommands: talk to a running server over its HTTP API.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Method, RequestBuilder, Response};
use storehost::http::encode_path;

/// Transfers at least this large show a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 1 << 20;
/// How many times one download resumes a cut transfer before it gives up.
const RESUMES: u32 = 5;

pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
    positions: Option<std::path::PathBuf>,
}

/// Where the client keeps, per server, the highest log position its writes were answered with,
/// so that its later reads (in any later command) see them even on another replica:
/// `STOREHOST_LOG_POSITIONS`, else `~/.cache/storehost/log-positions`.
fn positions_file() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("STOREHOST_LOG_POSITIONS") {
        return Some(path.into());
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/storehost/log-positions"))
}

pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    if len < PROGRESS_FROM {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Self {
        Self { http: reqwest::Client::new(), server: server.trim_end_matches('/').to_string(), token, positions: positions_file() }
    }

    /// The recorded position of this server's writes, if any.
    fn position(&self) -> Option<u64> {
        let text = std::fs::read_to_string(self.positions.as_ref()?).ok()?;
        text.lines().filter_map(|l| l.split_once(' ')).find(|(server, _)| *server == self.server).and_then(|(_, seq)| seq.parse().ok())
    }

    /// Records `seq` as this server's position if it is newer. Best effort: without it, reads
    /// are still correct within the servers' staleness bound.
    fn record_position(&self, seq: u64) {
        let Some(path) = &self.positions else { return };
        if self.position().is_some_and(|known| known >= seq) {
            return;
        }
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut lines: Vec<String> = text.lines().filter(|l| l.split_once(' ').is_some_and(|(s, _)| s != self.server)).map(String::from).collect();
        lines.push(format!("{} {seq}", self.server));
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(path, lines.join("\n") + "\n");
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.server));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends (asking to see this client's earlier writes), records the position of a write,
    /// and turns an API error into a message with its kind.
    async fn send(&self, mut request: RequestBuilder) -> Result<Response> {
        if let Some(seq) = self.position() {
            request = request.header(storehost::http::log_seq::MIN_SEQ, seq);
        }
        let response = request.send().await.with_context(|| format!("cannot reach {}", self.server))?;
        if let Some(seq) = response.headers().get(storehost::http::log_seq::LOG_SEQ).and_then(|v| v.to_str().ok()?.parse().ok()) {
            self.record_position(seq);
        }
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let kind = body["error"]["kind"].as_str().unwrap_or("error");
        let message = body["error"]["message"].as_str().unwrap_or("");
        bail!("{status} {kind}: {message}")
    }

    async fn upload(&self, path: &str, file: &Path, content_type: Option<&str>) -> Result<Response> {
        let handle = tokio::fs::File::open(file).await.with_context(|| format!("cannot open {}", file.display()))?;
        let len = handle.metadata().await?.len();
        let bar = progress(len, &format!("uploading {}", file.display()));
        let counted = bar.clone();
        let stream = tokio_util::io::ReaderStream::new(handle).inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                counted.inc(chunk.len() as u64);
            }
        });
        let mut request = self.request(Method::PUT, path).header(reqwest::header::CONTENT_LENGTH, len).body(reqwest::Body::wrap_stream(stream));
        if let Some(ct) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, ct);
        }
        let response = self.send(request).await;
        bar.finish_and_clear();
        response
    }

    /// Downloads `path` to `out` (or stdout). The body goes to `<out>.part` first and is renamed
    /// into place when whole; a cut transfer is resumed with a range request, in this run (up
    /// to [`RESUMES`] times) or the next run over the same `out`, as long as the body is still
    /// the one that was begun (`If-Range` with its ETag).
    async fn download(&self, path: &str, out: Option<&Path>) -> Result<()> {
        let Some(file) = out else { return self.download_to(path, &mut Partial::stdout()).await };
        let mut partial = Partial::open(file)?;
        self.download_to(path, &mut partial).await?;
        partial.finish()
    }

    async fn download_to(&self, path: &str, partial: &mut Partial) -> Result<()> {
        let mut attempt = 0;
        loop {
            let mut request = self.request(Method::GET, path);
            let resume_at = partial.len;
            if resume_at > 0 {
                let Some(etag) = partial.etag.clone() else { bail!("cannot resume: the server gave no ETag") };
                eprintln!("resuming at byte {resume_at}");
                request = request.header(reqwest::header::RANGE, format!("bytes={resume_at}-")).header(reqwest::header::IF_RANGE, etag);
            }
            let response = match self.send(request).await {
                Ok(response) => response,
                // The body is all here already: the range starts at its end.
                Err(e) if resume_at > 0 && e.to_string().starts_with("416") => return Ok(()),
                Err(e) => return Err(e),
            };
            let etag = response.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(String::from);
            if response.status() == reqwest::StatusCode::PARTIAL_CONTENT {
                let start = response
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok()?.strip_prefix("bytes ")?.split('-').next()?.parse::<u64>().ok());
                if start != Some(resume_at) {
                    bail!("the server answered a range from {start:?}, not from byte {resume_at}");
                }
            } else {
                partial.restart(etag)?;
            }
            let total = partial.len + response.content_length().unwrap_or(0);
            let bar = progress(total, "downloading");
            bar.set_position(partial.len);
            let mut stream = response.bytes_stream();
            let mut cut = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        partial.write(&chunk)?;
                        bar.inc(chunk.len() as u64);
                    }
                    Err(e) => {
                        cut = Some(e);
                        break;
                    }
                }
            }
            bar.finish_and_clear();
            partial.flush()?;
            match cut {
                None => return Ok(()),
                Some(e) if attempt < RESUMES && partial.etag.is_some() => {
                    attempt += 1;
                    eprintln!("download cut after {} bytes ({e}); resuming", partial.len);
                    tokio::time::sleep(std::time::Duration::from_millis(250 << attempt.min(4))).await;
                }
                Some(e) => return Err(e).context(format!("download cut after {} bytes", partial.len)),
            }
        }
    }

    pub async fn artifact_put(&self, key: &str, file: &Path, content_type: Option<&str>) -> Result<()> {
        let response = self.upload(&format!("/v1/artifacts/{}", encode_path(key)), file, content_type).await?;
        let meta: serde_json::Value = response.json().await?;
        println!("{}  {} bytes  sha256 {}", meta["key"].as_str().unwrap_or(key), meta["size"], meta["sha256"].as_str().unwrap_or(""));
        Ok(())
    }

    pub async fn artifact_get(&self, key: &str, out: Option<&Path>) -> Result<()> {
        self.download(&format!("/v1/artifacts/{}", encode_path(key)), out).await
    }

    pub async fn artifact_ls(&self, prefix: &str) -> Result<()> {
        let mut cursor: Option<String> = None;
        loop {
            let mut request = self.request(Method::GET, "/v1/artifacts").query(&[("prefix", prefix), ("limit", "1000")]);
            if let Some(c) = &cursor {
                request = request.query(&[("cursor", c)]);
            }
            let page: serde_json::Value = self.send(request).await?.json().await?;
            for item in page["items"].as_array().into_iter().flatten() {
                println!("{:>12}  {}", item["size"], item["key"].as_str().unwrap_or(""));
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Ok(()),
            }
        }
    }

    pub async fn artifact_url(&self, key: &str, expires_in: u32) -> Result<()> {
        let request = self.request(Method::GET, &format!("/v1/artifact-urls/{}", encode_path(key))).query(&[("expires_in", expires_in)]);
        let answer: serde_json::Value = self.send(request).await?.json().await?;
        println!("{}", answer["url"].as_str().unwrap_or(""));
        Ok(())
    }

    /// Makes a new secret current for the server's signed URLs (every replica's, with
    /// `[cluster]`); URLs signed before stay valid until they expire.
    pub async fn rotate_url_secret(&self) -> Result<()> {
        let answer: serde_json::Value = self.send(self.request(Method::POST, "/v1/admin/url-secret/rotate")).await?.json().await?;
        println!("{answer}");
        Ok(())
    }

    fn run_path(run: &str, name: &str) -> String {
        format!("/v1/runs/{}/artifacts/{}", encode_path(run), encode_path(name))
    }

    pub async fn runner_write(&self, run: &str, name: &str, file: &Path) -> Result<()> {
        self.upload(&Self::run_path(run, name), file, None).await.map(drop)
    }

    pub async fn runner_read(&self, run: &str, name: &str, out: Option<&Path>) -> Result<()> {
        self.download(&Self::run_path(run, name), out).await
    }

    pub async fn runner_rm(&self, run: &str, name: &str) -> Result<()> {
        self.send(self.request(Method::DELETE, &Self::run_path(run, name))).await.map(drop)
    }

    pub async fn runner_ls(&self, run: &str, prefix: &str) -> Result<()> {
        let request = self.request(Method::GET, &format!("/v1/runs/{}/artifacts", encode_path(run))).query(&[("prefix", prefix)]);
        let names: Vec<String> = self.send(request).await?.json().await?;
        for name in names {
            println!("{name}");
        }
        Ok(())
    }
}

/// A download's destination: `<file>.part` (with the body's ETag beside it in
/// `<file>.part.etag`) until it is whole, or standard output.
struct Partial {
    sink: Box<dyn Write>,
    /// `<file>` and `<file>.part`; `None` for standard output.
    paths: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Bytes written so far.
    len: u64,
    etag: Option<String>,
}

impl Partial {
    fn stdout() -> Self {
        Self { sink: Box::new(std::io::stdout().lock()), paths: None, len: 0, etag: None }
    }

    /// Opens `<file>.part` to append to what an earlier, cut run left.
    fn open(file: &Path) -> Result<Self> {
        let mut part = file.as_os_str().to_owned();
        part.push(".part");
        let part = std::path::PathBuf::from(part);
        let etag = std::fs::read_to_string(Self::etag_path(&part)).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        let handle =
            std::fs::OpenOptions::new().create(true).append(true).open(&part).with_context(|| format!("cannot create {}", part.display()))?;
        let len = if etag.is_some() { handle.metadata()?.len() } else { 0 };
        if etag.is_none() {
            handle.set_len(0)?;
        }
        Ok(Self { sink: Box::new(std::io::BufWriter::new(handle)), paths: Some((file.to_path_buf(), part)), len, etag })
    }

    fn etag_path(part: &Path) -> std::path::PathBuf {
        let mut path = part.as_os_str().to_owned();
        path.push(".etag");
        path.into()
    }

    /// Starts over: the server sent the whole body (a new one, or no resume was asked).
    fn restart(&mut self, etag: Option<String>) -> Result<()> {
        if self.len > 0 {
            let Some((_, part)) = &self.paths else { bail!("the body changed after {} bytes went to standard output", self.len) };
            self.sink.flush()?;
            std::fs::OpenOptions::new().write(true).open(part)?.set_len(0)?;
            self.len = 0;
        }
        if let Some((_, part)) = &self.paths {
            std::fs::write(Self::etag_path(part), etag.as_deref().unwrap_or(""))?;
        }
        self.etag = etag;
        Ok(())
    }

    fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.sink.write_all(chunk)?;
        self.len += chunk.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(self.sink.flush()?)
    }

    /// Puts the whole body in place.
    fn finish(mut self) -> Result<()> {
        self.flush()?;
        if let Some((file, part)) = &self.paths {
            std::fs::rename(part, file).with_context(|| format!("cannot rename {} to {}", part.display(), file.display()))?;
            let _ = std::fs::remove_file(Self::etag_path(part));
        }
        Ok(())
    }
}

/// A file argument: `-` is not accepted for uploads (the length must be known for progress).
pub fn input_file(path: &Path) -> Result<&Path> {
    if path.as_os_str() == "-" {
        bail!("give a file path (standard input is not supported for uploads)");
    }
    Ok(path)
}

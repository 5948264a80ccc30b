//! Reads on the fs origin racing writes of the same names, on the real binary without caches:
//! a run's file (read by the host from the file the plugin opened) and a project (read whole
//! by the plugin through `storehost:host/files.read`). The host reads the first 16 KiB and one
//! byte of such a file at once, without asking its size first; the sizes written straddle that
//! read, and every answer must be one whole version that was written.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::support::Server;
use reqwest::{Client, StatusCode};
use storehost_tests::origin::Origin;

const RACE: Duration = Duration::from_secs(5);
const WRITERS: usize = 2;
const READERS: usize = 4;
const NAMES: usize = 3;
/// Around the host's first read of a file (16 KiB and one byte): under it, at it, one past
/// it, past it, and far past it.
const SIZES: [usize; 6] = [60, 16 * 1024 - 300, 16 * 1024, 16 * 1024 + 1, 16 * 1024 + 400, 70 * 1024];

/// The body of write `n` of `writer` to `name`: a line naming the three and the length, then
/// letters derived from that line alone.
fn body(name: usize, writer: usize, n: usize, len: usize) -> String {
    let mut out = format!("{name}:{writer}:{n}:{len}\n");
    let seed = name * 7 + writer * 13 + n * 31;
    while out.len() < len {
        out.push((b'a' + ((seed + out.len()) % 26) as u8) as char);
    }
    out
}

/// Checks that `got` is whole: the body its first line names, written to `name`.
fn check(name: usize, got: &str) -> Result<(), String> {
    let line = got.split('\n').next().unwrap_or("");
    let fields: Vec<usize> = line.split(':').filter_map(|f| f.parse().ok()).collect();
    let [named, writer, n, len] = fields[..] else { return Err(format!("no header line in {} bytes: {:?}", got.len(), &line)) };
    if named != name {
        return Err(format!("name {name} answered the body of name {named}"));
    }
    if got != body(name, writer, n, len) {
        return Err(format!("name {name}: {} bytes that are not write {writer}:{n} ({len} bytes) whole", got.len()));
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    writes: AtomicU64,
    whole: AtomicU64,
    missing: AtomicU64,
    bad: parking_lot::Mutex<Vec<String>>,
}

/// How one domain is written and read.
#[derive(Clone, Copy)]
enum Domain {
    RunFiles,
    Projects,
}

impl Domain {
    fn url(self, base: &str, name: usize) -> String {
        match self {
            Domain::RunFiles => format!("{base}/v1/runs/race/artifacts/f{name}"),
            Domain::Projects => format!("{base}/v1/projects/p{name}"),
        }
    }

    async fn write(self, http: &Client, base: &str, name: usize, text: String) -> reqwest::Result<reqwest::Response> {
        let request = http.put(self.url(base, name));
        match self {
            Domain::RunFiles => request.body(text),
            Domain::Projects => request.json(&serde_json::json!({ "name": "race", "state": { "text": text } })),
        }
        .send()
        .await
    }

    /// The text a successful read answered.
    fn text(self, answer: &[u8]) -> Result<String, String> {
        match self {
            Domain::RunFiles => String::from_utf8(answer.to_vec()).map_err(|e| e.to_string()),
            Domain::Projects => {
                let view: serde_json::Value = serde_json::from_slice(answer).map_err(|e| format!("not JSON: {e}"))?;
                view["state"]["text"].as_str().map(String::from).ok_or_else(|| format!("no state.text in {view}"))
            }
        }
    }
}

async fn writer(http: Client, base: String, domain: Domain, tally: Arc<Tally>, id: usize, until: Instant) {
    let mut n = 0;
    while Instant::now() < until {
        let name = (n + id) % NAMES;
        let text = body(name, id, n, SIZES[(n / NAMES + id) % SIZES.len()]);
        let answer = domain.write(&http, &base, name, text).await.expect("a write failed to send");
        assert!(answer.status().is_success(), "a write answered {}: {}", answer.status(), answer.text().await.unwrap_or_default());
        tally.writes.fetch_add(1, Ordering::Relaxed);
        n += 1;
    }
}

async fn reader(http: Client, base: String, domain: Domain, tally: Arc<Tally>, id: usize, until: Instant) {
    let mut i = id;
    while Instant::now() < until {
        let name = i % NAMES;
        i += 1;
        let answer = http.get(domain.url(&base, name)).send().await.expect("a read failed to send");
        let status = answer.status();
        if status == StatusCode::NOT_FOUND {
            tally.missing.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let read = match answer.bytes().await {
            Ok(bytes) if status == StatusCode::OK => domain.text(&bytes).and_then(|text| check(name, &text)),
            Ok(bytes) => Err(format!("answered {status}: {}", String::from_utf8_lossy(&bytes))),
            Err(e) => Err(format!("a {status} body was cut: {e}")),
        };
        match read {
            Ok(()) => {
                tally.whole.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tally.bad.lock().push(e),
        }
    }
}

async fn reads_racing_writes(domain: Domain, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let manifest = format!(
        "[plugins.origin]\n{}\n[domains]\nproject = {{ origin = \"origin\", cache = false }}\nrunner = {{ origin = \"origin\" }}\n",
        Origin::Fs.plugin()
    );
    let server = Server::start(dir.path(), Some(&manifest), &[]);
    let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let tally = Arc::new(Tally::default());
    let until = Instant::now() + RACE;
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..WRITERS {
        tasks.spawn(writer(http.clone(), server.base.clone(), domain, tally.clone(), id, until));
    }
    for id in 0..READERS {
        tasks.spawn(reader(http.clone(), server.base.clone(), domain, tally.clone(), id, until));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a racing task panicked");
    }
    let (writes, whole, missing) = (tally.writes.load(Ordering::Relaxed), tally.whole.load(Ordering::Relaxed), tally.missing.load(Ordering::Relaxed));
    let bad = tally.bad.lock();
    println!("{what}: {writes} writes, {whole} whole reads, {missing} not yet written, {} bad", bad.len());
    assert!(
        bad.is_empty(),
        "{what}: {} of {} reads were not one whole written version; first: {:?}",
        bad.len(),
        whole + bad.len() as u64,
        &bad[..bad.len().min(3)]
    );
    assert!(writes >= 30 && whole >= 100, "{what}: too little happened for a race ({writes} writes, {whole} whole reads)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_file_gets_racing_puts_on_fs_answer_whole_written_versions() {
    reads_racing_writes(Domain::RunFiles, "run files").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_gets_racing_saves_on_fs_answer_whole_written_versions() {
    reads_racing_writes(Domain::Projects, "projects").await
}

#[test]
fn a_body_is_checked_whole() {
    let written = body(1, 0, 5, SIZES[3]);
    assert_eq!(check(1, &written), Ok(()));
    assert!(check(2, &written).unwrap_err().contains("name 2 answered the body of name 1"));
    assert!(check(1, &written[..written.len() - 1]).is_err(), "a cut body passed");
    let mut mixed = body(1, 1, 5, SIZES[3]);
    mixed.replace_range(..20, &written[..20]);
    assert!(check(1, &mixed).is_err(), "a body of two writes passed");
}

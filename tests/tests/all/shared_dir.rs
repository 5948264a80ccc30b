//! Replicas sharing the fs origin's directory, without caches in front of it: each answers the
//! other's acknowledged writes and deletes at once, though each keeps the files it serves open
//! between reads (and readers keep them hot the whole time).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::support::Server;
use reqwest::{Client, StatusCode};

const KEYS: usize = 4;
const ROUNDS: usize = 400;

/// A replica with artifacts on the fs plugin over `shared` and no cache in front of it.
fn manifest(shared: &Path) -> String {
    format!(
        "[plugins.files]\nsource = \"builtin:fs\"\ndirs = {{ \"/data\" = {{ host = \"{}\", mode = \"rw\" }} }}\nconfig = {{ fsync = false }}\n\n[domains]\nartifact = {{ origin = \"files\", cache = false }}\n",
        shared.display()
    )
}

/// The body of round `round`: its number, then letters derived from it, of a length that varies.
fn body(round: usize) -> String {
    let mut out = format!("{round}\n");
    let len = 20 + (round * 977) % 20_000;
    while out.len() < len {
        out.push((b'a' + ((round + out.len()) % 26) as u8) as char);
    }
    out
}

/// The round whose whole body `got` is.
fn round_of(got: &str) -> Option<usize> {
    let round = got.split('\n').next()?.parse().ok()?;
    (body(round) == got).then_some(round)
}

/// Key `key`'s URL on the replica at `base`.
fn url(base: &str, key: usize) -> String {
    format!("{base}/v1/artifacts/shared/k{key}")
}

/// Reads every key from `server` until `stop`, keeping their files open there; every answer
/// must be a whole body or a 404.
async fn keep_reading(http: Client, server: String, stop: Arc<AtomicBool>, reads: Arc<AtomicU64>) -> Result<(), String> {
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let answer = http.get(url(&server, i % KEYS)).send().await.map_err(|e| e.to_string())?;
        i += 1;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| format!("a {status} body was cut: {e}"))?;
        match status {
            StatusCode::NOT_FOUND => {}
            StatusCode::OK if round_of(&text).is_some() => {}
            _ => return Err(format!("answered {status} with {} bytes that are no whole body", text.len())),
        }
        reads.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_directory_without_caches_answer_each_others_last_write() {
    let (shared, one_dir, two_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let one = Server::start(one_dir.path(), Some(&manifest(shared.path())), &[]);
    let two = Server::start(two_dir.path(), Some(&manifest(shared.path())), &[]);
    let http = Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let (stop, reads) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let readers: Vec<_> =
        [&one, &two].iter().map(|s| tokio::spawn(keep_reading(http.clone(), s.base.clone(), stop.clone(), reads.clone()))).collect();

    let mut last: [Option<usize>; KEYS] = [None; KEYS];
    for round in 0..ROUNDS {
        let key = round % KEYS;
        let (writer, reader) = if round % 2 == 0 { (&one, &two) } else { (&two, &one) };
        let wrote = if round % 9 == 8 {
            let answer = http.delete(url(&writer.base, key)).send().await.unwrap();
            assert!(answer.status().is_success(), "a delete answered {}", answer.status());
            None
        } else {
            let answer = http.put(url(&writer.base, key)).body(body(round)).send().await.unwrap();
            assert!(answer.status().is_success(), "a write answered {}", answer.status());
            Some(round)
        };
        last[key] = wrote;
        for (server, which) in [(reader, "the other replica"), (writer, "the writer")] {
            let answer = http.get(url(&server.base, key)).send().await.unwrap();
            let status = answer.status();
            let got = match status {
                StatusCode::NOT_FOUND => None,
                StatusCode::OK => Some(round_of(&answer.text().await.unwrap()).expect("a whole body")),
                other => panic!("a read answered {other}"),
            };
            assert_eq!(got, wrote, "round {round}: {which} answered round {got:?} of key {key} after round {wrote:?} was acknowledged");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap().unwrap();
    }
    let reads = reads.load(Ordering::Relaxed);
    println!("{ROUNDS} rounds of writes and deletes, {reads} reads beside them");
    assert!(reads >= ROUNDS as u64, "too few reads kept the files open ({reads})");
    assert!(last.iter().any(Option::is_some));
}

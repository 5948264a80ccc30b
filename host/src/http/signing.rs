//! Host-signed artifact URLs, for origins that cannot presign: `/v1/signed/{key}?expires=UNIX&sig=HEX`
//! where `sig` is HMAC-SHA256 over the key and the expiry.
//!
//! The secret is one for every replica and outlives the process: with `[cluster]` it is kept in
//! the log's database, otherwise in `url-secrets` under `[server] state_dir` (mode 0600); either
//! is made once, from the operating system's random source. `[server] url_secret` overrides both.
//! A rotation makes a new secret current; the one before keeps verifying the URLs it signed
//! until the longest of them expires ([`MAX_URL_LIFETIME`] after the rotation), then is dropped.
//! A replica learns of a rotation elsewhere when a signature fails to verify (at most one read
//! a second, shared by the requests waiting for it) and every [`REFRESH`]; a retired secret
//! verifies for [`GRACE`] longer, for the URLs a replica signed with it before it learnt.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use hmac::{Hmac, Mac};
use parking_lot::RwLock;
use sha2::Sha256;

use crate::cluster::Node;

type HmacSha256 = Hmac<Sha256>;

/// The longest a host-signed URL lives.
pub const MAX_URL_LIFETIME: u32 = 7 * 24 * 3600;

/// How often a server reads its secrets again, to sign with a secret rotated elsewhere.
pub const REFRESH: Duration = Duration::from_secs(10);

/// How long a retired secret verifies beyond the longest URL it may have signed: a replica
/// signs with it until it reads the secrets again (at most [`REFRESH`] after the rotation).
pub const GRACE: Duration = Duration::from_secs(REFRESH.as_secs() + 50);

/// How long a retired secret is kept, in seconds after its retirement.
pub fn retired_lifetime() -> Duration {
    Duration::from_secs(u64::from(MAX_URL_LIFETIME)) + GRACE
}

/// Bytes of a new secret.
const SECRET_BYTES: usize = 32;

/// A signing secret, and when it was retired (unix seconds) if it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    pub bytes: Vec<u8>,
    pub retired_at: Option<u64>,
}

impl Secret {
    /// A new secret from the operating system's random source.
    pub fn generate() -> Result<Secret> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("the operating system's random source: {e}"))?;
        Ok(Secret { bytes, retired_at: None })
    }

    /// Whether it may still verify a URL that expires at `expires`, at `now`: a retired secret
    /// verifies only URLs signed before it was retired.
    fn verifies(&self, expires: u64, now: u64) -> bool {
        let kept = retired_lifetime().as_secs();
        self.retired_at.is_none_or(|retired| expires <= retired + kept && now <= retired + kept)
    }
}

/// Where the secrets are kept.
#[derive(Clone)]
pub enum SecretStore {
    /// `[server] url_secret`: one secret, never rotated.
    Fixed,
    /// A file of this server's.
    File(PathBuf),
    /// The cluster log's database, shared by every replica.
    Cluster(Arc<Node>),
}

pub struct UrlSigner {
    /// The current secret first, then the retired ones still verifying.
    secrets: RwLock<Vec<Secret>>,
    store: SecretStore,
    /// Reads of the secrets after failed verifications: one at a time, shared by the requests
    /// waiting for it, at most one a second.
    refreshing: tokio::sync::Mutex<Option<std::time::Instant>>,
    /// Counts those reads, so that a request that waited for one does not start another.
    generation: AtomicU64,
}

impl UrlSigner {
    /// A signer with one fixed secret.
    pub fn new(secret: &[u8]) -> Self {
        Self::with(vec![Secret { bytes: secret.to_vec(), retired_at: None }], SecretStore::Fixed)
    }

    /// A signer whose secret lives as long as the process (what a server embedded in a test,
    /// or a bench, signs with).
    pub fn ephemeral() -> Result<Self> {
        Ok(Self::with(vec![Secret::generate()?], SecretStore::Fixed))
    }

    fn with(secrets: Vec<Secret>, store: SecretStore) -> Self {
        Self { secrets: RwLock::new(secrets), store, refreshing: tokio::sync::Mutex::new(None), generation: AtomicU64::new(0) }
    }

    /// Opens the secrets in `store`, making the first one if there is none.
    ///
    /// # Errors
    /// The file or the database cannot be read or written.
    pub async fn open(store: SecretStore) -> Result<Self> {
        let secrets = load(&store, Some(Change::Ensure)).await?;
        Ok(Self::with(secrets, store))
    }

    /// Makes a new secret current in the store; the one before keeps verifying what it signed.
    ///
    /// # Errors
    /// A fixed secret (`[server] url_secret`) cannot be rotated; the store cannot be written.
    pub async fn rotate(&self) -> Result<()> {
        if matches!(self.store, SecretStore::Fixed) {
            anyhow::bail!("the URL secret is [server] url_secret: change it in the manifest instead");
        }
        let secrets = load(&self.store, Some(Change::Rotate)).await?;
        *self.secrets.write() = secrets;
        Ok(())
    }

    /// Reads the secrets again from the store.
    pub async fn refresh(&self) -> Result<()> {
        if !matches!(self.store, SecretStore::Fixed) {
            *self.secrets.write() = load(&self.store, None).await?;
        }
        Ok(())
    }

    fn mac(secret: &[u8], key: &str, expires: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// Signs with the current secret.
    pub fn sign(&self, key: &str, expires: u64) -> String {
        let secrets = self.secrets.read();
        hex::encode(Self::mac(&secrets[0].bytes, key, expires).finalize().into_bytes())
    }

    /// Checks a signature in constant time against each secret that may still verify it, and
    /// the expiry against `now` (unix seconds).
    pub fn verify(&self, key: &str, expires: u64, sig: &str, now: u64) -> Result<(), &'static str> {
        let sig = hex::decode(sig).map_err(|_| "malformed signature")?;
        let secrets = self.secrets.read();
        let valid = secrets.iter().filter(|s| s.verifies(expires, now)).any(|s| Self::mac(&s.bytes, key, expires).verify_slice(&sig).is_ok());
        if !valid {
            return Err("bad signature");
        }
        if now >= expires {
            return Err("expired");
        }
        Ok(())
    }

    /// As [`verify`](Self::verify), reading the secrets again when the signature does not
    /// verify (it may be of a secret rotated on another replica since): requests share one read,
    /// and reads are at least a second apart (a request waits for the next one rather than being
    /// refused), so that bad signatures cannot drive the store.
    pub async fn verify_fresh(&self, key: &str, expires: u64, sig: &str, now: u64) -> Result<(), &'static str> {
        if matches!(self.store, SecretStore::Fixed) {
            return self.verify(key, expires, sig, now);
        }
        let seen = self.generation.load(Ordering::Acquire);
        match self.verify(key, expires, sig, now) {
            Err("bad signature") => {
                let mut last = self.refreshing.lock().await;
                if self.generation.load(Ordering::Acquire) == seen {
                    if let Some(wait) = last.map(|at| Duration::from_secs(1).saturating_sub(at.elapsed())) {
                        tokio::time::sleep(wait).await;
                    }
                    if let Err(e) = self.refresh().await {
                        tracing::warn!(error = %format!("{e:#}"), "reading the URL secrets again failed");
                    }
                    *last = Some(std::time::Instant::now());
                    self.generation.fetch_add(1, Ordering::AcqRel);
                }
                drop(last);
                self.verify(key, expires, sig, now)
            }
            result => result,
        }
    }
}

/// The secrets in `store`, current first; with `change`, a new current secret is made first:
/// in place of the current one (`Change::Rotate`), or where there is none (`Change::Ensure`).
async fn load(store: &SecretStore, change: Option<Change>) -> Result<Vec<Secret>> {
    match store {
        SecretStore::Fixed => anyhow::bail!("a fixed secret is neither loaded nor rotated"),
        SecretStore::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || match change {
                Some(change) => change_file(&path, change),
                None => read_file(&path),
            })
            .await?
        }
        SecretStore::Cluster(node) => {
            let fresh = change.map(|change| Ok::<_, anyhow::Error>((Secret::generate()?.bytes, change == Change::Rotate))).transpose()?;
            let rows = node.url_secrets(fresh, retired_lifetime()).await?;
            Ok(rows.into_iter().map(|(bytes, retired_at)| Secret { bytes, retired_at }).collect())
        }
    }
}

/// What a load changes in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Makes a current secret where there is none.
    Ensure,
    /// Retires the current secret for a new one.
    Rotate,
}

pub(crate) use crate::base::now_secs;

/// Keeps the secrets that may still verify a URL, current first.
fn live(mut secrets: Vec<Secret>, now: u64) -> Vec<Secret> {
    secrets.retain(|s| s.retired_at.is_none_or(|retired| now <= retired + retired_lifetime().as_secs()));
    secrets.sort_by_key(|s| std::cmp::Reverse(s.retired_at.unwrap_or(u64::MAX)));
    secrets
}

/// The file's lines: `<hex secret> <retired at, unix seconds; 0 for the current one>`.
fn parse_file(text: &str, path: &Path) -> Result<Vec<Secret>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (secret, retired) = line.trim().split_once(' ').with_context(|| format!("{}: malformed line {line:?}", path.display()))?;
            let bytes = hex::decode(secret).with_context(|| format!("{}: a secret is not hex", path.display()))?;
            let retired: u64 = retired.parse().with_context(|| format!("{}: a retirement time is not a number", path.display()))?;
            Ok(Secret { bytes, retired_at: (retired != 0).then_some(retired) })
        })
        .collect()
}

fn write_file(path: &Path, secrets: &[Secret]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().context("the secrets file has no directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let temp = dir.join(format!(".url-secrets.{}", std::process::id()));
    let text: String = secrets.iter().map(|s| format!("{} {}\n", hex::encode(&s.bytes), s.retired_at.unwrap_or(0))).collect();
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, path).with_context(|| format!("writing {}", path.display()))
}

/// The secrets in the file, current first; none when there is no file.
fn read_file(path: &Path) -> Result<Vec<Secret>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(live(parse_file(&text, path)?, now_secs())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Makes a new current secret in the file (see [`Change`]), one process at a time: under an
/// advisory lock of `<path>.lock`, which the system releases when its holder dies.
fn change_file(path: &Path, change: Change) -> Result<Vec<Secret>> {
    let lock_path = path.with_extension("lock");
    if let Some(dir) = lock_path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let lock = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&lock_path)?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    let secrets = read_file(path)?;
    let has_current = secrets.first().is_some_and(|s| s.retired_at.is_none());
    if change == Change::Ensure && has_current {
        return Ok(secrets);
    }
    let now = now_secs();
    let retired = secrets.into_iter().map(|s| Secret { retired_at: Some(s.retired_at.unwrap_or(now)), ..s });
    let secrets = live([Secret::generate()?].into_iter().chain(retired).collect(), now);
    write_file(path, &secrets)?;
    Ok(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_key_and_expiry() {
        let s = UrlSigner::new(b"secret");
        let sig = s.sign("a/b", 100);
        assert_eq!(s.verify("a/b", 100, &sig, 99), Ok(()));
        assert_eq!(s.verify("a/b", 100, &sig, 100), Err("expired"));
        assert_eq!(s.verify("a/c", 100, &sig, 99), Err("bad signature"));
        assert_eq!(s.verify("a/b", 101, &sig, 99), Err("bad signature"));
        assert_eq!(s.verify("a/b", 100, "zz", 99), Err("malformed signature"));
        assert_eq!(UrlSigner::new(b"other").verify("a/b", 100, &sig, 99), Err("bad signature"));
    }

    #[tokio::test]
    async fn a_file_secret_is_made_once_private_and_kept_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/url-secrets");
        let first = UrlSigner::open(SecretStore::File(path.clone())).await.unwrap();
        let sig = first.sign("k", 4_000_000_000);
        let again = UrlSigner::open(SecretStore::File(path.clone())).await.unwrap();
        assert_eq!(again.verify("k", 4_000_000_000, &sig, 1), Ok(()));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
    }

    #[tokio::test]
    async fn a_rotated_secret_verifies_what_it_signed_until_the_longest_url_expires() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("url-secrets");
        let signer = UrlSigner::open(SecretStore::File(path.clone())).await.unwrap();
        let now = now_secs();
        let old = signer.sign("k", now + 100);
        signer.rotate().await.unwrap();
        let new = signer.sign("k", now + 100);
        assert_ne!(old, new);
        assert_eq!(signer.verify("k", now + 100, &old, now), Ok(()), "a URL signed before the rotation");
        assert_eq!(signer.verify("k", now + 100, &new, now), Ok(()));
        // Another process sharing the file sees both.
        let other = UrlSigner::open(SecretStore::File(path.clone())).await.unwrap();
        assert_eq!(other.verify("k", now + 100, &old, now), Ok(()));
        // Past the longest lifetime after the rotation, the old secret verifies nothing, and the
        // file drops it at the next rotation.
        let later = now + retired_lifetime().as_secs() + 1;
        let retired = signer.secrets.read()[1].clone();
        assert!(retired.retired_at.is_some());
        let signed_late = UrlSigner::new(&retired.bytes).sign("k", later + 10);
        assert_eq!(signer.verify("k", later + 10, &signed_late, later), Err("bad signature"));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    /// A replica that has not yet read a rotation made elsewhere signs with the secret just
    /// retired: its longest URLs still verify everywhere, and it verifies the new secret's URLs
    /// even right after another signature failed, without being refused.
    #[tokio::test]
    async fn replicas_agree_across_a_rotation_made_on_one_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("url-secrets");
        let a = UrlSigner::open(SecretStore::File(path.clone())).await.unwrap();
        let b = UrlSigner::open(SecretStore::File(path.clone())).await.unwrap();
        // b reads the secrets (a signature failed) just before a rotates.
        let now = now_secs();
        assert_eq!(b.verify_fresh("other", now + 60, "00", now).await, Err("bad signature"));
        a.rotate().await.unwrap();
        // Seconds later, b still signs with the retired secret, for as long as it may.
        let later = now + 5;
        let longest = later + u64::from(MAX_URL_LIFETIME);
        let from_b = b.sign("k", longest);
        assert_eq!(a.verify_fresh("k", longest, &from_b, later).await, Ok(()), "a longest URL signed with the secret just retired");
        let from_a = a.sign("k", now + 60);
        assert_eq!(b.verify_fresh("k", now + 60, &from_a, now).await, Ok(()), "refused while its last read is under a second old");
        assert_eq!(b.sign("k", now + 60), from_a, "b signs with the new secret once it has read it");
    }
}

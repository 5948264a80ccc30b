//! Host-signed artifact URLs, for origins that cannot presign: `/v1/signed/{key}?expires=UNIX&sig=HEX`
//! where `sig` is HMAC-SHA256 over the key and the expiry.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct UrlSigner {
    secret: Vec<u8>,
}

impl UrlSigner {
    pub fn new(secret: &[u8]) -> Self {
        Self { secret: secret.to_vec() }
    }

    /// A signer with a random secret: its URLs are valid only for this process's life.
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let mut secret = Vec::with_capacity(32);
        for i in 0..4u64 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
            secret.extend_from_slice(&h.finish().to_le_bytes());
        }
        Self { secret }
    }

    fn mac(&self, key: &str, expires: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    pub fn sign(&self, key: &str, expires: u64) -> String {
        hex::encode(self.mac(key, expires).finalize().into_bytes())
    }

    /// Checks a signature in constant time, and the expiry against `now` (unix seconds).
    pub fn verify(&self, key: &str, expires: u64, sig: &str, now: u64) -> Result<(), &'static str> {
        let sig = hex::decode(sig).map_err(|_| "malformed signature")?;
        self.mac(key, expires).verify_slice(&sig).map_err(|_| "bad signature")?;
        if now >= expires {
            return Err("expired");
        }
        Ok(())
    }
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
}

//! Attestation challenges: single-use nonces.
//!
//! A nonce is 32 random bytes ‖ its expiry (8 bytes, big-endian
//! milliseconds) ‖ a 16-byte HMAC-SHA256 tag over both under the vault's
//! nonce key. Issuing one writes nothing: the tag proves the vault made it
//! and the expiry is authenticated. Using one is recorded durably in
//! [`Keyspace::Nonces`] by an `insert_new` (atomic on its key), the first
//! operation of the ordered batch that creates the attestation session
//! ([`crate::storage::Storage::commit_in_order`]): exactly one of two
//! concurrent uses wins and only the winner's session is written, and a
//! used nonce stays used across a restart or a crash (it is durable before
//! the session is acknowledged, and a crash keeps a prefix of the batch,
//! so never a session without its used nonce). Used-nonce keys are
//! `expiry ‖ random`, time-ordered, so the expiry worker prunes them once
//! they could no longer be accepted anyway.
//!
//! The nonce key is 32 random bytes kept barrier-encrypted in
//! [`Keyspace::System`], so nonces issued before a restart stay usable.

use ring::hmac;
use ring::rand::SecureRandom;

use crate::storage::Keyspace;

/// Random bytes in a nonce (256 bits).
pub const NONCE_RANDOM_LEN: usize = 32;
const EXPIRY_LEN: usize = 8;
const TAG_LEN: usize = 16;
/// Length of a whole nonce.
pub const NONCE_LEN: usize = NONCE_RANDOM_LEN + EXPIRY_LEN + TAG_LEN;
/// Where the nonce key lives in [`Keyspace::System`].
pub(crate) const NONCE_KEY_PATH: &[u8] = b"release/nonce-key";
/// The keyspace of used nonces.
pub(crate) const USED: Keyspace = Keyspace::Nonces;

/// Why a nonce was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Not hex, or not [`NONCE_LEN`] bytes.
    #[error("malformed nonce")]
    Malformed,
    /// The tag does not verify: this vault did not issue it.
    #[error("nonce was not issued by this vault")]
    Unknown,
    /// Its time to live has passed.
    #[error("nonce expired at {expired_at_ms} (now {now_ms})")]
    Expired {
        /// Its expiry, milliseconds since the Unix epoch.
        expired_at_ms: u64,
        /// The vault's time.
        now_ms: u64,
    },
    /// It was used before.
    #[error("nonce already used")]
    Used,
}

/// A nonce whose tag and expiry were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedNonce {
    bytes: [u8; NONCE_LEN],
    expires_at_ms: u64,
}

impl CheckedNonce {
    /// The nonce's bytes (what the quote's qualifying data covers).
    pub fn bytes(&self) -> &[u8; NONCE_LEN] {
        &self.bytes
    }

    /// Its expiry.
    pub fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }

    /// Its key in the used-nonce keyspace: expiry ‖ random part.
    pub fn used_key(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(EXPIRY_LEN + NONCE_RANDOM_LEN);
        key.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        key.extend_from_slice(self.bytes.get(..NONCE_RANDOM_LEN).unwrap_or_default());
        key
    }
}

fn tag(key: &hmac::Key, random: &[u8], expiry: &[u8]) -> [u8; TAG_LEN] {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(b"keyward-nonce-v1");
    ctx.update(random);
    ctx.update(expiry);
    let full = ctx.sign();
    let mut out = [0u8; TAG_LEN];
    for (o, b) in out.iter_mut().zip(full.as_ref()) {
        *o = *b;
    }
    out
}

/// Issues a nonce valid until `expires_at_ms`.
pub fn issue(
    key: &hmac::Key,
    rng: &dyn SecureRandom,
    expires_at_ms: u64,
) -> Result<[u8; NONCE_LEN], ring::error::Unspecified> {
    let mut random = [0u8; NONCE_RANDOM_LEN];
    rng.fill(&mut random)?;
    let expiry = expires_at_ms.to_be_bytes();
    let mut out = [0u8; NONCE_LEN];
    let tag = tag(key, &random, &expiry);
    for (slot, byte) in out
        .iter_mut()
        .zip(random.iter().chain(expiry.iter()).chain(tag.iter()))
    {
        *slot = *byte;
    }
    Ok(out)
}

/// Checks a nonce's form, tag and expiry (not whether it was used).
pub fn check(key: &hmac::Key, hex_text: &str, now_ms: u64) -> Result<CheckedNonce, NonceError> {
    if hex_text.len() != NONCE_LEN * 2 {
        return Err(NonceError::Malformed);
    }
    let decoded = hex::decode(hex_text).map_err(|_| NonceError::Malformed)?;
    let bytes =
        <[u8; NONCE_LEN]>::try_from(decoded.as_slice()).map_err(|_| NonceError::Malformed)?;
    let (random, rest) = bytes
        .split_first_chunk::<NONCE_RANDOM_LEN>()
        .ok_or(NonceError::Malformed)?;
    let (expiry, presented) = rest
        .split_first_chunk::<EXPIRY_LEN>()
        .ok_or(NonceError::Malformed)?;
    let expected = tag(key, random, expiry);
    if aws_lc_rs::constant_time::verify_slices_are_equal(&expected, presented).is_err() {
        return Err(NonceError::Unknown);
    }
    let expires_at_ms = u64::from_be_bytes(*expiry);
    if now_ms > expires_at_ms {
        return Err(NonceError::Expired {
            expired_at_ms: expires_at_ms,
            now_ms,
        });
    }
    Ok(CheckedNonce {
        bytes,
        expires_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    fn key() -> hmac::Key {
        hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).unwrap()
    }

    #[test]
    fn issued_nonces_check_until_they_expire() {
        let k = key();
        let nonce = issue(&k, &SystemRandom::new(), 10_000).unwrap();
        let text = hex::encode(nonce);
        let checked = check(&k, &text, 10_000).unwrap();
        assert_eq!(checked.bytes(), &nonce);
        assert_eq!(checked.expires_at_ms(), 10_000);
        assert_eq!(
            check(&k, &text, 10_001),
            Err(NonceError::Expired {
                expired_at_ms: 10_000,
                now_ms: 10_001
            })
        );
        // Another vault's key, or a changed expiry: not ours.
        assert_eq!(check(&key(), &text, 0), Err(NonceError::Unknown));
        let mut later = nonce;
        later[NONCE_RANDOM_LEN + EXPIRY_LEN - 1] ^= 1;
        assert_eq!(check(&k, &hex::encode(later), 0), Err(NonceError::Unknown));
        assert_eq!(check(&k, &text[2..], 0), Err(NonceError::Malformed));
        assert_eq!(
            check(&k, &"zz".repeat(NONCE_LEN), 0),
            Err(NonceError::Malformed)
        );
        // Two nonces differ; used keys are ordered by expiry.
        let other = check(
            &k,
            &hex::encode(issue(&k, &SystemRandom::new(), 20_000).unwrap()),
            0,
        )
        .unwrap();
        assert!(checked.used_key() < other.used_key());
    }
}

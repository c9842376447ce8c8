//! The workload instance key: how evidence is bound to it, and how a
//! session's requests prove possession of it.
//!
//! # What it does
//! - defines the instance key (Ed25519, 32-byte public key) and the hash the
//!   launcher records in the workload log ([`instance_key_sha256`]);
//! - computes the quote's qualifying data, SHA-256(nonce ‖ instance public
//!   key) ([`qualifying_data`]), so a quote answers one challenge for one
//!   instance;
//! - defines the instance key's signature over the nonce
//!   ([`nonce_message`], [`verify_nonce_signature`]);
//! - defines the proof of possession every session request carries
//!   ([`PopProof`]): a signature over method, path, a timestamp, a
//!   single-use id and the SHA-256 of the body and of the session token, in
//!   the spirit of RFC 9449 (DPoP). [`PopProof::verify`] checks it; the
//!   caller keeps the single-use ids it has seen.
//!
//! # Why Ed25519, verified with aws-lc-rs
//! Every session request verifies one proof, so the proof's verification
//! cost bounds the session release rate. Measured here (`cargo bench -p
//! keyward-attest --bench attest -- pop`), one verification with the key
//! parsed from raw bytes costs 30.4 µs in aws-lc-rs against 50.2 µs for
//! ECDSA P-256 (`ring`: 35.1 and 53.4 µs). A full attested release verifies
//! two (the nonce signature and one proof), and the release benchmark is
//! CPU-bound, so the verifications use aws-lc-rs, already this crate's
//! library for what `ring` lacks. Signing stays with the workload's library
//! (`ring` in `keyward-client`): the signatures are the same bytes.
//! Signatures are also deterministic (no nonce-reuse failure mode), and
//! keys and signatures are fixed-size (32 and 64 bytes), so parsing is
//! trivial. The instance key never lives in the TPM (it is the workload's),
//! so TPM algorithm support does not constrain the choice. The measured
//! figures are in `docs/benchmarks.md`.
//!
//! # What it does not do
//! No clock: the caller passes the current time. It does not remember
//! which proof ids it has seen; the vault does.

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};

/// Length of an instance public key (Ed25519).
pub const INSTANCE_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Domain separation of the nonce signature.
const NONCE_CONTEXT: &[u8] = b"keyward-instance-nonce-v1\0";
/// Domain separation of proofs of possession.
const POP_CONTEXT: &str = "keyward-pop-v1";
/// Length of a proof id, in bytes (hex in the header).
pub const POP_ID_LEN: usize = 16;
/// Longest proof header accepted.
pub const MAX_POP_LEN: usize = 256;

/// SHA-256 of `bytes`.
fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// The hash of an instance public key, as the launch record carries it.
pub fn instance_key_sha256(public_key: &[u8; INSTANCE_KEY_LEN]) -> [u8; 32] {
    sha256(&[public_key])
}

/// The qualifying data a quote for `nonce` and this instance must carry:
/// SHA-256(nonce ‖ instance public key).
pub fn qualifying_data(nonce: &[u8], public_key: &[u8; INSTANCE_KEY_LEN]) -> [u8; 32] {
    sha256(&[nonce, public_key])
}

/// The message the instance key signs to show it answers `nonce`.
pub fn nonce_message(nonce: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(NONCE_CONTEXT.len().saturating_add(nonce.len()));
    message.extend_from_slice(NONCE_CONTEXT);
    message.extend_from_slice(nonce);
    message
}

/// Why an instance-key check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstanceKeyError {
    /// The public key is not 32 bytes.
    #[error("instance key is {len} bytes; an Ed25519 key is 32")]
    KeyLength {
        /// Its length.
        len: usize,
    },
    /// The signature over the nonce does not verify.
    #[error("the instance key's signature over the nonce does not verify")]
    NonceSignature,
}

/// Parses an instance public key.
pub fn parse_instance_key(bytes: &[u8]) -> Result<[u8; INSTANCE_KEY_LEN], InstanceKeyError> {
    <[u8; INSTANCE_KEY_LEN]>::try_from(bytes)
        .map_err(|_| InstanceKeyError::KeyLength { len: bytes.len() })
}

/// Verifies the instance key's signature over `nonce`.
pub fn verify_nonce_signature(
    public_key: &[u8; INSTANCE_KEY_LEN],
    nonce: &[u8],
    signature: &[u8],
) -> Result<(), InstanceKeyError> {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(&nonce_message(nonce), signature)
        .map_err(|_| InstanceKeyError::NonceSignature)
}

/// Why a proof of possession was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PopError {
    /// No proof header.
    #[error("no proof of possession")]
    Missing,
    /// The header is not `v1.<time ms>.<id hex>.<signature base64url>`.
    #[error("malformed proof of possession: {what}")]
    Malformed {
        /// The part that failed.
        what: &'static str,
    },
    /// The proof's time is further from the vault's clock than allowed.
    #[error("proof time {time_ms} is outside ±{window_ms} ms of {now_ms}")]
    Stale {
        /// The proof's time.
        time_ms: u64,
        /// The vault's time.
        now_ms: u64,
        /// The window.
        window_ms: u64,
    },
    /// The signature does not verify with the session's instance key.
    #[error("proof signature does not verify with the session's instance key")]
    BadSignature,
}

/// A parsed proof of possession (not yet verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopProof {
    time_ms: u64,
    id: [u8; POP_ID_LEN],
    signature: [u8; SIGNATURE_LEN],
}

/// What a proof covers, besides its own time and id.
#[derive(Debug, Clone, Copy)]
pub struct PopRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// Request path (no query).
    pub path: &'a str,
    /// The request body.
    pub body: &'a [u8],
    /// The session token presented with it.
    pub token: &'a [u8],
}

fn message(request: &PopRequest<'_>, time_ms: u64, id: &[u8; POP_ID_LEN]) -> Vec<u8> {
    let body = sha256(&[request.body]);
    let token = sha256(&[request.token]);
    format!(
        "{POP_CONTEXT}\n{}\n{}\n{time_ms}\n{}\n{}\n{}",
        request.method,
        request.path,
        hex_lower(id),
        hex_lower(&body),
        hex_lower(&token)
    )
    .into_bytes()
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            if let Some(&d) = DIGITS.get(usize::from(nibble)) {
                out.push(char::from(d));
            }
        }
    }
    out
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != N.checked_mul(2)? {
        return None;
    }
    let mut out = [0u8; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let [hi, lo] = pair else { return None };
        *slot = (digit(*hi)? << 4) | digit(*lo)?;
    }
    Some(out)
}

impl PopProof {
    /// Makes a proof (the client side): signs `request` at `time_ms` with a
    /// fresh `id`.
    pub fn sign(
        key: &ring::signature::Ed25519KeyPair,
        request: &PopRequest<'_>,
        time_ms: u64,
        id: [u8; POP_ID_LEN],
    ) -> String {
        let signature = key.sign(&message(request, time_ms, &id));
        let encoded = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            signature.as_ref(),
        );
        format!("v1.{time_ms}.{}.{encoded}", hex_lower(&id))
    }

    /// Parses the header value `v1.<time ms>.<32 hex id>.<base64url signature>`.
    pub fn parse(header: &str) -> Result<Self, PopError> {
        if header.len() > MAX_POP_LEN {
            return Err(PopError::Malformed { what: "length" });
        }
        let mut parts = header.split('.');
        if parts.next() != Some("v1") {
            return Err(PopError::Malformed { what: "version" });
        }
        let time_ms = parts
            .next()
            .filter(|t| !t.is_empty() && t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or(PopError::Malformed { what: "time" })?;
        let id = parts
            .next()
            .and_then(unhex::<POP_ID_LEN>)
            .ok_or(PopError::Malformed { what: "id" })?;
        let signature = parts
            .next()
            .and_then(|s| {
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).ok()
            })
            .and_then(|s| <[u8; SIGNATURE_LEN]>::try_from(s.as_slice()).ok())
            .ok_or(PopError::Malformed { what: "signature" })?;
        if parts.next().is_some() {
            return Err(PopError::Malformed {
                what: "trailing part",
            });
        }
        Ok(Self {
            time_ms,
            id,
            signature,
        })
    }

    /// The proof's time, milliseconds since the Unix epoch.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The proof's single-use id.
    pub fn id(&self) -> &[u8; POP_ID_LEN] {
        &self.id
    }

    /// Checks the time window and the signature. The caller must then
    /// refuse an id it has seen within the window.
    pub fn verify(
        &self,
        public_key: &[u8; INSTANCE_KEY_LEN],
        request: &PopRequest<'_>,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<(), PopError> {
        if self.time_ms.abs_diff(now_ms) > window_ms {
            return Err(PopError::Stale {
                time_ms: self.time_ms,
                now_ms,
                window_ms,
            });
        }
        UnparsedPublicKey::new(&ED25519, public_key)
            .verify(&message(request, self.time_ms, &self.id), &self.signature)
            .map_err(|_| PopError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn public(key: &Ed25519KeyPair) -> [u8; 32] {
        parse_instance_key(key.public_key().as_ref()).unwrap()
    }

    const REQ: PopRequest<'static> = PopRequest {
        method: "POST",
        path: "/v1/secrets/kv/app",
        body: b"{}",
        token: b"kws.token",
    };

    #[test]
    fn a_proof_verifies_and_every_covered_field_matters() {
        let k = key();
        let header = PopProof::sign(&k, &REQ, 1_000_000, [7; 16]);
        let proof = PopProof::parse(&header).unwrap();
        assert_eq!(proof.id(), &[7; 16]);
        proof.verify(&public(&k), &REQ, 1_000_500, 30_000).unwrap();
        let changed = [
            PopRequest {
                method: "GET",
                ..REQ
            },
            PopRequest {
                path: "/v1/secrets/kv/other",
                ..REQ
            },
            PopRequest {
                body: b"{ }",
                ..REQ
            },
            PopRequest {
                token: b"kws.other",
                ..REQ
            },
        ];
        for request in changed {
            assert_eq!(
                proof.verify(&public(&k), &request, 1_000_000, 30_000),
                Err(PopError::BadSignature)
            );
        }
        assert_eq!(
            proof.verify(&public(&key()), &REQ, 1_000_000, 30_000),
            Err(PopError::BadSignature)
        );
    }

    #[test]
    fn time_and_id_are_signed() {
        let k = key();
        let header = PopProof::sign(&k, &REQ, 1_000_000, [7; 16]);
        let moved = header.replacen("1000000", "1000001", 1);
        assert_eq!(
            PopProof::parse(&moved)
                .unwrap()
                .verify(&public(&k), &REQ, 1_000_000, 30_000),
            Err(PopError::BadSignature)
        );
        let other_id = header.replacen(&"07".repeat(16), &"08".repeat(16), 1);
        assert_eq!(
            PopProof::parse(&other_id)
                .unwrap()
                .verify(&public(&k), &REQ, 1_000_000, 30_000),
            Err(PopError::BadSignature)
        );
    }

    #[test]
    fn stale_proofs_are_refused_both_ways() {
        let k = key();
        let proof = PopProof::parse(&PopProof::sign(&k, &REQ, 100_000, [1; 16])).unwrap();
        assert_eq!(
            proof.verify(&public(&k), &REQ, 130_001, 30_000),
            Err(PopError::Stale {
                time_ms: 100_000,
                now_ms: 130_001,
                window_ms: 30_000
            })
        );
        assert!(matches!(
            proof.verify(&public(&k), &REQ, 69_999, 30_000),
            Err(PopError::Stale { .. })
        ));
        proof.verify(&public(&k), &REQ, 130_000, 30_000).unwrap();
    }

    #[test]
    fn malformed_headers_are_typed_and_never_panic() {
        let k = key();
        let good = PopProof::sign(&k, &REQ, 5, [9; 16]);
        for (header, what) in [
            ("v2.5.00.AA", "version"),
            ("v1.x.00.AA", "time"),
            ("v1..00.AA", "time"),
            ("v1.99999999999999999999.00.AA", "time"),
            ("v1.5.0g.AA", "id"),
            ("v1.5.0909.AA", "id"),
        ] {
            assert_eq!(PopProof::parse(header), Err(PopError::Malformed { what }));
        }
        assert_eq!(
            PopProof::parse(&format!("{good}.x")),
            Err(PopError::Malformed {
                what: "trailing part"
            })
        );
        assert_eq!(
            PopProof::parse(&"v".repeat(MAX_POP_LEN + 1)),
            Err(PopError::Malformed { what: "length" })
        );
        for end in 0..good.len() {
            let _ = PopProof::parse(good.get(..end).unwrap());
        }
    }

    #[test]
    fn nonce_signature_and_qualifying_data() {
        let k = key();
        let nonce = [3u8; 56];
        let sig = k.sign(&nonce_message(&nonce));
        verify_nonce_signature(&public(&k), &nonce, sig.as_ref()).unwrap();
        assert_eq!(
            verify_nonce_signature(&public(&k), &[4u8; 56], sig.as_ref()),
            Err(InstanceKeyError::NonceSignature)
        );
        // A signature over the bare nonce (no domain separation) is refused.
        let bare = k.sign(&nonce);
        assert_eq!(
            verify_nonce_signature(&public(&k), &nonce, bare.as_ref()),
            Err(InstanceKeyError::NonceSignature)
        );
        assert_eq!(
            parse_instance_key(&[0; 31]),
            Err(InstanceKeyError::KeyLength { len: 31 })
        );
        let q = qualifying_data(&nonce, &public(&k));
        let mut concat = nonce.to_vec();
        concat.extend_from_slice(&public(&k));
        assert_eq!(
            q.as_slice(),
            ring::digest::digest(&ring::digest::SHA256, &concat).as_ref()
        );
        assert_ne!(q, qualifying_data(&nonce, &public(&key())));
    }
}

//! Workload identity tokens (ES256 JWT), OIDC discovery and JWKS.
//!
//! # What this module does
//!
//! It signs short-lived JSON Web Tokens ([RFC 7519]) about an attested
//! workload with ES256 (ECDSA P-256 / SHA-256, [RFC 7518] §3.4), and
//! produces what a relying party needs to verify them without a shared
//! secret: the JSON Web Key Set ([RFC 7517]) and an OpenID Connect discovery
//! document. Cloud STS services (workload identity federation) and any other
//! service can then trust the vault as an OIDC issuer.
//!
//! # What it does not do
//!
//! - No I/O and no clock: the caller passes `now` (seconds since the Unix
//!   epoch) and an RNG, stores the serialized [`KeySet`] sealed by the
//!   barrier, and serves the JSON at the HTTP layer.
//! - No authorization: the release path decides whether a workload gets a
//!   token; this module only checks that the claims it is handed are
//!   well-formed and bounded.
//! - No token verification: tokens are for other parties to verify (the
//!   tests do it independently, and `tests/tests/identity_peer.rs` with
//!   Python's `cryptography`).
//!
//! # Token format
//!
//! Header `{"alg":"ES256","typ":"JWT","kid":…}`. Claims:
//!
//! | claim | value |
//! |---|---|
//! | `iss` | [`IdentitySettings::issuer`] |
//! | `sub` | the workload URI, see below |
//! | `aud` | the requested audience (one string, 1..=256 bytes, no control characters) |
//! | `iat`, `nbf` | `now` |
//! | `exp` | `now + ttl`; ttl defaults to `default_ttl_secs` clamped to `max_ttl_secs`; a requested ttl of 0 or above `max_ttl_secs` is refused |
//! | `jti` | 128 random bits, lowercase hex |
//! | `keyward` | `{host_id, host_labels, image_digest, image_reference, model_name, model_digest, instance_id, on_behalf_of?}` |
//!
//! # Subject
//!
//! `keyward://<trust-domain>/host/<host-id>/image/<image-digest>`, e.g.
//! `keyward://prod.example/host/h-01/image/sha256:4f…`. The trust domain is
//! a lowercase DNS name (labels of `a-z 0-9 -`, 1..=63 bytes, no leading or
//! trailing hyphen, 253 bytes at most), as SPIFFE requires of its trust
//! domains. The host id and image digest are percent-encoded as path
//! segments ([RFC 3986] §3.3: anything but unreserved characters and `:`),
//! so the subject is unambiguous even for values [`WorkloadClaims::validate`]
//! would refuse; validated values never need encoding. The subject names the
//! workload *kind* (where it runs, what it runs), not the instance: the
//! instance and model are in the `keyward` claim.
//!
//! # Keys and rotation
//!
//! A [`KeySet`] holds one active signing key and up to
//! [`MAX_RETIRING_KEYS`] retiring public keys. The key id (`kid`) is the
//! [RFC 7638] JWK thumbprint of the public key (SHA-256, base64url), so any
//! verifier can recompute it and it is never stored. On
//! [`KeySet::rotate`] the old private key is dropped (and wiped) at once: a
//! retiring key is only needed to *verify* tokens it already signed, so only
//! its public key is kept, published until `rotation time + max_ttl_secs`
//! (when the last token it could have signed expires); then
//! [`KeySet::prune`] drops it.
//!
//! # Why hand-written
//!
//! JWT crates (`jsonwebtoken`, `josekit`) are not workspace dependencies and
//! would bring verification paths, algorithm negotiation and key formats we
//! do not use. Signing one fixed algorithm is a few lines over `ring`,
//! which the workspace already trusts. The key-set encoding is a small
//! versioned binary format (no `Serialize` on secret-bearing types); the
//! issuer check is a minimal URL check because the `url` crate is not a
//! direct dependency and only a narrow shape is acceptable anyway.
//!
//! # Stored key sets
//!
//! [`KeySet::from_bytes`] is bounded and strict (caps, no trailing bytes,
//! duplicate keys refused, every public key checked to be on P-256 with
//! aws-lc-rs, since ring cannot check a bare point). The private key is
//! checked by ring when loaded, which needs an RNG: at [`KeySet::sign`] or
//! [`KeySet::check_private_key`]. Timestamps carry no redundancy, so
//! integrity of the stored bytes is the barrier's job (AES-GCM), not this
//! parser's.
//!
//! # Clock skew
//!
//! `nbf = iat = now`, as Vault and cloud STS issuers do; relying parties
//! apply their own leeway.
//!
//! [RFC 7519]: https://www.rfc-editor.org/rfc/rfc7519
//! [RFC 7518]: https://www.rfc-editor.org/rfc/rfc7518
//! [RFC 7517]: https://www.rfc-editor.org/rfc/rfc7517
//! [RFC 7638]: https://www.rfc-editor.org/rfc/rfc7638
//! [RFC 3986]: https://www.rfc-editor.org/rfc/rfc3986

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};
use zeroize::Zeroizing;

/// The JWS algorithm of every token and key (`alg`).
pub const ALGORITHM: &str = "ES256";
/// Path of the OIDC discovery document below the issuer (OpenID Connect
/// Discovery 1.0 §4: `issuer + "/.well-known/openid-configuration"`).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Path of the JWKS below the issuer. OIDC leaves `jwks_uri` free; this is
/// the common choice, and it keeps both documents under one prefix.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Claims a token carries (`claims_supported` of the discovery document).
pub const CLAIMS: [&str; 8] = ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "keyward"];

/// Longest accepted audience, in bytes.
pub const MAX_AUDIENCE_LEN: usize = 256;
/// Longest accepted issuer URL, in bytes.
pub const MAX_ISSUER_LEN: usize = 512;
/// Longest trust domain (a DNS name), in bytes.
pub const MAX_TRUST_DOMAIN_LEN: usize = 253;
/// Longest host id, in bytes.
pub const MAX_HOST_ID_LEN: usize = 128;
/// Longest instance id (as `keyward_attest::cel` allows), in bytes.
pub const MAX_INSTANCE_ID_LEN: usize = 128;
/// Longest image reference (as `keyward_attest::cel` allows), in bytes.
pub const MAX_IMAGE_REFERENCE_LEN: usize = 1024;
/// Longest model name (as `keyward_attest::cel` allows), in bytes.
pub const MAX_MODEL_NAME_LEN: usize = 256;
/// Longest on-behalf-of user, in bytes.
pub const MAX_ON_BEHALF_OF_LEN: usize = 256;
/// Most host labels carried in a token.
pub const MAX_HOST_LABELS: usize = 64;
/// Longest host label key, in bytes.
pub const MAX_LABEL_KEY_LEN: usize = 128;
/// Longest host label value, in bytes.
pub const MAX_LABEL_VALUE_LEN: usize = 256;
/// Most retiring (verification-only) keys a key set holds.
pub const MAX_RETIRING_KEYS: usize = 15;

/// Leading bytes of a serialized key set.
const KEY_SET_MAGIC: &[u8; 4] = b"KWID";
/// Current key-set encoding.
const KEY_SET_VERSION: u8 = 1;
/// ring's P-256 PKCS#8 documents are 138 bytes; leave room, refuse nonsense.
const MAX_PKCS8_LEN: usize = 256;
/// SEC 1 uncompressed point: 0x04 ‖ x ‖ y.
const PUBLIC_KEY_LEN: usize = 65;
/// magic, version, active created_at, pkcs8 length, retiring count.
const KEY_SET_FIXED_LEN: usize = 4 + 1 + 8 + 2 + PUBLIC_KEY_LEN + 1;
/// created_at, retire_at, public key.
const RETIRING_KEY_LEN: usize = 8 + 8 + PUBLIC_KEY_LEN;
/// Longest serialized key set [`KeySet::from_bytes`] reads.
pub const MAX_KEY_SET_LEN: usize =
    KEY_SET_FIXED_LEN + MAX_PKCS8_LEN + MAX_RETIRING_KEYS * RETIRING_KEY_LEN;

/// Errors of the identity engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The requested audience is unusable.
    #[error("invalid audience: {0}")]
    InvalidAudience(TextProblem),
    /// The requested ttl is 0 or above the maximum.
    #[error("invalid ttl {requested}s (must be 1..={max})")]
    InvalidTtl {
        /// What was asked for.
        requested: u64,
        /// `max_ttl_secs` of the settings.
        max: u64,
    },
    /// A workload claim is unusable.
    #[error("invalid claim {claim:?}: {problem}")]
    InvalidClaim {
        /// Which claim.
        claim: Claim,
        /// What is wrong with it.
        problem: TextProblem,
    },
    /// More host labels than [`MAX_HOST_LABELS`].
    #[error("{count} host labels (at most {max})")]
    TooManyHostLabels {
        /// Labels presented.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// The engine settings are unusable.
    #[error("invalid identity settings: {0}")]
    InvalidSettings(SettingsProblem),
    /// `now` plus a duration does not fit in a `u64`.
    #[error("time out of range")]
    TimeOverflow,
    /// Rotating would keep more than [`MAX_RETIRING_KEYS`] retiring keys.
    #[error("too many retiring keys (at most {max}); prune first or rotate less often")]
    TooManyKeys {
        /// The cap.
        max: usize,
    },
    /// A stored key set does not parse or is inconsistent.
    #[error("malformed key set: {0}")]
    MalformedKeySet(KeySetProblem),
    /// Key generation or signing failed (opaque, as ring reports it).
    #[error("cryptographic operation failed")]
    Crypto,
    /// The random number generator failed.
    #[error("random number generator failed")]
    Random,
}

/// What is wrong with a text value (audience or claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextProblem {
    /// Empty.
    #[error("empty")]
    Empty,
    /// Longer than `max` bytes.
    #[error("longer than {max} bytes")]
    TooLong {
        /// The cap, in bytes.
        max: usize,
    },
    /// Contains a control character.
    #[error("contains a control character")]
    ControlCharacter,
    /// Not of the required shape (digest, host id).
    #[error("malformed")]
    Syntax,
}

/// The workload claim an [`IdentityError::InvalidClaim`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// [`WorkloadClaims::host_id`].
    HostId,
    /// A key of [`WorkloadClaims::host_labels`].
    HostLabelKey,
    /// A value of [`WorkloadClaims::host_labels`].
    HostLabelValue,
    /// [`WorkloadClaims::image_digest`].
    ImageDigest,
    /// [`WorkloadClaims::image_reference`].
    ImageReference,
    /// [`WorkloadClaims::model_name`].
    ModelName,
    /// [`WorkloadClaims::model_digest`].
    ModelDigest,
    /// [`WorkloadClaims::instance_id`].
    InstanceId,
    /// [`WorkloadClaims::on_behalf_of`].
    OnBehalfOf,
}

/// What is wrong with [`IdentitySettings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsProblem {
    /// The issuer is longer than [`MAX_ISSUER_LEN`].
    #[error("issuer longer than {MAX_ISSUER_LEN} bytes")]
    IssuerTooLong,
    /// The issuer is neither `https://…` nor `http://` on a loopback host.
    #[error("issuer must be https (http only on loopback)")]
    IssuerScheme,
    /// The issuer has no host, or a malformed port.
    #[error("issuer has no usable host")]
    IssuerHost,
    /// The issuer has user info, a query, a fragment, a trailing slash, or a
    /// character outside printable ASCII (OIDC Discovery §3 and §4.1).
    #[error("issuer has user info, query, fragment, trailing slash or bad characters")]
    IssuerSyntax,
    /// The trust domain is not a lowercase DNS name.
    #[error("trust domain is not a lowercase DNS name")]
    TrustDomain,
    /// `default_ttl_secs` or `max_ttl_secs` is 0.
    #[error("ttl must be positive")]
    ZeroTtl,
    /// `rotation_period_secs` is 0.
    #[error("rotation period must be positive")]
    ZeroRotationPeriod,
}

/// Why a serialized key set was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeySetProblem {
    /// Longer than [`MAX_KEY_SET_LEN`].
    #[error("longer than {MAX_KEY_SET_LEN} bytes")]
    TooLong,
    /// Ends inside a field.
    #[error("truncated")]
    Truncated,
    /// Does not start with the key-set magic.
    #[error("not a key set")]
    BadMagic,
    /// An encoding version this build does not read.
    #[error("unsupported version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The private key length is 0 or above the cap.
    #[error("private key length out of range")]
    PrivateKeyLength,
    /// A public key is not an uncompressed P-256 point on the curve.
    #[error("public key is not an uncompressed P-256 point")]
    PublicKey,
    /// The active public key is not the one in its PKCS#8 document.
    #[error("public key does not match the private key")]
    KeyMismatch,
    /// ring refused the private key (checked when signing).
    #[error("private key rejected")]
    PrivateKey,
    /// More retiring keys than [`MAX_RETIRING_KEYS`].
    #[error("too many retiring keys")]
    TooManyKeys,
    /// A retiring key retires before it was created.
    #[error("retire time before creation time")]
    RetireTime,
    /// The same key appears twice.
    #[error("duplicate key")]
    DuplicateKey,
    /// Bytes after the last key.
    #[error("trailing bytes")]
    TrailingBytes,
}

/// Configuration of the identity engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    /// The `iss` of every token and the base of discovery, e.g.
    /// `https://vault.example:8200/v1/identity` (no trailing slash).
    pub issuer: String,
    /// The authority part of every subject (a lowercase DNS name).
    pub trust_domain: String,
    /// Token lifetime when none is requested (clamped to `max_ttl_secs`).
    pub default_ttl_secs: u64,
    /// Longest token lifetime; also how long a rotated-out key stays published.
    pub max_ttl_secs: u64,
    /// Age at which [`KeySet::needs_rotation`] says the active key is due.
    pub rotation_period_secs: u64,
}

impl IdentitySettings {
    /// Checks the issuer, trust domain and durations. [`KeySet::sign`] and
    /// [`KeySet::rotate`] call it; callers should at configuration time.
    pub fn validate(&self) -> Result<(), IdentityError> {
        check_issuer(&self.issuer).map_err(IdentityError::InvalidSettings)?;
        if !is_trust_domain(&self.trust_domain) {
            return Err(IdentityError::InvalidSettings(SettingsProblem::TrustDomain));
        }
        if self.default_ttl_secs == 0 || self.max_ttl_secs == 0 {
            return Err(IdentityError::InvalidSettings(SettingsProblem::ZeroTtl));
        }
        if self.rotation_period_secs == 0 {
            return Err(IdentityError::InvalidSettings(
                SettingsProblem::ZeroRotationPeriod,
            ));
        }
        Ok(())
    }

    /// The lifetime of a token: the request, or the default clamped to the
    /// maximum.
    fn ttl(&self, requested: Option<u64>) -> Result<u64, IdentityError> {
        match requested {
            None => Ok(self.default_ttl_secs.min(self.max_ttl_secs)),
            Some(ttl) if ttl == 0 || ttl > self.max_ttl_secs => Err(IdentityError::InvalidTtl {
                requested: ttl,
                max: self.max_ttl_secs,
            }),
            Some(ttl) => Ok(ttl),
        }
    }
}

/// OIDC Discovery §3/§4.1: the issuer is an https URL with no query or
/// fragment; discovery appends a path to it, so no trailing slash either.
/// Plain http is accepted only on loopback (dev mode).
fn check_issuer(issuer: &str) -> Result<(), SettingsProblem> {
    if issuer.len() > MAX_ISSUER_LEN {
        return Err(SettingsProblem::IssuerTooLong);
    }
    let (rest, loopback_only) = if let Some(rest) = issuer.strip_prefix("https://") {
        (rest, false)
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        (rest, true)
    } else {
        return Err(SettingsProblem::IssuerScheme);
    };
    if !rest.bytes().all(|b| b.is_ascii_graphic())
        || rest.contains(['?', '#', '@', '\\'])
        || rest.ends_with('/')
    {
        return Err(SettingsProblem::IssuerSyntax);
    }
    let authority = rest.split('/').next().unwrap_or_default();
    // `host[:port]`, the host possibly an IPv6 literal in brackets.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.starts_with('[') || host.ends_with(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let port_ok = port.is_none_or(|digits| {
        (1..=5).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    });
    let host_ok = if host.starts_with('[') {
        host.len() > 2 && host.ends_with(']')
    } else {
        !host.is_empty() && !host.contains([':', '[', ']'])
    };
    if !port_ok || !host_ok {
        return Err(SettingsProblem::IssuerHost);
    }
    if loopback_only && !["localhost", "127.0.0.1", "[::1]"].contains(&host) {
        return Err(SettingsProblem::IssuerScheme);
    }
    Ok(())
}

/// A lowercase DNS name: labels of `a-z 0-9 -`, 1..=63 bytes, no hyphen at
/// either end; 253 bytes at most.
fn is_trust_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= MAX_TRUST_DOMAIN_LEN
        && domain.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// What a token says about the workload, taken from its attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadClaims {
    /// The enrolled host (`A-Z a-z 0-9 . _ -`, not `.` or `..`).
    pub host_id: String,
    /// The host's labels.
    pub host_labels: BTreeMap<String, String>,
    /// The image digest, `sha256:<64 lowercase hex>`.
    pub image_digest: String,
    /// The image reference of the launch record.
    pub image_reference: String,
    /// The model name of the launch record.
    pub model_name: String,
    /// The model version digest, `sha256:<64 lowercase hex>`.
    pub model_digest: String,
    /// The workload instance id.
    pub instance_id: String,
    /// The user the workload acts for, if any.
    pub on_behalf_of: Option<String>,
}

impl WorkloadClaims {
    /// Checks every claim is non-empty, bounded, free of control characters
    /// and, for the host id and digests, of the required shape.
    pub fn validate(&self) -> Result<(), IdentityError> {
        let invalid = |claim, problem| IdentityError::InvalidClaim { claim, problem };
        check_text(&self.host_id, MAX_HOST_ID_LEN).map_err(|p| invalid(Claim::HostId, p))?;
        if self.host_id == "."
            || self.host_id == ".."
            || !self
                .host_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(invalid(Claim::HostId, TextProblem::Syntax));
        }
        if self.host_labels.len() > MAX_HOST_LABELS {
            return Err(IdentityError::TooManyHostLabels {
                count: self.host_labels.len(),
                max: MAX_HOST_LABELS,
            });
        }
        for (key, value) in &self.host_labels {
            check_text(key, MAX_LABEL_KEY_LEN).map_err(|p| invalid(Claim::HostLabelKey, p))?;
            check_text(value, MAX_LABEL_VALUE_LEN)
                .map_err(|p| invalid(Claim::HostLabelValue, p))?;
        }
        check_digest(&self.image_digest).map_err(|p| invalid(Claim::ImageDigest, p))?;
        check_text(&self.image_reference, MAX_IMAGE_REFERENCE_LEN)
            .map_err(|p| invalid(Claim::ImageReference, p))?;
        check_text(&self.model_name, MAX_MODEL_NAME_LEN)
            .map_err(|p| invalid(Claim::ModelName, p))?;
        check_digest(&self.model_digest).map_err(|p| invalid(Claim::ModelDigest, p))?;
        check_text(&self.instance_id, MAX_INSTANCE_ID_LEN)
            .map_err(|p| invalid(Claim::InstanceId, p))?;
        if let Some(user) = &self.on_behalf_of {
            check_text(user, MAX_ON_BEHALF_OF_LEN).map_err(|p| invalid(Claim::OnBehalfOf, p))?;
        }
        Ok(())
    }

    /// The `keyward` claim object.
    fn to_json(&self) -> Value {
        let mut object = json!({
            "host_id": self.host_id,
            "host_labels": self.host_labels,
            "image_digest": self.image_digest,
            "image_reference": self.image_reference,
            "model_name": self.model_name,
            "model_digest": self.model_digest,
            "instance_id": self.instance_id,
        });
        if let (Some(user), Some(map)) = (&self.on_behalf_of, object.as_object_mut()) {
            map.insert("on_behalf_of".to_owned(), Value::from(user.as_str()));
        }
        object
    }
}

fn check_text(text: &str, max: usize) -> Result<(), TextProblem> {
    if text.is_empty() {
        Err(TextProblem::Empty)
    } else if text.len() > max {
        Err(TextProblem::TooLong { max })
    } else if text.chars().any(char::is_control) {
        Err(TextProblem::ControlCharacter)
    } else {
        Ok(())
    }
}

/// `sha256:` and 64 lowercase hex digits.
fn check_digest(text: &str) -> Result<(), TextProblem> {
    if text.is_empty() {
        return Err(TextProblem::Empty);
    }
    let ok = text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok { Ok(()) } else { Err(TextProblem::Syntax) }
}

/// The workload URI: `keyward://<trust-domain>/host/<host-id>/image/<image-digest>`,
/// with the host id and digest percent-encoded as path segments (a no-op for
/// validated claims; see the module docs).
pub fn subject(trust_domain: &str, claims: &WorkloadClaims) -> String {
    let mut out = String::with_capacity(
        trust_domain
            .len()
            .saturating_add(claims.host_id.len())
            .saturating_add(claims.image_digest.len())
            .saturating_add(24),
    );
    out.push_str("keyward://");
    out.push_str(trust_domain);
    out.push_str("/host/");
    push_path_segment(&mut out, &claims.host_id);
    out.push_str("/image/");
    push_path_segment(&mut out, &claims.image_digest);
    out
}

/// RFC 3986 §2.3/§3.3: unreserved characters and `:` stay; every other byte
/// is `%XX`.
fn push_path_segment(out: &mut String, segment: &str) {
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// `issuer + JWKS_PATH`.
pub fn jwks_uri(settings: &IdentitySettings) -> String {
    format!("{}{JWKS_PATH}", settings.issuer)
}

/// The OpenID Connect discovery document, served at
/// `issuer + DISCOVERY_PATH`. The JWKS is at [`jwks_uri`]. Settings are
/// taken as given: check them with [`IdentitySettings::validate`].
pub fn discovery_document(settings: &IdentitySettings) -> Value {
    json!({
        "issuer": settings.issuer,
        "jwks_uri": jwks_uri(settings),
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "claims_supported": CLAIMS,
    })
}

/// A P-256 public key (affine coordinates, big-endian).
#[derive(Clone, Copy, PartialEq, Eq)]
struct PublicKey {
    x: [u8; 32],
    y: [u8; 32],
}

impl PublicKey {
    /// From the SEC 1 uncompressed encoding (shape only: parsed keys are
    /// checked to be on the curve by `Reader::public_key`).
    fn from_uncompressed(bytes: &[u8]) -> Option<Self> {
        let (tag, rest) = bytes.split_first()?;
        let (x, y) = rest.split_first_chunk::<32>()?;
        if *tag != 0x04 {
            return None;
        }
        Some(Self {
            x: *x,
            y: y.try_into().ok()?,
        })
    }

    fn uncompressed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PUBLIC_KEY_LEN);
        out.push(0x04);
        out.extend_from_slice(&self.x);
        out.extend_from_slice(&self.y);
        out
    }

    /// RFC 7638 §3: SHA-256 over the required members in lexicographic
    /// order, no whitespace; base64url without padding.
    fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(self.x),
            URL_SAFE_NO_PAD.encode(self.y)
        );
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    fn jwk(&self, kid: &str) -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(self.x),
            "y": URL_SAFE_NO_PAD.encode(self.y),
            "kid": kid,
            "use": "sig",
            "alg": ALGORITHM,
        })
    }
}

/// The key that signs new tokens.
struct ActiveKey {
    kid: String,
    created_at: u64,
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
}

impl ActiveKey {
    fn generate(now: u64, rng: &dyn SecureRandom) -> Result<Self, IdentityError> {
        // ring's `Document` is not wiped on drop; it lives only this block.
        let pkcs8 = {
            let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
                .map_err(|_| IdentityError::Random)?;
            Zeroizing::new(document.as_ref().to_vec())
        };
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, rng)
            .map_err(|_| IdentityError::Crypto)?;
        let public = PublicKey::from_uncompressed(pair.public_key().as_ref())
            .ok_or(IdentityError::Crypto)?;
        Ok(Self {
            kid: public.thumbprint(),
            created_at: now,
            pkcs8,
            public,
        })
    }

    /// Loads the key pair (ring checks the private key and that the public
    /// key is its own) and checks it is the published key.
    fn key_pair(&self, rng: &dyn SecureRandom) -> Result<EcdsaKeyPair, IdentityError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.pkcs8, rng)
            .map_err(|_| IdentityError::MalformedKeySet(KeySetProblem::PrivateKey))?;
        if pair.public_key().as_ref() != self.public.uncompressed().as_slice() {
            return Err(IdentityError::MalformedKeySet(KeySetProblem::KeyMismatch));
        }
        Ok(pair)
    }
}

/// A rotated-out key: public only, published until `retire_at`.
struct RetiringKey {
    kid: String,
    created_at: u64,
    retire_at: u64,
    public: PublicKey,
}

/// The engine's signing keys: one active key pair and the public keys of
/// rotated-out keys still needed to verify unexpired tokens.
///
/// No `Serialize`, `Clone` or `PartialEq`; `Debug` shows key ids only.
pub struct KeySet {
    active: ActiveKey,
    retiring: Vec<RetiringKey>,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("active_kid", &self.active.kid)
            .field("active_created_at", &self.active.created_at)
            .field("private_key", &"[redacted]")
            .field(
                "retiring",
                &self
                    .retiring
                    .iter()
                    .map(|key| (&key.kid, key.retire_at))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl KeySet {
    /// A key set with one fresh active key created at `now`.
    pub fn generate(now: u64, rng: &dyn SecureRandom) -> Result<Self, IdentityError> {
        Ok(Self {
            active: ActiveKey::generate(now, rng)?,
            retiring: Vec::new(),
        })
    }

    /// Serialized form for the caller to seal (the barrier encrypts it).
    ///
    /// Version 1, integers big-endian:
    /// `"KWID" ‖ 0x01 ‖ created_at u64 ‖ pkcs8_len u16 ‖ PKCS#8 ‖ public (65) ‖
    /// n u8 ‖ n × (created_at u64 ‖ retire_at u64 ‖ public (65))`.
    /// Key ids are not stored: they are recomputed from the public keys.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let len = KEY_SET_FIXED_LEN
            .saturating_add(self.active.pkcs8.len())
            .saturating_add(self.retiring.len().saturating_mul(RETIRING_KEY_LEN));
        // Sized up front so the buffer never reallocates (and leaves no
        // unwiped copy of the private key behind).
        let mut out = Zeroizing::new(Vec::with_capacity(len));
        out.extend_from_slice(KEY_SET_MAGIC);
        out.push(KEY_SET_VERSION);
        out.extend_from_slice(&self.active.created_at.to_be_bytes());
        // Bounded by MAX_PKCS8_LEN on every path that builds a key set.
        let pkcs8_len = u16::try_from(self.active.pkcs8.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&pkcs8_len.to_be_bytes());
        out.extend_from_slice(&self.active.pkcs8);
        out.extend_from_slice(&self.active.public.uncompressed());
        // Bounded by MAX_RETIRING_KEYS on every path that builds a key set.
        out.push(u8::try_from(self.retiring.len()).unwrap_or(u8::MAX));
        for key in &self.retiring {
            out.extend_from_slice(&key.created_at.to_be_bytes());
            out.extend_from_slice(&key.retire_at.to_be_bytes());
            out.extend_from_slice(&key.public.uncompressed());
        }
        out
    }

    /// Parses [`KeySet::to_bytes`] output strictly: bounded lengths, no
    /// trailing bytes, no duplicate keys, the active public key equal to the
    /// one inside its PKCS#8 document. ring checks the private key itself
    /// when it is first used ([`KeySet::sign`], [`KeySet::check_private_key`]),
    /// because loading it needs an RNG.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        parse_key_set(bytes).map_err(IdentityError::MalformedKeySet)
    }

    /// Loads the active private key with ring (which checks it is a valid
    /// P-256 key whose public key is the one published). Worth calling
    /// right after [`KeySet::from_bytes`].
    pub fn check_private_key(&self, rng: &dyn SecureRandom) -> Result<(), IdentityError> {
        self.active.key_pair(rng).map(drop)
    }

    /// Makes a new active key; the previous active key stays published until
    /// `now + max_ttl_secs` (when the last token it could have signed
    /// expires), then [`KeySet::prune`] drops it. Its private key is wiped
    /// now. Prunes first; refuses to keep more than [`MAX_RETIRING_KEYS`].
    /// Returns the new key id.
    pub fn rotate(
        &mut self,
        now: u64,
        settings: &IdentitySettings,
        rng: &dyn SecureRandom,
    ) -> Result<String, IdentityError> {
        settings.validate()?;
        let retire_at = now
            .checked_add(settings.max_ttl_secs)
            .ok_or(IdentityError::TimeOverflow)?;
        self.prune(now);
        if self.retiring.len() >= MAX_RETIRING_KEYS {
            return Err(IdentityError::TooManyKeys {
                max: MAX_RETIRING_KEYS,
            });
        }
        let old = std::mem::replace(&mut self.active, ActiveKey::generate(now, rng)?);
        self.retiring.push(RetiringKey {
            kid: old.kid,
            created_at: old.created_at,
            retire_at,
            public: old.public,
        });
        Ok(self.active.kid.clone())
    }

    /// True when the active key has reached `rotation_period_secs` of age.
    pub fn needs_rotation(&self, now: u64, settings: &IdentitySettings) -> bool {
        now.saturating_sub(self.active.created_at) >= settings.rotation_period_secs
    }

    /// Drops retiring keys whose `retire_at` is at or before `now` (every
    /// token they signed has expired: a JWT is invalid from `exp` on).
    /// Returns how many were dropped. Never drops the active key.
    pub fn prune(&mut self, now: u64) -> usize {
        let before = self.retiring.len();
        self.retiring.retain(|key| key.retire_at > now);
        before.saturating_sub(self.retiring.len())
    }

    /// The key id new tokens are signed with.
    pub fn active_kid(&self) -> &str {
        &self.active.kid
    }

    /// The published keys, active first:
    /// `{"keys":[{"kty":"EC","crv":"P-256","x","y","kid","use":"sig","alg":"ES256"}…]}`.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = std::iter::once(self.active.public.jwk(&self.active.kid))
            .chain(self.retiring.iter().map(|key| key.public.jwk(&key.kid)))
            .collect();
        json!({ "keys": keys })
    }

    /// Signs a token about `claims` for `audience`, valid from `now` for
    /// `ttl_secs` (or the default). Checks the settings, the audience, the
    /// ttl and the claims first.
    pub fn sign(
        &self,
        claims: &WorkloadClaims,
        audience: &str,
        ttl_secs: Option<u64>,
        now: u64,
        settings: &IdentitySettings,
        rng: &dyn SecureRandom,
    ) -> Result<IssuedToken, IdentityError> {
        settings.validate()?;
        check_text(audience, MAX_AUDIENCE_LEN).map_err(IdentityError::InvalidAudience)?;
        let ttl = settings.ttl(ttl_secs)?;
        claims.validate()?;
        let expires_at = now.checked_add(ttl).ok_or(IdentityError::TimeOverflow)?;
        let mut jti = [0_u8; 16];
        rng.fill(&mut jti).map_err(|_| IdentityError::Random)?;
        let jti = hex::encode(jti);
        let pair = self.active.key_pair(rng)?;

        let header = json!({ "alg": ALGORITHM, "typ": "JWT", "kid": self.active.kid });
        let payload = json!({
            "iss": settings.issuer,
            "sub": subject(&settings.trust_domain, claims),
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": expires_at,
            "jti": jti,
            "keyward": claims.to_json(),
        });
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
        // header . payload . 64-byte signature (86 base64url characters).
        let len = header
            .len()
            .saturating_add(payload.len())
            .saturating_add(88);
        let mut token = Zeroizing::new(String::with_capacity(len));
        token.push_str(&header);
        token.push('.');
        token.push_str(&payload);
        let signature = pair
            .sign(rng, token.as_bytes())
            .map_err(|_| IdentityError::Crypto)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(IssuedToken {
            jti,
            issued_at: now,
            expires_at,
            kid: self.active.kid.clone(),
            token,
        })
    }
}

/// A byte cursor whose reads fail with `Truncated` instead of panicking.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], KeySetProblem> {
        let (head, rest) = self
            .0
            .split_at_checked(len)
            .ok_or(KeySetProblem::Truncated)?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], KeySetProblem> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(KeySetProblem::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u64(&mut self) -> Result<u64, KeySetProblem> {
        self.array().map(u64::from_be_bytes)
    }

    /// A SEC 1 uncompressed point that is on P-256 (SEC 1 §3.2.2.1). ring
    /// has no public API to check a point without a signature; aws-lc-rs
    /// (already a dependency, for constant-time comparison) does.
    fn public_key(&mut self) -> Result<PublicKey, KeySetProblem> {
        let bytes = self.take(PUBLIC_KEY_LEN)?;
        aws_lc_rs::signature::ParsedPublicKey::new(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
            bytes,
        )
        .map_err(|_| KeySetProblem::PublicKey)?;
        PublicKey::from_uncompressed(bytes).ok_or(KeySetProblem::PublicKey)
    }
}

fn parse_key_set(bytes: &[u8]) -> Result<KeySet, KeySetProblem> {
    if bytes.len() > MAX_KEY_SET_LEN {
        return Err(KeySetProblem::TooLong);
    }
    let mut reader = Reader(bytes);
    if reader.take(KEY_SET_MAGIC.len())? != KEY_SET_MAGIC {
        return Err(KeySetProblem::BadMagic);
    }
    let [version] = reader.array::<1>()?;
    if version != KEY_SET_VERSION {
        return Err(KeySetProblem::UnsupportedVersion { version });
    }
    let created_at = reader.u64()?;
    let pkcs8_len = usize::from(u16::from_be_bytes(reader.array()?));
    if pkcs8_len == 0 || pkcs8_len > MAX_PKCS8_LEN {
        return Err(KeySetProblem::PrivateKeyLength);
    }
    let pkcs8 = Zeroizing::new(reader.take(pkcs8_len)?.to_vec());
    let public = reader.public_key()?;
    // ring writes PKCS#8 as template ‖ private key ‖ template ‖ public key;
    // the full private/public consistency check is ring's, at load.
    if !pkcs8.ends_with(&public.uncompressed()) {
        return Err(KeySetProblem::KeyMismatch);
    }
    let active = ActiveKey {
        kid: public.thumbprint(),
        created_at,
        pkcs8,
        public,
    };
    let [count] = reader.array::<1>()?;
    let count = usize::from(count);
    if count > MAX_RETIRING_KEYS {
        return Err(KeySetProblem::TooManyKeys);
    }
    let mut retiring: Vec<RetiringKey> = Vec::with_capacity(count);
    for _ in 0..count {
        let created_at = reader.u64()?;
        let retire_at = reader.u64()?;
        let public = reader.public_key()?;
        if retire_at < created_at {
            return Err(KeySetProblem::RetireTime);
        }
        if public == active.public || retiring.iter().any(|key| key.public == public) {
            return Err(KeySetProblem::DuplicateKey);
        }
        retiring.push(RetiringKey {
            kid: public.thumbprint(),
            created_at,
            retire_at,
            public,
        });
    }
    if !reader.0.is_empty() {
        return Err(KeySetProblem::TrailingBytes);
    }
    Ok(KeySet { active, retiring })
}

/// A signed token. The token is a bearer credential: it is wiped on drop and
/// `Debug` does not show it.
pub struct IssuedToken {
    /// The token's `jti`.
    pub jti: String,
    /// The token's `iat` (and `nbf`).
    pub issued_at: u64,
    /// The token's `exp`.
    pub expires_at: u64,
    /// The key that signed it.
    pub kid: String,
    token: Zeroizing<String>,
}

impl IssuedToken {
    /// The compact JWS (`header.payload.signature`).
    pub fn expose_secret(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("jti", &self.jti)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("kid", &self.kid)
            .field("token", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::as_conversions
)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    /// 2026-11-01T00:00:00Z.
    const NOW: u64 = 1_793_491_200;
    const AUDIENCE: &str = "https://sts.example.com";
    const IMAGE_DIGEST: &str =
        "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
    const MODEL_DIGEST: &str =
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn settings() -> IdentitySettings {
        IdentitySettings {
            issuer: "https://vault.example:8200/v1/identity".to_owned(),
            trust_domain: "prod.example".to_owned(),
            default_ttl_secs: 300,
            max_ttl_secs: 3600,
            rotation_period_secs: 86_400,
        }
    }

    fn claims() -> WorkloadClaims {
        WorkloadClaims {
            host_id: "host-01".to_owned(),
            host_labels: BTreeMap::from([
                ("rack".to_owned(), "b7".to_owned()),
                ("zone".to_owned(), "eu-west-1a".to_owned()),
            ]),
            image_digest: IMAGE_DIGEST.to_owned(),
            image_reference: format!("registry.example/agents/summarizer@{IMAGE_DIGEST}"),
            model_name: "llama-3-8b".to_owned(),
            model_digest: MODEL_DIGEST.to_owned(),
            instance_id: "0f1e2d3c-inst".to_owned(),
            on_behalf_of: Some("alice@example.com".to_owned()),
        }
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn unb64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    /// Verifies a compact ES256 JWS against a JWKS the way a relying party
    /// would, from the JSON alone: find the key by `kid`, rebuild the
    /// uncompressed point, verify the raw r‖s signature with ring.
    fn verify(token: &str, jwks: &Value) -> Result<(Value, Value), &'static str> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return Err("not three parts");
        };
        let header_json: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(|_| "header b64")?)
                .map_err(|_| "header json")?;
        if header_json["alg"] != "ES256" {
            return Err("alg");
        }
        let kid = header_json["kid"].as_str().ok_or("kid")?;
        let jwk = jwks["keys"]
            .as_array()
            .ok_or("keys")?
            .iter()
            .find(|key| key["kid"] == kid)
            .ok_or("unknown kid")?;
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        let mut point = vec![0x04];
        point.extend(unb64(jwk["x"].as_str().unwrap()));
        point.extend(unb64(jwk["y"].as_str().unwrap()));
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "sig b64")?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(format!("{header}.{payload}").as_bytes(), &signature)
            .map_err(|_| "bad signature")?;
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).map_err(|_| "payload b64")?)
                .map_err(|_| "payload json")?;
        Ok((header_json, claims))
    }

    /// Re-encodes one part of a token after `edit` changed its bytes.
    fn tamper(token: &str, part: usize, edit: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut bytes = unb64(&parts[part]);
        edit(&mut bytes);
        parts[part] = b64(&bytes);
        parts.join(".")
    }

    #[test]
    fn signed_token_verifies_independently_with_every_claim() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let issued = keys
            .sign(&claims(), AUDIENCE, Some(600), NOW, &settings(), &rng)
            .unwrap();
        let (header, payload) = verify(issued.expose_secret(), &keys.jwks()).unwrap();

        assert_eq!(
            header,
            json!({"alg": "ES256", "typ": "JWT", "kid": keys.active_kid()})
        );
        assert_eq!(issued.kid, keys.active_kid());
        assert_eq!(issued.issued_at, NOW);
        assert_eq!(issued.expires_at, NOW + 600);
        assert_eq!(payload["iss"], "https://vault.example:8200/v1/identity");
        assert_eq!(
            payload["sub"],
            format!("keyward://prod.example/host/host-01/image/{IMAGE_DIGEST}")
        );
        assert_eq!(payload["aud"], AUDIENCE);
        assert_eq!(payload["iat"], NOW);
        assert_eq!(payload["nbf"], NOW);
        assert_eq!(payload["exp"], NOW + 600);
        assert_eq!(payload["jti"], issued.jti.as_str());
        assert_eq!(issued.jti.len(), 32);
        assert!(issued.jti.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            payload["keyward"],
            json!({
                "host_id": "host-01",
                "host_labels": {"rack": "b7", "zone": "eu-west-1a"},
                "image_digest": IMAGE_DIGEST,
                "image_reference": format!("registry.example/agents/summarizer@{IMAGE_DIGEST}"),
                "model_name": "llama-3-8b",
                "model_digest": MODEL_DIGEST,
                "instance_id": "0f1e2d3c-inst",
                "on_behalf_of": "alice@example.com",
            })
        );
        let mut names: Vec<&str> = payload
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        let mut expected = CLAIMS.to_vec();
        expected.sort_unstable();
        assert_eq!(names, expected);
    }

    #[test]
    fn jti_differs_between_tokens() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let a = keys
            .sign(&claims(), AUDIENCE, None, NOW, &settings(), &rng)
            .unwrap();
        let b = keys
            .sign(&claims(), AUDIENCE, None, NOW, &settings(), &rng)
            .unwrap();
        assert_ne!(a.jti, b.jti);
    }

    #[test]
    fn without_on_behalf_of_the_claim_is_absent() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let mut workload = claims();
        workload.on_behalf_of = None;
        let issued = keys
            .sign(&workload, AUDIENCE, None, NOW, &settings(), &rng)
            .unwrap();
        let (_, payload) = verify(issued.expose_secret(), &keys.jwks()).unwrap();
        assert!(payload["keyward"].get("on_behalf_of").is_none());
        assert_eq!(payload["keyward"]["host_id"], "host-01");
    }

    #[test]
    fn flipped_signature_byte_fails() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let issued = keys
            .sign(&claims(), AUDIENCE, None, NOW, &settings(), &rng)
            .unwrap();
        let jwks = keys.jwks();
        assert!(verify(issued.expose_secret(), &jwks).is_ok());
        for index in [0, 31, 32, 63] {
            let tampered = tamper(issued.expose_secret(), 2, |sig| sig[index] ^= 0x01);
            assert_eq!(
                verify(&tampered, &jwks),
                Err("bad signature"),
                "byte {index}"
            );
        }
    }

    #[test]
    fn flipped_payload_byte_fails() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let issued = keys
            .sign(&claims(), AUDIENCE, None, NOW, &settings(), &rng)
            .unwrap();
        let jwks = keys.jwks();
        let tampered = tamper(issued.expose_secret(), 1, |payload| {
            let text = String::from_utf8(payload.clone()).unwrap();
            *payload = text.replace("host-01", "host-02").into_bytes();
        });
        assert_eq!(verify(&tampered, &jwks), Err("bad signature"));
        let flipped = tamper(issued.expose_secret(), 1, |payload| payload[10] ^= 0x01);
        assert_eq!(verify(&flipped, &jwks), Err("bad signature"));
    }

    #[test]
    fn token_from_another_key_set_fails() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let other = KeySet::generate(NOW, &rng).unwrap();
        let issued = other
            .sign(&claims(), AUDIENCE, None, NOW, &settings(), &rng)
            .unwrap();
        assert_eq!(
            verify(issued.expose_secret(), &keys.jwks()),
            Err("unknown kid")
        );
        // Same kid, other key: relabelled header.
        let relabelled = tamper(issued.expose_secret(), 0, |header| {
            *header = json!({"alg": "ES256", "typ": "JWT", "kid": keys.active_kid()})
                .to_string()
                .into_bytes();
        });
        assert_eq!(verify(&relabelled, &keys.jwks()), Err("bad signature"));
    }

    #[test]
    fn jwks_shape_and_kid_is_the_rfc7638_thumbprint() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let jwks = keys.jwks();
        let list = jwks["keys"].as_array().unwrap();
        assert_eq!(list.len(), 1);
        let jwk = &list[0];
        let mut members: Vec<&str> = jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["alg"], "ES256");
        let x = jwk["x"].as_str().unwrap();
        let y = jwk["y"].as_str().unwrap();
        assert_eq!(unb64(x).len(), 32);
        assert_eq!(unb64(y).len(), 32);
        // RFC 7638 §3.2: required members, lexicographic, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let expected =
            b64(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref());
        assert_eq!(jwk["kid"], expected.as_str());
        assert_eq!(keys.active_kid(), expected);
    }

    #[test]
    fn default_ttl_is_used_and_clamped_to_max() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let issued = keys
            .sign(&claims(), AUDIENCE, None, NOW, &settings(), &rng)
            .unwrap();
        assert_eq!(issued.expires_at, NOW + 300);
        let long_default = IdentitySettings {
            default_ttl_secs: 7200,
            ..settings()
        };
        let issued = keys
            .sign(&claims(), AUDIENCE, None, NOW, &long_default, &rng)
            .unwrap();
        assert_eq!(issued.expires_at, NOW + 3600);
        let issued = keys
            .sign(&claims(), AUDIENCE, Some(3600), NOW, &settings(), &rng)
            .unwrap();
        assert_eq!(issued.expires_at, NOW + 3600);
        let issued = keys
            .sign(&claims(), AUDIENCE, Some(1), NOW, &settings(), &rng)
            .unwrap();
        assert_eq!(issued.expires_at, NOW + 1);
    }

    #[test]
    fn ttl_of_zero_or_above_max_is_refused() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        for requested in [0, 3601, u64::MAX] {
            assert_eq!(
                keys.sign(&claims(), AUDIENCE, Some(requested), NOW, &settings(), &rng)
                    .unwrap_err(),
                IdentityError::InvalidTtl {
                    requested,
                    max: 3600
                }
            );
        }
        assert_eq!(
            keys.sign(&claims(), AUDIENCE, None, u64::MAX - 10, &settings(), &rng)
                .unwrap_err(),
            IdentityError::TimeOverflow
        );
    }

    #[test]
    fn audience_is_validated() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let sign = |audience: &str| keys.sign(&claims(), audience, None, NOW, &settings(), &rng);
        assert_eq!(
            sign("").unwrap_err(),
            IdentityError::InvalidAudience(TextProblem::Empty)
        );
        assert_eq!(
            sign(&"a".repeat(257)).unwrap_err(),
            IdentityError::InvalidAudience(TextProblem::TooLong { max: 256 })
        );
        for bad in ["sts\n.example", "sts\u{0}", "a\u{7f}", "b\u{85}"] {
            assert_eq!(
                sign(bad).unwrap_err(),
                IdentityError::InvalidAudience(TextProblem::ControlCharacter),
                "{bad:?}"
            );
        }
        let longest = "a".repeat(256);
        let issued = sign(&longest).unwrap();
        let (_, payload) = verify(issued.expose_secret(), &keys.jwks()).unwrap();
        assert_eq!(payload["aud"], longest.as_str());
    }

    #[test]
    fn claims_are_validated() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let check = |edit: &dyn Fn(&mut WorkloadClaims), expected: IdentityError| {
            let mut workload = claims();
            edit(&mut workload);
            assert_eq!(workload.validate().unwrap_err(), expected);
            assert_eq!(
                keys.sign(&workload, AUDIENCE, None, NOW, &settings(), &rng)
                    .unwrap_err(),
                expected
            );
        };
        let invalid = |claim, problem| IdentityError::InvalidClaim { claim, problem };
        check(
            &|c| c.host_id = "a/b".into(),
            invalid(Claim::HostId, TextProblem::Syntax),
        );
        check(
            &|c| c.host_id = "..".into(),
            invalid(Claim::HostId, TextProblem::Syntax),
        );
        check(
            &|c| c.host_id = String::new(),
            invalid(Claim::HostId, TextProblem::Empty),
        );
        check(
            &|c| c.host_id = "h".repeat(129),
            invalid(Claim::HostId, TextProblem::TooLong { max: 128 }),
        );
        check(
            &|c| c.image_digest = IMAGE_DIGEST.to_uppercase(),
            invalid(Claim::ImageDigest, TextProblem::Syntax),
        );
        check(
            &|c| c.image_digest = format!("{IMAGE_DIGEST}0"),
            invalid(Claim::ImageDigest, TextProblem::Syntax),
        );
        check(
            &|c| c.model_digest = "sha512:00".into(),
            invalid(Claim::ModelDigest, TextProblem::Syntax),
        );
        check(
            &|c| c.image_reference = "r\u{1b}[31m".into(),
            invalid(Claim::ImageReference, TextProblem::ControlCharacter),
        );
        check(
            &|c| c.model_name = String::new(),
            invalid(Claim::ModelName, TextProblem::Empty),
        );
        check(
            &|c| c.instance_id = "i".repeat(129),
            invalid(Claim::InstanceId, TextProblem::TooLong { max: 128 }),
        );
        check(
            &|c| c.on_behalf_of = Some("bob\r\n".into()),
            invalid(Claim::OnBehalfOf, TextProblem::ControlCharacter),
        );
        check(
            &|c| {
                c.host_labels.insert(String::new(), "v".into());
            },
            invalid(Claim::HostLabelKey, TextProblem::Empty),
        );
        check(
            &|c| {
                c.host_labels.insert("k".into(), "v".repeat(257));
            },
            invalid(Claim::HostLabelValue, TextProblem::TooLong { max: 256 }),
        );
        check(
            &|c| c.host_labels = (0..65).map(|i| (format!("k{i}"), "v".to_owned())).collect(),
            IdentityError::TooManyHostLabels { count: 65, max: 64 },
        );
    }

    #[test]
    fn subject_percent_encodes_so_it_stays_unambiguous() {
        let mut workload = claims();
        assert_eq!(
            subject("prod.example", &workload),
            format!("keyward://prod.example/host/host-01/image/{IMAGE_DIGEST}")
        );
        workload.host_id = "a/image/b".into();
        workload.image_digest = "x y%".into();
        assert_eq!(
            subject("prod.example", &workload),
            "keyward://prod.example/host/a%2Fimage%2Fb/image/x%20y%25"
        );
    }

    #[test]
    fn settings_are_validated() {
        let check = |edit: &dyn Fn(&mut IdentitySettings), expected: Option<SettingsProblem>| {
            let mut s = settings();
            edit(&mut s);
            assert_eq!(
                s.validate(),
                expected.map_or(Ok(()), |p| Err(IdentityError::InvalidSettings(p))),
                "{s:?}"
            );
        };
        use SettingsProblem as P;
        for (issuer, expected) in [
            ("https://vault.example", None),
            ("https://vault.example:8200/v1/identity", None),
            ("https://[2001:db8::1]:8200/v1/identity", None),
            ("http://127.0.0.1:8200/v1/identity", None),
            ("http://localhost/v1/identity", None),
            ("http://[::1]:8200", None),
            ("http://vault.example/v1/identity", Some(P::IssuerScheme)),
            ("ftp://vault.example", Some(P::IssuerScheme)),
            ("vault.example", Some(P::IssuerScheme)),
            ("https://vault.example/v1/identity/", Some(P::IssuerSyntax)),
            ("https://vault.example/v1?x=1", Some(P::IssuerSyntax)),
            ("https://vault.example/v1#f", Some(P::IssuerSyntax)),
            ("https://user@vault.example", Some(P::IssuerSyntax)),
            ("https://vault example", Some(P::IssuerSyntax)),
            ("https://vault.exämple", Some(P::IssuerSyntax)),
            ("https://", Some(P::IssuerHost)),
            ("https:///v1", Some(P::IssuerHost)),
            ("https://vault.example:", Some(P::IssuerHost)),
            ("https://vault.example:123456", Some(P::IssuerHost)),
            ("https://vault.example:80a", Some(P::IssuerHost)),
            ("https://a:b:1", Some(P::IssuerHost)),
            ("https://[]:1", Some(P::IssuerHost)),
            ("https://[::1", Some(P::IssuerHost)),
        ] {
            check(&|s| s.issuer = issuer.to_owned(), expected);
        }
        check(
            &|s| s.issuer = format!("https://v.example/{}", "a".repeat(500)),
            Some(P::IssuerTooLong),
        );
        for domain in ["prod.example", "a", "x-1.y2", &"a".repeat(63)] {
            check(&|s| s.trust_domain = domain.to_owned(), None);
        }
        for domain in [
            "",
            "Prod.example",
            "prod..example",
            ".prod",
            "prod.",
            "-prod",
            "prod-.example",
            "prod_example",
            "prod/x",
            &"a".repeat(64),
            &["abc"; 64].join("."),
        ] {
            check(
                &|s| s.trust_domain = domain.to_owned(),
                Some(P::TrustDomain),
            );
        }
        check(&|s| s.default_ttl_secs = 0, Some(P::ZeroTtl));
        check(&|s| s.max_ttl_secs = 0, Some(P::ZeroTtl));
        check(&|s| s.rotation_period_secs = 0, Some(P::ZeroRotationPeriod));
    }

    #[test]
    fn sign_and_rotate_refuse_invalid_settings() {
        let rng = SystemRandom::new();
        let mut keys = KeySet::generate(NOW, &rng).unwrap();
        let bad = IdentitySettings {
            trust_domain: "Bad".to_owned(),
            ..settings()
        };
        let expected = IdentityError::InvalidSettings(SettingsProblem::TrustDomain);
        assert_eq!(
            keys.sign(&claims(), AUDIENCE, None, NOW, &bad, &rng)
                .unwrap_err(),
            expected
        );
        let kid = keys.active_kid().to_owned();
        assert_eq!(keys.rotate(NOW, &bad, &rng).unwrap_err(), expected);
        assert_eq!(keys.active_kid(), kid);
    }

    #[test]
    fn discovery_document_fields() {
        let document = discovery_document(&settings());
        assert_eq!(
            document,
            json!({
                "issuer": "https://vault.example:8200/v1/identity",
                "jwks_uri": "https://vault.example:8200/v1/identity/.well-known/jwks.json",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "claims_supported": ["iss", "sub", "aud", "iat", "nbf", "exp", "jti", "keyward"],
            })
        );
    }

    #[test]
    fn rotation_keeps_old_key_published_until_its_tokens_expire() {
        let rng = SystemRandom::new();
        let s = settings();
        let mut keys = KeySet::generate(NOW, &rng).unwrap();
        let old_kid = keys.active_kid().to_owned();
        let old_token = keys
            .sign(&claims(), AUDIENCE, Some(3600), NOW + 100, &s, &rng)
            .unwrap();

        let rotated_at = NOW + 200;
        let new_kid = keys.rotate(rotated_at, &s, &rng).unwrap();
        assert_ne!(new_kid, old_kid);
        assert_eq!(keys.active_kid(), new_kid);

        let jwks = keys.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
        let (header, _) = verify(old_token.expose_secret(), &jwks).unwrap();
        assert_eq!(header["kid"], old_kid.as_str());

        let new_token = keys
            .sign(&claims(), AUDIENCE, None, rotated_at, &s, &rng)
            .unwrap();
        assert_eq!(new_token.kid, new_kid);
        let (header, _) = verify(new_token.expose_secret(), &jwks).unwrap();
        assert_eq!(header["kid"], new_kid.as_str());

        // The old key could have signed until `rotated_at`, so its last token
        // expires at `rotated_at + max_ttl`.
        let retire_at = rotated_at + s.max_ttl_secs;
        assert!(old_token.expires_at <= retire_at);
        assert_eq!(keys.prune(retire_at - 1), 0);
        assert!(verify(old_token.expose_secret(), &keys.jwks()).is_ok());
        assert_eq!(keys.prune(retire_at), 1);
        assert_eq!(
            verify(old_token.expose_secret(), &keys.jwks()),
            Err("unknown kid")
        );
        assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), 1);
        assert_eq!(keys.active_kid(), new_kid);
        assert!(verify(new_token.expose_secret(), &keys.jwks()).is_ok());
        // The active key is never pruned.
        assert_eq!(keys.prune(u64::MAX), 0);
        assert_eq!(keys.active_kid(), new_kid);
    }

    #[test]
    fn needs_rotation_at_the_rotation_period() {
        let rng = SystemRandom::new();
        let s = settings();
        let mut keys = KeySet::generate(NOW, &rng).unwrap();
        assert!(!keys.needs_rotation(NOW, &s));
        assert!(!keys.needs_rotation(NOW + 86_399, &s));
        assert!(keys.needs_rotation(NOW + 86_400, &s));
        // A clock behind the key's creation never asks for rotation.
        assert!(!keys.needs_rotation(NOW - 1000, &s));
        keys.rotate(NOW + 86_400, &s, &rng).unwrap();
        assert!(!keys.needs_rotation(NOW + 86_400, &s));
    }

    #[test]
    fn rotation_is_bounded() {
        let rng = SystemRandom::new();
        let s = settings();
        let mut keys = KeySet::generate(NOW, &rng).unwrap();
        for i in 0..MAX_RETIRING_KEYS as u64 {
            keys.rotate(NOW + i, &s, &rng).unwrap();
        }
        let bytes = keys.to_bytes();
        assert!(bytes.len() <= MAX_KEY_SET_LEN);
        assert_eq!(KeySet::from_bytes(&bytes).unwrap().jwks(), keys.jwks());
        let kid = keys.active_kid().to_owned();
        assert_eq!(
            keys.rotate(NOW + 100, &s, &rng).unwrap_err(),
            IdentityError::TooManyKeys {
                max: MAX_RETIRING_KEYS
            }
        );
        assert_eq!(keys.active_kid(), kid);
        // Once the first retiring key has expired, rotate prunes it and goes on.
        keys.rotate(NOW + s.max_ttl_secs, &s, &rng).unwrap();
        assert_eq!(
            keys.jwks()["keys"].as_array().unwrap().len(),
            MAX_RETIRING_KEYS + 1
        );
        assert_eq!(
            keys.rotate(u64::MAX, &s, &rng).unwrap_err(),
            IdentityError::TimeOverflow
        );
    }

    fn rotated_key_set() -> KeySet {
        let rng = SystemRandom::new();
        let mut keys = KeySet::generate(NOW, &rng).unwrap();
        keys.rotate(NOW + 10, &settings(), &rng).unwrap();
        keys.rotate(NOW + 20, &settings(), &rng).unwrap();
        keys
    }

    #[test]
    fn key_set_round_trips() {
        let rng = SystemRandom::new();
        let keys = rotated_key_set();
        let bytes = keys.to_bytes();
        let loaded = KeySet::from_bytes(&bytes).unwrap();
        loaded.check_private_key(&rng).unwrap();
        assert_eq!(loaded.active_kid(), keys.active_kid());
        assert_eq!(loaded.jwks(), keys.jwks());
        assert_eq!(*loaded.to_bytes(), *bytes);
        let issued = loaded
            .sign(&claims(), AUDIENCE, None, NOW + 30, &settings(), &rng)
            .unwrap();
        assert!(verify(issued.expose_secret(), &keys.jwks()).is_ok());
        // Retire times survive: the first key retires at NOW + 10 + max_ttl.
        let mut loaded = loaded;
        assert_eq!(loaded.prune(NOW + 10 + 3600), 1);
        assert_eq!(loaded.prune(NOW + 20 + 3600), 1);
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = rotated_key_set().to_bytes();
        for len in 0..bytes.len() {
            assert_eq!(
                KeySet::from_bytes(&bytes[..len]).unwrap_err(),
                IdentityError::MalformedKeySet(KeySetProblem::Truncated),
                "length {len}"
            );
        }
    }

    /// Offsets of the timestamps, the only bytes whose change the parser
    /// cannot detect (they carry no redundancy).
    fn time_field(bytes: &[u8], index: usize) -> bool {
        let pkcs8_len = usize::from(u16::from_be_bytes([bytes[13], bytes[14]]));
        let retiring_start = 15 + pkcs8_len + PUBLIC_KEY_LEN + 1;
        (5..13).contains(&index)
            || (index >= retiring_start && (index - retiring_start) % RETIRING_KEY_LEN < 16)
    }

    #[test]
    fn every_flipped_byte_is_refused_or_harmless() {
        let rng = SystemRandom::new();
        let original = rotated_key_set();
        let bytes = original.to_bytes();
        for index in 0..bytes.len() {
            let mut garbled = bytes.to_vec();
            garbled[index] ^= 0xff;
            match KeySet::from_bytes(&garbled) {
                Err(IdentityError::MalformedKeySet(_)) => {}
                Err(other) => panic!("byte {index}: {other:?}"),
                Ok(keys) => match keys.check_private_key(&rng) {
                    Err(IdentityError::MalformedKeySet(KeySetProblem::PrivateKey)) => {
                        // A flipped private key byte: only ring can tell.
                        assert!(!time_field(&bytes, index), "byte {index}");
                    }
                    Err(other) => panic!("byte {index}: {other:?}"),
                    Ok(()) => {
                        assert!(time_field(&bytes, index), "byte {index} went unnoticed");
                        assert_eq!(keys.jwks(), original.jwks());
                    }
                },
            }
        }
    }

    #[test]
    fn tampered_key_sets_give_the_exact_error() {
        let bytes = rotated_key_set().to_bytes();
        let pkcs8_len = usize::from(u16::from_be_bytes([bytes[13], bytes[14]]));
        let active_public = 15 + pkcs8_len;
        let count_at = active_public + PUBLIC_KEY_LEN;
        let first_retiring = count_at + 1;
        let check = |edit: &dyn Fn(&mut Vec<u8>), problem: KeySetProblem| {
            let mut tampered = bytes.to_vec();
            edit(&mut tampered);
            assert_eq!(
                KeySet::from_bytes(&tampered).unwrap_err(),
                IdentityError::MalformedKeySet(problem)
            );
        };
        check(&|b| b[0] = b'X', KeySetProblem::BadMagic);
        check(
            &|b| b[4] = 2,
            KeySetProblem::UnsupportedVersion { version: 2 },
        );
        check(
            &|b| b[13..15].copy_from_slice(&[0, 0]),
            KeySetProblem::PrivateKeyLength,
        );
        check(
            &|b| b[13..15].copy_from_slice(&[1, 1]),
            KeySetProblem::PrivateKeyLength,
        );
        check(&|b| b[active_public] = 0x02, KeySetProblem::PublicKey);
        check(&|b| b[active_public + 40] ^= 1, KeySetProblem::PublicKey);
        check(
            // A valid point, but not the private key's: a retiring key's.
            &|b| {
                let other = b[first_retiring + 16..first_retiring + RETIRING_KEY_LEN].to_vec();
                b[active_public..active_public + PUBLIC_KEY_LEN].copy_from_slice(&other);
            },
            KeySetProblem::KeyMismatch,
        );
        check(&|b| b[count_at] = 16, KeySetProblem::TooManyKeys);
        check(&|b| b[count_at] = 3, KeySetProblem::Truncated);
        check(&|b| b[first_retiring + 16] = 0x03, KeySetProblem::PublicKey);
        // Off the curve: a flipped coordinate bit of a retiring key.
        check(
            &|b| b[first_retiring + 16 + 40] ^= 1,
            KeySetProblem::PublicKey,
        );
        check(
            // retire_at := 0, before created_at.
            &|b| b[first_retiring + 8..first_retiring + 16].fill(0),
            KeySetProblem::RetireTime,
        );
        check(
            // The second retiring key := the first.
            &|b| {
                let first = b[first_retiring..first_retiring + RETIRING_KEY_LEN].to_vec();
                b[first_retiring + RETIRING_KEY_LEN..].copy_from_slice(&first);
            },
            KeySetProblem::DuplicateKey,
        );
        check(
            // A retiring key := the active key.
            &|b| {
                let active = b[active_public..active_public + PUBLIC_KEY_LEN].to_vec();
                b[first_retiring + 16..first_retiring + RETIRING_KEY_LEN].copy_from_slice(&active);
            },
            KeySetProblem::DuplicateKey,
        );
        check(&|b| b.push(0), KeySetProblem::TrailingBytes);
        check(
            &|b| b.resize(MAX_KEY_SET_LEN + 1, 0),
            KeySetProblem::TooLong,
        );
    }

    #[test]
    fn corrupt_private_key_is_refused_when_signing() {
        let rng = SystemRandom::new();
        let bytes = rotated_key_set().to_bytes();
        let mut tampered = bytes.to_vec();
        // The private scalar: ring's P-256 template puts it at PKCS#8 offset 36.
        tampered[15 + 36] ^= 0x01;
        let keys = KeySet::from_bytes(&tampered).unwrap();
        assert_eq!(
            keys.sign(&claims(), AUDIENCE, None, NOW, &settings(), &rng)
                .unwrap_err(),
            IdentityError::MalformedKeySet(KeySetProblem::PrivateKey)
        );
    }

    #[test]
    fn garbage_never_panics() {
        // A fixed xorshift stream: inputs of every length up to the cap.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in (0..=MAX_KEY_SET_LEN + 8).step_by(7) {
            let mut input: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            assert!(KeySet::from_bytes(&input).is_err());
            // With a valid header the parser reaches the length fields.
            if input.len() > 5 {
                input[..5].copy_from_slice(b"KWID\x01");
                assert!(matches!(
                    KeySet::from_bytes(&input),
                    Err(IdentityError::MalformedKeySet(_))
                ));
            }
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let rng = SystemRandom::new();
        let keys = KeySet::generate(NOW, &rng).unwrap();
        let issued = keys
            .sign(&claims(), AUDIENCE, None, NOW, &settings(), &rng)
            .unwrap();
        let token_debug = format!("{issued:?}");
        assert!(token_debug.contains("[redacted]"));
        assert!(!token_debug.contains(issued.expose_secret()));
        let signature = issued.expose_secret().rsplit('.').next().unwrap();
        assert!(!token_debug.contains(signature));
        let keys_debug = format!("{keys:?}");
        assert!(keys_debug.contains("[redacted]"));
        assert!(keys_debug.contains(keys.active_kid()));
        let serialized = keys.to_bytes();
        let private_hex = hex::encode(&serialized[15 + 36..15 + 68]);
        assert!(!keys_debug.to_lowercase().contains(&private_hex));
    }
}

//! On-behalf-of user tokens: verifying the user JWT an agent presents.
//!
//! An agent acting for a user sends that user's access token (a JWT from a
//! configured OIDC issuer) with its release request; if it verifies, the
//! user's subject, issuer and scopes become `context.user` in the Cedar
//! release policy ([`crate::release_policy`]).
//!
//! # What it checks, in order (first failure wins)
//! 1. size (≤ [`OboSettings::max_token_len`]) and shape: three base64url
//!    parts without padding (RFC 7515 §7.1 compact serialization; a JWE's
//!    five parts are refused);
//! 2. header: `alg` is `RS256` or `ES256` and nothing else — `none` and the
//!    `HS*` family are refused outright, so a token "signed" with the
//!    issuer's public key as an HMAC secret goes nowhere; a `crit` header is
//!    refused (RFC 7515 §4.1.11: we understand no extensions); `jku`, `x5u`,
//!    `jwk` and `x5c` are ignored, never used to find a key;
//! 3. key: `kid` selects a key of the configured JWKS (a token without `kid`
//!    is accepted only when the JWKS holds exactly one usable key), and the
//!    key's type must match `alg` (an RSA key never checks an ES256 token,
//!    and the reverse);
//! 4. signature, with `ring` (RSASSA-PKCS1-v1_5 SHA-256 with a 2048–8192-bit
//!    modulus; ECDSA P-256 SHA-256 in the fixed 64-byte JWS encoding);
//! 5. claims, parsed only once the signature holds: `iss` equal to the
//!    configured issuer, `aud` (string or array) containing the configured
//!    audience, `exp` present and not passed, `nbf` and `iat` not in the
//!    future (each with [`OboSettings::leeway_secs`]), `sub` non-empty, and
//!    the scopes ([`ScopeClaim`]). NumericDate claims must be non-negative
//!    integers; fractional seconds are refused rather than rounded.
//!
//! # What it does not do
//! It fetches nothing: the JWKS is given (the caller refreshes it). It does
//! not check `typ`, `azp` or token revocation; the audience is what binds a
//! token to this vault. JSON with a repeated claim or header parameter that
//! this module reads is refused; repeats of other members are ignored.
//!
//! JOSE is hand-written on `ring` rather than taken from a JWT crate because
//! the whole job is the few checks above, the classic JWT failures
//! (algorithm confusion, `none`, key injection through headers) live in
//! what such crates make configurable, and the vault already has `ring`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

/// Default cap on a token's length, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default clock-skew allowance for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// Largest JWKS document accepted, in bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys (usable or not) in a JWKS.
pub const MAX_JWKS_KEYS: usize = 64;

/// Characters of an unknown `kid` kept in the error (it is attacker-chosen).
const MAX_KID_IN_ERROR: usize = 64;
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;
const P256_COORDINATE_LEN: usize = 32;

/// Where the token's scopes are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ScopeClaim {
    /// `scope` (RFC 8693 / RFC 9068: space-separated string) or `scp`
    /// (string or array, as Okta and Entra ID issue it). Both present is
    /// accepted only if they name the same scopes.
    #[default]
    Either,
    /// Only `scope`.
    Scope,
    /// Only `scp`.
    Scp,
}

/// The configured issuer of user tokens and how to check them.
#[derive(Debug, Clone)]
pub struct OboSettings {
    /// Expected `iss`, compared exactly.
    pub issuer: String,
    /// The audience the tokens must name (this vault).
    pub audience: String,
    /// The issuer's signing keys.
    pub jwks: Jwks,
    /// Where scopes come from.
    pub scope_claim: ScopeClaim,
    /// Clock-skew allowance, seconds.
    pub leeway_secs: u64,
    /// Longest token accepted, bytes.
    pub max_token_len: usize,
}

/// The user a verified token names; becomes Cedar's `context.user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnBehalfOf {
    /// `sub`.
    pub subject: String,
    /// `iss`.
    pub issuer: String,
    /// The scopes, in token order, without duplicates.
    pub scopes: Vec<String>,
}

/// The parts of a compact JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtPart {
    /// Not three dot-separated parts.
    Structure,
    /// The protected header (base64url or JSON).
    Header,
    /// The claims (base64url or JSON object).
    Claims,
    /// The signature (base64url).
    Signature,
}

/// Why a token or JWKS was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OboError {
    /// The token is longer than the cap.
    #[error("token of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A part does not decode.
    #[error("malformed token {part:?}")]
    Malformed {
        /// Which part.
        part: JwtPart,
    },
    /// `alg` is not RS256 or ES256 (`none`, `HS256`, `PS256`, …).
    #[error("unsupported token algorithm {alg:?}")]
    UnsupportedAlg {
        /// The header's `alg` (at most 32 characters kept).
        alg: String,
    },
    /// The header has `crit`; no extension is understood.
    #[error("token header has critical extensions")]
    CriticalHeader,
    /// No key of the JWKS matches the token's `kid` (or the token has no
    /// `kid` and the JWKS has more than one key).
    #[error("no key for kid {kid:?}")]
    UnknownKey {
        /// The header's `kid` (at most 64 characters kept).
        kid: Option<String>,
    },
    /// The selected key's type does not match `alg`.
    #[error("algorithm {alg} does not match the key's type")]
    KeyAlgMismatch {
        /// The header's `alg`.
        alg: &'static str,
    },
    /// The signature does not verify.
    #[error("bad token signature")]
    BadSignature,
    /// A claim this module reads has the wrong type (or a NumericDate is
    /// negative or fractional).
    #[error("invalid claim {claim}")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// `iss` is absent or not the configured issuer.
    #[error("token from another issuer")]
    WrongIssuer,
    /// `aud` is absent or does not contain the configured audience.
    #[error("token for another audience")]
    WrongAudience,
    /// No `exp`.
    #[error("token has no expiry")]
    MissingExpiry,
    /// `exp` has passed (beyond the leeway).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// `exp`.
        exp: u64,
        /// The time checked against.
        now: u64,
    },
    /// `nbf` or `iat` is in the future (beyond the leeway).
    #[error("token not valid before {at} ({claim}; now {now})")]
    NotYetValid {
        /// `nbf` or `iat`.
        claim: &'static str,
        /// Its value.
        at: u64,
        /// The time checked against.
        now: u64,
    },
    /// `sub` is absent or empty.
    #[error("token has no subject")]
    MissingSubject,
    /// `scope` and `scp` are both present and disagree.
    #[error("scope and scp claims disagree")]
    ConflictingScopes,
    /// The JWKS document is larger than [`MAX_JWKS_BYTES`].
    #[error("JWKS of {len} bytes exceeds the {max}-byte limit")]
    JwksTooLarge {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The JWKS lists more than [`MAX_JWKS_KEYS`] keys.
    #[error("JWKS lists {count} keys, more than {max}")]
    JwksTooManyKeys {
        /// Keys listed.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// The JWKS is not a JSON object with a `keys` array of objects.
    #[error("malformed JWKS (line {line}, column {column})")]
    JwksMalformed {
        /// Where JSON parsing stopped (0 when the JSON is fine but the shape
        /// is not).
        line: usize,
        /// Likewise.
        column: usize,
    },
    /// An RS256 or ES256 key of the JWKS is unusable.
    #[error("JWKS key {kid:?}: {problem}")]
    JwksBadKey {
        /// The key's `kid`.
        kid: Option<String>,
        /// What is wrong.
        problem: KeyProblem,
    },
    /// Two usable keys share a `kid`, so the choice would be ambiguous.
    #[error("JWKS has two keys with kid {kid:?}")]
    JwksDuplicateKid {
        /// The repeated `kid`.
        kid: String,
    },
}

/// What is wrong with a JWKS key this module would otherwise use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// A required parameter is absent or not a string.
    #[error("missing or non-string parameter {name}")]
    MissingParameter {
        /// The parameter.
        name: &'static str,
    },
    /// A parameter is not unpadded base64url.
    #[error("parameter {name} is not base64url")]
    Base64 {
        /// The parameter.
        name: &'static str,
    },
    /// The RSA modulus is outside 2048..=8192 bits.
    #[error("RSA modulus of {bits} bits (2048..=8192 accepted)")]
    RsaModulusSize {
        /// Its size.
        bits: usize,
    },
    /// The RSA exponent is even, below 3 or above 2^33 − 1 (ring's range).
    #[error("RSA exponent out of range")]
    RsaExponent,
    /// A P-256 coordinate is not 32 bytes.
    #[error("P-256 coordinate {name} is not 32 bytes")]
    EcCoordinateLength {
        /// `x` or `y`.
        name: &'static str,
    },
}

/// Why a JWKS entry was skipped rather than refused: it is well-formed JOSE
/// that Keyward does not use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoredReason {
    /// `kty` other than `RSA` and `EC` (e.g. `oct`, `OKP`).
    KeyType {
        /// The `kty`.
        kty: String,
    },
    /// `alg` other than RS256 for RSA / ES256 for EC (e.g. `RS384`, `PS256`).
    Algorithm {
        /// The `alg`.
        alg: String,
    },
    /// An EC curve other than P-256.
    Curve {
        /// The `crv`.
        crv: String,
    },
    /// `use` is not `sig`, or `key_ops` lacks `verify`.
    NotForSignatures,
}

/// A JWKS entry that was skipped, kept so the operator can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    /// Its `kid`, if any.
    pub kid: Option<String>,
    /// Why.
    pub reason: IgnoredReason,
}

#[derive(Clone, PartialEq, Eq)]
enum KeyMaterial {
    /// Big-endian, leading zeros stripped.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// SEC 1 uncompressed point (0x04 ‖ x ‖ y).
    P256 { point: Vec<u8> },
}

#[derive(Clone, PartialEq, Eq)]
struct Key {
    kid: Option<String>,
    material: KeyMaterial,
}

/// The issuer's public signing keys (RFC 7517 JWK Set): RSA keys for RS256
/// (2048–8192 bits) and EC P-256 keys for ES256. Other keys are skipped and
/// listed in [`Jwks::ignored`].
#[derive(Clone, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Key>,
    ignored: Vec<IgnoredKey>,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kids: Vec<_> = self
            .keys
            .iter()
            .map(|k| {
                let kind = match k.material {
                    KeyMaterial::Rsa { .. } => "RS256",
                    KeyMaterial::P256 { .. } => "ES256",
                };
                (k.kid.as_deref(), kind)
            })
            .collect();
        f.debug_struct("Jwks")
            .field("keys", &kids)
            .field("ignored", &self.ignored)
            .finish()
    }
}

/// The JWK members this module reads; others are ignored. Deriving refuses
/// a repeated member among these.
#[derive(Deserialize)]
struct RawJwk {
    kty: Option<Value>,
    kid: Option<Value>,
    alg: Option<Value>,
    #[serde(rename = "use")]
    use_: Option<Value>,
    key_ops: Option<Value>,
    crv: Option<Value>,
    n: Option<Value>,
    e: Option<Value>,
    x: Option<Value>,
    y: Option<Value>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<Value>,
}

impl Jwks {
    /// Parses a JWK Set document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OboError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(OboError::JwksTooLarge {
                len: bytes.len(),
                max: MAX_JWKS_BYTES,
            });
        }
        let raw: RawJwks = serde_json::from_slice(bytes).map_err(|e| OboError::JwksMalformed {
            line: e.line(),
            column: e.column(),
        })?;
        if raw.keys.len() > MAX_JWKS_KEYS {
            return Err(OboError::JwksTooManyKeys {
                count: raw.keys.len(),
                max: MAX_JWKS_KEYS,
            });
        }
        let mut jwks = Self {
            keys: Vec::new(),
            ignored: Vec::new(),
        };
        for value in raw.keys {
            let jwk: RawJwk = serde_json::from_value(value)
                .map_err(|_| OboError::JwksMalformed { line: 0, column: 0 })?;
            match parse_jwk(&jwk)? {
                Ok(key) => {
                    if let Some(kid) = &key.kid
                        && jwks.keys.iter().any(|k| k.kid.as_ref() == Some(kid))
                    {
                        return Err(OboError::JwksDuplicateKid { kid: kid.clone() });
                    }
                    jwks.keys.push(key);
                }
                Err(ignored) => jwks.ignored.push(ignored),
            }
        }
        Ok(jwks)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable (every token will fail with `UnknownKey`).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The entries skipped as not for RS256/ES256 signatures.
    pub fn ignored(&self) -> &[IgnoredKey] {
        &self.ignored
    }

    fn select(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None => match self.keys.as_slice() {
                [only] => Some(only),
                _ => None,
            },
        }
    }
}

/// `Ok(Ok(key))` usable, `Ok(Err(ignored))` skipped, `Err` refused.
fn parse_jwk(jwk: &RawJwk) -> Result<Result<Key, IgnoredKey>, OboError> {
    let kid = match &jwk.kid {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => {
            return Err(bad_key(None, KeyProblem::MissingParameter { name: "kid" }));
        }
    };
    let problem = |problem| bad_key(kid.clone(), problem);
    let ignore = |reason| {
        Ok(Err(IgnoredKey {
            kid: kid.clone(),
            reason,
        }))
    };
    let string = |value: &Option<Value>, name| match value {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(problem(KeyProblem::MissingParameter { name })),
    };
    let optional_string = |value: &Option<Value>, name| match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(problem(KeyProblem::MissingParameter { name })),
    };
    let bytes = |value: &Option<Value>, name| {
        let text = string(value, name)?;
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| problem(KeyProblem::Base64 { name }))
    };

    let kty = string(&jwk.kty, "kty")?;
    let (expected_alg, is_rsa) = match kty.as_str() {
        "RSA" => ("RS256", true),
        "EC" => ("ES256", false),
        _ => return ignore(IgnoredReason::KeyType { kty }),
    };
    if let Some(alg) = optional_string(&jwk.alg, "alg")?
        && alg != expected_alg
    {
        return ignore(IgnoredReason::Algorithm { alg });
    }
    if let Some(use_) = optional_string(&jwk.use_, "use")?
        && use_ != "sig"
    {
        return ignore(IgnoredReason::NotForSignatures);
    }
    match &jwk.key_ops {
        None => {}
        Some(Value::Array(ops)) if ops.iter().any(|op| op.as_str() == Some("verify")) => {}
        Some(Value::Array(_)) => return ignore(IgnoredReason::NotForSignatures),
        Some(_) => return Err(problem(KeyProblem::MissingParameter { name: "key_ops" })),
    }

    let material = if is_rsa {
        let n = strip_leading_zeros(bytes(&jwk.n, "n")?);
        let e = strip_leading_zeros(bytes(&jwk.e, "e")?);
        let bits = bit_length(&n);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(problem(KeyProblem::RsaModulusSize { bits }));
        }
        // ring accepts 3 ≤ e ≤ 2^33 − 1, odd.
        let odd = e.last().is_some_and(|b| b & 1 == 1);
        if !odd || bit_length(&e) > 33 || e.as_slice() == [1] {
            return Err(problem(KeyProblem::RsaExponent));
        }
        KeyMaterial::Rsa { n, e }
    } else {
        let crv = string(&jwk.crv, "crv")?;
        if crv != "P-256" {
            return ignore(IgnoredReason::Curve { crv });
        }
        let x = bytes(&jwk.x, "x")?;
        let y = bytes(&jwk.y, "y")?;
        if x.len() != P256_COORDINATE_LEN {
            return Err(problem(KeyProblem::EcCoordinateLength { name: "x" }));
        }
        if y.len() != P256_COORDINATE_LEN {
            return Err(problem(KeyProblem::EcCoordinateLength { name: "y" }));
        }
        let mut point = Vec::with_capacity(1 + 2 * P256_COORDINATE_LEN);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        KeyMaterial::P256 { point }
    };
    Ok(Ok(Key { kid, material }))
}

fn bad_key(kid: Option<String>, problem: KeyProblem) -> OboError {
    OboError::JwksBadKey { kid, problem }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

/// Bit length of a big-endian integer without leading zero bytes.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(first) => {
            let top = usize::try_from(u8::BITS.saturating_sub(first.leading_zeros())).unwrap_or(8);
            bytes
                .len()
                .saturating_sub(1)
                .saturating_mul(8)
                .saturating_add(top)
        }
    }
}

/// The header parameters this module reads.
#[derive(Deserialize)]
struct Header {
    alg: Option<Value>,
    kid: Option<Value>,
    crit: Option<Value>,
}

/// The claims this module reads.
#[derive(Deserialize)]
struct Claims {
    iss: Option<Value>,
    sub: Option<Value>,
    aud: Option<Value>,
    exp: Option<Value>,
    nbf: Option<Value>,
    iat: Option<Value>,
    scope: Option<Value>,
    scp: Option<Value>,
}

#[derive(Clone, Copy)]
enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
        }
    }
}

impl OboSettings {
    /// Settings with the defaults: scopes from `scope` or `scp`, 60 s
    /// leeway, 8 KiB tokens.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, jwks: Jwks) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks,
            scope_claim: ScopeClaim::default(),
            leeway_secs: DEFAULT_LEEWAY_SECS,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }

    /// Verifies `token` at time `now` (Unix seconds) and returns the user it
    /// names. See the module docs for the checks and their order.
    pub fn verify(&self, token: &str, now: u64) -> Result<OnBehalfOf, OboError> {
        if token.len() > self.max_token_len {
            return Err(OboError::TooLong {
                len: token.len(),
                max: self.max_token_len,
            });
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(JwtPart::Structure));
        };

        let header: Header = decode_json(header_b64, JwtPart::Header)?;
        if header.crit.is_some() {
            return Err(OboError::CriticalHeader);
        }
        let alg = match &header.alg {
            Some(Value::String(alg)) if alg == "RS256" => Alg::Rs256,
            Some(Value::String(alg)) if alg == "ES256" => Alg::Es256,
            Some(Value::String(alg)) => {
                return Err(OboError::UnsupportedAlg {
                    alg: alg.chars().take(32).collect(),
                });
            }
            _ => return Err(malformed(JwtPart::Header)),
        };
        let kid = match &header.kid {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(malformed(JwtPart::Header)),
        };
        let key = self.jwks.select(kid).ok_or_else(|| OboError::UnknownKey {
            kid: kid.map(|kid| kid.chars().take(MAX_KID_IN_ERROR).collect()),
        })?;

        let signature = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(signature_b64)
                .map_err(|_| malformed(JwtPart::Signature))?,
        );
        // The signing input is the two encoded parts as sent (RFC 7515 §5.2).
        let signed_len = header_b64
            .len()
            .saturating_add(1)
            .saturating_add(claims_b64.len());
        let signing_input = token
            .as_bytes()
            .get(..signed_len)
            .ok_or(malformed(JwtPart::Structure))?;
        let verified = match (alg, &key.material) {
            (Alg::Rs256, KeyMaterial::Rsa { n, e }) => RsaPublicKeyComponents { n, e }
                .verify(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    signing_input,
                    &signature,
                )
                .is_ok(),
            (Alg::Es256, KeyMaterial::P256 { point }) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(signing_input, &signature)
                    .is_ok()
            }
            (alg, _) => return Err(OboError::KeyAlgMismatch { alg: alg.name() }),
        };
        if !verified {
            return Err(OboError::BadSignature);
        }

        let claims: Claims = decode_json(claims_b64, JwtPart::Claims)?;
        self.check_claims(&claims, now)
    }

    fn check_claims(&self, claims: &Claims, now: u64) -> Result<OnBehalfOf, OboError> {
        match &claims.iss {
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(Value::String(_)) | None => return Err(OboError::WrongIssuer),
            Some(_) => return Err(OboError::InvalidClaim { claim: "iss" }),
        }
        let audience_matches = match &claims.aud {
            None => false,
            Some(Value::String(aud)) => *aud == self.audience,
            Some(Value::Array(auds)) => {
                let mut matches = false;
                for aud in auds {
                    match aud {
                        Value::String(aud) => matches |= *aud == self.audience,
                        _ => return Err(OboError::InvalidClaim { claim: "aud" }),
                    }
                }
                matches
            }
            Some(_) => return Err(OboError::InvalidClaim { claim: "aud" }),
        };
        if !audience_matches {
            return Err(OboError::WrongAudience);
        }
        let exp = numeric_date(&claims.exp, "exp")?.ok_or(OboError::MissingExpiry)?;
        if exp.saturating_add(self.leeway_secs) <= now {
            return Err(OboError::Expired { exp, now });
        }
        let latest_start = now.saturating_add(self.leeway_secs);
        for (value, claim) in [(&claims.nbf, "nbf"), (&claims.iat, "iat")] {
            if let Some(at) = numeric_date(value, claim)?
                && at > latest_start
            {
                return Err(OboError::NotYetValid { claim, at, now });
            }
        }
        let subject = match &claims.sub {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            Some(Value::String(_)) | None => return Err(OboError::MissingSubject),
            Some(_) => return Err(OboError::InvalidClaim { claim: "sub" }),
        };
        let scopes = self.scopes(claims)?;
        Ok(OnBehalfOf {
            subject,
            issuer: self.issuer.clone(),
            scopes,
        })
    }

    fn scopes(&self, claims: &Claims) -> Result<Vec<String>, OboError> {
        let scope = match self.scope_claim {
            ScopeClaim::Scp => None,
            _ => scope_list(&claims.scope, "scope", false)?,
        };
        let scp = match self.scope_claim {
            ScopeClaim::Scope => None,
            _ => scope_list(&claims.scp, "scp", true)?,
        };
        match (scope, scp) {
            (Some(scope), Some(scp)) => {
                let mut a = scope.clone();
                let mut b = scp;
                a.sort();
                b.sort();
                if a == b {
                    Ok(scope)
                } else {
                    Err(OboError::ConflictingScopes)
                }
            }
            (Some(list), None) | (None, Some(list)) => Ok(list),
            (None, None) => Ok(Vec::new()),
        }
    }
}

fn malformed(part: JwtPart) -> OboError {
    OboError::Malformed { part }
}

/// Decodes one part. The buffer is wiped afterwards: with the others it
/// would rebuild the user's bearer token.
fn decode_json<T: for<'de> Deserialize<'de>>(b64: &str, part: JwtPart) -> Result<T, OboError> {
    let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(b64).map_err(|_| malformed(part))?);
    serde_json::from_slice(&bytes).map_err(|_| malformed(part))
}

/// RFC 7519 §2 NumericDate, restricted to non-negative integers.
fn numeric_date(value: &Option<Value>, claim: &'static str) -> Result<Option<u64>, OboError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or(OboError::InvalidClaim { claim }),
        Some(_) => Err(OboError::InvalidClaim { claim }),
    }
}

/// A space-separated string, or (where `array_allowed`) an array of strings;
/// duplicates dropped, order kept.
fn scope_list(
    value: &Option<Value>,
    claim: &'static str,
    array_allowed: bool,
) -> Result<Option<Vec<String>>, OboError> {
    let items: Vec<&str> = match value {
        None => return Ok(None),
        Some(Value::String(s)) => s.split(' ').filter(|s| !s.is_empty()).collect(),
        Some(Value::Array(items)) if array_allowed => items
            .iter()
            .map(|v| v.as_str().ok_or(OboError::InvalidClaim { claim }))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(OboError::InvalidClaim { claim }),
    };
    let mut scopes: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !scopes.iter().any(|s| s == item) {
            scopes.push(item.to_owned());
        }
    }
    Ok(Some(scopes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair as _, RsaKeyPair};
    use serde_json::json;
    use std::sync::OnceLock;

    const ISSUER: &str = "https://idp.example";
    const AUDIENCE: &str = "https://vault.example";
    const NOW: u64 = 1_800_000_000;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    struct Keys {
        ec_pkcs8: Vec<u8>,
        rsa_pkcs8: Vec<u8>,
    }

    /// One EC key (ring) and one RSA-2048 key (openssl), shared by all tests.
    fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let rng = SystemRandom::new();
            let ec_pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .unwrap()
                    .as_ref()
                    .to_vec();
            let dir = tempfile::tempdir().unwrap();
            let pem = dir.path().join("rsa.pem");
            let der = dir.path().join("rsa.p8.der");
            let openssl = |args: &[&std::ffi::OsStr]| {
                let status = std::process::Command::new("openssl")
                    .args(args)
                    .stderr(std::process::Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success(), "openssl {args:?}");
            };
            // genpkey writes PKCS#8 as PEM (its DER output is PKCS#1); pkcs8
            // converts to the PKCS#8 DER ring reads.
            openssl(&[
                "genpkey".as_ref(),
                "-algorithm".as_ref(),
                "RSA".as_ref(),
                "-pkeyopt".as_ref(),
                "rsa_keygen_bits:2048".as_ref(),
                "-out".as_ref(),
                pem.as_os_str(),
            ]);
            openssl(&[
                "pkcs8".as_ref(),
                "-topk8".as_ref(),
                "-nocrypt".as_ref(),
                "-in".as_ref(),
                pem.as_os_str(),
                "-outform".as_ref(),
                "DER".as_ref(),
                "-out".as_ref(),
                der.as_os_str(),
            ]);
            let rsa_pkcs8 = std::fs::read(&der).unwrap();
            Keys {
                ec_pkcs8,
                rsa_pkcs8,
            }
        })
    }

    fn ec_key() -> EcdsaKeyPair {
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &keys().ec_pkcs8,
            &SystemRandom::new(),
        )
        .unwrap()
    }

    fn rsa_key() -> RsaKeyPair {
        RsaKeyPair::from_pkcs8(&keys().rsa_pkcs8).unwrap()
    }

    fn ec_jwk(kid: &str) -> Value {
        let point = ec_key().public_key().as_ref().to_vec();
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
               "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    fn rsa_jwk(kid: &str) -> Value {
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(rsa_key().public());
        json!({"kty": "RSA", "kid": kid, "alg": "RS256", "n": b64(&public.n), "e": b64(&public.e)})
    }

    fn jwks_of(keys: Vec<Value>) -> Jwks {
        Jwks::from_json(json!({ "keys": keys }).to_string().as_bytes()).unwrap()
    }

    fn settings() -> OboSettings {
        OboSettings::new(
            ISSUER,
            AUDIENCE,
            jwks_of(vec![ec_jwk("ec-1"), rsa_jwk("rsa-1")]),
        )
    }

    fn claims() -> Value {
        json!({"iss": ISSUER, "sub": "alice", "aud": [AUDIENCE, "other"],
               "exp": NOW + 300, "nbf": NOW - 10, "iat": NOW - 10,
               "scope": "openid db:read db:read"})
    }

    fn encode(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        )
    }

    fn sign_es256(header: &Value, claims: &Value) -> String {
        let input = encode(header, claims);
        let sig = ec_key()
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    fn sign_rs256(header: &Value, claims: &Value) -> String {
        let input = encode(header, claims);
        let key = rsa_key();
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", b64(&sig))
    }

    fn es(claims: &Value) -> String {
        sign_es256(
            &json!({"alg": "ES256", "kid": "ec-1", "typ": "JWT"}),
            claims,
        )
    }

    fn with(claim: &str, value: Value) -> Value {
        let mut c = claims();
        c[claim] = value;
        c
    }

    fn without(claim: &str) -> Value {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(claim);
        c
    }

    fn expected_user() -> OnBehalfOf {
        OnBehalfOf {
            subject: "alice".into(),
            issuer: ISSUER.into(),
            scopes: vec!["openid".into(), "db:read".into()],
        }
    }

    #[test]
    fn es256_good_and_flipped_signature() {
        let s = settings();
        let token = es(&claims());
        assert_eq!(s.verify(&token, NOW).unwrap(), expected_user());
        // Flip one bit of the signature (decoded, so the base64 stays canonical).
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig[10] ^= 1;
        let tampered = format!("{input}.{}", b64(&sig));
        assert_eq!(s.verify(&tampered, NOW), Err(OboError::BadSignature));
        // Tampered claims under the original signature.
        let other = es(&with("sub", json!("mallory")));
        let forged = format!(
            "{}.{}.{}",
            token.split('.').next().unwrap(),
            other.split('.').nth(1).unwrap(),
            token.split('.').nth(2).unwrap()
        );
        assert_eq!(s.verify(&forged, NOW), Err(OboError::BadSignature));
    }

    #[test]
    fn rs256_good_and_flipped_signature() {
        let s = settings();
        let token = sign_rs256(&json!({"alg": "RS256", "kid": "rsa-1"}), &claims());
        assert_eq!(s.verify(&token, NOW).unwrap(), expected_user());
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        sig[100] ^= 0x80;
        assert_eq!(
            s.verify(&format!("{input}.{}", b64(&sig)), NOW),
            Err(OboError::BadSignature)
        );
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        let s = settings();
        let none = format!("{}.", encode(&json!({"alg": "none"}), &claims()));
        assert_eq!(
            s.verify(&none, NOW),
            Err(OboError::UnsupportedAlg { alg: "none".into() })
        );
        // HS256 keyed with the RSA public key (the classic confusion attack).
        let public = rsa_key().public().as_ref().to_vec();
        let header = json!({"alg": "HS256", "kid": "rsa-1"});
        let input = encode(&header, &claims());
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public),
            input.as_bytes(),
        );
        let hs = format!("{input}.{}", b64(mac.as_ref()));
        assert_eq!(
            s.verify(&hs, NOW),
            Err(OboError::UnsupportedAlg {
                alg: "HS256".into()
            })
        );
        // Control: the same claims properly signed verify.
        assert!(s.verify(&es(&claims()), NOW).is_ok());
    }

    #[test]
    fn alg_and_key_type_must_match() {
        let s = settings();
        // An ES256 token pointing at the RSA key, and the reverse.
        let token = sign_es256(&json!({"alg": "ES256", "kid": "rsa-1"}), &claims());
        assert_eq!(
            s.verify(&token, NOW),
            Err(OboError::KeyAlgMismatch { alg: "ES256" })
        );
        let token = sign_rs256(&json!({"alg": "RS256", "kid": "ec-1"}), &claims());
        assert_eq!(
            s.verify(&token, NOW),
            Err(OboError::KeyAlgMismatch { alg: "RS256" })
        );
    }

    #[test]
    fn kid_selects_the_key() {
        let s = settings();
        let token = sign_es256(&json!({"alg": "ES256", "kid": "nope"}), &claims());
        assert_eq!(
            s.verify(&token, NOW),
            Err(OboError::UnknownKey {
                kid: Some("nope".into())
            })
        );
        // No kid: refused with two keys, accepted with exactly one.
        let no_kid = sign_es256(&json!({"alg": "ES256"}), &claims());
        assert_eq!(
            s.verify(&no_kid, NOW),
            Err(OboError::UnknownKey { kid: None })
        );
        let single = OboSettings::new(ISSUER, AUDIENCE, jwks_of(vec![ec_jwk("ec-1")]));
        assert_eq!(single.verify(&no_kid, NOW).unwrap(), expected_user());
        // A header key (jwk / jku) is never used.
        let attacker = sign_es256(
            &json!({"alg": "ES256", "kid": "nope", "jwk": ec_jwk("nope"), "jku": "https://evil"}),
            &claims(),
        );
        assert!(matches!(
            single.verify(&attacker, NOW),
            Err(OboError::UnknownKey { .. })
        ));
        // crit is refused.
        let crit = sign_es256(
            &json!({"alg": "ES256", "kid": "ec-1", "crit": ["exp"]}),
            &claims(),
        );
        assert_eq!(s.verify(&crit, NOW), Err(OboError::CriticalHeader));
    }

    #[test]
    fn issuer_and_audience() {
        let s = settings();
        assert_eq!(
            s.verify(&es(&with("iss", json!("https://idp.example/"))), NOW),
            Err(OboError::WrongIssuer)
        );
        assert_eq!(
            s.verify(&es(&without("iss")), NOW),
            Err(OboError::WrongIssuer)
        );
        assert_eq!(
            s.verify(&es(&with("aud", json!("https://other.example"))), NOW),
            Err(OboError::WrongAudience)
        );
        assert_eq!(
            s.verify(&es(&without("aud")), NOW),
            Err(OboError::WrongAudience)
        );
        assert_eq!(
            s.verify(&es(&with("aud", json!([1]))), NOW),
            Err(OboError::InvalidClaim { claim: "aud" })
        );
        // aud as a single string is accepted.
        assert!(s.verify(&es(&with("aud", json!(AUDIENCE))), NOW).is_ok());
    }

    #[test]
    fn expiry_and_not_before() {
        let s = settings();
        assert_eq!(
            s.verify(&es(&without("exp")), NOW),
            Err(OboError::MissingExpiry)
        );
        let exp = NOW - 61;
        assert_eq!(
            s.verify(&es(&with("exp", json!(exp))), NOW),
            Err(OboError::Expired { exp, now: NOW })
        );
        // Within the leeway.
        assert!(s.verify(&es(&with("exp", json!(NOW - 59))), NOW).is_ok());
        let nbf = NOW + 61;
        assert_eq!(
            s.verify(&es(&with("nbf", json!(nbf))), NOW),
            Err(OboError::NotYetValid {
                claim: "nbf",
                at: nbf,
                now: NOW
            })
        );
        assert_eq!(
            s.verify(&es(&with("iat", json!(nbf))), NOW),
            Err(OboError::NotYetValid {
                claim: "iat",
                at: nbf,
                now: NOW
            })
        );
        assert!(s.verify(&es(&with("nbf", json!(NOW + 59))), NOW).is_ok());
        for bad in [json!(1.5), json!(-1), json!("1800000000")] {
            assert_eq!(
                s.verify(&es(&with("exp", bad)), NOW),
                Err(OboError::InvalidClaim { claim: "exp" })
            );
        }
    }

    #[test]
    fn subject_required() {
        let s = settings();
        assert_eq!(
            s.verify(&es(&without("sub")), NOW),
            Err(OboError::MissingSubject)
        );
        assert_eq!(
            s.verify(&es(&with("sub", json!(""))), NOW),
            Err(OboError::MissingSubject)
        );
    }

    #[test]
    fn scopes_from_scope_or_scp() {
        let mut s = settings();
        let scp_array = es(&{
            let mut c = without("scope");
            c["scp"] = json!(["db:read", "openid"]);
            c
        });
        assert_eq!(
            s.verify(&scp_array, NOW).unwrap().scopes,
            vec!["db:read", "openid"]
        );
        let scp_string = es(&{
            let mut c = without("scope");
            c["scp"] = json!("db:read  openid");
            c
        });
        assert_eq!(
            s.verify(&scp_string, NOW).unwrap().scopes,
            vec!["db:read", "openid"]
        );
        let conflicting = es(&with("scp", json!(["db:admin"])));
        assert_eq!(
            s.verify(&conflicting, NOW),
            Err(OboError::ConflictingScopes)
        );
        let agreeing = es(&with("scp", json!(["db:read", "openid"])));
        assert_eq!(s.verify(&agreeing, NOW).unwrap(), expected_user());
        // `scope` must be a string.
        assert_eq!(
            s.verify(&es(&with("scope", json!(["db:read"]))), NOW),
            Err(OboError::InvalidClaim { claim: "scope" })
        );
        // Restricted to `scope`: `scp` is not read.
        s.scope_claim = ScopeClaim::Scope;
        assert_eq!(
            s.verify(&scp_array, NOW).unwrap().scopes,
            Vec::<String>::new()
        );
        s.scope_claim = ScopeClaim::Scp;
        assert_eq!(
            s.verify(&es(&claims()), NOW).unwrap().scopes,
            Vec::<String>::new()
        );
    }

    #[test]
    fn malformed_tokens() {
        let s = settings();
        let token = es(&claims());
        let too_long = "a".repeat(DEFAULT_MAX_TOKEN_LEN + 1);
        assert_eq!(
            s.verify(&too_long, NOW),
            Err(OboError::TooLong {
                len: DEFAULT_MAX_TOKEN_LEN + 1,
                max: DEFAULT_MAX_TOKEN_LEN
            })
        );
        let structure = Err(OboError::Malformed {
            part: JwtPart::Structure,
        });
        assert_eq!(s.verify("a.b", NOW), structure);
        assert_eq!(s.verify(&format!("{token}.x.y"), NOW), structure);
        assert_eq!(
            s.verify(
                &format!("!!.{}", &token[token.find('.').unwrap() + 1..]),
                NOW
            ),
            Err(OboError::Malformed {
                part: JwtPart::Header
            })
        );
        // Padding is not base64url as JWS uses it.
        let (input, sig) = token.rsplit_once('.').unwrap();
        assert_eq!(
            s.verify(&format!("{input}.{sig}=="), NOW),
            Err(OboError::Malformed {
                part: JwtPart::Signature
            })
        );
        // A signed token whose claims are not JSON.
        let input = format!(
            "{}.{}",
            b64(br#"{"alg":"ES256","kid":"ec-1"}"#),
            b64(b"not json")
        );
        let sig = ec_key()
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        assert_eq!(
            s.verify(&format!("{input}.{}", b64(sig.as_ref())), NOW),
            Err(OboError::Malformed {
                part: JwtPart::Claims
            })
        );
        // A repeated claim is refused, not resolved.
        let input = format!(
            "{}.{}",
            b64(br#"{"alg":"ES256","kid":"ec-1"}"#),
            b64(br#"{"sub":"alice","sub":"root"}"#)
        );
        let sig = ec_key()
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        assert_eq!(
            s.verify(&format!("{input}.{}", b64(sig.as_ref())), NOW),
            Err(OboError::Malformed {
                part: JwtPart::Claims
            })
        );
    }

    #[test]
    fn truncations_and_bit_flips_never_panic_nor_verify() {
        let s = settings();
        for token in [
            es(&claims()),
            sign_rs256(&json!({"alg": "RS256", "kid": "rsa-1"}), &claims()),
        ] {
            assert!(s.verify(&token, NOW).is_ok());
            for len in 0..token.len() {
                assert!(s.verify(&token[..len], NOW).is_err(), "prefix {len}");
            }
            let bytes = token.as_bytes();
            for i in 0..bytes.len() {
                let mut flipped = bytes.to_vec();
                flipped[i] ^= 0x01;
                if let Ok(text) = std::str::from_utf8(&flipped) {
                    // Flipping a base64 character can land on a character
                    // that decodes to the same bytes only in the last
                    // position of a part (unused low bits), which is refused
                    // as non-canonical; nothing else can verify.
                    assert!(s.verify(text, NOW).is_err(), "flip at {i}");
                }
            }
        }
    }

    #[test]
    fn jwks_parsing() {
        let ignored = Jwks::from_json(
            json!({"keys": [
                ec_jwk("ec-1"),
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
                {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
                {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"},
                {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
                {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            ]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(ignored.len(), 1);
        let reasons: Vec<_> = ignored.ignored().iter().map(|i| i.reason.clone()).collect();
        assert_eq!(
            reasons,
            vec![
                IgnoredReason::KeyType { kty: "oct".into() },
                IgnoredReason::KeyType { kty: "OKP".into() },
                IgnoredReason::Algorithm {
                    alg: "PS256".into()
                },
                IgnoredReason::Curve {
                    crv: "P-384".into()
                },
                IgnoredReason::NotForSignatures,
            ]
        );

        let parse = |v: Value| Jwks::from_json(v.to_string().as_bytes());
        assert_eq!(
            parse(json!({"keys": [ec_jwk("a"), rsa_jwk("a")]})),
            Err(OboError::JwksDuplicateKid { kid: "a".into() })
        );
        // A 1024-bit RSA key is refused.
        let mut weak = rsa_jwk("weak");
        weak["n"] = json!(b64(&[0xff; 128]));
        assert_eq!(
            parse(json!({"keys": [weak]})),
            Err(OboError::JwksBadKey {
                kid: Some("weak".into()),
                problem: KeyProblem::RsaModulusSize { bits: 1024 }
            })
        );
        // Leading zero bytes do not count towards the size.
        let mut padded = rsa_jwk("padded");
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(rsa_key().public());
        padded["n"] = json!(b64(&[&[0u8][..], &public.n].concat()));
        assert_eq!(parse(json!({"keys": [padded]})).unwrap().len(), 1);
        let mut even = rsa_jwk("even");
        even["e"] = json!(b64(&[2]));
        assert!(matches!(
            parse(json!({"keys": [even]})),
            Err(OboError::JwksBadKey {
                problem: KeyProblem::RsaExponent,
                ..
            })
        ));
        let mut short = ec_jwk("short");
        short["y"] = json!(b64(&[1; 31]));
        assert_eq!(
            parse(json!({"keys": [short]})),
            Err(OboError::JwksBadKey {
                kid: Some("short".into()),
                problem: KeyProblem::EcCoordinateLength { name: "y" }
            })
        );
        let mut bad_b64 = ec_jwk("b");
        bad_b64["x"] = json!("+/+/");
        assert!(matches!(
            parse(json!({"keys": [bad_b64]})),
            Err(OboError::JwksBadKey {
                problem: KeyProblem::Base64 { name: "x" },
                ..
            })
        ));
        let mut missing = rsa_jwk("m");
        missing.as_object_mut().unwrap().remove("e");
        assert!(matches!(
            parse(json!({"keys": [missing]})),
            Err(OboError::JwksBadKey {
                problem: KeyProblem::MissingParameter { name: "e" },
                ..
            })
        ));
        let many: Vec<Value> = (0..=MAX_JWKS_KEYS)
            .map(|i| ec_jwk(&i.to_string()))
            .collect();
        assert_eq!(
            parse(json!({ "keys": many })),
            Err(OboError::JwksTooManyKeys {
                count: MAX_JWKS_KEYS + 1,
                max: MAX_JWKS_KEYS
            })
        );
        let huge = vec![b' '; MAX_JWKS_BYTES + 1];
        assert_eq!(
            Jwks::from_json(&huge),
            Err(OboError::JwksTooLarge {
                len: MAX_JWKS_BYTES + 1,
                max: MAX_JWKS_BYTES
            })
        );
        assert!(matches!(
            Jwks::from_json(b"{\"keys\": 1}"),
            Err(OboError::JwksMalformed { .. })
        ));
        assert!(matches!(
            Jwks::from_json(b"{\"keys\": [1]}"),
            Err(OboError::JwksMalformed { .. })
        ));
        assert!(matches!(
            Jwks::from_json(b""),
            Err(OboError::JwksMalformed { .. })
        ));
        // Empty set: valid, and no token verifies.
        let empty = Jwks::from_json(b"{\"keys\": []}").unwrap();
        assert!(empty.is_empty());
        let s = OboSettings::new(ISSUER, AUDIENCE, empty);
        assert_eq!(
            s.verify(&es(&claims()), NOW),
            Err(OboError::UnknownKey {
                kid: Some("ec-1".into())
            })
        );
    }

    #[test]
    fn jwks_truncations_never_panic() {
        let text = json!({"keys": [ec_jwk("ec-1"), rsa_jwk("rsa-1")]}).to_string();
        for len in 0..text.len() {
            let _ = Jwks::from_json(&text.as_bytes()[..len]);
        }
    }
}

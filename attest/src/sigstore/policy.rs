//! Signing policy: who may sign which kind of artifact, and what they must sign.
//!
//! The vault stores one policy per artifact kind as JSON. Deserialising a
//! [`SigningPolicy`] validates it completely (unknown fields, regexes, PEM keys
//! and CA certificates, predicate types for the kind), so a stored policy that
//! loads is a policy that can be enforced.
//!
//! ```json
//! {
//!   "kind": "image",
//!   "predicate_types": ["https://sigstore.dev/cosign/sign/v1"],
//!   "identities": [{
//!     "issuer": "https://token.actions.githubusercontent.com",
//!     "subject_regex": "https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/tags/v.*",
//!     "github": { "repository": "acme/app", "ref": "refs/tags/v1.2.3" }
//!   }],
//!   "keys": [{ "key_id": "release-2025", "public_key": "-----BEGIN PUBLIC KEY-----\n…" }]
//! }
//! ```

use serde::{Deserialize, Serialize};

use super::dsse::parse_sha256_hex;
use super::verified::CertificateClaims;

/// Largest policy document accepted by [`SigningPolicy::from_json`], in bytes.
pub const MAX_POLICY_LEN: usize = 256 * 1024;

/// Most keyless identities a policy may allow.
pub const MAX_IDENTITIES: usize = 64;

/// Most managed keys a policy may list (each may be tried in turn).
pub const MAX_MANAGED_KEYS: usize = 32;

/// Most certificates across a model policy's certificate authorities.
pub const MAX_CA_CERTIFICATES: usize = 32;

/// Longest `subject_regex` accepted, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;

/// Compiled size limit of one identity regex (the `regex` crate's own
/// bound on program size, which bounds matching work too).
const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Longest key id or CA id.
const MAX_ID_LEN: usize = 128;

/// Longest issuer, subject, docker reference or GitHub claim value.
const MAX_VALUE_LEN: usize = 2048;

/// Largest PEM text of one key or one CA bundle.
const MAX_PEM_LEN: usize = 64 * 1024;

/// The cosign v3 image signature predicate (cosign `sign` since v3 writes a
/// DSSE in-toto statement of this type over the manifest digest).
pub const PREDICATE_COSIGN_SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";

/// Legacy cosign / containers-image "simple signing" image signatures. Not
/// an in-toto predicate: the media type of the `sha256-<hex>.sig` layer,
/// used here as the format's name.
pub const PREDICATE_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// The OpenSSF model-signing predicate (model-signing v1.0 and later).
pub const PREDICATE_MODEL_SIGNING_V1: &str = "https://model_signing/signature/v1.0";

/// The kind of artifact a policy governs and a verification establishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ArtifactKind {
    /// A container image, identified by its manifest digest.
    Image,
    /// A model version, identified by its model-signing root digest.
    Model,
    /// Any blob (the `keyward debug verify-bundle` command). The vault never
    /// registers blobs.
    Blob,
}

/// Why a policy document was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The document is larger than [`MAX_POLICY_LEN`].
    #[error("policy is {len} bytes, at most {max} accepted")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The document is not JSON of the policy's shape (unknown fields included).
    #[error("policy JSON at line {line}, column {column}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The policy allows no signer at all.
    #[error("policy allows no identity, key or certificate authority")]
    NoSigners,
    /// A list is longer than its cap.
    #[error("policy lists {count} {what}, at most {max} accepted")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Entries given.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// An image or model policy pins no predicate type.
    #[error("policy pins no predicate type")]
    NoPredicateType,
    /// A predicate type is not valid for the policy's artifact kind.
    #[error("predicate type {predicate_type:?} is not valid for {kind:?} artifacts")]
    PredicateTypeForKind {
        /// The predicate type.
        predicate_type: String,
        /// The policy's kind.
        kind: ArtifactKind,
    },
    /// A field is set that the policy's artifact kind does not use.
    #[error("{field} is not valid in a {kind:?} policy")]
    FieldForKind {
        /// The field.
        field: &'static str,
        /// The policy's kind.
        kind: ArtifactKind,
    },
    /// A string value is empty or too long (index of the entry, from 0).
    #[error("{field} of entry {index} is empty or longer than allowed")]
    BadValue {
        /// The field.
        field: &'static str,
        /// The entry.
        index: usize,
    },
    /// An identity sets both or neither of `subject` and `subject_regex`.
    #[error("identity {index} must set exactly one of subject and subject_regex")]
    SubjectNotExactlyOne {
        /// The entry.
        index: usize,
    },
    /// A `subject_regex` does not compile (or exceeds the size limit).
    #[error("identity {index}: subject_regex does not compile")]
    BadRegex {
        /// The entry.
        index: usize,
    },
    /// A `github` block is empty or has a malformed value.
    #[error("identity {index}: github.{field} is malformed")]
    BadGithubClaim {
        /// The entry.
        index: usize,
        /// The claim.
        field: &'static str,
    },
    /// Two keys or two CAs share an id.
    #[error("duplicate id {id:?}")]
    DuplicateId {
        /// The id.
        id: String,
    },
    /// A public key is not one PEM `PUBLIC KEY` block of a supported key type.
    #[error("key {key_id:?} is not a supported PEM public key")]
    BadPublicKey {
        /// The key's id.
        key_id: String,
    },
    /// A CA bundle is not PEM certificates with at least one self-signed root.
    #[error("certificate authority {ca_id:?} is not a PEM bundle with a self-signed root")]
    BadCertificateAuthority {
        /// The CA's id.
        ca_id: String,
    },
    /// The same predicate type is listed twice.
    #[error("predicate type {predicate_type:?} listed twice")]
    DuplicatePredicateType {
        /// The predicate type.
        predicate_type: String,
    },
}

/// How a keyless identity's certificate SAN must match.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SubjectMatcher {
    /// Equal to this string (email or URI SAN).
    Exact(String),
    /// Matches this pattern as a whole (anchored with `\A(?:…)\z`).
    Regex(regex::Regex),
}

impl SubjectMatcher {
    fn matches(&self, subject: &str) -> bool {
        match self {
            Self::Exact(expected) => expected == subject,
            Self::Regex(regex) => regex.is_match(subject),
        }
    }
}

/// GitHub Actions claims a keyless certificate must carry (Fulcio OIDs
/// 1.3.6.1.4.1.57264.1.12/.14/.13, falling back to the deprecated
/// .1.5/.1.6/.1.3 on certificates that predate them).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GithubClaims {
    /// `owner/repository`.
    pub repository: Option<String>,
    /// The git ref, e.g. `refs/tags/v1.2.3`.
    pub git_ref: Option<String>,
    /// The commit SHA the workflow ran at (40 lower-case hex digits).
    pub workflow_sha: Option<String>,
}

impl GithubClaims {
    fn matches(&self, claims: &CertificateClaims) -> bool {
        // Fulcio docs/oid-info.md: .1.12 Source Repository URI supersedes
        // .1.5 GitHub Workflow Repository (owner/repo), .1.14 Source
        // Repository Ref supersedes .1.6, .1.13 Source Repository Digest
        // supersedes .1.3 GitHub Workflow SHA. A certificate carrying the new
        // claim is judged by it alone.
        let repository_ok =
            self.repository
                .as_ref()
                .is_none_or(|want| match &claims.source_repository_uri {
                    Some(uri) => *uri == format!("https://github.com/{want}"),
                    None => claims.github_workflow_repository.as_ref() == Some(want),
                });
        let ref_ok = self.git_ref.as_ref().is_none_or(|want| {
            claims
                .source_repository_ref
                .as_ref()
                .or(claims.github_workflow_ref.as_ref())
                .is_some_and(|have| have == want)
        });
        let sha_ok = self.workflow_sha.as_ref().is_none_or(|want| {
            claims
                .source_repository_digest
                .as_ref()
                .or(claims.github_workflow_sha.as_ref())
                .is_some_and(|have| have == want)
        });
        repository_ok && ref_ok && sha_ok
    }
}

/// One allowed keyless (Fulcio certificate) signer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeylessIdentity {
    /// The OIDC issuer, exactly.
    pub issuer: String,
    /// How the SAN must match.
    pub subject: SubjectMatcher,
    /// GitHub claims that must also hold, if any.
    pub github: Option<GithubClaims>,
}

impl KeylessIdentity {
    pub(crate) fn matches(&self, subject: &str, issuer: &str, claims: &CertificateClaims) -> bool {
        self.issuer == issuer
            && self.subject.matches(subject)
            && self
                .github
                .as_ref()
                .is_none_or(|github| github.matches(claims))
    }
}

/// One managed signing key.
#[derive(Debug, Clone)]
pub struct ManagedKey {
    key_id: String,
    spki_der: Vec<u8>,
    pem_sha256: [u8; 32],
}

impl ManagedKey {
    /// The operator's name for this key.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key as DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// SHA-256 of the key's canonical PEM encoding: the public-key hint
    /// model-signing 1.1 writes into its bundles.
    pub(crate) fn pem_sha256(&self) -> &[u8; 32] {
        &self.pem_sha256
    }

    pub(crate) fn from_pem(key_id: &str, pem: &str) -> Option<Self> {
        if pem.len() > MAX_PEM_LEN {
            return None;
        }
        let mut blocks = pem_blocks(pem, "PUBLIC KEY")?;
        let spki_der = blocks.pop().filter(|_| blocks.is_empty())?;
        let der = sigstore_types::DerPublicKey::new(spki_der.clone());
        sigstore_verify::crypto::KeyAlgorithm::from_spki(&der).ok()?;
        let pem_sha256 = sha256(canonical_pem("PUBLIC KEY", &spki_der).as_bytes());
        Some(Self {
            key_id: key_id.to_string(),
            spki_der,
            pem_sha256,
        })
    }
}

/// A certificate authority trusted for model-signing certificate mode.
#[derive(Debug, Clone)]
pub struct ModelCa {
    ca_id: String,
    roots: Vec<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
}

impl ModelCa {
    /// The operator's name for this CA.
    pub fn ca_id(&self) -> &str {
        &self.ca_id
    }

    /// Self-signed certificates (trust anchors), DER.
    pub(crate) fn roots(&self) -> &[Vec<u8>] {
        &self.roots
    }

    /// Other certificates of the bundle (chain building only), DER.
    pub(crate) fn intermediates(&self) -> &[Vec<u8>] {
        &self.intermediates
    }
}

/// A validated signing policy for one artifact kind.
#[derive(Debug, Clone)]
pub struct SigningPolicy {
    kind: ArtifactKind,
    predicate_types: Vec<String>,
    identities: Vec<KeylessIdentity>,
    keys: Vec<ManagedKey>,
    cas: Vec<ModelCa>,
    docker_reference: Option<String>,
    document: PolicyDocument,
}

impl SigningPolicy {
    /// Parses and validates a policy document (JSON, unknown fields rejected).
    pub fn from_json(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() > MAX_POLICY_LEN {
            return Err(PolicyError::TooLarge {
                len: bytes.len(),
                max: MAX_POLICY_LEN,
            });
        }
        let document: PolicyDocument =
            serde_json::from_slice(bytes).map_err(|e| PolicyError::Json {
                line: e.line(),
                column: e.column(),
            })?;
        Self::try_from(document)
    }

    /// The policy as JSON, as it was given (normalised by serde).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.document).unwrap_or_default()
    }

    /// A blob policy for one keyless identity (the debug CLI's
    /// `--certificate-identity`/`--certificate-oidc-issuer`).
    pub fn blob_identity(subject: &str, issuer: &str) -> Result<Self, PolicyError> {
        Self::try_from(PolicyDocument {
            kind: ArtifactKind::Blob,
            identities: vec![IdentityDocument {
                issuer: issuer.to_string(),
                subject: Some(subject.to_string()),
                subject_regex: None,
                github: None,
            }],
            ..PolicyDocument::empty(ArtifactKind::Blob)
        })
    }

    /// A blob policy for one managed key (the debug CLI's `--key`).
    pub fn blob_key(key_id: &str, public_key_pem: &str) -> Result<Self, PolicyError> {
        Self::try_from(PolicyDocument {
            keys: vec![KeyDocument {
                key_id: key_id.to_string(),
                public_key: public_key_pem.to_string(),
            }],
            ..PolicyDocument::empty(ArtifactKind::Blob)
        })
    }

    /// A model policy (predicate pinned to model signing v1.0) for one
    /// keyless identity, one key or one CA bundle: the debug CLI's
    /// `verify-model` options.
    pub fn model_policy(
        identity: Option<(&str, &str)>,
        public_key_pem: Option<&str>,
        ca_pem: Option<&str>,
    ) -> Result<Self, PolicyError> {
        Self::try_from(PolicyDocument {
            predicate_types: vec![PREDICATE_MODEL_SIGNING_V1.to_string()],
            identities: identity
                .map(|(subject, issuer)| IdentityDocument {
                    issuer: issuer.to_string(),
                    subject: Some(subject.to_string()),
                    subject_regex: None,
                    github: None,
                })
                .into_iter()
                .collect(),
            keys: public_key_pem
                .map(|pem| KeyDocument {
                    key_id: "key".to_string(),
                    public_key: pem.to_string(),
                })
                .into_iter()
                .collect(),
            certificate_authorities: ca_pem
                .map(|pem| CaDocument {
                    ca_id: "ca".to_string(),
                    certificates: pem.to_string(),
                })
                .into_iter()
                .collect(),
            ..PolicyDocument::empty(ArtifactKind::Model)
        })
    }

    /// The artifact kind this policy governs.
    pub fn kind(&self) -> ArtifactKind {
        self.kind
    }

    /// The pinned predicate types (empty for blob policies: any content).
    pub fn predicate_types(&self) -> &[String] {
        &self.predicate_types
    }

    /// Whether this policy, as it stands now, still admits a signer that a
    /// verification found earlier (the release path re-checks registered
    /// artifacts against the current policy, which may have been narrowed
    /// since). Keyless signers must match an allowed identity with its
    /// claims; key and CA signers must name a key or CA the policy still
    /// holds.
    pub fn admits(&self, signer: &super::Signer) -> bool {
        match signer {
            super::Signer::Keyless {
                issuer,
                subject,
                claims,
            } => self
                .identities
                .iter()
                .any(|i| i.matches(subject, issuer, claims)),
            super::Signer::Key { key_id } => self.keys.iter().any(|k| k.key_id() == key_id),
            super::Signer::Certificate { ca_id, .. } => self.cas.iter().any(|c| c.ca_id() == ca_id),
        }
    }

    /// The allowed keyless identities.
    pub fn identities(&self) -> &[KeylessIdentity] {
        &self.identities
    }

    /// The managed keys.
    pub fn keys(&self) -> &[ManagedKey] {
        &self.keys
    }

    /// The model-signing certificate authorities.
    pub fn certificate_authorities(&self) -> &[ModelCa] {
        &self.cas
    }

    /// The docker reference simple-signing payloads must name, if pinned.
    pub fn docker_reference(&self) -> Option<&str> {
        self.docker_reference.as_deref()
    }

    pub(crate) fn allows_predicate(&self, predicate_type: &str) -> bool {
        self.predicate_types.iter().any(|p| p == predicate_type)
    }

    /// The first identity allowing this signer, if any.
    pub(crate) fn keyless_match(
        &self,
        subject: &str,
        issuer: &str,
        claims: &CertificateClaims,
    ) -> Option<&KeylessIdentity> {
        self.identities
            .iter()
            .find(|identity| identity.matches(subject, issuer, claims))
    }
}

impl Serialize for SigningPolicy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.document.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SigningPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let document = PolicyDocument::deserialize(deserializer)?;
        Self::try_from(document).map_err(serde::de::Error::custom)
    }
}

// The stored form. Field names are the JSON names.

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDocument {
    kind: ArtifactKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    predicate_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    identities: Vec<IdentityDocument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<KeyDocument>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    certificate_authorities: Vec<CaDocument>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    docker_reference: Option<String>,
}

impl PolicyDocument {
    fn empty(kind: ArtifactKind) -> Self {
        Self {
            kind,
            predicate_types: Vec::new(),
            identities: Vec::new(),
            keys: Vec::new(),
            certificate_authorities: Vec::new(),
            docker_reference: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityDocument {
    issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject_regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    github: Option<GithubDocument>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GithubDocument {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    repository: Option<String>,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    git_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workflow_sha: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDocument {
    key_id: String,
    public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaDocument {
    ca_id: String,
    certificates: String,
}

fn valid_len(value: &str, max: usize) -> bool {
    !value.is_empty() && value.len() <= max
}

fn check_count(what: &'static str, count: usize, max: usize) -> Result<(), PolicyError> {
    if count > max {
        return Err(PolicyError::TooMany { what, count, max });
    }
    Ok(())
}

impl TryFrom<PolicyDocument> for SigningPolicy {
    type Error = PolicyError;

    fn try_from(document: PolicyDocument) -> Result<Self, PolicyError> {
        let kind = document.kind;
        check_count("identities", document.identities.len(), MAX_IDENTITIES)?;
        check_count("keys", document.keys.len(), MAX_MANAGED_KEYS)?;
        check_count("predicate types", document.predicate_types.len(), 8)?;
        if document.identities.is_empty()
            && document.keys.is_empty()
            && document.certificate_authorities.is_empty()
        {
            return Err(PolicyError::NoSigners);
        }

        let allowed: &[&str] = match kind {
            ArtifactKind::Image => &[PREDICATE_COSIGN_SIGN_V1, PREDICATE_SIMPLE_SIGNING],
            ArtifactKind::Model => &[PREDICATE_MODEL_SIGNING_V1],
            ArtifactKind::Blob => &[],
        };
        if kind != ArtifactKind::Blob && document.predicate_types.is_empty() {
            return Err(PolicyError::NoPredicateType);
        }
        for (index, predicate_type) in document.predicate_types.iter().enumerate() {
            if !valid_len(predicate_type, MAX_VALUE_LEN) {
                return Err(PolicyError::BadValue {
                    field: "predicate_types",
                    index,
                });
            }
            if kind != ArtifactKind::Blob && !allowed.contains(&predicate_type.as_str()) {
                return Err(PolicyError::PredicateTypeForKind {
                    predicate_type: predicate_type.clone(),
                    kind,
                });
            }
            if document
                .predicate_types
                .iter()
                .take(index)
                .any(|p| p == predicate_type)
            {
                return Err(PolicyError::DuplicatePredicateType {
                    predicate_type: predicate_type.clone(),
                });
            }
        }
        if document.docker_reference.is_some() && kind != ArtifactKind::Image {
            return Err(PolicyError::FieldForKind {
                field: "docker_reference",
                kind,
            });
        }
        if let Some(reference) = &document.docker_reference
            && !valid_len(reference, MAX_VALUE_LEN)
        {
            return Err(PolicyError::BadValue {
                field: "docker_reference",
                index: 0,
            });
        }
        if !document.certificate_authorities.is_empty() && kind != ArtifactKind::Model {
            return Err(PolicyError::FieldForKind {
                field: "certificate_authorities",
                kind,
            });
        }

        let identities = document
            .identities
            .iter()
            .enumerate()
            .map(|(index, identity)| compile_identity(index, identity))
            .collect::<Result<Vec<_>, _>>()?;

        let mut keys: Vec<ManagedKey> = Vec::with_capacity(document.keys.len());
        for (index, key) in document.keys.iter().enumerate() {
            if !valid_len(&key.key_id, MAX_ID_LEN) {
                return Err(PolicyError::BadValue {
                    field: "key_id",
                    index,
                });
            }
            if keys.iter().any(|k| k.key_id == key.key_id) {
                return Err(PolicyError::DuplicateId {
                    id: key.key_id.clone(),
                });
            }
            let managed = ManagedKey::from_pem(&key.key_id, &key.public_key).ok_or_else(|| {
                PolicyError::BadPublicKey {
                    key_id: key.key_id.clone(),
                }
            })?;
            keys.push(managed);
        }

        let mut cas: Vec<ModelCa> = Vec::with_capacity(document.certificate_authorities.len());
        let mut certificate_count = 0usize;
        for (index, ca) in document.certificate_authorities.iter().enumerate() {
            if !valid_len(&ca.ca_id, MAX_ID_LEN) {
                return Err(PolicyError::BadValue {
                    field: "ca_id",
                    index,
                });
            }
            if cas.iter().any(|c| c.ca_id == ca.ca_id) {
                return Err(PolicyError::DuplicateId {
                    id: ca.ca_id.clone(),
                });
            }
            let bad = || PolicyError::BadCertificateAuthority {
                ca_id: ca.ca_id.clone(),
            };
            let certificates = if ca.certificates.len() <= MAX_PEM_LEN {
                pem_blocks(&ca.certificates, "CERTIFICATE").ok_or_else(bad)?
            } else {
                return Err(bad());
            };
            certificate_count = certificate_count.saturating_add(certificates.len());
            check_count("CA certificates", certificate_count, MAX_CA_CERTIFICATES)?;
            let (roots, intermediates) = split_roots(certificates).ok_or_else(bad)?;
            cas.push(ModelCa {
                ca_id: ca.ca_id.clone(),
                roots,
                intermediates,
            });
        }

        Ok(Self {
            kind,
            predicate_types: document.predicate_types.clone(),
            identities,
            keys,
            cas,
            docker_reference: document.docker_reference.clone(),
            document,
        })
    }
}

fn compile_identity(
    index: usize,
    identity: &IdentityDocument,
) -> Result<KeylessIdentity, PolicyError> {
    if !valid_len(&identity.issuer, MAX_VALUE_LEN) {
        return Err(PolicyError::BadValue {
            field: "issuer",
            index,
        });
    }
    let subject = match (&identity.subject, &identity.subject_regex) {
        (Some(subject), None) => {
            if !valid_len(subject, MAX_VALUE_LEN) {
                return Err(PolicyError::BadValue {
                    field: "subject",
                    index,
                });
            }
            SubjectMatcher::Exact(subject.clone())
        }
        (None, Some(pattern)) => {
            if !valid_len(pattern, MAX_REGEX_LEN) {
                return Err(PolicyError::BadValue {
                    field: "subject_regex",
                    index,
                });
            }
            // Anchored at both ends whatever the pattern says: `\A` and `\z`
            // are unaffected by a multi-line flag inside the pattern.
            let regex = regex::RegexBuilder::new(&format!(r"\A(?:{pattern})\z"))
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|_| PolicyError::BadRegex { index })?;
            SubjectMatcher::Regex(regex)
        }
        _ => return Err(PolicyError::SubjectNotExactlyOne { index }),
    };
    let github = match &identity.github {
        None => None,
        Some(github) => Some(compile_github(index, github)?),
    };
    Ok(KeylessIdentity {
        issuer: identity.issuer.clone(),
        subject,
        github,
    })
}

fn compile_github(index: usize, github: &GithubDocument) -> Result<GithubClaims, PolicyError> {
    let bad = |field| PolicyError::BadGithubClaim { index, field };
    if github.repository.is_none() && github.git_ref.is_none() && github.workflow_sha.is_none() {
        return Err(bad("*"));
    }
    if let Some(repository) = &github.repository {
        let mut parts = repository.split('/');
        let well_formed = parts.next().is_some_and(|owner| !owner.is_empty())
            && parts.next().is_some_and(|name| !name.is_empty())
            && parts.next().is_none()
            && repository.len() <= MAX_VALUE_LEN
            && !repository.contains(':');
        if !well_formed {
            return Err(bad("repository"));
        }
    }
    if let Some(git_ref) = &github.git_ref
        && (!git_ref.starts_with("refs/") || git_ref.len() > MAX_VALUE_LEN)
    {
        return Err(bad("ref"));
    }
    if let Some(sha) = &github.workflow_sha {
        let hex_ok = sha.len() == 40 && sha.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if !hex_ok {
            return Err(bad("workflow_sha"));
        }
    }
    Ok(GithubClaims {
        repository: github.repository.clone(),
        git_ref: github.git_ref.clone(),
        workflow_sha: github.workflow_sha.clone(),
    })
}

/// Splits certificates into self-signed roots and the rest, checking that
/// each parses and that each root is usable as a webpki trust anchor.
/// DER certificates.
type Certificates = Vec<Vec<u8>>;

fn split_roots(certificates: Certificates) -> Option<(Certificates, Certificates)> {
    use x509_parser::prelude::FromDer as _;
    let mut roots = Vec::new();
    let mut intermediates = Vec::new();
    for der in certificates {
        let (rest, certificate) = x509_parser::certificate::X509Certificate::from_der(&der).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let self_signed = certificate.subject().as_raw() == certificate.issuer().as_raw();
        if self_signed {
            let anchor_der = rustls_pki_types::CertificateDer::from(der.as_slice());
            webpki::anchor_from_trusted_cert(&anchor_der).ok()?;
            roots.push(der);
        } else {
            intermediates.push(der);
        }
    }
    if roots.is_empty() {
        None
    } else {
        Some((roots, intermediates))
    }
}

/// Extracts the DER contents of every PEM block labelled `label` (RFC 7468
/// §2). Text outside blocks is ignored, as OpenSSL does; a block with any
/// other label makes the whole input invalid, so a private key pasted into a
/// public-key field is refused rather than skipped.
pub(crate) fn pem_blocks(text: &str, label: &str) -> Option<Vec<Vec<u8>>> {
    use base64::Engine as _;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        match current.as_mut() {
            None if line == begin => current = Some(String::new()),
            None if line.starts_with("-----BEGIN ") => return None,
            None => {}
            Some(_) if line == end => {
                let body = current.take()?;
                blocks.push(
                    base64::engine::general_purpose::STANDARD
                        .decode(body)
                        .ok()?,
                );
            }
            Some(_) if line.starts_with("-----") => return None,
            Some(body) => body.push_str(line),
        }
    }
    if current.is_some() || blocks.is_empty() {
        None
    } else {
        Some(blocks)
    }
}

/// The PEM encoding OpenSSL and Python `cryptography` write: 64-character
/// base64 lines, a trailing newline.
pub(crate) fn canonical_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    let mut rest = body.as_str();
    while !rest.is_empty() {
        let (line, tail) = rest.split_at(rest.len().min(64));
        out.push_str(line);
        out.push('\n');
        rest = tail;
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Parses `sha256:<64 hex>`.
pub(crate) fn parse_prefixed_sha256(value: &str) -> Option<[u8; 32]> {
    parse_sha256_hex(value.strip_prefix("sha256:")?)
}

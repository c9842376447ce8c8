//! The artifact registry: signing policies per artifact kind, and the
//! images and model versions registered under them.
//!
//! # What it does
//! - stores signing policies ([`PolicyRecord`]) in
//!   [`Keyspace::SigningPolicies`] under `<kind>/<name>`, as the canonical
//!   JSON `keyward-attest` re-validates on every load;
//! - stores the facts of a [`VerifiedArtifact`] ([`ArtifactRecord`]: kind,
//!   digest, signer, predicate type, log entry, policy, who registered it
//!   and when, state) in [`Keyspace::Artifacts`] under `sha256:<hex>`. A
//!   record is written only from a `VerifiedArtifact`, which only
//!   `keyward-attest` can build, so nothing unverified is ever stored;
//! - keeps revocation as state (`active` → `revoked`, with `revoked_at`),
//!   never as deletion, so the release path sees a revoked digest as
//!   revoked rather than as unknown;
//! - holds the verification context from the `[artifacts]` config section
//!   ([`ArtifactSettings`]): the Sigstore trusted root (default: the
//!   public-good root embedded in `keyward-attest`) and the OCI registry
//!   client ([`crate::oci::RegistryClient`]).
//!
//! # Consistency
//! Policy writes, policy deletes and registrations take one in-process lock
//! ([`ArtifactSettings::lock`]) around their commit: a registration commits
//! only if the policy it was verified against is still stored unchanged, and
//! a policy is deleted only while no active artifact references it. The
//! vault runs as one process on one store (sled); an HA backend will need a
//! reference counter in the policy record instead. Verification itself runs
//! outside the lock.
//!
//! # What it does not do
//! It makes no trust decision (that is `keyward-attest`), and does not yet
//! revoke leases of workloads running a revoked artifact (the release-path
//! issue hooks onto [`ArtifactState::Revoked`]). Policies and artifact
//! records hold no secrets and are stored without the barrier.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use keyward_attest::sigstore::{
    ArtifactKind, CertificateClaims, Signer, SigningPolicy, TrustRoot, TrustRootError,
    VerifiedArtifact,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::ArtifactsConfig;
use crate::oci::{BasicCredentials, RegistryClient, RegistryConfig, RegistryError};
use crate::storage::{KeyRange, Keyspace, MAX_SCAN, Storage, StorageError, WriteBatch};

/// Longest policy name, in bytes.
pub const MAX_POLICY_NAME_LEN: usize = 128;
/// Longest model name or image reference stored with an artifact, in bytes.
pub const MAX_NAME_LEN: usize = 512;
/// Largest trusted root file read from the config.
const MAX_TRUSTED_ROOT_FILE: u64 = 1024 * 1024;

/// The artifact kinds the vault registers (`keyward-attest` also knows
/// blobs, which are never registered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A container image, by manifest digest.
    Image,
    /// A model version, by model-signing root digest.
    Model,
}

impl Kind {
    /// The path and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Model => "model",
        }
    }

    /// Parses `image` or `model`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "image" => Some(Self::Image),
            "model" => Some(Self::Model),
            _ => None,
        }
    }

    /// The matching `keyward-attest` kind.
    pub fn attest(self) -> ArtifactKind {
        match self {
            Self::Image => ArtifactKind::Image,
            Self::Model => ArtifactKind::Model,
        }
    }

    fn from_attest(kind: ArtifactKind) -> Option<Self> {
        match kind {
            ArtifactKind::Image => Some(Self::Image),
            ArtifactKind::Model => Some(Self::Model),
            _ => None,
        }
    }
}

/// Whether a policy name is 1 to [`MAX_POLICY_NAME_LEN`] characters of
/// `[A-Za-z0-9._-]` (it is a path segment and part of a storage key).
pub fn valid_policy_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_POLICY_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name != "."
        && name != ".."
}

/// Parses `sha256:<64 lower-case hex>`.
pub fn parse_digest(text: &str) -> Option<[u8; 32]> {
    keyward_attest::sigstore::image::parse_image_digest(text)
}

/// Most entries in a model manifest given at registration.
pub const MAX_MANIFEST_ENTRIES: usize = 4096;
/// Longest file name in a model manifest, in bytes.
pub const MAX_MANIFEST_NAME_LEN: usize = 1024;

/// One file of a model manifest: a resource of the model signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Path relative to the model directory (for shard serialization,
    /// `path:start:end` as the signature names it).
    pub name: String,
    /// `sha256:<hex>`.
    pub digest: String,
}

/// How a model manifest differs from the signed resource list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestMismatch {
    /// More than [`MAX_MANIFEST_ENTRIES`] entries.
    #[error("more than {max} entries")]
    TooMany {
        /// The cap.
        max: usize,
    },
    /// An entry's name is empty or longer than [`MAX_MANIFEST_NAME_LEN`].
    #[error("entry {index}: name must be 1 to {max} bytes", max = MAX_MANIFEST_NAME_LEN)]
    Name {
        /// 0-based index of the entry.
        index: usize,
    },
    /// An entry's digest is not `sha256:<64 lower-case hex>`.
    #[error("{name}: digest must be sha256:<64 lower-case hex>")]
    DigestFormat {
        /// The file.
        name: String,
    },
    /// The same name twice.
    #[error("{name}: listed twice")]
    Duplicate {
        /// The file.
        name: String,
    },
    /// A signed file is not in the manifest.
    #[error("{name}: signed but missing from the manifest")]
    Missing {
        /// The file.
        name: String,
    },
    /// A manifest file is not in the signature.
    #[error("{name}: not in the signature")]
    Extra {
        /// The file.
        name: String,
    },
    /// The digests differ.
    #[error("{name}: digest differs from the signed digest")]
    Changed {
        /// The file.
        name: String,
    },
    /// The signature hashes a file with something other than SHA-256.
    #[error("{name}: signed with unsupported hash algorithm")]
    Algorithm {
        /// The file.
        name: String,
    },
}

/// Checks that `manifest` lists exactly the `signed` resources (name,
/// algorithm, digest): same names, same digests, nothing extra or missing.
/// Reports the first difference in name order.
pub fn check_manifest<'a>(
    manifest: &[ManifestEntry],
    signed: impl Iterator<Item = (&'a str, &'a str, &'a [u8])>,
) -> Result<(), ManifestMismatch> {
    if manifest.len() > MAX_MANIFEST_ENTRIES {
        return Err(ManifestMismatch::TooMany {
            max: MAX_MANIFEST_ENTRIES,
        });
    }
    let mut given = std::collections::BTreeMap::new();
    for (index, entry) in manifest.iter().enumerate() {
        if entry.name.is_empty() || entry.name.len() > MAX_MANIFEST_NAME_LEN {
            return Err(ManifestMismatch::Name { index });
        }
        let digest = parse_digest(&entry.digest).ok_or_else(|| ManifestMismatch::DigestFormat {
            name: entry.name.clone(),
        })?;
        if given.insert(entry.name.as_str(), digest).is_some() {
            return Err(ManifestMismatch::Duplicate {
                name: entry.name.clone(),
            });
        }
    }
    let mut signed_map = std::collections::BTreeMap::new();
    for (name, algorithm, digest) in signed {
        signed_map.insert(name, (algorithm, digest));
    }
    let mut names: Vec<&str> = given.keys().chain(signed_map.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        match (given.get(name), signed_map.get(name)) {
            (Some(_), None) => {
                return Err(ManifestMismatch::Extra {
                    name: name.to_owned(),
                });
            }
            (None, _) => {
                return Err(ManifestMismatch::Missing {
                    name: name.to_owned(),
                });
            }
            (Some(ours), Some((algorithm, theirs))) => {
                if *algorithm != "sha256" {
                    return Err(ManifestMismatch::Algorithm {
                        name: name.to_owned(),
                    });
                }
                if ours.as_slice() != *theirs {
                    return Err(ManifestMismatch::Changed {
                        name: name.to_owned(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// A stored signing policy.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyRecord {
    /// The policy name (unique per kind).
    pub name: String,
    /// The artifact kind it governs.
    pub kind: Kind,
    /// The policy document (`keyward-attest` `SigningPolicy` JSON).
    #[schema(value_type = Object)]
    pub policy: Value,
    /// Last write, seconds since the Unix epoch.
    pub updated_at: u64,
    /// Accessor of the token that wrote it.
    pub updated_by: String,
}

impl PolicyRecord {
    /// The validated policy.
    pub fn signing_policy(&self) -> Result<SigningPolicy, RegistryStoreError> {
        serde_json::from_value(self.policy.clone()).map_err(|_| RegistryStoreError::Corrupt {
            keyspace: Keyspace::SigningPolicies,
        })
    }
}

/// Whether an artifact may still be released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactState {
    /// Registered and usable.
    Active,
    /// Revoked: the release path must refuse it.
    Revoked,
}

/// Who signed, as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum SignerRecord {
    /// A Fulcio certificate.
    Keyless {
        /// OIDC issuer.
        issuer: String,
        /// Certificate SAN.
        subject: String,
        /// Fulcio CI claims present in the certificate, by name.
        claims: BTreeMap<String, String>,
    },
    /// A managed key of the policy.
    Key {
        /// The policy's key id.
        key_id: String,
    },
    /// A certificate chaining to a policy CA (model-signing).
    Certificate {
        /// The policy's CA id.
        ca_id: String,
        /// SHA-256 of the signing certificate (hex).
        certificate_sha256: String,
    },
}

fn claims_map(c: &CertificateClaims) -> BTreeMap<String, String> {
    let fields = [
        ("build_signer_uri", &c.build_signer_uri),
        ("build_signer_digest", &c.build_signer_digest),
        ("runner_environment", &c.runner_environment),
        ("source_repository_uri", &c.source_repository_uri),
        ("source_repository_digest", &c.source_repository_digest),
        ("source_repository_ref", &c.source_repository_ref),
        ("build_config_uri", &c.build_config_uri),
        ("build_config_digest", &c.build_config_digest),
        ("build_trigger", &c.build_trigger),
        ("run_invocation_uri", &c.run_invocation_uri),
        ("github_workflow_sha", &c.github_workflow_sha),
        ("github_workflow_repository", &c.github_workflow_repository),
        ("github_workflow_ref", &c.github_workflow_ref),
    ];
    fields
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())))
        .collect()
}

impl SignerRecord {
    fn from_signer(signer: &Signer) -> Option<Self> {
        Some(match signer {
            Signer::Keyless {
                issuer,
                subject,
                claims,
            } => Self::Keyless {
                issuer: issuer.clone(),
                subject: subject.clone(),
                claims: claims_map(claims),
            },
            Signer::Key { key_id } => Self::Key {
                key_id: key_id.clone(),
            },
            Signer::Certificate {
                ca_id,
                certificate_sha256,
            } => Self::Certificate {
                ca_id: ca_id.clone(),
                certificate_sha256: hex::encode(certificate_sha256),
            },
            _ => return None,
        })
    }

    /// The signer as release policies name it: the certificate identity
    /// (SAN) for keyless signatures, `key:<id>` for managed keys,
    /// `ca:<id>` for certificates chaining to a policy CA.
    pub fn policy_name(&self) -> String {
        match self {
            Self::Keyless { subject, .. } => subject.clone(),
            Self::Key { key_id } => format!("key:{key_id}"),
            Self::Certificate { ca_id, .. } => format!("ca:{ca_id}"),
        }
    }

    /// One line for tables.
    pub fn summary(&self) -> String {
        match self {
            Self::Keyless {
                issuer, subject, ..
            } => format!("{subject} ({issuer})"),
            Self::Key { key_id } => format!("key {key_id}"),
            Self::Certificate { ca_id, .. } => format!("certificate from CA {ca_id}"),
        }
    }
}

/// The verified transparency-log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlogRecord {
    /// Log index.
    pub log_index: u64,
    /// SET-authenticated integrated time, seconds since the Unix epoch.
    pub integrated_time: Option<u64>,
}

/// How the signature reached the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Uploaded with the registration.
    Bundle,
    /// Discovered in the OCI registry.
    Discovery,
}

/// A registered artifact: the facts of its `VerifiedArtifact` plus
/// registration metadata.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRecord {
    /// `sha256:<hex>`: manifest digest or model root digest.
    pub digest: String,
    /// Image or model.
    pub kind: Kind,
    /// Model name, or the image reference given at registration.
    pub name: Option<String>,
    /// The image repository (`registry/path`), when known.
    pub repository: Option<String>,
    /// Uploaded bundle or registry discovery.
    pub source: Source,
    /// The signing policy it satisfied (of its kind).
    pub policy: String,
    /// Who signed.
    pub signer: SignerRecord,
    /// The pinned predicate type found.
    pub predicate_type: Option<String>,
    /// The verified log entry, if any (model key/certificate modes have none).
    pub tlog: Option<TlogRecord>,
    /// Every authenticated signing time, seconds since the Unix epoch.
    pub timestamps: Vec<u64>,
    /// `active` or `revoked`.
    pub state: ArtifactState,
    /// Registration, seconds since the Unix epoch.
    pub registered_at: u64,
    /// Accessor of the registering token.
    pub registered_by: String,
    /// Revocation, seconds since the Unix epoch.
    pub revoked_at: Option<u64>,
    /// Accessor of the revoking token.
    pub revoked_by: Option<String>,
    /// For a model registered with a manifest: its files, equal to the
    /// signed resource list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Vec<ManifestEntry>>,
}

/// Registration metadata that is not part of the verification.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Model name or image reference.
    pub name: Option<String>,
    /// Image repository.
    pub repository: Option<String>,
    /// Where the signature came from.
    pub source: Source,
    /// The policy name.
    pub policy: String,
    /// Seconds since the Unix epoch.
    pub now: u64,
    /// Token accessor.
    pub by: String,
    /// The model manifest, already checked against the signature.
    pub manifest: Option<Vec<ManifestEntry>>,
}

impl ArtifactRecord {
    /// The record of a verified artifact. `None` for kinds or signers the
    /// registry does not know (blobs).
    pub fn from_verified(artifact: &VerifiedArtifact, reg: Registration) -> Option<Self> {
        Some(Self {
            digest: artifact.digest_string(),
            kind: Kind::from_attest(artifact.kind())?,
            name: reg.name,
            repository: reg.repository,
            source: reg.source,
            policy: reg.policy,
            signer: SignerRecord::from_signer(artifact.signer())?,
            predicate_type: artifact.predicate_type().map(str::to_owned),
            tlog: artifact.tlog().map(|t| TlogRecord {
                log_index: t.log_index,
                integrated_time: t.integrated_time,
            }),
            timestamps: artifact.timestamps().to_vec(),
            state: ArtifactState::Active,
            registered_at: reg.now,
            registered_by: reg.by,
            revoked_at: None,
            revoked_by: None,
            manifest: reg.manifest,
        })
    }
}

/// Why a registry store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryStoreError {
    /// The storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A stored record does not parse.
    #[error("corrupt record in {keyspace:?}")]
    Corrupt {
        /// Where.
        keyspace: Keyspace,
    },
    /// No such record.
    #[error("not found: {what}")]
    NotFound {
        /// What.
        what: &'static str,
    },
    /// The operation conflicts with the stored state.
    #[error("{what}")]
    Conflict {
        /// What conflicts.
        what: &'static str,
    },
    /// A record failed to serialise.
    #[error("encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

fn policy_key(kind: Kind, name: &str) -> Vec<u8> {
    format!("{}/{name}", kind.as_str()).into_bytes()
}

fn decode<T: serde::de::DeserializeOwned>(
    keyspace: Keyspace,
    bytes: &[u8],
) -> Result<T, RegistryStoreError> {
    serde_json::from_slice(bytes).map_err(|_| RegistryStoreError::Corrupt { keyspace })
}

/// A policy's stored bytes, undecoded.
pub async fn policy_bytes(
    storage: &dyn Storage,
    kind: Kind,
    name: &str,
) -> Result<Option<Vec<u8>>, RegistryStoreError> {
    Ok(storage
        .get(Keyspace::SigningPolicies, &policy_key(kind, name))
        .await?)
}

/// Decodes stored policy bytes.
pub fn decode_policy(bytes: &[u8]) -> Result<PolicyRecord, RegistryStoreError> {
    decode(Keyspace::SigningPolicies, bytes)
}

/// Reads a policy and its stored bytes.
pub async fn load_policy(
    storage: &dyn Storage,
    kind: Kind,
    name: &str,
) -> Result<Option<(PolicyRecord, Vec<u8>)>, RegistryStoreError> {
    match policy_bytes(storage, kind, name).await? {
        None => Ok(None),
        Some(bytes) => Ok(Some((decode_policy(&bytes)?, bytes))),
    }
}

/// Every policy, in key order (kind, then name), at most [`MAX_SCAN`].
pub async fn list_policies(storage: &dyn Storage) -> Result<Vec<PolicyRecord>, RegistryStoreError> {
    storage
        .scan(Keyspace::SigningPolicies, KeyRange::All, MAX_SCAN)
        .await?
        .iter()
        .map(|(_, v)| decode(Keyspace::SigningPolicies, v))
        .collect()
}

/// Writes (creates or replaces) a policy. Call under [`ArtifactSettings::lock`].
pub async fn store_policy(
    storage: &dyn Storage,
    record: &PolicyRecord,
) -> Result<(), RegistryStoreError> {
    let bytes = serde_json::to_vec(record)?;
    let mut batch = WriteBatch::new();
    batch.put(
        Keyspace::SigningPolicies,
        &policy_key(record.kind, &record.name),
        &bytes,
    )?;
    storage.commit(batch).await?;
    Ok(())
}

/// Deletes a policy unless an active artifact references it. Call under
/// [`ArtifactSettings::lock`].
pub async fn delete_policy(
    storage: &dyn Storage,
    kind: Kind,
    name: &str,
) -> Result<(), RegistryStoreError> {
    let Some((_, bytes)) = load_policy(storage, kind, name).await? else {
        return Err(RegistryStoreError::NotFound { what: "policy" });
    };
    if is_referenced(storage, kind, name).await? {
        return Err(RegistryStoreError::Conflict {
            what: "policy is referenced by active artifacts; revoke them first",
        });
    }
    let key = policy_key(kind, name);
    storage
        .compare_and_swap(Keyspace::SigningPolicies, &key, Some(&bytes), None)
        .await
        .map_err(|e| match e {
            StorageError::ConditionFailed { .. } => RegistryStoreError::Conflict {
                what: "policy changed concurrently",
            },
            other => other.into(),
        })
}

/// Whether an active artifact of `kind` was registered under policy `name`.
/// Pages through every artifact: unlike a listing, this check must not stop
/// at [`MAX_SCAN`].
async fn is_referenced(
    storage: &dyn Storage,
    kind: Kind,
    name: &str,
) -> Result<bool, RegistryStoreError> {
    let mut start: Vec<u8> = Vec::new();
    loop {
        let page = storage
            .scan(
                Keyspace::Artifacts,
                KeyRange::Between {
                    start: &start,
                    end: None,
                },
                MAX_SCAN,
            )
            .await?;
        for (_, v) in &page {
            let record: ArtifactRecord = decode(Keyspace::Artifacts, v)?;
            if record.kind == kind && record.policy == name && record.state == ArtifactState::Active
            {
                return Ok(true);
            }
        }
        match page.last() {
            Some((key, _)) if page.len() == MAX_SCAN => {
                // The smallest key after `key`.
                start = key.clone();
                start.push(0);
            }
            _ => return Ok(false),
        }
    }
}

/// The stored bytes of the artifact with this digest, undecoded.
pub async fn artifact_bytes(
    storage: &dyn Storage,
    digest: &str,
) -> Result<Option<Vec<u8>>, RegistryStoreError> {
    Ok(storage.get(Keyspace::Artifacts, digest.as_bytes()).await?)
}

/// Decodes stored artifact bytes.
pub fn decode_artifact(bytes: &[u8]) -> Result<ArtifactRecord, RegistryStoreError> {
    decode(Keyspace::Artifacts, bytes)
}

/// The artifact with this digest (`sha256:<hex>`).
pub async fn load_artifact(
    storage: &dyn Storage,
    digest: &str,
) -> Result<Option<(ArtifactRecord, Vec<u8>)>, RegistryStoreError> {
    match artifact_bytes(storage, digest).await? {
        None => Ok(None),
        Some(bytes) => Ok(Some((decode_artifact(&bytes)?, bytes))),
    }
}

/// Registered artifacts (of one kind, or all), in digest order; the first
/// [`MAX_SCAN`] records are read (no pagination yet).
pub async fn list_artifacts(
    storage: &dyn Storage,
    kind: Option<Kind>,
) -> Result<Vec<ArtifactRecord>, RegistryStoreError> {
    let mut out = Vec::new();
    for (_, v) in storage
        .scan(Keyspace::Artifacts, KeyRange::All, MAX_SCAN)
        .await?
    {
        let record: ArtifactRecord = decode(Keyspace::Artifacts, &v)?;
        if kind.is_none_or(|k| k == record.kind) {
            out.push(record);
        }
    }
    Ok(out)
}

/// Stores a new artifact record if its policy is still stored as
/// `policy_bytes` (the version it was verified against). Call under
/// [`ArtifactSettings::lock`].
pub async fn insert_artifact(
    storage: &dyn Storage,
    record: &ArtifactRecord,
    policy_bytes: &[u8],
) -> Result<(), RegistryStoreError> {
    let current = load_policy(storage, record.kind, &record.policy).await?;
    if current.is_none_or(|(_, bytes)| bytes != policy_bytes) {
        return Err(RegistryStoreError::Conflict {
            what: "the signing policy changed during registration; retry",
        });
    }
    let bytes = serde_json::to_vec(record)?;
    let mut batch = WriteBatch::new();
    batch.insert_new(Keyspace::Artifacts, record.digest.as_bytes(), &bytes)?;
    storage.commit(batch).await.map_err(|e| match e {
        StorageError::ConditionFailed { .. } => RegistryStoreError::Conflict {
            what: "an artifact with this digest is already registered",
        },
        other => other.into(),
    })?;
    Ok(())
}

/// Marks an artifact revoked, at once and durably.
pub async fn revoke_artifact(
    storage: &dyn Storage,
    digest: &str,
    now: u64,
    by: &str,
) -> Result<ArtifactRecord, RegistryStoreError> {
    let Some((mut record, old)) = load_artifact(storage, digest).await? else {
        return Err(RegistryStoreError::NotFound { what: "artifact" });
    };
    if record.state == ArtifactState::Revoked {
        return Err(RegistryStoreError::Conflict {
            what: "artifact is already revoked",
        });
    }
    record.state = ArtifactState::Revoked;
    record.revoked_at = Some(now);
    record.revoked_by = Some(by.to_owned());
    let new = serde_json::to_vec(&record)?;
    storage
        .compare_and_swap(
            Keyspace::Artifacts,
            digest.as_bytes(),
            Some(&old),
            Some(&new),
        )
        .await
        .map_err(|e| match e {
            StorageError::ConditionFailed { .. } => RegistryStoreError::Conflict {
                what: "artifact changed concurrently; retry",
            },
            other => other.into(),
        })?;
    Ok(record)
}

/// `[artifacts.registry]`: how the vault reaches OCI registries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// Hosts (with port) reached over plain HTTP: loopback test registries.
    #[serde(default)]
    pub insecure_hosts: Vec<String>,
    /// HTTP basic credentials per registry host.
    #[serde(default)]
    pub credentials: Vec<RegistryCredential>,
    /// Bound on each registry request (default 30s).
    #[serde(default)]
    pub request_timeout: Option<crate::config::HumanDuration>,
}

fn read_capped(path: &std::path::Path, cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > cap {
        return Err(format!("larger than {cap} bytes"));
    }
    Ok(bytes)
}

/// Registry credentials from the config; the password is wiped on drop and
/// never printed.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryCredential {
    /// The registry host as written in references (`ghcr.io`, `host:5000`).
    pub host: String,
    /// User name.
    pub username: String,
    /// Password or access token.
    #[serde(deserialize_with = "secret_string")]
    pub password: Zeroizing<String>,
}

fn secret_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

impl std::fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCredential")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Why the verification context could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The trusted root file could not be read.
    #[error("trusted root {path}: {message}")]
    ReadRoot {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        message: String,
    },
    /// The trusted root was refused.
    #[error("trusted root: {0}")]
    Root(#[from] TrustRootError),
    /// The registry client could not be built.
    #[error("registry client: {0}")]
    Registry(#[from] RegistryError),
}

/// What verification needs, built once from the config.
#[derive(Debug)]
pub struct Verifiers {
    /// The Sigstore trusted root.
    pub trust: TrustRoot,
    /// The OCI registry client.
    pub registry: RegistryClient,
}

impl Verifiers {
    /// Builds the trusted root and registry client from `config`.
    pub fn from_config(config: &ArtifactsConfig) -> Result<Self, SettingsError> {
        let trust = match &config.trusted_root {
            None => TrustRoot::production()?,
            Some(path) => {
                let bytes = read_capped(path, MAX_TRUSTED_ROOT_FILE).map_err(|message| {
                    SettingsError::ReadRoot {
                        path: path.clone(),
                        message,
                    }
                })?;
                TrustRoot::from_json(&bytes)?
            }
        };
        let mut registry = RegistryConfig::new();
        for host in &config.registry.insecure_hosts {
            registry = registry.allow_insecure_http(host.clone());
        }
        for c in &config.registry.credentials {
            registry = registry.with_basic_auth(
                c.host.clone(),
                BasicCredentials::new(c.username.clone(), c.password.as_str()),
            );
        }
        if let Some(timeout) = config.registry.request_timeout {
            registry = registry.with_request_timeout(timeout.0);
        }
        Ok(Self {
            trust,
            registry: RegistryClient::new(registry)?,
        })
    }
}

/// The registry's share of the server state: the `[artifacts]` config, the
/// verifiers built from it on first use, and the commit lock.
#[derive(Debug, Default)]
pub struct ArtifactSettings {
    config: OnceLock<ArtifactsConfig>,
    verifiers: OnceLock<Arc<Verifiers>>,
    lock: tokio::sync::Mutex<()>,
}

impl ArtifactSettings {
    /// Sets the `[artifacts]` config; only the first call counts (before
    /// any registration; afterwards the defaults are in use). Returns false
    /// if it came too late.
    pub fn configure(&self, config: ArtifactsConfig) -> bool {
        self.config.set(config).is_ok() && self.verifiers.get().is_none()
    }

    /// The verifiers, built on first use (the trusted root is parsed once).
    pub fn verifiers(&self) -> Result<Arc<Verifiers>, SettingsError> {
        if let Some(v) = self.verifiers.get() {
            return Ok(Arc::clone(v));
        }
        let config = self.config.get_or_init(ArtifactsConfig::default);
        let built = Arc::new(Verifiers::from_config(config)?);
        // A concurrent first use may have won; either value is equivalent.
        Ok(Arc::clone(self.verifiers.get_or_init(|| built)))
    }

    /// The lock held around policy writes and registration commits.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const BASE: &str =
        "listen = \"127.0.0.1:8200\"\ndata_dir = \"/tmp/x\"\n[audit]\npath = \"/tmp/a.log\"\n";

    #[test]
    fn config_section_parses_and_hides_the_password() {
        let text = format!(
            "{BASE}[artifacts]\n[artifacts.registry]\ninsecure_hosts = [\"127.0.0.1:5000\"]\n\
             request_timeout = \"5s\"\n\
             credentials = [{{ host = \"r.example\", username = \"u\", password = \"hunter2\" }}]\n"
        );
        let config = Config::parse(&text, std::path::Path::new("t.toml")).unwrap();
        let registry = &config.artifacts.registry;
        assert_eq!(registry.insecure_hosts, ["127.0.0.1:5000"]);
        assert_eq!(registry.credentials[0].password.as_str(), "hunter2");
        assert!(!format!("{config:?}").contains("hunter2"));
        let verifiers = Verifiers::from_config(&config.artifacts).unwrap();
        assert!(verifiers.trust.is_production());
        assert!(!format!("{verifiers:?}").contains("hunter2"));

        // Without the section: defaults.
        let config = Config::parse(BASE, std::path::Path::new("t.toml")).unwrap();
        assert!(config.artifacts.trusted_root.is_none());
        // Unknown fields are refused.
        let bad = format!("{BASE}[artifacts]\ntrusted_rot = \"/x\"\n");
        assert!(Config::parse(&bad, std::path::Path::new("t.toml")).is_err());
    }

    #[test]
    fn trusted_root_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ArtifactsConfig {
            trusted_root: Some(dir.path().join("absent.json")),
            ..ArtifactsConfig::default()
        };
        assert!(matches!(
            Verifiers::from_config(&missing),
            Err(SettingsError::ReadRoot { .. })
        ));
        let path = dir.path().join("root.json");
        std::fs::write(&path, b"{\"not\": \"a root\"").unwrap();
        let garbage = ArtifactsConfig {
            trusted_root: Some(path),
            ..ArtifactsConfig::default()
        };
        assert!(matches!(
            Verifiers::from_config(&garbage),
            Err(SettingsError::Root(_))
        ));
        let production = ArtifactsConfig {
            trusted_root: Some(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../shared/testdata/sigstore/trusted_root.production.json"),
            ),
            ..ArtifactsConfig::default()
        };
        assert!(Verifiers::from_config(&production).is_ok());
    }

    #[test]
    fn manifest_differences_are_named() {
        let entry = |name: &str, byte: u8| ManifestEntry {
            name: name.to_owned(),
            digest: format!("sha256:{}", hex::encode([byte; 32])),
        };
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let signed = || [("a", "sha256", &a[..]), ("b", "sha256", &b[..])].into_iter();
        assert_eq!(
            check_manifest(&[entry("b", 2), entry("a", 1)], signed()),
            Ok(())
        );
        assert_eq!(
            check_manifest(&[entry("a", 1), entry("a", 1), entry("b", 2)], signed()),
            Err(ManifestMismatch::Duplicate { name: "a".into() })
        );
        assert_eq!(
            check_manifest(&[entry("a", 1), entry("b", 3)], signed()),
            Err(ManifestMismatch::Changed { name: "b".into() })
        );
        assert_eq!(
            check_manifest(&[entry("b", 2)], signed()),
            Err(ManifestMismatch::Missing { name: "a".into() })
        );
        assert_eq!(
            check_manifest(&[entry("a", 1), entry("b", 2), entry("c", 3)], signed()),
            Err(ManifestMismatch::Extra { name: "c".into() })
        );
        assert_eq!(
            check_manifest(&[entry("", 1)], signed()),
            Err(ManifestMismatch::Name { index: 0 })
        );
        let sha512 = [("a", "sha512", &a[..])].into_iter();
        assert_eq!(
            check_manifest(&[entry("a", 1)], sha512),
            Err(ManifestMismatch::Algorithm { name: "a".into() })
        );
        let many = vec![entry("a", 1); MAX_MANIFEST_ENTRIES + 1];
        assert_eq!(
            check_manifest(&many, signed()),
            Err(ManifestMismatch::TooMany {
                max: MAX_MANIFEST_ENTRIES
            })
        );
    }

    fn record(digest: String, policy: &str, state: ArtifactState) -> ArtifactRecord {
        ArtifactRecord {
            digest,
            kind: Kind::Model,
            name: None,
            repository: None,
            source: Source::Bundle,
            policy: policy.to_owned(),
            signer: SignerRecord::Key {
                key_id: "k".to_owned(),
            },
            predicate_type: None,
            tlog: None,
            timestamps: Vec::new(),
            state,
            registered_at: 0,
            registered_by: "t".to_owned(),
            revoked_at: None,
            revoked_by: None,
            manifest: None,
        }
    }

    /// The reference check reads past the first scan page.
    #[tokio::test]
    async fn delete_sees_references_beyond_one_scan_page() {
        use crate::storage::{SledConfig, SledStorage};
        let storage = SledStorage::open(&SledConfig::temporary()).unwrap();
        let policy = PolicyRecord {
            name: "p".to_owned(),
            kind: Kind::Model,
            policy: Value::Null,
            updated_at: 0,
            updated_by: "t".to_owned(),
        };
        store_policy(&storage, &policy).await.unwrap();
        let mut batch = WriteBatch::new();
        for i in 0..MAX_SCAN {
            let r = record(format!("sha256:{i:064x}"), "p", ArtifactState::Revoked);
            let bytes = serde_json::to_vec(&r).unwrap();
            batch
                .put(Keyspace::Artifacts, r.digest.as_bytes(), &bytes)
                .unwrap();
            if batch.len() == 1000 {
                storage.commit(std::mem::take(&mut batch)).await.unwrap();
            }
        }
        let last = record(
            format!("sha256:{}", "f".repeat(64)),
            "p",
            ArtifactState::Active,
        );
        batch
            .put(
                Keyspace::Artifacts,
                last.digest.as_bytes(),
                &serde_json::to_vec(&last).unwrap(),
            )
            .unwrap();
        storage.commit(batch).await.unwrap();
        assert!(matches!(
            delete_policy(&storage, Kind::Model, "p").await,
            Err(RegistryStoreError::Conflict { .. })
        ));
        revoke_artifact(&storage, &last.digest, 1, "t")
            .await
            .unwrap();
        delete_policy(&storage, Kind::Model, "p").await.unwrap();
        assert!(matches!(
            delete_policy(&storage, Kind::Model, "p").await,
            Err(RegistryStoreError::NotFound { what: "policy" })
        ));
    }

    #[test]
    fn policy_names() {
        for good in [
            "a",
            "release-2025",
            "ml_v1.2",
            &"x".repeat(MAX_POLICY_NAME_LEN),
        ] {
            assert!(valid_policy_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "ü",
            &"x".repeat(MAX_POLICY_NAME_LEN + 1),
        ] {
            assert!(!valid_policy_name(bad), "{bad}");
        }
    }

    #[test]
    fn settings_configure_only_before_use() {
        let settings = ArtifactSettings::default();
        assert!(settings.configure(ArtifactsConfig::default()));
        assert!(!settings.configure(ArtifactsConfig::default()));
        let first = settings.verifiers().unwrap();
        let again = settings.verifiers().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
    }
}

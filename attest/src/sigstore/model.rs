//! OpenSSF model signing (PyPI `model-signing` 1.0.x and 1.1.x,
//! sigstore/model-transparency).
//!
//! A model signature is a Sigstore bundle (media type v0.3) whose DSSE
//! envelope carries an in-toto Statement v1:
//!
//! - `predicateType` `https://model_signing/signature/v1.0`;
//! - one subject: the model's name and `sha256` = SHA-256 over the
//!   concatenated raw digests of `predicate.resources`, in the order listed
//!   (model-signing `_signing/signing.py`, `Payload` and
//!   `dsse_payload_to_manifest`);
//! - `predicate.serialization`: `method` (`files` or `shards`), `hash_type`,
//!   `allow_symlinks`, and since 1.1 `ignore_paths` (and `shard_size` for
//!   shards); `predicate.resources`: `{name, algorithm, digest}` per file or
//!   per shard (`path:start:end`). Other predicate fields are ignored, as
//!   v1.0 verifiers must.
//!
//! Three signing modes, told apart by the verification material:
//!
//! | material | mode | verified by |
//! |---|---|---|
//! | certificate with transparency-log entries | keyless (Sigstore) | `sigstore-verify`, policy identities |
//! | certificate chain, no log entries | certificate | this module: webpki chain to a policy CA at the leaf's notBefore, keyUsage digitalSignature or EKU codeSigning, ECDSA over the PAE |
//! | public key hint | key | this module: the hint (SHA-256 of the key's PEM, since 1.1) selects the policy key, ECDSA over the PAE |
//!
//! Key and certificate bundles carry no log entry, which `sigstore-verify`
//! refuses, hence the small verifier here. Its rules follow `model_signing
//! verify` 1.1: ECDSA on P-256/P-384/P-521 with SHA-256/384/512 by curve; a
//! bundle without a hint (the 1.0.x key format, which carried the PEM key in
//! `publicKey.rawBytes`) is checked against every policy key; the certificate
//! chain is validated at the signing certificate's notBefore, because these
//! signatures have no trusted timestamp. Two deliberate differences: the
//! pre-1.0 "PAE compat" signatures (made by v0.2 with the `Digests/v0.1`
//! predicate) are not accepted, since the policy pins the v1.0 predicate; and
//! a leaf whose extKeyUsage omits codeSigning is refused even when its
//! keyUsage allows digitalSignature (webpki's EKU rule, RFC 5280 §4.2.1.12).
//!
//! After the signature, [`VerifiedModelSignature`] holds the signed manifest.
//! [`VerifiedModelSignature::check_files`] (or a [`ModelHasher`] the caller
//! feeds while walking the directory) rehashes the model and compares, with
//! the signature's ignore paths, the caller's, and git files (`.git`,
//! `.gitattributes`, `.github`, `.gitignore`, ignored by `model_signing
//! verify` by default). Rehashing supports `hash_type` `sha256` (the
//! model-signing default); a BLAKE2/BLAKE3 signature verifies, but its files
//! cannot be rehashed here ([`ModelError::UnsupportedHashType`]).

use std::collections::BTreeMap;

use aws_lc_rs::signature::{self as ecdsa, UnparsedPublicKey};
use sigstore_types::bundle::VerificationMaterialContent;
use x509_parser::prelude::FromDer as _;

use super::bundle::{BundleError, ParsedBundle, parse_bundle};
use super::dsse::{StatementError, pae, parse_sha256_hex, parse_statement, to_hex};
use super::error::VerifyError;
use super::policy::{ArtifactKind, ManagedKey, SigningPolicy, sha256};
use super::trust::TrustRoot;
use super::verified::{Signer, VerifiedArtifact};
use super::verify::{ArtifactInput, verify_bundle_as};

/// Most resources (files or shards) a model signature may list.
pub const MAX_MODEL_RESOURCES: usize = 100_000;

/// Most files a caller may hash into one [`ModelHasher`].
pub const MAX_MODEL_FILES: usize = MAX_MODEL_RESOURCES;

/// Longest resource name or file path, in bytes.
pub const MAX_MODEL_PATH_LEN: usize = 4096;

/// Most ignore paths (signed and caller-supplied together).
pub const MAX_IGNORE_PATHS: usize = 1024;

/// Most certificates in a certificate-mode chain (signing certificate included).
pub const MAX_CHAIN_CERTIFICATES: usize = 8;

/// Largest resource digest, in bytes (SHA-512 / BLAKE2b-512).
const MAX_RESOURCE_DIGEST_LEN: usize = 64;

/// Git files `model_signing verify` ignores unless told otherwise
/// (`hashing.Config.hash`, `ignore_git_paths`).
const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// How the signer serialized the model (`predicate.serialization`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelSerialization {
    /// `files` or `shards`.
    pub method: SerializationMethod,
    /// The per-resource hash, e.g. `sha256`.
    pub hash_type: String,
    /// Whether the signer followed symbolic links; when false the caller's
    /// directory walk must refuse them, as `model_signing verify` does.
    pub allow_symlinks: bool,
    /// Paths the signer ignored, relative to the model directory (1.1+).
    pub ignore_paths: Vec<String>,
}

/// The serialization method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SerializationMethod {
    /// One resource per file.
    Files,
    /// One resource per shard of this many bytes; empty files have none.
    Shards {
        /// Shard size in bytes.
        shard_size: u64,
    },
}

/// A model version: what the vault registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    root_digest: [u8; 32],
    name: String,
    serialization: ModelSerialization,
    resource_count: usize,
}

impl ModelVersion {
    /// The model version id, `sha256:<root digest>`.
    pub fn id(&self) -> String {
        format!("sha256:{}", to_hex(&self.root_digest))
    }

    /// The root digest.
    pub fn root_digest(&self) -> &[u8; 32] {
        &self.root_digest
    }

    /// The model name the signer recorded (its directory name; informative only).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The serialization parameters, part of the version's identity: the
    /// same files serialized differently have another root digest.
    pub fn serialization(&self) -> &ModelSerialization {
        &self.serialization
    }

    /// Number of signed resources.
    pub fn resource_count(&self) -> usize {
        self.resource_count
    }
}

/// Which field of the model-signing predicate is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PredicateField {
    /// The predicate is absent or not an object.
    Predicate,
    /// `serialization`
    Serialization,
    /// `serialization.method`
    Method,
    /// `serialization.hash_type`
    HashType,
    /// `serialization.allow_symlinks`
    AllowSymlinks,
    /// `serialization.shard_size`
    ShardSize,
    /// `serialization.ignore_paths`
    IgnorePaths,
    /// `resources`
    Resources,
    /// `resources[].name`
    ResourceName,
    /// `resources[].algorithm`
    ResourceAlgorithm,
    /// `resources[].digest`
    ResourceDigest,
}

/// The signing mode of a model signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SigningMode {
    /// Sigstore keyless.
    Keyless,
    /// Certificate chain without transparency log.
    Certificate,
    /// Public key.
    Key,
}

/// Why a model signature or model was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The policy is not a model policy.
    #[error("policy is for {policy:?} artifacts, not models")]
    PolicyKind {
        /// The policy's kind.
        policy: ArtifactKind,
    },
    /// The signature file is not a Sigstore bundle.
    #[error("signature: {0}")]
    Bundle(#[from] BundleError),
    /// The bundle's content is a message signature, not a DSSE envelope.
    #[error("model signature is not a DSSE envelope")]
    NotDsse,
    /// The policy allows no signer of this mode.
    #[error("the policy allows no {mode:?} signer")]
    ModeNotAllowed {
        /// The bundle's mode.
        mode: SigningMode,
    },
    /// Keyless verification (or a predicate check shared with images) failed.
    #[error("{0}")]
    Verify(#[from] VerifyError),
    /// The bundle's public-key hint names no policy key.
    #[error("public key hint {hint:?} matches no policy key")]
    KeyHintMismatch {
        /// The hint (truncated to 200 characters).
        hint: String,
    },
    /// A policy key or signing certificate key is not ECDSA P-256/P-384/P-521.
    #[error("signing key is not an ECDSA P-256, P-384 or P-521 key")]
    UnsupportedKey,
    /// The ECDSA signature over the DSSE PAE does not verify.
    #[error("model signature does not verify")]
    SignatureInvalid,
    /// The certificate chain is empty or longer than [`MAX_CHAIN_CERTIFICATES`].
    #[error("certificate chain has {count} certificates")]
    ChainLength {
        /// Certificates present.
        count: usize,
    },
    /// A chain certificate does not parse (index from 0, the signing certificate first).
    #[error("certificate {index} of the chain does not parse")]
    CertificateMalformed {
        /// Which certificate.
        index: usize,
    },
    /// The signing certificate does not chain to any policy CA.
    #[error("signing certificate does not chain to a trusted CA")]
    ChainUntrusted {
        /// webpki's reason (for the last CA tried).
        #[source]
        source: webpki::Error,
    },
    /// The signing certificate allows neither digitalSignature nor codeSigning.
    #[error("signing certificate is not for signing")]
    CertificateNotForSigning,
    /// The signing certificate's notBefore is after `now`.
    #[error("signing certificate not valid before {not_before}, after the verification time {now}")]
    CertificateNotYetValid {
        /// notBefore, UNIX seconds.
        not_before: u64,
        /// The verification time, UNIX seconds.
        now: u64,
    },
    /// The payload is not an in-toto statement.
    #[error("statement: {0}")]
    Statement(#[from] StatementError),
    /// A field of the model-signing predicate is missing or malformed.
    #[error("model-signing predicate: {field:?} is malformed (resource {index:?})")]
    Predicate {
        /// The field.
        field: PredicateField,
        /// The resource, for resource fields.
        index: Option<usize>,
    },
    /// More resources than [`MAX_MODEL_RESOURCES`].
    #[error("{count} resources, at most {max} accepted")]
    TooManyResources {
        /// Resources listed.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// Two resources share a name.
    #[error("resource {name:?} listed twice")]
    DuplicateResource {
        /// The name.
        name: String,
    },
    /// The subject digest is not the hash of the listed resource digests.
    #[error("subject is sha256:{signed} but the resources hash to sha256:{computed}")]
    RootDigestMismatch {
        /// The subject's digest, hex.
        signed: String,
        /// The digest computed from the resources, hex.
        computed: String,
    },
    /// The signed root digest is not the one the caller expected.
    #[error("model root digest is sha256:{signed}, expected sha256:{expected}")]
    UnexpectedRootDigest {
        /// The caller's digest, hex.
        expected: String,
        /// The signed digest, hex.
        signed: String,
    },
    /// Files cannot be rehashed with this hash type here.
    #[error("cannot rehash files with hash type {hash_type:?}")]
    UnsupportedHashType {
        /// The hash type (truncated to 200 characters).
        hash_type: String,
    },
    /// A resource's algorithm is not the serialization's.
    #[error("resource {name:?} has algorithm {algorithm:?}, expected {expected:?}")]
    ResourceAlgorithm {
        /// The resource.
        name: String,
        /// Its algorithm (truncated to 200 characters).
        algorithm: String,
        /// What the serialization produces.
        expected: String,
    },
    /// A file path given by the caller is not a normalized relative path.
    #[error("file path {path:?} is not a normalized relative path")]
    InvalidPath {
        /// The path (truncated to 200 characters).
        path: String,
    },
    /// An ignore path given by the caller is absolute or empty.
    #[error("ignore path {path:?} is not relative to the model directory")]
    InvalidIgnorePath {
        /// The path (truncated to 200 characters).
        path: String,
    },
    /// Too many files or ignore paths.
    #[error("more than {max} {what}")]
    TooMany {
        /// What.
        what: &'static str,
        /// The cap.
        max: usize,
    },
    /// The same file was hashed twice.
    #[error("file {path:?} given twice")]
    DuplicateFile {
        /// The path.
        path: String,
    },
    /// A file's (or shard's) digest differs from the signed one.
    #[error("{resource:?} does not match its signed digest")]
    DigestMismatch {
        /// The resource name (path, or `path:start:end` for shards).
        resource: String,
    },
    /// A signed resource is missing from the model.
    #[error("signed {resource:?} is missing from the model")]
    MissingFile {
        /// The resource name.
        resource: String,
    },
    /// The model has a file (or shard) the signature does not cover.
    #[error("{resource:?} is not covered by the signature")]
    UnsignedFile {
        /// The resource name.
        resource: String,
    },
}

/// A model signature whose signature, signer and predicate verified; the
/// files are not checked yet.
#[derive(Debug, Clone)]
pub struct VerifiedModelSignature {
    artifact: VerifiedArtifact,
    version: ModelVersion,
    /// Resource name → (algorithm, digest), names normalized as model-signing
    /// normalizes them (`PurePosixPath`).
    resources: BTreeMap<String, (String, Vec<u8>)>,
}

/// Verifies a model signature (the `model.sig` bundle) against a model
/// policy at `now` (UNIX seconds).
pub fn verify_model_signature(
    trust: &TrustRoot,
    policy: &SigningPolicy,
    signature: &[u8],
    now: u64,
) -> Result<VerifiedModelSignature, ModelError> {
    if policy.kind() != ArtifactKind::Model {
        return Err(ModelError::PolicyKind {
            policy: policy.kind(),
        });
    }
    let bundle = parse_bundle(signature)?;
    let (payload_type, payload) = bundle.dsse().ok_or(ModelError::NotDsse)?;
    let material = &bundle.bundle.verification_material;

    let (artifact, statement_subject) = match &material.content {
        VerificationMaterialContent::PublicKey(identifier) => {
            if policy.keys().is_empty() {
                return Err(ModelError::ModeNotAllowed {
                    mode: SigningMode::Key,
                });
            }
            let key_id = verify_with_key(policy, &identifier.hint, &bundle)?;
            let signer = Signer::Key { key_id };
            own_mode_artifact(policy, payload_type, payload, signer)?
        }
        VerificationMaterialContent::X509CertificateChain { certificates }
            if material.tlog_entries.is_empty() =>
        {
            if policy.certificate_authorities().is_empty() {
                return Err(ModelError::ModeNotAllowed {
                    mode: SigningMode::Certificate,
                });
            }
            let chain: Vec<&[u8]> = certificates
                .iter()
                .map(|c| c.raw_bytes.as_bytes())
                .collect();
            let signer = verify_with_certificate(policy, &chain, &bundle, now)?;
            own_mode_artifact(policy, payload_type, payload, signer)?
        }
        _ => {
            if policy.identities().is_empty() {
                return Err(ModelError::ModeNotAllowed {
                    mode: SigningMode::Keyless,
                });
            }
            // sigstore-verify binds the artifact to the statement's subject;
            // the subject is the root digest, recomputed and compared below.
            let statement = parse_statement(payload_type, payload)?;
            let subject = match statement.subjects() {
                [only] => only.sha256.ok_or(VerifyError::SubjectWithoutSha256)?,
                other => return Err(VerifyError::SubjectCount { count: other.len() }.into()),
            };
            let artifact = verify_bundle_as(
                ArtifactKind::Model,
                trust,
                policy,
                &bundle,
                ArtifactInput::Sha256(subject),
                now,
            )?;
            (artifact, subject)
        }
    };

    let statement = parse_statement(payload_type, payload)?;
    let name = statement
        .subjects()
        .first()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let manifest = parse_manifest(statement.predicate())?;
    if manifest.root_digest != statement_subject {
        return Err(ModelError::RootDigestMismatch {
            signed: to_hex(&statement_subject),
            computed: to_hex(&manifest.root_digest),
        });
    }
    let version = ModelVersion {
        root_digest: manifest.root_digest,
        name,
        serialization: manifest.serialization,
        resource_count: manifest.resources.len(),
    };
    Ok(VerifiedModelSignature {
        artifact: artifact.with_model(version.clone()),
        version,
        resources: manifest.resources,
    })
}

/// Predicate, subject and artifact for the key and certificate modes, after
/// their signature verified.
fn own_mode_artifact(
    policy: &SigningPolicy,
    payload_type: &str,
    payload: &[u8],
    signer: Signer,
) -> Result<(VerifiedArtifact, [u8; 32]), ModelError> {
    let statement = parse_statement(payload_type, payload)?;
    if !policy.allows_predicate(statement.predicate_type()) {
        return Err(VerifyError::PredicateTypeNotAllowed {
            predicate_type: statement.predicate_type().chars().take(200).collect(),
        }
        .into());
    }
    let subject = match statement.subjects() {
        [only] => only.sha256.ok_or(VerifyError::SubjectWithoutSha256)?,
        other => return Err(VerifyError::SubjectCount { count: other.len() }.into()),
    };
    let artifact = VerifiedArtifact::new(
        ArtifactKind::Model,
        subject,
        signer,
        None,
        Vec::new(),
        Some(statement.predicate_type().to_string()),
    );
    Ok((artifact, subject))
}

impl VerifiedModelSignature {
    /// The model version the signature names.
    pub fn version(&self) -> &ModelVersion {
        &self.version
    }

    /// The signed resources as (name, algorithm, digest), in name order;
    /// names as the signature has them after normalization (shards as
    /// `path:start:end`).
    pub fn resources(&self) -> impl Iterator<Item = (&str, &str, &[u8])> + '_ {
        self.resources.iter().map(|(name, (algorithm, digest))| {
            (name.as_str(), algorithm.as_str(), digest.as_slice())
        })
    }

    /// Accepts the signature for a model known by its root digest only
    /// (registration without the files): the signed root digest must equal
    /// `expected_root`.
    pub fn for_root_digest(self, expected_root: &[u8; 32]) -> Result<VerifiedArtifact, ModelError> {
        if &self.version.root_digest != expected_root {
            return Err(ModelError::UnexpectedRootDigest {
                expected: to_hex(expected_root),
                signed: to_hex(&self.version.root_digest),
            });
        }
        Ok(self.artifact)
    }

    /// Rehashes the model given in memory as (relative path, contents) and
    /// compares it with the signed manifest. `ignore_paths` are relative to the
    /// model directory (the signature file, when it lies inside, belongs
    /// there); `ignore_git_paths` is `model_signing verify`'s
    /// `--ignore-git-paths` (default true).
    pub fn check_files(
        self,
        files: &[(&str, &[u8])],
        ignore_paths: &[&str],
        ignore_git_paths: bool,
    ) -> Result<VerifiedArtifact, ModelError> {
        let mut hasher = self.hasher(ignore_paths, ignore_git_paths)?;
        for (path, contents) in files {
            if let Some(mut file) = hasher.file(path)? {
                file.update(contents);
                file.finish();
            }
        }
        self.check_hashed(hasher)
    }

    /// A hasher the caller feeds while walking the model directory, for
    /// models too large to hold in memory; finish with
    /// [`VerifiedModelSignature::check_hashed`].
    pub fn hasher(
        &self,
        ignore_paths: &[&str],
        ignore_git_paths: bool,
    ) -> Result<ModelHasher, ModelError> {
        let serialization = &self.version.serialization;
        if serialization.hash_type != "sha256" {
            return Err(ModelError::UnsupportedHashType {
                hash_type: serialization.hash_type.chars().take(200).collect(),
            });
        }
        let total = serialization
            .ignore_paths
            .len()
            .saturating_add(ignore_paths.len())
            .saturating_add(GIT_PATHS.len());
        if total > MAX_IGNORE_PATHS {
            return Err(ModelError::TooMany {
                what: "ignore paths",
                max: MAX_IGNORE_PATHS,
            });
        }
        // The caller's paths must be relative to the model directory; the
        // signed ones are taken as model-signing takes them: a path that
        // cannot name a file in the directory (absolute, empty, with `..`,
        // which model-signing joins without resolving) ignores nothing.
        for path in ignore_paths {
            if path.is_empty() || path.starts_with('/') {
                return Err(ModelError::InvalidIgnorePath {
                    path: path.chars().take(200).collect(),
                });
            }
        }
        let git = GIT_PATHS.iter().copied().filter(|_| ignore_git_paths);
        let ignores: Vec<Vec<String>> = serialization
            .ignore_paths
            .iter()
            .map(String::as_str)
            .chain(ignore_paths.iter().copied())
            .chain(git)
            .filter(|path| !path.starts_with('/'))
            .map(normalized_components)
            .filter(|components| !components.is_empty() && !components.iter().any(|c| c == ".."))
            .collect();
        let shard_size = match serialization.method {
            SerializationMethod::Files => None,
            SerializationMethod::Shards { shard_size } => Some(shard_size),
        };
        Ok(ModelHasher {
            shard_size,
            ignores,
            items: BTreeMap::new(),
            files: 0,
        })
    }

    /// Compares what a [`ModelHasher`] computed with the signed manifest. The
    /// first difference, in resource-name order, is reported.
    pub fn check_hashed(self, hasher: ModelHasher) -> Result<VerifiedArtifact, ModelError> {
        let expected_algorithm = match self.version.serialization.method {
            SerializationMethod::Files => "sha256".to_string(),
            SerializationMethod::Shards { shard_size } => format!("sha256-sharded-{shard_size}"),
        };
        let mut signed = self.resources.iter().peekable();
        let mut actual = hasher.items.iter().peekable();
        loop {
            match (signed.peek(), actual.peek()) {
                (None, None) => break,
                (Some((name, _)), None) => {
                    return Err(ModelError::MissingFile {
                        resource: (*name).clone(),
                    });
                }
                (None, Some((name, _))) => {
                    return Err(ModelError::UnsignedFile {
                        resource: (*name).clone(),
                    });
                }
                (Some((signed_name, (algorithm, digest))), Some((actual_name, actual_digest))) => {
                    match signed_name.cmp(actual_name) {
                        std::cmp::Ordering::Less => {
                            return Err(ModelError::MissingFile {
                                resource: (*signed_name).clone(),
                            });
                        }
                        std::cmp::Ordering::Greater => {
                            return Err(ModelError::UnsignedFile {
                                resource: (*actual_name).clone(),
                            });
                        }
                        std::cmp::Ordering::Equal => {
                            if *algorithm != expected_algorithm {
                                return Err(ModelError::ResourceAlgorithm {
                                    name: (*signed_name).clone(),
                                    algorithm: algorithm.chars().take(200).collect(),
                                    expected: expected_algorithm,
                                });
                            }
                            if digest.as_slice() != actual_digest.as_slice() {
                                return Err(ModelError::DigestMismatch {
                                    resource: (*signed_name).clone(),
                                });
                            }
                            signed.next();
                            actual.next();
                        }
                    }
                }
            }
        }
        Ok(self.artifact)
    }
}

/// Hashes a model's files as model-signing serializes them (SHA-256 per file
/// or per shard). Paths are relative to the model directory, `/`-separated.
#[derive(Debug)]
pub struct ModelHasher {
    shard_size: Option<u64>,
    ignores: Vec<Vec<String>>,
    items: BTreeMap<String, [u8; 32]>,
    files: usize,
}

impl ModelHasher {
    /// True when `path` is ignored (its digest would be discarded).
    pub fn is_ignored(&self, path: &str) -> bool {
        let components: Vec<&str> = path.split('/').collect();
        self.ignores.iter().any(|ignore| {
            ignore.len() <= components.len()
                && ignore
                    .iter()
                    .zip(&components)
                    .all(|(a, b)| a.as_str() == *b)
        })
    }

    /// Starts hashing the file at `path`, or returns `None` when it is
    /// ignored. `path` must be normalized: relative, no empty, `.` or `..`
    /// components.
    pub fn file(&mut self, path: &str) -> Result<Option<FileHasher<'_>>, ModelError> {
        let valid = !path.is_empty()
            && path.len() <= MAX_MODEL_PATH_LEN
            && path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if !valid {
            return Err(ModelError::InvalidPath {
                path: path.chars().take(200).collect(),
            });
        }
        if self.is_ignored(path) {
            return Ok(None);
        }
        if self.files >= MAX_MODEL_FILES {
            return Err(ModelError::TooMany {
                what: "files",
                max: MAX_MODEL_FILES,
            });
        }
        let taken = match self.shard_size {
            None => self.items.contains_key(path),
            Some(_) => {
                let prefix = format!("{path}:");
                self.items
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix))
            }
        };
        if taken {
            return Err(ModelError::DuplicateFile {
                path: path.to_string(),
            });
        }
        self.files = self.files.saturating_add(1);
        Ok(Some(FileHasher {
            owner: self,
            path: path.to_string(),
            context: ring::digest::Context::new(&ring::digest::SHA256),
            offset: 0,
            shard_start: 0,
        }))
    }
}

/// Hashes one file; feed it with [`FileHasher::update`], then [`FileHasher::finish`].
pub struct FileHasher<'h> {
    owner: &'h mut ModelHasher,
    path: String,
    context: ring::digest::Context,
    offset: u64,
    shard_start: u64,
}

impl std::fmt::Debug for FileHasher<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHasher")
            .field("path", &self.path)
            .field("offset", &self.offset)
            .finish()
    }
}

impl FileHasher<'_> {
    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut bytes: &[u8]) {
        let Some(shard_size) = self.owner.shard_size else {
            self.context.update(bytes);
            self.offset = self
                .offset
                .saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
            return;
        };
        while !bytes.is_empty() {
            let room = shard_size.saturating_sub(self.offset.saturating_sub(self.shard_start));
            let take = usize::try_from(room).unwrap_or(usize::MAX).min(bytes.len());
            let (head, tail) = bytes.split_at(take);
            self.context.update(head);
            self.offset = self
                .offset
                .saturating_add(u64::try_from(take).unwrap_or(u64::MAX));
            bytes = tail;
            if self.offset.saturating_sub(self.shard_start) == shard_size {
                self.close_shard();
            }
        }
    }

    fn close_shard(&mut self) {
        let context = std::mem::replace(
            &mut self.context,
            ring::digest::Context::new(&ring::digest::SHA256),
        );
        let name = format!("{}:{}:{}", self.path, self.shard_start, self.offset);
        self.owner.items.insert(name, digest_array(context));
        self.shard_start = self.offset;
    }

    /// Ends the file.
    pub fn finish(mut self) {
        match self.owner.shard_size {
            None => {
                let context = std::mem::replace(
                    &mut self.context,
                    ring::digest::Context::new(&ring::digest::SHA256),
                );
                let path = std::mem::take(&mut self.path);
                self.owner.items.insert(path, digest_array(context));
            }
            // model-signing's `_get_shards`: shards cover [0, size) in
            // shard_size steps; an empty file has no shard.
            Some(_) => {
                if self.offset > self.shard_start {
                    self.close_shard();
                }
            }
        }
    }
}

fn digest_array(context: ring::digest::Context) -> [u8; 32] {
    let digest = context.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `PurePosixPath` normalization: empty and `.` components dropped.
fn normalized_components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

struct Manifest {
    root_digest: [u8; 32],
    serialization: ModelSerialization,
    resources: BTreeMap<String, (String, Vec<u8>)>,
}

fn bad(field: PredicateField) -> ModelError {
    ModelError::Predicate { field, index: None }
}

fn parse_manifest(predicate: Option<&serde_json::Value>) -> Result<Manifest, ModelError> {
    use serde_json::Value;
    let predicate = predicate
        .and_then(Value::as_object)
        .ok_or(bad(PredicateField::Predicate))?;
    let serialization = predicate
        .get("serialization")
        .and_then(Value::as_object)
        .ok_or(bad(PredicateField::Serialization))?;
    let hash_type = serialization
        .get("hash_type")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty() && h.len() <= 64)
        .ok_or(bad(PredicateField::HashType))?
        .to_string();
    let allow_symlinks = serialization
        .get("allow_symlinks")
        .and_then(Value::as_bool)
        .ok_or(bad(PredicateField::AllowSymlinks))?;
    let method = match serialization.get("method").and_then(Value::as_str) {
        Some("files") => SerializationMethod::Files,
        Some("shards") => {
            // protobuf Struct numbers are doubles: 1000 arrives as 1000.0.
            let size = serialization.get("shard_size").and_then(Value::as_f64);
            let shard_size = size
                .filter(|s| s.fract() == 0.0 && *s >= 1.0 && *s <= 9_007_199_254_740_992.0)
                .and_then(|s| format!("{s:.0}").parse::<u64>().ok())
                .ok_or(bad(PredicateField::ShardSize))?;
            SerializationMethod::Shards { shard_size }
        }
        _ => return Err(bad(PredicateField::Method)),
    };
    let ignore_paths = match serialization.get("ignore_paths") {
        None => Vec::new(),
        Some(value) => {
            let list = value.as_array().ok_or(bad(PredicateField::IgnorePaths))?;
            if list.len() > MAX_IGNORE_PATHS {
                return Err(bad(PredicateField::IgnorePaths));
            }
            list.iter()
                .map(|p| {
                    p.as_str()
                        .filter(|p| p.len() <= MAX_MODEL_PATH_LEN)
                        .map(str::to_string)
                        .ok_or(bad(PredicateField::IgnorePaths))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };

    let list = predicate
        .get("resources")
        .and_then(Value::as_array)
        .ok_or(bad(PredicateField::Resources))?;
    if list.len() > MAX_MODEL_RESOURCES {
        return Err(ModelError::TooManyResources {
            count: list.len(),
            max: MAX_MODEL_RESOURCES,
        });
    }
    let mut root = ring::digest::Context::new(&ring::digest::SHA256);
    let mut resources = BTreeMap::new();
    for (index, resource) in list.iter().enumerate() {
        let field = |field| ModelError::Predicate {
            field,
            index: Some(index),
        };
        let resource = resource
            .as_object()
            .ok_or(field(PredicateField::Resources))?;
        let name = resource
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty() && n.len() <= MAX_MODEL_PATH_LEN)
            .ok_or(field(PredicateField::ResourceName))?;
        let algorithm = resource
            .get("algorithm")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty() && a.len() <= 128)
            .ok_or(field(PredicateField::ResourceAlgorithm))?;
        let digest = resource
            .get("digest")
            .and_then(Value::as_str)
            .and_then(parse_hex)
            .filter(|d| !d.is_empty() && d.len() <= MAX_RESOURCE_DIGEST_LEN)
            .ok_or(field(PredicateField::ResourceDigest))?;
        let key = match method {
            SerializationMethod::Files => normalize_resource(name),
            SerializationMethod::Shards { .. } => {
                normalize_shard(name).ok_or(field(PredicateField::ResourceName))?
            }
        };
        root.update(&digest);
        if resources
            .insert(key.clone(), (algorithm.to_string(), digest))
            .is_some()
        {
            return Err(ModelError::DuplicateResource { name: key });
        }
    }
    Ok(Manifest {
        root_digest: digest_array(root),
        serialization: ModelSerialization {
            method,
            hash_type,
            allow_symlinks,
            ignore_paths,
        },
        resources,
    })
}

/// A file resource name as model-signing compares it: `PurePosixPath(name)`.
fn normalize_resource(name: &str) -> String {
    let joined = normalized_components(name).join("/");
    if name.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// `path:start:end` (model-signing `_Shard.from_str`: exactly three
/// `:`-separated parts, decimal offsets).
fn normalize_shard(name: &str) -> Option<String> {
    let mut parts = name.split(':');
    let (path, start, end) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (start, end) = (number(start)?, number(end)?);
    Some(format!("{}:{start}:{end}", normalize_resource(path)))
}

/// Lower- or upper-case hex, as Python's `bytes.fromhex` reads it (without
/// the whitespace it also tolerates).
fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| {
            let hi = char::from(*pair.first()?).to_digit(16)?;
            let lo = char::from(*pair.get(1)?).to_digit(16)?;
            u8::try_from(hi.checked_mul(16)?.checked_add(lo)?).ok()
        })
        .collect()
}

/// ECDSA curves model-signing accepts (`_check_supported_ec_key`), with the
/// hash it pairs with each (`get_ec_key_hash`).
#[derive(Debug, Clone, Copy)]
enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn algorithm(self) -> &'static ecdsa::EcdsaVerificationAlgorithm {
        match self {
            Self::P256 => &ecdsa::ECDSA_P256_SHA256_ASN1,
            Self::P384 => &ecdsa::ECDSA_P384_SHA384_ASN1,
            Self::P521 => &ecdsa::ECDSA_P521_SHA512_ASN1,
        }
    }
}

/// The curve and uncompressed point of an EC SubjectPublicKeyInfo (RFC 5480 §2).
fn ec_public_key(spki_der: &[u8]) -> Option<(Curve, Vec<u8>)> {
    let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).ok()?;
    if !rest.is_empty() || spki.algorithm.algorithm.to_id_string() != "1.2.840.10045.2.1" {
        return None;
    }
    let curve_oid = spki
        .algorithm
        .parameters
        .as_ref()?
        .as_oid()
        .ok()?
        .to_id_string();
    let curve = match curve_oid.as_str() {
        "1.2.840.10045.3.1.7" => Curve::P256,
        "1.3.132.0.34" => Curve::P384,
        "1.3.132.0.35" => Curve::P521,
        _ => return None,
    };
    Some((curve, spki.subject_public_key.data.to_vec()))
}

/// ECDSA over the DSSE PAE (DSSE protocol v1.0.0), as model-signing's key
/// and certificate verifiers check it.
fn verify_pae(spki_der: &[u8], bundle: &ParsedBundle) -> Result<(), ModelError> {
    let (curve, point) = ec_public_key(spki_der).ok_or(ModelError::UnsupportedKey)?;
    let sigstore_types::bundle::SignatureContent::DsseEnvelope(envelope) = &bundle.bundle.content
    else {
        return Err(ModelError::NotDsse);
    };
    let message = pae(&envelope.payload_type, envelope.payload.as_bytes());
    UnparsedPublicKey::new(curve.algorithm(), point)
        .verify(&message, envelope.signature.sig.as_bytes())
        .map_err(|_| ModelError::SignatureInvalid)
}

/// Key mode. model-signing 1.1 (`sign_ec_key.Verifier._verify_bundle`):
/// a non-empty hint must be the SHA-256 (hex) of the key's PEM; an empty
/// hint is the 1.0.x format and is accepted with any key that verifies.
fn verify_with_key(
    policy: &SigningPolicy,
    hint: &str,
    bundle: &ParsedBundle,
) -> Result<String, ModelError> {
    let candidates: Vec<&ManagedKey> = if hint.is_empty() {
        policy.keys().iter().collect()
    } else {
        let wanted = parse_sha256_hex(hint);
        let matching: Vec<&ManagedKey> = policy
            .keys()
            .iter()
            .filter(|key| Some(*key.pem_sha256()) == wanted)
            .collect();
        if matching.is_empty() {
            return Err(ModelError::KeyHintMismatch {
                hint: hint.chars().take(200).collect(),
            });
        }
        matching
    };
    let mut error = ModelError::SignatureInvalid;
    for key in candidates {
        match verify_pae(key.spki_der(), bundle) {
            Ok(()) => return Ok(key.key_id().to_string()),
            Err(e) => error = e,
        }
    }
    Err(error)
}

/// id-kp-codeSigning, 1.3.6.1.5.5.7.3.3 (RFC 5280 §4.2.1.12), DER contents.
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

/// Certificate mode (`sign_certificate.Verifier._verify_certificates`).
fn verify_with_certificate(
    policy: &SigningPolicy,
    chain: &[&[u8]],
    bundle: &ParsedBundle,
    now: u64,
) -> Result<Signer, ModelError> {
    if chain.is_empty() || chain.len() > MAX_CHAIN_CERTIFICATES {
        return Err(ModelError::ChainLength { count: chain.len() });
    }
    for (index, der) in chain.iter().enumerate() {
        match x509_parser::certificate::X509Certificate::from_der(der) {
            Ok(([], _)) => {}
            _ => return Err(ModelError::CertificateMalformed { index }),
        }
    }
    let leaf_der = chain
        .first()
        .copied()
        .ok_or(ModelError::ChainLength { count: 0 })?;
    let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(leaf_der)
        .map_err(|_| ModelError::CertificateMalformed { index: 0 })?;
    let not_before = u64::try_from(leaf.validity().not_before.timestamp()).unwrap_or(0);
    if not_before > now {
        return Err(ModelError::CertificateNotYetValid { not_before, now });
    }

    // model-signing sets the OpenSSL store time to the signing certificate's
    // notBefore: without a trusted timestamp, the chain is judged as it stood
    // when the certificate was issued.
    let time =
        rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_before));
    let leaf_cert = rustls_pki_types::CertificateDer::from(leaf_der);
    let end_entity = webpki::EndEntityCert::try_from(&leaf_cert)
        .map_err(|_| ModelError::CertificateMalformed { index: 0 })?;
    let mut last_error = webpki::Error::UnknownIssuer;
    let mut trusted_by: Option<String> = None;
    for ca in policy.certificate_authorities() {
        let root_ders: Vec<rustls_pki_types::CertificateDer<'_>> = ca
            .roots()
            .iter()
            .map(|d| rustls_pki_types::CertificateDer::from(d.as_slice()))
            .collect();
        let anchors: Vec<rustls_pki_types::TrustAnchor<'_>> = root_ders
            .iter()
            .filter_map(|d| webpki::anchor_from_trusted_cert(d).ok())
            .collect();
        let intermediates: Vec<rustls_pki_types::CertificateDer<'_>> = chain
            .iter()
            .skip(1)
            .map(|d| rustls_pki_types::CertificateDer::from(*d))
            .chain(
                ca.intermediates()
                    .iter()
                    .map(|d| rustls_pki_types::CertificateDer::from(d.as_slice())),
            )
            .collect();
        match end_entity.verify_for_usage(
            sigstore_verify::crypto::WEBPKI_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::required_if_present(EKU_CODE_SIGNING),
            None,
            None,
        ) {
            Ok(_) => {
                trusted_by = Some(ca.ca_id().to_string());
                break;
            }
            Err(error) => last_error = error,
        }
    }
    let ca_id = trusted_by.ok_or(ModelError::ChainUntrusted { source: last_error })?;

    // keyUsage digitalSignature, or extKeyUsage codeSigning (model-signing
    // `_verify_certificates`; RFC 5280 §4.2.1.3, §4.2.1.12).
    let digital_signature =
        matches!(leaf.key_usage(), Ok(Some(ku)) if ku.value.digital_signature());
    let code_signing = matches!(leaf.extended_key_usage(), Ok(Some(eku)) if eku.value.code_signing);
    if !(digital_signature || code_signing) {
        return Err(ModelError::CertificateNotForSigning);
    }
    verify_pae(leaf.public_key().raw, bundle)?;
    Ok(Signer::Certificate {
        ca_id,
        certificate_sha256: sha256(leaf_der),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_the_signed_list() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/model-signing");
        let key = std::fs::read_to_string(format!("{dir}/keys/signer.pub")).unwrap();
        let policy = SigningPolicy::from_json(
            serde_json::json!({"kind": "model",
                "predicate_types": [crate::sigstore::PREDICATE_MODEL_SIGNING_V1],
                "keys": [{"key_id": "release", "public_key": key}]})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let signature = std::fs::read(format!("{dir}/signatures/key-v11.sig")).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let verified =
            verify_model_signature(&TrustRoot::production().unwrap(), &policy, &signature, now)
                .unwrap();
        let resources: Vec<(&str, &str, &[u8])> = verified.resources().collect();
        let names: Vec<&str> = resources.iter().map(|r| r.0).collect();
        assert_eq!(names.len(), verified.version().resource_count());
        assert!(names.contains(&"weights.bin"), "{names:?}");
        let weights = std::fs::read(format!("{dir}/model/weights.bin")).unwrap();
        let (_, algorithm, digest) = resources
            .iter()
            .find(|r| r.0 == "weights.bin")
            .copied()
            .unwrap();
        assert_eq!(algorithm, "sha256");
        assert_eq!(digest, sha256(&weights).as_slice());
    }

    #[test]
    fn resource_names_normalize_like_pure_posix_path() {
        assert_eq!(normalize_resource("./a//b/"), "a/b");
        assert_eq!(normalize_resource("/a/./b"), "/a/b");
        assert_eq!(
            normalize_shard("w.bin:0:1000"),
            Some("w.bin:0:1000".to_string())
        );
        assert_eq!(normalize_shard("w.bin:0"), None);
        assert_eq!(normalize_shard("w.bin:0:x"), None);
        assert_eq!(normalize_shard("a:b:0:1"), None);
    }

    #[test]
    fn shards_split_at_shard_size() {
        let mut hasher = ModelHasher {
            shard_size: Some(4),
            ignores: Vec::new(),
            items: BTreeMap::new(),
            files: 0,
        };
        let mut file = hasher.file("f").unwrap().unwrap();
        file.update(b"abc");
        file.update(b"defgh");
        file.update(b"ij");
        file.finish();
        hasher.file("empty").unwrap().unwrap().finish();
        let names: Vec<&str> = hasher.items.keys().map(String::as_str).collect();
        assert_eq!(names, ["f:0:4", "f:4:8", "f:8:10"]);
        assert_eq!(hasher.items["f:4:8"], sha256(b"efgh"));
        assert!(matches!(
            hasher.file("f"),
            Err(ModelError::DuplicateFile { .. })
        ));
    }

    #[test]
    fn ignore_paths_match_whole_components() {
        let hasher = ModelHasher {
            shard_size: None,
            ignores: vec![
                vec!["a".to_string()],
                vec!["b".to_string(), "c".to_string()],
            ],
            items: BTreeMap::new(),
            files: 0,
        };
        assert!(hasher.is_ignored("a"));
        assert!(hasher.is_ignored("a/x"));
        assert!(!hasher.is_ignored("ab"));
        assert!(hasher.is_ignored("b/c/d"));
        assert!(!hasher.is_ignored("b/cd"));
    }

    #[test]
    fn hex_and_paths_are_checked() {
        assert_eq!(parse_hex("0aFF"), Some(vec![0x0a, 0xff]));
        assert_eq!(parse_hex("0a F"), None);
        assert_eq!(parse_hex("abc"), None);
        let mut hasher = ModelHasher {
            shard_size: None,
            ignores: Vec::new(),
            items: BTreeMap::new(),
            files: 0,
        };
        for bad in ["", "/a", "a//b", "a/./b", "../a", "a/"] {
            assert!(
                matches!(hasher.file(bad), Err(ModelError::InvalidPath { .. })),
                "{bad}"
            );
        }
    }
}

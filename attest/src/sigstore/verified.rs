//! The proof a verification hands to the vault.

use super::dsse::to_hex;
use super::model::ModelVersion;
use super::policy::ArtifactKind;

/// Claims a Fulcio certificate makes about the workload it was issued to
/// (Fulcio `docs/oid-info.md`, arc 1.3.6.1.4.1.57264.1). All optional: which
/// ones are present depends on the OIDC provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateClaims {
    /// .1.9 Build Signer URI.
    pub build_signer_uri: Option<String>,
    /// .1.10 Build Signer Digest.
    pub build_signer_digest: Option<String>,
    /// .1.11 Runner Environment.
    pub runner_environment: Option<String>,
    /// .1.12 Source Repository URI.
    pub source_repository_uri: Option<String>,
    /// .1.13 Source Repository Digest (the commit).
    pub source_repository_digest: Option<String>,
    /// .1.14 Source Repository Ref.
    pub source_repository_ref: Option<String>,
    /// .1.18 Build Config URI.
    pub build_config_uri: Option<String>,
    /// .1.19 Build Config Digest.
    pub build_config_digest: Option<String>,
    /// .1.20 Build Trigger.
    pub build_trigger: Option<String>,
    /// .1.21 Run Invocation URI.
    pub run_invocation_uri: Option<String>,
    /// .1.3 GitHub Workflow SHA (deprecated, superseded by .1.13).
    pub github_workflow_sha: Option<String>,
    /// .1.5 GitHub Workflow Repository, `owner/repo` (deprecated, superseded by .1.12).
    pub github_workflow_repository: Option<String>,
    /// .1.6 GitHub Workflow Ref (deprecated, superseded by .1.14).
    pub github_workflow_ref: Option<String>,
}

impl CertificateClaims {
    pub(crate) fn from_fulcio(claims: &sigstore_verify::crypto::FulcioCiClaims) -> Self {
        Self {
            build_signer_uri: claims.build_signer_uri.clone(),
            build_signer_digest: claims.build_signer_digest.clone(),
            runner_environment: claims.runner_environment.clone(),
            source_repository_uri: claims.source_repository_uri.clone(),
            source_repository_digest: claims.source_repository_digest.clone(),
            source_repository_ref: claims.source_repository_ref.clone(),
            build_config_uri: claims.build_config_uri.clone(),
            build_config_digest: claims.build_config_digest.clone(),
            build_trigger: claims.build_trigger.clone(),
            run_invocation_uri: claims.run_invocation_uri.clone(),
            github_workflow_sha: claims.deprecated_github.workflow_sha.clone(),
            github_workflow_repository: claims.deprecated_github.workflow_repository.clone(),
            github_workflow_ref: claims.deprecated_github.workflow_ref.clone(),
        }
    }

    fn fields_mut(&mut self) -> [(&'static str, &mut Option<String>); 13] {
        [
            ("build_signer_uri", &mut self.build_signer_uri),
            ("build_signer_digest", &mut self.build_signer_digest),
            ("runner_environment", &mut self.runner_environment),
            ("source_repository_uri", &mut self.source_repository_uri),
            (
                "source_repository_digest",
                &mut self.source_repository_digest,
            ),
            ("source_repository_ref", &mut self.source_repository_ref),
            ("build_config_uri", &mut self.build_config_uri),
            ("build_config_digest", &mut self.build_config_digest),
            ("build_trigger", &mut self.build_trigger),
            ("run_invocation_uri", &mut self.run_invocation_uri),
            ("github_workflow_sha", &mut self.github_workflow_sha),
            (
                "github_workflow_repository",
                &mut self.github_workflow_repository,
            ),
            ("github_workflow_ref", &mut self.github_workflow_ref),
        ]
    }

    /// The claims present, by stable name (`source_repository_uri`, …), for
    /// storing a verified signer.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut copy = self.clone();
        copy.fields_mut()
            .into_iter()
            .filter_map(|(name, value)| value.take().map(|v| (name, v)))
            .collect()
    }

    /// Claims from stored pairs ([`CertificateClaims::to_pairs`]); unknown
    /// names are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut claims = Self::default();
        for (name, value) in pairs {
            if let Some((_, slot)) = claims.fields_mut().into_iter().find(|(n, _)| *n == name) {
                *slot = Some(value.to_owned());
            }
        }
        claims
    }
}

/// Who made the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signer {
    /// A Fulcio certificate (keyless signing).
    Keyless {
        /// The OIDC issuer.
        issuer: String,
        /// The certificate's SAN (email or URI).
        subject: String,
        /// The CI claims the certificate carries.
        claims: Box<CertificateClaims>,
    },
    /// A managed key from the policy.
    Key {
        /// The policy's id for the key.
        key_id: String,
    },
    /// A certificate chaining to a policy CA (model-signing certificate mode).
    Certificate {
        /// The policy's id for the CA.
        ca_id: String,
        /// SHA-256 of the signing certificate's DER.
        certificate_sha256: [u8; 32],
    },
}

/// Transparency-log evidence that was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlogEvidence {
    /// The entry's log index (Rekor v1: global index; absent data reads 0).
    pub log_index: u64,
    /// The SET-authenticated integrated time (Rekor v1), UNIX seconds.
    pub integrated_time: Option<u64>,
}

/// A signature that satisfied a signing policy, over this artifact. Only this
/// module can build one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedArtifact {
    kind: ArtifactKind,
    digest: [u8; 32],
    signer: Signer,
    tlog: Option<TlogEvidence>,
    timestamps: Vec<u64>,
    predicate_type: Option<String>,
    model: Option<ModelVersion>,
}

impl VerifiedArtifact {
    pub(crate) fn new(
        kind: ArtifactKind,
        digest: [u8; 32],
        signer: Signer,
        tlog: Option<TlogEvidence>,
        timestamps: Vec<u64>,
        predicate_type: Option<String>,
    ) -> Self {
        Self {
            kind,
            digest,
            signer,
            tlog,
            timestamps,
            predicate_type,
            model: None,
        }
    }

    pub(crate) fn with_model(mut self, model: ModelVersion) -> Self {
        self.model = Some(model);
        self
    }

    /// The artifact kind.
    pub fn kind(&self) -> ArtifactKind {
        self.kind
    }

    /// The SHA-256 digest the signature is over: the image manifest digest,
    /// the model root digest, or the blob's digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The digest as `sha256:<hex>`.
    pub fn digest_string(&self) -> String {
        format!("sha256:{}", to_hex(&self.digest))
    }

    /// Who signed.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The verified transparency-log entry, when there is one.
    pub fn tlog(&self) -> Option<&TlogEvidence> {
        self.tlog.as_ref()
    }

    /// Every authenticated signing time (RFC 3161 timestamps and SETs), UNIX seconds.
    pub fn timestamps(&self) -> &[u64] {
        &self.timestamps
    }

    /// The predicate type that was pinned and found (`None` for a blob's
    /// message signature).
    pub fn predicate_type(&self) -> Option<&str> {
        self.predicate_type.as_deref()
    }

    /// For models: the model version (root digest and serialization).
    pub fn model(&self) -> Option<&ModelVersion> {
        self.model.as_ref()
    }
}

//! Image signatures from OCI registries: resolve a reference to a manifest
//! digest, discover the signatures that refer to it, and hand them to
//! `keyward-attest`, which decides.
//!
//! # Flow
//! 1. [`RegistryClient::resolve`]: `registry/repo:tag` or `…@sha256:<hex>`
//!    → the manifest's SHA-256, computed from the bytes received. A digest
//!    reference is fetched and checked, never trusted by name; a digest the
//!    registry announces (`Docker-Content-Digest`) must agree.
//! 2. [`RegistryClient::discover`]: the referrers API, else the
//!    `sha256-<hex>` tag, and the legacy `sha256-<hex>.sig` tag (see
//!    [`discover`](self::discover) for the order and formats).
//! 3. [`RegistryClient::verify_image`]: each signature found is verified by
//!    `keyward_attest::sigstore::image` over the resolved digest; the first
//!    that satisfies the policy wins; otherwise [`ImageError`] lists every
//!    candidate's failure.
//!
//! # Bounds
//! Everything read is capped ([`Limits`], defaults [`MAX_MANIFEST_LEN`],
//! [`MAX_BUNDLE_BLOB_LEN`], the simple-signing payload cap of
//! `keyward-attest`, [`MAX_LAYERS`], [`MAX_REFERRERS`], [`MAX_CANDIDATES`],
//! [`MAX_REDIRECTS`]) and every request has a timeout. Blobs are checked
//! against their descriptor's size and digest. Descriptor `urls` (foreign
//! layers) are never followed.
//!
//! # Transport and credentials
//! TLS with the platform's roots by default; plain HTTP only for hosts
//! configured with [`RegistryConfig::allow_insecure_http`], and never after
//! a redirect from HTTPS. Anonymous, or HTTP basic credentials per registry
//! (sent directly, or to the registry's token service for a bearer token).
//!
//! # What it does not do
//! No trust decision: a registry is an untrusted store, and only
//! `keyward-attest`'s verification of a signature over the digest counts.
//! Tag resolution is as trustworthy as the transport (TLS) — which is why
//! the vault stores digests, not tags. No platform selection: a multi-arch
//! tag resolves to its index digest, which is what cosign signs. The token
//! service's response is read by `oci-client` without a size cap (bounded
//! by the request timeout only).
//!
//! # Dependencies
//! `oci-client` 0.18 (reference parsing, token handshake) with its `rustls-tls`
//! feature — rustls on aws-lc-rs, already in the tree through `keyward-attest`
//! — and `reqwest` (already its dependency) for the bounded reads, `tokio`
//! `time` for timeouts, `ring` for SHA-256.

mod config;
pub mod discover;
mod error;
pub mod manifest;
mod transport;

use keyward_attest::sigstore::{SigningPolicy, TrustRoot, VerifiedArtifact};
use oci_client::Reference;

pub use config::{
    BasicCredentials, DEFAULT_REQUEST_TIMEOUT, Limits, MAX_BUNDLE_BLOB_LEN, MAX_CANDIDATES,
    MAX_LAYERS, MAX_MANIFEST_LEN, MAX_REDIRECTS, MAX_REFERRERS, RegistryConfig,
};
pub use discover::{Candidate, CandidateKind, Discovery, ReferrersApi};
pub use error::{
    CandidateError, CandidateFailure, ImageError, ManifestFailure, RegistryError, SignatureOrigin,
    SignatureSource, TransportFailure,
};

use manifest::{ACCEPT_MANIFESTS, ManifestKind};
use transport::{Repository, Transport, digest_string};

/// Whether a resolved manifest is a single image or an index (multi-arch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageKind {
    /// An OCI or Docker image manifest.
    Manifest,
    /// An OCI image index or Docker manifest list.
    Index,
}

/// A reference resolved to the digest of the bytes the registry served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: [u8; 32],
    kind: ImageKind,
}

impl ResolvedImage {
    /// The registry host (Docker Hub as `index.docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, when resolved from one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// The manifest digest as `sha256:<hex>`.
    pub fn digest_string(&self) -> String {
        digest_string(&self.digest)
    }

    /// Image manifest or index.
    pub fn kind(&self) -> ImageKind {
        self.kind
    }
}

/// Reads images and their signatures from OCI registries.
#[derive(Debug)]
pub struct RegistryClient {
    config: RegistryConfig,
    transport: Transport,
}

impl RegistryClient {
    /// A client with this configuration.
    pub fn new(config: RegistryConfig) -> Result<Self, RegistryError> {
        let transport = Transport::new(&config)?;
        Ok(Self { config, transport })
    }

    fn parse_reference(&self, reference: &str) -> Result<Reference, RegistryError> {
        reference
            .parse::<Reference>()
            .map_err(|_| RegistryError::InvalidReference {
                reference: reference.chars().take(200).collect(),
            })
    }

    /// Resolves `registry/repo:tag` or `registry/repo@sha256:<hex>` to the
    /// digest of the manifest the registry serves for it.
    pub async fn resolve(&self, reference: &str) -> Result<ResolvedImage, RegistryError> {
        let reference = self.parse_reference(reference)?;
        let repo = self.transport.repository(&self.config, &reference).await?;
        self.resolve_in(&repo, &reference).await
    }

    async fn resolve_in(
        &self,
        repo: &Repository,
        reference: &Reference,
    ) -> Result<ResolvedImage, RegistryError> {
        let expected = match reference.digest() {
            Some(digest) => Some(
                keyward_attest::sigstore::image::parse_image_digest(digest).ok_or_else(|| {
                    RegistryError::UnsupportedDigest {
                        digest: digest.chars().take(200).collect(),
                    }
                })?,
            ),
            None => None,
        };
        let target = match (reference.digest(), reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_string(),
            (None, None) => "latest".to_string(),
        };
        let url = repo.url("manifests", &target);
        let limit = self.config.limits().max_manifest_len;
        let body = self
            .transport
            .get(repo, &url, ACCEPT_MANIFESTS, limit)
            .await?;
        let digest = discover::check_digest(
            &url,
            &body.bytes,
            expected.as_ref(),
            body.announced_digest.as_deref(),
        )?;
        let kind = manifest::check_target(&body.bytes, body.content_type.as_deref())
            .map_err(|failure| RegistryError::Manifest { url, failure })?;
        Ok(ResolvedImage {
            registry: repo.registry.clone(),
            repository: repo.name.clone(),
            tag: reference.tag().map(str::to_string),
            digest,
            kind: match kind {
                ManifestKind::Image => ImageKind::Manifest,
                ManifestKind::Index => ImageKind::Index,
            },
        })
    }

    /// Resolves `reference`, discovers its signatures and returns the first
    /// that satisfies `policy` at `now` (UNIX seconds).
    pub async fn verify_image(
        &self,
        trust: &TrustRoot,
        policy: &SigningPolicy,
        reference: &str,
        now: u64,
    ) -> Result<VerifiedArtifact, ImageError> {
        let parsed = self.parse_reference(reference)?;
        let repo = self.transport.repository(&self.config, &parsed).await?;
        let image = self.resolve_in(&repo, &parsed).await?;
        let discovery = self.discover_in(&repo, image.digest()).await;
        verify_discovered(trust, policy, discovery, now)
    }

    /// Discovers the signatures of `digest` in `repository` and returns the
    /// first that satisfies `policy` at `now`. The image itself is not
    /// fetched: the digest is what the signatures must be over.
    pub async fn verify_digest(
        &self,
        trust: &TrustRoot,
        policy: &SigningPolicy,
        repository: &str,
        digest: &[u8; 32],
        now: u64,
    ) -> Result<VerifiedArtifact, ImageError> {
        let discovery = self.discover(repository, digest).await?;
        verify_discovered(trust, policy, discovery, now)
    }
}

/// Verifies discovered signatures in order; the first that verifies wins.
pub fn verify_discovered(
    trust: &TrustRoot,
    policy: &SigningPolicy,
    discovery: Discovery,
    now: u64,
) -> Result<VerifiedArtifact, ImageError> {
    let digest = *discovery.digest();
    let (candidates, mut failures, untried) = discovery.into_parts();
    if candidates.is_empty() && failures.is_empty() && untried == 0 {
        return Err(ImageError::NoSignatures {
            digest: digest_string(&digest),
        });
    }
    for candidate in candidates {
        match candidate.verify(trust, policy, &digest, now) {
            Ok(verified) => return Ok(verified),
            Err(reason) => failures.push(CandidateFailure {
                origin: candidate.origin().clone(),
                reason,
            }),
        }
    }
    Err(ImageError::NoneVerified {
        digest: digest_string(&digest),
        failures,
        untried,
    })
}

//! Finding the signatures that refer to an image digest.
//!
//! Three places, in this order:
//! 1. the OCI referrers API, `GET /v2/<name>/referrers/<digest>`
//!    (OCI Distribution Specification v1.1, "Listing Referrers"): an image
//!    index whose entries with a Sigstore bundle `artifactType` are cosign v3
//!    signatures;
//! 2. when the registry answers 404 there (it predates v1.1, like
//!    distribution 2.8), the `sha256-<hex>` tag ("Referrers Tag Schema"):
//!    an image index of referrers, as go-containerregistry maintains it for
//!    cosign v3, or a bundle manifest pushed directly under that tag;
//! 3. always, the legacy `sha256-<hex>.sig` tag (cosign `pkg/oci/remote`
//!    `SignatureTag`): one image manifest whose simple-signing layers each
//!    carry one signature in their annotations.
//!
//! Every manifest is fetched by digest where one is known and checked
//! against it; every blob is checked against its descriptor's size and
//! digest. A source that fails to load becomes a [`CandidateFailure`], not
//! the end of discovery: one broken signature must not hide a good one.

use keyward_attest::sigstore::image::{
    ANNOTATION_BUNDLE, ANNOTATION_CERTIFICATE, ANNOTATION_CHAIN, ANNOTATION_SIGNATURE,
    SimpleSigningSignature, verify_cosign_bundle, verify_simple_signing,
};
use keyward_attest::sigstore::{SigningPolicy, TrustRoot, VerifiedArtifact};

use super::RegistryClient;
use super::error::{
    CandidateError, CandidateFailure, ManifestFailure, RegistryError, SignatureOrigin,
    SignatureSource,
};
use super::manifest::{
    self, ACCEPT_MANIFESTS, Descriptor, Manifest, ManifestKind, SIMPLE_SIGNING_MEDIA_TYPE,
    is_bundle_media_type,
};
use super::transport::{Repository, digest_string, sha256};

/// Whether the registry implements the referrers API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReferrersApi {
    /// It answered with an index.
    Supported,
    /// It answered 404, so the `sha256-<hex>` tag was read instead.
    Unsupported,
    /// It failed otherwise (recorded among the failures); the tag was read
    /// instead.
    Failed,
}

/// A signature's content, as fetched.
enum Content {
    Bundle(Vec<u8>),
    SimpleSigning {
        payload: Vec<u8>,
        signature: String,
        certificate: Option<String>,
        chain: Option<String>,
        rekor_bundle: Option<String>,
    },
}

/// Which format a discovered signature has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CandidateKind {
    /// A Sigstore bundle (cosign v3).
    Bundle,
    /// A legacy simple-signing signature.
    SimpleSigning,
}

/// A signature fetched from the registry, not yet verified.
pub struct Candidate {
    origin: SignatureOrigin,
    content: Content,
}

impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate")
            .field("origin", &self.origin)
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl Candidate {
    /// Where it was found.
    pub fn origin(&self) -> &SignatureOrigin {
        &self.origin
    }

    /// Its format.
    pub fn kind(&self) -> CandidateKind {
        match self.content {
            Content::Bundle(_) => CandidateKind::Bundle,
            Content::SimpleSigning { .. } => CandidateKind::SimpleSigning,
        }
    }

    /// Verifies it over `digest` under `policy` at `now` (UNIX seconds),
    /// with `keyward-attest`.
    pub fn verify(
        &self,
        trust: &TrustRoot,
        policy: &SigningPolicy,
        digest: &[u8; 32],
        now: u64,
    ) -> Result<VerifiedArtifact, CandidateError> {
        match &self.content {
            Content::Bundle(bundle) => {
                Ok(verify_cosign_bundle(trust, policy, bundle, digest, now)?)
            }
            Content::SimpleSigning {
                payload,
                signature,
                certificate,
                chain,
                rekor_bundle,
            } => {
                let mut simple = SimpleSigningSignature::new(payload, signature);
                if let Some(certificate) = certificate {
                    simple = simple.with_certificate(certificate);
                }
                if let Some(chain) = chain {
                    simple = simple.with_chain(chain);
                }
                if let Some(rekor_bundle) = rekor_bundle {
                    simple = simple.with_rekor_bundle(rekor_bundle);
                }
                Ok(verify_simple_signing(trust, policy, &simple, digest, now)?)
            }
        }
    }
}

/// What discovery found for one digest.
#[derive(Debug)]
pub struct Discovery {
    digest: [u8; 32],
    referrers_api: ReferrersApi,
    candidates: Vec<Candidate>,
    failures: Vec<CandidateFailure>,
    untried: usize,
}

impl Discovery {
    /// The image digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// How the referrers API answered.
    pub fn referrers_api(&self) -> ReferrersApi {
        self.referrers_api
    }

    /// The signatures fetched, in discovery order.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// Signatures (or signature sources) that could not be fetched.
    pub fn failures(&self) -> &[CandidateFailure] {
        &self.failures
    }

    /// Signatures not fetched because the candidate budget was spent.
    pub fn untried(&self) -> usize {
        self.untried
    }

    pub(crate) fn into_parts(self) -> (Vec<Candidate>, Vec<CandidateFailure>, usize) {
        (self.candidates, self.failures, self.untried)
    }
}

/// Collects candidates under the budget.
struct Collector {
    candidates: Vec<Candidate>,
    failures: Vec<CandidateFailure>,
    untried: usize,
    budget: usize,
}

impl Collector {
    fn full(&self) -> bool {
        self.candidates.len().saturating_add(self.failures.len()) >= self.budget
    }

    fn fail(&mut self, origin: SignatureOrigin, reason: impl Into<CandidateError>) {
        self.failures.push(CandidateFailure {
            origin,
            reason: reason.into(),
        });
    }
}

fn origin(
    source: SignatureSource,
    manifest: Option<&[u8; 32]>,
    layer: Option<usize>,
) -> SignatureOrigin {
    SignatureOrigin {
        source,
        manifest: manifest.map(digest_string),
        layer,
    }
}

impl RegistryClient {
    /// Finds and fetches the signatures that refer to `digest` in the
    /// repository of `repository` (a reference whose tag or digest, if any,
    /// is ignored). The image itself need not be in the registry.
    pub async fn discover(
        &self,
        repository: &str,
        digest: &[u8; 32],
    ) -> Result<Discovery, RegistryError> {
        let reference = self.parse_reference(repository)?;
        let repo = self.transport.repository(&self.config, &reference).await?;
        Ok(self.discover_in(&repo, digest).await)
    }

    pub(crate) async fn discover_in(&self, repo: &Repository, digest: &[u8; 32]) -> Discovery {
        let limits = *self.config.limits();
        let mut found = Collector {
            candidates: Vec::new(),
            failures: Vec::new(),
            untried: 0,
            budget: limits.max_candidates,
        };
        let hex = hex::encode(digest);
        let caps = manifest::Caps::of(&limits);

        let referrers_url = repo.url("referrers", &digest_string(digest));
        let referrers_api = match self
            .transport
            .get(
                repo,
                &referrers_url,
                manifest::OCI_INDEX,
                limits.max_manifest_len,
            )
            .await
        {
            Ok(body) => {
                let source = SignatureSource::ReferrersApi;
                // The referrers response is generated by the registry, so it
                // has no digest to check; every manifest it lists is fetched
                // by digest and checked.
                match manifest::parse(&body.bytes, body.content_type.as_deref(), caps) {
                    Ok(index) if index.kind == ManifestKind::Index => {
                        self.follow_index(repo, &index, source, caps, &mut found)
                            .await;
                    }
                    Ok(_) => found.fail(
                        origin(source, None, None),
                        RegistryError::Manifest {
                            url: referrers_url.clone(),
                            failure: ManifestFailure::UnexpectedKind,
                        },
                    ),
                    Err(failure) => found.fail(
                        origin(source, None, None),
                        RegistryError::Manifest {
                            url: referrers_url.clone(),
                            failure,
                        },
                    ),
                }
                ReferrersApi::Supported
            }
            Err(RegistryError::NotFound { .. }) => ReferrersApi::Unsupported,
            Err(error) => {
                found.fail(origin(SignatureSource::ReferrersApi, None, None), error);
                ReferrersApi::Failed
            }
        };

        if referrers_api != ReferrersApi::Supported {
            let source = SignatureSource::ReferrersTag;
            match self
                .fetch_manifest(repo, &format!("sha256-{hex}"), None, caps)
                .await
            {
                Ok(None) => {}
                Ok(Some((tag_digest, tagged))) => match tagged.kind {
                    ManifestKind::Index => {
                        self.follow_index(repo, &tagged, source, caps, &mut found)
                            .await;
                    }
                    ManifestKind::Image => {
                        self.bundles_from(repo, &tagged, &tag_digest, source, &mut found)
                            .await;
                    }
                },
                Err(error) => found.fail(origin(source, None, None), error),
            }
        }

        let source = SignatureSource::SimpleSigningTag;
        match self
            .fetch_manifest(repo, &format!("sha256-{hex}.sig"), None, caps)
            .await
        {
            Ok(None) => {}
            Ok(Some((sig_digest, sig))) if sig.kind == ManifestKind::Image => {
                self.simple_from(repo, &sig, &sig_digest, &mut found).await;
            }
            Ok(Some((sig_digest, _))) => found.fail(
                origin(source, Some(&sig_digest), None),
                RegistryError::Manifest {
                    url: repo.url("manifests", &format!("sha256-{hex}.sig")),
                    failure: ManifestFailure::UnexpectedKind,
                },
            ),
            Err(error) => found.fail(origin(source, None, None), error),
        }

        Discovery {
            digest: *digest,
            referrers_api,
            candidates: found.candidates,
            failures: found.failures,
            untried: found.untried,
        }
    }

    /// Fetches the manifest `reference` (tag or `sha256:` digest); `None`
    /// when the registry has no such manifest. With `expected`, the bytes
    /// must hash to it; in any case they must hash to the digest the
    /// registry announces, if it announces a SHA-256 one.
    pub(crate) async fn fetch_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        expected: Option<&[u8; 32]>,
        caps: manifest::Caps,
    ) -> Result<Option<([u8; 32], Manifest)>, RegistryError> {
        let url = repo.url("manifests", reference);
        let limit = self.config.limits().max_manifest_len;
        let body = match self
            .transport
            .get(repo, &url, ACCEPT_MANIFESTS, limit)
            .await
        {
            Ok(body) => body,
            Err(RegistryError::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error),
        };
        let digest = check_digest(
            &url,
            &body.bytes,
            expected,
            body.announced_digest.as_deref(),
        )?;
        let parsed = manifest::parse(&body.bytes, body.content_type.as_deref(), caps)
            .map_err(|failure| RegistryError::Manifest { url, failure })?;
        Ok(Some((digest, parsed)))
    }

    /// Fetches a blob and checks it against its descriptor.
    pub(crate) async fn fetch_blob(
        &self,
        repo: &Repository,
        descriptor: &Descriptor,
        limit: usize,
    ) -> Result<Vec<u8>, RegistryError> {
        let digest = digest_string(&descriptor.digest);
        let url = repo.url("blobs", &digest);
        let declared = usize::try_from(descriptor.size).unwrap_or(usize::MAX);
        if declared > limit {
            return Err(RegistryError::TooLarge { url, limit });
        }
        let body = self.transport.get(repo, &url, "*/*", declared).await?;
        let found = u64::try_from(body.bytes.len()).unwrap_or(u64::MAX);
        if found != descriptor.size {
            return Err(RegistryError::SizeMismatch {
                url,
                expected: descriptor.size,
                found,
            });
        }
        check_digest(&url, &body.bytes, Some(&descriptor.digest), None)?;
        Ok(body.bytes)
    }

    /// Follows the bundle referrers listed in an index.
    async fn follow_index(
        &self,
        repo: &Repository,
        index: &Manifest,
        source: SignatureSource,
        caps: manifest::Caps,
        found: &mut Collector,
    ) {
        let referrers = index.manifests.iter().filter(|entry| {
            entry
                .artifact_type
                .as_deref()
                .is_some_and(is_bundle_media_type)
        });
        for entry in referrers {
            if found.full() {
                found.untried = found.untried.saturating_add(1);
                continue;
            }
            let digest = digest_string(&entry.digest);
            match self
                .fetch_manifest(repo, &digest, Some(&entry.digest), caps)
                .await
            {
                Ok(Some((manifest_digest, referrer))) if referrer.kind == ManifestKind::Image => {
                    self.bundles_from(repo, &referrer, &manifest_digest, source, found)
                        .await;
                }
                Ok(Some(_)) => found.fail(
                    origin(source, Some(&entry.digest), None),
                    RegistryError::Manifest {
                        url: repo.url("manifests", &digest),
                        failure: ManifestFailure::UnexpectedKind,
                    },
                ),
                Ok(None) => found.fail(
                    origin(source, Some(&entry.digest), None),
                    RegistryError::NotFound {
                        url: repo.url("manifests", &digest),
                    },
                ),
                Err(error) => found.fail(origin(source, Some(&entry.digest), None), error),
            }
        }
    }

    /// The bundle layers of a cosign v3 signature manifest.
    async fn bundles_from(
        &self,
        repo: &Repository,
        signature: &Manifest,
        manifest_digest: &[u8; 32],
        source: SignatureSource,
        found: &mut Collector,
    ) {
        let limit = self.config.limits().max_bundle_len;
        let layers = signature
            .layers
            .iter()
            .enumerate()
            .filter(|(_, layer)| is_bundle_media_type(&layer.media_type));
        for (index, layer) in layers {
            if found.full() {
                found.untried = found.untried.saturating_add(1);
                continue;
            }
            let origin = origin(source, Some(manifest_digest), Some(index));
            match self.fetch_blob(repo, layer, limit).await {
                Ok(bundle) => found.candidates.push(Candidate {
                    origin,
                    content: Content::Bundle(bundle),
                }),
                Err(error) => found.fail(origin, error),
            }
        }
    }

    /// The simple-signing layers of a `.sig` manifest.
    async fn simple_from(
        &self,
        repo: &Repository,
        signature: &Manifest,
        manifest_digest: &[u8; 32],
        found: &mut Collector,
    ) {
        let limit = self.config.limits().max_payload_len;
        let layers = signature
            .layers
            .iter()
            .enumerate()
            .filter(|(_, layer)| layer.media_type == SIMPLE_SIGNING_MEDIA_TYPE);
        for (index, layer) in layers {
            if found.full() {
                found.untried = found.untried.saturating_add(1);
                continue;
            }
            let origin = origin(
                SignatureSource::SimpleSigningTag,
                Some(manifest_digest),
                Some(index),
            );
            let annotation = |key: &str| layer.annotations.get(key).cloned();
            let Some(signature) = annotation(ANNOTATION_SIGNATURE) else {
                found.fail(origin, CandidateError::MissingSignatureAnnotation);
                continue;
            };
            match self.fetch_blob(repo, layer, limit).await {
                Ok(payload) => found.candidates.push(Candidate {
                    origin,
                    content: Content::SimpleSigning {
                        payload,
                        signature,
                        certificate: annotation(ANNOTATION_CERTIFICATE),
                        chain: annotation(ANNOTATION_CHAIN),
                        rekor_bundle: annotation(ANNOTATION_BUNDLE),
                    },
                }),
                Err(error) => found.fail(origin, error),
            }
        }
    }
}

/// The SHA-256 of `bytes`, checked against the digest asked for and the one
/// announced (content addressing: OCI Distribution Specification v1.1,
/// "Pulling manifests" — a client SHOULD verify the returned manifest
/// against the digest it requested).
pub(crate) fn check_digest(
    url: &str,
    bytes: &[u8],
    expected: Option<&[u8; 32]>,
    announced: Option<&str>,
) -> Result<[u8; 32], RegistryError> {
    let digest = sha256(bytes);
    let mismatch = |expected: String| RegistryError::DigestMismatch {
        url: url.to_string(),
        expected,
        found: digest_string(&digest),
    };
    if let Some(expected) = expected
        && expected != &digest
    {
        return Err(mismatch(digest_string(expected)));
    }
    if let Some(announced) = announced
        && announced.starts_with("sha256:")
        && keyward_attest::sigstore::image::parse_image_digest(announced) != Some(digest)
    {
        return Err(mismatch(announced.chars().take(200).collect()));
    }
    Ok(digest)
}

//! Typed failures of registry access and image verification.

use keyward_attest::sigstore::VerifyError;
use keyward_attest::sigstore::image::SimpleSigningError;

/// Why talking to a registry failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Not a `registry/repository:tag` or `…@sha256:<hex>` reference.
    #[error("invalid image reference {reference:?}")]
    InvalidReference {
        /// The reference given (truncated to 200 characters).
        reference: String,
    },
    /// A digest that is not `sha256:<64 lower-case hex>`.
    #[error("unsupported digest {digest:?}: only sha256 is accepted")]
    UnsupportedDigest {
        /// The digest given (truncated to 200 characters).
        digest: String,
    },
    /// The HTTP client could not be built (TLS roots, provider).
    #[error("HTTP client setup failed")]
    ClientSetup,
    /// The registry's token handshake failed.
    #[error("authentication to {registry} failed")]
    Auth {
        /// The registry host.
        registry: String,
    },
    /// The request did not complete.
    #[error("request to {url} failed: {failure:?}")]
    Transport {
        /// The URL requested.
        url: String,
        /// At which stage.
        failure: TransportFailure,
    },
    /// The request did not complete within the configured timeout.
    #[error("request to {url} timed out")]
    Timeout {
        /// The URL requested.
        url: String,
    },
    /// 404: no such manifest or blob.
    #[error("{url} not found")]
    NotFound {
        /// The URL requested.
        url: String,
    },
    /// 401 or 403.
    #[error("{url} refused access (HTTP {status})")]
    Unauthorized {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Any other non-success status.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The body (or the size a descriptor declares) exceeds the cap.
    #[error("{url}: content larger than {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The cap that applied.
        limit: usize,
    },
    /// The content's SHA-256 is not the digest it was requested by (or that
    /// the registry announced in `Docker-Content-Digest`).
    #[error("{url}: content has digest {found}, expected {expected}")]
    DigestMismatch {
        /// The URL requested.
        url: String,
        /// The digest asked for or announced.
        expected: String,
        /// The digest of the bytes received.
        found: String,
    },
    /// The blob's length differs from its descriptor's `size`.
    #[error("{url}: content is {found} bytes, its descriptor says {expected}")]
    SizeMismatch {
        /// The URL requested.
        url: String,
        /// The descriptor's size.
        expected: u64,
        /// Bytes received.
        found: u64,
    },
    /// The manifest or index is malformed or outside what is accepted.
    #[error("{url}: manifest rejected: {failure:?}")]
    Manifest {
        /// The URL requested.
        url: String,
        /// Why.
        failure: ManifestFailure,
    },
}

/// At which stage a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportFailure {
    /// Connecting (DNS, TCP, TLS handshake, certificate verification).
    Connect,
    /// A redirect was refused: too many, or from HTTPS to plain HTTP.
    Redirect,
    /// Reading the body.
    Body,
    /// Any other failure while sending the request.
    Request,
}

/// Why a manifest or index was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestFailure {
    /// Not JSON of the manifest shape (including negative sizes).
    Json,
    /// `schemaVersion` is not 2.
    SchemaVersion {
        /// The value found.
        found: u64,
    },
    /// Neither an OCI/Docker image manifest nor an index.
    MediaType {
        /// The media type found (`mediaType`, else `Content-Type`).
        found: Option<String>,
    },
    /// A manifest without `config`/`layers`, or an index without `manifests`.
    Shape,
    /// A descriptor's digest is not `sha256:<64 lower-case hex>`.
    DescriptorDigest {
        /// The digest found (truncated to 200 characters).
        digest: String,
    },
    /// More layers than the cap.
    TooManyLayers {
        /// Layers found.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// More index entries than the cap.
    TooManyReferrers {
        /// Entries found.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// An image index where an image manifest was expected, or the reverse.
    UnexpectedKind,
}

/// Where a signature was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureSource {
    /// An entry of the OCI referrers API response.
    ReferrersApi,
    /// The `sha256-<hex>` tag (OCI referrers tag schema, or a cosign v3
    /// bundle manifest under that tag).
    ReferrersTag,
    /// A layer of the legacy `sha256-<hex>.sig` simple-signing manifest.
    SimpleSigningTag,
}

/// One discovered signature's location.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureOrigin {
    /// How it was found.
    pub source: SignatureSource,
    /// The digest of the manifest holding it, `sha256:<hex>`, when known.
    pub manifest: Option<String>,
    /// The layer index within that manifest, when known.
    pub layer: Option<usize>,
}

/// Why one discovered signature did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CandidateError {
    /// Fetching its manifest or blob failed.
    #[error("fetch failed: {0}")]
    Fetch(#[from] RegistryError),
    /// A simple-signing layer without the `dev.cosignproject.cosign/signature` annotation.
    #[error("simple-signing layer has no signature annotation")]
    MissingSignatureAnnotation,
    /// The cosign v3 bundle did not verify under the policy.
    #[error("bundle rejected: {0}")]
    Bundle(#[from] VerifyError),
    /// The simple signature did not verify under the policy.
    #[error("simple signature rejected: {0}")]
    SimpleSigning(#[from] SimpleSigningError),
}

/// A discovered signature that did not verify, and why.
#[derive(Debug)]
#[non_exhaustive]
pub struct CandidateFailure {
    /// Where it was found.
    pub origin: SignatureOrigin,
    /// Why it failed.
    pub reason: CandidateError,
}

/// Why an image was not verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Resolving the reference or listing signatures failed.
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    /// No signature of any known format refers to the digest.
    #[error("no signatures found for {digest}")]
    NoSignatures {
        /// The image digest, `sha256:<hex>`.
        digest: String,
    },
    /// Signatures were found, none verified under the policy.
    #[error("none of the {} signatures found for {digest} verified", failures.len())]
    NoneVerified {
        /// The image digest, `sha256:<hex>`.
        digest: String,
        /// Each signature tried (or that could not be fetched), in order.
        failures: Vec<CandidateFailure>,
        /// Signatures left untried once the budget was spent.
        untried: usize,
    },
}

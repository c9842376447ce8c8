//! How the vault reaches registries: transport security, credentials, limits.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use zeroize::Zeroizing;

/// Largest manifest or image index read, in bytes. The OCI Distribution
/// Specification ("Pushing Manifests") asks clients and registries to
/// support manifests of at least 4 MiB and registries to refuse larger ones
/// with 413; distribution 2.8 enforces exactly this cap on push.
pub const MAX_MANIFEST_LEN: usize = 4 * 1024 * 1024;

/// Largest Sigstore bundle blob read from a registry, in bytes. Image
/// bundles are a few kilobytes (certificate, DSSE envelope, one log entry);
/// `keyward_attest::sigstore::MAX_BUNDLE_LEN` is larger because model
/// bundles list every file.
pub const MAX_BUNDLE_BLOB_LEN: usize = 1024 * 1024;

/// Largest number of layers read from one signature manifest. cosign appends
/// one layer per signature to the `.sig` manifest; real ones have a handful.
pub const MAX_LAYERS: usize = 64;

/// Largest number of entries read from a referrers index (API response or
/// `sha256-<hex>` tag). Attestations, SBOMs and signatures all refer to the
/// image; a busy image has dozens.
pub const MAX_REFERRERS: usize = 128;

/// Largest number of signatures verified for one image. Each costs
/// certificate-chain and log checks; an attacker who can push to the
/// repository must not make verification unbounded.
pub const MAX_CANDIDATES: usize = 32;

/// Largest number of HTTP redirects followed for one request (registries
/// redirect blob reads to object storage once).
pub const MAX_REDIRECTS: usize = 5;

/// Default bound on one request, connection to last body byte.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Registry credentials for HTTP basic authentication (also used to obtain
/// bearer tokens from the registry's token service). The password is wiped
/// on drop and never printed.
pub struct BasicCredentials {
    username: String,
    password: Zeroizing<String>,
}

impl BasicCredentials {
    /// Credentials from a user name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: Zeroizing::new(password.into()),
        }
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    pub(crate) fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Caps on what is read from a registry. [`Limits::default`] uses the named
/// constants of this module; tests lower them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest manifest or index, bytes ([`MAX_MANIFEST_LEN`]).
    pub max_manifest_len: usize,
    /// Largest bundle blob, bytes ([`MAX_BUNDLE_BLOB_LEN`]).
    pub max_bundle_len: usize,
    /// Largest simple-signing payload blob, bytes
    /// (`keyward_attest::sigstore::image::MAX_SIMPLE_SIGNING_PAYLOAD`).
    pub max_payload_len: usize,
    /// Most layers in a signature manifest ([`MAX_LAYERS`]).
    pub max_layers: usize,
    /// Most entries in a referrers index ([`MAX_REFERRERS`]).
    pub max_referrers: usize,
    /// Most signatures verified per image ([`MAX_CANDIDATES`]).
    pub max_candidates: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifest_len: MAX_MANIFEST_LEN,
            max_bundle_len: MAX_BUNDLE_BLOB_LEN,
            max_payload_len: keyward_attest::sigstore::image::MAX_SIMPLE_SIGNING_PAYLOAD,
            max_layers: MAX_LAYERS,
            max_referrers: MAX_REFERRERS,
            max_candidates: MAX_CANDIDATES,
        }
    }
}

impl Limits {
    /// Sets the manifest cap (never above [`MAX_MANIFEST_LEN`]).
    pub fn with_max_manifest_len(mut self, len: usize) -> Self {
        self.max_manifest_len = len.min(MAX_MANIFEST_LEN);
        self
    }

    /// Sets the layer-count cap (never above [`MAX_LAYERS`]).
    pub fn with_max_layers(mut self, count: usize) -> Self {
        self.max_layers = count.min(MAX_LAYERS);
        self
    }

    /// Sets the candidate budget (never above [`MAX_CANDIDATES`]).
    pub fn with_max_candidates(mut self, count: usize) -> Self {
        self.max_candidates = count.min(MAX_CANDIDATES);
        self
    }
}

/// Registry access configuration. TLS (with the platform's roots) for every
/// registry except hosts listed with [`RegistryConfig::allow_insecure_http`];
/// anonymous access except hosts given [`RegistryConfig::with_basic_auth`].
#[derive(Debug, Default)]
pub struct RegistryConfig {
    insecure_hosts: BTreeSet<String>,
    credentials: BTreeMap<String, BasicCredentials>,
    limits: Limits,
    timeout: Option<Duration>,
}

impl RegistryConfig {
    /// TLS everywhere, anonymous, default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reaches `host` (as written in references, with its port:
    /// `127.0.0.1:5000`) over plain HTTP. Meant for loopback test registries;
    /// a signature's integrity does not depend on the transport, but the
    /// tag → digest resolution does.
    pub fn allow_insecure_http(mut self, host: impl Into<String>) -> Self {
        self.insecure_hosts.insert(host.into());
        self
    }

    /// Authenticates to `host` with HTTP basic credentials (directly, or at
    /// the token service the registry names).
    pub fn with_basic_auth(
        mut self,
        host: impl Into<String>,
        credentials: BasicCredentials,
    ) -> Self {
        self.credentials.insert(host.into(), credentials);
        self
    }

    /// Replaces the read limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Bounds each request (connection to last byte); default
    /// [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The read limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn is_insecure(&self, host: &str) -> bool {
        self.insecure_hosts.contains(host)
    }

    pub(crate) fn insecure_hosts(&self) -> &BTreeSet<String> {
        &self.insecure_hosts
    }

    pub(crate) fn credentials(&self, host: &str) -> Option<&BasicCredentials> {
        self.credentials.get(host)
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }
}

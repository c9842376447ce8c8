//! The Sigstore trusted root: Fulcio CAs, Rekor and CT log keys, TSAs.

use std::fmt;

use sigstore_verify::trust_root::{SIGSTORE_PRODUCTION_TRUSTED_ROOT, TrustedRoot};

use super::bundle::JsonErrorKind;
use super::error::UpstreamError;

/// Largest `trusted_root.json` accepted, in bytes (the public-good root is
/// about 7 KiB).
pub const MAX_TRUSTED_ROOT_LEN: usize = 1024 * 1024;

/// Why a trusted root was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustRootError {
    /// The document is larger than [`MAX_TRUSTED_ROOT_LEN`].
    #[error("trusted root is {len} bytes, at most {max} accepted")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The bytes are not UTF-8.
    #[error("trusted root is not UTF-8")]
    NotUtf8,
    /// Not JSON of the trusted root's shape.
    #[error("trusted root JSON ({kind:?}) at line {line}, column {column}")]
    Json {
        /// What went wrong.
        kind: JsonErrorKind,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// It parsed but holds unusable material (malformed or duplicate keys,
    /// empty certificate chains, validity windows that end before they start).
    #[error("trusted root material rejected")]
    Material {
        /// Detail from `sigstore-verify`.
        #[source]
        source: UpstreamError,
    },
}

/// A trusted root, parsed and prepared for verification.
pub struct TrustRoot {
    pub(crate) verifier: sigstore_verify::Verifier,
    pub(crate) root: TrustedRoot,
    production: bool,
}

impl fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustRoot")
            .field("production", &self.production)
            .field(
                "certificate_authorities",
                &self.root.certificate_authorities.len(),
            )
            .field("tlogs", &self.root.tlogs.len())
            .field("ctlogs", &self.root.ctlogs.len())
            .field(
                "timestamp_authorities",
                &self.root.timestamp_authorities.len(),
            )
            .finish()
    }
}

impl TrustRoot {
    /// The Sigstore public-good production root embedded in
    /// `sigstore-trust-root` 0.15.1 (TUF target `trusted_root.json` as of
    /// that release). Operators of long-lived vaults should pin a current
    /// root with [`TrustRoot::from_json`] instead.
    pub fn production() -> Result<Self, TrustRootError> {
        let mut root = Self::from_json(SIGSTORE_PRODUCTION_TRUSTED_ROOT.as_bytes())?;
        root.production = true;
        Ok(root)
    }

    /// Parses an operator-pinned `trusted_root.json`
    /// (`dev.sigstore.trustroot.v1.TrustedRoot`, JSON mapping).
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustRootError> {
        if bytes.len() > MAX_TRUSTED_ROOT_LEN {
            return Err(TrustRootError::TooLarge {
                len: bytes.len(),
                max: MAX_TRUSTED_ROOT_LEN,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|_| TrustRootError::NotUtf8)?;
        let root = TrustedRoot::from_json(text).map_err(|error| match error {
            sigstore_verify::trust_root::Error::Json(e) => TrustRootError::Json {
                kind: JsonErrorKind::of(&e),
                line: e.line(),
                column: e.column(),
            },
            other => TrustRootError::Material {
                source: UpstreamError::new(sigstore_verify::Error::TrustRoot(other)),
            },
        })?;
        let verifier =
            sigstore_verify::Verifier::new(&root).map_err(|e| TrustRootError::Material {
                source: UpstreamError::new(e),
            })?;
        Ok(Self {
            verifier,
            root,
            production: false,
        })
    }

    /// True for the embedded public-good root.
    pub fn is_production(&self) -> bool {
        self.production
    }
}

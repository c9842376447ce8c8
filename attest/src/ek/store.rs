//! The manufacturer EK CA certificates the vault trusts.

use x509_parser::pem::Pem;

use super::cert::{CertError, Certificate};

/// Most certificates one [`EkTrustStore`] holds (keylime's store has 51).
pub const MAX_TRUST_STORE_CERTS: usize = 4096;

/// Largest bundle (PEM text or DER) accepted by one `add_*` call.
pub const MAX_BUNDLE_LEN: usize = 4 * 1024 * 1024;

/// Trust anchors (manufacturer roots) and untrusted intermediates that EK
/// certificate chains are built from.
///
/// Certificates are loaded from bytes the caller read (this crate does no
/// I/O); `origin` names where they came from, usually a file name, so a
/// failure says which file and which certificate in it is at fault. Each
/// call adds the whole bundle or nothing. Identical certificates are stored
/// once. Every certificate must be a CA certificate (basicConstraints cA,
/// and keyCertSign when keyUsage is present): a store entry that cannot
/// issue is a configuration mistake worth failing loudly on.
///
/// A trust anchor need not be self-signed: an intermediate configured as a
/// root is trusted as it is, without its own issuer.
#[derive(Debug, Default)]
pub struct EkTrustStore {
    pub(crate) roots: Vec<Certificate>,
    pub(crate) intermediates: Vec<Certificate>,
}

/// A trust-store bundle that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrustStoreError {
    /// The bundle is larger than [`MAX_BUNDLE_LEN`].
    #[error("{origin}: {len} bytes, more than {max}")]
    TooLarge {
        /// Where the bundle came from.
        origin: String,
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A PEM block (counting from 0) is malformed, or the text is not UTF-8.
    #[error("{origin}: PEM block {index} is malformed")]
    MalformedPem {
        /// Where the bundle came from.
        origin: String,
        /// Index of the block.
        index: usize,
    },
    /// A PEM block is not a `CERTIFICATE`.
    #[error("{origin}: PEM block {index} is {label:?}, expected \"CERTIFICATE\"")]
    UnexpectedPemLabel {
        /// Where the bundle came from.
        origin: String,
        /// Index of the block.
        index: usize,
        /// The label found.
        label: String,
    },
    /// The bundle holds no certificate.
    #[error("{origin}: no certificate")]
    NoCertificates {
        /// Where the bundle came from.
        origin: String,
    },
    /// A certificate (counting from 0) cannot be decoded.
    #[error("{origin}: certificate {index}: {error}")]
    Certificate {
        /// Where the bundle came from.
        origin: String,
        /// Index of the certificate in the bundle.
        index: usize,
        /// Why it was rejected.
        #[source]
        error: CertError,
    },
    /// A certificate is not a CA certificate (RFC 5280 §4.2.1.9).
    #[error("{origin}: certificate {index} ({subject}) is not a CA certificate")]
    NotCa {
        /// Where the bundle came from.
        origin: String,
        /// Index of the certificate in the bundle.
        index: usize,
        /// Its subject.
        subject: String,
    },
    /// A CA certificate's keyUsage lacks keyCertSign (RFC 5280 §4.2.1.3).
    #[error("{origin}: certificate {index} ({subject}) may not sign certificates")]
    MissingKeyCertSign {
        /// Where the bundle came from.
        origin: String,
        /// Index of the certificate in the bundle.
        index: usize,
        /// Its subject.
        subject: String,
    },
    /// The store would hold more than [`MAX_TRUST_STORE_CERTS`] certificates.
    #[error("{origin}: trust store full ({max} certificates)")]
    Full {
        /// Where the bundle came from.
        origin: String,
        /// The cap.
        max: usize,
    },
}

impl EkTrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds trust anchors from a PEM bundle (any number of `CERTIFICATE`
    /// blocks, text between blocks ignored) or one DER certificate. DER is
    /// recognised by its leading SEQUENCE tag (0x30), which PEM text never
    /// starts with. Returns how many certificates were new.
    pub fn add_roots(&mut self, origin: &str, bundle: &[u8]) -> Result<usize, TrustStoreError> {
        let certs = self.decode_bundle(origin, bundle)?;
        Ok(add_new(&mut self.roots, certs))
    }

    /// Adds untrusted intermediates, in the same formats as
    /// [`EkTrustStore::add_roots`]. They are used to build chains but never
    /// end one. Returns how many certificates were new.
    pub fn add_intermediates(
        &mut self,
        origin: &str,
        bundle: &[u8],
    ) -> Result<usize, TrustStoreError> {
        let certs = self.decode_bundle(origin, bundle)?;
        Ok(add_new(&mut self.intermediates, certs))
    }

    /// Number of trust anchors.
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// Number of intermediates.
    pub fn intermediate_count(&self) -> usize {
        self.intermediates.len()
    }

    fn decode_bundle(
        &self,
        origin: &str,
        bundle: &[u8],
    ) -> Result<Vec<Certificate>, TrustStoreError> {
        let origin_owned = || origin.to_owned();
        if bundle.len() > MAX_BUNDLE_LEN {
            return Err(TrustStoreError::TooLarge {
                origin: origin_owned(),
                len: bundle.len(),
                max: MAX_BUNDLE_LEN,
            });
        }
        let room = MAX_TRUST_STORE_CERTS
            .saturating_sub(self.roots.len().saturating_add(self.intermediates.len()));
        let full = || TrustStoreError::Full {
            origin: origin_owned(),
            max: MAX_TRUST_STORE_CERTS,
        };

        let ders = if bundle.first() == Some(&0x30) {
            vec![bundle.to_vec()]
        } else {
            let malformed = |index| TrustStoreError::MalformedPem {
                origin: origin_owned(),
                index,
            };
            if std::str::from_utf8(bundle).is_err() {
                return Err(malformed(0));
            }
            let mut ders = Vec::new();
            for (index, block) in Pem::iter_from_buffer(bundle).enumerate() {
                if index >= room {
                    return Err(full());
                }
                let block = block.map_err(|_| malformed(index))?;
                if block.label != "CERTIFICATE" {
                    return Err(TrustStoreError::UnexpectedPemLabel {
                        origin: origin_owned(),
                        index,
                        label: block.label,
                    });
                }
                ders.push(block.contents);
            }
            ders
        };
        if ders.is_empty() {
            return Err(TrustStoreError::NoCertificates {
                origin: origin_owned(),
            });
        }
        if ders.len() > room {
            return Err(full());
        }

        let mut certs = Vec::with_capacity(ders.len());
        for (index, der) in ders.iter().enumerate() {
            let cert =
                Certificate::from_der(der).map_err(|error| TrustStoreError::Certificate {
                    origin: origin_owned(),
                    index,
                    error,
                })?;
            if !cert.is_ca() {
                return Err(TrustStoreError::NotCa {
                    origin: origin_owned(),
                    index,
                    subject: cert.subject_name,
                });
            }
            if cert.key_cert_sign == Some(false) {
                return Err(TrustStoreError::MissingKeyCertSign {
                    origin: origin_owned(),
                    index,
                    subject: cert.subject_name,
                });
            }
            certs.push(cert);
        }
        Ok(certs)
    }
}

/// Appends the certificates not already in `into`; returns how many.
fn add_new(into: &mut Vec<Certificate>, certs: Vec<Certificate>) -> usize {
    let mut added = 0usize;
    for cert in certs {
        if !into.iter().any(|known| known.der == cert.der) {
            into.push(cert);
            added = added.saturating_add(1);
        }
    }
    added
}

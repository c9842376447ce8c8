//! One X.509 certificate, decoded into the facts EK chain validation needs.
//!
//! DER decoding is x509-parser's; this module decides what is accepted
//! (signature algorithms, extensions, the TCG TPM identity attributes) and
//! copies the facts out, so the rest of the verifier never sees borrowed
//! parser types.

use x509_parser::asn1_rs::{Any, Tag};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::extensions::{GeneralName, ParsedExtension, SubjectAlternativeName};
use x509_parser::nom::Parser;
use x509_parser::x509::{AlgorithmIdentifier, X509Version};

use crate::key::{KeyError, PublicKey};

/// Largest DER certificate accepted. Real EK and EK CA certificates are
/// under 4 KiB.
pub const MAX_CERTIFICATE_LEN: usize = 16 * 1024;

/// Largest PEM text accepted by [`certificate_from_pem`].
pub const MAX_CERTIFICATE_PEM_LEN: usize = 32 * 1024;

/// Largest TPM manufacturer, model or version attribute accepted, in bytes.
pub const MAX_TPM_ATTRIBUTE_LEN: usize = 128;

/// A certificate signature algorithm the verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// sha1WithRSAEncryption (RFC 3279 §2.2.1). Still used by Infineon and
    /// Nuvoton EK CAs; see [`super::EkPolicy::allow_sha1_signatures`].
    RsaPkcs1Sha1,
    /// sha256WithRSAEncryption (RFC 4055 §5).
    RsaPkcs1Sha256,
    /// sha384WithRSAEncryption (RFC 4055 §5).
    RsaPkcs1Sha384,
    /// sha512WithRSAEncryption (RFC 4055 §5).
    RsaPkcs1Sha512,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt (RFC 4055 §3.1).
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384, 48-byte salt (RFC 4055 §3.1).
    RsaPssSha384,
    /// RSASSA-PSS with SHA-512, MGF1-SHA-512, 64-byte salt (RFC 4055 §3.1).
    RsaPssSha512,
    /// ecdsa-with-SHA256 with a P-256 or P-384 issuer key (RFC 5758 §3.2).
    EcdsaSha256,
    /// ecdsa-with-SHA384 with a P-256 or P-384 issuer key (RFC 5758 §3.2).
    EcdsaSha384,
}

/// A certificate that cannot be decoded or uses something the verifier does
/// not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The encoding is longer than the cap.
    #[error("certificate encoding is {len} bytes, more than {max}")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// x509-parser rejected the DER.
    #[error("malformed certificate DER")]
    Malformed,
    /// Bytes follow the certificate.
    #[error("{len} bytes follow the certificate")]
    TrailingData {
        /// Number of extra bytes.
        len: usize,
    },
    /// Not an X.509 v3 certificate.
    #[error("X.509 version {version} is not accepted")]
    UnsupportedVersion {
        /// The version number (1 for v1).
        version: u32,
    },
    /// The signature algorithm, or its parameters, is not one we accept.
    #[error("unsupported signature algorithm {oid}")]
    UnsupportedSignatureAlgorithm {
        /// Dotted OID of the algorithm.
        oid: String,
    },
    /// The signed and the outer signature algorithm differ (RFC 5280 §4.1.1.2).
    #[error("signatureAlgorithm differs from the TBSCertificate signature field")]
    SignatureAlgorithmMismatch,
    /// The subject public key cannot be used.
    #[error("certificate public key: {0}")]
    PublicKey(#[from] KeyError),
    /// An extension appears twice (RFC 5280 §4.2).
    #[error("extension {oid} appears more than once")]
    DuplicateExtension {
        /// Dotted OID of the extension.
        oid: String,
    },
    /// An extension the verifier relies on, or a critical one, does not parse.
    #[error("extension {oid} is malformed")]
    MalformedExtension {
        /// Dotted OID of the extension.
        oid: String,
    },
    /// A critical extension the verifier does not process (RFC 5280 §4.2).
    #[error("unknown critical extension {oid}")]
    UnknownCriticalExtension {
        /// Dotted OID of the extension.
        oid: String,
    },
    /// The subjectAltName holds some but not all TPM identity attributes, one
    /// twice, or one that is not a string of at most [`MAX_TPM_ATTRIBUTE_LEN`] bytes.
    #[error("malformed TPM manufacturer/model/version attributes")]
    MalformedTpmIdentity,
    /// The PEM text is not one well-formed block surrounded by whitespace.
    #[error("malformed PEM")]
    PemMalformed,
    /// The PEM block is not a `CERTIFICATE`.
    #[error("PEM block is {label:?}, expected \"CERTIFICATE\"")]
    PemLabel {
        /// The label found.
        label: String,
    },
}

/// The TPM identity a TCG EK certificate carries in its subjectAltName
/// directoryName (TCG EK Credential Profile for TPM Family 2.0, X.509
/// certificate fields, Subject Alternative Name; attribute types
/// tcg-at-tpmManufacturer 2.23.133.2.1, tcg-at-tpmModel 2.23.133.2.2,
/// tcg-at-tpmVersion 2.23.133.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmIdentity {
    manufacturer: String,
    model: String,
    version: String,
}

impl TpmIdentity {
    /// The manufacturer attribute as written, e.g. `id:474F4F47`.
    pub fn manufacturer(&self) -> &str {
        &self.manufacturer
    }

    /// The model attribute as written, e.g. `vTPM` or `swtpm`.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The firmware version attribute as written, e.g. `id:20160511`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The manufacturer as the TPM_PT_MANUFACTURER value it encodes
    /// (`id:` and eight hex digits, as the TCG EK Credential Profile encodes it),
    /// e.g. 0x474F4F47 ("GOOG"); `None` if it is not in that form.
    pub fn manufacturer_id(&self) -> Option<u32> {
        let hex = self.manufacturer.strip_prefix("id:")?;
        if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(hex, 16).ok()
    }
}

/// Decodes a PEM `CERTIFICATE` block (RFC 7468 §5) to DER. Only whitespace
/// may surround the block.
pub fn certificate_from_pem(pem: &str) -> Result<Vec<u8>, CertError> {
    if pem.len() > MAX_CERTIFICATE_PEM_LEN {
        return Err(CertError::TooLarge {
            len: pem.len(),
            max: MAX_CERTIFICATE_PEM_LEN,
        });
    }
    let text = pem.trim_start();
    // x509-parser skips text before the first BEGIN line; for a single
    // certificate that text is more likely a mix-up than a comment.
    if !text.starts_with("-----BEGIN ") {
        return Err(CertError::PemMalformed);
    }
    let (rest, block) =
        x509_parser::pem::parse_x509_pem(text.as_bytes()).map_err(|_| CertError::PemMalformed)?;
    if block.label != "CERTIFICATE" {
        return Err(CertError::PemLabel { label: block.label });
    }
    if !rest.iter().all(u8::is_ascii_whitespace) {
        return Err(CertError::PemMalformed);
    }
    Ok(block.contents)
}

// OID contents octets (X.690 §8.19).
/// sha1WithRSAEncryption, 1.2.840.113549.1.1.5.
const OID_SHA1_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
/// sha256WithRSAEncryption, 1.2.840.113549.1.1.11.
const OID_SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
/// sha384WithRSAEncryption, 1.2.840.113549.1.1.12.
const OID_SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
/// sha512WithRSAEncryption, 1.2.840.113549.1.1.13.
const OID_SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
/// id-RSASSA-PSS, 1.2.840.113549.1.1.10.
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// ecdsa-with-SHA256, 1.2.840.10045.4.3.2.
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// ecdsa-with-SHA384, 1.2.840.10045.4.3.3.
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];

/// RSASSA-PSS-params contents (RFC 4055 §3.1) for SHA-256: hashAlgorithm
/// [0] sha256, maskGenAlgorithm [1] mgf1SHA256, saltLength [2] 32, default
/// trailerField. As with webpki, only these exact encodings are accepted: any
/// other parameter combination is rare and a source of confusion bugs.
const PSS_SHA256_PARAMS: &[u8] = &[
    0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
    0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2,
    0x03, 0x02, 0x01, 0x20,
];
/// RSASSA-PSS-params contents for SHA-384 with a 48-byte salt.
const PSS_SHA384_PARAMS: &[u8] = &[
    0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
    0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0xa2,
    0x03, 0x02, 0x01, 0x30,
];
/// RSASSA-PSS-params contents for SHA-512 with a 64-byte salt.
const PSS_SHA512_PARAMS: &[u8] = &[
    0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08,
    0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0xa2,
    0x03, 0x02, 0x01, 0x40,
];

/// keyUsage, 2.5.29.15.
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// subjectAltName, 2.5.29.17.
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// basicConstraints, 2.5.29.19.
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
/// certificatePolicies, 2.5.29.32.
const OID_CERTIFICATE_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
/// extKeyUsage, 2.5.29.37.
const OID_EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];

/// tcg-kp-EKCertificate, 2.23.133.8.1 (TCG EK Credential Profile, Extended Key Usage).
const OID_TCG_KP_EK_CERTIFICATE: &[u8] = &[0x67, 0x81, 0x05, 0x08, 0x01];
/// tcg-at-tpmManufacturer, 2.23.133.2.1.
const OID_TCG_AT_TPM_MANUFACTURER: &[u8] = &[0x67, 0x81, 0x05, 0x02, 0x01];
/// tcg-at-tpmModel, 2.23.133.2.2.
const OID_TCG_AT_TPM_MODEL: &[u8] = &[0x67, 0x81, 0x05, 0x02, 0x02];
/// tcg-at-tpmVersion, 2.23.133.2.3.
const OID_TCG_AT_TPM_VERSION: &[u8] = &[0x67, 0x81, 0x05, 0x02, 0x03];

/// Extensions whose content the verifier acts on: a parse failure rejects the
/// certificate even when they are not critical.
const USED_EXTENSIONS: [&[u8]; 4] = [
    OID_BASIC_CONSTRAINTS,
    OID_KEY_USAGE,
    OID_EXT_KEY_USAGE,
    OID_SUBJECT_ALT_NAME,
];

/// Extensions accepted when marked critical. RFC 5280 §4.2 requires rejecting
/// any other critical extension. certificatePolicies is here although no
/// policy processing is done: 27 of the 51 vendor EK CA certificates in
/// keylime's store (Infineon, STMicro, Nuvoton, …) mark it critical, and EK
/// trust comes from the configured manufacturer roots, not from policy OIDs.
const UNDERSTOOD_CRITICAL_EXTENSIONS: [&[u8]; 5] = [
    OID_BASIC_CONSTRAINTS,
    OID_KEY_USAGE,
    OID_EXT_KEY_USAGE,
    OID_SUBJECT_ALT_NAME,
    OID_CERTIFICATE_POLICIES,
];

/// basicConstraints (RFC 5280 §4.2.1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BasicConstraints {
    pub(crate) ca: bool,
    pub(crate) path_len: Option<u32>,
}

/// extKeyUsage, reduced to what the EK profile asks (RFC 5280 §4.2.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtendedKeyUsage {
    pub(crate) ek_certificate: bool,
    pub(crate) any: bool,
}

/// A decoded certificate. Names are kept as their DER encoding for chaining
/// and as text for error reports.
#[derive(Debug)]
pub(crate) struct Certificate {
    pub(crate) der: Vec<u8>,
    pub(crate) tbs: Vec<u8>,
    pub(crate) signature_algorithm: SignatureAlgorithm,
    pub(crate) signature: Vec<u8>,
    pub(crate) issuer: Vec<u8>,
    pub(crate) subject: Vec<u8>,
    pub(crate) issuer_name: String,
    pub(crate) subject_name: String,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) public_key: PublicKey,
    pub(crate) basic_constraints: Option<BasicConstraints>,
    /// `None` when there is no keyUsage extension.
    pub(crate) key_cert_sign: Option<bool>,
    pub(crate) extended_key_usage: Option<ExtendedKeyUsage>,
    pub(crate) tpm: Option<TpmIdentity>,
}

impl Certificate {
    /// Decodes one DER certificate; nothing may follow it.
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, CertError> {
        if der.len() > MAX_CERTIFICATE_LEN {
            return Err(CertError::TooLarge {
                len: der.len(),
                max: MAX_CERTIFICATE_LEN,
            });
        }
        let (rest, cert) = X509CertificateParser::new()
            .with_deep_parse_extensions(true)
            .parse(der)
            .map_err(|_| CertError::Malformed)?;
        if !rest.is_empty() {
            return Err(CertError::TrailingData { len: rest.len() });
        }
        let tbs = &cert.tbs_certificate;
        // TCG EK Credential Profile (Version field) and RFC 5280 §4.1.2.1: EK and CA
        // certificates carry extensions, so they are v3.
        if tbs.version != X509Version::V3 {
            return Err(CertError::UnsupportedVersion {
                version: tbs.version.0.saturating_add(1),
            });
        }
        let signature_algorithm = parse_signature_algorithm(&cert.signature_algorithm)?;
        // RFC 5280 §4.1.1.2: the outer algorithm "MUST contain the same
        // algorithm identifier as the signature field in the sequence
        // tbsCertificate"; the outer one is not covered by the signature.
        if parse_signature_algorithm(&tbs.signature)? != signature_algorithm {
            return Err(CertError::SignatureAlgorithmMismatch);
        }
        if cert.signature_value.unused_bits != 0 {
            return Err(CertError::Malformed);
        }
        let public_key = PublicKey::from_spki_der(tbs.subject_pki.raw)?;

        let mut basic_constraints = None;
        let mut key_cert_sign = None;
        let mut extended_key_usage = None;
        let mut tpm = None;
        let mut seen: Vec<&[u8]> = Vec::new();
        for ext in tbs.extensions() {
            let oid = ext.oid.as_bytes();
            // RFC 5280 §4.2: "A certificate MUST NOT include more than one
            // instance of a particular extension."
            if seen.contains(&oid) {
                return Err(CertError::DuplicateExtension {
                    oid: ext.oid.to_id_string(),
                });
            }
            seen.push(oid);
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => {
                    basic_constraints = Some(BasicConstraints {
                        ca: bc.ca,
                        path_len: bc.path_len_constraint,
                    });
                }
                ParsedExtension::KeyUsage(ku) => key_cert_sign = Some(ku.key_cert_sign()),
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    extended_key_usage = Some(ExtendedKeyUsage {
                        ek_certificate: eku
                            .other
                            .iter()
                            .any(|purpose| purpose.as_bytes() == OID_TCG_KP_EK_CERTIFICATE),
                        any: eku.any,
                    });
                }
                ParsedExtension::SubjectAlternativeName(san) => tpm = tpm_identity(san)?,
                ParsedExtension::ParseError { .. }
                    if ext.critical || USED_EXTENSIONS.contains(&oid) =>
                {
                    return Err(CertError::MalformedExtension {
                        oid: ext.oid.to_id_string(),
                    });
                }
                _ if ext.critical && !UNDERSTOOD_CRITICAL_EXTENSIONS.contains(&oid) => {
                    return Err(CertError::UnknownCriticalExtension {
                        oid: ext.oid.to_id_string(),
                    });
                }
                _ => {}
            }
        }

        Ok(Self {
            der: der.to_vec(),
            tbs: tbs.as_ref().to_vec(),
            signature_algorithm,
            signature: cert.signature_value.data.to_vec(),
            issuer: tbs.issuer.as_raw().to_vec(),
            subject: tbs.subject.as_raw().to_vec(),
            issuer_name: tbs.issuer.to_string(),
            subject_name: tbs.subject.to_string(),
            not_before: tbs.validity.not_before.timestamp(),
            not_after: tbs.validity.not_after.timestamp(),
            public_key,
            basic_constraints,
            key_cert_sign,
            extended_key_usage,
            tpm,
        })
    }

    /// basicConstraints cA is TRUE (RFC 5280 §4.2.1.9).
    pub(crate) fn is_ca(&self) -> bool {
        self.basic_constraints.is_some_and(|bc| bc.ca)
    }
}

/// Maps an AlgorithmIdentifier to an accepted signature algorithm.
fn parse_signature_algorithm(
    alg: &AlgorithmIdentifier<'_>,
) -> Result<SignatureAlgorithm, CertError> {
    let oid = alg.algorithm.as_bytes();
    let params = alg.parameters.as_ref();
    // RFC 4055 §5: for the PKCS #1 v1.5 algorithms "implementations MUST
    // accept the parameters being absent as well as present" (as NULL).
    let null_or_absent = params.is_none_or(|p| p.tag() == Tag::Null && p.data.is_empty());
    // RFC 5758 §3.2: the ecdsa-with-SHA* identifiers omit the parameters.
    let absent = params.is_none();
    let pss = |expected: &[u8]| params.is_some_and(|p| is_sequence_with(p, expected));
    let found = if oid == OID_SHA1_RSA && null_or_absent {
        SignatureAlgorithm::RsaPkcs1Sha1
    } else if oid == OID_SHA256_RSA && null_or_absent {
        SignatureAlgorithm::RsaPkcs1Sha256
    } else if oid == OID_SHA384_RSA && null_or_absent {
        SignatureAlgorithm::RsaPkcs1Sha384
    } else if oid == OID_SHA512_RSA && null_or_absent {
        SignatureAlgorithm::RsaPkcs1Sha512
    } else if oid == OID_RSA_PSS && pss(PSS_SHA256_PARAMS) {
        SignatureAlgorithm::RsaPssSha256
    } else if oid == OID_RSA_PSS && pss(PSS_SHA384_PARAMS) {
        SignatureAlgorithm::RsaPssSha384
    } else if oid == OID_RSA_PSS && pss(PSS_SHA512_PARAMS) {
        SignatureAlgorithm::RsaPssSha512
    } else if oid == OID_ECDSA_SHA256 && absent {
        SignatureAlgorithm::EcdsaSha256
    } else if oid == OID_ECDSA_SHA384 && absent {
        SignatureAlgorithm::EcdsaSha384
    } else {
        return Err(CertError::UnsupportedSignatureAlgorithm {
            oid: alg.algorithm.to_id_string(),
        });
    };
    Ok(found)
}

fn is_sequence_with(any: &Any<'_>, contents: &[u8]) -> bool {
    any.tag() == Tag::Sequence && any.data == contents
}

/// Extracts the TCG TPM identity attributes from a subjectAltName
/// directoryName, if there are any.
fn tpm_identity(san: &SubjectAlternativeName<'_>) -> Result<Option<TpmIdentity>, CertError> {
    let mut manufacturer = None;
    let mut model = None;
    let mut version = None;
    for name in &san.general_names {
        let GeneralName::DirectoryName(dn) = name else {
            continue;
        };
        for attribute in dn.iter().flat_map(|rdn| rdn.iter()) {
            let slot = match attribute.attr_type().as_bytes() {
                oid if oid == OID_TCG_AT_TPM_MANUFACTURER => &mut manufacturer,
                oid if oid == OID_TCG_AT_TPM_MODEL => &mut model,
                oid if oid == OID_TCG_AT_TPM_VERSION => &mut version,
                _ => continue,
            };
            // TCG EK Credential Profile, Subject Alternative Name: each attribute is a
            // UTF8String and appears once.
            let value = attribute
                .as_str()
                .map_err(|_| CertError::MalformedTpmIdentity)?;
            if slot.is_some() || value.len() > MAX_TPM_ATTRIBUTE_LEN {
                return Err(CertError::MalformedTpmIdentity);
            }
            *slot = Some(value.to_owned());
        }
    }
    match (manufacturer, model, version) {
        (None, None, None) => Ok(None),
        (Some(manufacturer), Some(model), Some(version)) => Ok(Some(TpmIdentity {
            manufacturer,
            model,
            version,
        })),
        _ => Err(CertError::MalformedTpmIdentity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manufacturer_id_needs_id_prefix_and_eight_hex_digits() {
        let id = |m: &str| {
            TpmIdentity {
                manufacturer: m.into(),
                model: String::new(),
                version: String::new(),
            }
            .manufacturer_id()
        };
        assert_eq!(id("id:474F4F47"), Some(0x474F_4F47));
        assert_eq!(id("id:00001014"), Some(0x1014));
        assert_eq!(id("id:+0001014"), None);
        assert_eq!(id("id:1014"), None);
        assert_eq!(id("474F4F47"), None);
    }

    #[test]
    fn extension_oid_constants_match_their_dotted_form() {
        let s = crate::key::oid_string;
        assert_eq!(s(OID_EXT_KEY_USAGE), "2.5.29.37");
        assert_eq!(s(OID_CERTIFICATE_POLICIES), "2.5.29.32");
        assert_eq!(s(OID_TCG_KP_EK_CERTIFICATE), "2.23.133.8.1");
        assert_eq!(s(OID_TCG_AT_TPM_VERSION), "2.23.133.2.3");
        assert_eq!(s(OID_RSA_PSS), "1.2.840.113549.1.1.10");
        assert_eq!(s(OID_ECDSA_SHA384), "1.2.840.10045.4.3.3");
    }
}

//! Sigstore bundle parsing: bounded, typed errors, never a panic.
//!
//! The bundle format is the protobuf-specs `dev.sigstore.bundle.v1.Bundle` in
//! its JSON mapping. `sigstore-types` does the full deserialisation; before
//! it runs, a small shape pass reads the fields whose failures the vault must
//! report precisely (the media type, which content is present, the base64
//! fields) so that malformed input gets a [`BundleError`] naming the problem
//! rather than a serde message.

use base64::Engine as _;
use serde::Deserialize;
use sigstore_types::Bundle;
use sigstore_types::bundle::{SignatureContent, VerificationMaterialContent};

/// Largest bundle accepted, in bytes. A model-signing bundle lists every
/// file's digest in its payload (about 150 bytes per file, base64 inflated),
/// so this allows models of roughly 50 000 files; image and blob bundles are
/// a few kilobytes.
pub const MAX_BUNDLE_LEN: usize = 16 * 1024 * 1024;

/// The bundle media types the verifier accepts (protobuf-specs
/// `MediaType` comments; `version=0.3` is the pre-release spelling of v0.3
/// that sigstore clients still accept).
const MEDIA_TYPES: [(&str, BundleVersion); 4] = [
    (
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        BundleVersion::V0_1,
    ),
    (
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        BundleVersion::V0_2,
    ),
    (
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        BundleVersion::V0_3,
    ),
    (
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        BundleVersion::V0_3,
    ),
];

/// A bundle format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleVersion {
    /// v0.1: certificate chain, SET required.
    V0_1,
    /// v0.2: certificate chain, inclusion proof.
    V0_2,
    /// v0.3: single certificate or public key.
    V0_3,
}

/// Which base64 field of a bundle failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleField {
    /// `messageSignature.signature`
    MessageSignature,
    /// `messageSignature.messageDigest.digest`
    MessageDigest,
    /// `dsseEnvelope.payload`
    DssePayload,
    /// `dsseEnvelope.signatures[].sig`
    DsseSignature,
    /// `verificationMaterial.certificate.rawBytes` or a chain certificate
    Certificate,
    /// `tlogEntries[].canonicalizedBody`
    CanonicalizedBody,
    /// `tlogEntries[].inclusionPromise.signedEntryTimestamp`
    SignedEntryTimestamp,
    /// `timestampVerificationData.rfc3161Timestamps[].signedTimestamp`
    Rfc3161Timestamp,
}

/// What kind of JSON problem `serde_json` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// Not JSON.
    Syntax,
    /// JSON, but not the expected structure or values.
    Data,
    /// The input ended inside a value.
    Eof,
}

impl JsonErrorKind {
    pub(crate) fn of(error: &serde_json::Error) -> Self {
        match error.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Io => Self::Syntax,
            serde_json::error::Category::Data => Self::Data,
            serde_json::error::Category::Eof => Self::Eof,
        }
    }
}

/// Why bundle bytes were not accepted as a Sigstore bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bundle is larger than [`MAX_BUNDLE_LEN`].
    #[error("bundle is {len} bytes, at most {max} accepted")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The bytes are not UTF-8 (RFC 8259 §8.1 requires it of JSON).
    #[error("bundle is not UTF-8")]
    NotUtf8,
    /// The bytes are not JSON of the bundle's shape.
    #[error("bundle JSON ({kind:?}) at line {line}, column {column}")]
    Json {
        /// What went wrong.
        kind: JsonErrorKind,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// `mediaType` is absent. The protobuf-specs bundle requires it; a
    /// bundle without one is not known to be a Sigstore bundle.
    #[error("bundle has no mediaType")]
    MissingMediaType,
    /// `mediaType` names a format this verifier does not know.
    #[error("unknown bundle media type {media_type:?}")]
    UnknownMediaType {
        /// The media type given (truncated to 200 characters).
        media_type: String,
    },
    /// Neither `messageSignature` nor `dsseEnvelope` is present, or both are.
    #[error("bundle must hold exactly one of messageSignature and dsseEnvelope")]
    ContentNotExactlyOne,
    /// `verificationMaterial` holds no certificate, chain or public key.
    #[error("bundle verification material holds no certificate, chain or public key")]
    MissingVerificationMaterial,
    /// A certificate chain is present but empty.
    #[error("bundle certificate chain is empty")]
    EmptyCertificateChain,
    /// A DSSE envelope does not carry exactly one signature (a bundle's
    /// verification material vouches for one signature).
    #[error("DSSE envelope has {count} signatures, exactly 1 required")]
    DsseSignatureCount {
        /// Signatures present.
        count: usize,
    },
    /// A base64 field does not decode (protobuf JSON mapping: standard or
    /// URL-safe alphabet, padding optional).
    #[error("bundle field {field:?} is not valid base64")]
    InvalidBase64 {
        /// The field.
        field: BundleField,
    },
    /// The bundle passed the shape checks but `sigstore-types` rejected a
    /// value (for example a negative log index or an unknown entry kind).
    #[error("bundle value rejected ({kind:?}) at line {line}, column {column}")]
    InvalidValue {
        /// What went wrong.
        kind: JsonErrorKind,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
}

impl BundleError {
    fn json(error: &serde_json::Error) -> Self {
        Self::Json {
            kind: JsonErrorKind::of(error),
            line: error.line(),
            column: error.column(),
        }
    }
}

/// A bundle that parsed and passed the shape checks. Nothing about it has
/// been verified.
#[derive(Debug, Clone)]
pub struct ParsedBundle {
    pub(crate) bundle: Bundle,
    version: BundleVersion,
}

impl ParsedBundle {
    pub(crate) fn from_parts(bundle: Bundle, version: BundleVersion) -> Self {
        Self { bundle, version }
    }

    /// The bundle format version.
    pub fn version(&self) -> BundleVersion {
        self.version
    }

    /// True when the content is a DSSE envelope (rather than a message signature).
    pub fn is_dsse(&self) -> bool {
        matches!(self.bundle.content, SignatureContent::DsseEnvelope(_))
    }

    /// True when the verification material is a public key hint (managed key).
    pub fn is_public_key(&self) -> bool {
        matches!(
            self.bundle.verification_material.content,
            VerificationMaterialContent::PublicKey(_)
        )
    }

    /// Number of transparency-log entries.
    pub fn tlog_entry_count(&self) -> usize {
        self.bundle.verification_material.tlog_entries.len()
    }

    /// The DSSE payload type and payload, if the content is a DSSE envelope.
    pub(crate) fn dsse(&self) -> Option<(&str, &[u8])> {
        match &self.bundle.content {
            SignatureContent::DsseEnvelope(envelope) => {
                Some((envelope.payload_type.as_str(), envelope.payload.as_bytes()))
            }
            _ => None,
        }
    }
}

/// Parses a Sigstore bundle (JSON). This is the fuzzing entry point for
/// bundles: it accepts any bytes and returns an error or a [`ParsedBundle`].
pub fn parse_bundle(bytes: &[u8]) -> Result<ParsedBundle, BundleError> {
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(BundleError::TooLarge {
            len: bytes.len(),
            max: MAX_BUNDLE_LEN,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|_| BundleError::NotUtf8)?;
    let shape: Shape = serde_json::from_str(text).map_err(|e| BundleError::json(&e))?;
    let version = shape.check()?;
    let bundle = match Bundle::from_json(text) {
        Ok(bundle) => bundle,
        Err(first) => {
            // proto3 JSON mapping: `null` means the field's default value.
            // model-signing 1.0.x writes `"keyid": null`, which sigstore-types
            // rejects, so a failed parse is retried with nulls removed.
            let mut value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| BundleError::json(&e))?;
            if !strip_nulls(&mut value) {
                return Err(invalid_value(first));
            }
            serde_json::from_value(value).map_err(|_| invalid_value(first))?
        }
    };
    Ok(ParsedBundle { bundle, version })
}

fn invalid_value(error: sigstore_types::Error) -> BundleError {
    match error {
        sigstore_types::Error::Json(e) => BundleError::InvalidValue {
            kind: JsonErrorKind::of(&e),
            line: e.line(),
            column: e.column(),
        },
        // `Bundle::from_json` reports everything through serde.
        _ => BundleError::InvalidValue {
            kind: JsonErrorKind::Data,
            line: 0,
            column: 0,
        },
    }
}

/// Removes object members whose value is `null`, recursively; true if any
/// was removed. Depth is bounded by serde_json's recursion limit (128),
/// which the value already passed.
fn strip_nulls(value: &mut serde_json::Value) -> bool {
    let mut removed = false;
    match value {
        serde_json::Value::Object(map) => {
            let before = map.len();
            map.retain(|_, v| !v.is_null());
            removed = map.len() != before;
            for v in map.values_mut() {
                removed |= strip_nulls(v);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                removed |= strip_nulls(v);
            }
        }
        _ => {}
    }
    removed
}

/// Decodes base64 as the protobuf JSON mapping allows (and as
/// `sigstore-types` decodes it): standard or URL-safe alphabet, with or
/// without padding.
pub(crate) fn decode_protojson_base64(value: &str) -> Option<Vec<u8>> {
    use base64::alphabet;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let alphabet = if value.contains(['-', '_']) {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    };
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
    .decode(value)
    .ok()
}

// The shape pass. Unknown fields are allowed: the protobuf JSON mapping
// requires readers to ignore them.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    media_type: Option<String>,
    verification_material: Option<ShapeMaterial>,
    message_signature: Option<ShapeMessageSignature>,
    dsse_envelope: Option<ShapeDsse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapeMaterial {
    certificate: Option<ShapeRawBytes>,
    x509_certificate_chain: Option<ShapeChain>,
    public_key: Option<serde::de::IgnoredAny>,
    tlog_entries: Option<Vec<ShapeTlogEntry>>,
    timestamp_verification_data: Option<ShapeTimestamps>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapeRawBytes {
    raw_bytes: Option<String>,
}

#[derive(Deserialize)]
struct ShapeChain {
    certificates: Option<Vec<ShapeRawBytes>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapeTlogEntry {
    canonicalized_body: Option<String>,
    inclusion_promise: Option<ShapePromise>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapePromise {
    signed_entry_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapeTimestamps {
    rfc3161_timestamps: Option<Vec<ShapeTimestamp>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapeTimestamp {
    signed_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapeMessageSignature {
    signature: Option<String>,
    message_digest: Option<ShapeDigest>,
}

#[derive(Deserialize)]
struct ShapeDigest {
    digest: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShapeDsse {
    payload: Option<String>,
    signatures: Option<Vec<ShapeDsseSignature>>,
}

#[derive(Deserialize)]
struct ShapeDsseSignature {
    sig: Option<String>,
}

fn check_base64(value: Option<&String>, field: BundleField) -> Result<(), BundleError> {
    match value {
        Some(text) if decode_protojson_base64(text).is_none() => {
            Err(BundleError::InvalidBase64 { field })
        }
        _ => Ok(()),
    }
}

impl Shape {
    fn check(&self) -> Result<BundleVersion, BundleError> {
        let media_type = self
            .media_type
            .as_deref()
            .ok_or(BundleError::MissingMediaType)?;
        let version = MEDIA_TYPES
            .iter()
            .find(|(name, _)| *name == media_type)
            .map(|(_, version)| *version)
            .ok_or_else(|| BundleError::UnknownMediaType {
                media_type: media_type.chars().take(200).collect(),
            })?;

        match (&self.message_signature, &self.dsse_envelope) {
            (Some(message), None) => {
                check_base64(message.signature.as_ref(), BundleField::MessageSignature)?;
                let digest = message
                    .message_digest
                    .as_ref()
                    .and_then(|d| d.digest.as_ref());
                check_base64(digest, BundleField::MessageDigest)?;
            }
            (None, Some(dsse)) => {
                check_base64(dsse.payload.as_ref(), BundleField::DssePayload)?;
                let signatures = dsse.signatures.as_deref().unwrap_or_default();
                if signatures.len() != 1 {
                    return Err(BundleError::DsseSignatureCount {
                        count: signatures.len(),
                    });
                }
                for signature in signatures {
                    check_base64(signature.sig.as_ref(), BundleField::DsseSignature)?;
                }
            }
            _ => return Err(BundleError::ContentNotExactlyOne),
        }

        let material = self
            .verification_material
            .as_ref()
            .ok_or(BundleError::MissingVerificationMaterial)?;
        match (
            &material.certificate,
            &material.x509_certificate_chain,
            &material.public_key,
        ) {
            (Some(certificate), None, None) => {
                check_base64(certificate.raw_bytes.as_ref(), BundleField::Certificate)?;
            }
            (None, Some(chain), None) => {
                let certificates = chain.certificates.as_deref().unwrap_or_default();
                if certificates.is_empty() {
                    return Err(BundleError::EmptyCertificateChain);
                }
                for certificate in certificates {
                    check_base64(certificate.raw_bytes.as_ref(), BundleField::Certificate)?;
                }
            }
            (None, None, Some(_)) => {}
            _ => return Err(BundleError::MissingVerificationMaterial),
        }
        for entry in material.tlog_entries.as_deref().unwrap_or_default() {
            check_base64(
                entry.canonicalized_body.as_ref(),
                BundleField::CanonicalizedBody,
            )?;
            let set = entry
                .inclusion_promise
                .as_ref()
                .and_then(|p| p.signed_entry_timestamp.as_ref());
            check_base64(set, BundleField::SignedEntryTimestamp)?;
        }
        let timestamps = material
            .timestamp_verification_data
            .as_ref()
            .and_then(|t| t.rfc3161_timestamps.as_deref())
            .unwrap_or_default();
        for timestamp in timestamps {
            check_base64(
                timestamp.signed_timestamp.as_ref(),
                BundleField::Rfc3161Timestamp,
            )?;
        }
        Ok(version)
    }
}

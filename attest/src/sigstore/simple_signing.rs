//! Legacy cosign / containers-image "simple signing" signatures: the
//! `sha256-<hex>.sig` artifact whose layer is the payload and whose layer
//! annotations carry the signature, certificate and Rekor bundle.
//!
//! Payload (containers/image `docs/containers-signature.md`, "sigstore"
//! payloads; cosign `pkg/signature/payload`):
//! `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":"sha256:…"},"type":"cosign container image signature"},"optional":…}`.
//! `critical` is parsed strictly, as containers/image does (unknown fields
//! rejected); `optional` is not interpreted.

use serde::Deserialize;
use sigstore_types::bundle::{
    InclusionPromise, LogId, MessageDigest, MessageSignature, SignatureContent,
    VerificationMaterial, VerificationMaterialContent, X509Certificate,
};
use sigstore_types::{
    Bundle, CanonicalizedBody, DerCertificate, DigestBytes, HashAlgorithm, KindVersion, LogIndex,
    LogKeyId, MediaType, PublicKeyIdentifier, SignatureBytes, SignedTimestamp,
    TransparencyLogEntry,
};

use super::bundle::{BundleVersion, JsonErrorKind, ParsedBundle};
use super::policy::sha256;

/// The payload `critical.type` of a cosign image signature.
pub(crate) const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

/// Why a cosign Rekor bundle annotation (`dev.sigstore.cosign/bundle`) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RekorBundleFailure {
    /// Not JSON of the bundle's shape.
    Json,
    /// `SignedEntryTimestamp` is not base64.
    SetBase64,
    /// `Payload.body` is not base64.
    BodyBase64,
    /// `Payload.logID` is not 64 hex digits.
    LogId,
    /// `Payload.logIndex` or `Payload.integratedTime` is negative or out of range.
    Number,
    /// The entry body is not a `hashedrekord` 0.0.1 entry.
    EntryKind,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RekorBundleJson {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RekorPayloadJson,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RekorPayloadJson {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

#[derive(Deserialize)]
struct EntryKindJson {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
}

fn decode_std_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Parses the Rekor bundle annotation into a log entry with its SET.
pub(crate) fn rekor_entry(json: &str) -> Result<TransparencyLogEntry, RekorBundleFailure> {
    let parsed: RekorBundleJson =
        serde_json::from_str(json).map_err(|_| RekorBundleFailure::Json)?;
    let set =
        decode_std_base64(&parsed.signed_entry_timestamp).ok_or(RekorBundleFailure::SetBase64)?;
    let body = decode_std_base64(&parsed.payload.body).ok_or(RekorBundleFailure::BodyBase64)?;
    let log_id =
        super::dsse::parse_sha256_hex(&parsed.payload.log_id).ok_or(RekorBundleFailure::LogId)?;
    let kind: EntryKindJson =
        serde_json::from_slice(&body).map_err(|_| RekorBundleFailure::EntryKind)?;
    // cosign's legacy signatures are logged as hashedrekord 0.0.1 over the
    // payload bytes (Rekor `pkg/types/hashedrekord/v0.0.1`).
    if (kind.kind.as_str(), kind.api_version.as_str()) != ("hashedrekord", "0.0.1") {
        return Err(RekorBundleFailure::EntryKind);
    }
    let log_index =
        LogIndex::try_from(parsed.payload.log_index).map_err(|_| RekorBundleFailure::Number)?;
    let integrated_time = jiff::Timestamp::from_second(parsed.payload.integrated_time)
        .ok()
        .filter(|_| parsed.payload.integrated_time >= 0)
        .ok_or(RekorBundleFailure::Number)?;
    Ok(TransparencyLogEntry::new(
        log_index,
        LogId::new(LogKeyId::new(log_id.to_vec())),
        KindVersion::HashedRekordV001,
        CanonicalizedBody::new(body),
    )
    .with_integrated_time(integrated_time)
    .with_inclusion_promise(InclusionPromise::new(SignedTimestamp::new(set))))
}

/// Rebuilds a legacy signature as the v0.1 bundle it is equivalent to: a
/// message signature over the payload, the signing certificate (or a
/// public-key placeholder), and the hashedrekord entry with its SET. This is
/// how sigstore-go and cosign verify these signatures with bundle
/// verifiers.
pub(crate) fn legacy_bundle(
    payload: &[u8],
    signature: Vec<u8>,
    certificate_der: Option<Vec<u8>>,
    entry: TransparencyLogEntry,
) -> ParsedBundle {
    let material = match certificate_der {
        Some(der) => VerificationMaterialContent::X509CertificateChain {
            certificates: vec![X509Certificate::new(DerCertificate::new(der))],
        },
        None => VerificationMaterialContent::PublicKey(PublicKeyIdentifier::new("")),
    };
    let message = MessageSignature::new(SignatureBytes::new(signature)).with_message_digest(
        MessageDigest::new(
            HashAlgorithm::Sha2256,
            DigestBytes::new(sha256(payload).to_vec()),
        ),
    );
    let bundle = Bundle::new(
        MediaType::Bundle0_1,
        VerificationMaterial::new(material).with_tlog_entries(vec![entry]),
        SignatureContent::MessageSignature(message),
    );
    ParsedBundle::from_parts(bundle, BundleVersion::V0_1)
}

/// Why a simple-signing payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadFailure {
    /// Not JSON of the payload's shape (unknown fields in `critical` included).
    Json {
        /// What went wrong.
        kind: JsonErrorKind,
    },
    /// `critical.type` is not `cosign container image signature`.
    Type,
    /// `critical.image.docker-manifest-digest` is not `sha256:<64 hex>`.
    Digest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayloadJson {
    critical: CriticalJson,
    #[serde(default, rename = "optional")]
    _optional: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CriticalJson {
    identity: IdentityJson,
    image: ImageJson,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityJson {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageJson {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The signed claims of a simple-signing payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimplePayload {
    pub(crate) docker_reference: String,
    pub(crate) manifest_digest: [u8; 32],
}

pub(crate) fn parse_payload(payload: &[u8]) -> Result<SimplePayload, PayloadFailure> {
    let json: PayloadJson = serde_json::from_slice(payload).map_err(|e| PayloadFailure::Json {
        kind: JsonErrorKind::of(&e),
    })?;
    if json.critical.kind != COSIGN_SIGNATURE_TYPE {
        return Err(PayloadFailure::Type);
    }
    let manifest_digest =
        super::policy::parse_prefixed_sha256(&json.critical.image.docker_manifest_digest)
            .ok_or(PayloadFailure::Digest)?;
    Ok(SimplePayload {
        docker_reference: json.critical.identity.docker_reference,
        manifest_digest,
    })
}

/// Whether a payload's docker reference satisfies the policy's. A policy
/// reference with a tag or digest must match exactly; one without (a
/// repository) matches any tag or digest of that repository, as
/// containers/image's `matchRepository` identity rule does.
pub(crate) fn reference_matches(policy: &str, signed: &str) -> bool {
    if policy == signed {
        return true;
    }
    let has_tag_or_digest =
        |r: &str| r.contains('@') || r.rsplit('/').next().is_some_and(|last| last.contains(':'));
    if has_tag_or_digest(policy) {
        return false;
    }
    let without_digest = signed.split('@').next().unwrap_or(signed);
    let repository = match without_digest.rsplit_once('/') {
        Some((head, last)) => match last.split_once(':') {
            Some((name, _tag)) => format!("{head}/{name}"),
            None => without_digest.to_string(),
        },
        None => without_digest
            .split(':')
            .next()
            .unwrap_or(without_digest)
            .to_string(),
    };
    repository == policy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_match_by_repository() {
        assert!(reference_matches("ghcr.io/acme/app", "ghcr.io/acme/app"));
        assert!(reference_matches("ghcr.io/acme/app", "ghcr.io/acme/app:v1"));
        assert!(reference_matches(
            "localhost:5000/app",
            "localhost:5000/app:v1"
        ));
        assert!(reference_matches(
            "ghcr.io/acme/app",
            "ghcr.io/acme/app@sha256:00"
        ));
        assert!(!reference_matches(
            "ghcr.io/acme/app",
            "ghcr.io/acme/app2:v1"
        ));
        assert!(!reference_matches(
            "ghcr.io/acme/app:v1",
            "ghcr.io/acme/app:v2"
        ));
        assert!(!reference_matches("ghcr.io/acme", "ghcr.io/acme/app"));
    }

    #[test]
    fn payload_is_parsed_strictly() {
        let digest = "ab".repeat(32);
        let good = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r/a"}},"image":{{"docker-manifest-digest":"sha256:{digest}"}},"type":"cosign container image signature"}},"optional":{{"creator":"x"}}}}"#
        );
        let parsed = parse_payload(good.as_bytes()).unwrap();
        assert_eq!(parsed.manifest_digest, [0xab; 32]);
        assert_eq!(parsed.docker_reference, "r/a");
        let extra = good.replace(r#""type""#, r#""extra":1,"type""#);
        assert!(matches!(
            parse_payload(extra.as_bytes()),
            Err(PayloadFailure::Json { .. })
        ));
        let atomic = good.replace(
            "cosign container image signature",
            "atomic container signature",
        );
        assert_eq!(parse_payload(atomic.as_bytes()), Err(PayloadFailure::Type));
        let sha512 = good.replace("sha256:", "sha512:");
        assert_eq!(
            parse_payload(sha512.as_bytes()),
            Err(PayloadFailure::Digest)
        );
    }
}

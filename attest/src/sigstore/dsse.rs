//! DSSE envelopes and in-toto statements.
//!
//! DSSE protocol v1.0.0 (secure-systems-lab/dsse `protocol.md`): the
//! signature covers the pre-authentication encoding
//! `PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
//! with lengths as ASCII decimal. in-toto Attestation Framework v1
//! (`spec/v1/statement.md`): a statement binds subjects (name + digest set)
//! to one predicate, named by `predicateType`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::bundle::{JsonErrorKind, decode_protojson_base64};

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The in-toto Statement v1 `_type`.
pub const IN_TOTO_STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// Largest standalone DSSE envelope accepted, in bytes.
pub const MAX_DSSE_LEN: usize = super::bundle::MAX_BUNDLE_LEN;

/// Most subjects a statement may name. Cosign v3 and model signing write
/// one; SLSA provenance may list several artifacts of a build.
pub const MAX_STATEMENT_SUBJECTS: usize = 1024;

/// Longest `payloadType` accepted (media types are short).
const MAX_PAYLOAD_TYPE_LEN: usize = 256;

/// Most signatures a standalone envelope may carry.
const MAX_DSSE_SIGNATURES: usize = 16;

/// Builds the DSSE v1 pre-authentication encoding of `payload_type` and `payload`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        payload
            .len()
            .saturating_add(payload_type.len())
            .saturating_add(32),
    );
    for part in [
        b"DSSEv1".as_slice(),
        type_len.as_bytes(),
        payload_type.as_bytes(),
    ] {
        out.extend_from_slice(part);
        out.push(b' ');
    }
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Why a standalone DSSE envelope was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DsseError {
    /// The envelope is larger than [`MAX_DSSE_LEN`].
    #[error("DSSE envelope is {len} bytes, at most {max} accepted")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Not JSON of the envelope's shape.
    #[error("DSSE envelope JSON ({kind:?}) at line {line}, column {column}")]
    Json {
        /// What went wrong.
        kind: JsonErrorKind,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// `payloadType` is empty or longer than 256 bytes.
    #[error("DSSE payloadType has {len} bytes")]
    BadPayloadType {
        /// Its length.
        len: usize,
    },
    /// `payload` is not base64.
    #[error("DSSE payload is not valid base64")]
    PayloadBase64,
    /// A signature is not base64 (index counts from 0).
    #[error("DSSE signature {index} is not valid base64")]
    SignatureBase64 {
        /// Which signature.
        index: usize,
    },
    /// No signatures, or more than 16.
    #[error("DSSE envelope has {count} signatures")]
    SignatureCount {
        /// Signatures present.
        count: usize,
    },
}

/// A parsed DSSE envelope (signatures not verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsseEnvelope {
    payload_type: String,
    payload: Vec<u8>,
    signatures: Vec<(String, Vec<u8>)>,
}

impl DsseEnvelope {
    /// The payload type.
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The decoded payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The signatures as (key id, signature bytes).
    pub fn signatures(&self) -> &[(String, Vec<u8>)] {
        &self.signatures
    }

    /// The bytes each signature covers.
    pub fn pae(&self) -> Vec<u8> {
        pae(&self.payload_type, &self.payload)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EnvelopeJson {
    payload_type: String,
    payload: String,
    signatures: Vec<SignatureJson>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureJson {
    #[serde(default)]
    keyid: String,
    sig: String,
}

/// Parses a standalone DSSE envelope (JSON). This is the fuzzing entry
/// point for DSSE.
pub fn parse_dsse_envelope(bytes: &[u8]) -> Result<DsseEnvelope, DsseError> {
    if bytes.len() > MAX_DSSE_LEN {
        return Err(DsseError::TooLarge {
            len: bytes.len(),
            max: MAX_DSSE_LEN,
        });
    }
    let json: EnvelopeJson = serde_json::from_slice(bytes).map_err(|e| DsseError::Json {
        kind: JsonErrorKind::of(&e),
        line: e.line(),
        column: e.column(),
    })?;
    if json.payload_type.is_empty() || json.payload_type.len() > MAX_PAYLOAD_TYPE_LEN {
        return Err(DsseError::BadPayloadType {
            len: json.payload_type.len(),
        });
    }
    if json.signatures.is_empty() || json.signatures.len() > MAX_DSSE_SIGNATURES {
        return Err(DsseError::SignatureCount {
            count: json.signatures.len(),
        });
    }
    let payload = decode_protojson_base64(&json.payload).ok_or(DsseError::PayloadBase64)?;
    let signatures = json
        .signatures
        .into_iter()
        .enumerate()
        .map(|(index, s)| {
            decode_protojson_base64(&s.sig)
                .map(|sig| (s.keyid, sig))
                .ok_or(DsseError::SignatureBase64 { index })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DsseEnvelope {
        payload_type: json.payload_type,
        payload,
        signatures,
    })
}

/// Why an in-toto statement was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// The DSSE payload type is not `application/vnd.in-toto+json`.
    #[error("DSSE payload type {payload_type:?} is not an in-toto statement")]
    PayloadType {
        /// The payload type (truncated to 200 characters).
        payload_type: String,
    },
    /// Not JSON of the statement's shape.
    #[error("in-toto statement JSON ({kind:?}) at line {line}, column {column}")]
    Json {
        /// What went wrong.
        kind: JsonErrorKind,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// `_type` is not `https://in-toto.io/Statement/v1`.
    #[error("in-toto statement type {statement_type:?} is not Statement/v1")]
    StatementType {
        /// The type given (truncated to 200 characters).
        statement_type: String,
    },
    /// No subjects, or more than [`MAX_STATEMENT_SUBJECTS`].
    #[error("in-toto statement has {count} subjects")]
    SubjectCount {
        /// Subjects present.
        count: usize,
    },
    /// A subject's sha256 digest is not 64 lower-case hex digits.
    #[error("subject {index} has a malformed sha256 digest")]
    MalformedSubjectDigest {
        /// Which subject, from 0.
        index: usize,
    },
}

/// One subject of a statement: its name and its SHA-256 digest, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectDigest {
    /// The subject's name (empty when absent, as cosign v3 writes it).
    pub name: String,
    /// The sha256 digest, when the subject has one.
    pub sha256: Option<[u8; 32]>,
}

/// A parsed in-toto Statement v1.
#[derive(Debug, Clone, PartialEq)]
pub struct InTotoStatement {
    subjects: Vec<SubjectDigest>,
    predicate_type: String,
    predicate: Option<serde_json::Value>,
}

impl InTotoStatement {
    /// The subjects, in order.
    pub fn subjects(&self) -> &[SubjectDigest] {
        &self.subjects
    }

    /// The predicate type.
    pub fn predicate_type(&self) -> &str {
        &self.predicate_type
    }

    /// The predicate, when present.
    pub fn predicate(&self) -> Option<&serde_json::Value> {
        self.predicate.as_ref()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatementJson {
    #[serde(rename = "_type")]
    statement_type: String,
    subject: Vec<SubjectJson>,
    predicate_type: String,
    #[serde(default)]
    predicate: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SubjectJson {
    #[serde(default)]
    name: String,
    digest: BTreeMap<String, String>,
}

/// Parses an in-toto Statement v1 carried in a DSSE envelope of type
/// `payload_type`. Also a fuzzing entry point.
pub fn parse_statement(
    payload_type: &str,
    payload: &[u8],
) -> Result<InTotoStatement, StatementError> {
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(StatementError::PayloadType {
            payload_type: payload_type.chars().take(200).collect(),
        });
    }
    let json: StatementJson =
        serde_json::from_slice(payload).map_err(|e| StatementError::Json {
            kind: JsonErrorKind::of(&e),
            line: e.line(),
            column: e.column(),
        })?;
    if json.statement_type != IN_TOTO_STATEMENT_V1 {
        return Err(StatementError::StatementType {
            statement_type: json.statement_type.chars().take(200).collect(),
        });
    }
    if json.subject.is_empty() || json.subject.len() > MAX_STATEMENT_SUBJECTS {
        return Err(StatementError::SubjectCount {
            count: json.subject.len(),
        });
    }
    let subjects = json
        .subject
        .into_iter()
        .enumerate()
        .map(|(index, subject)| {
            let sha256 = match subject.digest.get("sha256") {
                None => None,
                Some(hex) => Some(
                    parse_sha256_hex(hex)
                        .ok_or(StatementError::MalformedSubjectDigest { index })?,
                ),
            };
            Ok(SubjectDigest {
                name: subject.name,
                sha256,
            })
        })
        .collect::<Result<Vec<_>, StatementError>>()?;
    Ok(InTotoStatement {
        subjects,
        predicate_type: json.predicate_type,
        predicate: json.predicate,
    })
}

/// Parses 64 lower-case hex digits (in-toto digest sets and OCI digests
/// use lower-case hex; upper case is rejected so one digest has one spelling).
pub(crate) fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let high = hex_value(*pair.first()?)?;
        let low = hex_value(*pair.get(1)?)?;
        *slot = high.checked_mul(16)?.checked_add(low)?;
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => c.checked_sub(b'0'),
        b'a'..=b'f' => c.checked_sub(b'a')?.checked_add(10),
        _ => None,
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // DSSE protocol.md, "Test vector".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn envelope_parses_and_rejects_bad_base64() {
        let good =
            br#"{"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k","sig":"AAE="}]}"#;
        let env = parse_dsse_envelope(good).unwrap();
        assert_eq!(env.payload(), b"hi");
        assert_eq!(env.signatures(), &[("k".to_string(), vec![0, 1])]);
        assert_eq!(env.pae(), b"DSSEv1 1 t 2 hi".to_vec());

        let bad = br#"{"payloadType":"t","payload":"a!k=","signatures":[{"sig":"AAE="}]}"#;
        assert_eq!(parse_dsse_envelope(bad), Err(DsseError::PayloadBase64));
        let bad = br#"{"payloadType":"t","payload":"aGk=","signatures":[{"sig":"*"}]}"#;
        assert_eq!(
            parse_dsse_envelope(bad),
            Err(DsseError::SignatureBase64 { index: 0 })
        );
        let none = br#"{"payloadType":"t","payload":"aGk=","signatures":[]}"#;
        assert_eq!(
            parse_dsse_envelope(none),
            Err(DsseError::SignatureCount { count: 0 })
        );
        let empty_type = br#"{"payloadType":"","payload":"aGk=","signatures":[{"sig":""}]}"#;
        assert_eq!(
            parse_dsse_envelope(empty_type),
            Err(DsseError::BadPayloadType { len: 0 })
        );
        assert!(matches!(
            parse_dsse_envelope(b"{\"payloadType\":"),
            Err(DsseError::Json {
                kind: JsonErrorKind::Eof,
                ..
            })
        ));
        let big = vec![b' '; MAX_DSSE_LEN + 1];
        assert_eq!(
            parse_dsse_envelope(&big),
            Err(DsseError::TooLarge {
                len: MAX_DSSE_LEN + 1,
                max: MAX_DSSE_LEN
            })
        );
    }

    #[test]
    fn statement_checks_type_subjects_and_digests() {
        let digest = "ab".repeat(32);
        let good = format!(
            r#"{{"_type":"{IN_TOTO_STATEMENT_V1}","subject":[{{"digest":{{"sha256":"{digest}"}}}}],"predicateType":"p"}}"#
        );
        let st = parse_statement(IN_TOTO_PAYLOAD_TYPE, good.as_bytes()).unwrap();
        assert_eq!(st.predicate_type(), "p");
        assert_eq!(st.subjects()[0].sha256, Some([0xab; 32]));
        assert!(st.predicate().is_none());

        assert!(matches!(
            parse_statement("text/plain", good.as_bytes()),
            Err(StatementError::PayloadType { .. })
        ));
        let v01 = good.replace("Statement/v1", "Statement/v0.1");
        assert!(matches!(
            parse_statement(IN_TOTO_PAYLOAD_TYPE, v01.as_bytes()),
            Err(StatementError::StatementType { .. })
        ));
        let upper = good.replace(&digest, &digest.to_uppercase());
        assert_eq!(
            parse_statement(IN_TOTO_PAYLOAD_TYPE, upper.as_bytes()),
            Err(StatementError::MalformedSubjectDigest { index: 0 })
        );
        let none =
            format!(r#"{{"_type":"{IN_TOTO_STATEMENT_V1}","subject":[],"predicateType":"p"}}"#);
        assert_eq!(
            parse_statement(IN_TOTO_PAYLOAD_TYPE, none.as_bytes()),
            Err(StatementError::SubjectCount { count: 0 })
        );
    }
}

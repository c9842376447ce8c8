//! Keyward's workload log: launch records in the TCG Canonical Event Log
//! format (TCG CEL v1.0, TLV encoding), replayed against the workload PCR.
//!
//! # Encoding
//! Every TLV is a 1-byte type, a 4-byte big-endian length and the value
//! (CEL v1.0 §5, TLV encoding). A record is four top-level TLVs, in this
//! order:
//!
//! | type | field | value |
//! |---|---|---|
//! | 0 | recnum | u64 big-endian, 0 for the first record, then +1 |
//! | 1 | pcr | u8 (written) or u32 big-endian (accepted) |
//! | 3 | digests | nested TLVs, type = TPM_ALG_ID, value = digest; exactly one SHA-256 |
//! | [`LAUNCH_RECORD_CONTENT_TYPE`] | content | the launch record's fields as nested TLVs |
//!
//! The launch record content is six nested TLVs, each exactly once, in
//! ascending type order (one canonical encoding per record): 0 instance id,
//! 1 image reference, 2 image digest (`sha256:` + 64 lower-case hex),
//! 3 model name, 4 model digest (`sha256:…`), 5 SHA-256 of the instance
//! public key (32 bytes).
//!
//! # Content type
//! CEL v1.0 assigns content types 4–8 (cel_mgt, pcclient_std, ima_template,
//! ima_tlv, …) after the record fields 0–3. Keyward's launch record uses 75
//! (`'K'`), outside that range; Google's go-tpm-tools set the precedent of a
//! private content type by using 80 for Confidential Space's COS events.
//! The value is not registered with the TCG.
//!
//! # Digest
//! The digest extended into the workload PCR is SHA-256 over the encoded
//! content TLV (type, length and value), as go-tpm-tools does for COS events:
//! hashing the type too binds the bytes to their meaning, so the same value
//! cannot be replayed under another content type.
//!
//! # Strictness
//! Unknown field types, duplicates, out-of-order fields, records for another
//! PCR, digest algorithms other than SHA-256, oversized lengths and trailing
//! bytes are all rejected. A record whose SHA-256 digest is not the hash of
//! its content is rejected when parsing.
//!
//! # Limits
//! PCR 23 is resettable from locality 0 on PC Client TPMs; the workload log is
//! evidence about the workload only as far as the host OS that owns the TPM
//! is trusted (which boot policy establishes).

use crate::digest::{HashAlg, PcrValues};
use crate::reader::{Reader, Truncated};

/// The PCR Keyward extends launch records into unless configured otherwise
/// (the PC Client "application support" PCR).
pub const DEFAULT_WORKLOAD_PCR: u8 = 23;
/// The CEL content type of a Keyward launch record (see the module docs).
pub const LAUNCH_RECORD_CONTENT_TYPE: u8 = 75;
/// Largest workload log accepted, in bytes.
pub const MAX_WORKLOAD_LOG_LEN: usize = 1 << 20;
/// Most records a workload log may hold.
pub const MAX_LAUNCH_RECORDS: usize = 1024;
/// Largest launch record content value, in bytes.
pub const MAX_CONTENT_LEN: usize = 4096;
/// Longest instance id, in bytes.
pub const MAX_INSTANCE_ID_LEN: usize = 128;
/// Longest image reference, in bytes.
pub const MAX_IMAGE_REFERENCE_LEN: usize = 1024;
/// Longest model name, in bytes.
pub const MAX_MODEL_NAME_LEN: usize = 256;

// CEL v1.0 §5: record field types.
const RECNUM: u8 = 0;
const PCR: u8 = 1;
const DIGESTS: u8 = 3;
const TLV_HEADER_LEN: usize = 5;
const SHA256_ALG_ID: u8 = 0x0B;

/// A field of a launch record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchField {
    /// Type 0: the instance id.
    InstanceId,
    /// Type 1: the image reference (`registry/repo:tag` or `…@sha256:…`).
    ImageReference,
    /// Type 2: the image digest, `sha256:` + 64 lower-case hex digits.
    ImageDigest,
    /// Type 3: the model name.
    ModelName,
    /// Type 4: the model digest, `sha256:` + 64 lower-case hex digits.
    ModelDigest,
    /// Type 5: SHA-256 of the instance public key, 32 bytes.
    InstanceKeySha256,
    /// A type this version does not define.
    Unknown(u8),
}

impl LaunchField {
    const ALL: [LaunchField; 6] = [
        Self::InstanceId,
        Self::ImageReference,
        Self::ImageDigest,
        Self::ModelName,
        Self::ModelDigest,
        Self::InstanceKeySha256,
    ];

    fn from_type(t: u8) -> Self {
        Self::ALL
            .into_iter()
            .find(|f| f.type_value() == t)
            .unwrap_or(Self::Unknown(t))
    }

    /// The nested TLV type.
    pub fn type_value(self) -> u8 {
        match self {
            Self::InstanceId => 0,
            Self::ImageReference => 1,
            Self::ImageDigest => 2,
            Self::ModelName => 3,
            Self::ModelDigest => 4,
            Self::InstanceKeySha256 => 5,
            Self::Unknown(t) => t,
        }
    }
}

/// What is wrong with one field of a launch record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchFieldProblem {
    /// The field type is not defined.
    #[error("unknown field")]
    Unknown,
    /// The field appears twice.
    #[error("duplicate field")]
    Duplicate,
    /// The field follows a field with a higher type.
    #[error("field out of order")]
    OutOfOrder,
    /// The field is missing.
    #[error("missing field")]
    Missing,
    /// The text is empty.
    #[error("empty")]
    Empty,
    /// The text is longer than its cap.
    #[error("longer than {max} bytes")]
    TooLong {
        /// The cap.
        max: usize,
    },
    /// The bytes are not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// The text contains a control character.
    #[error("contains a control character")]
    ControlCharacter,
    /// A digest is not `sha256:` followed by 64 lower-case hex digits.
    #[error("not a sha256:<64 lower-case hex> digest")]
    NotSha256Digest,
    /// The key hash is not 32 bytes.
    #[error("{len} bytes, expected 32")]
    WrongLength {
        /// Bytes given.
        len: usize,
    },
}

/// A launch record that cannot be built or parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("launch record field {field:?}: {problem}")]
pub struct LaunchRecordError {
    /// The field.
    pub field: LaunchField,
    /// What is wrong with it.
    pub problem: LaunchFieldProblem,
}

/// What is wrong with a record's digests TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestsProblem {
    /// An algorithm other than SHA-256.
    #[error("algorithm {alg:#04x} is not accepted (only SHA-256)")]
    UnsupportedAlgorithm {
        /// The TLV type (TPM_ALG_ID).
        alg: u8,
    },
    /// Two SHA-256 digests.
    #[error("two SHA-256 digests")]
    Duplicate,
    /// No SHA-256 digest.
    #[error("no SHA-256 digest")]
    MissingSha256,
    /// A SHA-256 digest that is not 32 bytes.
    #[error("SHA-256 digest of {len} bytes")]
    WrongLength {
        /// Bytes given.
        len: usize,
    },
}

/// Why a workload log was rejected, or a launch record was not found in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadLogError {
    /// The workload PCR is above 23.
    #[error("PCR {pcr} cannot be the workload PCR")]
    InvalidWorkloadPcr {
        /// The PCR given.
        pcr: u8,
    },
    /// The log is larger than [`MAX_WORKLOAD_LOG_LEN`].
    #[error("the workload log is {len} bytes, more than the {max} allowed")]
    LogTooLarge {
        /// Bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The log has more than [`MAX_LAUNCH_RECORDS`] records.
    #[error("the workload log has more than {max} records")]
    TooManyRecords {
        /// The cap.
        max: usize,
    },
    /// The log ended inside a TLV.
    #[error("truncated at offset {offset}: {needed} bytes needed, {remaining} left")]
    Truncated {
        /// Offset of the field that did not fit.
        offset: usize,
        /// Bytes it needed.
        needed: usize,
        /// Bytes left.
        remaining: usize,
    },
    /// A top-level TLV has the wrong type for its position.
    #[error("offset {offset}: TLV type {found}, expected {expected}")]
    UnexpectedField {
        /// Offset of the TLV.
        offset: usize,
        /// The type required there.
        expected: u8,
        /// The type found.
        found: u8,
    },
    /// A recnum, pcr or content TLV has a length its type does not allow.
    #[error("offset {offset}: TLV type {field} has {len} bytes")]
    BadFieldLength {
        /// Offset of the TLV.
        offset: usize,
        /// The TLV type.
        field: u8,
        /// Its length.
        len: usize,
    },
    /// Record numbers must count up from 0 by one.
    #[error("record number {found}, expected {expected}")]
    RecordNumberOutOfSequence {
        /// The number required.
        expected: u64,
        /// The number found.
        found: u64,
    },
    /// A record names a PCR other than the workload PCR.
    #[error("record {recnum} names PCR {pcr}, not the workload PCR {expected}")]
    UnexpectedPcr {
        /// The record.
        recnum: u64,
        /// The PCR named.
        pcr: u32,
        /// The workload PCR.
        expected: u8,
    },
    /// A record's digests TLV is invalid.
    #[error("record {recnum}: {problem}")]
    InvalidDigests {
        /// The record.
        recnum: u64,
        /// What is wrong.
        problem: DigestsProblem,
    },
    /// A record's content is not a Keyward launch record.
    #[error("record {recnum} has content type {content_type}, not a launch record")]
    UnknownContentType {
        /// The record.
        recnum: u64,
        /// The content type found.
        content_type: u8,
    },
    /// A launch record is malformed.
    #[error("record {recnum}: {error}")]
    InvalidLaunchRecord {
        /// The record.
        recnum: u64,
        /// What is wrong.
        error: LaunchRecordError,
    },
    /// A record's SHA-256 digest is not the hash of its content.
    #[error("record {recnum}: the digest is not the hash of the content")]
    ContentDigestMismatch {
        /// The record.
        recnum: u64,
    },
    /// The quote has no SHA-256 value for the workload PCR.
    #[error("the quote does not cover PCR {pcr} in the SHA-256 bank")]
    PcrNotQuoted {
        /// The workload PCR.
        pcr: u8,
    },
    /// Replaying the records does not give the quoted value: a record was
    /// forged, removed, reordered or added.
    #[error("the workload log does not replay to the quoted PCR {pcr}")]
    ReplayMismatch {
        /// The workload PCR.
        pcr: u8,
        /// The quoted value.
        quoted: [u8; 32],
        /// The replayed value.
        replayed: [u8; 32],
    },
    /// No launch record carries the presented instance key.
    #[error("no launch record for the instance key")]
    NoLaunchRecordForKey,
    /// More than one launch record carries the presented instance key.
    #[error("{count} launch records for the instance key")]
    MultipleLaunchRecordsForKey {
        /// How many.
        count: usize,
    },
}

/// What the launcher records about one workload instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRecord {
    instance_id: String,
    image_reference: String,
    image_digest: String,
    model_name: String,
    model_digest: String,
    instance_key_sha256: [u8; 32],
}

fn check_text(field: LaunchField, text: &str, max: usize) -> Result<(), LaunchRecordError> {
    let problem = if text.is_empty() {
        LaunchFieldProblem::Empty
    } else if text.len() > max {
        LaunchFieldProblem::TooLong { max }
    } else if text.chars().any(char::is_control) {
        LaunchFieldProblem::ControlCharacter
    } else {
        return Ok(());
    };
    Err(LaunchRecordError { field, problem })
}

fn check_digest(field: LaunchField, text: &str) -> Result<(), LaunchRecordError> {
    let ok = text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(LaunchRecordError {
            field,
            problem: LaunchFieldProblem::NotSha256Digest,
        })
    }
}

impl LaunchRecord {
    /// Builds a launch record, checking every field: texts non-empty, within
    /// their caps and free of control characters; digests `sha256:` + 64
    /// lower-case hex digits.
    pub fn new(
        instance_id: &str,
        image_reference: &str,
        image_digest: &str,
        model_name: &str,
        model_digest: &str,
        instance_key_sha256: [u8; 32],
    ) -> Result<Self, LaunchRecordError> {
        check_text(LaunchField::InstanceId, instance_id, MAX_INSTANCE_ID_LEN)?;
        check_text(
            LaunchField::ImageReference,
            image_reference,
            MAX_IMAGE_REFERENCE_LEN,
        )?;
        check_digest(LaunchField::ImageDigest, image_digest)?;
        check_text(LaunchField::ModelName, model_name, MAX_MODEL_NAME_LEN)?;
        check_digest(LaunchField::ModelDigest, model_digest)?;
        Ok(Self {
            instance_id: instance_id.to_owned(),
            image_reference: image_reference.to_owned(),
            image_digest: image_digest.to_owned(),
            model_name: model_name.to_owned(),
            model_digest: model_digest.to_owned(),
            instance_key_sha256,
        })
    }

    /// The instance id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The image reference.
    pub fn image_reference(&self) -> &str {
        &self.image_reference
    }

    /// The image digest, `sha256:…`.
    pub fn image_digest(&self) -> &str {
        &self.image_digest
    }

    /// The model name.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// The model digest, `sha256:…`.
    pub fn model_digest(&self) -> &str {
        &self.model_digest
    }

    /// SHA-256 of the instance public key.
    pub fn instance_key_sha256(&self) -> &[u8; 32] {
        &self.instance_key_sha256
    }

    fn fields(&self) -> [(LaunchField, &[u8]); 6] {
        [
            (LaunchField::InstanceId, self.instance_id.as_bytes()),
            (LaunchField::ImageReference, self.image_reference.as_bytes()),
            (LaunchField::ImageDigest, self.image_digest.as_bytes()),
            (LaunchField::ModelName, self.model_name.as_bytes()),
            (LaunchField::ModelDigest, self.model_digest.as_bytes()),
            (LaunchField::InstanceKeySha256, &self.instance_key_sha256),
        ]
    }

    /// The content TLV: type [`LAUNCH_RECORD_CONTENT_TYPE`], then the fields.
    fn content_tlv(&self) -> Result<Vec<u8>, WorkloadLogError> {
        let mut value = Vec::with_capacity(256);
        for (field, bytes) in self.fields() {
            put_tlv(&mut value, field.type_value(), bytes)?;
        }
        if value.len() > MAX_CONTENT_LEN {
            return Err(WorkloadLogError::BadFieldLength {
                offset: 0,
                field: LAUNCH_RECORD_CONTENT_TYPE,
                len: value.len(),
            });
        }
        let mut tlv = Vec::with_capacity(value.len().saturating_add(TLV_HEADER_LEN));
        put_tlv(&mut tlv, LAUNCH_RECORD_CONTENT_TYPE, &value)?;
        Ok(tlv)
    }

    /// Strict parse of a launch record content value found at `base`.
    fn parse(value: &[u8], recnum: u64, base: usize) -> Result<Self, WorkloadLogError> {
        let invalid = |field, problem| WorkloadLogError::InvalidLaunchRecord {
            recnum,
            error: LaunchRecordError { field, problem },
        };
        let mut r = Reader::new(value);
        let mut found: [Option<&[u8]>; 6] = [None; 6];
        let mut last: Option<u8> = None;
        while !r.is_empty() {
            let (t, v) = read_tlv(&mut r, base)?;
            let field = LaunchField::from_type(t);
            let problem = match (field, last) {
                (LaunchField::Unknown(_), _) => Some(LaunchFieldProblem::Unknown),
                (_, Some(l)) if l == t => Some(LaunchFieldProblem::Duplicate),
                (_, Some(l)) if l > t => Some(LaunchFieldProblem::OutOfOrder),
                _ => None,
            };
            if let Some(problem) = problem {
                return Err(invalid(field, problem));
            }
            last = Some(t);
            if let Some(slot) = found.get_mut(usize::from(t)) {
                *slot = Some(v);
            }
        }
        let mut fields = [""; 5];
        for (i, field) in LaunchField::ALL.into_iter().take(5).enumerate() {
            let bytes = found
                .get(i)
                .copied()
                .flatten()
                .ok_or(invalid(field, LaunchFieldProblem::Missing))?;
            let text = std::str::from_utf8(bytes)
                .map_err(|_| invalid(field, LaunchFieldProblem::NotUtf8))?;
            if let Some(slot) = fields.get_mut(i) {
                *slot = text;
            }
        }
        let key_field = LaunchField::InstanceKeySha256;
        let key = found
            .get(5)
            .copied()
            .flatten()
            .ok_or(invalid(key_field, LaunchFieldProblem::Missing))?;
        let key: [u8; 32] = key.try_into().map_err(|_| {
            invalid(
                key_field,
                LaunchFieldProblem::WrongLength { len: key.len() },
            )
        })?;
        let [
            instance_id,
            image_reference,
            image_digest,
            model_name,
            model_digest,
        ] = fields;
        Self::new(
            instance_id,
            image_reference,
            image_digest,
            model_name,
            model_digest,
            key,
        )
        .map_err(|error| WorkloadLogError::InvalidLaunchRecord { recnum, error })
    }
}

fn put_tlv(out: &mut Vec<u8>, t: u8, value: &[u8]) -> Result<(), WorkloadLogError> {
    let len = u32::try_from(value.len()).map_err(|_| WorkloadLogError::LogTooLarge {
        len: value.len(),
        max: MAX_WORKLOAD_LOG_LEN,
    })?;
    out.push(t);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Reads one TLV; `base` is the reader's offset in the whole log.
fn read_tlv<'a>(r: &mut Reader<'a>, base: usize) -> Result<(u8, &'a [u8]), WorkloadLogError> {
    let at = |r: &Reader<'_>, t: Truncated| WorkloadLogError::Truncated {
        offset: base.saturating_add(r.consumed()),
        needed: t.needed,
        remaining: t.remaining,
    };
    let start = r.clone();
    let t = r.u8().map_err(|e| at(&start, e))?;
    let len = r.u32_be().map_err(|e| at(&start, e))?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let value_start = r.clone();
    let value = r.bytes(len).map_err(|e| at(&value_start, e))?;
    Ok((t, value))
}

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    digest: [u8; 32],
    launch: LaunchRecord,
}

/// A parsed workload log: every record is well-formed and its digest is the
/// hash of its content, but nothing is known about the PCR yet. Call
/// [`WorkloadLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadLog {
    pcr: u8,
    records: Vec<Record>,
}

fn check_pcr(pcr: u8) -> Result<(), WorkloadLogError> {
    if pcr > crate::digest::MAX_PCR_INDEX {
        return Err(WorkloadLogError::InvalidWorkloadPcr { pcr });
    }
    Ok(())
}

impl WorkloadLog {
    /// Parses a workload log whose records all extend `workload_pcr`.
    pub fn parse(bytes: &[u8], workload_pcr: u8) -> Result<Self, WorkloadLogError> {
        check_pcr(workload_pcr)?;
        if bytes.len() > MAX_WORKLOAD_LOG_LEN {
            return Err(WorkloadLogError::LogTooLarge {
                len: bytes.len(),
                max: MAX_WORKLOAD_LOG_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let mut records = Vec::new();
        while !r.is_empty() {
            if records.len() >= MAX_LAUNCH_RECORDS {
                return Err(WorkloadLogError::TooManyRecords {
                    max: MAX_LAUNCH_RECORDS,
                });
            }
            let expected = u64::try_from(records.len()).unwrap_or(u64::MAX);
            records.push(parse_record(&mut r, expected, workload_pcr)?);
        }
        Ok(Self {
            pcr: workload_pcr,
            records,
        })
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the log has no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The workload PCR.
    pub fn pcr(&self) -> u8 {
        self.pcr
    }

    /// Replays every record's SHA-256 digest into the workload PCR from zeros
    /// (TPM 2.0 Part 1, §17.2) and compares with the quoted SHA-256 value.
    pub fn verify(&self, quoted: &PcrValues) -> Result<VerifiedWorkloadLog, WorkloadLogError> {
        let quoted = quoted
            .get(HashAlg::Sha256, self.pcr)
            .ok_or(WorkloadLogError::PcrNotQuoted { pcr: self.pcr })?;
        let replayed = replay(self.records.iter().map(|r| &r.digest));
        if replayed.as_slice() != quoted {
            let mut quoted_value = [0u8; 32];
            if quoted.len() == quoted_value.len() {
                quoted_value.copy_from_slice(quoted);
            }
            return Err(WorkloadLogError::ReplayMismatch {
                pcr: self.pcr,
                quoted: quoted_value,
                replayed,
            });
        }
        Ok(VerifiedWorkloadLog {
            pcr: self.pcr,
            pcr_value: replayed,
            records: self.records.iter().map(|r| r.launch.clone()).collect(),
        })
    }
}

fn replay<'a>(digests: impl Iterator<Item = &'a [u8; 32]>) -> [u8; 32] {
    let mut pcr = [0u8; 32];
    for digest in digests {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&pcr);
        ctx.update(digest);
        pcr.copy_from_slice(ctx.finish().as_ref());
    }
    pcr
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// Reads the next top-level TLV, which must have type `expected`.
fn expect_tlv<'a>(r: &mut Reader<'a>, expected: u8) -> Result<(usize, &'a [u8]), WorkloadLogError> {
    let offset = r.consumed();
    let (found, value) = read_tlv(r, 0)?;
    if found != expected {
        return Err(WorkloadLogError::UnexpectedField {
            offset,
            expected,
            found,
        });
    }
    Ok((offset, value))
}

fn parse_record(r: &mut Reader<'_>, expected: u64, pcr: u8) -> Result<Record, WorkloadLogError> {
    let (offset, value) = expect_tlv(r, RECNUM)?;
    let recnum = <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| WorkloadLogError::BadFieldLength {
            offset,
            field: RECNUM,
            len: value.len(),
        })?;
    if recnum != expected {
        return Err(WorkloadLogError::RecordNumberOutOfSequence {
            expected,
            found: recnum,
        });
    }

    let (offset, value) = expect_tlv(r, PCR)?;
    let named = match value {
        [p] => u32::from(*p),
        [a, b, c, d] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => {
            return Err(WorkloadLogError::BadFieldLength {
                offset,
                field: PCR,
                len: value.len(),
            });
        }
    };
    if named != u32::from(pcr) {
        return Err(WorkloadLogError::UnexpectedPcr {
            recnum,
            pcr: named,
            expected: pcr,
        });
    }

    let (offset, value) = expect_tlv(r, DIGESTS)?;
    let digest =
        parse_digests(value, offset.saturating_add(TLV_HEADER_LEN)).map_err(|e| match e {
            DigestsOrTruncated::Problem(problem) => {
                WorkloadLogError::InvalidDigests { recnum, problem }
            }
            DigestsOrTruncated::Truncated(e) => e,
        })?;

    let content_start = r.peek_rest();
    let offset = r.consumed();
    let (content_type, value) = read_tlv(r, 0)?;
    if content_type != LAUNCH_RECORD_CONTENT_TYPE {
        return Err(WorkloadLogError::UnknownContentType {
            recnum,
            content_type,
        });
    }
    if value.len() > MAX_CONTENT_LEN {
        return Err(WorkloadLogError::BadFieldLength {
            offset,
            field: content_type,
            len: value.len(),
        });
    }
    let content_tlv = content_start
        .get(..value.len().saturating_add(TLV_HEADER_LEN))
        .unwrap_or_default();
    if sha256(content_tlv) != digest {
        return Err(WorkloadLogError::ContentDigestMismatch { recnum });
    }
    let launch = LaunchRecord::parse(value, recnum, offset.saturating_add(TLV_HEADER_LEN))?;
    Ok(Record { digest, launch })
}

enum DigestsOrTruncated {
    Problem(DigestsProblem),
    Truncated(WorkloadLogError),
}

fn parse_digests(value: &[u8], base: usize) -> Result<[u8; 32], DigestsOrTruncated> {
    let mut r = Reader::new(value);
    let mut sha256: Option<[u8; 32]> = None;
    while !r.is_empty() {
        let (alg, digest) = read_tlv(&mut r, base).map_err(DigestsOrTruncated::Truncated)?;
        if alg != SHA256_ALG_ID {
            return Err(DigestsOrTruncated::Problem(
                DigestsProblem::UnsupportedAlgorithm { alg },
            ));
        }
        if sha256.is_some() {
            return Err(DigestsOrTruncated::Problem(DigestsProblem::Duplicate));
        }
        let digest: [u8; 32] = digest.try_into().map_err(|_| {
            DigestsOrTruncated::Problem(DigestsProblem::WrongLength { len: digest.len() })
        })?;
        sha256 = Some(digest);
    }
    sha256.ok_or(DigestsOrTruncated::Problem(DigestsProblem::MissingSha256))
}

/// One record's bytes and the digest to extend.
fn encode_record(
    recnum: u64,
    workload_pcr: u8,
    record: &LaunchRecord,
) -> Result<(Vec<u8>, [u8; 32]), WorkloadLogError> {
    let content = record.content_tlv()?;
    let digest = sha256(&content);
    let mut digests = Vec::with_capacity(TLV_HEADER_LEN.saturating_add(32));
    put_tlv(&mut digests, SHA256_ALG_ID, &digest)?;
    let mut encoded = Vec::with_capacity(content.len().saturating_add(64));
    put_tlv(&mut encoded, RECNUM, &recnum.to_be_bytes())?;
    put_tlv(&mut encoded, PCR, &[workload_pcr])?;
    put_tlv(&mut encoded, DIGESTS, &digests)?;
    encoded.extend_from_slice(&content);
    Ok((encoded, digest))
}

/// Appends `record` to the workload log in `log` (which must already be a
/// valid log for `workload_pcr`, possibly empty) and returns the SHA-256
/// digest the launcher must extend into `workload_pcr`.
///
/// Nothing is appended when an error is returned.
pub fn append(
    log: &mut Vec<u8>,
    workload_pcr: u8,
    record: &LaunchRecord,
) -> Result<[u8; 32], WorkloadLogError> {
    let existing = WorkloadLog::parse(log, workload_pcr)?;
    if existing.len() >= MAX_LAUNCH_RECORDS {
        return Err(WorkloadLogError::TooManyRecords {
            max: MAX_LAUNCH_RECORDS,
        });
    }
    let recnum = u64::try_from(existing.len()).unwrap_or(u64::MAX);
    let (encoded, digest) = encode_record(recnum, workload_pcr, record)?;
    let len = log.len().saturating_add(encoded.len());
    if len > MAX_WORKLOAD_LOG_LEN {
        return Err(WorkloadLogError::LogTooLarge {
            len,
            max: MAX_WORKLOAD_LOG_LEN,
        });
    }
    log.extend_from_slice(&encoded);
    Ok(digest)
}

/// A workload log that replays to the quoted workload PCR. Only
/// [`WorkloadLog::verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedWorkloadLog {
    pcr: u8,
    pcr_value: [u8; 32],
    records: Vec<LaunchRecord>,
}

impl VerifiedWorkloadLog {
    /// The workload PCR.
    pub fn pcr(&self) -> u8 {
        self.pcr
    }

    /// Its quoted (and replayed) SHA-256 value.
    pub fn pcr_value(&self) -> &[u8; 32] {
        &self.pcr_value
    }

    /// Every launch record, in log order.
    pub fn launch_records(&self) -> &[LaunchRecord] {
        &self.records
    }

    /// The one launch record whose instance key hash is `key_sha256`.
    pub fn launch_record_for_key(
        &self,
        key_sha256: &[u8; 32],
    ) -> Result<&LaunchRecord, WorkloadLogError> {
        let mut matching = self
            .records
            .iter()
            .filter(|r| &r.instance_key_sha256 == key_sha256);
        let first = matching
            .next()
            .ok_or(WorkloadLogError::NoLaunchRecordForKey)?;
        let others = matching.count();
        if others > 0 {
            return Err(WorkloadLogError::MultipleLaunchRecordsForKey {
                count: others.saturating_add(1),
            });
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests;

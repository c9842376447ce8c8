//! The fail-closed, hash-chained audit log.
//!
//! # What it does
//! - appends one JSON object per line to a file and `fsync`s it before
//!   [`AuditLog::append`] returns, so a record the caller was told about is
//!   durable;
//! - chains the lines: every record holds `prev`, the lowercase hex SHA-256
//!   of the previous line's bytes (without its newline). Line 1 is a header
//!   `{"type":"header","version":1,"log_id":<hex>,"seq":0,"prev":<genesis>}`
//!   whose `prev` is the per-log genesis value
//!   `SHA-256("keyward audit log v1 genesis\0" ‖ log_id)`; `seq` counts up by
//!   one per line. [`verify`] checks all of it and names the first broken
//!   line (`keyward audit verify FILE`);
//! - bounds every write ([`AuditLog::append`] waits at most the configured
//!   write timeout and refuses at once when [`MAX_PENDING_WRITES`] writes are
//!   already queued), so a stuck disk turns requests into 503s instead of
//!   hanging the server;
//! - fails closed: after a failed or partial write the log is poisoned and
//!   every later append fails until the vault is restarted (a half-written
//!   line would otherwise sit in the middle of the chain);
//! - replaces every leaf value (string, number, boolean) of the request and
//!   response bodies it is given by `hmac-sha256:<hex>` under the per-vault
//!   audit key ([`AuditKey`], generated at init and stored barrier-encrypted
//!   in [`Keyspace::AuditPointers`]). [`AuditKey::hash_leaf`] is what
//!   `POST /v1/sys/audit-hash` answers, so an auditor holding a value can
//!   find it. A string is hashed as its UTF-8 bytes, a number or boolean as
//!   its JSON text (`42`, `true`).
//!
//! - recovers a torn tail: a power loss mid-append can leave the last line
//!   without its newline. That record's request was never answered (each
//!   record is fsynced before the response), so [`AuditLog::open`], when
//!   every complete line verifies, truncates the file to the end of the
//!   last complete line, fsyncs, and appends a chained `recovery` record
//!   (`line`, `truncated_bytes`, `truncated_sha256`) so an auditor sees the
//!   cut and can match it against a backup. Any other break (a complete
//!   line that does not verify, a bad or unterminated header, an overlong
//!   line) still refuses to open. [`verify`] is read-only and reports the
//!   torn tail as [`BrokenReason::Unterminated`].
//!
//! # Semantics the HTTP layer builds on
//! A mutating request writes an `attempt` record before its effect is
//! committed and an outcome record after. If the attempt record cannot be
//! written the request fails with 503 and nothing happens; if the outcome
//! record cannot be written the request also fails with 503: the effect
//! may have happened (the attempt record says it was tried) but the
//! requester is never told it succeeded. Requests denied by authentication
//! or authorisation write one record with the exact reason.
//!
//! While the vault is sealed the audit key is not available (it is stored
//! under the barrier): records written then (init, unseal) carry
//! [`SEALED_PLACEHOLDER`] instead of each leaf value, never the value.
//!
//! # What it does not do
//! The chain detects a line changed, removed or inserted in the middle; it
//! does not detect a log truncated at a line boundary or rewritten as a
//! whole with a new header (ship the log elsewhere for that). Opening an
//! existing log verifies it in full, which is linear in its size.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ring::digest::{SHA256, digest};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use crate::barrier::{Barrier, BarrierError};
use crate::storage::{ConditionKind, Keyspace, Storage, StorageError};

/// Longest record line accepted, in bytes (also when verifying).
pub const MAX_RECORD_LEN: usize = 256 * 1024;
/// Most appends waiting for the sink at once; more are refused at once.
pub const MAX_PENDING_WRITES: usize = 64;
/// Prefix of a hashed leaf value.
pub const HMAC_PREFIX: &str = "hmac-sha256:";
/// What replaces leaf values while the audit key is unavailable (sealed).
pub const SEALED_PLACEHOLDER: &str = "redacted:sealed";
/// Length of the audit HMAC key.
pub const AUDIT_KEY_LEN: usize = 32;
/// Length of a log id.
const LOG_ID_LEN: usize = 16;
const GENESIS_DOMAIN: &[u8] = b"keyward audit log v1 genesis\0";
const AUDIT_KEY_STORAGE_KEY: &[u8] = b"hmac-key";

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log file could not be opened or created.
    #[error("audit log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The existing log does not verify; the vault will not append to it.
    #[error("audit log {path} is broken: {broken}")]
    Broken {
        /// The file.
        path: PathBuf,
        /// The first broken link.
        broken: BrokenLink,
    },
    /// Writing or syncing a record failed; the log is now poisoned.
    #[error("audit write failed: {0}")]
    Write(#[source] std::io::Error),
    /// The write did not complete in time.
    #[error("audit write did not complete within {timeout:?}")]
    Timeout {
        /// The bound.
        timeout: Duration,
    },
    /// [`MAX_PENDING_WRITES`] writes are already waiting.
    #[error("too many audit writes pending")]
    Backlog,
    /// An earlier write failed; nothing more is written until restart.
    #[error("the audit log failed earlier; restart the vault")]
    Poisoned,
    /// A record longer than [`MAX_RECORD_LEN`].
    #[error("audit record of {len} bytes; at most {max}")]
    RecordTooLarge {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The audit key is stored but does not open or has the wrong length.
    #[error("the stored audit key is corrupt")]
    KeyCorrupt,
    /// The barrier failed (sealed, or a corrupt value).
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a log line breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokenReason {
    /// The file has no line at all.
    #[error("the log is empty")]
    Empty,
    /// The line is longer than [`MAX_RECORD_LEN`].
    #[error("line longer than {max} bytes")]
    TooLong {
        /// The cap.
        max: usize,
    },
    /// The last line has no newline: a write was cut off (a power loss
    /// mid-append). [`AuditLog::open`] recovers this case when the line is
    /// not the header.
    #[error("unterminated last line: recoverable by restarting the server")]
    Unterminated,
    /// The file holds only an unterminated header: there is no chain to
    /// recover to. Not recovered by [`AuditLog::open`].
    #[error("the header line is not terminated")]
    TornHeader,
    /// The line is not a JSON object.
    #[error("not a JSON object")]
    NotJson,
    /// A required field is missing or has the wrong type.
    #[error("field `{field}` missing or malformed")]
    Field {
        /// The field.
        field: &'static str,
    },
    /// Line 1 is not a valid header.
    #[error("line 1 is not a log header")]
    NotHeader,
    /// The header's `prev` is not the genesis value of its `log_id`.
    #[error("header does not chain to the genesis value of its log id")]
    Genesis,
    /// `prev` is not the hash of the previous line.
    #[error("`prev` does not match the SHA-256 of line {previous}")]
    PrevMismatch {
        /// The previous line's number.
        previous: u64,
    },
    /// `seq` does not follow the previous record's.
    #[error("`seq` is {found}, expected {expected}")]
    Sequence {
        /// What it should be.
        expected: u64,
        /// What it is.
        found: u64,
    },
}

/// The first broken line of a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct BrokenLink {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub reason: BrokenReason,
}

/// Why [`verify`] could not say the log is intact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Reading failed.
    #[error("reading the log: {0}")]
    Io(#[from] std::io::Error),
    /// The chain is broken.
    #[error(transparent)]
    Broken(#[from] BrokenLink),
}

/// An intact log's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Lines, including the header.
    pub lines: u64,
    /// `seq` of the last record.
    pub last_seq: u64,
    /// SHA-256 of the last line.
    pub last_hash: [u8; 32],
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// The genesis value a log with `log_id` chains its header to.
pub fn genesis(log_id: &[u8]) -> [u8; 32] {
    let mut input = GENESIS_DOMAIN.to_vec();
    input.extend_from_slice(log_id);
    sha256(&input)
}

/// What [`read_line`] found.
enum Line {
    /// A newline-terminated line, now in the buffer without its newline.
    Complete,
    /// End of file at a line boundary.
    End,
    /// Bytes up to end of file without a newline, now in the buffer: the
    /// tail of a write cut off by a power loss.
    Torn,
}

/// Reads one line of at most [`MAX_RECORD_LEN`] bytes (plus newline).
fn read_line(reader: &mut impl BufRead, line: u64, buf: &mut Vec<u8>) -> Result<Line, VerifyError> {
    buf.clear();
    let limit = u64::try_from(MAX_RECORD_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let read = reader.take(limit).read_until(b'\n', buf)?;
    if read == 0 {
        return Ok(Line::End);
    }
    if buf.last() != Some(&b'\n') {
        if buf.len() > MAX_RECORD_LEN {
            return Err(BrokenLink {
                line,
                reason: BrokenReason::TooLong {
                    max: MAX_RECORD_LEN,
                },
            }
            .into());
        }
        // `take` stopped short of its limit without a newline, so this is
        // end of file.
        return Ok(Line::Torn);
    }
    buf.pop();
    Ok(Line::Complete)
}

fn field_str<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
    line: u64,
) -> Result<&'a str, BrokenLink> {
    obj.get(field).and_then(Value::as_str).ok_or(BrokenLink {
        line,
        reason: BrokenReason::Field { field },
    })
}

fn field_u64(obj: &Map<String, Value>, field: &'static str, line: u64) -> Result<u64, BrokenLink> {
    obj.get(field).and_then(Value::as_u64).ok_or(BrokenLink {
        line,
        reason: BrokenReason::Field { field },
    })
}

/// Checks a whole log: header, genesis, every `prev` and `seq`. Returns the
/// chain head of an intact log, or the first broken line. An unterminated
/// last line is reported as broken ([`BrokenReason::Unterminated`]) even
/// though [`AuditLog::open`] recovers it: this is a read-only check.
pub fn verify(reader: impl Read) -> Result<ChainHead, VerifyError> {
    match scan(reader)? {
        Scan::Intact(head) => Ok(head),
        Scan::TornTail { head, .. } => Err(BrokenLink {
            line: head.lines.saturating_add(1),
            reason: BrokenReason::Unterminated,
        }
        .into()),
    }
}

/// What [`scan`] found in a log whose complete lines all verify.
enum Scan {
    /// Every line is complete.
    Intact(ChainHead),
    /// An unterminated tail follows the complete lines.
    TornTail {
        /// The chain of the complete lines.
        head: ChainHead,
        /// Byte length of the complete lines (where the tail starts).
        complete_len: u64,
        /// The tail's bytes (at most [`MAX_RECORD_LEN`]).
        tail: Vec<u8>,
    },
}

fn not_json(line: u64) -> BrokenLink {
    BrokenLink {
        line,
        reason: BrokenReason::NotJson,
    }
}

/// Like [`verify`], but an unterminated tail after a verified header is
/// returned with its position instead of as a broken link.
fn scan(reader: impl Read) -> Result<Scan, VerifyError> {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    let mut line: u64 = 1;
    match read_line(&mut reader, line, &mut buf)? {
        Line::Complete => {}
        Line::End => {
            return Err(BrokenLink {
                line,
                reason: BrokenReason::Empty,
            }
            .into());
        }
        // Without a complete header there is no chain to continue.
        Line::Torn => {
            return Err(BrokenLink {
                line,
                reason: BrokenReason::TornHeader,
            }
            .into());
        }
    }
    let header: Map<String, Value> = serde_json::from_slice(&buf).map_err(|_| not_json(line))?;
    if header.get("type").and_then(Value::as_str) != Some("header")
        || header.get("version").and_then(Value::as_u64) != Some(1)
        || header.get("seq").and_then(Value::as_u64) != Some(0)
    {
        return Err(BrokenLink {
            line,
            reason: BrokenReason::NotHeader,
        }
        .into());
    }
    let log_id = hex::decode(field_str(&header, "log_id", line)?).map_err(|_| BrokenLink {
        line,
        reason: BrokenReason::Field { field: "log_id" },
    })?;
    if field_str(&header, "prev", line)? != hex::encode(genesis(&log_id)) {
        return Err(BrokenLink {
            line,
            reason: BrokenReason::Genesis,
        }
        .into());
    }
    let mut last_hash = sha256(&buf);
    let mut last_seq = 0u64;
    let mut complete_len = line_len(&buf);
    loop {
        let next = line.saturating_add(1);
        match read_line(&mut reader, next, &mut buf)? {
            Line::Complete => {}
            Line::End => break,
            Line::Torn => {
                return Ok(Scan::TornTail {
                    head: ChainHead {
                        lines: line,
                        last_seq,
                        last_hash,
                    },
                    complete_len,
                    tail: buf,
                });
            }
        }
        line = next;
        let record: Map<String, Value> =
            serde_json::from_slice(&buf).map_err(|_| not_json(line))?;
        if field_str(&record, "prev", line)? != hex::encode(last_hash) {
            return Err(BrokenLink {
                line,
                reason: BrokenReason::PrevMismatch {
                    previous: line.saturating_sub(1),
                },
            }
            .into());
        }
        let seq = field_u64(&record, "seq", line)?;
        let expected = last_seq.saturating_add(1);
        if seq != expected {
            return Err(BrokenLink {
                line,
                reason: BrokenReason::Sequence {
                    expected,
                    found: seq,
                },
            }
            .into());
        }
        last_seq = seq;
        last_hash = sha256(&buf);
        complete_len = complete_len.saturating_add(line_len(&buf));
    }
    Ok(Scan::Intact(ChainHead {
        lines: line,
        last_seq,
        last_hash,
    }))
}

/// Bytes a complete line occupies in the file, newline included.
fn line_len(line_without_newline: &[u8]) -> u64 {
    u64::try_from(line_without_newline.len())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

/// Where records go. The file sink is [`FileWriter`]; tests substitute
/// failing or blocking writers.
pub trait AuditWriter: Send + 'static {
    /// Appends `line` (newline included) and makes it durable before
    /// returning.
    fn append(&mut self, line: &[u8]) -> std::io::Result<()>;
}

/// The file sink: `write_all` then `sync_data`.
#[derive(Debug)]
pub struct FileWriter(File);

impl AuditWriter for FileWriter {
    fn append(&mut self, line: &[u8]) -> std::io::Result<()> {
        self.0.write_all(line)?;
        self.0.sync_data()
    }
}

struct Chain {
    writer: Box<dyn AuditWriter>,
    prev: [u8; 32],
    seq: u64,
    poisoned: bool,
}

impl Chain {
    fn write(&mut self, mut record: Map<String, Value>) -> Result<(), AuditError> {
        if self.poisoned {
            return Err(AuditError::Poisoned);
        }
        let seq = self.seq.saturating_add(1);
        record.insert("seq".into(), Value::from(seq));
        record.insert("prev".into(), Value::from(hex::encode(self.prev)));
        let text = Value::Object(record).to_string();
        if text.len() > MAX_RECORD_LEN {
            return Err(AuditError::RecordTooLarge {
                len: text.len(),
                max: MAX_RECORD_LEN,
            });
        }
        let mut line = text.into_bytes();
        let hash = sha256(&line);
        line.push(b'\n');
        if let Err(e) = self.writer.append(&line) {
            // A partial line may now be on disk: nothing may follow it.
            self.poisoned = true;
            return Err(AuditError::Write(e));
        }
        self.prev = hash;
        self.seq = seq;
        Ok(())
    }
}

/// The per-vault audit HMAC key. No `Debug` of the key, no `Clone`.
pub struct AuditKey(hmac::Key);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey([redacted])")
    }
}

impl AuditKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == AUDIT_KEY_LEN).then(|| Self(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// Loads the vault's audit key, creating it on first use (at init, or
    /// after a crash between init and its creation). Needs the barrier
    /// unsealed.
    pub async fn load_or_create(
        storage: &Arc<dyn Storage>,
        barrier: &Barrier,
    ) -> Result<Self, AuditError> {
        loop {
            if let Some(sealed) = storage
                .get(Keyspace::AuditPointers, AUDIT_KEY_STORAGE_KEY)
                .await?
            {
                let bytes =
                    barrier.decrypt(Keyspace::AuditPointers, AUDIT_KEY_STORAGE_KEY, &sealed)?;
                return Self::from_bytes(&bytes).ok_or(AuditError::KeyCorrupt);
            }
            let mut fresh = Zeroizing::new([0u8; AUDIT_KEY_LEN]);
            SystemRandom::new()
                .fill(fresh.as_mut())
                .map_err(|_| AuditError::Random)?;
            let sealed = barrier
                .encrypt(
                    Keyspace::AuditPointers,
                    AUDIT_KEY_STORAGE_KEY,
                    fresh.as_ref(),
                )
                .await?;
            match storage
                .insert_if_absent(Keyspace::AuditPointers, AUDIT_KEY_STORAGE_KEY, &sealed)
                .await
            {
                Ok(()) => return Self::from_bytes(fresh.as_ref()).ok_or(AuditError::KeyCorrupt),
                // Another request created it first: use theirs.
                Err(StorageError::ConditionFailed {
                    kind: ConditionKind::InsertNew,
                    ..
                }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// `hmac-sha256:<hex>` of one leaf value; `None` for arrays, objects
    /// and null, which are not leaves that carry data.
    pub fn hash_leaf(&self, value: &Value) -> Option<String> {
        let tag = match value {
            Value::String(s) => hmac::sign(&self.0, s.as_bytes()),
            Value::Number(n) => hmac::sign(&self.0, n.to_string().as_bytes()),
            Value::Bool(b) => hmac::sign(&self.0, if *b { b"true" } else { b"false" }),
            Value::Null | Value::Array(_) | Value::Object(_) => return None,
        };
        Some(format!("{HMAC_PREFIX}{}", hex::encode(tag.as_ref())))
    }
}

/// `value` with every leaf replaced: by its HMAC under `key`, or by
/// [`SEALED_PLACEHOLDER`] without a key. Object keys and structure stay.
pub fn redact(key: Option<&AuditKey>, value: &Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(key, v)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact(key, v)))
                .collect(),
        ),
        leaf => Value::String(
            key.and_then(|k| k.hash_leaf(leaf))
                .unwrap_or_else(|| SEALED_PLACEHOLDER.to_owned()),
        ),
    }
}

/// Zeroizes every string in `value` (bodies can hold tokens and shares).
/// Numbers and booleans cannot be wiped in place; object keys are not
/// secrets.
pub fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// One audit record before redaction and chaining.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The request id (also sent as `X-Request-Id`).
    pub request_id: String,
    /// Token accessor, or `anonymous`.
    pub actor: String,
    /// What was asked, e.g. `token.create`.
    pub operation: &'static str,
    /// The request path.
    pub path: String,
    /// `attempt`, `success`, `denied` or `failed`.
    pub outcome: Outcome,
    /// The HTTP status answered (not for `attempt`).
    pub status: Option<u16>,
    /// For denials and failures: the exact reason (never sent to clients
    /// on 401/403/500).
    pub reason: Option<String>,
    /// The request body, redacted before writing.
    pub request: Option<Value>,
    /// The response body, redacted before writing.
    pub response: Option<Value>,
}

/// What an audit record reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Written before the effect is committed.
    Attempt,
    /// The request succeeded.
    Success,
    /// Authentication or authorisation refused it.
    Denied,
    /// It failed (bad input, conflict, internal error).
    Failed,
}

impl Outcome {
    /// Its name in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Attempt => "attempt",
            Self::Success => "success",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// The audit log.
pub struct AuditLog {
    chain: Arc<Mutex<Chain>>,
    pending: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
    key: Mutex<Option<Arc<AuditKey>>>,
    failures: AtomicU64,
    recovered: Option<Recovered>,
}

/// A torn tail that [`AuditLog::open`] cut off; the same facts are in the
/// `recovery` record it appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// 1-based line number the torn tail started on.
    pub line: u64,
    /// Bytes cut off.
    pub bytes: u64,
    /// SHA-256 of the bytes cut off.
    pub sha256: [u8; 32],
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("timeout", &self.timeout)
            .field("failures", &self.failures.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The chain state is updated only after a successful write; a panic in
    // between leaves it at the last durable line.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuditLog {
    /// Opens the log at `path`, creating it with a fresh header when absent
    /// or empty; an existing log must verify ([`AuditError::Broken`]), except
    /// that an unterminated last line after verified complete lines is cut
    /// off (truncate, fsync) and a `recovery` record naming its length and
    /// SHA-256 is appended ([`AuditLog::recovered`]).
    pub fn open(path: &Path, timeout: Duration) -> Result<Self, AuditError> {
        let open_err = |source| AuditError::Open {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        if len == 0 {
            let mut log_id = [0u8; LOG_ID_LEN];
            SystemRandom::new()
                .fill(&mut log_id)
                .map_err(|_| AuditError::Random)?;
            let header = serde_json::json!({
                "type": "header",
                "version": 1,
                "log_id": hex::encode(log_id),
                "seq": 0,
                "prev": hex::encode(genesis(&log_id)),
            })
            .to_string();
            let mut line = header.clone().into_bytes();
            line.push(b'\n');
            let mut writer = FileWriter(file);
            writer.append(&line).map_err(open_err)?;
            return Ok(Self::with_writer(
                Box::new(writer),
                sha256(header.as_bytes()),
                0,
                timeout,
            ));
        }
        let broken = |e| match e {
            VerifyError::Io(source) => open_err(source),
            VerifyError::Broken(broken) => AuditError::Broken {
                path: path.to_owned(),
                broken,
            },
        };
        let (head, complete_len, tail) = match scan(&mut file).map_err(broken)? {
            Scan::Intact(head) => {
                return Ok(Self::with_writer(
                    Box::new(FileWriter(file)),
                    head.last_hash,
                    head.last_seq,
                    timeout,
                ));
            }
            Scan::TornTail {
                head,
                complete_len,
                tail,
            } => (head, complete_len, tail),
        };
        // Every record is fsynced before its request is answered, so a torn
        // tail is a record whose request was never acknowledged: cut it
        // off, and record the cut in the chain so it is not silent.
        let tail_len = u64::try_from(tail.len()).unwrap_or(u64::MAX);
        if complete_len.saturating_add(tail_len) != len {
            return Err(open_err(std::io::Error::other(
                "the audit log changed while it was being opened",
            )));
        }
        file.set_len(complete_len).map_err(open_err)?;
        file.sync_all().map_err(open_err)?;
        let recovered = Recovered {
            line: head.lines.saturating_add(1),
            bytes: tail_len,
            sha256: sha256(&tail),
        };
        let log = Self::with_writer(
            Box::new(FileWriter(file)),
            head.last_hash,
            head.last_seq,
            timeout,
        );
        let mut record = Map::new();
        record.insert("type".into(), Value::from("recovery"));
        record.insert("time_ms".into(), Value::from(now_ms()));
        record.insert("reason".into(), Value::from("unterminated last line"));
        record.insert("line".into(), Value::from(recovered.line));
        record.insert("truncated_bytes".into(), Value::from(recovered.bytes));
        record.insert(
            "truncated_sha256".into(),
            Value::from(hex::encode(recovered.sha256)),
        );
        lock(&log.chain).write(record)?;
        Ok(Self {
            recovered: Some(recovered),
            ..log
        })
    }

    /// A log over any writer whose last line hashed to `prev` with
    /// sequence number `seq` (tests inject failing sinks here).
    pub fn with_writer(
        writer: Box<dyn AuditWriter>,
        prev: [u8; 32],
        seq: u64,
        timeout: Duration,
    ) -> Self {
        Self {
            chain: Arc::new(Mutex::new(Chain {
                writer,
                prev,
                seq,
                poisoned: false,
            })),
            pending: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_WRITES)),
            timeout,
            key: Mutex::new(None),
            failures: AtomicU64::new(0),
            recovered: None,
        }
    }

    /// Installs the audit key (after init or unseal).
    pub fn set_key(&self, key: AuditKey) {
        *lock(&self.key) = Some(Arc::new(key));
    }

    /// Forgets the audit key (on seal).
    pub fn clear_key(&self) {
        *lock(&self.key) = None;
    }

    /// The audit key, while unsealed.
    pub fn key(&self) -> Option<Arc<AuditKey>> {
        lock(&self.key).clone()
    }

    /// The torn tail cut off when this log was opened, if any.
    pub fn recovered(&self) -> Option<&Recovered> {
        self.recovered.as_ref()
    }

    /// Appends failed so far (for metrics).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Redacts, chains and durably appends `entry`, within the write
    /// timeout.
    pub async fn append(&self, entry: AuditEntry) -> Result<(), AuditError> {
        let result = self.append_inner(entry).await;
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn append_inner(&self, entry: AuditEntry) -> Result<(), AuditError> {
        let key = self.key();
        let mut record = Map::new();
        record.insert("type".into(), Value::from("record"));
        record.insert("time_ms".into(), Value::from(entry.time_ms));
        record.insert("request_id".into(), Value::from(entry.request_id));
        record.insert("actor".into(), Value::from(entry.actor));
        record.insert("operation".into(), Value::from(entry.operation));
        record.insert("path".into(), Value::from(entry.path));
        record.insert("outcome".into(), Value::from(entry.outcome.as_str()));
        if let Some(status) = entry.status {
            record.insert("status".into(), Value::from(status));
        }
        if let Some(reason) = entry.reason {
            record.insert("reason".into(), Value::from(reason));
        }
        if let Some(mut request) = entry.request {
            record.insert("request".into(), redact(key.as_deref(), &request));
            wipe(&mut request);
        }
        if let Some(mut response) = entry.response {
            record.insert("response".into(), redact(key.as_deref(), &response));
            wipe(&mut response);
        }
        // A full queue means the sink is stuck: refuse now rather than
        // park one more blocking thread behind it.
        let permit = Arc::clone(&self.pending)
            .try_acquire_owned()
            .map_err(|_| AuditError::Backlog)?;
        let chain = Arc::clone(&self.chain);
        // The chain is updated inside the blocking task, so a write that
        // finishes after we gave up still leaves the chain consistent.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            lock(&chain).write(record)
        });
        match tokio::time::timeout(self.timeout, task).await {
            Err(_) => Err(AuditError::Timeout {
                timeout: self.timeout,
            }),
            Ok(Err(join)) => Err(AuditError::Write(std::io::Error::other(join))),
            Ok(Ok(result)) => result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            time_ms: n,
            request_id: format!("r{n}"),
            actor: "anonymous".into(),
            operation: "test",
            path: "/v1/test".into(),
            outcome: Outcome::Success,
            status: Some(200),
            reason: None,
            request: Some(serde_json::json!({"secret": "s3cret", "n": 42, "b": true})),
            response: None,
        }
    }

    async fn log_with(n: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, Duration::from_secs(5)).unwrap();
        log.set_key(AuditKey::from_bytes(&[7u8; 32]).unwrap());
        for i in 0..n {
            log.append(entry(i)).await.unwrap();
        }
        (dir, path)
    }

    #[tokio::test]
    async fn chain_verifies_and_reopens() {
        let (_dir, path) = log_with(3).await;
        let head = verify(File::open(&path).unwrap()).unwrap();
        assert_eq!(head.lines, 4);
        assert_eq!(head.last_seq, 3);
        let log = AuditLog::open(&path, Duration::from_secs(5)).unwrap();
        log.append(entry(9)).await.unwrap();
        assert_eq!(verify(File::open(&path).unwrap()).unwrap().last_seq, 4);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret"));
        assert!(!text.contains(":42"));
        assert!(text.contains(HMAC_PREFIX));
    }

    #[tokio::test]
    async fn tampered_line_is_named() {
        let (_dir, path) = log_with(3).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let tampered = text.replacen("\"r1\"", "\"rX\"", 1);
        std::fs::write(&path, tampered).unwrap();
        let err = verify(File::open(&path).unwrap()).unwrap_err();
        match err {
            VerifyError::Broken(b) => {
                assert_eq!(b.line, 4);
                assert_eq!(b.reason, BrokenReason::PrevMismatch { previous: 3 });
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            AuditLog::open(&path, Duration::from_secs(1)),
            Err(AuditError::Broken { .. })
        ));
    }

    #[tokio::test]
    async fn removed_line_and_truncation_are_named() {
        let (_dir, path) = log_with(3).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let without = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[3]);
        std::fs::write(&path, without).unwrap();
        let VerifyError::Broken(b) = verify(File::open(&path).unwrap()).unwrap_err() else {
            panic!()
        };
        assert_eq!(
            (b.line, b.reason),
            (3, BrokenReason::PrevMismatch { previous: 2 })
        );
        std::fs::write(&path, &text[..text.len() - 5]).unwrap();
        let VerifyError::Broken(b) = verify(File::open(&path).unwrap()).unwrap_err() else {
            panic!()
        };
        assert_eq!((b.line, b.reason), (4, BrokenReason::Unterminated));
        std::fs::write(&path, "").unwrap();
        let VerifyError::Broken(b) = verify(File::open(&path).unwrap()).unwrap_err() else {
            panic!()
        };
        assert_eq!(b.reason, BrokenReason::Empty);
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_recorded() {
        let (_dir, path) = log_with(3).await;
        let intact = std::fs::read(&path).unwrap();
        let tail = b"{\"type\":\"record\",\"seq\":";
        let mut torn = intact.clone();
        torn.extend_from_slice(tail);
        std::fs::write(&path, &torn).unwrap();

        let log = AuditLog::open(&path, Duration::from_secs(5)).unwrap();
        let expected = Recovered {
            line: 5,
            bytes: u64::try_from(tail.len()).unwrap(),
            sha256: sha256(tail),
        };
        assert_eq!(log.recovered(), Some(&expected));
        log.append(entry(9)).await.unwrap();
        drop(log);

        let text = std::fs::read(&path).unwrap();
        assert!(text.starts_with(&intact));
        let lines: Vec<Value> = text[intact.len()..]
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["type"], "recovery");
        assert_eq!(lines[0]["seq"], 4);
        assert_eq!(lines[0]["line"], 5);
        assert_eq!(lines[0]["truncated_bytes"], tail.len());
        assert_eq!(lines[0]["truncated_sha256"], hex::encode(sha256(tail)));
        assert_eq!(lines[1]["type"], "record");
        let head = verify(File::open(&path).unwrap()).unwrap();
        assert_eq!((head.lines, head.last_seq), (6, 5));

        // An intact log reopens without a recovery.
        let log = AuditLog::open(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(log.recovered(), None);
    }

    #[tokio::test]
    async fn torn_tail_after_a_broken_line_is_refused() {
        let (_dir, path) = log_with(3).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let mut tampered = text.replacen("\"r1\"", "\"rX\"", 1);
        tampered.push_str("{\"type\":");
        std::fs::write(&path, &tampered).unwrap();
        match AuditLog::open(&path, Duration::from_secs(1)) {
            Err(AuditError::Broken { broken, .. }) => assert_eq!(
                (broken.line, broken.reason),
                (4, BrokenReason::PrevMismatch { previous: 3 })
            ),
            other => panic!("{other:?}"),
        }
        // Nothing was cut.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), tampered);
    }

    #[tokio::test]
    async fn torn_header_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, "{\"type\":\"header\",").unwrap();
        match AuditLog::open(&path, Duration::from_secs(1)) {
            Err(AuditError::Broken { broken, .. }) => {
                assert_eq!((broken.line, broken.reason), (1, BrokenReason::TornHeader));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"type\":\"header\","
        );
    }

    #[test]
    fn hash_leaf_covers_every_type() {
        let key = AuditKey::from_bytes(&[1u8; 32]).unwrap();
        let out = redact(
            Some(&key),
            &serde_json::json!({"s": "x", "n": 1, "b": false, "z": null, "a": [2]}),
        );
        for v in [&out["s"], &out["n"], &out["b"], &out["a"][0]] {
            assert!(v.as_str().unwrap().starts_with(HMAC_PREFIX));
        }
        assert!(out["z"].is_null());
        assert_eq!(
            out["n"].as_str(),
            key.hash_leaf(&serde_json::json!(1)).as_deref()
        );
        assert_ne!(out["n"], out["b"]);
        let sealed = redact(None, &serde_json::json!({"s": "x"}));
        assert_eq!(sealed["s"], SEALED_PLACEHOLDER);
    }

    struct Failing;
    impl AuditWriter for Failing {
        fn append(&mut self, _line: &[u8]) -> std::io::Result<()> {
            Err(std::io::Error::other("disk full"))
        }
    }

    struct Stuck;
    impl AuditWriter for Stuck {
        fn append(&mut self, _line: &[u8]) -> std::io::Result<()> {
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        }
    }

    #[tokio::test]
    async fn failing_sink_poisons() {
        let log = AuditLog::with_writer(Box::new(Failing), [0; 32], 0, Duration::from_secs(1));
        assert!(matches!(
            log.append(entry(1)).await,
            Err(AuditError::Write(_))
        ));
        assert!(matches!(
            log.append(entry(2)).await,
            Err(AuditError::Poisoned)
        ));
        assert_eq!(log.failures(), 2);
    }

    #[tokio::test]
    async fn stuck_sink_times_out() {
        let log = AuditLog::with_writer(Box::new(Stuck), [0; 32], 0, Duration::from_millis(100));
        let started = std::time::Instant::now();
        assert!(matches!(
            log.append(entry(1)).await,
            Err(AuditError::Timeout { .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

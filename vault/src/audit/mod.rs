//! The fail-closed, hash-chained audit log.
//!
//! # What it does
//! - appends one JSON object per line to a file and `fsync`s it before
//!   [`AuditLog::append`] returns, so a record the caller was told about is
//!   durable;
//! - commits in groups: one writer thread owns the file and the chain
//!   head; it takes every record queued since its last write, chains them
//!   in queue order, writes them with one `write` and one `fdatasync`, then
//!   answers each waiter. Concurrent requests share an fsync instead of
//!   queueing one each behind a mutex (the shape of
//!   [`crate::storage::SledStorage`]'s flusher, with the records themselves
//!   as the queue). Under load (its previous group held more than one
//!   record) it gathers for a moment before the sync
//!   ([`crate::group_commit`]);
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
//!   line would otherwise sit in the middle of the chain). When the write
//!   or the sync of a batch fails, every record of the batch gets the error;
//! - skips a record whose waiter gave up (timed out, or its request was
//!   dropped) before the writer took it, so a request answered 503 leaves
//!   no record claiming it went on. A waiter that gives up while its batch
//!   is being written cannot stop it: that record may still become durable,
//!   so the log can hold a record for a request that was answered with an
//!   error (the safe direction: never an answer without its record);
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
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use ring::digest::{SHA256, digest};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
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
    /// The writer thread could not be started.
    #[error("the audit writer thread could not be started: {0}")]
    Start(#[source] std::io::Error),
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
/// failing, blocking or counting writers.
///
/// The writer thread calls [`AuditWriter::append`] once per batch with
/// every line of the batch, then [`AuditWriter::sync`] once; a record is
/// acknowledged only after both returned `Ok`. After either fails nothing
/// more is written.
pub trait AuditWriter: Send + 'static {
    /// Appends `lines` (one or more complete records, each ending in a
    /// newline) with one write. Need not be durable yet.
    fn append(&mut self, lines: &[u8]) -> std::io::Result<()>;

    /// Makes everything appended so far durable.
    fn sync(&mut self) -> std::io::Result<()>;
}

/// The file sink: `write_all` per batch, then one `sync_data`.
#[derive(Debug)]
pub struct FileWriter(File);

impl AuditWriter for FileWriter {
    fn append(&mut self, lines: &[u8]) -> std::io::Result<()> {
        self.0.write_all(lines)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.0.sync_data()
    }
}

/// The end of the chain and its sink; owned by the writer thread (and by
/// [`AuditLog::open`] before the thread starts).
struct Chain {
    writer: Box<dyn AuditWriter>,
    prev: [u8; 32],
    seq: u64,
    poisoned: bool,
}

/// `record` as the line (newline included) that follows `prev` as number
/// `seq`, and the hash the next line chains to.
fn encode_line(
    mut record: Map<String, Value>,
    seq: u64,
    prev: &[u8; 32],
) -> Result<(Vec<u8>, [u8; 32]), AuditError> {
    record.insert("seq".into(), Value::from(seq));
    record.insert("prev".into(), Value::from(hex::encode(prev)));
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
    Ok((line, hash))
}

/// A copy of a sink error for each record of a failed batch
/// (`std::io::Error` is not `Clone`): the same OS error, or the same kind
/// and message.
fn copy_io_error(e: &std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(e.kind(), e.to_string()),
    }
}

impl Chain {
    /// Writes one record synchronously (the recovery record, before the
    /// writer thread exists).
    fn write_now(&mut self, record: Map<String, Value>) -> Result<(), AuditError> {
        if self.poisoned {
            return Err(AuditError::Poisoned);
        }
        let seq = self.seq.saturating_add(1);
        let (line, hash) = encode_line(record, seq, &self.prev)?;
        if let Err(e) = self.writer.append(&line).and_then(|()| self.writer.sync()) {
            // A partial line may now be on disk: nothing may follow it.
            self.poisoned = true;
            return Err(AuditError::Write(e));
        }
        self.prev = hash;
        self.seq = seq;
        Ok(())
    }

    /// Chains, writes and syncs `batch` (in queue order) and answers every
    /// waiter. `lines` is a reused buffer.
    fn commit(&mut self, batch: &mut Vec<Queued>, lines: &mut Vec<u8>) {
        lines.clear();
        let mut prev = self.prev;
        let mut seq = self.seq;
        let mut written = Vec::with_capacity(batch.len());
        for Queued {
            record,
            done,
            permit,
        } in batch.drain(..)
        {
            // Its waiter gave up (timed out, or the request was dropped)
            // and has already answered without it: the record must not
            // appear in the log as if its request had gone on.
            if done.is_closed() {
                continue;
            }
            // Each permit is released before its answer is sent, so a
            // waiter that appends again at once finds it free.
            if self.poisoned {
                drop(permit);
                let _ = done.send(Err(AuditError::Poisoned));
                continue;
            }
            let next = seq.saturating_add(1);
            match encode_line(record, next, &prev) {
                Ok((line, hash)) => {
                    lines.extend_from_slice(&line);
                    prev = hash;
                    seq = next;
                    written.push((done, permit));
                }
                // Refused on its own; the chain goes on without it.
                Err(e) => {
                    drop(permit);
                    let _ = done.send(Err(e));
                }
            }
        }
        if written.is_empty() {
            return;
        }
        match self.writer.append(lines).and_then(|()| self.writer.sync()) {
            Ok(()) => {
                self.prev = prev;
                self.seq = seq;
                for (done, permit) in written {
                    drop(permit);
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                // Part of the batch may be on disk, possibly a partial
                // line: nothing may follow it, and no record of the batch
                // is known to be durable.
                self.poisoned = true;
                for (done, permit) in written {
                    drop(permit);
                    let _ = done.send(Err(AuditError::Write(copy_io_error(&e))));
                }
            }
        }
    }
}

/// A record waiting for the writer thread.
struct Queued {
    /// Redacted, not yet chained (no `seq`, `prev`).
    record: Map<String, Value>,
    done: oneshot::Sender<Result<(), AuditError>>,
    /// One of the [`MAX_PENDING_WRITES`]; released just before the record
    /// is answered, or when it is dropped.
    permit: OwnedSemaphorePermit,
}

/// The writer thread: takes every record queued (at most
/// [`MAX_PENDING_WRITES`], since each holds a permit), writes them as one
/// batch with one sync, answers, repeats. Ends when the log is dropped and
/// the queue is empty.
fn run_writer(mut chain: Chain, queue: &mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_PENDING_WRITES);
    let mut lines = Vec::new();
    let mut previous = 0;
    let drain = |batch: &mut Vec<Queued>| {
        while batch.len() < MAX_PENDING_WRITES {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
    };
    while let Ok(first) = queue.recv() {
        let woke = std::time::Instant::now();
        batch.push(first);
        drain(&mut batch);
        // Under load, gather a larger group for the one sync.
        crate::group_commit::pause_to_gather(previous, batch.len(), woke);
        drain(&mut batch);
        previous = batch.len();
        chain.commit(&mut batch, &mut lines);
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
        let mut out = String::with_capacity(HMAC_PREFIX.len() + 2 * tag.as_ref().len());
        out.push_str(HMAC_PREFIX);
        out.push_str(&hex::encode(tag.as_ref()));
        Some(out)
    }
}

/// `value` with every leaf replaced: by its HMAC under `key`, or by
/// [`SEALED_PLACEHOLDER`] without a key. Object keys and structure stay.
/// It takes `value` and wipes each string leaf once hashed, like [`wipe`]:
/// bodies can hold tokens and shares.
pub fn redact(key: Option<&AuditKey>, value: Value) -> Value {
    match value {
        Value::Null => Value::Null,
        Value::Array(items) => Value::Array(items.into_iter().map(|v| redact(key, v)).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, redact(key, v))).collect())
        }
        mut leaf => {
            let hashed = key
                .and_then(|k| k.hash_leaf(&leaf))
                .unwrap_or_else(|| SEALED_PLACEHOLDER.to_owned());
            wipe(&mut leaf);
            Value::String(hashed)
        }
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
    /// To the writer thread; `None` only while dropping.
    queue: Option<mpsc::SyncSender<Queued>>,
    writer: Option<JoinHandle<()>>,
    pending: Arc<Semaphore>,
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
    // Only the audit key is behind a mutex; replacing an `Option` cannot be
    // left half-done by a panic.
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
            writer
                .append(&line)
                .and_then(|()| writer.sync())
                .map_err(open_err)?;
            return Self::with_writer(Box::new(writer), sha256(header.as_bytes()), 0, timeout);
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
                return Self::with_writer(
                    Box::new(FileWriter(file)),
                    head.last_hash,
                    head.last_seq,
                    timeout,
                );
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
        let mut chain = Chain {
            writer: Box::new(FileWriter(file)),
            prev: head.last_hash,
            seq: head.last_seq,
            poisoned: false,
        };
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
        chain.write_now(record)?;
        Self::start(chain, timeout, Some(recovered))
    }

    /// A log over any writer whose last line hashed to `prev` with
    /// sequence number `seq` (tests inject failing sinks here). Starts the
    /// writer thread.
    pub fn with_writer(
        writer: Box<dyn AuditWriter>,
        prev: [u8; 32],
        seq: u64,
        timeout: Duration,
    ) -> Result<Self, AuditError> {
        let chain = Chain {
            writer,
            prev,
            seq,
            poisoned: false,
        };
        Self::start(chain, timeout, None)
    }

    fn start(
        chain: Chain,
        timeout: Duration,
        recovered: Option<Recovered>,
    ) -> Result<Self, AuditError> {
        // Every queued record holds a permit, so the queue never holds more
        // than this; a full queue is refused by the permit first.
        let (queue, receiver) = mpsc::sync_channel(MAX_PENDING_WRITES);
        let writer = std::thread::Builder::new()
            .name("keyward-audit".into())
            .spawn(move || run_writer(chain, &receiver))
            .map_err(AuditError::Start)?;
        Ok(Self {
            queue: Some(queue),
            writer: Some(writer),
            pending: Arc::new(Semaphore::new(MAX_PENDING_WRITES)),
            timeout,
            key: Mutex::new(None),
            failures: AtomicU64::new(0),
            recovered,
        })
    }

    /// Appends queued or being written now (at most
    /// [`MAX_PENDING_WRITES`]), for metrics and tests.
    pub fn pending_writes(&self) -> usize {
        MAX_PENDING_WRITES.saturating_sub(self.pending.available_permits())
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
        if let Some(request) = entry.request {
            record.insert("request".into(), redact(key.as_deref(), request));
        }
        if let Some(response) = entry.response {
            record.insert("response".into(), redact(key.as_deref(), response));
        }
        // A full queue means the sink is stuck: refuse now rather than
        // queue without bound behind it.
        let permit = Arc::clone(&self.pending)
            .try_acquire_owned()
            .map_err(|_| AuditError::Backlog)?;
        let (done, answer) = oneshot::channel();
        let queued = Queued {
            record,
            done,
            permit,
        };
        let queue = self.queue.as_ref().ok_or(AuditError::Poisoned)?;
        match queue.try_send(queued) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => return Err(AuditError::Backlog),
            // The writer thread is gone (a sink panicked): fail closed.
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(AuditError::Poisoned),
        }
        // On timeout `answer` is dropped with this future, so a record the
        // writer has not taken yet is skipped, not written. One it is
        // writing already may still become durable after we answered: the
        // log then holds a record for a request that failed, never the
        // reverse.
        match tokio::time::timeout(self.timeout, answer).await {
            Err(_) => Err(AuditError::Timeout {
                timeout: self.timeout,
            }),
            // The writer thread ended without answering (a sink panicked
            // mid-batch): the outcome is unknown.
            Ok(Err(_)) => Err(AuditError::Write(std::io::Error::other(
                "the audit writer thread stopped",
            ))),
            Ok(Ok(result)) => result,
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // Closing the queue ends the writer thread once it has answered
        // what is queued; waiting for it means a log reopened on the same
        // file (an in-process restart) never races a write of this one.
        // Every append borrows the log, so what is still queued here has no
        // waiter and is skipped: at most the batch being written is left.
        self.queue = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
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
            serde_json::json!({"s": "x", "n": 1, "b": false, "z": null, "a": [2]}),
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
        let sealed = redact(None, serde_json::json!({"s": "x"}));
        assert_eq!(sealed["s"], SEALED_PLACEHOLDER);
    }

    struct Failing;
    impl AuditWriter for Failing {
        fn append(&mut self, _lines: &[u8]) -> std::io::Result<()> {
            Err(std::io::Error::other("disk full"))
        }
        fn sync(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Stuck;
    impl AuditWriter for Stuck {
        fn append(&mut self, _lines: &[u8]) -> std::io::Result<()> {
            std::thread::sleep(Duration::from_secs(2));
            Ok(())
        }
        fn sync(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn failing_sink_poisons() {
        let log =
            AuditLog::with_writer(Box::new(Failing), [0; 32], 0, Duration::from_secs(1)).unwrap();
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
        let log =
            AuditLog::with_writer(Box::new(Stuck), [0; 32], 0, Duration::from_millis(100)).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            log.append(entry(1)).await,
            Err(AuditError::Timeout { .. })
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// What a [`Recording`] writer has seen.
    #[derive(Default)]
    struct Seen {
        /// Bytes appended so far.
        written: Vec<u8>,
        /// Bytes made durable by a successful sync (a prefix of `written`).
        durable: Vec<u8>,
        appends: usize,
        syncs: usize,
        /// Syncs from this number on (1-based) fail.
        fail_syncs_from: Option<usize>,
    }

    /// A gate the writer waits at in `append` while it is closed.
    #[derive(Default)]
    struct Gate {
        closed: Mutex<bool>,
        opened: std::sync::Condvar,
        /// Appends that reached the gate.
        arrived: AtomicU64,
    }

    impl Gate {
        fn closed() -> Arc<Self> {
            Arc::new(Self {
                closed: Mutex::new(true),
                ..Self::default()
            })
        }

        fn open(&self) {
            *lock(&self.closed) = false;
            self.opened.notify_all();
        }

        fn pass(&self) {
            self.arrived.fetch_add(1, Ordering::SeqCst);
            let closed = lock(&self.closed);
            // Bounded, so a failing test ends instead of hanging in the
            // log's drop.
            let _ = self
                .opened
                .wait_timeout_while(closed, Duration::from_secs(30), |closed| *closed);
        }
    }

    /// A real file sink that records what it was asked to do.
    struct Recording {
        file: File,
        seen: Arc<Mutex<Seen>>,
        gate: Option<Arc<Gate>>,
    }

    impl AuditWriter for Recording {
        fn append(&mut self, lines: &[u8]) -> std::io::Result<()> {
            if let Some(gate) = &self.gate {
                gate.pass();
            }
            self.file.write_all(lines)?;
            let mut seen = lock(&self.seen);
            seen.written.extend_from_slice(lines);
            seen.appends += 1;
            Ok(())
        }

        fn sync(&mut self) -> std::io::Result<()> {
            let mut seen = lock(&self.seen);
            seen.syncs += 1;
            if seen.fail_syncs_from.is_some_and(|from| seen.syncs >= from) {
                return Err(std::io::Error::from_raw_os_error(5)); // EIO
            }
            self.file.sync_data()?;
            seen.durable = seen.written.clone();
            Ok(())
        }
    }

    struct Recorded {
        _dir: tempfile::TempDir,
        path: PathBuf,
        log: Arc<AuditLog>,
        seen: Arc<Mutex<Seen>>,
    }

    /// A log on a fresh file (header written by [`AuditLog::open`]) whose
    /// records then go through a [`Recording`] writer.
    fn recorded(gate: Option<Arc<Gate>>, timeout: Duration) -> Recorded {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        drop(AuditLog::open(&path, timeout).unwrap());
        let head = verify(File::open(&path).unwrap()).unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let writer = Recording {
            file: OpenOptions::new().append(true).open(&path).unwrap(),
            seen: Arc::clone(&seen),
            gate,
        };
        let log = AuditLog::with_writer(Box::new(writer), head.last_hash, head.last_seq, timeout)
            .unwrap();
        Recorded {
            _dir: dir,
            path,
            log: Arc::new(log),
            seen,
        }
    }

    fn line_of(n: u64) -> String {
        format!("\"request_id\":\"r{n}\"")
    }

    /// Lets spawned tasks (current-thread runtime) run until `done`; a
    /// liveness bound (not a timing assertion) turns a hang into a failure.
    async fn until(done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "condition not reached"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// As many clients as the backlog admits, each appending again as soon
    /// as it is answered (as a keep-alive HTTP client does): every append
    /// succeeds (no `Backlog`: a permit is free again before its answer
    /// arrives) and is durable when it returns.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn append_returns_only_after_its_line_is_durable() {
        let rec = recorded(None, Duration::from_secs(10));
        let mut tasks = Vec::new();
        for t in 0..u64::try_from(MAX_PENDING_WRITES).unwrap() {
            let log = Arc::clone(&rec.log);
            let seen = Arc::clone(&rec.seen);
            tasks.push(tokio::spawn(async move {
                for i in 0..10u64 {
                    let n = t * 100 + i;
                    log.append(entry(n)).await.unwrap();
                    let seen = lock(&seen);
                    let durable = String::from_utf8_lossy(&seen.durable);
                    assert!(
                        durable.contains(&line_of(n)),
                        "r{n} acknowledged, not durable"
                    );
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let seen = lock(&rec.seen);
        assert_eq!(seen.appends, seen.syncs);
        assert!(seen.syncs <= 640);
        let head = verify(File::open(&rec.path).unwrap()).unwrap();
        assert_eq!((head.lines, head.last_seq), (641, 640));
    }

    #[tokio::test]
    async fn concurrent_appends_share_one_fsync_and_the_backlog_is_bounded() {
        let gate = Gate::closed();
        let rec = recorded(Some(Arc::clone(&gate)), Duration::from_secs(30));
        let mut tasks = Vec::new();
        for n in 0..u64::try_from(MAX_PENDING_WRITES).unwrap() {
            let log = Arc::clone(&rec.log);
            tasks.push(tokio::spawn(async move { log.append(entry(n)).await }));
        }
        // The writer holds the first batch at the gate while the rest
        // queue behind it.
        until(|| gate.arrived.load(Ordering::SeqCst) == 1).await;
        until(|| rec.log.pending_writes() == MAX_PENDING_WRITES).await;
        // One more is refused at once, not queued.
        assert!(matches!(
            rec.log.append(entry(999)).await,
            Err(AuditError::Backlog)
        ));
        gate.open();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        // Every permit was released before its waiter was answered.
        assert_eq!(rec.log.pending_writes(), 0);
        let seen = lock(&rec.seen);
        // The batch at the gate, then everything queued behind it.
        assert!(seen.syncs <= 2, "{} syncs for 64 records", seen.syncs);
        assert_eq!(seen.appends, seen.syncs);
        let head = verify(File::open(&rec.path).unwrap()).unwrap();
        assert_eq!(head.last_seq, u64::try_from(MAX_PENDING_WRITES).unwrap());
        let text = std::fs::read_to_string(&rec.path).unwrap();
        assert!(!text.contains(&line_of(999)));
    }

    #[tokio::test]
    async fn a_failed_sync_fails_its_whole_batch_and_poisons() {
        let gate = Gate::closed();
        let rec = recorded(Some(Arc::clone(&gate)), Duration::from_secs(30));
        lock(&rec.seen).fail_syncs_from = Some(2);
        let first = {
            let log = Arc::clone(&rec.log);
            tokio::spawn(async move { log.append(entry(0)).await })
        };
        until(|| gate.arrived.load(Ordering::SeqCst) == 1).await;
        let mut batch = Vec::new();
        for n in 1..=10u64 {
            let log = Arc::clone(&rec.log);
            batch.push(tokio::spawn(async move { log.append(entry(n)).await }));
        }
        until(|| rec.log.pending_writes() == 11).await;
        gate.open();
        first.await.unwrap().unwrap();
        for task in batch {
            match task.await.unwrap() {
                Err(AuditError::Write(e)) => assert_eq!(e.raw_os_error(), Some(5)),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            rec.log.append(entry(11)).await,
            Err(AuditError::Poisoned)
        ));
        let seen = lock(&rec.seen);
        // Record 0 alone, then 1..=10 in one write whose sync failed;
        // nothing written after.
        assert_eq!((seen.appends, seen.syncs), (2, 2));
        let durable = String::from_utf8_lossy(&seen.durable);
        assert!(durable.contains(&line_of(0)));
        assert!(!durable.contains(&line_of(1)));
        assert!(!String::from_utf8_lossy(&seen.written).contains(&line_of(11)));
    }

    #[tokio::test]
    async fn a_record_whose_waiter_gave_up_is_not_written() {
        let gate = Gate::closed();
        let rec = recorded(Some(Arc::clone(&gate)), Duration::from_millis(300));
        // Record 0 reaches the writer and is held at the gate; its waiter
        // times out while it is being written.
        let first = {
            let log = Arc::clone(&rec.log);
            tokio::spawn(async move { log.append(entry(0)).await })
        };
        until(|| gate.arrived.load(Ordering::SeqCst) == 1).await;
        // Record 1 is queued behind it and its waiter times out too.
        assert!(matches!(
            rec.log.append(entry(1)).await,
            Err(AuditError::Timeout { .. })
        ));
        assert!(matches!(
            first.await.unwrap(),
            Err(AuditError::Timeout { .. })
        ));
        gate.open();
        // The writer finishes record 0's batch, then drops record 1.
        until(|| rec.log.pending_writes() == 0).await;
        rec.log.append(entry(2)).await.unwrap();
        let text = std::fs::read_to_string(&rec.path).unwrap();
        // The documented race: a write in progress is not stopped.
        assert!(text.contains(&line_of(0)));
        assert!(!text.contains(&line_of(1)));
        assert!(text.contains(&line_of(2)));
        let head = verify(File::open(&rec.path).unwrap()).unwrap();
        assert_eq!((head.lines, head.last_seq), (3, 2));
        assert_eq!(rec.log.failures(), 2);
    }
}

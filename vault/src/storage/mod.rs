//! The vault's key-value storage, behind the [`Storage`] trait.
//!
//! # What it does
//! - names every kind of record by a [`Keyspace`] (an enum, never a string),
//!   so a handler cannot write a lease into the token space by a typo;
//! - applies a [`WriteBatch`] — puts, deletes and single-use conditions
//!   ([`WriteBatch::insert_new`], [`WriteBatch::take`],
//!   [`WriteBatch::compare_and_swap`]) across keyspaces — atomically: all of
//!   it or none of it, also across a crash, and with the conditions checked
//!   in the same atomic step (consume a nonce + create a lease + write an
//!   audit pointer is one batch);
//! - or applies one in order, each operation atomic alone and a crash
//!   keeping a prefix ([`Storage::commit_in_order`]), for writes ordered so
//!   that any prefix is safe; on sled that avoids the two forced log writes
//!   of every multi-key atomic batch;
//! - acknowledges a commit only once it is durable ([`Storage::commit`]
//!   returns after the fsync that covers it), with concurrent commits sharing
//!   one fsync (group commit, see [`SledStorage`]);
//! - bounds every key, value and batch ([`MAX_KEY_LEN`], [`MAX_VALUE_LEN`],
//!   [`MAX_BATCH_OPS`], [`MAX_BATCH_BYTES`]) and every scan ([`MAX_SCAN`]);
//! - keeps the lease and session expiry indexes ordered by time
//!   ([`lease_expiry_key`], [`session_expiry_key`]), so a range scan from
//!   the start yields what expires first and a restart never loads every
//!   lease or session.
//!
//! # What it does not do
//! It does not encrypt: values that hold secrets are sealed by
//! [`crate::barrier`] before they are put here. It does not interpret
//! values, and it has no notion of time (expiry times are the caller's).
//! Writes become visible to readers when applied, a moment before the fsync
//! that makes them durable; only the committer's acknowledgement waits for
//! the fsync.
//!
//! # Why a trait with boxed futures
//! Handlers hold an `Arc<dyn Storage>`; a later etcd backend implements the
//! same five methods. The futures are boxed so the trait stays object safe.

mod batch;
mod sled_store;

use std::future::Future;
use std::pin::Pin;

pub use batch::{Committed, Condition, WriteBatch};
pub use sled_store::{SledConfig, SledStorage};

/// Longest key accepted, in bytes (without the keyspace prefix).
pub const MAX_KEY_LEN: usize = 512;
/// Largest value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 1 << 20;
/// Most operations in one [`WriteBatch`].
pub const MAX_BATCH_OPS: usize = 1024;
/// Most key and value bytes in one [`WriteBatch`].
pub const MAX_BATCH_BYTES: usize = 8 << 20;
/// Most entries one [`Storage::scan`] returns.
pub const MAX_SCAN: usize = 10_000;

/// A boxed, sendable future returning a storage result.
pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send + 'a>>;

/// A family of records. Each is a separate key range; keys never collide
/// across keyspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Keyspace {
    /// Enrolled hosts, by host id.
    Hosts,
    /// Pending enrollments (activation challenges), by enrollment id.
    Enrollments,
    /// Registered artifacts (images, model versions), by digest.
    Artifacts,
    /// Signing policies, by artifact kind.
    SigningPolicies,
    /// Boot policies, by name.
    BootPolicies,
    /// Secrets (kv engine and engine configuration), by path.
    Secrets,
    /// Leases, by lease id.
    Leases,
    /// Lease expiry index: [`lease_expiry_key`] → empty; time-ordered.
    LeaseExpiry,
    /// Single-use attestation nonces, by nonce.
    Nonces,
    /// Admin tokens, by token hash.
    Tokens,
    /// Pointers into the audit log (sequence numbers, chain heads).
    AuditPointers,
    /// The vault's own records: keyring, seal configuration.
    System,
    /// Attestation sessions, by SHA-256 of the session token.
    Sessions,
    /// Leases by what they were issued on (`h/<host>/<lease>`,
    /// `a/<digest>/<lease>`, `s/<session>/<lease>`) → empty: revoking a
    /// host, an artifact or a session finds its leases by a prefix scan.
    LeaseBasis,
    /// Session expiry index: [`session_expiry_key`] → empty; time-ordered.
    SessionExpiry,
}

impl Keyspace {
    /// Every keyspace, in prefix order.
    pub const ALL: [Keyspace; 15] = [
        Keyspace::Hosts,
        Keyspace::Enrollments,
        Keyspace::Artifacts,
        Keyspace::SigningPolicies,
        Keyspace::BootPolicies,
        Keyspace::Secrets,
        Keyspace::Leases,
        Keyspace::LeaseExpiry,
        Keyspace::Nonces,
        Keyspace::Tokens,
        Keyspace::AuditPointers,
        Keyspace::System,
        Keyspace::Sessions,
        Keyspace::LeaseBasis,
        Keyspace::SessionExpiry,
    ];

    /// The one-byte prefix that keeps this keyspace's keys apart from the
    /// others' in a single ordered key space. Stable: part of the on-disk
    /// format and of the barrier's associated data.
    pub fn prefix(self) -> u8 {
        match self {
            Self::Hosts => 0x01,
            Self::Enrollments => 0x02,
            Self::Artifacts => 0x03,
            Self::SigningPolicies => 0x04,
            Self::BootPolicies => 0x05,
            Self::Secrets => 0x06,
            Self::Leases => 0x07,
            Self::LeaseExpiry => 0x08,
            Self::Nonces => 0x09,
            Self::Tokens => 0x0a,
            Self::AuditPointers => 0x0b,
            Self::System => 0x0c,
            Self::Sessions => 0x0d,
            Self::LeaseBasis => 0x0e,
            Self::SessionExpiry => 0x0f,
        }
    }

    /// A short stable name, for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hosts => "hosts",
            Self::Enrollments => "enrollments",
            Self::Artifacts => "artifacts",
            Self::SigningPolicies => "signing-policies",
            Self::BootPolicies => "boot-policies",
            Self::Secrets => "secrets",
            Self::Leases => "leases",
            Self::LeaseExpiry => "lease-expiry",
            Self::Nonces => "nonces",
            Self::Tokens => "tokens",
            Self::AuditPointers => "audit-pointers",
            Self::System => "system",
            Self::Sessions => "sessions",
            Self::LeaseBasis => "lease-basis",
            Self::SessionExpiry => "session-expiry",
        }
    }
}

/// The kind of single-use condition a batch carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConditionKind {
    /// [`WriteBatch::insert_new`]: the key already existed.
    InsertNew,
    /// [`WriteBatch::take`]: the key did not exist.
    Take,
    /// [`WriteBatch::compare_and_swap`]: the current value differed.
    CompareAndSwap,
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An empty key.
    #[error("empty key in keyspace {keyspace:?}")]
    EmptyKey {
        /// The keyspace.
        keyspace: Keyspace,
    },
    /// A key longer than [`MAX_KEY_LEN`].
    #[error("key of {len} bytes in keyspace {keyspace:?}; at most {max}")]
    KeyTooLong {
        /// The keyspace.
        keyspace: Keyspace,
        /// The key's length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A value larger than [`MAX_VALUE_LEN`].
    #[error("value of {len} bytes in keyspace {keyspace:?}; at most {max}")]
    ValueTooLarge {
        /// The keyspace.
        keyspace: Keyspace,
        /// The value's length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A batch with more than [`MAX_BATCH_OPS`] operations or
    /// [`MAX_BATCH_BYTES`] bytes.
    #[error("batch too large: {ops} operations, {bytes} bytes")]
    BatchTooLarge {
        /// Operations, including the one refused.
        ops: usize,
        /// Bytes, including the operation refused.
        bytes: usize,
    },
    /// A batch with no operation.
    #[error("empty batch")]
    EmptyBatch,
    /// A scan limit of zero or above [`MAX_SCAN`].
    #[error("scan limit {limit}; between 1 and {max}")]
    ScanLimit {
        /// The limit asked for.
        limit: usize,
        /// The cap.
        max: usize,
    },
    /// A condition of the batch did not hold; nothing was written.
    #[error("condition {kind:?} failed on keyspace {keyspace:?} (operation {index})")]
    ConditionFailed {
        /// The keyspace of the key.
        keyspace: Keyspace,
        /// Position of the operation in the batch.
        index: usize,
        /// Which condition.
        kind: ConditionKind,
    },
    /// An fsync failed earlier: what was applied since may not be durable,
    /// so the store refuses writes until it is reopened.
    #[error("storage is poisoned by an earlier failed flush; restart the vault")]
    Poisoned,
    /// The store was closed.
    #[error("storage is closed")]
    Closed,
    /// The backend failed (I/O, corruption).
    #[error("storage backend failed during {operation}: {source}")]
    Backend {
        /// What was being done.
        operation: &'static str,
        /// The backend's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The keys of one keyspace that a [`Storage::scan`] visits.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum KeyRange<'a> {
    /// Every key.
    All,
    /// Keys starting with the given bytes.
    Prefix(&'a [u8]),
    /// Keys `k` with `start <= k`, and `k < end` when `end` is given.
    Between {
        /// Inclusive lower bound (empty: the keyspace's first key).
        start: &'a [u8],
        /// Exclusive upper bound; `None`: to the keyspace's end.
        end: Option<&'a [u8]>,
    },
}

/// A key-value store the vault can run on.
///
/// Implementations must apply each [`WriteBatch`] atomically (also across a
/// crash) and resolve [`Storage::commit`] only once the batch is durable.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// The value at `key`, if any.
    fn get<'a>(&'a self, keyspace: Keyspace, key: &'a [u8]) -> StorageFuture<'a, Option<Vec<u8>>>;

    /// Up to `limit` (1 to [`MAX_SCAN`]) entries of `keyspace` in `range`,
    /// in ascending key order; keys are returned without the keyspace.
    fn scan<'a>(
        &'a self,
        keyspace: Keyspace,
        range: KeyRange<'a>,
        limit: usize,
    ) -> StorageFuture<'a, Vec<(Vec<u8>, Vec<u8>)>>;

    /// Applies `batch` atomically and returns once it is durable. When a
    /// condition fails, nothing is written and the error names it.
    fn commit(&self, batch: WriteBatch) -> StorageFuture<'_, Committed>;

    /// Applies `batch`'s operations one at a time, in order, and returns
    /// once they are durable. Each operation is atomic on its own and
    /// conditions are still checked atomically with their write, but the
    /// batch as a whole is not: when a condition fails, the operations
    /// before it stay applied (with no promise that they are durable yet)
    /// and the error names the failed one. After a crash, what survives of
    /// an unacknowledged batch is a prefix of it, in order.
    ///
    /// For callers whose records are ordered so that any prefix is safe
    /// (an index entry before the record it points to, a single-use
    /// condition first): on sled a multi-key atomic batch costs two forced
    /// log-buffer writes, single-key operations none (see
    /// [`SledStorage`]'s module docs). A backend may simply apply the
    /// batch atomically, which is the default.
    fn commit_in_order(&self, batch: WriteBatch) -> StorageFuture<'_, Committed> {
        self.commit(batch)
    }

    /// Inserts `value` at `key` unless the key exists; durable on return.
    fn insert_if_absent<'a>(
        &'a self,
        keyspace: Keyspace,
        key: &'a [u8],
        value: &'a [u8],
    ) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let mut batch = WriteBatch::new();
            batch.insert_new(keyspace, key, value)?;
            self.commit(batch).await.map(|_| ())
        })
    }

    /// Deletes `key` if it exists and returns its value; durable on return.
    /// Exactly one of concurrent callers gets the value (single use).
    fn take<'a>(&'a self, keyspace: Keyspace, key: &'a [u8]) -> StorageFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let mut batch = WriteBatch::new();
            batch.take(keyspace, key)?;
            let committed = self.commit(batch).await?;
            // A committed batch yields one value per take; `Closed` only if
            // a backend broke that contract.
            committed
                .into_taken()
                .into_iter()
                .next()
                .ok_or(StorageError::Closed)
        })
    }

    /// Replaces the value at `key` with `new` (`None` deletes) if it is
    /// `expected` (`None`: absent); durable on return.
    fn compare_and_swap<'a>(
        &'a self,
        keyspace: Keyspace,
        key: &'a [u8],
        expected: Option<&'a [u8]>,
        new: Option<&'a [u8]>,
    ) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            let mut batch = WriteBatch::new();
            batch.compare_and_swap(keyspace, key, expected, new)?;
            self.commit(batch).await.map(|_| ())
        })
    }
}

/// Length of a lease expiry key's time part.
const EXPIRY_TIME_LEN: usize = 8;

/// The [`Keyspace::LeaseExpiry`] key of a lease: big-endian expiry time
/// (milliseconds since the Unix epoch) ‖ lease id. Big-endian makes byte
/// order time order, so a scan from the start of the keyspace meets the
/// earliest expiries first.
pub fn lease_expiry_key(expires_at_ms: u64, lease_id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(EXPIRY_TIME_LEN + lease_id.len());
    key.extend_from_slice(&expires_at_ms.to_be_bytes());
    key.extend_from_slice(lease_id);
    key
}

/// The [`Keyspace::SessionExpiry`] key of a session: big-endian expiry time
/// (milliseconds since the Unix epoch) ‖ the session's store key, the
/// encoding of [`lease_expiry_key`] ([`parse_lease_expiry_key`] and
/// [`lease_expiry_bound`] apply).
pub fn session_expiry_key(expires_at_ms: u64, session_key: &[u8]) -> Vec<u8> {
    lease_expiry_key(expires_at_ms, session_key)
}

/// Splits a [`lease_expiry_key`] into expiry time and lease id.
pub fn parse_lease_expiry_key(key: &[u8]) -> Option<(u64, &[u8])> {
    let (time, id) = key.split_first_chunk::<EXPIRY_TIME_LEN>()?;
    if id.is_empty() {
        return None;
    }
    Some((u64::from_be_bytes(*time), id))
}

/// The exclusive upper bound that selects expiry keys with a time at or
/// before `now_ms` (the `end` of a [`KeyRange::Between`]).
pub fn lease_expiry_bound(now_ms: u64) -> Vec<u8> {
    now_ms.saturating_add(1).to_be_bytes().to_vec()
}

pub(crate) fn check_key(keyspace: Keyspace, key: &[u8]) -> Result<(), StorageError> {
    if key.is_empty() {
        return Err(StorageError::EmptyKey { keyspace });
    }
    if key.len() > MAX_KEY_LEN {
        return Err(StorageError::KeyTooLong {
            keyspace,
            len: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

pub(crate) fn check_value(keyspace: Keyspace, value: &[u8]) -> Result<(), StorageError> {
    if value.len() > MAX_VALUE_LEN {
        return Err(StorageError::ValueTooLarge {
            keyspace,
            len: value.len(),
            max: MAX_VALUE_LEN,
        });
    }
    Ok(())
}

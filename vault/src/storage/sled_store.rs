//! The embedded backend: sled 0.34, with group commit.
//!
//! # Layout: one tree, keyspace-prefixed keys
//! All keyspaces live in one sled tree, each key prefixed with its
//! [`Keyspace::prefix`] byte. A batch is then a transaction on a single
//! tree: sled applies it atomically and logs it as one unit, so a crash
//! leaves all of it or none of it. The alternative — one tree per keyspace
//! and sled's multi-tree transactions — buys nothing here (prefixes already
//! keep keyspaces apart, and per-keyspace scans are prefix range scans) and
//! costs a transaction across several trees for every batch. A transaction
//! (rather than `sled::Batch`) is used because conditions (insert-new,
//! take, compare-and-swap) must be checked in the same atomic step as the
//! writes; sled retries the closure on conflict, so concurrent takes of one
//! key serialise and exactly one succeeds.
//!
//! # Atomic batches and ordered batches
//! Every multi-key atomic write in sled 0.34 (a transaction or a
//! `sled::Batch`) pins the log: it seals and writes the current log buffer
//! before it starts and again after its batch manifest (`pin_log`, "HACK"
//! in sled's source), so each one costs two `pwrite` + `sync_file_range`
//! handed to sled's IO threads, whatever the flusher does. A single-key
//! operation (`insert`, `remove`, `compare_and_swap`) only reserves space
//! in the current buffer. So:
//! - a batch of one operation is applied as that single-key operation
//!   (atomic on its own, same conditions);
//! - [`Storage::commit_in_order`] applies a batch one operation at a time,
//!   in order, for callers that order their writes so that any prefix is
//!   safe. sled's log is written in reservation order and recovery stops at
//!   the first missing or torn message, so a crash keeps a prefix of such a
//!   batch.
//!
//! # Group commit
//! sled applies a transaction in memory; `Db::flush` makes everything
//! applied before it durable. A commit:
//! 1. applies its transaction;
//! 2. takes the next sequence number `n` (under the state lock, so every
//!    sequence number `<= n` belongs to an already-applied batch) and wakes
//!    the flusher;
//! 3. waits until the durable watermark reaches `n`.
//!
//! The flusher thread loops: read the highest sequence number applied so
//! far, `flush()`, publish that number as the durable watermark. Under load
//! (its previous flush covered more than one commit) it gathers for a
//! moment before reading that number ([`crate::group_commit`]). One fsync
//! acknowledges every commit applied before it started, however many; a
//! commit that arrives during a flush waits for the next one. sled's own
//! periodic flush is turned off so that durability comes only from here and
//! [`SledStorage::flush_count`] counts every fsync.
//!
//! A failed flush poisons the store: commits waiting on it and every later
//! commit fail with [`StorageError::Poisoned`] (their outcome is unknown,
//! never acknowledged), until the vault restarts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use tokio::sync::watch;

use super::batch::{Condition, Op};
use super::{
    Committed, ConditionKind, KeyRange, Keyspace, MAX_SCAN, Storage, StorageError, StorageFuture,
    WriteBatch, check_key,
};

/// The tree holding every keyspace (the name versions the layout).
const TREE: &[u8] = b"keyward.v1";
/// Default page cache: small, because the vault's working set is small and
/// the memory target for 1M leases is 256 MiB.
const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

/// Where and how to open a [`SledStorage`].
#[derive(Debug, Clone)]
pub struct SledConfig {
    path: Option<PathBuf>,
    cache_capacity_bytes: u64,
}

impl SledConfig {
    /// A store in the directory `path` (created if missing).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            cache_capacity_bytes: DEFAULT_CACHE_BYTES,
        }
    }

    /// A store in a temporary directory removed when the store is dropped
    /// (dev mode, tests).
    pub fn temporary() -> Self {
        Self {
            path: None,
            cache_capacity_bytes: DEFAULT_CACHE_BYTES,
        }
    }

    /// sled's page cache size in bytes (default 64 MiB).
    pub fn cache_capacity_bytes(mut self, bytes: u64) -> Self {
        self.cache_capacity_bytes = bytes;
        self
    }

    /// The data directory, when not temporary.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// [`Storage`] on sled with group commit.
pub struct SledStorage {
    inner: Arc<Inner>,
    flusher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SledStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStorage")
            .field("flushes", &self.flush_count())
            .finish_non_exhaustive()
    }
}

struct Inner {
    db: sled::Db,
    tree: sled::Tree,
    state: Mutex<FlushState>,
    wake: Condvar,
    durable: watch::Sender<Durable>,
    flushes: AtomicU64,
}

#[derive(Debug, Default)]
struct FlushState {
    /// Sequence number of the last applied batch.
    applied: u64,
    /// Sequence number the last successful flush covered.
    flushed: u64,
    poisoned: bool,
    shutdown: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Durable {
    upto: u64,
    poisoned: bool,
}

fn backend(operation: &'static str) -> impl FnOnce(sled::Error) -> StorageError {
    move |e| StorageError::Backend {
        operation,
        source: Box::new(e),
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, FlushState> {
        // The state is plain counters; a panic elsewhere cannot leave them
        // half-updated, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SledStorage {
    /// Opens (or creates) the store and starts its flusher thread.
    pub fn open(config: &SledConfig) -> Result<Self, StorageError> {
        let mut sled_config = sled::Config::new()
            .cache_capacity(config.cache_capacity_bytes)
            .flush_every_ms(None);
        sled_config = match &config.path {
            Some(path) => sled_config.path(path),
            None => sled_config.temporary(true),
        };
        let db = open_waiting_for_lock(&sled_config)?;
        let tree = db.open_tree(TREE).map_err(backend("open tree"))?;
        let (durable, _) = watch::channel(Durable::default());
        let inner = Arc::new(Inner {
            db,
            tree,
            state: Mutex::new(FlushState::default()),
            wake: Condvar::new(),
            durable,
            flushes: AtomicU64::new(0),
        });
        let for_thread = Arc::clone(&inner);
        let flusher = std::thread::Builder::new()
            .name("keyward-flusher".into())
            .spawn(move || run_flusher(&for_thread))
            .map_err(|e| StorageError::Backend {
                operation: "start flusher thread",
                source: Box::new(e),
            })?;
        Ok(Self {
            inner,
            flusher: Some(flusher),
        })
    }

    /// Number of fsyncs (`Db::flush`) done so far, for tests and metrics.
    pub fn flush_count(&self) -> u64 {
        self.inner.flushes.load(Ordering::Relaxed)
    }

    /// Applies one operation alone (the `index`th of its batch): a
    /// single-key sled operation, atomic with its condition. A value it
    /// takes is pushed to `taken`.
    fn apply_op(
        &self,
        index: usize,
        op: &Op,
        taken: &mut Vec<Vec<u8>>,
    ) -> Result<(), StorageError> {
        let tree = &self.inner.tree;
        match op {
            Op::Put {
                keyspace,
                key,
                value,
            } => {
                tree.insert(prefixed(*keyspace, key), value.as_slice())
                    .map_err(backend("put"))?;
            }
            Op::Delete { keyspace, key } => {
                tree.remove(prefixed(*keyspace, key))
                    .map_err(backend("delete"))?;
            }
            Op::Conditional {
                keyspace,
                key,
                condition,
            } => {
                let full = prefixed(*keyspace, key);
                let failed = |kind| StorageError::ConditionFailed {
                    keyspace: *keyspace,
                    index,
                    kind,
                };
                match condition {
                    Condition::InsertNew { value } => {
                        tree.compare_and_swap(&full, None::<&[u8]>, Some(value.as_slice()))
                            .map_err(backend("insert new"))?
                            .map_err(|_| failed(ConditionKind::InsertNew))?;
                    }
                    Condition::Take => loop {
                        let Some(current) = tree.get(&full).map_err(backend("take"))? else {
                            return Err(failed(ConditionKind::Take));
                        };
                        // Lost a race with another writer of the key: read
                        // again; exactly one concurrent take wins.
                        if tree
                            .compare_and_swap(&full, Some(&current), None::<&[u8]>)
                            .map_err(backend("take"))?
                            .is_ok()
                        {
                            taken.push(current.to_vec());
                            break;
                        }
                    },
                    Condition::CompareAndSwap { expected, new } => {
                        tree.compare_and_swap(&full, expected.as_deref(), new.as_deref())
                            .map_err(backend("compare and swap"))?
                            .map_err(|_| failed(ConditionKind::CompareAndSwap))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies the operations one at a time, in order, stopping at the
    /// first failure.
    fn apply_in_order(&self, batch: &WriteBatch) -> Result<Committed, StorageError> {
        let mut taken = Vec::new();
        for (index, op) in batch.ops.iter().enumerate() {
            self.apply_op(index, op, &mut taken)?;
        }
        Ok(Committed::new(taken))
    }

    fn apply(&self, batch: &WriteBatch) -> Result<Committed, StorageError> {
        // One operation is atomic alone: no transaction, no pinned log.
        if batch.ops.len() == 1 {
            return self.apply_in_order(batch);
        }
        let taken = self.inner.tree.transaction(|tx| {
            let mut taken = Vec::new();
            for (index, op) in batch.ops.iter().enumerate() {
                match op {
                    Op::Put {
                        keyspace,
                        key,
                        value,
                    } => {
                        tx.insert(prefixed(*keyspace, key), value.as_slice())?;
                    }
                    Op::Delete { keyspace, key } => {
                        tx.remove(prefixed(*keyspace, key))?;
                    }
                    Op::Conditional {
                        keyspace,
                        key,
                        condition,
                    } => {
                        let full = prefixed(*keyspace, key);
                        let failed = |kind| {
                            ConflictableTransactionError::Abort(StorageError::ConditionFailed {
                                keyspace: *keyspace,
                                index,
                                kind,
                            })
                        };
                        match condition {
                            Condition::InsertNew { value } => {
                                if tx.get(&full)?.is_some() {
                                    return Err(failed(ConditionKind::InsertNew));
                                }
                                tx.insert(full, value.as_slice())?;
                            }
                            Condition::Take => match tx.remove(full)? {
                                Some(value) => taken.push(value.to_vec()),
                                None => return Err(failed(ConditionKind::Take)),
                            },
                            Condition::CompareAndSwap { expected, new } => {
                                let current = tx.get(&full)?;
                                if current.as_deref() != expected.as_deref() {
                                    return Err(failed(ConditionKind::CompareAndSwap));
                                }
                                match new {
                                    Some(new) => {
                                        tx.insert(full, new.as_slice())?;
                                    }
                                    None => {
                                        tx.remove(full)?;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Ok(taken)
        });
        match taken {
            Ok(taken) => Ok(Committed::new(taken)),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(backend("apply batch")(e)),
        }
    }

    async fn commit_durably(
        &self,
        batch: WriteBatch,
        in_order: bool,
    ) -> Result<Committed, StorageError> {
        if batch.is_empty() {
            return Err(StorageError::EmptyBatch);
        }
        if self.inner.state().poisoned {
            return Err(StorageError::Poisoned);
        }
        let committed = if in_order {
            self.apply_in_order(&batch)?
        } else {
            self.apply(&batch)?
        };
        let sequence = {
            let mut state = self.inner.state();
            if state.poisoned {
                return Err(StorageError::Poisoned);
            }
            // Assigned after the apply, under the lock: every number up to
            // this one belongs to a batch already applied, so a flush that
            // starts after reading it covers them all.
            state.applied = state.applied.saturating_add(1);
            state.applied
        };
        self.inner.wake.notify_one();
        let mut durable = self.inner.durable.subscribe();
        let reached = durable
            .wait_for(|d| d.upto >= sequence || d.poisoned)
            .await
            .map_err(|_| StorageError::Closed)?;
        if reached.upto >= sequence {
            Ok(committed)
        } else {
            Err(StorageError::Poisoned)
        }
    }
}

fn run_flusher(inner: &Inner) {
    // Commits the previous flush covered.
    let mut previous: u64 = 0;
    loop {
        let (flushed, group, shutdown) = {
            let mut state = inner.state();
            while state.applied <= state.flushed && !state.shutdown {
                state = inner
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if state.applied <= state.flushed {
                return;
            }
            let group = state.applied.saturating_sub(state.flushed);
            (state.flushed, group, state.shutdown)
        };
        // Under load, gather a larger group for the one flush (not while
        // shutting down, when the last flush should not wait).
        if !shutdown {
            crate::group_commit::pause_to_gather(
                usize::try_from(previous).unwrap_or(usize::MAX),
                usize::try_from(group).unwrap_or(usize::MAX),
                std::time::Instant::now(),
            );
        }
        let target = inner.state().applied;
        previous = target.saturating_sub(flushed);
        let result = inner.db.flush();
        inner.flushes.fetch_add(1, Ordering::Relaxed);
        let mut state = inner.state();
        match result {
            Ok(_) => {
                state.flushed = target;
                inner.durable.send_modify(|d| d.upto = target);
            }
            Err(_) => {
                state.poisoned = true;
                inner.durable.send_modify(|d| d.poisoned = true);
                return;
            }
        }
    }
}

impl Drop for SledStorage {
    fn drop(&mut self) {
        // The flusher drains what is applied before it exits.
        self.inner.state().shutdown = true;
        self.inner.wake.notify_all();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// How long [`SledStorage::open`] waits for the data directory's lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// sled 0.34 releases its directory lock from a background thread after
/// the last handle drops (spacejam/sled#1289), so reopening right after a
/// close (a restart within one process) can briefly find it held. Waits a
/// bounded time for that; another live process holding the lock still
/// fails, after the wait.
fn open_waiting_for_lock(config: &sled::Config) -> Result<sled::Db, StorageError> {
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && started.elapsed() < LOCK_WAIT =>
            {
                std::thread::sleep(pause);
                pause = pause
                    .saturating_mul(2)
                    .min(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(backend("open")(e)),
        }
    }
}

fn prefixed(keyspace: Keyspace, key: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(key.len().saturating_add(1));
    full.push(keyspace.prefix());
    full.extend_from_slice(key);
    full
}

impl Storage for SledStorage {
    fn get<'a>(&'a self, keyspace: Keyspace, key: &'a [u8]) -> StorageFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            check_key(keyspace, key)?;
            let value = self
                .inner
                .tree
                .get(prefixed(keyspace, key))
                .map_err(backend("get"))?;
            Ok(value.map(|v| v.to_vec()))
        })
    }

    fn scan<'a>(
        &'a self,
        keyspace: Keyspace,
        range: KeyRange<'a>,
        limit: usize,
    ) -> StorageFuture<'a, Vec<(Vec<u8>, Vec<u8>)>> {
        Box::pin(async move {
            if limit == 0 || limit > MAX_SCAN {
                return Err(StorageError::ScanLimit {
                    limit,
                    max: MAX_SCAN,
                });
            }
            let prefix = keyspace.prefix();
            // Prefixes are at most 0x0f, so the next one exists.
            let next = [prefix.saturating_add(1)];
            let iter = match range {
                KeyRange::All => self.inner.tree.range(vec![prefix]..next.to_vec()),
                KeyRange::Prefix(start) => self.inner.tree.scan_prefix(prefixed(keyspace, start)),
                KeyRange::Between { start, end } => {
                    if end.is_some_and(|end| end <= start) {
                        return Ok(Vec::new());
                    }
                    let upper = end.map_or_else(|| next.to_vec(), |end| prefixed(keyspace, end));
                    self.inner.tree.range(prefixed(keyspace, start)..upper)
                }
            };
            let mut out = Vec::new();
            for entry in iter.take(limit) {
                let (key, value) = entry.map_err(backend("scan"))?;
                let key = key.get(1..).unwrap_or_default().to_vec();
                out.push((key, value.to_vec()));
            }
            Ok(out)
        })
    }

    fn commit(&self, batch: WriteBatch) -> StorageFuture<'_, Committed> {
        Box::pin(self.commit_durably(batch, false))
    }

    fn commit_in_order(&self, batch: WriteBatch) -> StorageFuture<'_, Committed> {
        Box::pin(self.commit_durably(batch, true))
    }
}

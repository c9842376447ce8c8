//! [`WriteBatch`]: writes and single-use conditions applied all together.

use super::{Keyspace, MAX_BATCH_BYTES, MAX_BATCH_OPS, StorageError, check_key, check_value};

/// One operation of a batch.
#[derive(Debug)]
pub(crate) enum Op {
    Put {
        keyspace: Keyspace,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        keyspace: Keyspace,
        key: Vec<u8>,
    },
    Conditional {
        keyspace: Keyspace,
        key: Vec<u8>,
        condition: Condition,
    },
}

/// A single-use condition, checked in the same atomic step as the batch's
/// writes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Condition {
    /// Write the value only if the key is absent.
    InsertNew {
        /// The value to insert.
        value: Vec<u8>,
    },
    /// Delete the key, which must exist, and return its value.
    Take,
    /// Replace the current value (`None`: absent) with `new` (`None`: delete).
    CompareAndSwap {
        /// The value the key must hold.
        expected: Option<Vec<u8>>,
        /// The value to store.
        new: Option<Vec<u8>>,
    },
}

/// Puts, deletes and conditions across keyspaces, applied atomically by
/// [`super::Storage::commit`]. Sizes are checked as operations are added.
///
/// Operations apply in order: a later put to the same key wins.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub(crate) ops: Vec<Op>,
    bytes: usize,
}

/// What a committed batch returns: the values removed by its
/// [`WriteBatch::take`] operations, in the order they were added.
#[derive(Debug, Default)]
pub struct Committed {
    taken: Vec<Vec<u8>>,
}

impl Committed {
    pub(crate) fn new(taken: Vec<Vec<u8>>) -> Self {
        Self { taken }
    }

    /// The values removed by `take` operations, in order.
    pub fn into_taken(self) -> Vec<Vec<u8>> {
        self.taken
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when no operation was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn push(
        &mut self,
        op: Op,
        keyspace: Keyspace,
        key: &[u8],
        values: &[&[u8]],
    ) -> Result<&mut Self, StorageError> {
        check_key(keyspace, key)?;
        for value in values {
            check_value(keyspace, value)?;
        }
        let added = values
            .iter()
            .map(|v| v.len())
            .try_fold(key.len(), usize::checked_add);
        let bytes = added.and_then(|a| self.bytes.checked_add(a));
        let ops = self.ops.len().saturating_add(1);
        match bytes {
            Some(bytes) if bytes <= MAX_BATCH_BYTES && ops <= MAX_BATCH_OPS => {
                self.bytes = bytes;
                self.ops.push(op);
                Ok(self)
            }
            _ => Err(StorageError::BatchTooLarge {
                ops,
                bytes: bytes.unwrap_or(usize::MAX),
            }),
        }
    }

    /// Stores `value` at `key`, replacing any value.
    pub fn put(
        &mut self,
        keyspace: Keyspace,
        key: &[u8],
        value: &[u8],
    ) -> Result<&mut Self, StorageError> {
        let op = Op::Put {
            keyspace,
            key: key.to_vec(),
            value: value.to_vec(),
        };
        self.push(op, keyspace, key, &[value])
    }

    /// Deletes `key` if present.
    pub fn delete(&mut self, keyspace: Keyspace, key: &[u8]) -> Result<&mut Self, StorageError> {
        let op = Op::Delete {
            keyspace,
            key: key.to_vec(),
        };
        self.push(op, keyspace, key, &[])
    }

    /// Stores `value` at `key`; the whole batch fails with
    /// [`StorageError::ConditionFailed`] if the key exists.
    pub fn insert_new(
        &mut self,
        keyspace: Keyspace,
        key: &[u8],
        value: &[u8],
    ) -> Result<&mut Self, StorageError> {
        let op = Op::Conditional {
            keyspace,
            key: key.to_vec(),
            condition: Condition::InsertNew {
                value: value.to_vec(),
            },
        };
        self.push(op, keyspace, key, &[value])
    }

    /// Deletes `key` and returns its value in [`Committed`]; the whole batch
    /// fails with [`StorageError::ConditionFailed`] if the key is absent.
    /// Of concurrent batches taking the same key, exactly one succeeds.
    pub fn take(&mut self, keyspace: Keyspace, key: &[u8]) -> Result<&mut Self, StorageError> {
        let op = Op::Conditional {
            keyspace,
            key: key.to_vec(),
            condition: Condition::Take,
        };
        self.push(op, keyspace, key, &[])
    }

    /// Replaces the value at `key` with `new` (`None`: delete) if it
    /// currently is `expected` (`None`: absent); otherwise the whole batch
    /// fails with [`StorageError::ConditionFailed`].
    pub fn compare_and_swap(
        &mut self,
        keyspace: Keyspace,
        key: &[u8],
        expected: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<&mut Self, StorageError> {
        let op = Op::Conditional {
            keyspace,
            key: key.to_vec(),
            condition: Condition::CompareAndSwap {
                expected: expected.map(<[u8]>::to_vec),
                new: new.map(<[u8]>::to_vec),
            },
        };
        let values: Vec<&[u8]> = expected.into_iter().chain(new).collect();
        self.push(op, keyspace, key, &values)
    }
}

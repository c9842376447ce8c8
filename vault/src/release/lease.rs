//! Leases: every dynamic secret has one.
//!
//! # Records and indexes
//! - [`Keyspace::Leases`]: lease id → [`LeaseRecord`] (JSON; it holds no
//!   secret: the database role's name, a token's id). Lease ids are the
//!   secret path, `/`, and 128 random bits in hex, so `revoke-prefix` is a
//!   key-range scan.
//! - [`Keyspace::LeaseExpiry`]: [`lease_expiry_key`] (big-endian time ‖
//!   id) → empty. The expiry worker scans from the start up to now, so its
//!   work grows with what expires, and a restart loads nothing up front.
//! - [`Keyspace::LeaseBasis`]: `h/<host>/<id>`, `a/<digest>/<id>` (image
//!   and model), `s/<session>/<id>` → empty: revoking a host, an artifact
//!   or a session finds its leases by a prefix scan. `r/<id>` lists leases
//!   whose revocation failed and is being retried (the irrevocable list).
//!
//! A lease and its index entries are written in one atomic batch, and
//! removed in one, only after the engine destroyed the secret.
//!
//! # Failed revocations
//! A revocation the engine refuses (database unreachable, …) is never
//! dropped: the lease stays, marked `revoking` with the attempt count and
//! last error, listed under `r/`, and its expiry key moves to the next
//! attempt, with exponential backoff from 1 s to 5 min.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::storage::{
    KeyRange, Keyspace, MAX_SCAN, Storage, StorageError, WriteBatch, lease_expiry_bound,
    lease_expiry_key, parse_lease_expiry_key,
};

/// First retry delay of a failed revocation.
const BACKOFF_MIN_MS: u64 = 1_000;
/// Longest retry delay.
const BACKOFF_MAX_MS: u64 = 300_000;

/// How to destroy a lease's secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "engine", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Revocation {
    /// Drop a PostgreSQL role.
    Database {
        /// The engine role (configuration) that made it.
        role: String,
        /// The PostgreSQL role name.
        username: String,
    },
    /// List an identity token as revoked until it expires.
    Identity {
        /// The token id.
        jti: String,
        /// Its expiry, seconds since the Unix epoch.
        expires_at: u64,
    },
}

/// A lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaseRecord {
    /// `<path>/<random>`.
    pub id: String,
    /// The secret path it was released for.
    pub path: String,
    /// The attestation session it was issued or last renewed under.
    pub session_id: String,
    /// The host.
    pub host_id: String,
    /// The image digest.
    pub image_digest: String,
    /// The model version.
    pub model_digest: String,
    /// The workload instance.
    pub instance_id: String,
    /// The on-behalf-of user's subject, if any.
    pub on_behalf_of: Option<String>,
    /// The request that created it (its audit records carry the same id).
    #[serde(default)]
    pub request_id: String,
    /// Issue time, milliseconds since the Unix epoch.
    pub issued_at_ms: u64,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// No renewal goes past this.
    pub max_expires_at_ms: u64,
    /// Whether renewal is possible at all.
    pub renewable: bool,
    /// How to destroy the secret.
    pub revocation: Revocation,
    /// Revocation attempts that failed.
    pub revoke_attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// True once revocation started (by expiry or by a revoke call).
    pub revoking: bool,
}

/// What destroys secrets: the secrets engines, behind a seam so the lease
/// logic does not depend on them.
pub trait Revoker: Send + Sync {
    /// Destroys the secret; idempotent (an absent secret is success).
    fn revoke<'a>(
        &'a self,
        revocation: &'a Revocation,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

fn basis_keys(record: &LeaseRecord) -> Vec<Vec<u8>> {
    let mut keys = vec![
        format!("h/{}/{}", record.host_id, record.id).into_bytes(),
        format!("a/{}/{}", record.image_digest, record.id).into_bytes(),
        format!("s/{}/{}", record.session_id, record.id).into_bytes(),
    ];
    if record.model_digest != record.image_digest {
        keys.push(format!("a/{}/{}", record.model_digest, record.id).into_bytes());
    }
    keys
}

fn retry_key(id: &str) -> Vec<u8> {
    format!("r/{id}").into_bytes()
}

/// The basis prefix of a host's leases.
pub fn host_prefix(host_id: &str) -> Vec<u8> {
    format!("h/{host_id}/").into_bytes()
}

/// The basis prefix of an artifact's leases.
pub fn artifact_prefix(digest: &str) -> Vec<u8> {
    format!("a/{digest}/").into_bytes()
}

/// The basis prefix of a session's leases.
pub fn session_prefix(session_id: &str) -> Vec<u8> {
    format!("s/{session_id}/").into_bytes()
}

fn encode(record: &LeaseRecord) -> Result<Vec<u8>, StorageError> {
    serde_json::to_vec(record).map_err(|e| StorageError::Backend {
        operation: "encode lease",
        source: Box::new(e),
    })
}

/// Stores a new lease with its indexes, atomically and durably.
pub async fn insert(storage: &dyn Storage, record: &LeaseRecord) -> Result<(), StorageError> {
    let mut batch = WriteBatch::new();
    batch.insert_new(Keyspace::Leases, record.id.as_bytes(), &encode(record)?)?;
    batch.put(
        Keyspace::LeaseExpiry,
        &lease_expiry_key(record.expires_at_ms, record.id.as_bytes()),
        &[],
    )?;
    for key in basis_keys(record) {
        batch.put(Keyspace::LeaseBasis, &key, &[])?;
    }
    storage.commit(batch).await.map(|_| ())
}

/// The lease `id` and its stored bytes.
pub async fn load(
    storage: &dyn Storage,
    id: &str,
) -> Result<Option<(LeaseRecord, Vec<u8>)>, StorageError> {
    let Some(bytes) = storage.get(Keyspace::Leases, id.as_bytes()).await? else {
        return Ok(None);
    };
    let record = serde_json::from_slice(&bytes).map_err(|e| StorageError::Backend {
        operation: "decode lease",
        source: Box::new(e),
    })?;
    Ok(Some((record, bytes)))
}

/// Replaces a lease read as `old` with `new` (expiry index and basis moved
/// along); fails with `ConditionFailed` if it changed meanwhile.
pub async fn replace(
    storage: &dyn Storage,
    old_bytes: &[u8],
    old: &LeaseRecord,
    new: &LeaseRecord,
) -> Result<(), StorageError> {
    let mut batch = WriteBatch::new();
    batch.compare_and_swap(
        Keyspace::Leases,
        new.id.as_bytes(),
        Some(old_bytes),
        Some(&encode(new)?),
    )?;
    if old.expires_at_ms != new.expires_at_ms {
        batch.delete(
            Keyspace::LeaseExpiry,
            &lease_expiry_key(old.expires_at_ms, old.id.as_bytes()),
        )?;
        batch.put(
            Keyspace::LeaseExpiry,
            &lease_expiry_key(new.expires_at_ms, new.id.as_bytes()),
            &[],
        )?;
    }
    for key in basis_keys(old) {
        batch.delete(Keyspace::LeaseBasis, &key)?;
    }
    for key in basis_keys(new) {
        batch.put(Keyspace::LeaseBasis, &key, &[])?;
    }
    if new.revoke_attempts > 0 {
        batch.put(Keyspace::LeaseBasis, &retry_key(&new.id), &[])?;
    }
    storage.commit(batch).await.map(|_| ())
}

async fn remove(
    storage: &dyn Storage,
    bytes: &[u8],
    record: &LeaseRecord,
) -> Result<(), StorageError> {
    let mut batch = WriteBatch::new();
    batch.compare_and_swap(Keyspace::Leases, record.id.as_bytes(), Some(bytes), None)?;
    batch.delete(
        Keyspace::LeaseExpiry,
        &lease_expiry_key(record.expires_at_ms, record.id.as_bytes()),
    )?;
    for key in basis_keys(record) {
        batch.delete(Keyspace::LeaseBasis, &key)?;
    }
    batch.delete(Keyspace::LeaseBasis, &retry_key(&record.id))?;
    storage.commit(batch).await.map(|_| ())
}

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// The secret is destroyed and the lease removed.
    Done(LeaseRecord),
    /// The engine failed; the lease is kept and retried.
    Retrying(LeaseRecord),
    /// No such lease (already revoked or never existed).
    Absent,
}

fn backoff_ms(attempts: u32) -> u64 {
    let shift = attempts.saturating_sub(1).min(16);
    BACKOFF_MIN_MS
        .saturating_mul(1u64 << shift)
        .min(BACKOFF_MAX_MS)
}

/// Revokes lease `id` now: destroys the secret, then removes the lease; on
/// an engine failure, keeps it for retry with backoff.
pub async fn revoke(
    storage: &dyn Storage,
    revoker: &dyn Revoker,
    id: &str,
    now_ms: u64,
) -> Result<Revoked, StorageError> {
    let Some((record, bytes)) = load(storage, id).await? else {
        return Ok(Revoked::Absent);
    };
    match revoker.revoke(&record.revocation).await {
        Ok(()) => match remove(storage, &bytes, &record).await {
            Ok(()) => Ok(Revoked::Done(record)),
            // Renewed or retried concurrently: the secret is gone anyway;
            // the next pass removes the changed record.
            Err(StorageError::ConditionFailed { .. }) => Ok(Revoked::Done(record)),
            Err(e) => Err(e),
        },
        Err(error) => {
            let mut next = record.clone();
            next.revoking = true;
            next.revoke_attempts = next.revoke_attempts.saturating_add(1);
            next.last_error = Some(error);
            next.expires_at_ms = now_ms.saturating_add(backoff_ms(next.revoke_attempts));
            match replace(storage, &bytes, &record, &next).await {
                Ok(()) | Err(StorageError::ConditionFailed { .. }) => Ok(Revoked::Retrying(next)),
                Err(e) => Err(e),
            }
        }
    }
}

/// Lease ids under a basis prefix (at most [`MAX_SCAN`]).
pub async fn ids_with_basis(
    storage: &dyn Storage,
    prefix: &[u8],
) -> Result<Vec<String>, StorageError> {
    let entries = storage
        .scan(Keyspace::LeaseBasis, KeyRange::Prefix(prefix), MAX_SCAN)
        .await?;
    Ok(entries
        .into_iter()
        .filter_map(|(key, _)| {
            key.get(prefix.len()..)
                .and_then(|id| String::from_utf8(id.to_vec()).ok())
        })
        .collect())
}

/// Counts of a bulk revocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RevokeCounts {
    /// Secrets destroyed.
    pub revoked: usize,
    /// Kept for retry (listed as irrevocable until they succeed).
    pub retrying: usize,
}

/// Revokes every lease in `ids`.
pub async fn revoke_all(
    storage: &dyn Storage,
    revoker: &dyn Revoker,
    ids: &[String],
    now_ms: u64,
) -> Result<RevokeCounts, StorageError> {
    let mut counts = RevokeCounts::default();
    for id in ids {
        match revoke(storage, revoker, id, now_ms).await? {
            Revoked::Done(_) => counts.revoked = counts.revoked.saturating_add(1),
            Revoked::Retrying(_) => counts.retrying = counts.retrying.saturating_add(1),
            Revoked::Absent => {}
        }
    }
    Ok(counts)
}

/// Lease ids starting with `prefix` (at most [`MAX_SCAN`]).
pub async fn ids_with_prefix(
    storage: &dyn Storage,
    prefix: &str,
) -> Result<Vec<String>, StorageError> {
    let entries = storage
        .scan(
            Keyspace::Leases,
            KeyRange::Prefix(prefix.as_bytes()),
            MAX_SCAN,
        )
        .await?;
    Ok(entries
        .into_iter()
        .filter_map(|(key, _)| String::from_utf8(key).ok())
        .collect())
}

/// Revokes up to `limit` leases whose expiry (or retry time) has come.
/// Returns how many it handled.
pub async fn expire_due(
    storage: &dyn Storage,
    revoker: &dyn Revoker,
    now_ms: u64,
    limit: usize,
) -> Result<RevokeCounts, StorageError> {
    let bound = lease_expiry_bound(now_ms);
    let due = storage
        .scan(
            Keyspace::LeaseExpiry,
            KeyRange::Between {
                start: &[],
                end: Some(&bound),
            },
            limit.clamp(1, MAX_SCAN),
        )
        .await?;
    let mut counts = RevokeCounts::default();
    for (key, _) in due {
        let Some((_, id)) = parse_lease_expiry_key(&key) else {
            continue;
        };
        let Ok(id) = std::str::from_utf8(id) else {
            continue;
        };
        match revoke(storage, revoker, id, now_ms).await? {
            Revoked::Done(_) => counts.revoked = counts.revoked.saturating_add(1),
            Revoked::Retrying(_) => counts.retrying = counts.retrying.saturating_add(1),
            Revoked::Absent => {
                // A stale index entry (its lease was removed): drop it.
                let mut batch = WriteBatch::new();
                batch.delete(Keyspace::LeaseExpiry, &key)?;
                storage.commit(batch).await?;
            }
        }
    }
    Ok(counts)
}

/// Leases whose revocation failed and is being retried.
pub async fn irrevocable(storage: &dyn Storage) -> Result<Vec<LeaseRecord>, StorageError> {
    let mut out = Vec::new();
    for id in ids_with_basis(storage, b"r/").await? {
        if let Some((record, _)) = load(storage, &id).await? {
            out.push(record);
        }
    }
    Ok(out)
}

/// Removes used-nonce records that expired before `now_ms` (at most
/// `limit`): an expired nonce is refused by its authenticated expiry.
pub async fn prune_nonces(
    storage: &dyn Storage,
    now_ms: u64,
    limit: usize,
) -> Result<usize, StorageError> {
    let bound = now_ms.to_be_bytes();
    let old = storage
        .scan(
            super::nonce::USED,
            KeyRange::Between {
                start: &[],
                end: Some(&bound),
            },
            limit.clamp(1, MAX_SCAN),
        )
        .await?;
    if old.is_empty() {
        return Ok(0);
    }
    let mut batch = WriteBatch::new();
    for (key, _) in &old {
        batch.delete(super::nonce::USED, key)?;
    }
    storage.commit(batch).await?;
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(2), 2_000);
        assert_eq!(backoff_ms(5), 16_000);
        assert_eq!(backoff_ms(30), BACKOFF_MAX_MS);
    }
}

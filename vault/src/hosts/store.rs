//! [`HostStore`]: pending enrollments and host records in storage.
//!
//! Keys: `Enrollments` `p/<id>` → sealed [`PendingEnrollment`], `u/<id>` →
//! host id (marks a used enrollment, so a replay is named as one);
//! `Hosts` `h/<id>` → sealed [`HostRecord`], `ek/<hex hash>` → host id.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::{
    ActivationSecret, EkFacts, EnrollmentDenied, HostRecord, HostState, RandomError, SECRET_BYTES,
    new_id,
};
use crate::barrier::{Barrier, BarrierError};
use crate::storage::{
    ConditionKind, KeyRange, Keyspace, MAX_SCAN, Storage, StorageError, WriteBatch,
};

/// Why a host store operation failed (not a denial: an internal error, a
/// missing record or a refused transition).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostStoreError {
    /// No host with this id.
    #[error("no host {id}")]
    NotFound {
        /// The id.
        id: String,
    },
    /// The state change is not allowed (e.g. approving a revoked host).
    #[error("host {id} is {from}; cannot become {to}")]
    Transition {
        /// The host.
        id: String,
        /// Its state.
        from: &'static str,
        /// The state asked for.
        to: &'static str,
    },
    /// The record changed between read and write.
    #[error("host {id} changed concurrently")]
    Concurrent {
        /// The host.
        id: String,
    },
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// Sealing or opening a record failed.
    #[error("barrier: {0}")]
    Barrier(#[from] BarrierError),
    /// A stored record does not parse.
    #[error("corrupt {what} record")]
    Corrupt {
        /// Which kind.
        what: &'static str,
    },
    /// No randomness.
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A pending enrollment as stored (sealed by the barrier: it holds the
/// activation secret). Redacted `Debug`; the secret is wiped on drop.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingEnrollment {
    /// Enrollment id.
    pub id: String,
    /// Requested host name.
    pub name: Option<String>,
    /// Hex SHA-256 of the EK public key.
    pub ek_hash: String,
    /// EK certificate facts.
    pub ek_certificate: Option<EkFacts>,
    /// AK TPM2B_PUBLIC, base64.
    pub ak_public: String,
    /// AK name, hex.
    pub ak_name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The auto-approve rule that matched.
    pub auto_approve: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: u64,
    secret: String,
}

impl std::fmt::Debug for PendingEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingEnrollment")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Drop for PendingEnrollment {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl PendingEnrollment {
    /// A pending enrollment holding `secret`.
    #[expect(clippy::too_many_arguments, reason = "one field each")]
    pub fn new(
        id: String,
        name: Option<String>,
        ek_hash: String,
        ek_certificate: Option<EkFacts>,
        ak_public: String,
        ak_name: String,
        labels: BTreeMap<String, String>,
        auto_approve: Option<String>,
        expires_at: u64,
        secret: &ActivationSecret,
    ) -> Self {
        Self {
            id,
            name,
            ek_hash,
            ek_certificate,
            ak_public,
            ak_name,
            labels,
            auto_approve,
            expires_at,
            secret: hex::encode(secret.0.as_slice()),
        }
    }
}

fn pending_key(id: &str) -> Vec<u8> {
    format!("p/{id}").into_bytes()
}
fn used_key(id: &str) -> Vec<u8> {
    format!("u/{id}").into_bytes()
}
fn host_key(id: &str) -> Vec<u8> {
    format!("h/{id}").into_bytes()
}
fn ek_key(hash: &str) -> Vec<u8> {
    format!("ek/{hash}").into_bytes()
}

/// True for an id this module could have made: a hex string of the right
/// length (anything else cannot name a record, and never reaches a key).
pub fn valid_id(id: &str) -> bool {
    id.len() == 2 * super::ID_BYTES && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Host and enrollment records over the vault's storage and barrier.
#[derive(Debug, Clone)]
pub struct HostStore {
    storage: Arc<dyn Storage>,
    barrier: Arc<Barrier>,
}

impl HostStore {
    /// A store over `storage`, sealing with `barrier`.
    pub fn new(storage: Arc<dyn Storage>, barrier: Arc<Barrier>) -> Self {
        Self { storage, barrier }
    }

    /// Stores a new pending enrollment; durable on return.
    pub async fn put_pending(&self, pending: &PendingEnrollment) -> Result<(), HostStoreError> {
        let key = pending_key(&pending.id);
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(pending)
                .map_err(|_| HostStoreError::Corrupt { what: "enrollment" })?,
        );
        let sealed = self
            .barrier
            .encrypt(Keyspace::Enrollments, &key, &plain)
            .await?;
        self.storage
            .insert_if_absent(Keyspace::Enrollments, &key, &sealed)
            .await?;
        Ok(())
    }

    /// Consumes enrollment `id` with the secret `presented` at `now` and
    /// creates its host. The enrollment is removed on every outcome but
    /// "unknown", so each issued challenge gets one attempt.
    pub async fn activate(
        &self,
        id: &str,
        presented: &[u8],
        now: u64,
    ) -> Result<Result<HostRecord, EnrollmentDenied>, HostStoreError> {
        let unknown = || EnrollmentDenied::UnknownEnrollment { id: id.to_owned() };
        if !valid_id(id) {
            return Ok(Err(unknown()));
        }
        let key = pending_key(id);
        let Some(sealed) = self.storage.get(Keyspace::Enrollments, &key).await? else {
            return Ok(Err(self.missing(id).await?));
        };
        let plain = self.barrier.decrypt(Keyspace::Enrollments, &key, &sealed)?;
        let pending: PendingEnrollment = serde_json::from_slice(&plain)
            .map_err(|_| HostStoreError::Corrupt { what: "enrollment" })?;
        let mut secret = zeroize::Zeroizing::new([0u8; SECRET_BYTES]);
        hex::decode_to_slice(&pending.secret, secret.as_mut_slice())
            .map_err(|_| HostStoreError::Corrupt { what: "enrollment" })?;
        let secret = ActivationSecret(secret);

        let denial = if now >= pending.expires_at {
            Some(EnrollmentDenied::Expired {
                id: id.to_owned(),
                expired_at: pending.expires_at,
            })
        } else if !secret.matches(presented) {
            Some(EnrollmentDenied::WrongSecret { id: id.to_owned() })
        } else {
            self.storage
                .get(Keyspace::Hosts, &ek_key(&pending.ek_hash))
                .await?
                .map(|host| EnrollmentDenied::EkAlreadyEnrolled {
                    ek_hash: pending.ek_hash.clone(),
                    host_id: String::from_utf8_lossy(&host).into_owned(),
                })
        };
        if let Some(denial) = denial {
            self.burn(&key).await?;
            return Ok(Err(denial));
        }

        let host_id = new_id()?;
        let record = HostRecord {
            id: host_id.clone(),
            name: pending.name.clone().unwrap_or_else(|| host_id.clone()),
            ek_hash: pending.ek_hash.clone(),
            ek_certificate: pending.ek_certificate.clone(),
            ak_public: pending.ak_public.clone(),
            ak_name: pending.ak_name.clone(),
            labels: pending.labels.clone(),
            boot_policy: None,
            state: if pending.auto_approve.is_some() {
                HostState::Active
            } else {
                HostState::Pending
            },
            auto_approved_by: pending.auto_approve.clone(),
            enrolled_at: now,
            last_attested_at: None,
            revoked_at: None,
        };
        let hkey = host_key(&host_id);
        let sealed_host = self.seal_host(&hkey, &record).await?;
        let mut batch = WriteBatch::new();
        batch.take(Keyspace::Enrollments, &key)?;
        batch.insert_new(Keyspace::Enrollments, &used_key(id), host_id.as_bytes())?;
        batch.insert_new(Keyspace::Hosts, &hkey, &sealed_host)?;
        batch.insert_new(
            Keyspace::Hosts,
            &ek_key(&pending.ek_hash),
            host_id.as_bytes(),
        )?;
        match self.storage.commit(batch).await {
            Ok(_) => Ok(Ok(record)),
            // A concurrent activation consumed it first.
            Err(StorageError::ConditionFailed {
                index: 0 | 1,
                kind: ConditionKind::Take | ConditionKind::InsertNew,
                ..
            }) => Ok(Err(self.missing(id).await?)),
            Err(StorageError::ConditionFailed { index: 3, .. }) => {
                self.burn(&key).await?;
                Ok(Err(EnrollmentDenied::EkAlreadyEnrolled {
                    ek_hash: pending.ek_hash.clone(),
                    host_id: String::from_utf8_lossy(
                        &self
                            .storage
                            .get(Keyspace::Hosts, &ek_key(&pending.ek_hash))
                            .await?
                            .unwrap_or_default(),
                    )
                    .into_owned(),
                }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Why enrollment `id` is not pending: used before, or unknown.
    async fn missing(&self, id: &str) -> Result<EnrollmentDenied, HostStoreError> {
        Ok(
            match self
                .storage
                .get(Keyspace::Enrollments, &used_key(id))
                .await?
            {
                Some(host) => EnrollmentDenied::AlreadyActivated {
                    id: id.to_owned(),
                    host_id: String::from_utf8_lossy(&host).into_owned(),
                },
                None => EnrollmentDenied::UnknownEnrollment { id: id.to_owned() },
            },
        )
    }

    /// Removes a pending enrollment; already gone is fine.
    async fn burn(&self, key: &[u8]) -> Result<(), HostStoreError> {
        match self.storage.take(Keyspace::Enrollments, key).await {
            Ok(_) | Err(StorageError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn seal_host(&self, key: &[u8], record: &HostRecord) -> Result<Vec<u8>, HostStoreError> {
        let plain =
            serde_json::to_vec(record).map_err(|_| HostStoreError::Corrupt { what: "host" })?;
        Ok(self.barrier.encrypt(Keyspace::Hosts, key, &plain).await?)
    }

    fn open_host(&self, key: &[u8], sealed: &[u8]) -> Result<HostRecord, HostStoreError> {
        let plain = self.barrier.decrypt(Keyspace::Hosts, key, sealed)?;
        serde_json::from_slice(&plain).map_err(|_| HostStoreError::Corrupt { what: "host" })
    }

    /// The host `id`.
    pub async fn get(&self, id: &str) -> Result<HostRecord, HostStoreError> {
        Ok(self.get_sealed(id).await?.0)
    }

    async fn get_sealed(&self, id: &str) -> Result<(HostRecord, Vec<u8>), HostStoreError> {
        let not_found = || HostStoreError::NotFound { id: id.to_owned() };
        if !valid_id(id) {
            return Err(not_found());
        }
        let key = host_key(id);
        let sealed = self
            .storage
            .get(Keyspace::Hosts, &key)
            .await?
            .ok_or_else(not_found)?;
        Ok((self.open_host(&key, &sealed)?, sealed))
    }

    /// Every host (at most [`MAX_SCAN`]), by id.
    pub async fn list(&self) -> Result<Vec<HostRecord>, HostStoreError> {
        let entries = self
            .storage
            .scan(Keyspace::Hosts, KeyRange::Prefix(b"h/"), MAX_SCAN)
            .await?;
        entries
            .iter()
            .map(|(key, sealed)| self.open_host(key, sealed))
            .collect()
    }

    /// Applies `change` to host `id` if its current record is unchanged
    /// since read (compare-and-swap); durable on return.
    pub async fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut HostRecord) -> Result<(), HostStoreError>,
    ) -> Result<HostRecord, HostStoreError> {
        let (mut record, old) = self.get_sealed(id).await?;
        change(&mut record)?;
        let key = host_key(id);
        let new = self.seal_host(&key, &record).await?;
        match self
            .storage
            .compare_and_swap(Keyspace::Hosts, &key, Some(&old), Some(&new))
            .await
        {
            Ok(()) => Ok(record),
            Err(StorageError::ConditionFailed { .. }) => {
                Err(HostStoreError::Concurrent { id: id.to_owned() })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// `pending` → `active`; anything else is refused.
pub fn approve(record: &mut HostRecord) -> Result<(), HostStoreError> {
    if record.state != HostState::Pending {
        return Err(HostStoreError::Transition {
            id: record.id.clone(),
            from: record.state.as_str(),
            to: HostState::Active.as_str(),
        });
    }
    record.state = HostState::Active;
    Ok(())
}

/// Any state → `revoked` at `now`; a revoked host stays as it was.
pub fn revoke(record: &mut HostRecord, now: u64) -> Result<(), HostStoreError> {
    if record.state == HostState::Revoked {
        return Err(HostStoreError::Transition {
            id: record.id.clone(),
            from: record.state.as_str(),
            to: HostState::Revoked.as_str(),
        });
    }
    record.state = HostState::Revoked;
    record.revoked_at = Some(now);
    Ok(())
}

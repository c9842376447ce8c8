//! Admin identities: bearer tokens with roles.
//!
//! # What it does
//! - issues 256-bit random tokens (`kwt_` ‖ 64 hex digits) and stores only
//!   their SHA-256, as the key of the token record in [`Keyspace::Tokens`]
//!   (`h/<hash>`), so presenting a token is a keyed lookup and a stolen
//!   database yields no usable token; the record repeats the hash, which is
//!   compared in constant time after the lookup;
//! - gives each token a random, non-secret accessor (`a/<accessor>` →
//!   hash) so operators can look up and revoke tokens without holding them;
//! - records roles ([`Role`]), creation and expiry (seconds since the Unix
//!   epoch; `None`: never expires — only the root token from init);
//! - barrier-encrypts both records: the storage key is in the AEAD's
//!   associated data, so a record cannot be edited (say, roles widened) or
//!   moved to another token's hash without detection.
//!
//! # What it does not do
//! It reads no clock (times are arguments) and does not decide which role
//! an endpoint needs (the HTTP layer does). Expired records are refused but
//! not yet garbage-collected.

use std::sync::Arc;

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::barrier::{Barrier, BarrierError};
use crate::storage::{ConditionKind, Keyspace, Storage, StorageError, WriteBatch};

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;
/// Random bytes in an accessor.
pub const ACCESSOR_BYTES: usize = 16;
/// Prefix of every token (lets secret scanners find leaked tokens).
pub const TOKEN_PREFIX: &str = "kwt_";
/// Longest TTL a token may be given: one year.
pub const MAX_TTL_SECS: u64 = 365 * 24 * 3600;

/// What a token may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Everything.
    Admin,
    /// Hosts and boot policy.
    Platform,
    /// Artifacts and signing policy.
    Release,
    /// The audit log and read-only listings.
    Auditor,
}

impl Role {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Platform => "platform",
            Self::Release => "release",
            Self::Auditor => "auditor",
        }
    }
}

/// A token value. Zeroized on drop; `Debug` is redacted; not `Clone`.
pub struct TokenSecret(Zeroizing<String>);

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret([redacted])")
    }
}

impl TokenSecret {
    /// The value, to hand to its holder once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A stored token, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    /// The non-secret accessor.
    pub accessor: String,
    /// Its roles, sorted, without duplicates.
    pub roles: Vec<Role>,
    /// Creation, seconds since the Unix epoch.
    pub created_at: u64,
    /// Expiry, seconds since the Unix epoch; `None`: never.
    pub expires_at: Option<u64>,
    /// Hex SHA-256 of the token value.
    hash: String,
}

impl TokenRecord {
    /// True if the token holds `admin` or `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&Role::Admin) || self.roles.contains(&role)
    }

    /// True if the token may grant every role of `roles` to a new token:
    /// admin grants anything, others only roles they hold.
    pub fn may_grant(&self, roles: &[Role]) -> bool {
        roles.iter().all(|r| self.has_role(*r))
    }
}

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No token was presented.
    #[error("no token presented")]
    MissingToken,
    /// The value is not `kwt_` followed by 64 hex digits.
    #[error("malformed token")]
    MalformedToken,
    /// No token with this hash exists (never issued, or revoked).
    #[error("unknown or revoked token")]
    UnknownToken,
    /// The token expired.
    #[error("token {accessor} expired at {expired_at}")]
    Expired {
        /// Its accessor.
        accessor: String,
        /// When, seconds since the Unix epoch.
        expired_at: u64,
    },
    /// No accessor with this value exists.
    #[error("unknown accessor")]
    UnknownAccessor,
    /// A token must have at least one role.
    #[error("at least one role is required")]
    NoRoles,
    /// The TTL is zero or above [`MAX_TTL_SECS`].
    #[error("ttl of {ttl_secs}s; between 1 and {max}")]
    Ttl {
        /// What was asked.
        ttl_secs: u64,
        /// The cap.
        max: u64,
    },
    /// A stored record does not parse or does not match its key.
    #[error("stored token record is corrupt")]
    Corrupt,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// The barrier failed.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The token store.
#[derive(Debug, Clone)]
pub struct TokenStore {
    storage: Arc<dyn Storage>,
    barrier: Arc<Barrier>,
}

fn hash_key(hash: &[u8]) -> Vec<u8> {
    let mut key = b"h/".to_vec();
    key.extend_from_slice(hash);
    key
}

fn accessor_key(accessor: &str) -> Vec<u8> {
    let mut key = b"a/".to_vec();
    key.extend_from_slice(accessor.as_bytes());
    key
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, AuthError> {
    let mut bytes = Zeroizing::new([0u8; N]);
    SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| AuthError::Random)?;
    Ok(bytes)
}

/// Parses a presented value into its hash. Only the shape is checked here;
/// whether it exists is a storage lookup by hash.
fn token_hash(value: &str) -> Result<[u8; 32], AuthError> {
    let hex_part = value
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(AuthError::MalformedToken)?;
    if hex_part.len() != TOKEN_BYTES * 2 || !hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::MalformedToken);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, value.as_bytes()).as_ref());
    Ok(out)
}

/// Checks that `accessor` is the hex an accessor is made of, so it can be
/// used in a storage key.
fn check_accessor(accessor: &str) -> Result<(), AuthError> {
    if accessor.len() != ACCESSOR_BYTES * 2 || !accessor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AuthError::UnknownAccessor);
    }
    Ok(())
}

impl TokenStore {
    /// A store over `storage`, encrypting through `barrier`.
    pub fn new(storage: Arc<dyn Storage>, barrier: Arc<Barrier>) -> Self {
        Self { storage, barrier }
    }

    /// Creates a token with `roles` that expires `ttl_secs` after `now`
    /// (`None`: never; only for the root token). Durable on return.
    pub async fn create(
        &self,
        roles: &[Role],
        ttl_secs: Option<u64>,
        now: u64,
    ) -> Result<(TokenSecret, TokenRecord), AuthError> {
        if roles.is_empty() {
            return Err(AuthError::NoRoles);
        }
        if let Some(ttl) = ttl_secs
            && (ttl == 0 || ttl > MAX_TTL_SECS)
        {
            return Err(AuthError::Ttl {
                ttl_secs: ttl,
                max: MAX_TTL_SECS,
            });
        }
        let raw = random::<TOKEN_BYTES>()?;
        let secret = TokenSecret(Zeroizing::new(format!(
            "{TOKEN_PREFIX}{}",
            hex::encode(raw.as_ref())
        )));
        let hash = token_hash(secret.expose())?;
        let accessor = hex::encode(random::<ACCESSOR_BYTES>()?.as_ref());
        let mut sorted = roles.to_vec();
        sorted.sort();
        sorted.dedup();
        let record = TokenRecord {
            accessor: accessor.clone(),
            roles: sorted,
            created_at: now,
            expires_at: ttl_secs.map(|t| now.saturating_add(t)),
            hash: hex::encode(hash),
        };
        let record_json =
            Zeroizing::new(serde_json::to_vec(&record).map_err(|_| AuthError::Corrupt)?);
        let h_key = hash_key(&hash);
        let a_key = accessor_key(&accessor);
        let sealed_record = self
            .barrier
            .encrypt(Keyspace::Tokens, &h_key, &record_json)
            .await?;
        let sealed_hash = self
            .barrier
            .encrypt(Keyspace::Tokens, &a_key, &hash)
            .await?;
        let mut batch = WriteBatch::new();
        batch.insert_new(Keyspace::Tokens, &h_key, &sealed_record)?;
        batch.insert_new(Keyspace::Tokens, &a_key, &sealed_hash)?;
        self.storage.commit(batch).await?;
        Ok((secret, record))
    }

    async fn record_by_hash(&self, hash: &[u8; 32]) -> Result<TokenRecord, AuthError> {
        let key = hash_key(hash);
        let sealed = self
            .storage
            .get(Keyspace::Tokens, &key)
            .await?
            .ok_or(AuthError::UnknownToken)?;
        let plain = self.barrier.decrypt(Keyspace::Tokens, &key, &sealed)?;
        let record: TokenRecord = serde_json::from_slice(&plain).map_err(|_| AuthError::Corrupt)?;
        let stored = hex::decode(&record.hash).map_err(|_| AuthError::Corrupt)?;
        aws_lc_rs::constant_time::verify_slices_are_equal(&stored, hash)
            .map_err(|_| AuthError::Corrupt)?;
        Ok(record)
    }

    /// The record of the token `value`, if it exists and has not expired at
    /// `now`.
    pub async fn authenticate(&self, value: &str, now: u64) -> Result<TokenRecord, AuthError> {
        let hash = token_hash(value)?;
        let record = self.record_by_hash(&hash).await?;
        if let Some(expired_at) = record.expires_at
            && expired_at <= now
        {
            return Err(AuthError::Expired {
                accessor: record.accessor,
                expired_at,
            });
        }
        Ok(record)
    }

    async fn hash_by_accessor(&self, accessor: &str) -> Result<[u8; 32], AuthError> {
        check_accessor(accessor)?;
        let key = accessor_key(accessor);
        let sealed = self
            .storage
            .get(Keyspace::Tokens, &key)
            .await?
            .ok_or(AuthError::UnknownAccessor)?;
        let plain = self.barrier.decrypt(Keyspace::Tokens, &key, &sealed)?;
        <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| AuthError::Corrupt)
    }

    /// The record of the token with `accessor` (expired ones included).
    pub async fn lookup_accessor(&self, accessor: &str) -> Result<TokenRecord, AuthError> {
        let hash = self.hash_by_accessor(accessor).await?;
        match self.record_by_hash(&hash).await {
            Err(AuthError::UnknownToken) => Err(AuthError::UnknownAccessor),
            other => other,
        }
    }

    /// Revokes the token with `accessor`: both records go in one atomic
    /// batch, and the accessor record must still exist (so of two
    /// concurrent revocations, one reports [`AuthError::UnknownAccessor`]).
    pub async fn revoke_accessor(&self, accessor: &str) -> Result<(), AuthError> {
        let hash = self.hash_by_accessor(accessor).await?;
        let mut batch = WriteBatch::new();
        batch.take(Keyspace::Tokens, &accessor_key(accessor))?;
        batch.delete(Keyspace::Tokens, &hash_key(&hash))?;
        match self.storage.commit(batch).await {
            Ok(_) => Ok(()),
            Err(StorageError::ConditionFailed {
                kind: ConditionKind::Take,
                ..
            }) => Err(AuthError::UnknownAccessor),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::barrier::BarrierLimits;
    use crate::seal::Seal;
    use crate::storage::{SledConfig, SledStorage};

    async fn store() -> (TokenStore, Arc<Seal>) {
        let storage: Arc<dyn Storage> =
            Arc::new(SledStorage::open(&SledConfig::temporary()).unwrap());
        let seal = Arc::new(
            Seal::open(Arc::clone(&storage), BarrierLimits::default())
                .await
                .unwrap(),
        );
        seal.init_shamir(1, 1).await.unwrap();
        (TokenStore::new(storage, Arc::clone(seal.barrier())), seal)
    }

    #[tokio::test]
    async fn create_authenticate_revoke() {
        let (tokens, _seal) = store().await;
        let (secret, record) = tokens
            .create(&[Role::Release, Role::Release], Some(60), 100)
            .await
            .unwrap();
        assert!(secret.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(format!("{secret:?}"), "TokenSecret([redacted])");
        assert_eq!(record.roles, vec![Role::Release]);
        let got = tokens.authenticate(secret.expose(), 159).await.unwrap();
        assert_eq!(got, record);
        assert!(matches!(
            tokens.authenticate(secret.expose(), 160).await,
            Err(AuthError::Expired {
                expired_at: 160,
                ..
            })
        ));
        assert_eq!(
            tokens.lookup_accessor(&record.accessor).await.unwrap(),
            record
        );
        tokens.revoke_accessor(&record.accessor).await.unwrap();
        assert!(matches!(
            tokens.authenticate(secret.expose(), 100).await,
            Err(AuthError::UnknownToken)
        ));
        assert!(matches!(
            tokens.revoke_accessor(&record.accessor).await,
            Err(AuthError::UnknownAccessor)
        ));
    }

    #[tokio::test]
    async fn malformed_and_unknown_tokens() {
        let (tokens, _seal) = store().await;
        assert!(matches!(
            tokens.authenticate("nope", 0).await,
            Err(AuthError::MalformedToken)
        ));
        let fake = format!("{TOKEN_PREFIX}{}", "ab".repeat(32));
        assert!(matches!(
            tokens.authenticate(&fake, 0).await,
            Err(AuthError::UnknownToken)
        ));
        assert!(matches!(
            tokens.create(&[], None, 0).await,
            Err(AuthError::NoRoles)
        ));
        assert!(matches!(
            tokens.create(&[Role::Admin], Some(0), 0).await,
            Err(AuthError::Ttl { ttl_secs: 0, .. })
        ));
        assert!(matches!(
            tokens.lookup_accessor("../x").await,
            Err(AuthError::UnknownAccessor)
        ));
    }

    #[test]
    fn roles_grant_only_what_they_hold() {
        let r = TokenRecord {
            accessor: String::new(),
            roles: vec![Role::Platform],
            created_at: 0,
            expires_at: None,
            hash: String::new(),
        };
        assert!(r.may_grant(&[Role::Platform]));
        assert!(!r.may_grant(&[Role::Platform, Role::Release]));
        assert!(!r.has_role(Role::Auditor));
    }
}

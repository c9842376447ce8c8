//! Released secrets and their leases.
//!
//! Secret values live in [`Zeroizing`] buffers (wiped on drop), print as
//! `[redacted]` in `Debug`, implement neither `Serialize` nor `Clone`, and
//! come out only through `expose_…` calls, so that logging a lease or a
//! credential never leaks it. Copies made by the HTTP stack (reqwest and
//! hyper buffers) and by the JSON parser while reading the answer are out
//! of this crate's reach and are not wiped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use zeroize::Zeroizing;

/// A secret string: wiped on drop, redacted in `Debug`.
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps `value` (moved, not copied).
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A database credential (`database/postgres/<role>`): a fresh role that
/// the vault drops when the lease ends.
#[derive(Debug)]
pub struct Credential {
    pub(crate) username: String,
    pub(crate) password: SecretString,
}

impl Credential {
    /// The role name (not secret).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password.
    pub fn expose_password(&self) -> &str {
        self.password.expose_secret()
    }
}

/// A workload identity token (ES256 JWT) for one audience.
#[derive(Debug)]
pub struct IdentityToken {
    pub(crate) token: SecretString,
    pub(crate) expires_at: u64,
}

impl IdentityToken {
    /// The compact JWT.
    pub fn expose_secret(&self) -> &str {
        self.token.expose_secret()
    }

    /// Its `exp`, seconds since the Unix epoch.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }
}

/// A kv secret (no lease: kv values are static).
#[derive(Debug)]
pub struct KvSecret {
    pub(crate) path: String,
    pub(crate) version: u64,
    pub(crate) data: BTreeMap<String, SecretString>,
}

impl KvSecret {
    /// The path it was read from (`kv/…`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The names of its fields (not secret).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.keys().map(String::as_str)
    }

    /// A field's value: a JSON string as is, any other JSON value as its
    /// JSON text.
    pub fn expose_secret(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(SecretString::expose_secret)
    }
}

/// Where a lease stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseStatus {
    /// Valid until [`Lease::expires_at_ms`].
    Live,
    /// The vault refused a renewal: the lease was revoked.
    Revoked,
    /// It reached its expiry without being renewed.
    Expired,
}

const LIVE: u8 = 0;
const REVOKED: u8 = 1;
const EXPIRED: u8 = 2;

/// What the lease's renewal task and its owner share.
#[derive(Debug)]
pub(crate) struct LeaseShared {
    pub(crate) id: String,
    pub(crate) renewable: bool,
    expires_at_ms: AtomicU64,
    status: AtomicU8,
}

impl LeaseShared {
    pub(crate) fn new(id: String, renewable: bool, expires_at_ms: u64) -> Self {
        Self {
            id,
            renewable,
            expires_at_ms: AtomicU64::new(expires_at_ms),
            status: AtomicU8::new(LIVE),
        }
    }

    pub(crate) fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms.load(Ordering::Acquire)
    }

    pub(crate) fn set_expires_at_ms(&self, value: u64) {
        self.expires_at_ms.store(value, Ordering::Release);
    }

    pub(crate) fn mark_revoked(&self) {
        self.status.store(REVOKED, Ordering::Release);
    }

    pub(crate) fn mark_expired(&self) {
        self.status.store(EXPIRED, Ordering::Release);
    }

    fn status(&self) -> LeaseStatus {
        match self.status.load(Ordering::Acquire) {
            REVOKED => LeaseStatus::Revoked,
            EXPIRED => LeaseStatus::Expired,
            _ => LeaseStatus::Live,
        }
    }
}

/// A released secret and its lease. While the `Lease` is held, the client
/// renews it in the background (when the vault made it renewable); dropping
/// it stops renewal, and the vault revokes it at its expiry.
pub struct Lease<T> {
    pub(crate) shared: Arc<LeaseShared>,
    pub(crate) value: T,
}

impl<T> Lease<T> {
    /// The lease id (`<path>/<random>`).
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Its current expiry, milliseconds since the Unix epoch (moves forward
    /// as the background task renews it).
    pub fn expires_at_ms(&self) -> u64 {
        self.shared.expires_at_ms()
    }

    /// Whether the vault lets it be renewed.
    pub fn renewable(&self) -> bool {
        self.shared.renewable
    }

    /// Live, revoked, or expired, as far as the client has seen.
    pub fn status(&self) -> LeaseStatus {
        self.shared.status()
    }

    /// The secret.
    pub fn secret(&self) -> &T {
        &self.value
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Lease<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("id", &self.shared.id)
            .field("expires_at_ms", &self.expires_at_ms())
            .field("renewable", &self.shared.renewable)
            .field("status", &self.status())
            .field("secret", &self.value)
            .finish()
    }
}

/// What happened to a lease, as [`Client::watch`](crate::Client::watch)
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaseEvent {
    /// The lease was renewed.
    Renewed {
        /// The lease.
        lease_id: String,
        /// Its new expiry, milliseconds since the Unix epoch.
        expires_at_ms: u64,
    },
    /// The vault refused to renew it: it was revoked (a host or artifact
    /// revocation, or a failed re-attestation). It is no longer renewed.
    Revoked {
        /// The lease.
        lease_id: String,
        /// Why the client concluded so.
        reason: RevokedReason,
    },
    /// The lease reached its expiry (not renewable, its maximum TTL reached,
    /// or the vault unreachable until then).
    Expired {
        /// The lease.
        lease_id: String,
    },
    /// The client attested again and holds a new session.
    Reattested {
        /// The new session's expiry, milliseconds since the Unix epoch.
        session_expires_at_ms: u64,
    },
}

/// Why a lease is taken to be revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokedReason {
    /// The renewal request was denied (403).
    RenewalDenied {
        /// The vault's request id (its audit log has the reason).
        request_id: Option<String>,
    },
    /// Re-attestation, needed to renew past the session, was denied.
    AttestationDenied {
        /// The vault's request id.
        request_id: Option<String>,
    },
}

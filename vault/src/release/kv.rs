//! The `kv` engine: static secrets, versioned, barrier-encrypted.
//!
//! Written by an `admin` token (`PUT /v1/kv/{path}`); released only
//! through the release path (`POST /v1/secrets/kv/{path}`) to attested
//! workloads that Cedar allows. Admin reads return metadata only (versions,
//! times, writers), never values. The last [`MAX_VERSIONS`] versions are
//! kept. A secret's record is one value in [`Keyspace::Secrets`] at
//! `kv/<path>`, sealed by the barrier with that path as associated data.
//!
//! Values are kept as JSON text inside [`Zeroizing`] buffers from the
//! moment they are decrypted, so they are wiped when dropped; they are
//! never parsed into `serde_json::Value` trees (whose strings would not be).

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::barrier::{Barrier, BarrierError};
use crate::storage::{Keyspace, Storage, StorageError};

/// Versions kept per secret.
pub const MAX_VERSIONS: usize = 10;
/// Longest secret path.
pub const MAX_PATH_LEN: usize = 256;
/// Largest secret value (JSON text).
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Why a kv operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The path is not `segment/segment…` of `[A-Za-z0-9._-]`.
    #[error("invalid secret path")]
    InvalidPath,
    /// The value is not a JSON object or is too large.
    #[error("data must be a JSON object of at most {MAX_VALUE_LEN} bytes")]
    InvalidValue,
    /// A concurrent write won; retry.
    #[error("secret changed concurrently; retry")]
    Concurrent,
    /// A stored record is unreadable.
    #[error("stored kv record is corrupt")]
    Corrupt,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The barrier failed.
    #[error(transparent)]
    Barrier(#[from] BarrierError),
}

/// Whether `path` is a valid secret path (without the `kv/` mount).
pub fn valid_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= MAX_PATH_LEN
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Version {
    version: u64,
    created_at_ms: u64,
    created_by: String,
    /// JSON object text.
    data: String,
}

impl Drop for Version {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    current: u64,
    versions: Vec<Version>,
}

/// A released kv secret.
pub struct KvSecret {
    /// Its version.
    pub version: u64,
    data: Zeroizing<String>,
}

impl std::fmt::Debug for KvSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvSecret")
            .field("version", &self.version)
            .field("data", &"[redacted]")
            .finish()
    }
}

impl KvSecret {
    /// The value: JSON object text.
    pub fn expose_secret(&self) -> &str {
        &self.data
    }
}

/// One version's metadata.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionMetadata {
    /// The version.
    pub version: u64,
    /// When written, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The writer's token accessor.
    pub created_by: String,
}

/// A secret's metadata (no values).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KvMetadata {
    /// The current version.
    pub current: u64,
    /// Kept versions, oldest first.
    pub versions: Vec<VersionMetadata>,
}

fn key(path: &str) -> Vec<u8> {
    format!("kv/{path}").into_bytes()
}

async fn load(
    storage: &dyn Storage,
    barrier: &Barrier,
    path: &str,
) -> Result<Option<(Entry, Vec<u8>)>, KvError> {
    let key = key(path);
    let Some(sealed) = storage.get(Keyspace::Secrets, &key).await? else {
        return Ok(None);
    };
    let plain = barrier.decrypt(Keyspace::Secrets, &key, &sealed)?;
    let entry = serde_json::from_slice(&plain).map_err(|_| KvError::Corrupt)?;
    Ok(Some((entry, sealed)))
}

/// Writes a new version of `path`; returns its number.
pub async fn write(
    storage: &dyn Storage,
    barrier: &Barrier,
    path: &str,
    data: &serde_json::Map<String, serde_json::Value>,
    by: &str,
    now_ms: u64,
) -> Result<u64, KvError> {
    if !valid_path(path) {
        return Err(KvError::InvalidPath);
    }
    let text = Zeroizing::new(serde_json::to_string(data).map_err(|_| KvError::InvalidValue)?);
    if text.len() > MAX_VALUE_LEN {
        return Err(KvError::InvalidValue);
    }
    let existing = load(storage, barrier, path).await?;
    let (mut entry, old) = match existing {
        Some((entry, old)) => (entry, Some(old)),
        None => (
            Entry {
                current: 0,
                versions: Vec::new(),
            },
            None,
        ),
    };
    let version = entry.current.saturating_add(1);
    entry.current = version;
    entry.versions.push(Version {
        version,
        created_at_ms: now_ms,
        created_by: by.to_owned(),
        data: text.to_string(),
    });
    let excess = entry.versions.len().saturating_sub(MAX_VERSIONS);
    entry.versions.drain(..excess);
    let plain = Zeroizing::new(serde_json::to_vec(&entry).map_err(|_| KvError::Corrupt)?);
    let key = key(path);
    let sealed = barrier.encrypt(Keyspace::Secrets, &key, &plain).await?;
    match storage
        .compare_and_swap(Keyspace::Secrets, &key, old.as_deref(), Some(&sealed))
        .await
    {
        Ok(()) => Ok(version),
        Err(StorageError::ConditionFailed { .. }) => Err(KvError::Concurrent),
        Err(e) => Err(e.into()),
    }
}

/// The secret at `path` (the current version, or `version`).
pub async fn read(
    storage: &dyn Storage,
    barrier: &Barrier,
    path: &str,
    version: Option<u64>,
) -> Result<Option<KvSecret>, KvError> {
    if !valid_path(path) {
        return Err(KvError::InvalidPath);
    }
    let Some((entry, _)) = load(storage, barrier, path).await? else {
        return Ok(None);
    };
    let wanted = version.unwrap_or(entry.current);
    Ok(entry
        .versions
        .iter()
        .find(|v| v.version == wanted)
        .map(|v| KvSecret {
            version: v.version,
            data: Zeroizing::new(v.data.clone()),
        }))
}

/// The metadata of `path`.
pub async fn metadata(
    storage: &dyn Storage,
    barrier: &Barrier,
    path: &str,
) -> Result<Option<KvMetadata>, KvError> {
    if !valid_path(path) {
        return Err(KvError::InvalidPath);
    }
    Ok(load(storage, barrier, path)
        .await?
        .map(|(entry, _)| KvMetadata {
            current: entry.current,
            versions: entry
                .versions
                .iter()
                .map(|v| VersionMetadata {
                    version: v.version,
                    created_at_ms: v.created_at_ms,
                    created_by: v.created_by.clone(),
                })
                .collect(),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for good in ["app", "team/app/db", "a.b_c-d"] {
            assert!(valid_path(good), "{good}");
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "a/../b",
            "a/./b",
            "a b",
            "ä",
            &"a".repeat(257),
        ] {
            assert!(!valid_path(bad), "{bad}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let s = KvSecret {
            version: 1,
            data: Zeroizing::new("{\"password\":\"hunter2\"}".to_owned()),
        };
        let text = format!("{s:?}");
        assert!(!text.contains("hunter2"));
        assert!(text.contains("[redacted]"));
    }
}

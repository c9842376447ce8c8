//! [`EnrollmentSettings`]: the `[enrollment]` config section turned into a
//! trust store, a policy and parsed hash lists, once at start.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use keyward_attest::ek::{EkPolicy, EkTrustStore, ExpiryPolicy, MAX_BUNDLE_LEN, TrustStoreError};

use crate::config::EnrollmentConfig;

/// Most certificate files read from one configured directory.
pub const MAX_TRUST_DIR_FILES: usize = 1024;
/// Most entries in the EK allowlist or the auto-approve lists.
pub const MAX_HASH_LIST: usize = 100_000;

/// Why the `[enrollment]` section cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollmentConfigError {
    /// A certificate file or directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A directory holds more than [`MAX_TRUST_DIR_FILES`] files.
    #[error("{path}: more than {max} files")]
    TooManyFiles {
        /// The directory.
        path: PathBuf,
        /// The cap.
        max: usize,
    },
    /// A file is not a certificate bundle the trust store accepts.
    #[error(transparent)]
    TrustStore(#[from] TrustStoreError),
    /// A hash list entry is not 64 hex digits.
    #[error("enrollment.{list}: {value:?} is not a hex SHA-256")]
    Hash {
        /// The list.
        list: &'static str,
        /// The entry (truncated).
        value: String,
    },
    /// A hash list is longer than [`MAX_HASH_LIST`].
    #[error("enrollment.{list}: more than {max} entries")]
    TooManyHashes {
        /// The list.
        list: &'static str,
        /// The cap.
        max: usize,
    },
}

/// What enrollment checks a TPM against.
#[derive(Debug)]
pub struct EnrollmentSettings {
    pub(crate) store: EkTrustStore,
    pub(crate) policy: EkPolicy,
    pub(crate) allowlist: BTreeSet<[u8; 32]>,
    pub(crate) ttl_secs: u64,
    pub(crate) auto_issuers: BTreeSet<String>,
    pub(crate) auto_hashes: BTreeSet<[u8; 32]>,
}

impl Default for EnrollmentSettings {
    /// No trust anchor, no allowlist: every enrollment is refused.
    fn default() -> Self {
        Self {
            store: EkTrustStore::new(),
            policy: EkPolicy::default(),
            allowlist: BTreeSet::new(),
            ttl_secs: EnrollmentConfig::default().ttl.as_secs(),
            auto_issuers: BTreeSet::new(),
            auto_hashes: BTreeSet::new(),
        }
    }
}

impl EnrollmentSettings {
    /// Reads the configured certificate files and parses the hash lists.
    pub fn load(config: &EnrollmentConfig) -> Result<Self, EnrollmentConfigError> {
        let mut store = EkTrustStore::new();
        for path in &config.ek_roots {
            for (origin, bytes) in read_bundles(path)? {
                store.add_roots(&origin, &bytes)?;
            }
        }
        for path in &config.ek_intermediates {
            for (origin, bytes) in read_bundles(path)? {
                store.add_intermediates(&origin, &bytes)?;
            }
        }
        let mut policy = EkPolicy::default();
        policy.require_ek_eku = config.require_ek_eku;
        policy.allow_sha1_signatures = config.allow_sha1_signatures;
        policy.expiry = if config.enforce_expiry {
            ExpiryPolicy::Enforce
        } else {
            ExpiryPolicy::AcceptExpired
        };
        Ok(Self {
            store,
            policy,
            allowlist: parse_hashes("ek_allowlist", &config.ek_allowlist)?,
            ttl_secs: config.ttl.as_secs(),
            auto_issuers: config.auto_approve.ek_issuers.iter().cloned().collect(),
            auto_hashes: parse_hashes("auto_approve.ek_hashes", &config.auto_approve.ek_hashes)?,
        })
    }

    /// The pending-enrollment lifetime, in seconds.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }
}

/// The settings in force; replaced as a whole (by the server at start, or
/// by tests).
#[derive(Debug, Default)]
pub struct EnrollmentSlot(RwLock<Arc<EnrollmentSettings>>);

impl EnrollmentSlot {
    /// Installs `settings`.
    pub fn configure(&self, settings: EnrollmentSettings) {
        let mut slot = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *slot = Arc::new(settings);
    }

    /// The settings in force.
    pub fn current(&self) -> Arc<EnrollmentSettings> {
        Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

fn parse_hashes(
    list: &'static str,
    values: &[String],
) -> Result<BTreeSet<[u8; 32]>, EnrollmentConfigError> {
    if values.len() > MAX_HASH_LIST {
        return Err(EnrollmentConfigError::TooManyHashes {
            list,
            max: MAX_HASH_LIST,
        });
    }
    values
        .iter()
        .map(|v| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(v.trim(), &mut out).map_err(|_| EnrollmentConfigError::Hash {
                list,
                value: v.chars().take(80).collect(),
            })?;
            Ok(out)
        })
        .collect()
}

/// The certificate bundles at `path`: the file itself, or every regular
/// file of the directory in name order.
fn read_bundles(path: &Path) -> Result<Vec<(String, Vec<u8>)>, EnrollmentConfigError> {
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| EnrollmentConfigError::Read { path: p, source }
    };
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io(path))? {
            let entry = entry.map_err(io(path))?;
            if entry.file_type().map_err(io(path))?.is_file() {
                files.push(entry.path());
            }
            if files.len() > MAX_TRUST_DIR_FILES {
                return Err(EnrollmentConfigError::TooManyFiles {
                    path: path.to_owned(),
                    max: MAX_TRUST_DIR_FILES,
                });
            }
        }
        files.sort();
        files
    } else {
        vec![path.to_owned()]
    };
    files
        .into_iter()
        .map(|file| {
            let mut bytes = Vec::new();
            std::fs::File::open(&file)
                .and_then(|f| {
                    f.take(
                        u64::try_from(MAX_BUNDLE_LEN)
                            .unwrap_or(u64::MAX)
                            .saturating_add(1),
                    )
                    .read_to_end(&mut bytes)
                })
                .map_err(io(&file))?;
            Ok((file.display().to_string(), bytes))
        })
        .collect()
}

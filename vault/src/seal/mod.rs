//! The seal: how the root key is protected, and unsealing.
//!
//! # What it does
//! At init the vault generates a root key, creates the barrier's keyring
//! under it, and protects the root key in one of three ways
//! ([`SealKind`]):
//! - **Shamir** ([`Seal::init_shamir`]): the root key is split into N unseal
//!   shares with threshold T and then forgotten; [`Seal::submit_share`]
//!   takes shares one at a time and unseals once T distinct shares are in;
//! - **TPM** ([`Seal::init_tpm`]): the root key is sealed to this host's TPM
//!   under a PCR policy (`keyward_hardware::Tpm::seal_secret`) and the
//!   sealed blob is stored; [`Seal::auto_unseal`] unseals by itself on the
//!   same host in the same boot state. N recovery shares (threshold T) are
//!   issued too, for when the TPM refuses (changed PCRs, new machine);
//!   [`Seal::submit_share`] takes them as in Shamir mode, and
//!   [`Seal::reseal_tpm`] then seals the key to the current PCR values;
//! - **dev** ([`Seal::init_dev`]): the root key lives only in memory and is
//!   never persisted; allowed only on a loopback listener; init returns a
//!   [`DevModeWarning`] for the binary to print.
//!
//! The right root key is recognised by the barrier's keyring opening under
//! it (AES-GCM authentication), never by comparing key material. A share
//! set that does not open it fails with [`SealError::WrongShares`] and
//! resets progress.
//!
//! While sealed the vault holds no keys: [`Seal::is_sealed`] and
//! [`Seal::status`] are for the HTTP layer's 503 answers and
//! `/v1/sys/seal-status`.
//!
//! # What it does not do
//! It does not authenticate who submits shares (the HTTP layer does), rate
//! limit attempts, print anything, or store shares: they exist only in
//! init's return value and, during unsealing, in memory until the threshold
//! is reached or progress is reset.
//!
//! # Stored records (keyspace `system`)
//! ```text
//! seal/config = "KWSC" | version u8 (1) | kind u8 (1 shamir, 2 TPM, 3 dev) | threshold u8 | shares u8
//! seal/tpm    = keyward_hardware::SealedSecret blob (TPM mode)
//! ```

mod shamir;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use keyward_hardware::{PcrSelection, SealedSecret, Tpm, TpmSealError};
use zeroize::Zeroizing;

pub use shamir::{SHARE_LEN, UnsealShare};

use crate::barrier::{Barrier, BarrierError, BarrierLimits, RootKey};
use crate::storage::{ConditionKind, Keyspace, Storage, StorageError, WriteBatch};

const CONFIG_KEY: &[u8] = b"seal/config";
const TPM_BLOB_KEY: &[u8] = b"seal/tpm";
const CONFIG_MAGIC: &[u8; 4] = b"KWSC";
const CONFIG_VERSION: u8 = 1;

/// How the root key is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealKind {
    /// Shamir unseal shares.
    Shamir,
    /// Sealed to this host's TPM, with Shamir recovery shares.
    Tpm,
    /// In memory only (dev mode).
    Dev,
}

impl SealKind {
    fn code(self) -> u8 {
        match self {
            Self::Shamir => 1,
            Self::Tpm => 2,
            Self::Dev => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Shamir),
            2 => Some(Self::Tpm),
            3 => Some(Self::Dev),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SealConfig {
    kind: SealKind,
    threshold: u8,
    shares: u8,
}

impl SealConfig {
    fn encode(self) -> Vec<u8> {
        let mut out = CONFIG_MAGIC.to_vec();
        out.extend_from_slice(&[
            CONFIG_VERSION,
            self.kind.code(),
            self.threshold,
            self.shares,
        ]);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, SealError> {
        let bad = |what| SealError::ConfigCorrupt { what };
        let (magic, rest) = bytes.split_first_chunk::<4>().ok_or(bad("truncated"))?;
        if magic != CONFIG_MAGIC {
            return Err(bad("not a seal configuration"));
        }
        let [version, kind, threshold, shares] =
            <[u8; 4]>::try_from(rest).map_err(|_| bad("wrong length"))?;
        if version != CONFIG_VERSION {
            return Err(bad("unsupported version"));
        }
        let kind = SealKind::from_code(kind).ok_or(bad("unknown kind"))?;
        let consistent = match kind {
            SealKind::Dev => threshold == 0 && shares == 0,
            SealKind::Shamir | SealKind::Tpm => shamir::check_parameters(threshold, shares).is_ok(),
        };
        if !consistent {
            return Err(bad("share parameters"));
        }
        Ok(Self {
            kind,
            threshold,
            shares,
        })
    }
}

/// The seal's state, for status endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealStatus {
    /// Whether the vault was initialised.
    pub initialized: bool,
    /// Whether the vault is sealed (no keys in memory).
    pub sealed: bool,
    /// How the root key is protected (`None` before init).
    pub kind: Option<SealKind>,
    /// Shares needed (unseal shares, or recovery shares in TPM mode; 0 in dev mode).
    pub threshold: u8,
    /// Shares issued.
    pub shares: u8,
    /// Distinct shares submitted so far towards the threshold.
    pub progress: u8,
}

/// What [`Seal::submit_share`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsealProgress {
    /// More shares are needed.
    Pending {
        /// Distinct shares held.
        progress: u8,
        /// Shares needed.
        threshold: u8,
    },
    /// The vault is unsealed.
    Unsealed,
}

/// The warning dev mode's init returns; the binary prints it prominently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevModeWarning {
    _private: (),
}

impl DevModeWarning {
    /// The text to print.
    pub fn message(&self) -> &'static str {
        "WARNING! Keyward is running in DEV MODE. The root key is held in memory \
         only and is never written anywhere: everything stored becomes unreadable \
         when this process exits. The listener is loopback-only and unencrypted. \
         Never use dev mode with real secrets or on a shared machine."
    }
}

impl std::fmt::Display for DevModeWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// Why a seal operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The vault has not been initialised.
    #[error("the vault is not initialised")]
    NotInitialized,
    /// The vault is already initialised.
    #[error("the vault is already initialised")]
    AlreadyInitialized,
    /// The vault is already unsealed.
    #[error("the vault is already unsealed")]
    AlreadyUnsealed,
    /// Threshold and share count outside 1 ≤ threshold ≤ shares ≤ 255.
    #[error("invalid share parameters: threshold {threshold} of {shares} shares")]
    InvalidShareParameters {
        /// The threshold asked for.
        threshold: u8,
        /// The share count asked for.
        shares: u8,
    },
    /// A share that does not parse.
    #[error("malformed unseal share: {what}")]
    MalformedShare {
        /// What was wrong.
        what: &'static str,
    },
    /// A share with the same index was already submitted; progress is kept.
    #[error("share #{index} was already submitted")]
    DuplicateShare {
        /// The share's index.
        index: u8,
    },
    /// The submitted shares do not recombine to the root key (the keyring
    /// does not open); progress was reset.
    #[error("the unseal shares do not open the vault; progress was reset")]
    WrongShares,
    /// The operation does not apply to this vault's seal kind.
    #[error("this vault is sealed by {kind:?}")]
    WrongSealKind {
        /// The vault's seal kind.
        kind: SealKind,
    },
    /// A dev-mode vault whose root key is gone: it can never be unsealed.
    #[error("a dev-mode vault cannot be unsealed: its root key was never persisted")]
    DevModeCannotUnseal,
    /// Dev mode asked for on a listener that is not loopback.
    #[error("dev mode requires a loopback listener, not {addr}")]
    DevModeRequiresLoopback {
        /// The listener address given.
        addr: SocketAddr,
    },
    /// The stored seal configuration does not parse.
    #[error("seal configuration corrupt: {what}")]
    ConfigCorrupt {
        /// What was wrong.
        what: &'static str,
    },
    /// The TPM refused or failed (for a refusal, use the recovery shares).
    #[error("TPM: {0}")]
    Tpm(#[from] TpmSealError),
    /// The TPM unsealed something that is not a root key.
    #[error("the TPM returned {len} bytes, not a root key")]
    TpmSecretLength {
        /// What it returned.
        len: usize,
    },
    /// The blocking task running the TPM call panicked or was cancelled.
    #[error("the TPM task did not complete")]
    TpmTaskFailed,
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

#[derive(Debug, Default)]
struct State {
    config: Option<SealConfig>,
    progress: Vec<UnsealShare>,
}

/// The vault's seal: owns the [`Barrier`] and decides when it gets a key.
pub struct Seal {
    storage: Arc<dyn Storage>,
    barrier: Arc<Barrier>,
    state: Mutex<State>,
    /// Serialises init, unseal and reseal (held across storage and TPM calls).
    operation: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seal")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

async fn run_tpm<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, TpmSealError> + Send + 'static,
) -> Result<R, SealError> {
    // `Tpm` calls block on the TPM's owning thread.
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| SealError::TpmTaskFailed)?
        .map_err(SealError::Tpm)
}

impl Seal {
    /// Opens the seal over `storage`, sealed. Reads the seal configuration
    /// if the vault was initialised.
    pub async fn open(storage: Arc<dyn Storage>, limits: BarrierLimits) -> Result<Self, SealError> {
        let config = match storage.get(Keyspace::System, CONFIG_KEY).await? {
            Some(bytes) => Some(SealConfig::decode(&bytes)?),
            None => None,
        };
        Ok(Self {
            barrier: Arc::new(Barrier::new(Arc::clone(&storage), limits)),
            storage,
            state: Mutex::new(State {
                config,
                progress: Vec::new(),
            }),
            operation: tokio::sync::Mutex::new(()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Progress is a list of shares; a panic elsewhere cannot leave it
        // half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The barrier, for reading and writing sealed values.
    pub fn barrier(&self) -> &Arc<Barrier> {
        &self.barrier
    }

    /// True while the vault holds no keys.
    pub fn is_sealed(&self) -> bool {
        self.barrier.is_sealed()
    }

    /// Initialisation, seal kind and unseal progress.
    pub fn status(&self) -> SealStatus {
        let state = self.state();
        let config = state.config;
        SealStatus {
            initialized: config.is_some(),
            sealed: self.barrier.is_sealed(),
            kind: config.map(|c| c.kind),
            threshold: config.map_or(0, |c| c.threshold),
            shares: config.map_or(0, |c| c.shares),
            progress: u8::try_from(state.progress.len()).unwrap_or(u8::MAX),
        }
    }

    async fn initialize(
        &self,
        config: SealConfig,
        root: RootKey,
        mut batch: WriteBatch,
    ) -> Result<(), SealError> {
        batch.insert_new(Keyspace::System, CONFIG_KEY, &config.encode())?;
        match self.barrier.initialize(root, batch).await {
            Ok(()) => {}
            Err(
                BarrierError::AlreadyInitialized
                | BarrierError::Storage(StorageError::ConditionFailed {
                    kind: ConditionKind::InsertNew,
                    ..
                }),
            ) => return Err(SealError::AlreadyInitialized),
            Err(e) => return Err(e.into()),
        }
        let mut state = self.state();
        state.config = Some(config);
        state.progress.clear();
        Ok(())
    }

    fn check_uninitialized(&self) -> Result<(), SealError> {
        if self.state().config.is_some() {
            return Err(SealError::AlreadyInitialized);
        }
        Ok(())
    }

    /// Initialises with Shamir unseal shares: returns `shares` shares, any
    /// `threshold` of which unseal. The vault is unsealed afterwards.
    pub async fn init_shamir(
        &self,
        threshold: u8,
        shares: u8,
    ) -> Result<Vec<UnsealShare>, SealError> {
        shamir::check_parameters(threshold, shares)?;
        let _operation = self.operation.lock().await;
        self.check_uninitialized()?;
        let root = RootKey::generate()?;
        let issued = shamir::split(&root, threshold, shares)?;
        let config = SealConfig {
            kind: SealKind::Shamir,
            threshold,
            shares,
        };
        self.initialize(config, root, WriteBatch::new()).await?;
        Ok(issued)
    }

    /// Initialises with the root key sealed to `tpm` under PolicyPCR over
    /// the current values of `pcrs`, and returns recovery shares
    /// (`threshold` of `shares`). The vault is unsealed afterwards.
    pub async fn init_tpm(
        &self,
        tpm: &Tpm,
        pcrs: &PcrSelection,
        threshold: u8,
        shares: u8,
    ) -> Result<Vec<UnsealShare>, SealError> {
        shamir::check_parameters(threshold, shares)?;
        let _operation = self.operation.lock().await;
        self.check_uninitialized()?;
        let root = RootKey::generate()?;
        let sealed = self.seal_to_tpm(tpm, pcrs, &root).await?;
        let issued = shamir::split(&root, threshold, shares)?;
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::System, TPM_BLOB_KEY, &sealed)?;
        let config = SealConfig {
            kind: SealKind::Tpm,
            threshold,
            shares,
        };
        self.initialize(config, root, batch).await?;
        Ok(issued)
    }

    /// Seals `root` to the TPM and checks at once that it unseals, so a
    /// policy the TPM cannot satisfy is found at init, not at the next boot.
    async fn seal_to_tpm(
        &self,
        tpm: &Tpm,
        pcrs: &PcrSelection,
        root: &RootKey,
    ) -> Result<Vec<u8>, SealError> {
        let secret = Zeroizing::new(root.bytes().to_vec());
        let (tpm, pcrs) = (tpm.clone(), pcrs.clone());
        let sealed = run_tpm(move || {
            let sealed = tpm.seal_secret(&secret, &pcrs)?;
            let back = tpm.unseal_secret(&sealed)?;
            if aws_lc_rs::constant_time::verify_slices_are_equal(&back, &secret).is_err() {
                return Err(TpmSealError::PolicyRefused);
            }
            sealed.to_bytes()
        })
        .await?;
        Ok(sealed)
    }

    /// Initialises in dev mode: the root key stays in memory and is never
    /// persisted. Refused unless `listen` is a loopback address.
    pub async fn init_dev(&self, listen: SocketAddr) -> Result<DevModeWarning, SealError> {
        if !listen.ip().is_loopback() {
            return Err(SealError::DevModeRequiresLoopback { addr: listen });
        }
        let _operation = self.operation.lock().await;
        self.check_uninitialized()?;
        let config = SealConfig {
            kind: SealKind::Dev,
            threshold: 0,
            shares: 0,
        };
        self.initialize(config, RootKey::generate()?, WriteBatch::new())
            .await?;
        Ok(DevModeWarning { _private: () })
    }

    fn config(&self) -> Result<SealConfig, SealError> {
        self.state().config.ok_or(SealError::NotInitialized)
    }

    /// Submits one unseal share (or, in TPM mode, one recovery share).
    ///
    /// A malformed or duplicate share is refused and progress kept. When
    /// the threshold is reached the shares are combined and tried on the
    /// keyring: success unseals; failure returns
    /// [`SealError::WrongShares`] and resets progress.
    pub async fn submit_share(&self, share: UnsealShare) -> Result<UnsealProgress, SealError> {
        let _operation = self.operation.lock().await;
        let config = self.config()?;
        if config.kind == SealKind::Dev {
            return Err(SealError::DevModeCannotUnseal);
        }
        if !self.barrier.is_sealed() {
            return Err(SealError::AlreadyUnsealed);
        }
        let shares = {
            let mut state = self.state();
            if state.progress.iter().any(|s| s.index() == share.index()) {
                return Err(SealError::DuplicateShare {
                    index: share.index(),
                });
            }
            state.progress.push(share);
            if state.progress.len() < usize::from(config.threshold) {
                return Ok(UnsealProgress::Pending {
                    progress: u8::try_from(state.progress.len()).unwrap_or(u8::MAX),
                    threshold: config.threshold,
                });
            }
            // Whatever the outcome, this set is used up.
            std::mem::take(&mut state.progress)
        };
        let root = shamir::combine(&shares, config.threshold)?;
        drop(shares);
        match self.barrier.unseal(root).await {
            Ok(()) => Ok(UnsealProgress::Unsealed),
            Err(BarrierError::WrongRootKey) => Err(SealError::WrongShares),
            Err(e) => Err(e.into()),
        }
    }

    /// Discards the shares submitted so far.
    pub fn reset_progress(&self) {
        self.state().progress.clear();
    }

    /// Unseals a TPM-mode vault with its TPM. A changed PCR gives
    /// `SealError::Tpm(TpmSealError::PolicyRefused)`, another TPM
    /// `SealError::Tpm(TpmSealError::ForeignObject)`; recover with
    /// [`Seal::submit_share`] and then [`Seal::reseal_tpm`].
    pub async fn auto_unseal(&self, tpm: &Tpm) -> Result<(), SealError> {
        let _operation = self.operation.lock().await;
        let config = self.config()?;
        if config.kind != SealKind::Tpm {
            return Err(SealError::WrongSealKind { kind: config.kind });
        }
        if !self.barrier.is_sealed() {
            return Err(SealError::AlreadyUnsealed);
        }
        let blob = self
            .storage
            .get(Keyspace::System, TPM_BLOB_KEY)
            .await?
            .ok_or(SealError::ConfigCorrupt {
                what: "TPM mode without a sealed blob",
            })?;
        let sealed = SealedSecret::from_bytes(&blob)?;
        let tpm = tpm.clone();
        let secret = run_tpm(move || tpm.unseal_secret(&sealed)).await?;
        let root =
            RootKey::from_bytes(&secret).ok_or(SealError::TpmSecretLength { len: secret.len() })?;
        self.barrier.unseal(root).await?;
        self.state().progress.clear();
        Ok(())
    }

    /// Seals the (unsealed) root key to `tpm` again under the current
    /// values of `pcrs`, replacing the stored blob: after an intended
    /// change of boot state, or a move to a new host, once recovery shares
    /// have unsealed the vault.
    pub async fn reseal_tpm(&self, tpm: &Tpm, pcrs: &PcrSelection) -> Result<(), SealError> {
        let _operation = self.operation.lock().await;
        let config = self.config()?;
        if config.kind != SealKind::Tpm {
            return Err(SealError::WrongSealKind { kind: config.kind });
        }
        let root = self.barrier.root_key_copy()?;
        let sealed = self.seal_to_tpm(tpm, pcrs, &root).await?;
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::System, TPM_BLOB_KEY, &sealed)?;
        self.storage.commit(batch).await?;
        Ok(())
    }

    /// Seals the vault: drops every key and any unseal progress.
    pub fn seal(&self) {
        self.barrier.seal();
        self.state().progress.clear();
    }
}

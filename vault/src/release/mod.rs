//! The release path: challenges, evidence, attestation sessions, leases.
//!
//! # What it does
//! - issues single-use nonces ([`nonce`]);
//! - checks evidence in the order of the design brief ([`evidence`]) and
//!   turns an [`evidence::AttestedWorkload`] into an attestation session:
//!   an opaque token (`kws.` + 256 random bits) whose SHA-256 keys a
//!   [`Session`] record, stored with its time-ordered expiry index entry
//!   ([`Keyspace::SessionExpiry`]) in the durable, ordered batch that first
//!   consumes the nonce ([`crate::storage::Storage::commit_in_order`]: used
//!   nonce, index entry, record; a crash keeps a prefix), so the worker can
//!   delete sessions that expire unused ([`Release::prune_stored_sessions`]);
//! - authenticates session requests: the token plus a fresh proof of
//!   possession of the instance key ([`keyward_attest::instance::PopProof`])
//!   whose id is refused if seen within the proof window;
//! - re-checks a session's basis (host active, image and model active and
//!   admitted by their signing policies) whenever a revocation or policy
//!   change has happened since the session last checked it (a global
//!   epoch), so the hot path does no storage read when nothing changed;
//! - keeps leases ([`lease`]) and static secrets ([`kv`]).
//!
//! # What it does not do
//! It decides nothing about TPM structures or signatures itself: those are
//! `keyward-attest`'s typed proofs. Authorization is Cedar
//! ([`crate::release_policy`]); secrets are made by [`crate::secrets`].

pub mod evidence;
pub mod kv;
pub mod lease;
pub mod nonce;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use keyward_attest::instance::{INSTANCE_KEY_LEN, POP_ID_LEN, PopProof, PopRequest};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::barrier::Barrier;
use crate::hosts::{HostState, HostStore};
use crate::storage::{
    KeyRange, Keyspace, MAX_SCAN, Storage, StorageError, WriteBatch, lease_expiry_bound,
    parse_lease_expiry_key, session_expiry_key,
};
use evidence::AttestedWorkload;

/// Prefix of session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "kws.";
/// Most proof ids remembered before old ones are swept.
const MAX_SEEN_POPS: usize = 1 << 20;

/// Where a request was refused. Told only to the audit log; the requester
/// gets a uniform 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Stage {
    /// Malformed input (answered 400, not a denial).
    Request,
    /// The nonce.
    Nonce,
    /// The host.
    Host,
    /// The quote.
    Quote,
    /// Boot log and boot policy.
    BootPolicy,
    /// The workload log and instance key.
    WorkloadLog,
    /// Image or model registration and signing policy.
    Artifact,
    /// The attestation session.
    Session,
    /// Cedar release policy (and the on-behalf-of user).
    Policy,
    /// Lease rules.
    Lease,
    /// A secrets engine failed (answered 500/503).
    Engine,
    /// The vault failed (answered 500).
    Internal,
}

impl Stage {
    /// Its name in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Nonce => "nonce",
            Self::Host => "host",
            Self::Quote => "quote",
            Self::BootPolicy => "boot_policy",
            Self::WorkloadLog => "workload_log",
            Self::Artifact => "artifact",
            Self::Session => "session",
            Self::Policy => "policy",
            Self::Lease => "lease",
            Self::Engine => "engine",
            Self::Internal => "internal",
        }
    }
}

/// A refusal: the stage and the exact reason (audit only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Where.
    pub stage: Stage,
    /// Why, exactly.
    pub reason: String,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.stage.as_str(), self.reason)
    }
}

fn deny(stage: Stage, reason: impl Into<String>) -> Denial {
    Denial {
        stage,
        reason: reason.into(),
    }
}

/// Release path settings (`[release]` in the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseSettings {
    /// Nonce time to live, milliseconds.
    pub nonce_ttl_ms: u64,
    /// Attestation session time to live, milliseconds.
    pub session_ttl_ms: u64,
    /// How far a proof's time may be from the vault's clock, milliseconds.
    pub pop_window_ms: u64,
    /// The workload PCR.
    pub workload_pcr: u8,
}

impl Default for ReleaseSettings {
    fn default() -> Self {
        Self {
            nonce_ttl_ms: 60_000,
            session_ttl_ms: 300_000,
            pop_window_ms: 30_000,
            workload_pcr: keyward_attest::cel::DEFAULT_WORKLOAD_PCR,
        }
    }
}

/// An attestation session: who the workload proved to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Session id (first 16 bytes of the token's SHA-256, hex).
    pub id: String,
    /// The instance public key (Ed25519), hex.
    pub instance_key: String,
    /// Host id.
    pub host_id: String,
    /// Host name.
    pub host_name: String,
    /// Host labels at attestation.
    pub host_labels: BTreeMap<String, String>,
    /// The launch record's instance id.
    pub instance_id: String,
    /// Image reference from the launch record.
    pub image_reference: String,
    /// Image manifest digest.
    pub image_digest: String,
    /// Who signed the image, as release policies name it (SAN, `key:<id>`
    /// or `ca:<id>`).
    pub image_signer: String,
    /// Model name from the launch record.
    pub model_name: String,
    /// Model version id.
    pub model_digest: String,
    /// Who signed the model, as release policies name it.
    pub model_signer: String,
    /// Attestation time, milliseconds since the Unix epoch.
    pub attested_at_ms: u64,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

impl Session {
    fn instance_key_bytes(&self) -> Option<[u8; INSTANCE_KEY_LEN]> {
        let bytes = hex::decode(&self.instance_key).ok()?;
        <[u8; INSTANCE_KEY_LEN]>::try_from(bytes.as_slice()).ok()
    }

    /// Whether `other` is the same workload instance (same host, instance
    /// key, image and model): a fresh attestation of it may renew its
    /// leases.
    pub fn same_instance(&self, other: &Session) -> bool {
        self.host_id == other.host_id
            && self.instance_key == other.instance_key
            && self.instance_id == other.instance_id
            && self.image_digest == other.image_digest
            && self.model_digest == other.model_digest
    }
}

#[derive(Debug)]
struct CachedSession {
    session: Arc<Session>,
    instance_key: [u8; INSTANCE_KEY_LEN],
    checked_epoch: AtomicU64,
}

/// The release path's shared state.
#[derive(Debug)]
pub struct Release {
    settings: RwLock<ReleaseSettings>,
    nonce_key: tokio::sync::OnceCell<hmac::Key>,
    sessions: RwLock<HashMap<[u8; 32], Arc<CachedSession>>>,
    epoch: AtomicU64,
    seen_pops: Mutex<HashMap<[u8; POP_ID_LEN], u64>>,
    last_attested: Mutex<HashMap<String, u64>>,
    admitted: evidence::AdmissionMemo,
    rng: SystemRandom,
}

impl Default for Release {
    fn default() -> Self {
        Self {
            settings: RwLock::new(ReleaseSettings::default()),
            nonce_key: tokio::sync::OnceCell::new(),
            sessions: RwLock::new(HashMap::new()),
            // Start at 1 so a session cached at 0 is re-checked once.
            epoch: AtomicU64::new(1),
            seen_pops: Mutex::new(HashMap::new()),
            last_attested: Mutex::new(HashMap::new()),
            admitted: evidence::AdmissionMemo::default(),
            rng: SystemRandom::new(),
        }
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// The store key of a session token.
fn token_hash(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

impl Release {
    /// Replaces the settings.
    pub fn configure(&self, settings: ReleaseSettings) {
        if let Ok(mut s) = self.settings.write() {
            *s = settings;
        }
    }

    /// The artifact admissions evidence checks may reuse.
    pub fn admitted(&self) -> &evidence::AdmissionMemo {
        &self.admitted
    }

    /// The current settings.
    pub fn settings(&self) -> ReleaseSettings {
        self.settings.read().map(|s| *s).unwrap_or_default()
    }

    /// Marks every session's basis as needing a re-check (a host, an
    /// artifact or a signing policy changed).
    pub fn bump_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The nonce key, created on first use and kept barrier-encrypted.
    pub async fn nonce_key(
        &self,
        storage: &dyn Storage,
        barrier: &Barrier,
    ) -> Result<&hmac::Key, String> {
        self.nonce_key
            .get_or_try_init(|| async {
                for _ in 0..2 {
                    if let Some(sealed) = storage
                        .get(Keyspace::System, nonce::NONCE_KEY_PATH)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        let key = barrier
                            .decrypt(Keyspace::System, nonce::NONCE_KEY_PATH, &sealed)
                            .map_err(|e| e.to_string())?;
                        return Ok(hmac::Key::new(hmac::HMAC_SHA256, &key));
                    }
                    let mut fresh = Zeroizing::new([0u8; 32]);
                    self.rng
                        .fill(fresh.as_mut_slice())
                        .map_err(|_| "random number generator failed".to_owned())?;
                    let sealed = barrier
                        .encrypt(Keyspace::System, nonce::NONCE_KEY_PATH, fresh.as_slice())
                        .await
                        .map_err(|e| e.to_string())?;
                    match storage
                        .insert_if_absent(Keyspace::System, nonce::NONCE_KEY_PATH, &sealed)
                        .await
                    {
                        Ok(()) => return Ok(hmac::Key::new(hmac::HMAC_SHA256, fresh.as_slice())),
                        // Another request created it first: read theirs.
                        Err(StorageError::ConditionFailed { .. }) => {}
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Err("nonce key could not be created".to_owned())
            })
            .await
    }

    /// A fresh nonce (hex) and its expiry.
    pub fn challenge(&self, key: &hmac::Key, now_ms: u64) -> Result<(String, u64), String> {
        let expires = now_ms.saturating_add(self.settings().nonce_ttl_ms);
        let nonce = nonce::issue(key, &self.rng, expires)
            .map_err(|_| "random number generator failed".to_owned())?;
        Ok((hex::encode(nonce), expires))
    }

    /// Creates the session for `attested`, consuming its nonce first in
    /// the same durable, ordered batch. A nonce used concurrently loses
    /// here, before anything of its session is written.
    pub async fn create_session(
        &self,
        storage: &dyn Storage,
        attested: AttestedWorkload,
        now_ms: u64,
    ) -> Result<(Zeroizing<String>, Arc<Session>), Denial> {
        let mut random = Zeroizing::new([0u8; 32]);
        self.rng
            .fill(random.as_mut_slice())
            .map_err(|_| deny(Stage::Internal, "random number generator failed"))?;
        let token = Zeroizing::new(format!(
            "{SESSION_TOKEN_PREFIX}{}",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                random.as_slice()
            )
        ));
        let hash = token_hash(&token);
        let ttl = self.settings().session_ttl_ms;
        let session = Session {
            id: hex::encode(hash.get(..16).unwrap_or_default()),
            instance_key: hex::encode(attested.instance_key),
            host_id: attested.host_id,
            host_name: attested.host_name,
            host_labels: attested.host_labels,
            instance_id: attested.launch.instance_id().to_owned(),
            image_reference: attested.launch.image_reference().to_owned(),
            image_digest: attested.image.digest.clone(),
            image_signer: attested.image.signer.policy_name(),
            model_name: attested.launch.model_name().to_owned(),
            model_digest: attested.model.digest.clone(),
            model_signer: attested.model.signer.policy_name(),
            attested_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(ttl),
        };
        let record =
            serde_json::to_vec(&session).map_err(|e| deny(Stage::Internal, e.to_string()))?;
        let mut batch = WriteBatch::new();
        let used = attested.nonce.used_key();
        let internal = |e: StorageError| deny(Stage::Internal, e.to_string());
        batch
            .insert_new(
                nonce::USED,
                &used,
                &attested.nonce.expires_at_ms().to_be_bytes(),
            )
            .map_err(internal)?;
        batch
            .put(
                Keyspace::SessionExpiry,
                &session_expiry_key(session.expires_at_ms, &hash),
                &[],
            )
            .map_err(internal)?;
        batch
            .put(Keyspace::Sessions, &hash, &record)
            .map_err(internal)?;
        // In order, not atomically (the cheap path on sled): the single-use
        // nonce first, so a session never exists for a nonce another
        // request used; the expiry index before the record, so a crash
        // between them leaves at most an index entry, which the worker
        // prunes. A crash after the nonce alone costs the workload a retry.
        match storage.commit_in_order(batch).await {
            Ok(_) => {}
            Err(StorageError::ConditionFailed { .. }) => {
                return Err(deny(Stage::Nonce, nonce::NonceError::Used.to_string()));
            }
            Err(e) => return Err(internal(e)),
        }
        let session = Arc::new(session);
        let cached = Arc::new(CachedSession {
            session: Arc::clone(&session),
            instance_key: attested.instance_key,
            checked_epoch: AtomicU64::new(self.epoch.load(Ordering::SeqCst)),
        });
        if let Ok(mut sessions) = self.sessions.write() {
            sessions.insert(hash, cached);
        }
        Ok((token, session))
    }

    async fn load_session(
        &self,
        storage: &dyn Storage,
        hash: [u8; 32],
    ) -> Result<Arc<CachedSession>, Denial> {
        if let Some(found) = self
            .sessions
            .read()
            .ok()
            .and_then(|s| s.get(&hash).cloned())
        {
            return Ok(found);
        }
        let bytes = storage
            .get(Keyspace::Sessions, &hash)
            .await
            .map_err(|e| deny(Stage::Internal, e.to_string()))?
            .ok_or_else(|| deny(Stage::Session, "unknown session token"))?;
        let session: Session = serde_json::from_slice(&bytes)
            .map_err(|e| deny(Stage::Internal, format!("session record: {e}")))?;
        let instance_key = session
            .instance_key_bytes()
            .ok_or_else(|| deny(Stage::Internal, "session record: instance key"))?;
        let cached = Arc::new(CachedSession {
            session: Arc::new(session),
            instance_key,
            // Loaded from storage: re-check the basis on first use.
            checked_epoch: AtomicU64::new(0),
        });
        if let Ok(mut sessions) = self.sessions.write() {
            sessions.insert(hash, Arc::clone(&cached));
        }
        Ok(cached)
    }

    /// Forgets `session`, whose token is `token` (its answer could not be
    /// audited, so it must not exist).
    pub async fn discard_session(&self, storage: &dyn Storage, token: &str, session: &Session) {
        self.drop_session(storage, token_hash(token), session.expires_at_ms)
            .await;
    }

    /// Forgets a session (expired or revoked) in memory and in storage,
    /// with its expiry index entry.
    async fn drop_session(&self, storage: &dyn Storage, hash: [u8; 32], expires_at_ms: u64) {
        if let Ok(mut sessions) = self.sessions.write() {
            sessions.remove(&hash);
        }
        let mut batch = WriteBatch::new();
        let staged = batch
            .delete(Keyspace::Sessions, &hash)
            .and_then(|b| {
                b.delete(
                    Keyspace::SessionExpiry,
                    &session_expiry_key(expires_at_ms, &hash),
                )
            })
            .is_ok();
        if staged {
            // Best effort: an expired or revoked session is refused anyway,
            // and the worker prunes what is left by its expiry.
            let _ = storage.commit(batch).await;
        }
    }

    fn remember_pop(&self, id: [u8; POP_ID_LEN], now_ms: u64) -> bool {
        let window = self.settings().pop_window_ms;
        let Ok(mut seen) = self.seen_pops.lock() else {
            return false;
        };
        if seen.len() >= MAX_SEEN_POPS {
            seen.retain(|_, expires| *expires >= now_ms);
            if seen.len() >= MAX_SEEN_POPS {
                // Fail closed rather than forget ids still in their window.
                return false;
            }
        }
        // A proof is acceptable up to `window` after its time, and its
        // time is at most `window` ahead of ours.
        let keep_until = now_ms.saturating_add(window.saturating_mul(2));
        seen.insert(id, keep_until).is_none()
    }

    /// Authenticates a session request: token, proof of possession,
    /// single-use proof id, expiry, and (after any revocation since) the
    /// session's basis.
    #[allow(clippy::too_many_arguments)]
    pub async fn authenticate(
        &self,
        storage: &dyn Storage,
        hosts: &HostStore,
        token: Option<&str>,
        pop: Option<&str>,
        method: &str,
        path: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Arc<Session>, Denial> {
        let token = token.ok_or_else(|| deny(Stage::Session, "no session token"))?;
        if !token.starts_with(SESSION_TOKEN_PREFIX) {
            return Err(deny(Stage::Session, "not a session token"));
        }
        let hash = token_hash(token);
        let cached = self.load_session(storage, hash).await?;
        if now_ms > cached.session.expires_at_ms {
            self.drop_session(storage, hash, cached.session.expires_at_ms)
                .await;
            return Err(deny(
                Stage::Session,
                format!(
                    "session {} expired at {}",
                    cached.session.id, cached.session.expires_at_ms
                ),
            ));
        }
        let pop = pop.ok_or_else(|| deny(Stage::Session, "no proof of possession"))?;
        let proof = PopProof::parse(pop).map_err(|e| deny(Stage::Session, e.to_string()))?;
        let request = PopRequest {
            method,
            path,
            body,
            token: token.as_bytes(),
        };
        proof
            .verify(
                &cached.instance_key,
                &request,
                now_ms,
                self.settings().pop_window_ms,
            )
            .map_err(|e| deny(Stage::Session, e.to_string()))?;
        if !self.remember_pop(*proof.id(), now_ms) {
            return Err(deny(
                Stage::Session,
                "proof of possession already used (replay)",
            ));
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        if cached.checked_epoch.load(Ordering::SeqCst) != epoch {
            if let Err(denial) = self.recheck(storage, hosts, &cached.session).await {
                if denial.stage != Stage::Internal {
                    self.drop_session(storage, hash, cached.session.expires_at_ms)
                        .await;
                }
                return Err(denial);
            }
            cached.checked_epoch.store(epoch, Ordering::SeqCst);
        }
        Ok(Arc::clone(&cached.session))
    }

    /// Whether a session's basis still holds: host active, image and model
    /// active and admitted.
    async fn recheck(
        &self,
        storage: &dyn Storage,
        hosts: &HostStore,
        session: &Session,
    ) -> Result<(), Denial> {
        match hosts.get(&session.host_id).await {
            Ok(host) if host.state == HostState::Active => {}
            Ok(host) => {
                return Err(deny(
                    Stage::Host,
                    format!("host {} is {}", host.id, host.state.as_str()),
                ));
            }
            Err(e) => return Err(deny(Stage::Host, e.to_string())),
        }
        evidence::check_artifact(
            storage,
            &self.admitted,
            crate::artifacts::Kind::Image,
            &session.image_digest,
        )
        .await?;
        evidence::check_artifact(
            storage,
            &self.admitted,
            crate::artifacts::Kind::Model,
            &session.model_digest,
        )
        .await?;
        Ok(())
    }

    /// Drops cached sessions of `host_id` or running `digest` (called when
    /// they are revoked; storage records die on their next use, or are
    /// pruned by the worker after their expiry).
    pub fn forget_sessions(&self, matches: impl Fn(&Session) -> bool) {
        if let Ok(mut sessions) = self.sessions.write() {
            sessions.retain(|_, s| !matches(&s.session));
        }
        self.bump_epoch();
    }

    /// Whether the host's `last_attested_at` is due for a write (at most
    /// one per host per minute, so attestation rates do not become host
    /// record writes); marks it written.
    pub fn attested_write_due(&self, host_id: &str, now_ms: u64) -> bool {
        const EVERY_MS: u64 = 60_000;
        let Ok(mut map) = self.last_attested.lock() else {
            return false;
        };
        match map.get(host_id) {
            Some(last) if now_ms.saturating_sub(*last) < EVERY_MS => false,
            _ => {
                map.insert(host_id.to_owned(), now_ms);
                true
            }
        }
    }

    /// Forgets expired sessions held in memory (the worker calls this, so
    /// the cache does not grow with sessions that are never used again).
    pub fn prune_sessions(&self, now_ms: u64) -> usize {
        let Ok(mut sessions) = self.sessions.write() else {
            return 0;
        };
        let before = sessions.len();
        sessions.retain(|_, s| s.session.expires_at_ms >= now_ms);
        before.saturating_sub(sessions.len())
    }

    /// Deletes up to `limit` stored sessions that expired before `now_ms`,
    /// with their expiry index entries, in the order they expired (the
    /// worker calls this, so sessions never used again do not stay in
    /// storage). Returns how many were deleted.
    pub async fn prune_stored_sessions(
        &self,
        storage: &dyn Storage,
        now_ms: u64,
        limit: usize,
    ) -> Result<usize, StorageError> {
        // A session is valid up to and including its expiry millisecond.
        let bound = lease_expiry_bound(now_ms.saturating_sub(1));
        let expired = storage
            .scan(
                Keyspace::SessionExpiry,
                KeyRange::Between {
                    start: &[],
                    end: Some(&bound),
                },
                // Two deletes per session in one batch.
                limit.clamp(1, MAX_SCAN.min(crate::storage::MAX_BATCH_OPS / 2)),
            )
            .await?;
        if expired.is_empty() {
            return Ok(0);
        }
        let mut batch = WriteBatch::new();
        for (key, _) in &expired {
            batch.delete(Keyspace::SessionExpiry, key)?;
            // The store key follows the time; a malformed entry only
            // loses its index entry.
            if let Some((_, hash)) = parse_lease_expiry_key(key) {
                batch.delete(Keyspace::Sessions, hash)?;
            }
        }
        storage.commit(batch).await?;
        Ok(expired.len())
    }

    /// A random lease suffix (128 bits, hex).
    pub fn random_id(&self) -> Result<String, Denial> {
        let mut bytes = [0u8; 16];
        self.rng
            .fill(&mut bytes)
            .map_err(|_| deny(Stage::Internal, "random number generator failed"))?;
        Ok(hex::encode(bytes))
    }

    /// The vault's random source.
    pub fn rng(&self) -> &SystemRandom {
        &self.rng
    }
}

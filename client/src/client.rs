//! [`Client`]: attestation sessions, releases, and the background tasks
//! that renew leases and re-attest before a session expires.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyward_attest::instance::{POP_ID_LEN, PopProof, PopRequest, nonce_message, qualifying_data};
use keyward_hardware::PcrSelection;
use ring::rand::{SecureRandom as _, SystemRandom};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, broadcast};
use zeroize::Zeroizing;

use crate::builder::{ClientBuilder, InstanceKey, read_bounded};
use crate::error::ClientError;
use crate::quoter::Quoter;
use crate::secret::{
    Credential, IdentityToken, KvSecret, Lease, LeaseEvent, LeaseShared, RevokedReason,
    SecretString,
};
use crate::transport::{self, Auth};

/// Largest workload log sent (the vault's own cap on the decoded log).
const MAX_WORKLOAD_LOG: u64 = 1 << 20;
/// Largest boot log sent (the vault's `MAX_BOOT_LOG`).
const MAX_BOOT_LOG: u64 = 1 << 20;
/// Largest nonce accepted from the vault (it issues 32 + 8 + 32 bytes).
const MAX_NONCE: usize = 128;
/// Longest secret path accepted.
const MAX_PATH: usize = 512;
/// Events kept for slow watchers before the oldest are dropped.
const EVENT_BUFFER: usize = 256;
/// Renewal retry backoff bounds when the vault is unreachable.
const RETRY_MIN: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What [`ClientBuilder::build`] checked and resolved.
pub(crate) struct Config {
    pub(crate) http: reqwest::Client,
    /// Base URL, no trailing slash.
    pub(crate) vault: String,
    /// Path part of the base URL (what the vault sees before `/v1`).
    pub(crate) base_path: String,
    pub(crate) key: InstanceKey,
    pub(crate) host_id: String,
    pub(crate) quoter: Arc<dyn Quoter>,
    pub(crate) workload_log: PathBuf,
    pub(crate) boot_log: Option<PathBuf>,
    pub(crate) selection: Vec<PcrSelection>,
}

/// An attestation session: its token proves nothing without the instance
/// key's proof of possession, but it is still kept wiped and out of `Debug`.
struct Session {
    token: Zeroizing<String>,
    expires_at_ms: u64,
    /// Local time after which the client attests again (2/3 of the TTL).
    refresh_at_ms: u64,
}

struct Inner {
    config: Config,
    session: Mutex<Option<Arc<Session>>>,
    events: broadcast::Sender<LeaseEvent>,
    rng: SystemRandom,
    refresher_running: AtomicBool,
}

/// The Keyward client an agent links: it attests (challenge → quote →
/// evidence → session) by itself, proves possession of the instance key on
/// every request, renews leases in the background and re-attests before the
/// session expires.
///
/// Cheap to clone (one shared state). Background tasks hold only weak
/// references: they stop when the last clone is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("vault", &self.inner.config.vault)
            .field("host_id", &self.inner.config.host_id)
            .field("instance_key", &self.inner.config.key)
            .field("quoter", &self.inner.config.quoter)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Secret paths travel in the URL: letters, digits, `_ - .`, non-empty
/// segments, no `.`/`..` segments.
fn check_path(path: &str) -> Result<(), ClientError> {
    let ok = !path.is_empty()
        && path.len() <= MAX_PATH
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
    if ok {
        Ok(())
    } else {
        Err(ClientError::InvalidArgument {
            what: "secret path: segments of [A-Za-z0-9_.-], no empty, `.` or `..` segments",
        })
    }
}

fn protocol(what: &'static str) -> ClientError {
    ClientError::Protocol { what }
}

#[derive(Deserialize)]
struct ChallengeAnswer {
    nonce: String,
}

#[derive(Deserialize)]
struct SessionView {
    attested_at_ms: u64,
    expires_at_ms: u64,
}

#[derive(Deserialize)]
struct AttestAnswer {
    token: SecretString,
    session: SessionView,
}

#[derive(Deserialize)]
struct DatabaseAnswer {
    lease_id: String,
    lease_duration: u64,
    renewable: bool,
    username: String,
    password: SecretString,
}

#[derive(Deserialize)]
struct IdentityAnswer {
    lease_id: String,
    token: SecretString,
    expires_at: u64,
}

#[derive(Deserialize)]
struct RenewAnswer {
    expires_at_ms: u64,
    max_expires_at_ms: u64,
}

/// Why a renewal failed.
enum RenewFailure {
    /// Attesting again (needed to renew past the session) failed.
    Attest(ClientError),
    /// The renewal request failed.
    Renew(ClientError),
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    pub(crate) fn new(config: Config) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            inner: Arc::new(Inner {
                config,
                session: Mutex::new(None),
                events,
                rng: SystemRandom::new(),
                refresher_running: AtomicBool::new(false),
            }),
        }
    }

    /// Lease events (renewed, revoked, expired) and re-attestations, from
    /// now on. A receiver that falls more than 256 events behind loses the
    /// oldest (`RecvError::Lagged`).
    pub fn watch(&self) -> broadcast::Receiver<LeaseEvent> {
        self.inner.events.subscribe()
    }

    /// Attests now, replacing the current session; returns the new
    /// session's expiry (milliseconds since the Unix epoch). Releases attest
    /// by themselves when needed; this is for agents that want to fail fast
    /// at startup.
    pub async fn attest(&self) -> Result<u64, ClientError> {
        let mut slot = self.inner.session.lock().await;
        let session = self.inner.install_session(&mut slot).await?;
        self.inner.ensure_refresher();
        Ok(session.expires_at_ms)
    }

    /// The current session's expiry, if the client holds one.
    pub async fn session_expires_at_ms(&self) -> Option<u64> {
        self.inner
            .session
            .lock()
            .await
            .as_ref()
            .map(|s| s.expires_at_ms)
    }

    /// Reads a kv secret: `path` is under the kv engine (`app/db` reads
    /// `kv/app/db`).
    pub async fn kv(&self, path: &str) -> Result<KvSecret, ClientError> {
        check_path(path)?;
        let full = format!("kv/{path}");
        let bytes = self.inner.release_raw(&full, b"{}".to_vec()).await?;
        let mut answer: Value =
            serde_json::from_slice(&bytes).map_err(|_| protocol("kv answer is not JSON"))?;
        let version = answer
            .get("version")
            .and_then(Value::as_u64)
            .ok_or(protocol("kv answer without version"))?;
        let Some(Value::Object(map)) = answer.get_mut("data").map(Value::take) else {
            return Err(protocol("kv answer without a data object"));
        };
        let data = map
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    // Moved, not copied, into the wiped buffer.
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, SecretString::new(text))
            })
            .collect::<BTreeMap<_, _>>();
        Ok(KvSecret {
            path: full,
            version,
            data,
        })
    }

    /// Releases a database credential (`database/postgres/<role>`); the
    /// lease is renewed in the background while the returned [`Lease`] is
    /// held.
    pub async fn release(&self, path: &str) -> Result<Lease<Credential>, ClientError> {
        check_path(path)?;
        if !path.starts_with("database/") {
            return Err(ClientError::InvalidArgument {
                what: "release takes a database/… path; use kv or identity_token",
            });
        }
        let bytes = self.inner.release_raw(path, b"{}".to_vec()).await?;
        let answer: DatabaseAnswer = serde_json::from_slice(&bytes)
            .map_err(|_| protocol("database answer does not have the expected fields"))?;
        let expires = now_ms().saturating_add(answer.lease_duration.saturating_mul(1000));
        let shared = Arc::new(LeaseShared::new(answer.lease_id, answer.renewable, expires));
        self.spawn_lease_task(&shared);
        Ok(Lease {
            shared,
            value: Credential {
                username: answer.username,
                password: answer.password,
            },
        })
    }

    /// Releases a workload identity token for `audience` (not renewable:
    /// ask again before it expires; an `Expired` event says when).
    pub async fn identity_token(
        &self,
        audience: &str,
    ) -> Result<Lease<IdentityToken>, ClientError> {
        if audience.is_empty() || audience.len() > 1024 {
            return Err(ClientError::InvalidArgument {
                what: "audience: 1 to 1024 bytes",
            });
        }
        let body = json!({ "audience": audience }).to_string().into_bytes();
        let bytes = self.inner.release_raw("identity/token", body).await?;
        let answer: IdentityAnswer = serde_json::from_slice(&bytes)
            .map_err(|_| protocol("identity answer does not have the expected fields"))?;
        let shared = Arc::new(LeaseShared::new(
            answer.lease_id,
            false,
            answer.expires_at.saturating_mul(1000),
        ));
        self.spawn_lease_task(&shared);
        Ok(Lease {
            shared,
            value: IdentityToken {
                token: answer.token,
                expires_at: answer.expires_at,
            },
        })
    }

    fn spawn_lease_task(&self, shared: &Arc<LeaseShared>) {
        tokio::spawn(lease_task(
            Arc::downgrade(&self.inner),
            Arc::downgrade(shared),
            shared.id.clone(),
            shared.renewable,
        ));
    }
}

impl Inner {
    /// A usable session valid past `need_until_ms`, attesting if needed.
    async fn session(self: &Arc<Self>, need_until_ms: u64) -> Result<Arc<Session>, ClientError> {
        let mut slot = self.session.lock().await;
        if let Some(session) = slot.as_ref()
            && now_ms() < session.refresh_at_ms
            && session.expires_at_ms > need_until_ms
        {
            return Ok(Arc::clone(session));
        }
        let session = self.install_session(&mut slot).await?;
        self.ensure_refresher();
        Ok(session)
    }

    /// Attests and stores the new session (the caller holds the lock, so
    /// concurrent callers wait for one attestation instead of each quoting).
    async fn install_session(
        self: &Arc<Self>,
        slot: &mut Option<Arc<Session>>,
    ) -> Result<Arc<Session>, ClientError> {
        let result = self.attest_once().await;
        let session = match result {
            Ok(s) => Arc::new(s),
            Err(e) => {
                if matches!(e, ClientError::Denied { .. }) {
                    // The vault no longer trusts this workload: do not keep
                    // using the old session.
                    *slot = None;
                }
                return Err(e);
            }
        };
        let replaced = slot.replace(Arc::clone(&session)).is_some();
        if replaced {
            let _ = self.events.send(LeaseEvent::Reattested {
                session_expires_at_ms: session.expires_at_ms,
            });
        }
        Ok(session)
    }

    /// Starts the re-attestation task unless it runs.
    fn ensure_refresher(self: &Arc<Self>) {
        if !self.refresher_running.swap(true, Ordering::AcqRel) {
            tokio::spawn(refresh_task(Arc::downgrade(self)));
        }
    }

    /// challenge → quote → evidence → session.
    async fn attest_once(&self) -> Result<Session, ClientError> {
        let config = &self.config;
        let challenge = transport::post(
            &config.http,
            &format!("{}/v1/attest/challenge", config.vault),
            Vec::new(),
            None,
            false,
        )
        .await?;
        let challenge: ChallengeAnswer =
            serde_json::from_slice(&challenge).map_err(|_| protocol("challenge answer"))?;
        if challenge.nonce.len() > MAX_NONCE.saturating_mul(2) {
            return Err(protocol("nonce longer than 128 bytes"));
        }
        let nonce = hex::decode(&challenge.nonce).map_err(|_| protocol("nonce is not hex"))?;
        let qd = qualifying_data(&nonce, &config.key.public);
        let quoter = Arc::clone(&config.quoter);
        let selection = config.selection.clone();
        let quote = tokio::task::spawn_blocking(move || quoter.quote(&qd, &selection))
            .await
            .map_err(|_| ClientError::QuoteTaskFailed)??;
        let mut banks: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
        for pcr in &quote.pcrs {
            banks
                .entry(pcr.bank.name())
                .or_default()
                .insert(pcr.index.to_string(), hex::encode(&pcr.digest));
        }
        let workload_log = read_bounded(&config.workload_log, MAX_WORKLOAD_LOG)?;
        let mut evidence = json!({
            "host_id": config.host_id,
            "nonce": challenge.nonce,
            "quote": STANDARD.encode(&quote.attest),
            "signature": STANDARD.encode(&quote.signature),
            "pcrs": banks,
            "workload_log": STANDARD.encode(workload_log.as_slice()),
            "instance_key": STANDARD.encode(config.key.public),
            "nonce_signature": STANDARD.encode(config.key.pair.sign(&nonce_message(&nonce))),
        });
        if let (Some(path), Value::Object(fields)) = (&config.boot_log, &mut evidence) {
            let log = read_bounded(path, MAX_BOOT_LOG)?;
            fields.insert("boot_log".into(), json!(STANDARD.encode(log.as_slice())));
        }
        let answer = transport::post(
            &config.http,
            &format!("{}/v1/attest", config.vault),
            evidence.to_string().into_bytes(),
            None,
            true,
        )
        .await?;
        let received = now_ms();
        let answer: AttestAnswer =
            serde_json::from_slice(&answer).map_err(|_| protocol("attest answer"))?;
        let ttl = answer
            .session
            .expires_at_ms
            .saturating_sub(answer.session.attested_at_ms);
        Ok(Session {
            token: Zeroizing::new(answer.token.expose_secret().to_owned()),
            expires_at_ms: answer.session.expires_at_ms,
            // Measured on the local clock from when the answer arrived, so
            // clock skew with the vault does not matter.
            refresh_at_ms: received.saturating_add(ttl.saturating_mul(2) / 3),
        })
    }

    /// POSTs `body` to `/v1/{path}` with the session token and a fresh proof
    /// of possession.
    async fn session_post(
        self: &Arc<Self>,
        path: &str,
        body: Vec<u8>,
        need_until_ms: u64,
    ) -> Result<Zeroizing<Vec<u8>>, RenewFailure> {
        let session = self
            .session(need_until_ms)
            .await
            .map_err(RenewFailure::Attest)?;
        let config = &self.config;
        let signed_path = format!("{}/v1/{path}", config.base_path);
        let mut id = [0u8; POP_ID_LEN];
        self.rng
            .fill(&mut id)
            .map_err(|_| RenewFailure::Renew(protocol("no randomness for the proof id")))?;
        let proof = PopProof::sign(
            &config.key.pair,
            &PopRequest {
                method: "POST",
                path: &signed_path,
                body: &body,
                token: session.token.as_bytes(),
            },
            now_ms(),
            id,
        );
        transport::post(
            &config.http,
            &format!("{}/v1/{path}", config.vault),
            body,
            Some(Auth {
                token: &session.token,
                proof,
            }),
            false,
        )
        .await
        .map_err(RenewFailure::Renew)
    }

    async fn release_raw(
        self: &Arc<Self>,
        path: &str,
        body: Vec<u8>,
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        self.session_post(&format!("secrets/{path}"), body, 0)
            .await
            .map_err(|e| match e {
                RenewFailure::Attest(e) | RenewFailure::Renew(e) => e,
            })
    }

    /// Renews `lease_id`, which now expires at `expires_at_ms`: the session
    /// must outlive that, or the vault could not extend it.
    async fn renew(
        self: &Arc<Self>,
        lease_id: &str,
        expires_at_ms: u64,
    ) -> Result<RenewAnswer, RenewFailure> {
        let body = json!({ "lease_id": lease_id }).to_string().into_bytes();
        let bytes = self
            .session_post("sys/leases/renew", body, expires_at_ms)
            .await?;
        serde_json::from_slice(&bytes).map_err(|_| RenewFailure::Renew(protocol("renewal answer")))
    }

    fn jitter(&self, delay: Duration) -> Duration {
        jitter_of(&self.rng, delay)
    }

    fn emit(&self, event: LeaseEvent) {
        // No receiver is not an error: nobody is watching.
        let _ = self.events.send(event);
    }
}

/// `delay` ± 10 %, so that many agents do not renew in step.
fn jitter_of(rng: &SystemRandom, delay: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    if rng.fill(&mut bytes).is_err() {
        return delay;
    }
    let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    let span = millis / 5; // 20 % wide, centred
    let offset = u64::from_le_bytes(bytes)
        .checked_rem(span.saturating_add(1))
        .unwrap_or(0);
    Duration::from_millis(millis.saturating_sub(millis / 10).saturating_add(offset))
}

fn until(deadline_ms: u64) -> Duration {
    Duration::from_millis(deadline_ms.saturating_sub(now_ms()))
}

/// Re-attests at 2/3 of each session's lifetime while the client lives.
async fn refresh_task(client: Weak<Inner>) {
    let mut failures: u32 = 0;
    loop {
        let wake_at = {
            let Some(inner) = client.upgrade() else {
                return;
            };
            let slot = inner.session.lock().await;
            match slot.as_ref() {
                Some(s) => s.refresh_at_ms,
                None => {
                    inner.refresher_running.store(false, Ordering::Release);
                    return;
                }
            }
        };
        tokio::time::sleep(until(wake_at)).await;
        let Some(inner) = client.upgrade() else {
            return;
        };
        let mut slot = inner.session.lock().await;
        let due = slot.as_ref().is_some_and(|s| now_ms() >= s.refresh_at_ms);
        if !due {
            continue;
        }
        match inner.install_session(&mut slot).await {
            Ok(_) => failures = 0,
            Err(ClientError::Denied { .. }) => {
                // install_session dropped the session; the next request
                // attests (and learns the verdict) itself.
                inner.refresher_running.store(false, Ordering::Release);
                return;
            }
            Err(_) => {
                failures = failures.saturating_add(1);
                drop(slot);
                drop(inner);
                let backoff = RETRY_MIN
                    .saturating_mul(2u32.saturating_pow(failures.min(6)))
                    .min(RETRY_MAX);
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// Renews one lease at ~2/3 of its remaining time (± jitter) until it is
/// dropped, revoked, or expires.
async fn lease_task(client: Weak<Inner>, lease: Weak<LeaseShared>, id: String, renewable: bool) {
    let mut can_renew = renewable;
    let mut failures: u32 = 0;
    loop {
        let expires = match lease.upgrade() {
            Some(shared) => shared.expires_at_ms(),
            None => return,
        };
        let now = now_ms();
        if now >= expires {
            if let Some(shared) = lease.upgrade() {
                shared.mark_expired();
            }
            if let Some(inner) = client.upgrade() {
                inner.emit(LeaseEvent::Expired { lease_id: id });
            }
            return;
        }
        if !can_renew {
            tokio::time::sleep(until(expires)).await;
            continue;
        }
        let delay = {
            let Some(inner) = client.upgrade() else {
                return;
            };
            let remaining = Duration::from_millis(expires.saturating_sub(now));
            if failures == 0 {
                inner.jitter(remaining.saturating_mul(2) / 3)
            } else {
                RETRY_MIN
                    .saturating_mul(2u32.saturating_pow(failures.min(6)))
                    .min(RETRY_MAX)
                    .min(remaining / 2)
            }
        };
        tokio::time::sleep(delay.max(Duration::from_millis(20))).await;
        let (Some(inner), Some(shared)) = (client.upgrade(), lease.upgrade()) else {
            return;
        };
        let before = shared.expires_at_ms();
        match inner.renew(&id, before).await {
            Ok(answer) => {
                failures = 0;
                if answer.expires_at_ms > before {
                    shared.set_expires_at_ms(answer.expires_at_ms);
                    inner.emit(LeaseEvent::Renewed {
                        lease_id: id.clone(),
                        expires_at_ms: answer.expires_at_ms,
                    });
                }
                if answer.expires_at_ms >= answer.max_expires_at_ms {
                    // Its maximum TTL: nothing more to renew; it expires.
                    can_renew = false;
                }
            }
            Err(RenewFailure::Renew(ClientError::Denied { request_id })) => {
                shared.mark_revoked();
                inner.emit(LeaseEvent::Revoked {
                    lease_id: id,
                    reason: RevokedReason::RenewalDenied { request_id },
                });
                return;
            }
            Err(RenewFailure::Attest(ClientError::Denied { request_id })) => {
                shared.mark_revoked();
                inner.emit(LeaseEvent::Revoked {
                    lease_id: id,
                    reason: RevokedReason::AttestationDenied { request_id },
                });
                return;
            }
            Err(RenewFailure::Renew(_) | RenewFailure::Attest(_)) => {
                // Unreachable, or a TPM hiccup: retry with backoff until the
                // lease expires.
                failures = failures.saturating_add(1);
            }
        }
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretString::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert!(check_path("database/postgres/readonly").is_ok());
        assert!(check_path("app/db.v2").is_ok());
        for bad in ["", "a//b", "../etc", "a/./b", "a b", "a?x=1", "a%2f", "/a"] {
            assert!(
                matches!(check_path(bad), Err(ClientError::InvalidArgument { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let rng = SystemRandom::new();
        let base = Duration::from_millis(1000);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let jittered = jitter_of(&rng, base).as_millis();
            assert!((900..=1100).contains(&jittered), "{jittered}");
            seen.insert(jittered);
        }
        // It does vary (1000 draws over 201 values).
        assert!(seen.len() > 50, "{}", seen.len());
        assert_eq!(jitter_of(&rng, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn secrets_debug_as_redacted() {
        let secret = SecretString::new("hunter2".into());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        let credential = Credential {
            username: "kw_role".into(),
            password: SecretString::new("hunter2".into()),
        };
        let text = format!("{credential:?}");
        assert!(
            text.contains("kw_role") && !text.contains("hunter2"),
            "{text}"
        );
    }
}

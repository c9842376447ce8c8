//! `POST /v1/attest` evidence and its checks, in the order of the design
//! brief §2, stopping at the first failure:
//!
//! 1. nonce (issued here, unexpired, unused);
//! 2. host enrolled and active, with a boot policy;
//! 3. quote ([`keyward_attest::quote::verify_quote`] with the host's AK,
//!    qualifying data = SHA-256(nonce ‖ instance key));
//! 4. boot policy (the boot log replayed against the quoted PCRs, then the
//!    host's rules; or golden PCRs);
//! 5. the workload CEL replays to the quoted workload PCR;
//! 6. exactly one launch record for the instance key, and the instance
//!    key's signature over the nonce;
//! 7. the record's image and model are registered, unrevoked, and admitted
//!    by their signing policy as it stands now.
//!
//! The result is an [`AttestedWorkload`], which only [`verify`] makes: the
//! session store requires one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyward_attest::cel::{LaunchRecord, WorkloadLog};
use keyward_attest::digest::{HashAlg, PcrValues};
use keyward_attest::eventlog::BootLog;
use keyward_attest::instance::{
    INSTANCE_KEY_LEN, instance_key_sha256, parse_instance_key, qualifying_data,
    verify_nonce_signature,
};
use keyward_attest::quote::{QuoteError, QuoteKey, verify_quote};
use keyward_attest::sigstore::{CertificateClaims, Signer};
use keyward_attest::tpm::public::TpmPublic;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::nonce::{self, CheckedNonce};
use super::{Denial, Stage};
use crate::artifacts::{self, ArtifactRecord, ArtifactState, Kind, SignerRecord};
use crate::hosts::HostState;
use crate::hosts::{HostStore, HostStoreError};
use crate::storage::Storage;

/// Largest boot log accepted (decoded).
pub const MAX_BOOT_LOG: usize = 1 << 20;
/// Largest quote structure accepted (decoded).
pub const MAX_QUOTE: usize = 4096;
/// Most PCR values per request.
pub const MAX_PCRS: usize = 48;

/// The evidence an agent sends.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    /// The enrolled host.
    pub host_id: String,
    /// The nonce from `/v1/attest/challenge` (hex).
    pub nonce: String,
    /// TPMS_ATTEST of the quote, base64.
    pub quote: String,
    /// TPMT_SIGNATURE of the quote, base64.
    pub signature: String,
    /// Quoted PCR values: bank → index → hex.
    #[schema(value_type = Object)]
    pub pcrs: BTreeMap<String, BTreeMap<String, String>>,
    /// The boot event log (TCG PC Client), base64; omitted only under a
    /// golden-PCR policy.
    #[serde(default)]
    pub boot_log: Option<String>,
    /// The workload Canonical Event Log, base64.
    pub workload_log: String,
    /// The instance public key (Ed25519, 32 bytes), base64.
    pub instance_key: String,
    /// The instance key's signature over the nonce, base64.
    pub nonce_signature: String,
}

/// A workload that passed every check. Only [`verify`] makes one.
#[derive(Debug, Clone)]
pub struct AttestedWorkload {
    pub(super) host_id: String,
    pub(super) host_name: String,
    pub(super) host_labels: BTreeMap<String, String>,
    pub(super) instance_key: [u8; INSTANCE_KEY_LEN],
    pub(super) launch: LaunchRecord,
    pub(super) image: Arc<ArtifactRecord>,
    pub(super) model: Arc<ArtifactRecord>,
    pub(super) nonce: CheckedNonce,
}

impl AttestedWorkload {
    /// The nonce this attestation answered (consumed with the session).
    pub fn nonce(&self) -> &CheckedNonce {
        &self.nonce
    }

    /// The host id.
    pub fn host_id(&self) -> &str {
        &self.host_id
    }
}

fn deny(stage: Stage, reason: impl Into<String>) -> Denial {
    Denial {
        stage,
        reason: reason.into(),
    }
}

fn b64(field: &str, text: &str, max: usize) -> Result<Vec<u8>, Denial> {
    // Base64 grows by 4/3: refuse before decoding anything larger.
    if text.len() > max.saturating_mul(4) / 3 + 4 {
        return Err(deny(
            Stage::Request,
            format!("{field}: larger than {max} bytes"),
        ));
    }
    STANDARD
        .decode(text)
        .map_err(|e| deny(Stage::Request, format!("{field}: not base64: {e}")))
}

fn pcr_values(pcrs: &BTreeMap<String, BTreeMap<String, String>>) -> Result<PcrValues, Denial> {
    let mut out = PcrValues::new();
    let mut count = 0usize;
    for (bank, values) in pcrs {
        let alg = HashAlg::from_name(bank)
            .ok_or_else(|| deny(Stage::Request, format!("pcrs: unknown bank {bank:?}")))?;
        for (index, value) in values {
            count = count.saturating_add(1);
            if count > MAX_PCRS {
                return Err(deny(Stage::Request, format!("pcrs: more than {MAX_PCRS}")));
            }
            let index: u32 = index
                .parse()
                .map_err(|_| deny(Stage::Request, format!("pcrs: bad index {index:?}")))?;
            let digest = hex::decode(value)
                .map_err(|_| deny(Stage::Request, format!("pcrs: {bank}/{index} not hex")))?;
            out.insert(alg, index, digest)
                .map_err(|e| deny(Stage::Request, format!("pcrs: {e}")))?;
        }
    }
    Ok(out)
}

/// The keyless claims of a stored signer.
pub(crate) fn signer_of(record: &SignerRecord) -> Signer {
    match record {
        SignerRecord::Keyless {
            issuer,
            subject,
            claims,
        } => Signer::Keyless {
            issuer: issuer.clone(),
            subject: subject.clone(),
            claims: Box::new(CertificateClaims::from_pairs(
                claims.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )),
        },
        SignerRecord::Key { key_id } => Signer::Key {
            key_id: key_id.clone(),
        },
        SignerRecord::Certificate { ca_id, .. } => Signer::Certificate {
            ca_id: ca_id.clone(),
            certificate_sha256: [0; 32],
        },
    }
}

/// Most digests the [`AdmissionMemo`] remembers; past that it starts over.
const MAX_ADMISSIONS: usize = 4096;

/// One admission: the stored artifact and policy bytes that were found
/// admissible, and the record parsed from the former.
#[derive(Debug)]
struct Admission {
    artifact: Vec<u8>,
    policy: Vec<u8>,
    record: Arc<ArtifactRecord>,
}

/// Remembers, per artifact digest, the stored bytes of the artifact record
/// and of its signing policy that [`check_artifact`] last admitted.
///
/// Every check still reads both values from storage. Only when both are
/// byte for byte what was admitted before does it skip parsing them and
/// evaluating the policy, which are pure functions of those bytes. A
/// revocation, a re-registration or a policy change writes a different
/// value, so it is checked in full. Attestation reads the same few
/// artifacts over and over, and parsing them was about 5% of an attest's
/// CPU (docs/benchmarks.md).
#[derive(Debug, Default)]
pub struct AdmissionMemo {
    entries: Mutex<HashMap<String, Arc<Admission>>>,
}

impl AdmissionMemo {
    fn get(&self, digest: &str) -> Option<Arc<Admission>> {
        self.entries.lock().ok()?.get(digest).cloned()
    }

    fn insert(&self, digest: &str, admission: Admission) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ADMISSIONS && !entries.contains_key(digest) {
                entries.clear();
            }
            entries.insert(digest.to_owned(), Arc::new(admission));
        }
    }

    /// How many digests are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or_default()
    }
}

/// Loads an artifact and checks it is registered as `kind`, active, and
/// admitted by its signing policy as it stands now.
pub(crate) async fn check_artifact(
    storage: &dyn Storage,
    memo: &AdmissionMemo,
    kind: Kind,
    digest: &str,
) -> Result<Arc<ArtifactRecord>, Denial> {
    let what = kind.as_str();
    let artifact = match artifacts::artifact_bytes(storage, digest).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(deny(
                Stage::Artifact,
                format!("{what} {digest} is not registered"),
            ));
        }
        Err(e) => return Err(deny(Stage::Internal, format!("{what} {digest}: {e}"))),
    };
    let remembered = memo.get(digest).filter(|a| a.artifact == artifact);
    let record = match &remembered {
        Some(admission) => Arc::clone(&admission.record),
        None => Arc::new(
            artifacts::decode_artifact(&artifact)
                .map_err(|e| deny(Stage::Internal, format!("{what} {digest}: {e}")))?,
        ),
    };
    if record.kind != kind {
        return Err(deny(
            Stage::Artifact,
            format!(
                "{digest} is registered as a {}, not a {what}",
                record.kind.as_str()
            ),
        ));
    }
    if record.state == ArtifactState::Revoked {
        return Err(deny(Stage::Artifact, format!("{what} {digest} is revoked")));
    }
    let policy = match artifacts::policy_bytes(storage, kind, &record.policy).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return Err(deny(
                Stage::Artifact,
                format!(
                    "{what} {digest}: its signing policy {:?} no longer exists",
                    record.policy
                ),
            ));
        }
        Err(e) => return Err(deny(Stage::Internal, e.to_string())),
    };
    if remembered.is_some_and(|a| a.policy == policy) {
        return Ok(record);
    }
    let signing_policy = artifacts::decode_policy(&policy)
        .and_then(|p| p.signing_policy())
        .map_err(|e| deny(Stage::Internal, format!("policy {}: {e}", record.policy)))?;
    if !signing_policy.admits(&signer_of(&record.signer)) {
        return Err(deny(
            Stage::Artifact,
            format!(
                "{what} {digest}: signer {} is no longer allowed by policy {:?}",
                record.signer.summary(),
                record.policy
            ),
        ));
    }
    memo.insert(
        digest,
        Admission {
            artifact,
            policy,
            record: Arc::clone(&record),
        },
    );
    Ok(record)
}

/// Which leases a failed re-attestation takes down with it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeScope {
    /// None: the failure proves nothing about the host's workloads
    /// (anyone can send evidence that fails before the quote verifies; a
    /// process without a launch record is not a workload).
    Nothing,
    /// Every lease of the host: its boot state is outside policy, or its
    /// workload log no longer replays to the quoted PCR.
    Host(String),
    /// The leases of one workload instance on the host: its image or model
    /// is no longer acceptable.
    Instance {
        /// The host.
        host_id: String,
        /// The launch record's instance id.
        instance_id: String,
    },
}

/// A refusal and what it revokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Where and why.
    pub denial: Denial,
    /// What it revokes.
    pub scope: RevokeScope,
}

/// What the checks read.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    /// The vault's storage (nonces, artifacts, signing policies).
    pub storage: &'a dyn Storage,
    /// Enrolled hosts.
    pub hosts: &'a HostStore,
    /// Artifact admissions checked before.
    pub admitted: &'a AdmissionMemo,
}

impl std::fmt::Debug for Stores<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

/// Runs every check on `evidence` (see the module docs). The nonce is not
/// consumed here: the caller consumes it in the batch that creates the
/// session. A failure says which leases it revokes.
pub async fn verify(
    evidence: &Evidence,
    nonce_key: &ring::hmac::Key,
    stores: Stores<'_>,
    workload_pcr: u8,
    now_ms: u64,
) -> Result<AttestedWorkload, Rejection> {
    let mut progress = Progress::default();
    match checks(
        evidence,
        nonce_key,
        stores,
        workload_pcr,
        now_ms,
        &mut progress,
    )
    .await
    {
        Ok(attested) => Ok(attested),
        Err(denial) => {
            let host = || evidence.host_id.clone();
            let scope = match (denial.stage, progress.instance_id) {
                (Stage::BootPolicy, _) => RevokeScope::Host(host()),
                (Stage::WorkloadLog, _) if !progress.log_replayed => RevokeScope::Host(host()),
                (Stage::Artifact, Some(instance_id)) => RevokeScope::Instance {
                    host_id: host(),
                    instance_id,
                },
                _ => RevokeScope::Nothing,
            };
            Err(Rejection { denial, scope })
        }
    }
}

/// How far the checks got.
#[derive(Debug, Default)]
struct Progress {
    log_replayed: bool,
    instance_id: Option<String>,
}

async fn checks(
    evidence: &Evidence,
    nonce_key: &ring::hmac::Key,
    stores: Stores<'_>,
    workload_pcr: u8,
    now_ms: u64,
    progress: &mut Progress,
) -> Result<AttestedWorkload, Denial> {
    let Stores {
        storage,
        hosts,
        admitted,
    } = stores;
    // 1. Nonce: ours, fresh, unused (the batch that consumes it is the
    //    authority against races; this read reports plain replays first).
    let nonce = nonce::check(nonce_key, &evidence.nonce, now_ms)
        .map_err(|e| deny(Stage::Nonce, e.to_string()))?;
    match storage.get(nonce::USED, &nonce.used_key()).await {
        Ok(None) => {}
        Ok(Some(_)) => return Err(deny(Stage::Nonce, nonce::NonceError::Used.to_string())),
        Err(e) => return Err(deny(Stage::Internal, e.to_string())),
    }

    // 2. Host.
    let host = match hosts.get(&evidence.host_id).await {
        Ok(host) => host,
        Err(HostStoreError::NotFound { .. }) => {
            return Err(deny(
                Stage::Host,
                format!("host {:?} is not enrolled", evidence.host_id),
            ));
        }
        Err(e) => return Err(deny(Stage::Internal, e.to_string())),
    };
    if host.state != HostState::Active {
        return Err(deny(
            Stage::Host,
            format!("host {} is {}", host.id, host.state.as_str()),
        ));
    }
    let Some(boot_policy) = host.boot_policy.as_ref() else {
        return Err(deny(
            Stage::Host,
            format!("host {} has no boot policy", host.id),
        ));
    };

    // 3. Quote.
    let instance_key = parse_instance_key(&b64("instance_key", &evidence.instance_key, 64)?)
        .map_err(|e| deny(Stage::Request, e.to_string()))?;
    let ak_public = STANDARD
        .decode(&host.ak_public)
        .map_err(|e| deny(Stage::Internal, format!("stored AK: {e}")))?;
    let ak = TpmPublic::parse(&ak_public)
        .map_err(|e| deny(Stage::Internal, format!("stored AK: {e}")))?;
    let attest = b64("quote", &evidence.quote, MAX_QUOTE)?;
    let signature = b64("signature", &evidence.signature, MAX_QUOTE)?;
    let pcrs = pcr_values(&evidence.pcrs)?;
    let expected = qualifying_data(nonce.bytes(), &instance_key);
    let quote = verify_quote(QuoteKey::Tpm(&ak), &attest, &signature, &pcrs, &expected).map_err(
        |e| match e {
            QuoteError::MalformedAttest { .. } | QuoteError::MalformedSignature { .. } => {
                deny(Stage::Request, e.to_string())
            }
            other => deny(Stage::Quote, other.to_string()),
        },
    )?;
    let quoted = quote.pcr_values();

    // 4. Boot policy.
    let boot_log = match &evidence.boot_log {
        None => None,
        Some(text) => {
            let bytes = b64("boot_log", text, MAX_BOOT_LOG)?;
            let log = BootLog::parse(&bytes)
                .map_err(|e| deny(Stage::Request, format!("boot_log: {e}")))?;
            Some(
                log.verify(quoted)
                    .map_err(|e| deny(Stage::BootPolicy, format!("boot log: {e}")))?,
            )
        }
    };
    boot_policy
        .evaluate(quoted, boot_log.as_ref())
        .map_err(|v| {
            let failures: Vec<String> = v.failures().iter().map(ToString::to_string).collect();
            deny(
                Stage::BootPolicy,
                format!("boot state outside policy: {}", failures.join("; ")),
            )
        })?;

    // 5. Workload log.
    let cel = b64(
        "workload_log",
        &evidence.workload_log,
        keyward_attest::cel::MAX_WORKLOAD_LOG_LEN,
    )?;
    let workload = WorkloadLog::parse(&cel, workload_pcr)
        .map_err(|e| deny(Stage::Request, format!("workload_log: {e}")))?
        .verify(quoted)
        .map_err(|e| deny(Stage::WorkloadLog, e.to_string()))?;
    progress.log_replayed = true;

    // 6. The instance's launch record and its key.
    let launch = workload
        .launch_record_for_key(&instance_key_sha256(&instance_key))
        .map_err(|e| deny(Stage::WorkloadLog, e.to_string()))?
        .clone();
    let nonce_signature = b64("nonce_signature", &evidence.nonce_signature, 128)?;
    verify_nonce_signature(&instance_key, nonce.bytes(), &nonce_signature)
        .map_err(|e| deny(Stage::WorkloadLog, e.to_string()))?;
    progress.instance_id = Some(launch.instance_id().to_owned());

    // 7. Artifacts.
    let image = check_artifact(storage, admitted, Kind::Image, launch.image_digest()).await?;
    let model = check_artifact(storage, admitted, Kind::Model, launch.model_digest()).await?;

    Ok(AttestedWorkload {
        host_id: host.id,
        host_name: host.name,
        host_labels: host.labels,
        instance_key,
        launch,
        image,
        model,
        nonce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::{PolicyRecord, Source};
    use crate::storage::{Keyspace, SledConfig, SledStorage, WriteBatch};

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn policy(subject: &str) -> PolicyRecord {
        PolicyRecord {
            name: "release".to_owned(),
            kind: Kind::Model,
            policy: serde_json::json!({"kind": "model",
                "predicate_types": [keyward_attest::sigstore::PREDICATE_MODEL_SIGNING_V1],
                "identities": [{"issuer": "https://issuer.example", "subject": subject}]}),
            updated_at: 0,
            updated_by: "t".to_owned(),
        }
    }

    async fn setup() -> SledStorage {
        let storage = SledStorage::open(&SledConfig::temporary()).unwrap();
        artifacts::store_policy(&storage, &policy("ci@example.com"))
            .await
            .unwrap();
        let record = ArtifactRecord {
            digest: DIGEST.to_owned(),
            kind: Kind::Model,
            name: Some("m".to_owned()),
            repository: None,
            source: Source::Bundle,
            policy: "release".to_owned(),
            signer: SignerRecord::Keyless {
                issuer: "https://issuer.example".to_owned(),
                subject: "ci@example.com".to_owned(),
                claims: BTreeMap::new(),
            },
            predicate_type: None,
            tlog: None,
            timestamps: Vec::new(),
            state: ArtifactState::Active,
            registered_at: 0,
            registered_by: "t".to_owned(),
            revoked_at: None,
            revoked_by: None,
            manifest: None,
        };
        let mut batch = WriteBatch::new();
        batch
            .put(
                Keyspace::Artifacts,
                DIGEST.as_bytes(),
                &serde_json::to_vec(&record).unwrap(),
            )
            .unwrap();
        storage.commit(batch).await.unwrap();
        storage
    }

    /// Asserts a denial at the artifact stage with exactly `reason`.
    fn assert_denied(result: Result<Arc<ArtifactRecord>, Denial>, reason: &str) {
        let denial = result.unwrap_err();
        assert_eq!(
            (denial.stage, denial.reason.as_str()),
            (Stage::Artifact, reason)
        );
    }

    /// A remembered admission is reused only while the stored artifact and
    /// policy are unchanged; every change is checked in full, with the same
    /// reasons as without the memo.
    #[tokio::test]
    async fn the_admission_memo_never_outlives_a_change() {
        let storage = setup().await;
        let memo = AdmissionMemo::default();
        let check = |kind| check_artifact(&storage, &memo, kind, DIGEST);
        let first = check(Kind::Model).await.unwrap();
        assert_eq!(memo.len(), 1);
        let again = check(Kind::Model).await.unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the parsed record is reused");

        // The kind is checked on a hit too.
        assert_denied(
            check(Kind::Image).await,
            &format!("{DIGEST} is registered as a model, not a image"),
        );

        // A narrowed policy denies at once, and widening it admits again.
        let set_subject = |subject: &'static str| {
            let storage = &storage;
            async move {
                artifacts::store_policy(storage, &policy(subject))
                    .await
                    .unwrap();
            }
        };
        set_subject("someone@example.com").await;
        assert_denied(
            check(Kind::Model).await,
            &format!(
                "model {DIGEST}: signer ci@example.com (https://issuer.example) \
                 is no longer allowed by policy \"release\""
            ),
        );
        set_subject("ci@example.com").await;
        check(Kind::Model).await.unwrap();

        // A deleted policy is missed, not remembered.
        let mut batch = WriteBatch::new();
        batch
            .delete(Keyspace::SigningPolicies, b"model/release")
            .unwrap();
        storage.commit(batch).await.unwrap();
        assert_denied(
            check(Kind::Model).await,
            &format!("model {DIGEST}: its signing policy \"release\" no longer exists"),
        );
        set_subject("ci@example.com").await;
        check(Kind::Model).await.unwrap();

        // A revocation denies at once.
        artifacts::revoke_artifact(&storage, DIGEST, 1, "t")
            .await
            .unwrap();
        assert_denied(
            check(Kind::Model).await,
            &format!("model {DIGEST} is revoked"),
        );
    }

    /// The memo holds at most [`MAX_ADMISSIONS`] digests.
    #[test]
    fn the_admission_memo_is_bounded() {
        let memo = AdmissionMemo::default();
        let record = Arc::new(
            serde_json::from_value::<ArtifactRecord>(serde_json::json!({
                "digest": DIGEST, "kind": "model", "name": null, "repository": null,
                "source": "bundle", "policy": "p", "signer": {"type": "key", "key_id": "k"},
                "predicate_type": null, "tlog": null, "timestamps": [], "state": "active",
                "registered_at": 0, "registered_by": "t", "revoked_at": null, "revoked_by": null
            }))
            .unwrap(),
        );
        for i in 0..=MAX_ADMISSIONS {
            memo.insert(
                &format!("sha256:{i:064x}"),
                Admission {
                    artifact: Vec::new(),
                    policy: Vec::new(),
                    record: Arc::clone(&record),
                },
            );
            assert!(memo.len() <= MAX_ADMISSIONS);
        }
        assert_eq!(memo.len(), 1);
    }
}

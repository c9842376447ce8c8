//! The Keyward client: what an agent links to receive secrets from a
//! Keyward vault on the strength of TPM attestation.
//!
//! # What it does
//! - attests by itself: `POST /v1/attest/challenge`, a TPM quote over the
//!   boot PCRs and the workload PCR with qualifying data = SHA-256(nonce ‖
//!   instance public key), then `POST /v1/attest` with the quote, PCR
//!   values, the boot log (when there is one), the workload CEL, the
//!   instance public key and its signature over the nonce;
//! - proves possession of the instance key on every session request (a
//!   fresh `Keyward-PoP` proof: current time, random 128-bit id, signature
//!   over method, path, body and token);
//! - releases kv secrets ([`Client::kv`]), database credentials
//!   ([`Client::release`]) and workload identity tokens
//!   ([`Client::identity_token`]);
//! - renews leases in the background at about 2/3 of their remaining time
//!   (± 10 % jitter), attests again at 2/3 of each session's lifetime (a
//!   lease cannot outlive its session), and reports what happens through
//!   [`Client::watch`]; a renewal refused with 403 means the lease was
//!   revoked (revocation follows attestation): the client reports
//!   [`LeaseEvent::Revoked`] and stops renewing it;
//! - keeps secret values in wiped buffers, redacted in `Debug`, never
//!   `Serialize`, reachable only through `expose_…` calls.
//!
//! # What it does not do
//! It decides nothing about trust: the vault verifies the evidence, and the
//! client only reports the uniform denial (with the request id to look up
//! in the audit log). It does not run a host daemon: [`DirectTpm`] quotes
//! in-process, and the [`Quoter`] trait is where a daemon client will plug
//! in. It does not launch workloads or write the workload log (`keyward
//! launch` does), enroll hosts (`keyward host enroll`), or cache secrets on
//! disk. Copies of secrets made by the HTTP stack are outside its reach.
//!
//! Nothing here is hand-rolled crypto: proofs and qualifying data come from
//! `keyward-attest` (the code the vault verifies with), signatures from
//! `ring`, TLS from rustls through reqwest.
//!
//! ```no_run
//! # async fn run() -> Result<(), keyward_client::ClientError> {
//! let client = keyward_client::Client::builder()
//!     .vault("https://vault.internal:8200")
//!     .ca_roots(std::fs::read("/etc/keyward/ca.pem").unwrap_or_default())
//!     .instance_key_from_env()
//!     .host_state_dir("/var/lib/keyward")
//!     .tpm("device:/dev/tpmrm0")
//!     .build()?;
//! let db = client.release("database/postgres/readonly").await?;
//! println!("user {}", db.secret().username());
//! # Ok(()) }
//! ```

mod builder;
mod client;
mod error;
mod quoter;
mod secret;
mod transport;

pub use builder::{
    CACERT_ENV, ClientBuilder, DEFAULT_BOOT_LOG, DEFAULT_PCRS, DEFAULT_TCTI, INSTANCE_KEY_ENV,
    STATE_DIR_ENV, TCTI_ENV, VAULT_ENV, WORKLOAD_LOG_ENV, WORKLOAD_PCR_ENV,
};
pub use client::Client;
pub use error::{ClientError, TpmError, Unreachable};
pub use keyward_hardware::{
    AkBlob, PcrBank, PcrSelection, PcrValue, Tpm, silence_libtss2_logs_at_startup,
};
pub use quoter::{DirectTpm, QuoteOutput, Quoter};
pub use secret::{
    Credential, IdentityToken, KvSecret, Lease, LeaseEvent, LeaseStatus, RevokedReason,
    SecretString,
};
pub use tokio::sync::broadcast::Receiver as EventReceiver;

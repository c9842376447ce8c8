//! What can go wrong, kept apart by who has to act: the operator who
//! configured the agent ([`ClientError::InvalidConfig`]), the network or the
//! vault's availability ([`ClientError::Unreachable`]), the vault's trust
//! decision ([`ClientError::Denied`], [`ClientError::EvidenceRejected`]), or
//! the TPM ([`ClientError::Tpm`]).

use std::path::PathBuf;

pub use keyward_hardware::TpmError;

/// An error from the Keyward client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The client is misconfigured (caller misuse, not bad input from the
    /// vault).
    #[error("invalid client configuration: {what}")]
    InvalidConfig {
        /// What is wrong.
        what: &'static str,
    },
    /// A configured file could not be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An argument of a call is not acceptable (for example a secret path
    /// with characters a path segment may not hold).
    #[error("invalid argument: {what}")]
    InvalidArgument {
        /// What is wrong.
        what: &'static str,
    },
    /// The vault could not be reached, timed out, or answered 5xx. Retrying
    /// later may succeed.
    #[error("vault unreachable: {cause}")]
    Unreachable {
        /// Why.
        cause: Unreachable,
    },
    /// The vault refused (401/403). The reason is in the vault's audit log
    /// under `request_id`; the vault tells the requester nothing more.
    #[error("permission denied (request id {})", request_id.as_deref().unwrap_or("unknown"))]
    Denied {
        /// The vault's request id, when it sent one.
        request_id: Option<String>,
    },
    /// The vault could not read the evidence (400 on `/v1/attest`): a field
    /// is malformed. This is a client or host bug, not a trust failure.
    #[error("evidence rejected as malformed: {message}")]
    EvidenceRejected {
        /// The vault's message (it names the field).
        message: String,
    },
    /// Another 4xx answer (bad request, not found, too large, rate limited).
    #[error("vault refused the request with status {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The vault's message.
        message: String,
    },
    /// The vault's answer does not have the expected shape.
    #[error("unexpected answer from the vault: {what}")]
    Protocol {
        /// What was wrong.
        what: &'static str,
    },
    /// The TPM failed to quote.
    #[error("TPM: {0}")]
    Tpm(#[from] TpmError),
    /// The quoting task ended without an answer (it panicked or the runtime
    /// is shutting down).
    #[error("the quoting task did not complete")]
    QuoteTaskFailed,
}

/// Why the vault was unreachable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unreachable {
    /// Connecting, TLS, sending, or reading the answer failed, or timed out.
    #[error("{0}")]
    Transport(reqwest::Error),
    /// The vault answered with a server error (500 internal, 503 sealed or
    /// overloaded, …).
    #[error("server error {status}")]
    ServerError {
        /// The HTTP status.
        status: u16,
    },
}

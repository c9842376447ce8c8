//! Errors from TPM access.

/// An error talking to the TPM or handling its objects.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TpmError {
    /// The TCTI string is not one this crate can open.
    #[error(
        "unsupported TCTI {tcti:?}: expected device:PATH, swtpm:path=SOCKET, swtpm:host=H,port=P, mssim:… or tabrmd:…"
    )]
    BadTcti {
        /// The string given.
        tcti: String,
    },
    /// Opening the TCTI or the ESAPI context failed.
    #[error("cannot open TPM at {tcti:?}: {source}")]
    Open {
        /// The TCTI string.
        tcti: String,
        /// What libtss2 said.
        source: tss_esapi::Error,
    },
    /// A TPM command failed.
    #[error("TPM command {command} failed: {source}")]
    Command {
        /// Which operation.
        command: &'static str,
        /// What the TPM or libtss2 said.
        source: tss_esapi::Error,
    },
    /// The TPM has no EK certificate for this key type at its NV index.
    #[error("no EK certificate at NV index {nv_index:#010x}")]
    NoEkCertificate {
        /// The NV index read.
        nv_index: u32,
    },
    /// The TPM answered with something this crate does not accept.
    #[error("unexpected value from the TPM: {what}")]
    UnexpectedResponse {
        /// What was wrong.
        what: &'static str,
    },
    /// A caller-supplied argument is out of range.
    #[error("invalid argument: {what}")]
    InvalidArgument {
        /// What was wrong.
        what: &'static str,
    },
    /// A stored AK file is malformed.
    #[error("malformed AK file: {what}")]
    MalformedAkFile {
        /// What was wrong.
        what: &'static str,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The thread that owns the TPM connection is gone (it panicked or the
    /// connection was closed).
    #[error("the TPM connection is closed")]
    Closed,
}

impl TpmError {
    pub(crate) fn command(command: &'static str) -> impl FnOnce(tss_esapi::Error) -> Self {
        move |source| Self::Command { command, source }
    }
}

//! The TPM seam: whatever produces quotes for the client.
//!
//! [`DirectTpm`] quotes with the host's TPM from inside the agent process
//! (it needs access to the TPM device and the host's AK blob). A host-daemon
//! mode, where agents ask a node daemon over a Unix socket, is another
//! [`Quoter`] implementation passed to
//! [`ClientBuilder::quoter`](crate::ClientBuilder::quoter); the rest of the
//! client does not change.

use std::sync::Arc;

use keyward_hardware::{AkBlob, PcrSelection, PcrValue, Quote, Tpm, TpmError};

/// A quote as the TPM produced it, plus the PCR values read right after it
/// (marshalled TPM structures; the vault verifies them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteOutput {
    /// TPMS_ATTEST, marshalled.
    pub attest: Vec<u8>,
    /// TPMT_SIGNATURE, marshalled.
    pub signature: Vec<u8>,
    /// The quoted PCR values.
    pub pcrs: Vec<PcrValue>,
}

impl From<Quote> for QuoteOutput {
    fn from(quote: Quote) -> Self {
        Self {
            attest: quote.attest,
            signature: quote.signature,
            pcrs: quote.pcrs,
        }
    }
}

/// Something that quotes PCRs with the host's enrolled AK.
///
/// Calls block (a TPM command takes milliseconds to seconds); the client
/// runs them on `tokio::task::spawn_blocking`.
pub trait Quoter: Send + Sync + std::fmt::Debug + 'static {
    /// Quotes `selection`, binding `qualifying_data` (SHA-256(nonce ‖
    /// instance key), 32 bytes).
    fn quote(
        &self,
        qualifying_data: &[u8],
        selection: &[PcrSelection],
    ) -> Result<QuoteOutput, TpmError>;
}

/// Quotes with the host's TPM directly, keeping one connection open (swtpm
/// and `/dev/tpm0` serve one client at a time; [`Tpm`] serialises commands
/// through its owning thread, so one handle may be shared).
#[derive(Debug, Clone)]
pub struct DirectTpm {
    tpm: Tpm,
    ak: Arc<AkBlob>,
}

impl DirectTpm {
    /// Opens the TPM at `tcti` (`device:/dev/tpmrm0`, `swtpm:path=…`) to
    /// quote with `ak`.
    pub fn open(tcti: &str, ak: AkBlob) -> Result<Self, TpmError> {
        Ok(Self::new(Tpm::open(tcti)?, ak))
    }

    /// Quotes through an already open TPM handle.
    pub fn new(tpm: Tpm, ak: AkBlob) -> Self {
        Self {
            tpm,
            ak: Arc::new(ak),
        }
    }
}

impl Quoter for DirectTpm {
    fn quote(
        &self,
        qualifying_data: &[u8],
        selection: &[PcrSelection],
    ) -> Result<QuoteOutput, TpmError> {
        self.tpm
            .quote(&self.ak, qualifying_data, selection)
            .map(QuoteOutput::from)
    }
}

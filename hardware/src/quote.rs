//! TPM2_Quote.

use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{Data, MaxBuffer, SignatureScheme};
use tss_esapi::traits::Marshall;

use crate::ak::AkBlob;
use crate::error::TpmError;
use crate::pcr::{PcrSelection, PcrValue, selection_list};
use crate::tpm::Tpm;

/// Largest qualifyingData a quote takes (TPM2B_DATA holds a TPMT_HA: 66 bytes).
pub const MAX_QUALIFYING_DATA: usize = 64;

/// A quote as the TPM produced it, plus the PCR values read right after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// TPMS_ATTEST, marshalled (what `tpm2_quote -m` writes).
    pub attest: Vec<u8>,
    /// TPMT_SIGNATURE, marshalled (what `tpm2_quote -s` writes).
    pub signature: Vec<u8>,
    /// The quoted PCRs, read after the quote, in selection order. A PCR
    /// extended in between makes the verifier's digest check fail, which is
    /// the safe outcome; the caller retries.
    pub pcrs: Vec<PcrValue>,
}

impl Tpm {
    /// Quotes `selection` with `ak`, binding `qualifying_data` (the verifier's nonce).
    pub fn quote(
        &self,
        ak: &AkBlob,
        qualifying_data: &[u8],
        selection: &[PcrSelection],
    ) -> Result<Quote, TpmError> {
        if qualifying_data.len() > MAX_QUALIFYING_DATA {
            return Err(TpmError::InvalidArgument {
                what: "qualifying data longer than 64 bytes",
            });
        }
        let data =
            Data::try_from(qualifying_data.to_vec()).map_err(|_| TpmError::InvalidArgument {
                what: "qualifying data",
            })?;
        let list = selection_list(selection)?;
        let ak = ak.clone();
        let selection = selection.to_vec();
        self.call(move |s| {
            let handle = s.load_ak(&ak)?;
            // A restricted AK fixes its scheme: TPM_ALG_NULL selects it.
            let (attest, signature) = s
                .context
                .execute_with_nullauth_session(|ctx| {
                    ctx.quote(handle, data, SignatureScheme::Null, list)
                })
                .map_err(TpmError::command("Quote"))?;
            let pcrs = s.read_pcrs(&selection)?;
            Ok(Quote {
                attest: attest
                    .marshall()
                    .map_err(|_| TpmError::UnexpectedResponse {
                        what: "TPMS_ATTEST does not marshal",
                    })?,
                signature: signature
                    .marshall()
                    .map_err(|_| TpmError::UnexpectedResponse {
                        what: "TPMT_SIGNATURE does not marshal",
                    })?,
                pcrs,
            })
        })
    }
}

impl Tpm {
    /// TPM2_Hash + TPM2_Sign of `message` with `ak`: what an attacker holding
    /// the host's TPM can make besides quotes. The TPM refuses to sign a
    /// message that starts with TPM_GENERATED_VALUE with a restricted key,
    /// so such a signature never passes as a quote; tests use this to show
    /// that the verifier refuses it.
    pub fn sign_with_ak(&self, ak: &AkBlob, message: &[u8]) -> Result<Vec<u8>, TpmError> {
        let buffer =
            MaxBuffer::try_from(message.to_vec()).map_err(|_| TpmError::InvalidArgument {
                what: "message longer than the TPM's hash buffer",
            })?;
        let ak = ak.clone();
        self.call(move |s| {
            let handle = s.load_ak(&ak)?;
            let signature = s
                .context
                .execute_with_nullauth_session(|ctx| {
                    let (digest, ticket) =
                        ctx.hash(buffer, HashingAlgorithm::Sha256, Hierarchy::Owner)?;
                    ctx.sign(handle, digest, SignatureScheme::Null, ticket)
                })
                .map_err(TpmError::command("Sign"))?;
            signature
                .marshall()
                .map_err(|_| TpmError::UnexpectedResponse {
                    what: "TPMT_SIGNATURE does not marshal",
                })
        })
    }
}

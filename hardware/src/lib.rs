//! TPM 2.0 access for Keyward hosts, on tss-esapi 7.7.
//!
//! # What it does
//! - opens a TPM through a TCTI (`device:/dev/tpmrm0`, `swtpm:path=…`,
//!   `swtpm:host=…,port=…`, `tabrmd:…`) and serialises every command through
//!   one owning thread ([`Tpm`] is cheap to clone and share);
//! - reads the endorsement key and its certificate ([`EkKind`]);
//! - creates, stores and loads attestation keys ([`AkBlob`]);
//! - reads and extends PCRs, quotes, and runs ActivateCredential;
//! - with the `test-support` feature, starts manufactured swtpm instances
//!   for tests ([`harness::SimHost`]).
//!
//! # What it does not do
//! It verifies nothing: values read from the TPM are returned as the TPM
//! produced them (marshalled TPM structures), and the verifier
//! (`keyward-attest`) decides what they prove. It holds no policy and talks
//! to no vault.
//!
//! `unsafe` is denied here as everywhere else; the two places that need it
//! ([`silence_libtss2_logs_at_startup`], and the harness handing pre-bound
//! sockets to swtpm) allow it locally and say why.

mod ak;
mod credential;
mod ek;
mod error;
mod pcr;
mod quote;
mod seal;
mod tpm;

#[cfg(feature = "test-support")]
pub mod harness;

pub use ak::{AkAlgorithm, AkBlob, AkPublic};
pub use ek::{EkKind, EkPublic};
pub use error::TpmError;
pub use pcr::{MAX_PCR_INDEX, PcrBank, PcrSelection, PcrValue};
pub use quote::{MAX_QUALIFYING_DATA, Quote};
pub use seal::{MAX_SEALED_SECRET, SealedSecret, TpmSealError, default_seal_pcrs};
pub use tpm::{Tpm, parse_tcti};

/// Silences libtss2's own logging, which writes warnings to stderr by
/// default (for example on every probe of a missing NV index), unless the
/// operator chose a level with `TSS2_LOG`.
///
/// libtss2 reads `TSS2_LOG` when its first context initialises, so this must
/// run before the first [`Tpm::open`], and — because it writes the process
/// environment — while the process is still single-threaded: first thing in
/// `main`. Tests get the same setting from `.cargo/config.toml`.
pub fn silence_libtss2_logs_at_startup() {
    if std::env::var_os("TSS2_LOG").is_none() {
        // SAFETY: `set_var` is unsound only when another thread reads or
        // writes the environment at the same time; the documented contract
        // is to call this before any other thread exists.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("TSS2_LOG", "all+NONE");
        }
    }
}

//! Pure verification for Keyward: everything the vault believes about a host
//! and a workload passes through this crate.
//!
//! # What it does
//! - parses TPM 2.0 wire structures (TPMS_ATTEST, TPMT_SIGNATURE,
//!   TPM2B_PUBLIC, TPML_PCR_SELECTION) and the tpm2-tools PCR file, bounded;
//! - verifies quotes into [`quote::VerifiedQuote`];
//! - checks attestation-key attributes, computes TPM names and performs the
//!   verifier side of credential activation (MakeCredential);
//! - parses and replays TCG PC Client boot event logs and the workload
//!   Canonical Event Log.
//!
//! # What it does not do
//! No I/O, no clock reads, no threads, no async. Time, nonces and reference
//! values are arguments. It never talks to a TPM (that is `keyward-hardware`)
//! and never stores anything (that is `keyward-vault`).
#![forbid(unsafe_code)]

pub mod boot_policy;
pub mod cel;
pub mod credential;
pub mod digest;
pub mod ek;
pub mod eventlog;
pub mod instance;
pub mod key;
pub mod quote;
pub mod reader;
pub mod sigstore;
pub mod tpm;

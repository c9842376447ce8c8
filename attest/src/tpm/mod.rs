//! TPM 2.0 wire structures, parsed with caps on every length and count.
//!
//! The module tree follows TPM 2.0 Library Part 2 (Structures): [`attest`]
//! (TPMS_ATTEST), [`signature`] (TPMT_SIGNATURE), [`public`] (TPM2B_PUBLIC
//! and names), [`pcr`] (TPML_PCR_SELECTION and the tpm2-tools PCR file);
//! [`ak`] checks attestation-key attributes. Every parser rejects trailing
//! bytes, lengths above the caps in [`constants`], and algorithms the
//! verifier does not accept, with a [`ParseError`] naming the field.
//! Nothing is re-encoded before it is hashed or verified: a public area
//! keeps its exact bytes for its name, and quote signatures are checked over
//! the caller's bytes.
//!
//! Section numbers refer to the TPM 2.0 Library specification, revision
//! 1.59 (Part 1 Architecture, Part 2 Structures, Part 3 Commands).

pub mod ak;
pub mod attest;
pub mod constants;
mod error;
pub(crate) mod kdf;
pub mod pcr;
pub mod public;
pub mod signature;
pub(crate) mod wire;

pub use error::{Field, ParseError, Structure};

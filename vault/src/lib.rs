//! The Keyward vault: server, storage and the I/O around verification.
//!
//! # What it does
//! - fetches what verification needs from the outside world (OCI registries:
//!   [`oci`]) and hands the bytes to `keyward-attest`, which decides;
//! - (later) serves the HTTP API, stores hosts, artifacts, policies, secrets
//!   and leases, and writes the audit log.
//!
//! # What it does not do
//! It makes no trust decision of its own about TPM evidence or signatures:
//! those come from `keyward-attest` as typed proofs.
#![forbid(unsafe_code)]

pub mod api;
pub mod artifacts;
pub mod audit;
pub mod auth;
pub mod barrier;
pub mod config;
pub(crate) mod group_commit;
pub mod hosts;
pub mod model_dir;
pub mod obo;
pub mod oci;
pub mod release;
pub mod release_policy;
pub mod seal;
pub mod secrets;
pub mod storage;

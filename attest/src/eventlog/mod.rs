//! TCG PC Client boot event logs: parsing, replay against quoted PCRs, and
//! facts for boot policy.
//!
//! Follows the TCG PC Client Platform Firmware Profile Specification (PFP,
//! Level 00 Version 1.05), §10 Event Logging.
//!
//! # Flow
//! 1. [`BootLog::parse`] reads the legacy SHA-1 layout (TCG_PCClientPCREvent)
//!    or the crypto-agile one (a "Spec ID Event03" header, then
//!    TCG_PCR_EVENT2 records), bounded by the caps in this module.
//! 2. [`BootLog::verify`] replays every bank the log carries (SHA-1, SHA-256,
//!    SHA-384, SHA-512) from zeros, honouring the StartupLocality event for
//!    PCR 0 and skipping EV_NO_ACTION events, and compares the result with
//!    the quoted values (see [`BOOT_LOG_PCRS`] for which PCRs are compared).
//! 3. The resulting [`VerifiedBootLog`] marks, per event, whether its data
//!    hashes to its digest in every quoted bank ([`DataVerification`]), and
//!    derives [`BootFacts`] only from such events.
//!
//! # Decisions
//! - **Unknown algorithms.** A Spec ID event may list algorithms this crate
//!   cannot compute (SM3, …). Their digests are skipped using the table's
//!   declared size and not kept, since their banks cannot be replayed. A
//!   digest for an algorithm *not* in the table is an error: its size is
//!   unknown, so the rest of the log cannot be framed.
//! - **Strict digest lists.** Every event carries exactly one digest per
//!   algorithm in the table.
//! - **PCR scope.** Boot logs may only name PCRs 0–16. PCRs the log does not
//!   extend are compared only if they are in [`BOOT_LOG_PCRS`]; the workload
//!   PCR (23) and other logs' PCRs are left to their own verifiers.
//! - **The event type is never trusted on its own**: see [`BootFacts`] for
//!   how each fact resists relabelling and measurements appended after boot.
//!
//! # Known real-world quirks tolerated (each narrowly)
//! - `arch-linux-workstation.bin`: the `SecureBoot` variable is measured with
//!   VariableDataLength 0 (variable absent). The data verifies; it is read as
//!   Secure Boot disabled rather than rejected.
//! - `arch-linux-workstation.bin`: systemd-boot's UTF-16 load options (EV_IPL,
//!   PCR 8) are logged one byte short of what was measured; the missing byte
//!   is the last zero of the NUL terminator. Only odd-length EV_IPL data in
//!   PCR 8 whose digest equals H(data ‖ 0x00) is accepted this way
//!   ([`DataVerification::SystemdBootTruncatedUtf16`]).
//! - Ordering checks some parsers make (an EFI application in PCR 4 before the
//!   "Calling EFI Application from Boot Option" action) are not made: every
//!   PCR 4 code measurement counts as an application wherever it appears.
//!
//! # Limits
//! The log's contents are only as trustworthy as the quote they are checked
//! against; facts from a PCR the quote does not cover are absent. Root on the
//! host can append measurements to PCRs 0–15 after boot; see [`BootFacts`].

mod event;
mod facts;
mod parse;
mod replay;
mod uefi;

pub use event::{Event, EventType, LogFormat};
pub(crate) use facts::hex_lower;
pub use facts::{
    BootFacts, CommandLineSource, EfiApplication, KernelCommandLine, ScrtmVersion, SecureBoot,
    Separator, Sha256Digest,
};
pub use parse::{
    AlgorithmSize, BootLog, MAX_ALGORITHMS, MAX_BOOT_LOG_PCR, MAX_DIGEST_LEN, MAX_EVENT_DATA_LEN,
    MAX_EVENTS, MAX_LOG_LEN, ParseError, SpecIdProblem, StartupLocalityProblem,
};
pub use replay::{BOOT_LOG_PCRS, BootLogError, DataVerification, VerifiedBootLog, VerifiedEvent};

#[cfg(test)]
mod tests;

//! Replaying a boot log into PCR banks and comparing it with quoted values.

use super::event::{Event, EventType};
use super::facts::BootFacts;
use super::parse::{BOOT_LOG_PCR_COUNT, BootLog, MAX_BOOT_LOG_PCR, RawEvent, alg_slot};
use crate::digest::{HashAlg, PcrValues};

/// PCRs that belong to the boot log even when it has no event for them:
/// firmware (0–7), the boot loader (8, 9) and shim (14). A quoted value for
/// one of these must equal the replay of the log's events for it, which for a
/// PCR without events is its initial value. Quoted PCRs outside this set and
/// not extended by the log (10 for IMA, 11–13 and 15 for systemd, 23 for the
/// workload log) are other logs' business and are not checked here.
pub const BOOT_LOG_PCRS: [u8; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14];

const MAX_DIGEST: usize = 64;

/// PCR values obtained by replaying a log into some of its banks.
pub(super) struct Replay {
    values: [[[u8; MAX_DIGEST]; BOOT_LOG_PCR_COUNT]; 4],
    /// Bit `i` set: some event extends PCR `i`.
    extended: u32,
}

impl Replay {
    /// Replays the banks of `log` for which `wanted` holds.
    pub(super) fn run(log: &BootLog, wanted: impl Fn(HashAlg) -> bool) -> Self {
        let mut values = [[[0u8; MAX_DIGEST]; BOOT_LOG_PCR_COUNT]; 4];
        // PFP §10.4.5.3 (Startup Locality Event): after TPM2_Startup from
        // locality 3, or an H-CRTM sequence at locality 4, PCR 0 starts as
        // 0…0 followed by the locality byte, in every bank.
        if let Some(locality) = log.startup_locality {
            for alg in HashAlg::ALL {
                let last = alg.digest_len().saturating_sub(1);
                if let Some(byte) = values
                    .get_mut(alg_slot(alg))
                    .and_then(|bank| bank.get_mut(0))
                    .and_then(|pcr| pcr.get_mut(last))
                {
                    *byte = locality;
                }
            }
        }
        let mut extended = 0u32;
        let banks: Vec<HashAlg> = log.banks().filter(|alg| wanted(*alg)).collect();
        for raw in &log.events {
            // PFP §10.4.1: EV_NO_ACTION events are not extended.
            if raw.event_type == EventType::NO_ACTION {
                continue;
            }
            extended |= pcr_bit(raw.pcr);
            for alg in &banks {
                let digest = digest_of(log, raw, *alg);
                if let Some(pcr) = values
                    .get_mut(alg_slot(*alg))
                    .and_then(|bank| bank.get_mut(usize::from(raw.pcr)))
                {
                    extend(*alg, pcr, digest);
                }
            }
        }
        Self { values, extended }
    }

    pub(super) fn value(&self, alg: HashAlg, pcr: u8) -> Option<&[u8]> {
        self.values
            .get(alg_slot(alg))?
            .get(usize::from(pcr))?
            .get(..alg.digest_len())
    }

    pub(super) fn is_extended(&self, pcr: u8) -> bool {
        self.extended & pcr_bit(pcr) != 0
    }
}

pub(super) fn pcr_bit(pcr: u8) -> u32 {
    1u32.checked_shl(u32::from(pcr)).unwrap_or(0)
}

pub(super) fn digest_of<'a>(log: &'a BootLog, raw: &RawEvent, alg: HashAlg) -> &'a [u8] {
    raw.digests
        .get(alg_slot(alg))
        .copied()
        .flatten()
        .and_then(|s| log.bytes.get(s..s.checked_add(alg.digest_len())?))
        .unwrap_or_default()
}

/// `PCR_new = H(PCR_old || digest)` (TPM 2.0 Part 1, §17.2), in place.
fn extend(alg: HashAlg, pcr: &mut [u8; MAX_DIGEST], digest: &[u8]) {
    let len = alg.digest_len();
    let mut ctx = ring::digest::Context::new(alg.ring_algorithm());
    ctx.update(pcr.get(..len).unwrap_or_default());
    ctx.update(digest);
    let out = ctx.finish();
    if let Some(dst) = pcr.get_mut(..len) {
        dst.copy_from_slice(out.as_ref());
    }
}

/// Why a boot log does not match the quoted PCR values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootLogError {
    /// No quoted PCR is in a bank the log carries and in scope for the log
    /// (extended by it, or one of [`BOOT_LOG_PCRS`]): nothing could be checked.
    #[error("the quote covers no PCR the boot log describes")]
    NoQuotedBootPcr,
    /// A quoted PCR differs from the log's replay: the log was edited
    /// (events removed, reordered, digests changed) or belongs to another boot.
    #[error("PCR {pcr} in bank {alg:?} does not match the boot log's replay")]
    PcrMismatch {
        /// The bank.
        alg: HashAlg,
        /// The PCR index.
        pcr: u8,
        /// The quoted value.
        quoted: Vec<u8>,
        /// The value the log replays to.
        replayed: Vec<u8>,
    },
}

/// How much of an event's data is vouched for by its digest.
///
/// The digest covers the event data only where the measuring code hashed the
/// data itself; for code measurements (EV_EFI_BOOT_SERVICES_APPLICATION and
/// friends) it is a hash of the image, and the data (a device path) is
/// informational.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataVerification {
    /// EV_NO_ACTION: never extended, so nothing vouches for the data.
    NotExtended,
    /// The event's PCR was not compared with a quoted value in any bank.
    PcrNotQuoted,
    /// The data does not hash to the event digest.
    DigestMismatch,
    /// The whole data hashes to the digest in every quoted bank.
    Whole,
    /// A GRUB string (PCR 8): the text after the logged prefix
    /// (`grub_cmd: `, `kernel_cmdline: `, …), without its NUL, hashes to the
    /// digest. The prefix itself is not measured.
    GrubString,
    /// A systemd-boot load-options string (PCR 8, EV_IPL) logged one byte
    /// short: the data followed by one zero byte hashes to the digest.
    SystemdBootTruncatedUtf16,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum DataCheck {
    NotExtended,
    PcrNotQuoted,
    DigestMismatch,
    Whole,
    GrubString { start: usize, end: usize },
    SystemdBootTruncatedUtf16,
}

impl DataCheck {
    fn public(self) -> DataVerification {
        match self {
            Self::NotExtended => DataVerification::NotExtended,
            Self::PcrNotQuoted => DataVerification::PcrNotQuoted,
            Self::DigestMismatch => DataVerification::DigestMismatch,
            Self::Whole => DataVerification::Whole,
            Self::GrubString { .. } => DataVerification::GrubString,
            Self::SystemdBootTruncatedUtf16 => DataVerification::SystemdBootTruncatedUtf16,
        }
    }
}

/// GRUB (2.04 and later, and the Red Hat and Debian patch sets before it)
/// logs `<prefix><string>\0` but measures only `<string>` into PCR 8.
/// Red Hat's `grub_cmd ` variant measures the string with its NUL.
const GRUB_PREFIXES: [&[u8]; 5] = [
    b"grub_cmd: ",
    b"kernel_cmdline: ",
    b"module_cmdline: ",
    b"grub_cmd ",
    b"grub_kernel_cmdline ",
];

/// The PCR GRUB measures its strings into.
const GRUB_STRING_PCR: u8 = 8;

/// Banks in which `pcr` was compared with a quoted value.
fn bound_banks(bound: &[u32; 4], pcr: u8) -> impl Iterator<Item = HashAlg> + '_ {
    HashAlg::ALL.into_iter().filter(move |alg| {
        bound
            .get(alg_slot(*alg))
            .is_some_and(|m| m & pcr_bit(pcr) != 0)
    })
}

fn hashes_to(log: &BootLog, raw: &RawEvent, bound: &[u32; 4], parts: &[&[u8]]) -> bool {
    let mut any = false;
    for alg in bound_banks(bound, raw.pcr) {
        let mut ctx = ring::digest::Context::new(alg.ring_algorithm());
        for part in parts {
            ctx.update(part);
        }
        if ctx.finish().as_ref() != digest_of(log, raw, alg) {
            return false;
        }
        any = true;
    }
    any
}

fn check_data(log: &BootLog, raw: &RawEvent, bound: &[u32; 4]) -> DataCheck {
    if raw.event_type == EventType::NO_ACTION {
        return DataCheck::NotExtended;
    }
    if bound_banks(bound, raw.pcr).next().is_none() {
        return DataCheck::PcrNotQuoted;
    }
    let data = log
        .bytes
        .get(raw.data_start..raw.data_end)
        .unwrap_or_default();
    if hashes_to(log, raw, bound, &[data]) {
        return DataCheck::Whole;
    }
    if raw.pcr == GRUB_STRING_PCR {
        if let Some(prefix) = GRUB_PREFIXES.iter().find(|p| data.starts_with(p)) {
            let start = raw.data_start.saturating_add(prefix.len());
            let with_nul = log.bytes.get(start..raw.data_end).unwrap_or_default();
            if let Some(text) = with_nul.strip_suffix(b"\0") {
                let end = raw.data_end.saturating_sub(1);
                if hashes_to(log, raw, bound, &[text]) || hashes_to(log, raw, bound, &[with_nul]) {
                    return DataCheck::GrubString { start, end };
                }
            }
        }
        // Quirk, seen in `arch-linux-workstation.bin`: systemd-boot measured
        // its UTF-16 load options with their two-byte NUL but logged an
        // odd-length EventSize that drops the last (zero) byte. Appending that
        // one zero byte reproduces the measured bytes exactly, so the logged
        // bytes are still fully verified. Limited to EV_IPL with odd length.
        if raw.event_type == EventType::IPL
            && !data.len().is_multiple_of(2)
            && hashes_to(log, raw, bound, &[data, &[0]])
        {
            return DataCheck::SystemdBootTruncatedUtf16;
        }
    }
    DataCheck::DigestMismatch
}

/// An event of a [`VerifiedBootLog`], with what its digest vouches for.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedEvent<'a> {
    event: Event<'a>,
    check: DataCheck,
}

impl<'a> VerifiedEvent<'a> {
    /// The event as logged.
    pub fn event(&self) -> Event<'a> {
        self.event
    }

    /// How much of the data the digest vouches for.
    pub fn data_verification(&self) -> DataVerification {
        self.check.public()
    }

    /// The part of the event data that is vouched for by its digest in every
    /// quoted bank, or `None`. For a GRUB string this is the text without the
    /// logged prefix and NUL; for the systemd-boot quirk it is the data as
    /// logged (the missing last byte is zero).
    pub fn verified_data(&self) -> Option<&'a [u8]> {
        match self.check {
            DataCheck::Whole | DataCheck::SystemdBootTruncatedUtf16 => {
                Some(self.event.unverified_data())
            }
            DataCheck::GrubString { start, end } => self.event.bytes.get(start..end),
            DataCheck::NotExtended | DataCheck::PcrNotQuoted | DataCheck::DigestMismatch => None,
        }
    }

    pub(super) fn check(&self) -> DataCheck {
        self.check
    }
}

/// A boot log whose replay equals the quoted PCR values, with the facts that
/// its verified events establish. Only [`BootLog::verify`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedBootLog {
    log: BootLog,
    checks: Vec<DataCheck>,
    bound: [u32; 4],
    verified_pcrs: PcrValues,
    facts: BootFacts,
}

impl BootLog {
    /// Replays the log into every bank it carries and compares the result
    /// with the quoted values.
    ///
    /// For every bank that both the log and the quote carry, every quoted PCR
    /// that the log extends or that is in [`BOOT_LOG_PCRS`] must equal the
    /// replay; a boot PCR without events must therefore hold its initial
    /// value (zeros, or the startup locality for PCR 0). Quoted banks the log
    /// lacks and quoted PCRs outside that scope are ignored. A PCR the log
    /// extends but the quote omits is not verified: its events' data is never
    /// trusted and facts drawn from it are absent.
    pub fn verify(&self, quoted: &PcrValues) -> Result<VerifiedBootLog, BootLogError> {
        let replay = Replay::run(self, |alg| quoted.bank(alg).is_some());
        let mut bound = [0u32; 4];
        let mut verified_pcrs = PcrValues::new();
        for alg in self.banks() {
            let Some(bank) = quoted.bank(alg) else {
                continue;
            };
            for (&pcr, value) in bank {
                let in_scope = pcr <= MAX_BOOT_LOG_PCR
                    && (replay.is_extended(pcr) || BOOT_LOG_PCRS.contains(&pcr));
                if !in_scope {
                    continue;
                }
                let replayed = replay.value(alg, pcr).unwrap_or_default();
                if replayed != value.as_slice() {
                    return Err(BootLogError::PcrMismatch {
                        alg,
                        pcr,
                        quoted: value.clone(),
                        replayed: replayed.to_vec(),
                    });
                }
                if let Some(mask) = bound.get_mut(alg_slot(alg)) {
                    *mask |= pcr_bit(pcr);
                }
                // Cannot fail: the index and length come from a valid PcrValues.
                let _ = verified_pcrs.insert(alg, u32::from(pcr), value.clone());
            }
        }
        if verified_pcrs.is_empty() {
            return Err(BootLogError::NoQuotedBootPcr);
        }
        let checks: Vec<DataCheck> = self
            .events
            .iter()
            .map(|raw| check_data(self, raw, &bound))
            .collect();
        let mut verified = VerifiedBootLog {
            log: self.clone(),
            checks,
            bound,
            verified_pcrs,
            facts: BootFacts::default(),
        };
        verified.facts = BootFacts::extract(&verified);
        Ok(verified)
    }

    /// The values this log replays to, for every bank it carries, for every
    /// PCR it extends and every PCR in [`BOOT_LOG_PCRS`]. For display; to
    /// trust a log, use [`BootLog::verify`].
    pub fn replay(&self) -> PcrValues {
        let replay = Replay::run(self, |_| true);
        let mut out = PcrValues::new();
        for alg in self.banks() {
            for pcr in 0..=MAX_BOOT_LOG_PCR {
                if (replay.is_extended(pcr) || BOOT_LOG_PCRS.contains(&pcr))
                    && let Some(value) = replay.value(alg, pcr)
                {
                    let _ = out.insert(alg, u32::from(pcr), value.to_vec());
                }
            }
        }
        out
    }
}

impl VerifiedBootLog {
    /// The events in log order, each with what its digest vouches for.
    pub fn events(&self) -> impl ExactSizeIterator<Item = VerifiedEvent<'_>> + '_ {
        self.log
            .events()
            .zip(self.checks.iter())
            .map(|(event, check)| VerifiedEvent {
                event,
                check: *check,
            })
    }

    /// One event by index.
    pub fn event(&self, index: usize) -> Option<VerifiedEvent<'_>> {
        Some(VerifiedEvent {
            event: self.log.event(index)?,
            check: *self.checks.get(index)?,
        })
    }

    /// The facts established by verified events.
    pub fn facts(&self) -> &BootFacts {
        &self.facts
    }

    /// The quoted PCR values that were compared with the replay and matched.
    pub fn verified_pcrs(&self) -> &PcrValues {
        &self.verified_pcrs
    }

    /// True when `pcr` in bank `alg` was compared with a quoted value.
    pub fn is_pcr_verified(&self, alg: HashAlg, pcr: u8) -> bool {
        self.bound
            .get(alg_slot(alg))
            .is_some_and(|m| m & pcr_bit(pcr) != 0)
    }

    /// The underlying log.
    pub fn log(&self) -> &BootLog {
        &self.log
    }
}

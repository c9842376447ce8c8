//! Bounded parsing of both event-log layouts into a [`BootLog`].

use super::event::{Event, EventType, LogFormat};
use crate::digest::HashAlg;
use crate::reader::{Reader, Truncated};

/// Largest event log accepted, in bytes. Real firmware logs are tens of
/// kilobytes; Linux exposes at most a few hundred.
pub const MAX_LOG_LEN: usize = 4 << 20;
/// Most events accepted in one log (the largest real logs hold a few thousand).
pub const MAX_EVENTS: usize = 8192;
/// Largest event data accepted for one event, in bytes (a full `db` or
/// `dbx` variable is well under this).
pub const MAX_EVENT_DATA_LEN: usize = 1 << 20;
/// Most digest algorithms a Spec ID event may list.
pub const MAX_ALGORITHMS: usize = 8;
/// Largest digest size a Spec ID event may declare for an unknown algorithm.
pub const MAX_DIGEST_LEN: usize = 64;
/// Highest PCR a boot event log may extend. PCRs 17–22 belong to the DRTM and
/// 23 to applications (Keyward's workload log); an SRTM log never names them.
pub const MAX_BOOT_LOG_PCR: u8 = 16;

/// Number of PCRs a boot log may extend (0..=[`MAX_BOOT_LOG_PCR`]).
pub(super) const BOOT_LOG_PCR_COUNT: usize = 17;

// PFP §10.4.5.1: TCG_EfiSpecIDEvent.signature for crypto-agile logs.
const SPEC_ID_EVENT03: &[u8; 16] = b"Spec ID Event03\0";
// TPM 1.2-era logs start with "Spec ID Event00" or "Spec ID Event02" and keep
// the SHA-1 layout; any later Spec ID event is rejected.
const SPEC_ID_PREFIX: &[u8] = b"Spec ID Event";
// PFP §10.4.5.3: TCG_EfiStartupLocalityEvent.Signature.
const STARTUP_LOCALITY_SIGNATURE: &[u8; 16] = b"StartupLocality\0";

/// Index of a supported algorithm in per-bank arrays.
pub(super) fn alg_slot(alg: HashAlg) -> usize {
    match alg {
        HashAlg::Sha1 => 0,
        HashAlg::Sha256 => 1,
        HashAlg::Sha384 => 2,
        HashAlg::Sha512 => 3,
    }
}

/// One row of the Spec ID event's digest-size table
/// (TCG_EfiSpecIdEventAlgorithmSize, PFP §10.4.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlgorithmSize {
    /// The TPM_ALG_ID.
    pub alg_id: u16,
    /// The digest size in bytes the log uses for it.
    pub digest_size: u16,
}

/// Where one event's fields sit in [`BootLog`]'s bytes.
#[derive(Debug, Clone)]
pub(super) struct RawEvent {
    pub(super) offset: usize,
    pub(super) pcr: u8,
    pub(super) event_type: EventType,
    /// Start of the digest for each supported bank, indexed by [`alg_slot`].
    pub(super) digests: [Option<usize>; 4],
    pub(super) data_start: usize,
    pub(super) data_end: usize,
}

/// A parsed TCG PC Client boot event log. Nothing in it is verified yet:
/// call [`BootLog::verify`] with the quoted PCR values.
#[derive(Debug, Clone)]
pub struct BootLog {
    pub(super) bytes: Vec<u8>,
    pub(super) format: LogFormat,
    pub(super) algorithms: Vec<AlgorithmSize>,
    pub(super) events: Vec<RawEvent>,
    pub(super) startup_locality: Option<u8>,
}

/// Why a boot event log could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The log has no bytes.
    #[error("the event log is empty")]
    Empty,
    /// The log is larger than [`MAX_LOG_LEN`].
    #[error("the event log is {len} bytes, more than the {max} allowed")]
    LogTooLarge {
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The log has more than [`MAX_EVENTS`] events.
    #[error("the event log has more than {max} events")]
    TooManyEvents {
        /// The cap.
        max: usize,
    },
    /// The log ended inside an event.
    #[error(
        "event {index} is truncated at offset {offset}: {needed} bytes needed, {remaining} left"
    )]
    Truncated {
        /// Index of the event being read.
        index: usize,
        /// Offset of the field that did not fit.
        offset: usize,
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// An event's data size is above [`MAX_EVENT_DATA_LEN`].
    #[error(
        "event {index} at offset {offset} declares {len} bytes of data, more than the {max} allowed"
    )]
    EventDataTooLarge {
        /// Index of the event.
        index: usize,
        /// Offset of the event.
        offset: usize,
        /// The declared size.
        len: u32,
        /// The cap.
        max: usize,
    },
    /// An event names a PCR above [`MAX_BOOT_LOG_PCR`].
    #[error("event {index} at offset {offset} names PCR {pcr}, above {max}", max = MAX_BOOT_LOG_PCR)]
    PcrOutOfRange {
        /// Index of the event.
        index: usize,
        /// Offset of the event.
        offset: usize,
        /// The PCR index given.
        pcr: u32,
    },
    /// The first event is a Spec ID event that does not follow PFP §10.4.5.1.
    #[error("invalid Spec ID event: {0}")]
    InvalidSpecIdEvent(SpecIdProblem),
    /// A Spec ID event appears after the first event.
    #[error("event {index} at offset {offset} is a second Spec ID event")]
    UnexpectedSpecIdEvent {
        /// Index of the event.
        index: usize,
        /// Offset of the event.
        offset: usize,
    },
    /// An event's digest count differs from the Spec ID event's algorithm count.
    #[error(
        "event {index} at offset {offset} carries {count} digests, the Spec ID event lists {expected}"
    )]
    DigestCountMismatch {
        /// Index of the event.
        index: usize,
        /// Offset of the event.
        offset: usize,
        /// Digests in the event.
        count: u32,
        /// Algorithms in the Spec ID event.
        expected: usize,
    },
    /// An event has a digest for an algorithm the Spec ID event does not list,
    /// so its size (and everything after it) is unknown.
    #[error(
        "event {index} at offset {offset} has a digest for algorithm {alg_id:#06x}, which the Spec ID event does not list"
    )]
    UnlistedAlgorithm {
        /// Index of the event.
        index: usize,
        /// Offset of the event.
        offset: usize,
        /// The TPM_ALG_ID.
        alg_id: u16,
    },
    /// An event has two digests for one algorithm.
    #[error("event {index} at offset {offset} has two digests for algorithm {alg_id:#06x}")]
    DuplicateDigest {
        /// Index of the event.
        index: usize,
        /// Offset of the event.
        offset: usize,
        /// The TPM_ALG_ID.
        alg_id: u16,
    },
    /// A StartupLocality event that does not follow PFP §10.4.5.3.
    #[error("event {index} at offset {offset} is an invalid StartupLocality event: {problem}")]
    InvalidStartupLocality {
        /// Index of the event.
        index: usize,
        /// Offset of the event.
        offset: usize,
        /// What is wrong with it.
        problem: StartupLocalityProblem,
    },
}

/// What is wrong with a Spec ID event (PFP §10.4.5.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecIdProblem {
    /// It is not an EV_NO_ACTION event in PCR 0.
    #[error("it is event type {event_type:?} in PCR {pcr}, not EV_NO_ACTION in PCR 0")]
    NotNoActionInPcr0 {
        /// The PCR index given.
        pcr: u32,
        /// The event type given.
        event_type: EventType,
    },
    /// Its SHA-1 digest field is not all zeros.
    #[error("its digest is not all zeros")]
    NonZeroDigest,
    /// `specVersionMajor` is not 2.
    #[error("specVersionMajor is {major}, not 2")]
    UnsupportedSpecVersion {
        /// The major version given.
        major: u8,
    },
    /// `uintnSize` is neither 1 (UINT32) nor 2 (UINT64).
    #[error("uintnSize is {size}, not 1 or 2")]
    InvalidUintnSize {
        /// The value given.
        size: u8,
    },
    /// `numberOfAlgorithms` is 0 or above [`MAX_ALGORITHMS`].
    #[error("it lists {count} algorithms, expected 1 to {max}", max = MAX_ALGORITHMS)]
    AlgorithmCount {
        /// The count given.
        count: u32,
    },
    /// An algorithm is listed twice.
    #[error("algorithm {alg_id:#06x} is listed twice")]
    DuplicateAlgorithm {
        /// The TPM_ALG_ID.
        alg_id: u16,
    },
    /// A known algorithm is listed with a size other than its digest length.
    #[error("algorithm {alg_id:#06x} is listed with {size} bytes, expected {expected}")]
    DigestSizeMismatch {
        /// The TPM_ALG_ID.
        alg_id: u16,
        /// The size given.
        size: u16,
        /// The algorithm's digest length.
        expected: usize,
    },
    /// An unknown algorithm is listed with a size of 0 or above [`MAX_DIGEST_LEN`].
    #[error("algorithm {alg_id:#06x} is listed with {size} bytes, expected 1 to {max}", max = MAX_DIGEST_LEN)]
    UnsupportedDigestSize {
        /// The TPM_ALG_ID.
        alg_id: u16,
        /// The size given.
        size: u16,
    },
    /// The event data ended inside the structure.
    #[error("it is truncated: {needed} bytes needed, {remaining} left")]
    Truncated {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Bytes follow `vendorInfo`.
    #[error("{len} bytes follow the vendor info")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
}

impl From<Truncated> for SpecIdProblem {
    fn from(t: Truncated) -> Self {
        Self::Truncated {
            needed: t.needed,
            remaining: t.remaining,
        }
    }
}

/// What is wrong with a StartupLocality event (PFP §10.4.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartupLocalityProblem {
    /// It is logged against a PCR other than 0.
    #[error("it names PCR {pcr}, not 0")]
    NotInPcr0 {
        /// The PCR given.
        pcr: u8,
    },
    /// A second StartupLocality event.
    #[error("it is the second StartupLocality event")]
    Duplicate,
    /// It follows an event that extended PCR 0, so it cannot describe PCR 0's
    /// initial value.
    #[error("it follows an extension of PCR 0")]
    AfterPcr0Extension,
    /// Its data is not the 16-byte signature plus one locality byte.
    #[error("its data is {len} bytes, expected 17")]
    WrongLength {
        /// Bytes of data.
        len: usize,
    },
    /// The locality is not 0, 3 or 4.
    #[error("locality {locality} cannot start the TPM")]
    InvalidLocality {
        /// The locality given.
        locality: u8,
    },
}

fn truncated(index: usize, offset: usize, t: Truncated) -> ParseError {
    ParseError::Truncated {
        index,
        offset,
        needed: t.needed,
        remaining: t.remaining,
    }
}

/// Reads one field of event `index`, reporting a short read with its offset.
fn field<'a, T>(
    r: &mut Reader<'a>,
    index: usize,
    read: impl FnOnce(&mut Reader<'a>) -> Result<T, Truncated>,
) -> Result<T, ParseError> {
    let offset = r.consumed();
    read(r).map_err(|t| truncated(index, offset, t))
}

fn len_to_usize(len: u32) -> usize {
    usize::try_from(len).unwrap_or(usize::MAX)
}

/// Reads the fields shared by both layouts up to the digests.
fn read_header(r: &mut Reader<'_>, index: usize) -> Result<(usize, u8, EventType), ParseError> {
    let offset = r.consumed();
    let pcr = field(r, index, |r| r.u32_le())?;
    let pcr = u8::try_from(pcr)
        .ok()
        .filter(|p| *p <= MAX_BOOT_LOG_PCR)
        .ok_or(ParseError::PcrOutOfRange { index, offset, pcr })?;
    let event_type = EventType(field(r, index, |r| r.u32_le())?);
    Ok((offset, pcr, event_type))
}

/// Reads `eventSize` and the event data; returns the data's byte range.
fn read_data(
    r: &mut Reader<'_>,
    index: usize,
    offset: usize,
) -> Result<(usize, usize), ParseError> {
    let len = field(r, index, |r| r.u32_le())?;
    let size = len_to_usize(len);
    if size > MAX_EVENT_DATA_LEN {
        return Err(ParseError::EventDataTooLarge {
            index,
            offset,
            len,
            max: MAX_EVENT_DATA_LEN,
        });
    }
    let start = r.consumed();
    field(r, index, |r| r.bytes(size))?;
    Ok((start, r.consumed()))
}

/// PFP §10.2.1: TCG_PCClientPCREvent, the SHA-1 layout (every event of a
/// legacy log, and the Spec ID event of a crypto-agile one).
fn read_legacy_event(r: &mut Reader<'_>, index: usize) -> Result<RawEvent, ParseError> {
    let (offset, pcr, event_type) = read_header(r, index)?;
    let digest_start = r.consumed();
    field(r, index, |r| r.bytes(HashAlg::Sha1.digest_len()))?;
    let (data_start, data_end) = read_data(r, index, offset)?;
    let mut digests = [None; 4];
    if let Some(slot) = digests.get_mut(alg_slot(HashAlg::Sha1)) {
        *slot = Some(digest_start);
    }
    Ok(RawEvent {
        offset,
        pcr,
        event_type,
        digests,
        data_start,
        data_end,
    })
}

/// PFP §10.2.2: TCG_PCR_EVENT2 with a TPML_DIGEST_VALUES whose sizes come
/// from the Spec ID event's table.
///
/// Digests of algorithms this crate cannot compute are skipped using the
/// table's size and not kept: such a bank cannot be replayed, so nothing can
/// be learnt from it (the table still lists it, see [`BootLog::algorithms`]).
fn read_agile_event(
    r: &mut Reader<'_>,
    index: usize,
    algorithms: &[AlgorithmSize],
) -> Result<RawEvent, ParseError> {
    let (offset, pcr, event_type) = read_header(r, index)?;
    let count = field(r, index, |r| r.u32_le())?;
    if len_to_usize(count) != algorithms.len() {
        return Err(ParseError::DigestCountMismatch {
            index,
            offset,
            count,
            expected: algorithms.len(),
        });
    }
    let mut digests = [None; 4];
    let mut seen: u32 = 0;
    for _ in 0..algorithms.len() {
        let alg_id = field(r, index, |r| r.u16_le())?;
        let (position, entry) = algorithms
            .iter()
            .enumerate()
            .find(|(_, a)| a.alg_id == alg_id)
            .ok_or(ParseError::UnlistedAlgorithm {
                index,
                offset,
                alg_id,
            })?;
        let bit = 1u32
            .checked_shl(u32::try_from(position).unwrap_or(u32::MAX))
            .unwrap_or(0);
        if seen & bit != 0 {
            return Err(ParseError::DuplicateDigest {
                index,
                offset,
                alg_id,
            });
        }
        seen |= bit;
        let start = r.consumed();
        field(r, index, |r| r.bytes(usize::from(entry.digest_size)))?;
        if let Some(alg) = HashAlg::from_tpm_alg_id(alg_id)
            && let Some(slot) = digests.get_mut(alg_slot(alg))
        {
            *slot = Some(start);
        }
    }
    let (data_start, data_end) = read_data(r, index, offset)?;
    Ok(RawEvent {
        offset,
        pcr,
        event_type,
        digests,
        data_start,
        data_end,
    })
}

/// PFP §10.4.5.1: TCG_EfiSpecIDEvent, after its 16-byte signature.
fn parse_spec_id(data: &[u8]) -> Result<Vec<AlgorithmSize>, SpecIdProblem> {
    let mut r = Reader::new(data);
    r.bytes(SPEC_ID_EVENT03.len())?;
    let _platform_class = r.u32_le()?;
    let _spec_version_minor = r.u8()?;
    let major = r.u8()?;
    let _spec_errata = r.u8()?;
    let uintn_size = r.u8()?;
    if major != 2 {
        return Err(SpecIdProblem::UnsupportedSpecVersion { major });
    }
    if !matches!(uintn_size, 1 | 2) {
        return Err(SpecIdProblem::InvalidUintnSize { size: uintn_size });
    }
    let count = r.u32_le()?;
    let n = len_to_usize(count);
    if n == 0 || n > MAX_ALGORITHMS {
        return Err(SpecIdProblem::AlgorithmCount { count });
    }
    let mut algorithms: Vec<AlgorithmSize> = Vec::with_capacity(n);
    for _ in 0..n {
        let alg_id = r.u16_le()?;
        let digest_size = r.u16_le()?;
        if algorithms.iter().any(|a| a.alg_id == alg_id) {
            return Err(SpecIdProblem::DuplicateAlgorithm { alg_id });
        }
        match HashAlg::from_tpm_alg_id(alg_id) {
            Some(alg) if usize::from(digest_size) != alg.digest_len() => {
                return Err(SpecIdProblem::DigestSizeMismatch {
                    alg_id,
                    size: digest_size,
                    expected: alg.digest_len(),
                });
            }
            None if digest_size == 0 || usize::from(digest_size) > MAX_DIGEST_LEN => {
                return Err(SpecIdProblem::UnsupportedDigestSize {
                    alg_id,
                    size: digest_size,
                });
            }
            _ => {}
        }
        algorithms.push(AlgorithmSize {
            alg_id,
            digest_size,
        });
    }
    let vendor_info_size = r.u8()?;
    r.bytes(usize::from(vendor_info_size))?;
    if !r.is_empty() {
        return Err(SpecIdProblem::TrailingBytes { len: r.remaining() });
    }
    Ok(algorithms)
}

impl BootLog {
    /// Parses a TCG PC Client event log in either layout (PFP §10.2): the
    /// legacy SHA-1 one, or the crypto-agile one announced by a first
    /// EV_NO_ACTION event carrying "Spec ID Event03".
    ///
    /// Everything is bounded: [`MAX_LOG_LEN`], [`MAX_EVENTS`],
    /// [`MAX_EVENT_DATA_LEN`], [`MAX_ALGORITHMS`], PCR indices up to
    /// [`MAX_BOOT_LOG_PCR`]. The log must end exactly after its last event.
    pub fn parse(input: &[u8]) -> Result<Self, ParseError> {
        if input.is_empty() {
            return Err(ParseError::Empty);
        }
        if input.len() > MAX_LOG_LEN {
            return Err(ParseError::LogTooLarge {
                len: input.len(),
                max: MAX_LOG_LEN,
            });
        }
        let mut r = Reader::new(input);
        let first = read_legacy_event(&mut r, 0)?;
        let first_data = input
            .get(first.data_start..first.data_end)
            .unwrap_or_default();

        let mut log = BootLog {
            bytes: Vec::new(),
            format: LogFormat::LegacySha1,
            algorithms: Vec::new(),
            events: Vec::with_capacity(input.len() / 128),
            startup_locality: None,
        };
        let mut state = State::default();

        if first_data.starts_with(SPEC_ID_EVENT03) {
            // PFP §10.4.5.1: the Spec ID event is EV_NO_ACTION in PCR 0 with
            // an all-zero digest, in the SHA-1 layout.
            if first.pcr != 0 || first.event_type != EventType::NO_ACTION {
                return Err(ParseError::InvalidSpecIdEvent(
                    SpecIdProblem::NotNoActionInPcr0 {
                        pcr: u32::from(first.pcr),
                        event_type: first.event_type,
                    },
                ));
            }
            let digest = first
                .digests
                .first()
                .copied()
                .flatten()
                .and_then(|s| input.get(s..s.saturating_add(HashAlg::Sha1.digest_len())))
                .unwrap_or_default();
            if digest.iter().any(|b| *b != 0) {
                return Err(ParseError::InvalidSpecIdEvent(SpecIdProblem::NonZeroDigest));
            }
            log.algorithms = parse_spec_id(first_data).map_err(ParseError::InvalidSpecIdEvent)?;
            log.format = LogFormat::CryptoAgile;
            // The Spec ID event is kept as event 0 but carries no bank digests:
            // its SHA-1 field is a placeholder, not a measurement.
            log.events.push(RawEvent {
                digests: [None; 4],
                ..first
            });
        } else {
            log.push(&mut state, input, first, 0)?;
        }

        while !r.is_empty() {
            let index = log.events.len();
            if index >= MAX_EVENTS {
                return Err(ParseError::TooManyEvents { max: MAX_EVENTS });
            }
            let event = match log.format {
                LogFormat::LegacySha1 => read_legacy_event(&mut r, index)?,
                LogFormat::CryptoAgile => read_agile_event(&mut r, index, &log.algorithms)?,
            };
            log.push(&mut state, input, event, index)?;
        }
        log.startup_locality = state.startup_locality;
        log.bytes = input.to_vec();
        Ok(log)
    }

    /// Checks the EV_NO_ACTION events with a meaning, then appends `event`.
    fn push(
        &mut self,
        state: &mut State,
        input: &[u8],
        event: RawEvent,
        index: usize,
    ) -> Result<(), ParseError> {
        let data = input
            .get(event.data_start..event.data_end)
            .unwrap_or_default();
        let offset = event.offset;
        if event.event_type == EventType::NO_ACTION {
            if index > 0 && data.starts_with(SPEC_ID_PREFIX) {
                return Err(ParseError::UnexpectedSpecIdEvent { index, offset });
            }
            if let Some(rest) = data.strip_prefix(STARTUP_LOCALITY_SIGNATURE.as_slice()) {
                let locality = startup_locality(event.pcr, rest, state).map_err(|problem| {
                    ParseError::InvalidStartupLocality {
                        index,
                        offset,
                        problem,
                    }
                })?;
                state.startup_locality = Some(locality);
            }
        } else if event.pcr == 0 {
            state.pcr0_extended = true;
        }
        self.events.push(event);
        Ok(())
    }

    /// The log's layout.
    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// The Spec ID event's digest-size table, including algorithms this crate
    /// cannot replay; empty for a legacy log.
    pub fn algorithms(&self) -> &[AlgorithmSize] {
        &self.algorithms
    }

    /// The banks this log can be replayed into, in TPM_ALG_ID order.
    pub fn banks(&self) -> impl Iterator<Item = HashAlg> + '_ {
        HashAlg::ALL
            .into_iter()
            .filter(move |alg| match self.format {
                LogFormat::LegacySha1 => *alg == HashAlg::Sha1,
                LogFormat::CryptoAgile => {
                    self.algorithms.iter().any(|a| a.alg_id == alg.tpm_alg_id())
                }
            })
    }

    /// The locality from the StartupLocality event, if the log has one.
    pub fn startup_locality(&self) -> Option<u8> {
        self.startup_locality
    }

    /// Number of events, including the Spec ID event.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when the log has no events (never, for a parsed log).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The events, in log order. Nothing about them is verified.
    pub fn events(&self) -> impl ExactSizeIterator<Item = Event<'_>> + '_ {
        self.events.iter().enumerate().map(|(index, raw)| Event {
            index,
            raw,
            bytes: &self.bytes,
        })
    }

    /// One event by index.
    pub fn event(&self, index: usize) -> Option<Event<'_>> {
        self.events.get(index).map(|raw| Event {
            index,
            raw,
            bytes: &self.bytes,
        })
    }

    /// The log's bytes, as given to [`BootLog::parse`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

#[derive(Default)]
struct State {
    startup_locality: Option<u8>,
    pcr0_extended: bool,
}

/// PFP §10.4.5.3: the StartupLocality event is EV_NO_ACTION in PCR 0, logged
/// before anything extends PCR 0, carrying the locality TPM2_Startup came
/// from. Only 0, 3 and 4 (H-CRTM) can start a PC Client TPM.
fn startup_locality(pcr: u8, rest: &[u8], state: &State) -> Result<u8, StartupLocalityProblem> {
    if pcr != 0 {
        return Err(StartupLocalityProblem::NotInPcr0 { pcr });
    }
    if state.startup_locality.is_some() {
        return Err(StartupLocalityProblem::Duplicate);
    }
    if state.pcr0_extended {
        return Err(StartupLocalityProblem::AfterPcr0Extension);
    }
    match rest {
        [locality @ (0 | 3 | 4)] => Ok(*locality),
        [locality] => Err(StartupLocalityProblem::InvalidLocality {
            locality: *locality,
        }),
        _ => Err(StartupLocalityProblem::WrongLength {
            len: rest.len().saturating_add(STARTUP_LOCALITY_SIGNATURE.len()),
        }),
    }
}

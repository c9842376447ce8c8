//! Event types and the view of one parsed event.

use std::fmt;

use crate::digest::HashAlg;

/// A TCG event type (TCG PC Client Platform Firmware Profile, §10.4.1, Table 9).
///
/// The event type is *not* covered by any digest: it is a label the log
/// writer chose. Nothing in this crate trusts it on its own; see
/// [`super::VerifiedBootLog`] for which facts rest on it and why that is safe.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(pub u32);

impl EventType {
    /// EV_PREBOOT_CERT.
    pub const PREBOOT_CERT: Self = Self(0x0000_0000);
    /// EV_POST_CODE.
    pub const POST_CODE: Self = Self(0x0000_0001);
    /// EV_NO_ACTION: informational, never extended into a PCR.
    pub const NO_ACTION: Self = Self(0x0000_0003);
    /// EV_SEPARATOR.
    pub const SEPARATOR: Self = Self(0x0000_0004);
    /// EV_ACTION.
    pub const ACTION: Self = Self(0x0000_0005);
    /// EV_EVENT_TAG.
    pub const EVENT_TAG: Self = Self(0x0000_0006);
    /// EV_S_CRTM_CONTENTS.
    pub const S_CRTM_CONTENTS: Self = Self(0x0000_0007);
    /// EV_S_CRTM_VERSION.
    pub const S_CRTM_VERSION: Self = Self(0x0000_0008);
    /// EV_CPU_MICROCODE.
    pub const CPU_MICROCODE: Self = Self(0x0000_0009);
    /// EV_PLATFORM_CONFIG_FLAGS.
    pub const PLATFORM_CONFIG_FLAGS: Self = Self(0x0000_000A);
    /// EV_TABLE_OF_DEVICES.
    pub const TABLE_OF_DEVICES: Self = Self(0x0000_000B);
    /// EV_COMPACT_HASH.
    pub const COMPACT_HASH: Self = Self(0x0000_000C);
    /// EV_IPL.
    pub const IPL: Self = Self(0x0000_000D);
    /// EV_IPL_PARTITION_DATA.
    pub const IPL_PARTITION_DATA: Self = Self(0x0000_000E);
    /// EV_NONHOST_CODE.
    pub const NONHOST_CODE: Self = Self(0x0000_000F);
    /// EV_NONHOST_CONFIG.
    pub const NONHOST_CONFIG: Self = Self(0x0000_0010);
    /// EV_NONHOST_INFO.
    pub const NONHOST_INFO: Self = Self(0x0000_0011);
    /// EV_OMIT_BOOT_DEVICE_EVENTS.
    pub const OMIT_BOOT_DEVICE_EVENTS: Self = Self(0x0000_0012);
    /// EV_EFI_VARIABLE_DRIVER_CONFIG.
    pub const EFI_VARIABLE_DRIVER_CONFIG: Self = Self(0x8000_0001);
    /// EV_EFI_VARIABLE_BOOT.
    pub const EFI_VARIABLE_BOOT: Self = Self(0x8000_0002);
    /// EV_EFI_BOOT_SERVICES_APPLICATION.
    pub const EFI_BOOT_SERVICES_APPLICATION: Self = Self(0x8000_0003);
    /// EV_EFI_BOOT_SERVICES_DRIVER.
    pub const EFI_BOOT_SERVICES_DRIVER: Self = Self(0x8000_0004);
    /// EV_EFI_RUNTIME_SERVICES_DRIVER.
    pub const EFI_RUNTIME_SERVICES_DRIVER: Self = Self(0x8000_0005);
    /// EV_EFI_GPT_EVENT.
    pub const EFI_GPT_EVENT: Self = Self(0x8000_0006);
    /// EV_EFI_ACTION.
    pub const EFI_ACTION: Self = Self(0x8000_0007);
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB.
    pub const EFI_PLATFORM_FIRMWARE_BLOB: Self = Self(0x8000_0008);
    /// EV_EFI_HANDOFF_TABLES.
    pub const EFI_HANDOFF_TABLES: Self = Self(0x8000_0009);
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB2.
    pub const EFI_PLATFORM_FIRMWARE_BLOB2: Self = Self(0x8000_000A);
    /// EV_EFI_HANDOFF_TABLES2.
    pub const EFI_HANDOFF_TABLES2: Self = Self(0x8000_000B);
    /// EV_EFI_VARIABLE_BOOT2.
    pub const EFI_VARIABLE_BOOT2: Self = Self(0x8000_000C);
    /// EV_EFI_HCRTM_EVENT.
    pub const EFI_HCRTM_EVENT: Self = Self(0x8000_0010);
    /// EV_EFI_VARIABLE_AUTHORITY.
    pub const EFI_VARIABLE_AUTHORITY: Self = Self(0x8000_00E0);
    /// EV_EFI_SPDM_FIRMWARE_BLOB.
    pub const EFI_SPDM_FIRMWARE_BLOB: Self = Self(0x8000_00E1);
    /// EV_EFI_SPDM_FIRMWARE_CONFIG.
    pub const EFI_SPDM_FIRMWARE_CONFIG: Self = Self(0x8000_00E2);

    const NAMES: &'static [(Self, &'static str)] = &[
        (Self::PREBOOT_CERT, "EV_PREBOOT_CERT"),
        (Self::POST_CODE, "EV_POST_CODE"),
        (Self(0x0000_0002), "EV_UNUSED"),
        (Self::NO_ACTION, "EV_NO_ACTION"),
        (Self::SEPARATOR, "EV_SEPARATOR"),
        (Self::ACTION, "EV_ACTION"),
        (Self::EVENT_TAG, "EV_EVENT_TAG"),
        (Self::S_CRTM_CONTENTS, "EV_S_CRTM_CONTENTS"),
        (Self::S_CRTM_VERSION, "EV_S_CRTM_VERSION"),
        (Self::CPU_MICROCODE, "EV_CPU_MICROCODE"),
        (Self::PLATFORM_CONFIG_FLAGS, "EV_PLATFORM_CONFIG_FLAGS"),
        (Self::TABLE_OF_DEVICES, "EV_TABLE_OF_DEVICES"),
        (Self::COMPACT_HASH, "EV_COMPACT_HASH"),
        (Self::IPL, "EV_IPL"),
        (Self::IPL_PARTITION_DATA, "EV_IPL_PARTITION_DATA"),
        (Self::NONHOST_CODE, "EV_NONHOST_CODE"),
        (Self::NONHOST_CONFIG, "EV_NONHOST_CONFIG"),
        (Self::NONHOST_INFO, "EV_NONHOST_INFO"),
        (Self::OMIT_BOOT_DEVICE_EVENTS, "EV_OMIT_BOOT_DEVICE_EVENTS"),
        (
            Self::EFI_VARIABLE_DRIVER_CONFIG,
            "EV_EFI_VARIABLE_DRIVER_CONFIG",
        ),
        (Self::EFI_VARIABLE_BOOT, "EV_EFI_VARIABLE_BOOT"),
        (
            Self::EFI_BOOT_SERVICES_APPLICATION,
            "EV_EFI_BOOT_SERVICES_APPLICATION",
        ),
        (
            Self::EFI_BOOT_SERVICES_DRIVER,
            "EV_EFI_BOOT_SERVICES_DRIVER",
        ),
        (
            Self::EFI_RUNTIME_SERVICES_DRIVER,
            "EV_EFI_RUNTIME_SERVICES_DRIVER",
        ),
        (Self::EFI_GPT_EVENT, "EV_EFI_GPT_EVENT"),
        (Self::EFI_ACTION, "EV_EFI_ACTION"),
        (
            Self::EFI_PLATFORM_FIRMWARE_BLOB,
            "EV_EFI_PLATFORM_FIRMWARE_BLOB",
        ),
        (Self::EFI_HANDOFF_TABLES, "EV_EFI_HANDOFF_TABLES"),
        (
            Self::EFI_PLATFORM_FIRMWARE_BLOB2,
            "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
        ),
        (Self::EFI_HANDOFF_TABLES2, "EV_EFI_HANDOFF_TABLES2"),
        (Self::EFI_VARIABLE_BOOT2, "EV_EFI_VARIABLE_BOOT2"),
        (Self::EFI_HCRTM_EVENT, "EV_EFI_HCRTM_EVENT"),
        (Self::EFI_VARIABLE_AUTHORITY, "EV_EFI_VARIABLE_AUTHORITY"),
        (Self::EFI_SPDM_FIRMWARE_BLOB, "EV_EFI_SPDM_FIRMWARE_BLOB"),
        (
            Self::EFI_SPDM_FIRMWARE_CONFIG,
            "EV_EFI_SPDM_FIRMWARE_CONFIG",
        ),
    ];

    /// The specification's name (`EV_SEPARATOR`), or `None` for a value this
    /// crate does not know.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, n)| *n)
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "EventType({:#010x})", self.0),
        }
    }
}

/// How the log is laid out (TCG PC Client Platform Firmware Profile, §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// TCG_PCClientPCREvent records with one SHA-1 digest each (§10.2.1).
    LegacySha1,
    /// A "Spec ID Event03" header followed by TCG_PCR_EVENT2 records (§10.2.2).
    CryptoAgile,
}

/// One event as logged, before anything about it is verified.
///
/// Obtained from [`super::BootLog::events`]. Every accessor reports what the
/// log *claims*; whether a PCR digest is bound to the TPM or the event data
/// matches its digest is only known after [`super::BootLog::verify`].
#[derive(Clone, Copy)]
pub struct Event<'a> {
    pub(super) index: usize,
    pub(super) raw: &'a super::parse::RawEvent,
    pub(super) bytes: &'a [u8],
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("index", &self.index)
            .field("offset", &self.raw.offset)
            .field("pcr", &self.raw.pcr)
            .field("event_type", &self.raw.event_type)
            .field("data_len", &self.unverified_data().len())
            .finish()
    }
}

impl<'a> Event<'a> {
    /// Position in the log, counting from 0 (the Spec ID event, if any, is 0).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Byte offset of the event's first byte in the log.
    pub fn offset(&self) -> usize {
        self.raw.offset
    }

    /// The PCR the event was extended into (or, for EV_NO_ACTION, names).
    pub fn pcr(&self) -> u8 {
        self.raw.pcr
    }

    /// The logged event type: a label not covered by any digest.
    pub fn event_type(&self) -> EventType {
        self.raw.event_type
    }

    /// The event's digest for one bank, if the log carries that bank.
    pub fn digest(&self, alg: HashAlg) -> Option<&'a [u8]> {
        let start = self
            .raw
            .digests
            .get(super::parse::alg_slot(alg))
            .copied()
            .flatten()?;
        self.bytes.get(start..start.checked_add(alg.digest_len())?)
    }

    /// The event data exactly as logged. Nothing vouches for these bytes:
    /// use [`super::VerifiedEvent::verified_data`] for anything you rely on.
    pub fn unverified_data(&self) -> &'a [u8] {
        self.bytes
            .get(self.raw.data_start..self.raw.data_end)
            .unwrap_or_default()
    }

    /// True for EV_NO_ACTION events, which are never extended.
    pub fn is_no_action(&self) -> bool {
        self.raw.event_type == EventType::NO_ACTION
    }
}

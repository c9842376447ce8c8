//! Facts about the boot drawn from verified events only.

use super::event::EventType;
use super::replay::{DataCheck, VerifiedBootLog, VerifiedEvent};
use super::uefi::{VariableData, decode_utf16le_nul_terminated};
use crate::digest::HashAlg;

/// PFP §3.3.4 (PCR usage): Secure Boot policy is measured into PCR 7.
const SECURE_BOOT_POLICY_PCR: u8 = 7;
/// PFP §3.3.4: UEFI boot manager code and boot attempts go into PCR 4.
const BOOT_MANAGER_CODE_PCR: u8 = 4;
/// PFP §3.3.4: S-CRTM and host platform firmware go into PCR 0.
const PLATFORM_FIRMWARE_PCR: u8 = 0;
/// GRUB and systemd-boot measure command lines into PCR 8.
const BOOT_LOADER_CONFIG_PCR: u8 = 8;
/// systemd-stub measures the kernel command line into PCR 12.
const SYSTEMD_STUB_CONFIG_PCR: u8 = 12;

/// Secure Boot state as measured by the firmware into PCR 7.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecureBoot {
    /// Every `SecureBoot` variable measurement before PCR 7's separator reads 1.
    Enabled {
        /// The (first) event that measured it.
        event_index: usize,
    },
    /// A `SecureBoot` variable measurement before PCR 7's separator is not 1:
    /// 0, empty (variable absent), or malformed.
    Disabled {
        /// The first such event.
        event_index: usize,
    },
    /// No verified `SecureBoot` variable measurement before a PCR 7
    /// separator, or PCR 7 was not quoted.
    #[default]
    NotMeasured,
}

impl SecureBoot {
    /// True only for [`SecureBoot::Enabled`].
    pub fn is_enabled(self) -> bool {
        matches!(self, Self::Enabled { .. })
    }
}

/// A code measurement in PCR 4: an EFI application (boot loader, shim,
/// kernel…) as the firmware or shim measured it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfiApplication {
    /// The event.
    pub event_index: usize,
    /// The logged (unverified) event type, normally
    /// EV_EFI_BOOT_SERVICES_APPLICATION.
    pub event_type: EventType,
    /// The SHA-256 event digest: the Authenticode hash of the PE image.
    pub digest: Sha256Digest,
}

/// Which component measured a kernel command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandLineSource {
    /// GRUB's `kernel_cmdline: ` (2.04 and later) or `grub_kernel_cmdline `
    /// (Red Hat) string in PCR 8.
    Grub,
    /// systemd-boot's UTF-16 load options, EV_IPL in PCR 8.
    SystemdBoot,
    /// systemd-stub's UTF-16 command line, EV_IPL in PCR 12.
    SystemdStub,
}

/// A measured kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCommandLine {
    /// The event.
    pub event_index: usize,
    /// Who measured it.
    pub source: CommandLineSource,
    /// The command line, as measured (without terminator).
    pub text: String,
}

/// The S-CRTM version (EV_S_CRTM_VERSION in PCR 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrtmVersion {
    /// The event.
    pub event_index: usize,
    /// The measured event data.
    pub data: Vec<u8>,
}

impl ScrtmVersion {
    /// The version as text: the UCS-2 string the PFP describes, or, for
    /// firmware that measures something else (some log a GUID), the lower-case
    /// hex of the data.
    pub fn text(&self) -> String {
        decode_utf16le_nul_terminated(&self.data).unwrap_or_else(|| hex_lower(&self.data))
    }
}

/// A verified EV_SEPARATOR event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Separator {
    /// The event.
    pub event_index: usize,
    /// Its PCR.
    pub pcr: u8,
    /// Its value: 0 normally, non-zero when the firmware signals an error.
    pub value: u32,
}

/// Facts drawn from the verified events of a [`VerifiedBootLog`].
///
/// Each accessor names the events its fact comes from. Two threats shape the
/// rules:
///
/// - The event type is a label outside every digest: whoever hands us the log
///   can relabel any event. Facts therefore rest on the *measured* bytes
///   (self-describing structures such as UEFI_VARIABLE_DATA, or the digest
///   itself) wherever possible, and a relabelling can only move a
///   measurement between facts, never invent measured bytes.
/// - After boot, root can extend PCRs 0–15 with events of its choosing, but
///   cannot remove a measurement. Firmware facts (Secure Boot, S-CRTM version)
///   are taken only from events before the PCR's first separator, which the
///   firmware logs before any OS code runs; list facts (EFI applications,
///   kernel command lines) are used by policy as "every entry must be
///   allowed", which appended entries can only make fail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootFacts {
    secure_boot: SecureBoot,
    efi_applications: Option<Vec<EfiApplication>>,
    kernel_command_lines: Vec<KernelCommandLine>,
    scrtm_versions: Vec<ScrtmVersion>,
    separators: Vec<Separator>,
}

impl BootFacts {
    /// Secure Boot state, from PCR 7 events before PCR 7's first separator:
    /// every event whose measured data is a UEFI_VARIABLE_DATA for the
    /// EFI_GLOBAL_VARIABLE `SecureBoot` (whatever its logged type, so a
    /// relabelled event cannot hide). [`SecureBoot::Enabled`] needs all of
    /// them to hold the single byte 1.
    pub fn secure_boot(&self) -> SecureBoot {
        self.secure_boot
    }

    /// The SHA-256 digests of the code measured into PCR 4, in log order:
    /// every extended PCR 4 event whose data does not itself hash to its
    /// digest (so EV_EFI_ACTION strings and separators are excluded, and an
    /// application relabelled as something else is still listed). `None` when
    /// PCR 4 was not verified in the SHA-256 bank.
    pub fn efi_applications(&self) -> Option<&[EfiApplication]> {
        self.efi_applications.as_deref()
    }

    /// Kernel command lines, in log order, from verified PCR 8 GRUB strings
    /// logged as `kernel_cmdline: ` / `grub_kernel_cmdline `, and verified
    /// NUL-terminated UTF-16 EV_IPL data in PCR 8 (systemd-boot) or PCR 12
    /// (systemd-stub).
    ///
    /// GRUB's prefix is not measured: an event logged as `grub_cmd: X` could
    /// be relabelled `kernel_cmdline: X`. The text is always something the
    /// boot chain measured into PCR 8, but which GRUB string was the command
    /// line rests on the label; a policy needing more than "every command
    /// line shown is allowed" should pin PCR 8 itself.
    pub fn kernel_command_lines(&self) -> &[KernelCommandLine] {
        &self.kernel_command_lines
    }

    /// Verified EV_S_CRTM_VERSION events in PCR 0 before PCR 0's first separator.
    pub fn scrtm_versions(&self) -> &[ScrtmVersion] {
        &self.scrtm_versions
    }

    /// Verified EV_SEPARATOR events with 4-byte data, in log order.
    pub fn separators(&self) -> &[Separator] {
        &self.separators
    }

    pub(super) fn extract(log: &VerifiedBootLog) -> Self {
        let mut facts = BootFacts {
            secure_boot: SecureBoot::NotMeasured,
            efi_applications: log
                .is_pcr_verified(HashAlg::Sha256, BOOT_MANAGER_CODE_PCR)
                .then(Vec::new),
            ..BootFacts::default()
        };
        let mut secure_boot = SecureBoot::NotMeasured;
        let mut pcr7_closed = false;
        let mut pcr0_closed = false;
        for ev in log.events() {
            let event = ev.event();
            if event.is_no_action() {
                continue;
            }
            let whole = matches!(ev.check(), DataCheck::Whole).then(|| event.unverified_data());
            let separator = whole.and_then(separator_value);
            if let (Some(value), EventType::SEPARATOR) = (separator, event.event_type()) {
                facts.separators.push(Separator {
                    event_index: event.index(),
                    pcr: event.pcr(),
                    value,
                });
            }
            match event.pcr() {
                SECURE_BOOT_POLICY_PCR if !pcr7_closed => {
                    // The boundary is any measured separator value, whatever
                    // its label: an attacker can only move it earlier.
                    if separator.is_some() {
                        pcr7_closed = true;
                        facts.secure_boot = secure_boot;
                        continue;
                    }
                    if let Some(var) = whole.and_then(VariableData::parse)
                        && var.is_global("SecureBoot")
                    {
                        secure_boot = secure_boot_step(secure_boot, event.index(), var.data);
                    }
                }
                PLATFORM_FIRMWARE_PCR if !pcr0_closed => {
                    if separator.is_some() {
                        pcr0_closed = true;
                        continue;
                    }
                    if let (Some(data), EventType::S_CRTM_VERSION) = (whole, event.event_type()) {
                        facts.scrtm_versions.push(ScrtmVersion {
                            event_index: event.index(),
                            data: data.to_vec(),
                        });
                    }
                }
                BOOT_MANAGER_CODE_PCR => {
                    if let Some(apps) = facts.efi_applications.as_mut()
                        && whole.is_none()
                    {
                        apps.push(efi_application(&ev));
                    }
                }
                BOOT_LOADER_CONFIG_PCR | SYSTEMD_STUB_CONFIG_PCR => {
                    if let Some(line) = kernel_command_line(&ev) {
                        facts.kernel_command_lines.push(line);
                    }
                }
                _ => {}
            }
        }
        if !pcr0_closed {
            facts.scrtm_versions.clear();
        }
        facts
    }
}

/// PFP §10.4.1: EV_SEPARATOR data is a 4-byte value, 0 normally and 1 (or
/// 0xFFFFFFFF in older firmware) on error.
fn separator_value(data: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = data.try_into().ok()?;
    let value = u32::from_le_bytes(bytes);
    matches!(value, 0 | 1 | u32::MAX).then_some(value)
}

/// One more `SecureBoot` measurement. An empty variable is how the PFP logs an
/// absent variable (UEFI_VARIABLE_DATA with VariableDataLength 0); that is the
/// `arch-linux-workstation.bin` quirk ("SecureBoot data len is 0, expected 1"
/// upstream), and means Secure Boot is off.
fn secure_boot_step(state: SecureBoot, event_index: usize, data: &[u8]) -> SecureBoot {
    match (state, data) {
        (SecureBoot::Disabled { .. }, _) => state,
        (SecureBoot::Enabled { .. }, [1]) => state,
        (SecureBoot::NotMeasured, [1]) => SecureBoot::Enabled { event_index },
        _ => SecureBoot::Disabled { event_index },
    }
}

fn efi_application(ev: &VerifiedEvent<'_>) -> EfiApplication {
    let event = ev.event();
    let mut digest = [0u8; 32];
    if let Some(d) = event.digest(HashAlg::Sha256)
        && d.len() == digest.len()
    {
        digest.copy_from_slice(d);
    }
    EfiApplication {
        event_index: event.index(),
        event_type: event.event_type(),
        digest: Sha256Digest(digest),
    }
}

fn kernel_command_line(ev: &VerifiedEvent<'_>) -> Option<KernelCommandLine> {
    let event = ev.event();
    let logged = event.unverified_data();
    let (source, text) = match ev.check() {
        DataCheck::GrubString { .. } if event.pcr() == BOOT_LOADER_CONFIG_PCR => {
            let is_cmdline = logged.starts_with(b"kernel_cmdline: ")
                || logged.starts_with(b"grub_kernel_cmdline ");
            if !is_cmdline {
                return None;
            }
            let text = std::str::from_utf8(ev.verified_data()?).ok()?.to_owned();
            (CommandLineSource::Grub, text)
        }
        DataCheck::Whole if event.event_type() == EventType::IPL => {
            let source = if event.pcr() == BOOT_LOADER_CONFIG_PCR {
                CommandLineSource::SystemdBoot
            } else {
                CommandLineSource::SystemdStub
            };
            (source, decode_utf16le_nul_terminated(logged)?)
        }
        DataCheck::SystemdBootTruncatedUtf16 => {
            let mut measured = logged.to_vec();
            measured.push(0);
            (
                CommandLineSource::SystemdBoot,
                decode_utf16le_nul_terminated(&measured)?,
            )
        }
        _ => return None,
    };
    Some(KernelCommandLine {
        event_index: event.index(),
        source,
        text,
    })
}

/// A SHA-256 digest; prints, parses and (de)serializes as 64 lower-case hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        let digits = text.as_bytes();
        if digits.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let [hi, lo] = pair else { return None };
            *byte = (hex_value(*hi)? << 4) | hex_value(*lo)?;
        }
        Some(Self(out))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex_lower(&self.0))
    }
}

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl serde::Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex digits (a SHA-256 digest)"))
    }
}

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            if let Some(d) = DIGITS.get(usize::from(nibble)) {
                s.push(char::from(*d));
            }
        }
    }
    s
}

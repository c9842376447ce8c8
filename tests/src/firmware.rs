//! A firmware simulator for swtpm: boot event logs measured into PCRs.
//!
//! [`boot`] plays the part of UEFI firmware, GRUB and the kernel's boot path
//! for a [`BootImage`]: it writes the TCG PC Client "crypto agile" boot event
//! log (PFP 1.05 §10.2.2: a `Spec ID Event03` header, then TCG_PCR_EVENT2
//! records) and lists, in order, the SHA-256 digests the firmware would have
//! extended into which PCR. [`measure`] does the same and hands every extend
//! to the caller, who sends it to a real TPM:
//!
//! ```ignore
//! let log = firmware::measure(&image, &mut |pcr, digest| tpm.extend_pcr_sha256(pcr, digest))?;
//! ```
//!
//! The log carries what `keyward_attest::eventlog` draws facts from, where
//! real firmware puts it: the S-CRTM version and a firmware volume (PCR 0);
//! the `SecureBoot`, `PK`, `KEK`, `db` and `dbx` variables (PCR 7, before
//! PCR 7's separator); separators in PCRs 0–7; the "Calling EFI Application
//! from Boot Option" action, the boot loader and the kernel (PCR 4); GRUB's
//! `grub_cmd: ` and `kernel_cmdline: ` strings (PCR 8) and its measurement of
//! the kernel file (PCR 9); the `db` authority that verified the boot loader
//! (PCR 7, after the separator, Secure Boot only); Exit Boot Services (PCR 5).
//! [`BootLogOutput::events`] says where each event sits in the bytes, so
//! tests can edit logs the way an attacker would ([`Tamper`]).
//!
//! What it does not do:
//! - **Digests of code are plain SHA-256** of [`BootImage::bootloader`] and
//!   [`BootImage::kernel`], not Authenticode hashes of PE images: the verifier
//!   treats a PCR 4 digest as an opaque value, so any bytes serve.
//! - **SHA-256 bank only.** The harness's `swtpm_setup --pcr-banks sha256`
//!   allocates no other bank, so the Spec ID event lists only SHA-256.
//! - **No StartupLocality event.** The harness starts swtpm with
//!   `startup-clear`, i.e. TPM2_Startup from locality 0, so PCR 0 starts at
//!   zeros, which is also what a log without the event replays from.
//! - Variable contents (`PK`, `KEK`, `db`, `dbx`) are opaque bytes; nothing
//!   checks that they are EFI_SIGNATURE_LISTs, and nothing verifies anything.
//!
//! Hand-written rather than taken from a crate: no Rust crate writes TCG
//! event logs (tpm2-tools and go-tpm-tools only read them), and the point is
//! a writer independent of the parser under test, built from the PFP's
//! structure definitions, not from `keyward_attest`'s code.
//!
//! Nothing here panics; sizes beyond the format's 32-bit fields (gigabytes of
//! command line) saturate, which no test needs.

use std::ops::Range;

use ring::digest::{Context, SHA256};
use serde_json::{Map, Value, json};

/// The PCRs a boot policy should quote, besides the workload PCR: firmware
/// (0–7), GRUB's strings with the kernel command line (8) and the files it
/// loaded (9). The command-line fact is read from PCR 8, so a quote of 0–7
/// alone yields no verified command line.
pub const BOOT_PCRS: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// The workload PCR (launch records of the workload CEL).
pub const WORKLOAD_PCR: u8 = 23;

/// [`BOOT_PCRS`] and [`WORKLOAD_PCR`]: what an agent quotes.
pub const QUOTE_PCRS: [u8; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, WORKLOAD_PCR];

/// TPM_ALG_SHA256 (TPM 2.0 Part 2, §6.3).
const TPM_ALG_SHA256: u16 = 0x000B;
const SHA256_LEN: usize = 32;

// Event types (PFP §10.4.1, Table 9).
const EV_NO_ACTION: u32 = 0x0000_0003;
const EV_SEPARATOR: u32 = 0x0000_0004;
const EV_S_CRTM_VERSION: u32 = 0x0000_0008;
const EV_IPL: u32 = 0x0000_000D;
const EV_EFI_VARIABLE_DRIVER_CONFIG: u32 = 0x8000_0001;
const EV_EFI_BOOT_SERVICES_APPLICATION: u32 = 0x8000_0003;
const EV_EFI_ACTION: u32 = 0x8000_0007;
const EV_EFI_PLATFORM_FIRMWARE_BLOB: u32 = 0x8000_0008;
const EV_EFI_VARIABLE_AUTHORITY: u32 = 0x8000_00E0;

/// EFI_GLOBAL_VARIABLE, 8be4df61-93ca-11d2-aa0d-00e098032b8c, in EFI_GUID
/// byte order (first three fields little-endian).
const EFI_GLOBAL_VARIABLE: [u8; 16] = [
    0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c,
];
/// EFI_IMAGE_SECURITY_DATABASE_GUID, d719b2cb-3d3a-4596-a3bc-dad00e67656f
/// (`db`, `dbx`).
const EFI_IMAGE_SECURITY_DATABASE: [u8; 16] = [
    0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f,
];

/// Where the simulated firmware volume and images "sit" in memory (informational).
const FIRMWARE_VOLUME_BASE: u64 = 0xffc0_0000;
const BOOTLOADER_LOAD_ADDRESS: u64 = 0x7e00_0000;
const KERNEL_LOAD_ADDRESS: u64 = 0x7c00_0000;
const BOOTLOADER_PATH: &str = "\\EFI\\BOOT\\BOOTX64.EFI";
const KERNEL_PATH: &str = "\\vmlinuz";
/// The kernel file as GRUB names it in its PCR 9 measurement.
const GRUB_KERNEL_FILE: &str = "(hd0,gpt2)/vmlinuz";

/// What a simulated machine boots. Every field is measured; see the module
/// docs for where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootImage {
    /// The `SecureBoot` variable: 1 when true, 0 when false. With Secure Boot
    /// on, the `db` authority that verified the boot loader is logged too.
    pub secure_boot: bool,
    /// The S-CRTM version string (measured as NUL-terminated UCS-2, PCR 0).
    pub scrtm_version: String,
    /// The firmware volume's bytes (EV_EFI_PLATFORM_FIRMWARE_BLOB, PCR 0).
    pub firmware: Vec<u8>,
    /// `PK` contents (opaque bytes; empty means the variable is absent).
    pub pk: Vec<u8>,
    /// `KEK` contents.
    pub kek: Vec<u8>,
    /// `db` contents.
    pub db: Vec<u8>,
    /// `dbx` contents.
    pub dbx: Vec<u8>,
    /// The boot loader; its SHA-256 is its PCR 4 application digest.
    pub bootloader: Vec<u8>,
    /// The kernel; its SHA-256 is its PCR 4 application digest (and GRUB's
    /// PCR 9 file digest).
    pub kernel: Vec<u8>,
    /// The kernel command line as GRUB measures it (`kernel_cmdline: `,
    /// PCR 8), including the kernel path, e.g. `/vmlinuz root=/dev/vda1 ro`.
    pub cmdline: String,
}

impl BootImage {
    /// A Secure Boot machine with keys enrolled, a boot loader, a kernel and
    /// a command line; change fields to get other boots.
    pub fn example() -> Self {
        Self {
            secure_boot: true,
            scrtm_version: "Keyward Simulated Firmware 1.0".to_owned(),
            firmware: b"keyward simulated firmware volume".to_vec(),
            pk: b"keyward platform key".to_vec(),
            kek: b"keyward key exchange key".to_vec(),
            db: b"keyward signature database".to_vec(),
            dbx: b"keyward forbidden signatures".to_vec(),
            bootloader: b"keyward simulated boot loader".to_vec(),
            kernel: b"keyward simulated kernel".to_vec(),
            cmdline: "/vmlinuz root=/dev/vda1 ro quiet".to_owned(),
        }
    }

    /// SHA-256 of [`BootImage::bootloader`]: its PCR 4 digest.
    pub fn bootloader_digest(&self) -> [u8; 32] {
        sha256(&[&self.bootloader])
    }

    /// SHA-256 of [`BootImage::kernel`]: its PCR 4 digest.
    pub fn kernel_digest(&self) -> [u8; 32] {
        sha256(&[&self.kernel])
    }
}

/// What a logged event measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Measurement {
    /// The `Spec ID Event03` header (EV_NO_ACTION, never extended).
    SpecId,
    /// EV_S_CRTM_VERSION, PCR 0.
    ScrtmVersion,
    /// EV_EFI_PLATFORM_FIRMWARE_BLOB, PCR 0.
    FirmwareBlob,
    /// The `SecureBoot` variable, PCR 7.
    SecureBootVariable,
    /// The `PK` variable, PCR 7.
    PlatformKey,
    /// The `KEK` variable, PCR 7.
    KeyExchangeKeys,
    /// The `db` variable, PCR 7.
    SignatureDb,
    /// The `dbx` variable, PCR 7.
    ForbiddenSignatureDb,
    /// EV_SEPARATOR (see [`LoggedEvent::pcr`] for which).
    Separator,
    /// "Calling EFI Application from Boot Option", PCR 4.
    CallingEfiApplication,
    /// The `db` entry that verified the boot loader, PCR 7 (Secure Boot only).
    DbAuthority,
    /// The boot loader, PCR 4.
    Bootloader,
    /// A GRUB command string (`grub_cmd: `), PCR 8.
    GrubCommand,
    /// The kernel command line (`kernel_cmdline: `), PCR 8.
    KernelCommandLine,
    /// GRUB's measurement of the kernel file, PCR 9.
    KernelFile,
    /// The kernel, PCR 4.
    Kernel,
    /// "Exit Boot Services Invocation", PCR 5.
    ExitBootServicesInvocation,
    /// "Exit Boot Services Returned with Success", PCR 5.
    ExitBootServicesReturned,
}

/// One event of a simulated log: what it is and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    /// Position in the log (the Spec ID event is 0), as the parser counts.
    pub index: usize,
    /// What it measures.
    pub what: Measurement,
    /// Its PCR.
    pub pcr: u8,
    /// Its event type (TCG value).
    pub event_type: u32,
    /// Its SHA-256 digest (zeros for the Spec ID event, which carries a SHA-1
    /// placeholder instead).
    pub digest: [u8; 32],
    /// The whole record's bytes in [`BootLogOutput::log`].
    pub record: Range<usize>,
    /// The SHA-256 digest's bytes (empty for the Spec ID event).
    pub digest_bytes: Range<usize>,
    /// The event data's bytes.
    pub data: Range<usize>,
}

/// An edit of a simulated log, by event index ([`LoggedEvent::index`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tamper {
    /// Drop the event's record.
    Remove(usize),
    /// Exchange two events' records.
    Swap(usize, usize),
    /// Flip the low bit of the first byte of the event's SHA-256 digest.
    FlipDigest(usize),
    /// Flip the low bit of the last byte of the event's data (for the
    /// `SecureBoot` variable: its value).
    FlipLastDataByte(usize),
}

/// A simulated boot: the event log and the extends it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootLogOutput {
    /// The event log, as `/sys/kernel/security/tpm0/binary_bios_measurements`
    /// would hold it.
    pub log: Vec<u8>,
    /// `(PCR, SHA-256 digest)` for every extended event, in log order.
    pub extends: Vec<(u8, [u8; 32])>,
    /// Every event, the Spec ID event included, in log order.
    pub events: Vec<LoggedEvent>,
}

impl BootLogOutput {
    /// The first event measuring `what`.
    pub fn first(&self, what: Measurement) -> Option<&LoggedEvent> {
        self.events.iter().find(|e| e.what == what)
    }

    /// The separator of `pcr`.
    pub fn separator(&self, pcr: u8) -> Option<&LoggedEvent> {
        self.events
            .iter()
            .find(|e| e.what == Measurement::Separator && e.pcr == pcr)
    }

    /// The SHA-256 values `pcrs` hold after the extends, starting from zeros,
    /// computed here (not by the verifier under test).
    pub fn pcr_values(&self, pcrs: &[u8]) -> Vec<(u8, [u8; 32])> {
        pcrs.iter()
            .map(|&pcr| {
                let value = self
                    .extends
                    .iter()
                    .filter(|(index, _)| *index == pcr)
                    .fold([0u8; SHA256_LEN], |value, (_, digest)| {
                        sha256(&[&value, digest])
                    });
                (pcr, value)
            })
            .collect()
    }

    /// The log edited as `tamper` says, or `None` for an unknown event index
    /// (or a swap of an event with itself).
    pub fn tampered(&self, tamper: Tamper) -> Option<Vec<u8>> {
        let record = |index: usize| self.events.get(index).map(|e| e.record.clone());
        match tamper {
            Tamper::Remove(index) => {
                let r = record(index)?;
                Some([self.log.get(..r.start)?, self.log.get(r.end..)?].concat())
            }
            Tamper::Swap(a, b) => {
                let (first, second) = (record(a.min(b))?, record(a.max(b))?);
                if first == second {
                    return None;
                }
                Some(
                    [
                        self.log.get(..first.start)?,
                        self.log.get(second.clone())?,
                        self.log.get(first.end..second.start)?,
                        self.log.get(first)?,
                        self.log.get(second.end..)?,
                    ]
                    .concat(),
                )
            }
            Tamper::FlipDigest(index) => {
                let at = self.events.get(index)?.digest_bytes.clone();
                flip(&self.log, at.start, at.end > at.start)
            }
            Tamper::FlipLastDataByte(index) => {
                let at = self.events.get(index)?.data.clone();
                flip(&self.log, at.end.checked_sub(1)?, at.end > at.start)
            }
        }
    }
}

fn flip(log: &[u8], at: usize, in_range: bool) -> Option<Vec<u8>> {
    if !in_range {
        return None;
    }
    let mut out = log.to_vec();
    *out.get_mut(at)? ^= 0x01;
    Some(out)
}

/// Boots `image`: its event log, extends and event positions.
pub fn boot(image: &BootImage) -> BootLogOutput {
    let mut w = LogWriter::default();
    w.spec_id();

    // PCR 0: the S-CRTM and the platform firmware.
    w.hashed(
        Measurement::ScrtmVersion,
        0,
        EV_S_CRTM_VERSION,
        &ucs2_nul(&image.scrtm_version),
    );
    w.measured(
        Measurement::FirmwareBlob,
        0,
        EV_EFI_PLATFORM_FIRMWARE_BLOB,
        sha256(&[&image.firmware]),
        &firmware_blob(FIRMWARE_VOLUME_BASE, image.firmware.len()),
    );

    // PCR 7: the Secure Boot policy. EV_EFI_VARIABLE_DRIVER_CONFIG digests
    // cover the whole UEFI_VARIABLE_DATA, so the data verifies.
    let secure_boot = [u8::from(image.secure_boot)];
    let variables: [(Measurement, [u8; 16], &str, &[u8]); 5] = [
        (
            Measurement::SecureBootVariable,
            EFI_GLOBAL_VARIABLE,
            "SecureBoot",
            &secure_boot,
        ),
        (
            Measurement::PlatformKey,
            EFI_GLOBAL_VARIABLE,
            "PK",
            &image.pk,
        ),
        (
            Measurement::KeyExchangeKeys,
            EFI_GLOBAL_VARIABLE,
            "KEK",
            &image.kek,
        ),
        (
            Measurement::SignatureDb,
            EFI_IMAGE_SECURITY_DATABASE,
            "db",
            &image.db,
        ),
        (
            Measurement::ForbiddenSignatureDb,
            EFI_IMAGE_SECURITY_DATABASE,
            "dbx",
            &image.dbx,
        ),
    ];
    for (what, guid, name, contents) in variables {
        w.hashed(
            what,
            7,
            EV_EFI_VARIABLE_DRIVER_CONFIG,
            &variable_data(guid, name, contents),
        );
    }
    // The order of the GCE firmware log in shared/testdata: PCR 7's separator
    // first, the boot attempt, then separators 0–6.
    w.separator(7);
    w.hashed(
        Measurement::CallingEfiApplication,
        4,
        EV_EFI_ACTION,
        b"Calling EFI Application from Boot Option",
    );
    for pcr in 0..7 {
        w.separator(pcr);
    }

    // The boot loader: verified against db (Secure Boot), then measured.
    if image.secure_boot && !image.db.is_empty() {
        w.hashed(
            Measurement::DbAuthority,
            7,
            EV_EFI_VARIABLE_AUTHORITY,
            &variable_data(EFI_IMAGE_SECURITY_DATABASE, "db", &image.db),
        );
    }
    w.measured(
        Measurement::Bootloader,
        4,
        EV_EFI_BOOT_SERVICES_APPLICATION,
        image.bootloader_digest(),
        &image_load_event(
            BOOTLOADER_LOAD_ADDRESS,
            image.bootloader.len(),
            BOOTLOADER_PATH,
        ),
    );

    // GRUB 2.04+: logs `<prefix><string>\0`, measures `<string>` (PCR 8);
    // measures the files it loads (PCR 9).
    let linux = format!("linux {}", image.cmdline);
    w.grub_string(Measurement::GrubCommand, "grub_cmd: ", &linux);
    w.grub_string(
        Measurement::KernelCommandLine,
        "kernel_cmdline: ",
        &image.cmdline,
    );
    w.measured(
        Measurement::KernelFile,
        9,
        EV_IPL,
        image.kernel_digest(),
        format!("{GRUB_KERNEL_FILE}\0").as_bytes(),
    );
    w.measured(
        Measurement::Kernel,
        4,
        EV_EFI_BOOT_SERVICES_APPLICATION,
        image.kernel_digest(),
        &image_load_event(KERNEL_LOAD_ADDRESS, image.kernel.len(), KERNEL_PATH),
    );

    // PCR 5: the kernel's EFI stub leaves boot services.
    w.hashed(
        Measurement::ExitBootServicesInvocation,
        5,
        EV_EFI_ACTION,
        b"Exit Boot Services Invocation",
    );
    w.hashed(
        Measurement::ExitBootServicesReturned,
        5,
        EV_EFI_ACTION,
        b"Exit Boot Services Returned with Success",
    );
    w.finish()
}

/// Boots `image`, passing every extend to `extend` in log order (e.g.
/// `|pcr, digest| tpm.extend_pcr_sha256(pcr, digest)`), and returns the log.
/// Stops at the first failed extend.
pub fn measure<E>(
    image: &BootImage,
    extend: &mut dyn FnMut(u8, [u8; 32]) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    let output = boot(image);
    for (pcr, digest) in &output.extends {
        extend(*pcr, *digest)?;
    }
    Ok(output.log)
}

/// A rules boot policy (`keyward_attest::boot_policy::BootPolicy`, serde
/// form) that `image` satisfies when [`BOOT_PCRS`] are quoted: Secure Boot
/// required if the image has it on, its boot loader and kernel as the only
/// allowed EFI applications, its command line as the only allowed one, its
/// S-CRTM version required.
pub fn boot_policy_json(image: &BootImage) -> Value {
    json!({
        "rules": {
            "require_secure_boot": image.secure_boot,
            "allowed_efi_applications": [
                hex::encode(image.bootloader_digest()),
                hex::encode(image.kernel_digest()),
            ],
            "allowed_kernel_command_lines": [image.cmdline],
            "required_scrtm_version": image.scrtm_version,
        }
    })
}

/// A golden-PCR boot policy (serde form) over SHA-256 values, e.g. those of
/// [`BootLogOutput::pcr_values`] or read back from the TPM.
pub fn golden_policy_json(pcrs: &[(u8, [u8; 32])]) -> Value {
    let bank: Map<String, Value> = pcrs
        .iter()
        .map(|(pcr, value)| (pcr.to_string(), Value::String(hex::encode(value))))
        .collect();
    json!({ "golden_pcrs": { "sha256": bank } })
}

#[derive(Default)]
struct LogWriter {
    log: Vec<u8>,
    extends: Vec<(u8, [u8; 32])>,
    events: Vec<LoggedEvent>,
}

impl LogWriter {
    /// PFP §10.4.5.1: the first event, in the SHA-1 layout
    /// (TCG_PCClientPCREvent): EV_NO_ACTION in PCR 0, a zero digest, and a
    /// TCG_EfiSpecIDEvent listing the algorithms of every later event.
    fn spec_id(&mut self) {
        let mut data = b"Spec ID Event03\0".to_vec();
        data.extend_from_slice(&0u32.to_le_bytes()); // platformClass: client
        data.extend_from_slice(&[0, 2, 0]); // specVersionMinor, Major, errata
        data.push(2); // uintnSize: UINT64
        data.extend_from_slice(&1u32.to_le_bytes()); // numberOfAlgorithms
        data.extend_from_slice(&TPM_ALG_SHA256.to_le_bytes());
        data.extend_from_slice(&u16_len(SHA256_LEN).to_le_bytes());
        data.push(0); // vendorInfoSize

        let start = self.log.len();
        self.log.extend_from_slice(&0u32.to_le_bytes());
        self.log.extend_from_slice(&EV_NO_ACTION.to_le_bytes());
        self.log.extend_from_slice(&[0u8; 20]);
        self.log
            .extend_from_slice(&u32_len(data.len()).to_le_bytes());
        let data_start = self.log.len();
        self.log.extend_from_slice(&data);
        self.events.push(LoggedEvent {
            index: 0,
            what: Measurement::SpecId,
            pcr: 0,
            event_type: EV_NO_ACTION,
            digest: [0; SHA256_LEN],
            record: start..self.log.len(),
            digest_bytes: start..start,
            data: data_start..self.log.len(),
        });
    }

    /// PFP §10.2.2: a TCG_PCR_EVENT2 with one (SHA-256) digest, extended.
    fn measured(
        &mut self,
        what: Measurement,
        pcr: u8,
        event_type: u32,
        digest: [u8; 32],
        data: &[u8],
    ) {
        let start = self.log.len();
        self.log.extend_from_slice(&u32::from(pcr).to_le_bytes());
        self.log.extend_from_slice(&event_type.to_le_bytes());
        self.log.extend_from_slice(&1u32.to_le_bytes()); // TPML_DIGEST_VALUES.count
        self.log.extend_from_slice(&TPM_ALG_SHA256.to_le_bytes());
        let digest_start = self.log.len();
        self.log.extend_from_slice(&digest);
        let digest_end = self.log.len();
        self.log
            .extend_from_slice(&u32_len(data.len()).to_le_bytes());
        let data_start = self.log.len();
        self.log.extend_from_slice(data);
        self.extends.push((pcr, digest));
        self.events.push(LoggedEvent {
            index: self.events.len(),
            what,
            pcr,
            event_type,
            digest,
            record: start..self.log.len(),
            digest_bytes: digest_start..digest_end,
            data: data_start..self.log.len(),
        });
    }

    /// An event whose digest is the hash of its data.
    fn hashed(&mut self, what: Measurement, pcr: u8, event_type: u32, data: &[u8]) {
        self.measured(what, pcr, event_type, sha256(&[data]), data);
    }

    /// PFP §10.4.1: EV_SEPARATOR with the 4-byte value 0 (no error).
    fn separator(&mut self, pcr: u8) {
        self.hashed(Measurement::Separator, pcr, EV_SEPARATOR, &[0; 4]);
    }

    /// GRUB 2.04's PCR 8 string: `<prefix><text>\0` logged, `<text>` measured.
    fn grub_string(&mut self, what: Measurement, prefix: &str, text: &str) {
        let logged = format!("{prefix}{text}\0");
        self.measured(
            what,
            8,
            EV_IPL,
            sha256(&[text.as_bytes()]),
            logged.as_bytes(),
        );
    }

    fn finish(self) -> BootLogOutput {
        BootLogOutput {
            log: self.log,
            extends: self.extends,
            events: self.events,
        }
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    for part in parts {
        ctx.update(part);
    }
    <[u8; 32]>::try_from(ctx.finish().as_ref()).unwrap_or([0; SHA256_LEN])
}

fn u16_len(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

fn u32_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn u64_len(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A NUL-terminated UCS-2 string (the S-CRTM version, device-path file names).
fn ucs2_nul(text: &str) -> Vec<u8> {
    let mut out = utf16le(text);
    out.extend_from_slice(&[0, 0]);
    out
}

/// PFP UEFI_VARIABLE_DATA { VariableName GUID, UnicodeNameLength
/// (characters, no terminator), VariableDataLength, UnicodeName, VariableData }.
fn variable_data(guid: [u8; 16], name: &str, contents: &[u8]) -> Vec<u8> {
    let name_utf16 = utf16le(name);
    let mut out = guid.to_vec();
    out.extend_from_slice(&u64_len(name.encode_utf16().count()).to_le_bytes());
    out.extend_from_slice(&u64_len(contents.len()).to_le_bytes());
    out.extend_from_slice(&name_utf16);
    out.extend_from_slice(contents);
    out
}

/// PFP UEFI_PLATFORM_FIRMWARE_BLOB { BlobBase, BlobLength }.
fn firmware_blob(base: u64, len: usize) -> Vec<u8> {
    let mut out = base.to_le_bytes().to_vec();
    out.extend_from_slice(&u64_len(len).to_le_bytes());
    out
}

/// PFP UEFI_IMAGE_LOAD_EVENT { ImageLocationInMemory,
/// ImageLengthInMemory, ImageLinkTimeAddress, LengthOfDevicePath, DevicePath }
/// with UINTN = 8 bytes (the Spec ID event's uintnSize 2). The device path is
/// one File Path Media Device Path node (UEFI: type 4, subtype 4) and the
/// end node.
fn image_load_event(address: u64, len: usize, path: &str) -> Vec<u8> {
    let name = ucs2_nul(path);
    let mut device_path = vec![0x04, 0x04];
    device_path.extend_from_slice(&u16_len(name.len().saturating_add(4)).to_le_bytes());
    device_path.extend_from_slice(&name);
    device_path.extend_from_slice(&[0x7f, 0xff, 0x04, 0x00]);

    let mut out = address.to_le_bytes().to_vec();
    out.extend_from_slice(&u64_len(len).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&u64_len(device_path.len()).to_le_bytes());
    out.extend_from_slice(&device_path);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_tile_the_log_and_extends_follow_the_events() {
        let output = boot(&BootImage::example());
        let mut at = 0;
        for (i, event) in output.events.iter().enumerate() {
            assert_eq!(event.index, i);
            assert_eq!(event.record.start, at, "event {i}");
            assert_eq!(event.data.end, event.record.end, "event {i}");
            at = event.record.end;
        }
        assert_eq!(at, output.log.len());
        let extended: Vec<(u8, [u8; 32])> = output
            .events
            .iter()
            .skip(1)
            .map(|e| (e.pcr, e.digest))
            .collect();
        assert_eq!(extended, output.extends);
        for pcr in 0..8 {
            assert!(output.separator(pcr).is_some(), "separator {pcr}");
        }
    }

    #[test]
    fn secure_boot_off_measures_zero_and_no_authority() {
        let mut image = BootImage::example();
        let on = boot(&image);
        image.secure_boot = false;
        let off = boot(&image);
        let value = |o: &BootLogOutput| {
            let e = o.first(Measurement::SecureBootVariable).unwrap();
            o.log[e.data.end - 1]
        };
        assert_eq!((value(&on), value(&off)), (1, 0));
        assert!(on.first(Measurement::DbAuthority).is_some());
        assert!(off.first(Measurement::DbAuthority).is_none());
    }

    #[test]
    fn tampering_edits_exactly_what_it_names() {
        let output = boot(&BootImage::example());
        let kernel = output.first(Measurement::Kernel).unwrap().clone();
        let removed = output.tampered(Tamper::Remove(kernel.index)).unwrap();
        assert_eq!(removed.len(), output.log.len() - kernel.record.len());
        let swapped = output.tampered(Tamper::Swap(4, 3)).unwrap();
        assert_eq!(swapped.len(), output.log.len());
        assert_ne!(swapped, output.log);
        let flipped = output.tampered(Tamper::FlipDigest(kernel.index)).unwrap();
        assert_eq!(
            flipped[kernel.digest_bytes.start],
            kernel.digest[0] ^ 1,
            "the digest's first byte"
        );
        assert_eq!(output.tampered(Tamper::Swap(3, 3)), None);
        assert_eq!(output.tampered(Tamper::Remove(output.events.len())), None);
        assert_eq!(output.tampered(Tamper::FlipDigest(0)), None);
    }
}

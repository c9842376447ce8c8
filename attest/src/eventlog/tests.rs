use std::path::PathBuf;

use super::*;
use crate::digest::{HashAlg, PcrValues};

fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/tpm/eventlogs")
}

struct Expected {
    file: String,
    pcrs: PcrValues,
}

fn manifest() -> Vec<Expected> {
    let text = std::fs::read_to_string(shared_dir().join("manifest.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let mut pcrs = PcrValues::new();
            for (bank, values) in entry["expected_pcrs"].as_object().unwrap() {
                let alg = HashAlg::from_name(bank).unwrap();
                for (index, value) in values.as_object().unwrap() {
                    let index: u32 = index.parse().unwrap();
                    pcrs.insert(alg, index, hex::decode(value.as_str().unwrap()).unwrap())
                        .unwrap();
                }
            }
            Expected {
                file: entry["file"].as_str().unwrap().to_owned(),
                pcrs,
            }
        })
        .collect()
}

fn real_log(name: &str) -> (Vec<u8>, PcrValues) {
    let expected = manifest().into_iter().find(|e| e.file == name).unwrap();
    (
        std::fs::read(shared_dir().join(name)).unwrap(),
        expected.pcrs,
    )
}

#[test]
fn every_real_log_replays_to_every_expected_pcr() {
    let entries = manifest();
    assert_eq!(entries.len(), 6);
    for entry in entries {
        let bytes = std::fs::read(shared_dir().join(&entry.file)).unwrap();
        let log = BootLog::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        let replayed = log.replay();
        for (alg, pcr, value) in entry.pcrs.iter() {
            assert_eq!(
                replayed.get(alg, pcr).map(hex::encode),
                Some(hex::encode(value)),
                "{} {alg:?} PCR {pcr}",
                entry.file
            );
        }
        let verified = log
            .verify(&entry.pcrs)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        assert_eq!(verified.verified_pcrs(), &entry.pcrs, "{}", entry.file);
        eprintln!("{}: {:#?}", entry.file, verified.facts());
    }
}

fn generated(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/eventlog")
            .join(name),
    )
    .unwrap()
}

fn generated_expected() -> PcrValues {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/eventlog/expected.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut pcrs = PcrValues::new();
    for (bank, values) in json.as_object().unwrap() {
        for (index, value) in values.as_object().unwrap() {
            pcrs.insert(
                HashAlg::from_name(bank).unwrap(),
                index.parse().unwrap(),
                hex::decode(value.as_str().unwrap()).unwrap(),
            )
            .unwrap();
        }
    }
    pcrs
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(HashAlg::Sha256.hash(&[bytes]))
}

/// Byte range of event `index` (header to end of data).
fn event_range(bytes: &[u8], index: usize) -> std::ops::Range<usize> {
    let log = BootLog::parse(bytes).unwrap();
    let start = log.event(index).unwrap().offset();
    let end = log.event(index + 1).map_or(bytes.len(), |e| e.offset());
    start..end
}

/// Byte range of event `index`'s data.
fn data_range(bytes: &[u8], index: usize) -> std::ops::Range<usize> {
    let log = BootLog::parse(bytes).unwrap();
    let len = log.event(index).unwrap().unverified_data().len();
    let end = event_range(bytes, index).end;
    end - len..end
}

fn without_pcrs(pcrs: &PcrValues, drop: &[(HashAlg, u8)]) -> PcrValues {
    let mut out = PcrValues::new();
    for (alg, pcr, value) in pcrs.iter() {
        if !drop.contains(&(alg, pcr)) {
            out.insert(alg, u32::from(pcr), value.to_vec()).unwrap();
        }
    }
    out
}

fn mismatch(result: Result<VerifiedBootLog, BootLogError>) -> (HashAlg, u8) {
    match result {
        Err(BootLogError::PcrMismatch { alg, pcr, .. }) => (alg, pcr),
        other => panic!("expected a PCR mismatch, got {other:?}"),
    }
}

const RHEL8_APPS: [&str; 3] = [
    "40d6cae02973789080cf4c3a9ad11b5a0a4d8bba4438ab96e276cc784454dee7",
    "e8a268c431da72caaae407f729f602b9dbf5d1d43492d4a51cc2b688a08586e3",
    "e4c0382f98feaebfd43923a85fd6da9a20e1a48524a4d5928c31850ca1a96a6e",
];

fn app_digests(facts: &BootFacts) -> Vec<String> {
    facts
        .efi_applications()
        .unwrap()
        .iter()
        .map(|a| a.digest.to_string())
        .collect()
}

#[test]
fn rhel8_facts() {
    let (bytes, pcrs) = real_log("rhel8-uefi.bin");
    let log = BootLog::parse(&bytes).unwrap();
    assert_eq!(log.format(), LogFormat::CryptoAgile);
    assert_eq!(
        log.banks().collect::<Vec<_>>(),
        [HashAlg::Sha1, HashAlg::Sha256, HashAlg::Sha384]
    );
    let verified = log.verify(&pcrs).unwrap();
    let facts = verified.facts();
    assert_eq!(facts.secure_boot(), SecureBoot::Enabled { event_index: 3 });
    // The same digests google/go-tpm-tools expects for this log.
    assert_eq!(app_digests(facts), RHEL8_APPS);
    let cmdlines = facts.kernel_command_lines();
    assert_eq!(cmdlines.len(), 1);
    assert_eq!(cmdlines[0].source, CommandLineSource::Grub);
    assert_eq!(cmdlines[0].event_index, 78);
    assert!(
        cmdlines[0]
            .text
            .starts_with("(hd0,gpt2)/boot/vmlinuz-4.18.0-240.22.1.el8_3.x86_64 root=UUID=")
    );
    assert!(cmdlines[0].text.ends_with("console=ttyS0,38400n8"));
    assert_eq!(facts.scrtm_versions().len(), 1);
    assert_eq!(facts.scrtm_versions()[0].text(), "GCE Virtual Firmware v1");
    let separator_pcrs: Vec<u8> = facts.separators().iter().map(|s| s.pcr).collect();
    assert_eq!(separator_pcrs, [7, 0, 1, 2, 3, 4, 5, 6]);
    // What each event's digest vouches for.
    let check = |i| verified.event(i).unwrap().data_verification();
    assert_eq!(check(0), DataVerification::NotExtended);
    assert_eq!(check(3), DataVerification::Whole);
    assert_eq!(check(23), DataVerification::DigestMismatch); // PE hash, not data
    assert_eq!(check(28), DataVerification::GrubString);
    assert_eq!(
        verified.event(28).unwrap().verified_data(),
        Some(&b"set pager=1"[..])
    );
    assert_eq!(verified.event(23).unwrap().verified_data(), None);
}

#[test]
fn other_real_logs_facts() {
    let facts = |name| {
        let (bytes, pcrs) = real_log(name);
        BootLog::parse(&bytes)
            .unwrap()
            .verify(&pcrs)
            .unwrap()
            .facts()
            .clone()
    };
    let ubuntu = facts("ubuntu-2104-no-dbx.bin");
    assert_eq!(
        ubuntu.secure_boot(),
        SecureBoot::Disabled { event_index: 3 }
    );
    assert_eq!(
        app_digests(&ubuntu),
        [
            "d99c93fcb042dbe52707bbde371c75fcf081dd5b0c88a195d44cc57536f6f521",
            "b0a836fec2faf4a9bea0e1a5f1945bc86ddc03ac98ce0ae172ed9b1e536d7595",
        ]
    );
    assert_eq!(
        ubuntu.kernel_command_lines()[0].text,
        "/boot/vmlinuz-5.11.0-1008-gcp root=PARTUUID=bf817bdf-6a3a-4221-8edb-2c1ca7c5537f ro \
         scsi_mod.use_blk_mq=Y ima_hash=sha256 console=ttyS0 panic=-1"
    );

    // Quirk: SecureBoot measured with no data (variable absent) reads as off.
    let arch = facts("arch-linux-workstation.bin");
    assert_eq!(arch.secure_boot(), SecureBoot::Disabled { event_index: 3 });
    assert_eq!(
        arch.scrtm_versions()[0].text(),
        "1efb6b540c1d5540a4ad4ef4bf17b83a"
    );
    // Quirk: systemd-boot's load options logged one byte short still verify.
    let cmdline = &arch.kernel_command_lines()[0];
    assert_eq!(cmdline.source, CommandLineSource::SystemdBoot);
    assert!(
        cmdline
            .text
            .starts_with("initrd=\\intel-ucode.img initrd=\\initramfs-linux-lts.img")
    );
    assert!(cmdline.text.ends_with("l1tf=off"));

    // Legacy SHA-1 log: no SHA-256 bank, so no application digests.
    let debian = facts("debian-10.bin");
    assert_eq!(debian.secure_boot(), SecureBoot::Enabled { event_index: 2 });
    assert_eq!(debian.efi_applications(), None);

    let cos = facts("cos-85-amd-sev.bin");
    assert_eq!(cos.secure_boot(), SecureBoot::Enabled { event_index: 3 });
    assert_eq!(cos.efi_applications().unwrap().len(), 3);
    assert_eq!(cos.kernel_command_lines().len(), 1);
}

#[test]
fn the_systemd_boot_quirk_is_narrow() {
    let (bytes, pcrs) = real_log("arch-linux-workstation.bin");
    let verified = BootLog::parse(&bytes).unwrap().verify(&pcrs).unwrap();
    assert_eq!(
        verified.event(24).unwrap().data_verification(),
        DataVerification::SystemdBootTruncatedUtf16
    );
    // The same bytes logged as anything but EV_IPL are not verified.
    let mut relabelled = bytes.clone();
    let at = event_range(&bytes, 24).start + 4;
    relabelled[at..at + 4].copy_from_slice(&EventType::EFI_ACTION.0.to_le_bytes());
    let verified = BootLog::parse(&relabelled).unwrap().verify(&pcrs).unwrap();
    assert_eq!(
        verified.event(24).unwrap().data_verification(),
        DataVerification::DigestMismatch
    );
    assert!(verified.facts().kernel_command_lines().is_empty());
}

#[test]
fn the_generated_log_replays_like_swtpm_with_startup_locality_3() {
    let bytes = generated("locality3.bin");
    let log = BootLog::parse(&bytes).unwrap();
    assert_eq!(log.startup_locality(), Some(3));
    let expected = generated_expected();
    let verified = log.verify(&expected).unwrap();
    assert_eq!(verified.verified_pcrs(), &expected);
    let facts = verified.facts();
    assert_eq!(facts.secure_boot(), SecureBoot::Enabled { event_index: 3 });
    assert_eq!(
        facts.scrtm_versions()[0].text(),
        "Keyward Test Firmware 1.0"
    );
    assert_eq!(
        app_digests(facts),
        [sha256_hex(b"keyward test boot application")]
    );
    let cmdlines: Vec<&str> = facts
        .kernel_command_lines()
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    assert_eq!(cmdlines, ["/vmlinuz root=/dev/vda1 ro quiet"]);

    // The same log claiming startup locality 0 no longer matches PCR 0.
    let mut tampered = bytes.clone();
    let locality = data_range(&bytes, 1).end - 1;
    assert_eq!(tampered[locality], 3);
    tampered[locality] = 0;
    let log = BootLog::parse(&tampered).unwrap();
    assert_eq!(log.startup_locality(), Some(0));
    assert_eq!(mismatch(log.verify(&expected)), (HashAlg::Sha1, 0));
}

#[test]
fn unknown_algorithms_are_skipped_by_their_declared_size() {
    let log = BootLog::parse(&generated("unknown-algorithm.bin")).unwrap();
    let ids: Vec<u16> = log.algorithms().iter().map(|a| a.alg_id).collect();
    assert_eq!(ids, [0x0004, 0x0012, 0x000B]);
    assert_eq!(
        log.banks().collect::<Vec<_>>(),
        [HashAlg::Sha1, HashAlg::Sha256]
    );
    let verified = log.verify(&generated_expected()).unwrap();
    assert!(verified.facts().secure_boot().is_enabled());
}

#[test]
fn a_removed_event_is_detected() {
    let (bytes, pcrs) = real_log("rhel8-uefi.bin");
    let mut tampered = bytes.clone();
    tampered.drain(event_range(&bytes, 23)); // the first EFI application
    assert_eq!(
        mismatch(BootLog::parse(&tampered).unwrap().verify(&pcrs)),
        (HashAlg::Sha1, 4)
    );
}

#[test]
fn swapped_events_are_detected() {
    let (bytes, pcrs) = real_log("rhel8-uefi.bin");
    let (a, b) = (event_range(&bytes, 28), event_range(&bytes, 29));
    let tampered = [
        &bytes[..a.start],
        &bytes[b.clone()],
        &bytes[a],
        &bytes[b.end..],
    ]
    .concat();
    assert_eq!(
        mismatch(BootLog::parse(&tampered).unwrap().verify(&pcrs)),
        (HashAlg::Sha1, 8)
    );
}

#[test]
fn a_changed_digest_byte_is_detected() {
    let (bytes, pcrs) = real_log("rhel8-uefi.bin");
    // pcrIndex, eventType, count, SHA-1 (id + 20 bytes), then the SHA-256 id.
    let at = event_range(&bytes, 3).start + 4 + 4 + 4 + 2 + 20 + 2;
    let log = BootLog::parse(&bytes).unwrap();
    assert_eq!(
        log.event(3).unwrap().digest(HashAlg::Sha256).unwrap()[0],
        bytes[at]
    );
    let mut tampered = bytes.clone();
    tampered[at] ^= 0x01;
    assert_eq!(
        mismatch(BootLog::parse(&tampered).unwrap().verify(&pcrs)),
        (HashAlg::Sha256, 7)
    );
}

#[test]
fn a_changed_data_byte_removes_the_fact() {
    let (bytes, pcrs) = real_log("rhel8-uefi.bin");
    // SecureBoot = 1 becomes 0: the replay still matches, the data no longer
    // hashes to its digest, so Secure Boot is no longer established.
    let mut tampered = bytes.clone();
    let at = data_range(&bytes, 3).end - 1;
    assert_eq!(tampered[at], 1);
    tampered[at] = 0;
    let verified = BootLog::parse(&tampered).unwrap().verify(&pcrs).unwrap();
    assert_eq!(
        verified.event(3).unwrap().data_verification(),
        DataVerification::DigestMismatch
    );
    assert_eq!(verified.event(3).unwrap().verified_data(), None);
    assert_eq!(verified.facts().secure_boot(), SecureBoot::NotMeasured);

    // One byte of the kernel command line: the command line disappears.
    let mut tampered = bytes.clone();
    tampered[data_range(&bytes, 78).start + 40] ^= 0x20;
    let verified = BootLog::parse(&tampered).unwrap().verify(&pcrs).unwrap();
    assert!(verified.facts().kernel_command_lines().is_empty());
}

#[test]
fn a_relabelled_application_is_still_an_application() {
    let (bytes, pcrs) = real_log("rhel8-uefi.bin");
    let mut tampered = bytes.clone();
    let at = event_range(&bytes, 23).start + 4;
    tampered[at..at + 4].copy_from_slice(&EventType::EFI_ACTION.0.to_le_bytes());
    let verified = BootLog::parse(&tampered).unwrap().verify(&pcrs).unwrap();
    let apps = verified.facts().efi_applications().unwrap();
    assert_eq!(apps[0].event_type, EventType::EFI_ACTION);
    assert_eq!(app_digests(verified.facts()), RHEL8_APPS);
}

#[test]
fn truncation_at_every_length_never_panics() {
    let mut logs: Vec<Vec<u8>> = manifest()
        .iter()
        .map(|e| std::fs::read(shared_dir().join(&e.file)).unwrap())
        .collect();
    logs.push(generated("locality3.bin"));
    logs.push(generated("unknown-algorithm.bin"));
    for bytes in logs {
        let full = BootLog::parse(&bytes).unwrap();
        let boundaries: Vec<usize> = full.events().map(|e| e.offset()).skip(1).collect();
        for len in 0..bytes.len() {
            match BootLog::parse(&bytes[..len]) {
                Ok(log) => {
                    assert!(boundaries.contains(&len), "parsed at {len}");
                    let _ = log.verify(&PcrValues::new());
                }
                Err(ParseError::Empty | ParseError::Truncated { .. }) => {
                    assert!(!boundaries.contains(&len))
                }
                Err(e) => panic!("length {len}: {e:?}"),
            }
        }
    }
}

/// Builds crypto-agile logs from parts, for the malformed cases.
struct Builder {
    algorithms: Vec<(u16, u16)>,
    events: Vec<u8>,
}

impl Builder {
    fn new() -> Self {
        Self::with_algorithms(&[(0x0004, 20), (0x000B, 32)])
    }

    fn with_algorithms(algorithms: &[(u16, u16)]) -> Self {
        Self {
            algorithms: algorithms.to_vec(),
            events: Vec::new(),
        }
    }

    fn spec_id_data(&self) -> Vec<u8> {
        let mut data = b"Spec ID Event03\0".to_vec();
        data.extend_from_slice(&0u32.to_le_bytes());
        data.extend_from_slice(&[0, 2, 0, 2]);
        data.extend_from_slice(&u32::try_from(self.algorithms.len()).unwrap().to_le_bytes());
        for (alg, size) in &self.algorithms {
            data.extend_from_slice(&alg.to_le_bytes());
            data.extend_from_slice(&size.to_le_bytes());
        }
        data.push(0);
        data
    }

    /// A raw event with the given digests.
    fn raw(
        &mut self,
        pcr: u32,
        event_type: EventType,
        digests: &[(u16, Vec<u8>)],
        data: &[u8],
    ) -> &mut Self {
        self.events.extend_from_slice(&pcr.to_le_bytes());
        self.events.extend_from_slice(&event_type.0.to_le_bytes());
        self.events
            .extend_from_slice(&u32::try_from(digests.len()).unwrap().to_le_bytes());
        for (alg, digest) in digests {
            self.events.extend_from_slice(&alg.to_le_bytes());
            self.events.extend_from_slice(digest);
        }
        self.events
            .extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        self.events.extend_from_slice(data);
        self
    }

    /// An event whose digests are the hashes of its data.
    fn event(&mut self, pcr: u32, event_type: EventType, data: &[u8]) -> &mut Self {
        let digests: Vec<(u16, Vec<u8>)> = self
            .algorithms
            .iter()
            .map(|(alg, size)| match HashAlg::from_tpm_alg_id(*alg) {
                Some(h) => (*alg, h.hash(&[data])),
                None => (*alg, vec![0xa5; usize::from(*size)]),
            })
            .collect();
        self.raw(pcr, event_type, &digests, data)
    }

    fn no_action(&mut self, pcr: u32, data: &[u8]) -> &mut Self {
        let digests: Vec<(u16, Vec<u8>)> = self
            .algorithms
            .iter()
            .map(|(alg, size)| (*alg, vec![0; usize::from(*size)]))
            .collect();
        self.raw(pcr, EventType::NO_ACTION, &digests, data)
    }

    fn bytes_with_spec_id(
        &self,
        pcr: u32,
        event_type: EventType,
        digest: [u8; 20],
        data: &[u8],
    ) -> Vec<u8> {
        let mut out = pcr.to_le_bytes().to_vec();
        out.extend_from_slice(&event_type.0.to_le_bytes());
        out.extend_from_slice(&digest);
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(&self.events);
        out
    }

    fn bytes(&self) -> Vec<u8> {
        self.bytes_with_spec_id(0, EventType::NO_ACTION, [0; 20], &self.spec_id_data())
    }

    fn parse(&self) -> Result<BootLog, ParseError> {
        BootLog::parse(&self.bytes())
    }

    /// Parses and verifies against the log's own replay.
    fn verified(&self) -> VerifiedBootLog {
        let log = self.parse().unwrap();
        log.verify(&log.replay()).unwrap()
    }
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn secure_boot_var(value: &[u8]) -> Vec<u8> {
    let mut data = vec![
        0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b,
        0x8c,
    ];
    data.extend_from_slice(&10u64.to_le_bytes());
    data.extend_from_slice(&u64::try_from(value.len()).unwrap().to_le_bytes());
    data.extend_from_slice(&utf16("SecureBoot"));
    data.extend_from_slice(value);
    data
}

const SEPARATOR: [u8; 4] = [0; 4];

#[test]
fn oversized_fields_are_rejected() {
    let big = vec![0u8; MAX_LOG_LEN + 1];
    assert_eq!(
        BootLog::parse(&big).unwrap_err(),
        ParseError::LogTooLarge {
            len: MAX_LOG_LEN + 1,
            max: MAX_LOG_LEN
        }
    );

    let mut b = Builder::new();
    b.event(0, EventType::SEPARATOR, &SEPARATOR);
    let ok = b.bytes();
    let event_at = ok.len() - 4 - 4 - 32 - 2 - 20 - 2 - 4 - 4 - 4;
    // eventSize = u32::MAX.
    let mut huge_data = ok.clone();
    let size_at = ok.len() - 8;
    huge_data[size_at..size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        BootLog::parse(&huge_data).unwrap_err(),
        ParseError::EventDataTooLarge {
            index: 1,
            offset: event_at,
            len: u32::MAX,
            max: MAX_EVENT_DATA_LEN
        }
    );
    // Digest count = u32::MAX.
    let mut huge_count = ok.clone();
    huge_count[event_at + 8..event_at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        BootLog::parse(&huge_count).unwrap_err(),
        ParseError::DigestCountMismatch {
            index: 1,
            offset: event_at,
            count: u32::MAX,
            expected: 2
        }
    );
    // Spec ID numberOfAlgorithms = u32::MAX.
    let mut huge_algs = ok.clone();
    huge_algs[32 + 24..32 + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(
        BootLog::parse(&huge_algs).unwrap_err(),
        ParseError::InvalidSpecIdEvent(SpecIdProblem::AlgorithmCount { count: u32::MAX })
    );
    // More than MAX_EVENTS events.
    let mut many = Builder::with_algorithms(&[(0x000B, 32)]);
    for _ in 0..MAX_EVENTS {
        many.raw(1, EventType::POST_CODE, &[(0x000B, vec![0; 32])], &[]);
    }
    assert_eq!(
        many.parse().unwrap_err(),
        ParseError::TooManyEvents { max: MAX_EVENTS }
    );
    assert_eq!(BootLog::parse(&[]).unwrap_err(), ParseError::Empty);
}

#[test]
fn spec_id_events_are_checked() {
    let problem = |b: &Builder, bytes: Vec<u8>| {
        let _ = b;
        match BootLog::parse(&bytes) {
            Err(ParseError::InvalidSpecIdEvent(p)) => p,
            other => panic!("{other:?}"),
        }
    };
    let b = Builder::new();
    let data = b.spec_id_data();
    assert_eq!(
        problem(
            &b,
            b.bytes_with_spec_id(1, EventType::NO_ACTION, [0; 20], &data)
        ),
        SpecIdProblem::NotNoActionInPcr0 {
            pcr: 1,
            event_type: EventType::NO_ACTION
        }
    );
    assert_eq!(
        problem(
            &b,
            b.bytes_with_spec_id(0, EventType::POST_CODE, [0; 20], &data)
        ),
        SpecIdProblem::NotNoActionInPcr0 {
            pcr: 0,
            event_type: EventType::POST_CODE
        }
    );
    assert_eq!(
        problem(
            &b,
            b.bytes_with_spec_id(0, EventType::NO_ACTION, [1; 20], &data)
        ),
        SpecIdProblem::NonZeroDigest
    );
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut d = data.clone();
        edit(&mut d);
        problem(
            &b,
            b.bytes_with_spec_id(0, EventType::NO_ACTION, [0; 20], &d),
        )
    };
    assert_eq!(
        with(&|d| d[21] = 1),
        SpecIdProblem::UnsupportedSpecVersion { major: 1 }
    );
    assert_eq!(
        with(&|d| d[23] = 3),
        SpecIdProblem::InvalidUintnSize { size: 3 }
    );
    assert_eq!(
        with(&|d| d[24] = 0),
        SpecIdProblem::AlgorithmCount { count: 0 }
    );
    assert_eq!(
        with(&|d| d.push(0)),
        SpecIdProblem::TrailingBytes { len: 1 }
    );
    assert_eq!(
        with(&|d| d.truncate(30)),
        SpecIdProblem::Truncated {
            needed: 2,
            remaining: 0
        }
    );
    let spec = |algs: &[(u16, u16)]| {
        let b = Builder::with_algorithms(algs);
        problem(&b, b.bytes())
    };
    assert_eq!(
        spec(&[(0x000B, 32), (0x000B, 32)]),
        SpecIdProblem::DuplicateAlgorithm { alg_id: 0x000B }
    );
    assert_eq!(
        spec(&[(0x000B, 20)]),
        SpecIdProblem::DigestSizeMismatch {
            alg_id: 0x000B,
            size: 20,
            expected: 32
        }
    );
    assert_eq!(
        spec(&[(0x0012, 0)]),
        SpecIdProblem::UnsupportedDigestSize {
            alg_id: 0x0012,
            size: 0
        }
    );
    assert_eq!(
        spec(&[(0x0012, 65)]),
        SpecIdProblem::UnsupportedDigestSize {
            alg_id: 0x0012,
            size: 65
        }
    );
    let nine: Vec<(u16, u16)> = (0x20..0x29).map(|a| (a, 32)).collect();
    assert_eq!(spec(&nine), SpecIdProblem::AlgorithmCount { count: 9 });
}

#[test]
fn event_digest_lists_and_pcrs_are_checked() {
    let sha1 = (0x0004, vec![0; 20]);
    let sha256 = (0x000B, vec![0; 32]);
    let offset = Builder::new().bytes().len();
    let parse = |digests: &[(u16, Vec<u8>)], pcr: u32| {
        let mut b = Builder::new();
        b.raw(pcr, EventType::POST_CODE, digests, &[]);
        b.parse().unwrap_err()
    };
    assert_eq!(
        parse(&[sha1.clone(), (0x0012, vec![0; 32])], 0),
        ParseError::UnlistedAlgorithm {
            index: 1,
            offset,
            alg_id: 0x0012
        }
    );
    assert_eq!(
        parse(&[sha256.clone(), sha256.clone()], 0),
        ParseError::DuplicateDigest {
            index: 1,
            offset,
            alg_id: 0x000B
        }
    );
    assert_eq!(
        parse(std::slice::from_ref(&sha1), 0),
        ParseError::DigestCountMismatch {
            index: 1,
            offset,
            count: 1,
            expected: 2
        }
    );
    assert_eq!(
        parse(&[sha1.clone(), sha256.clone()], 17),
        ParseError::PcrOutOfRange {
            index: 1,
            offset,
            pcr: 17
        }
    );
    // Digests in any order are fine.
    let mut b = Builder::new();
    b.raw(16, EventType::POST_CODE, &[sha256, sha1], &[]);
    assert!(b.parse().is_ok());
    // A second Spec ID event.
    let mut b = Builder::new();
    b.no_action(0, b"Spec ID Event03\0");
    assert_eq!(
        b.parse().unwrap_err(),
        ParseError::UnexpectedSpecIdEvent { index: 1, offset }
    );
}

#[test]
fn startup_locality_events_are_checked() {
    let offset = Builder::new().bytes().len();
    let problem = |build: &dyn Fn(&mut Builder)| {
        let mut b = Builder::new();
        build(&mut b);
        match b.parse() {
            Err(ParseError::InvalidStartupLocality { problem, .. }) => problem,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        problem(&|b| {
            b.no_action(1, b"StartupLocality\0\x03");
        }),
        StartupLocalityProblem::NotInPcr0 { pcr: 1 }
    );
    assert_eq!(
        problem(&|b| {
            b.no_action(0, b"StartupLocality\0\x03")
                .no_action(0, b"StartupLocality\0\x03");
        }),
        StartupLocalityProblem::Duplicate
    );
    assert_eq!(
        problem(&|b| {
            b.event(0, EventType::POST_CODE, b"x")
                .no_action(0, b"StartupLocality\0\x03");
        }),
        StartupLocalityProblem::AfterPcr0Extension
    );
    assert_eq!(
        problem(&|b| {
            b.no_action(0, b"StartupLocality\0\x03\x00");
        }),
        StartupLocalityProblem::WrongLength { len: 18 }
    );
    assert_eq!(
        problem(&|b| {
            b.no_action(0, b"StartupLocality\0\x02");
        }),
        StartupLocalityProblem::InvalidLocality { locality: 2 }
    );
    let mut b = Builder::new();
    b.no_action(0, b"StartupLocality\0\x02");
    assert_eq!(
        b.parse().unwrap_err(),
        ParseError::InvalidStartupLocality {
            index: 1,
            offset,
            problem: StartupLocalityProblem::InvalidLocality { locality: 2 },
        }
    );
    // Locality 4 (H-CRTM) sets the last byte of PCR 0 to 4; events in PCR 1
    // before it do not matter.
    let mut b = Builder::new();
    b.event(1, EventType::POST_CODE, b"x")
        .no_action(0, b"StartupLocality\0\x04");
    let log = b.parse().unwrap();
    let mut pcr0 = vec![0u8; 32];
    pcr0[31] = 4;
    assert_eq!(log.replay().get(HashAlg::Sha256, 0), Some(pcr0.as_slice()));
}

#[test]
fn boot_pcrs_without_events_must_hold_their_initial_value() {
    let (bytes, pcrs) = real_log("arch-linux-workstation.bin");
    let log = BootLog::parse(&bytes).unwrap();
    let mut with_14 = pcrs.clone();
    with_14.insert(HashAlg::Sha256, 14, vec![0; 32]).unwrap();
    assert!(
        log.verify(&with_14)
            .unwrap()
            .is_pcr_verified(HashAlg::Sha256, 14)
    );
    with_14.insert(HashAlg::Sha256, 14, vec![1; 32]).unwrap();
    assert_eq!(mismatch(log.verify(&with_14)), (HashAlg::Sha256, 14));
    // PCRs other logs own (IMA's 10, the workload's 23) are not this log's business.
    let mut others = pcrs.clone();
    others.insert(HashAlg::Sha256, 10, vec![1; 32]).unwrap();
    others.insert(HashAlg::Sha256, 23, vec![1; 32]).unwrap();
    let verified = log.verify(&others).unwrap();
    assert!(!verified.is_pcr_verified(HashAlg::Sha256, 23));
    // A quote with nothing the log describes proves nothing.
    let mut only_23 = PcrValues::new();
    only_23.insert(HashAlg::Sha256, 23, vec![1; 32]).unwrap();
    assert_eq!(
        log.verify(&only_23).unwrap_err(),
        BootLogError::NoQuotedBootPcr
    );
    let mut sha384 = PcrValues::new();
    sha384.insert(HashAlg::Sha384, 0, vec![0; 48]).unwrap();
    assert_eq!(
        log.verify(&sha384).unwrap_err(),
        BootLogError::NoQuotedBootPcr
    );
}

#[test]
fn facts_need_their_pcr_quoted() {
    let (bytes, pcrs) = real_log("rhel8-uefi.bin");
    let log = BootLog::parse(&bytes).unwrap();
    let no_pcr7 = without_pcrs(&pcrs, &[(HashAlg::Sha1, 7), (HashAlg::Sha256, 7)]);
    let verified = log.verify(&no_pcr7).unwrap();
    assert_eq!(verified.facts().secure_boot(), SecureBoot::NotMeasured);
    assert_eq!(
        verified.event(3).unwrap().data_verification(),
        DataVerification::PcrNotQuoted
    );
    let no_sha256_pcr4 = without_pcrs(&pcrs, &[(HashAlg::Sha256, 4)]);
    assert_eq!(
        log.verify(&no_sha256_pcr4)
            .unwrap()
            .facts()
            .efi_applications(),
        None
    );
    let no_pcr8 = without_pcrs(&pcrs, &[(HashAlg::Sha1, 8), (HashAlg::Sha256, 8)]);
    assert!(
        log.verify(&no_pcr8)
            .unwrap()
            .facts()
            .kernel_command_lines()
            .is_empty()
    );
}

#[test]
fn secure_boot_comes_only_from_firmware_measurements() {
    let sb = |value: &[u8]| secure_boot_var(value);
    let state = |build: &dyn Fn(&mut Builder)| {
        let mut b = Builder::new();
        build(&mut b);
        b.verified().facts().secure_boot()
    };
    // Enabled, and a later (post-separator) "disabled" extension is ignored.
    assert_eq!(
        state(&|b| {
            b.event(7, EventType::EFI_VARIABLE_DRIVER_CONFIG, &sb(&[1]))
                .event(7, EventType::SEPARATOR, &SEPARATOR);
        }),
        SecureBoot::Enabled { event_index: 1 }
    );
    // Disabled, and an injected "enabled" after the separator does not help.
    assert_eq!(
        state(&|b| {
            b.event(7, EventType::EFI_VARIABLE_DRIVER_CONFIG, &sb(&[0]))
                .event(7, EventType::SEPARATOR, &SEPARATOR)
                .event(7, EventType::EFI_VARIABLE_DRIVER_CONFIG, &sb(&[1]));
        }),
        SecureBoot::Disabled { event_index: 1 }
    );
    // A relabelled "disabled" measurement still counts.
    assert_eq!(
        state(&|b| {
            b.event(7, EventType::EFI_VARIABLE_AUTHORITY, &sb(&[0]))
                .event(7, EventType::EFI_VARIABLE_DRIVER_CONFIG, &sb(&[1]))
                .event(7, EventType::SEPARATOR, &SEPARATOR);
        }),
        SecureBoot::Disabled { event_index: 1 }
    );
    // Not 1: malformed values are not "enabled".
    assert_eq!(
        state(&|b| {
            b.event(7, EventType::EFI_VARIABLE_DRIVER_CONFIG, &sb(&[1, 0]))
                .event(7, EventType::SEPARATOR, &SEPARATOR);
        }),
        SecureBoot::Disabled { event_index: 1 }
    );
    // No separator: cannot tell firmware from later measurements.
    assert_eq!(
        state(&|b| {
            b.event(7, EventType::EFI_VARIABLE_DRIVER_CONFIG, &sb(&[1]));
        }),
        SecureBoot::NotMeasured
    );
    // A real "disabled" event with garbled data, plus an injected "enabled".
    assert_eq!(
        state(&|b| {
            let mut garbled = sb(&[0]);
            let digests = vec![
                (0x0004, HashAlg::Sha1.hash(&[&garbled])),
                (0x000B, HashAlg::Sha256.hash(&[&garbled])),
            ];
            garbled[0] ^= 1;
            b.raw(7, EventType::EFI_VARIABLE_DRIVER_CONFIG, &digests, &garbled)
                .event(7, EventType::SEPARATOR, &SEPARATOR)
                .event(7, EventType::EFI_VARIABLE_DRIVER_CONFIG, &sb(&[1]));
        }),
        SecureBoot::NotMeasured
    );
}

#[test]
fn kernel_command_lines_from_systemd_stub() {
    let mut b = Builder::new();
    b.event(
        12,
        EventType::IPL,
        &[utf16("console=ttyS0 ro"), vec![0, 0]].concat(),
    )
    .event(12, EventType::IPL, b"not utf-16\0");
    let verified = b.verified();
    let lines = verified.facts().kernel_command_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].source, CommandLineSource::SystemdStub);
    assert_eq!(lines[0].text, "console=ttyS0 ro");
}

#[test]
fn legacy_logs_replay_the_sha1_bank() {
    let (bytes, pcrs) = real_log("debian-10.bin");
    let log = BootLog::parse(&bytes).unwrap();
    assert_eq!(log.format(), LogFormat::LegacySha1);
    assert!(log.algorithms().is_empty());
    assert_eq!(log.banks().collect::<Vec<_>>(), [HashAlg::Sha1]);
    assert_eq!(
        log.event(0).unwrap().event_type(),
        EventType::S_CRTM_VERSION
    );
    assert!(log.verify(&pcrs).is_ok());
}

#[test]
fn event_types_print_their_names() {
    assert_eq!(format!("{:?}", EventType::EFI_ACTION), "EV_EFI_ACTION");
    assert_eq!(format!("{:?}", EventType(0x1234)), "EventType(0x00001234)");
    assert_eq!(EventType::SEPARATOR.name(), Some("EV_SEPARATOR"));
}

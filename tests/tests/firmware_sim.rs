//! The firmware simulator (`keyward_tests::firmware`) measured into a real
//! software TPM, checked by the verifier: quote → boot log replay → facts →
//! boot policy, for a good boot, boots outside policy, and edited logs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keyward_attest::boot_policy::{BootPolicy, BootRuleFailure, BootStateBasis};
use keyward_attest::digest::{HashAlg, PcrValues};
use keyward_attest::eventlog::{
    BootLog, BootLogError, CommandLineSource, LogFormat, SecureBoot, Sha256Digest, VerifiedBootLog,
};
use keyward_attest::quote::{QuoteKey, verify_quote};
use keyward_attest::tpm::public::TpmPublic;
use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, EkKind, PcrBank, PcrSelection};
use keyward_tests::firmware::{
    self, BOOT_PCRS, BootImage, BootLogOutput, Measurement, QUOTE_PCRS, Tamper, WORKLOAD_PCR,
};

/// A machine booted in its own swtpm, quoted over [`QUOTE_PCRS`].
struct Booted {
    /// What the simulator logged and extended.
    output: BootLogOutput,
    /// The log [`firmware::measure`] returned.
    log: Vec<u8>,
    /// The PCR values of a quote that `verify_quote` accepted.
    quoted: PcrValues,
}

/// Starts an swtpm, measures `image` into it, extends the workload PCR once,
/// and quotes with a fresh AK; the quote must verify.
fn boot_and_quote(image: &BootImage) -> Booted {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let log =
        firmware::measure(image, &mut |pcr, digest| tpm.extend_pcr_sha256(pcr, digest)).unwrap();
    tpm.extend_pcr_sha256(WORKLOAD_PCR, [0x23; 32]).unwrap();

    let ak_blob = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::EcdsaP256Sha256)
        .unwrap();
    let ak = TpmPublic::parse(&ak_blob.public().unwrap().tpm2b_public).unwrap();
    let nonce = [0x5a; 32];
    let selection = [PcrSelection::new(PcrBank::Sha256, &QUOTE_PCRS)];
    let quote = tpm.quote(&ak_blob, &nonce, &selection).unwrap();
    let mut pcrs = PcrValues::new();
    for pcr in &quote.pcrs {
        assert_eq!(pcr.bank, PcrBank::Sha256);
        pcrs.insert(HashAlg::Sha256, u32::from(pcr.index), pcr.digest.clone())
            .unwrap();
    }
    let verified = verify_quote(
        QuoteKey::Tpm(&ak),
        &quote.attest,
        &quote.signature,
        &pcrs,
        &nonce,
    )
    .unwrap();
    Booted {
        output: firmware::boot(image),
        log,
        quoted: verified.pcr_values().clone(),
    }
}

fn verify(log: &[u8], quoted: &PcrValues) -> Result<VerifiedBootLog, BootLogError> {
    BootLog::parse(log).unwrap().verify(quoted)
}

fn policy(json: serde_json::Value) -> BootPolicy {
    serde_json::from_value(json).unwrap()
}

fn failures(
    policy: &BootPolicy,
    quoted: &PcrValues,
    log: &VerifiedBootLog,
) -> Vec<BootRuleFailure> {
    policy
        .evaluate(quoted, Some(log))
        .map(|_| ())
        .unwrap_err()
        .failures()
        .to_vec()
}

fn index(output: &BootLogOutput, what: Measurement) -> usize {
    output.first(what).unwrap().index
}

fn quoted_value(quoted: &PcrValues, pcr: u8) -> Vec<u8> {
    quoted.get(HashAlg::Sha256, pcr).unwrap().to_vec()
}

#[test]
fn a_secure_boot_image_in_swtpm_verifies_and_satisfies_its_policy() {
    let image = BootImage::example();
    let Booted {
        output,
        log,
        quoted,
    } = boot_and_quote(&image);
    assert_eq!(log, output.log, "measure logs what boot logs");

    // The simulator's own replay is what the TPM computed.
    for (pcr, value) in output.pcr_values(&BOOT_PCRS) {
        assert_eq!(quoted_value(&quoted, pcr), value, "PCR {pcr}");
    }

    let parsed = BootLog::parse(&log).unwrap();
    assert_eq!(parsed.format(), LogFormat::CryptoAgile);
    assert_eq!(parsed.banks().collect::<Vec<_>>(), [HashAlg::Sha256]);
    assert_eq!(parsed.startup_locality(), None);
    let verified = parsed.verify(&quoted).unwrap();
    // Every boot PCR was checked; the workload PCR is another log's business.
    for pcr in BOOT_PCRS {
        assert!(verified.is_pcr_verified(HashAlg::Sha256, pcr), "PCR {pcr}");
    }
    assert!(!verified.is_pcr_verified(HashAlg::Sha256, WORKLOAD_PCR));

    let facts = verified.facts();
    assert_eq!(
        facts.secure_boot(),
        SecureBoot::Enabled {
            event_index: index(&output, Measurement::SecureBootVariable)
        }
    );
    let apps: Vec<(usize, Sha256Digest)> = facts
        .efi_applications()
        .unwrap()
        .iter()
        .map(|a| (a.event_index, a.digest))
        .collect();
    assert_eq!(
        apps,
        [
            (
                index(&output, Measurement::Bootloader),
                Sha256Digest(image.bootloader_digest())
            ),
            (
                index(&output, Measurement::Kernel),
                Sha256Digest(image.kernel_digest())
            ),
        ]
    );
    let lines: Vec<(usize, CommandLineSource, &str)> = facts
        .kernel_command_lines()
        .iter()
        .map(|l| (l.event_index, l.source, l.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        [(
            index(&output, Measurement::KernelCommandLine),
            CommandLineSource::Grub,
            "/vmlinuz root=/dev/vda1 ro quiet"
        )]
    );
    let versions: Vec<String> = facts.scrtm_versions().iter().map(|v| v.text()).collect();
    assert_eq!(versions, ["Keyward Simulated Firmware 1.0"]);
    let separators: Vec<u8> = facts.separators().iter().map(|s| s.pcr).collect();
    assert_eq!(separators, [7, 0, 1, 2, 3, 4, 5, 6]);

    let rules = policy(firmware::boot_policy_json(&image));
    let state = rules.evaluate(&quoted, Some(&verified)).unwrap();
    assert_eq!(state.basis(), BootStateBasis::BootLogRules);
    assert_eq!(state.pcrs(), verified.verified_pcrs());
    let golden = policy(firmware::golden_policy_json(&output.pcr_values(&BOOT_PCRS)));
    let state = golden.evaluate(&quoted, None).unwrap();
    assert_eq!(state.basis(), BootStateBasis::GoldenPcrs);
    // Rules need the log.
    assert_eq!(
        rules
            .evaluate(&quoted, None)
            .map(|_| ())
            .unwrap_err()
            .failures(),
        [BootRuleFailure::BootLogMissing]
    );
}

#[test]
fn secure_boot_off_fails_exactly_the_secure_boot_rule() {
    let good = BootImage::example();
    let image = BootImage {
        secure_boot: false,
        ..good.clone()
    };
    let booted = boot_and_quote(&image);
    let verified = verify(&booted.log, &booted.quoted).unwrap();

    let rules = policy(firmware::boot_policy_json(&good));
    assert_eq!(
        failures(&rules, &booted.quoted, &verified),
        [BootRuleFailure::SecureBootNotEnabled {
            state: SecureBoot::Disabled {
                event_index: index(&booted.output, Measurement::SecureBootVariable)
            }
        }]
    );
    // The image's own policy (Secure Boot not required) holds.
    policy(firmware::boot_policy_json(&image))
        .evaluate(&booted.quoted, Some(&verified))
        .unwrap();

    // Golden values of the good boot: only PCR 7 (the policy) differs.
    let golden_values = firmware::boot(&good).pcr_values(&BOOT_PCRS);
    let golden = policy(firmware::golden_policy_json(&golden_values));
    let expected_pcr7 = golden_values.iter().find(|(p, _)| *p == 7).unwrap().1;
    assert_eq!(
        failures(&golden, &booted.quoted, &verified),
        [BootRuleFailure::PcrMismatch {
            alg: HashAlg::Sha256,
            pcr: 7,
            expected: expected_pcr7.to_vec(),
            quoted: quoted_value(&booted.quoted, 7),
        }]
    );
}

#[test]
fn another_kernel_and_command_line_fail_exactly_their_rules() {
    let good = BootImage::example();
    let image = BootImage {
        kernel: b"a kernel nobody approved".to_vec(),
        cmdline: "/vmlinuz root=/dev/vda1 ro init=/bin/sh".to_owned(),
        ..good.clone()
    };
    let booted = boot_and_quote(&image);
    let verified = verify(&booted.log, &booted.quoted).unwrap();

    let rules = policy(firmware::boot_policy_json(&good));
    assert_eq!(
        failures(&rules, &booted.quoted, &verified),
        [
            BootRuleFailure::EfiApplicationNotAllowed {
                event_index: index(&booted.output, Measurement::Kernel),
                digest: Sha256Digest(image.kernel_digest()),
            },
            BootRuleFailure::KernelCommandLineNotAllowed {
                event_index: index(&booted.output, Measurement::KernelCommandLine),
                command_line: "/vmlinuz root=/dev/vda1 ro init=/bin/sh".to_owned(),
            },
        ]
    );

    // Golden values of the good boot: the kernel (4, 9) and GRUB's strings (8).
    let golden_values = firmware::boot(&good).pcr_values(&BOOT_PCRS);
    let golden = policy(firmware::golden_policy_json(&golden_values));
    let mismatched: Vec<u8> = failures(&golden, &booted.quoted, &verified)
        .iter()
        .map(|f| match f {
            BootRuleFailure::PcrMismatch {
                alg: HashAlg::Sha256,
                pcr,
                ..
            } => *pcr,
            other => panic!("expected a PCR mismatch, got {other:?}"),
        })
        .collect();
    assert_eq!(mismatched, [4, 8, 9]);
}

/// The (PCR, digest) extends a tampered log carries, derived from the
/// simulator's event list rather than from the edited bytes.
fn tampered_extends(output: &BootLogOutput, tamper: Tamper) -> Vec<(u8, [u8; 32])> {
    let mut events: Vec<(u8, [u8; 32])> = output.events.iter().map(|e| (e.pcr, e.digest)).collect();
    match tamper {
        Tamper::Remove(i) => {
            events.remove(i);
        }
        Tamper::Swap(a, b) => events.swap(a, b),
        Tamper::FlipDigest(i) => events[i].1[0] ^= 1,
        _ => {}
    }
    events.remove(0); // the Spec ID event is not extended
    events
}

/// What `pcr` replays to from `extends`.
fn replay(extends: &[(u8, [u8; 32])], pcr: u8) -> Vec<u8> {
    let simulated = BootLogOutput {
        log: Vec::new(),
        extends: extends.to_vec(),
        events: Vec::new(),
    };
    simulated.pcr_values(&[pcr])[0].1.to_vec()
}

#[test]
fn edited_logs_fail_verification_naming_the_pcr() {
    let booted = boot_and_quote(&BootImage::example());
    let output = &booted.output;
    verify(&booted.log, &booted.quoted).unwrap();

    let secure_boot = index(output, Measurement::SecureBootVariable);
    let pk = index(output, Measurement::PlatformKey);
    let kernel = index(output, Measurement::Kernel);
    let bootloader = index(output, Measurement::Bootloader);
    let grub_command = index(output, Measurement::GrubCommand);
    let cmdline = index(output, Measurement::KernelCommandLine);
    let separator0 = output.separator(0).unwrap().index;
    let cases = [
        (Tamper::Remove(kernel), 4),
        (Tamper::Remove(secure_boot), 7),
        (Tamper::Swap(secure_boot, pk), 7),
        (Tamper::Swap(grub_command, cmdline), 8),
        (Tamper::FlipDigest(bootloader), 4),
        (Tamper::FlipDigest(separator0), 0),
    ];
    for (tamper, pcr) in cases {
        let edited = output.tampered(tamper).unwrap();
        assert_eq!(
            verify(&edited, &booted.quoted).unwrap_err(),
            BootLogError::PcrMismatch {
                alg: HashAlg::Sha256,
                pcr,
                quoted: quoted_value(&booted.quoted, pcr),
                replayed: replay(&tampered_extends(output, tamper), pcr),
            },
            "{tamper:?}"
        );
    }

    // Known limit of every replay: the order of events in *different* PCRs
    // is not bound by the TPM, so swapping them still verifies.
    let kernel_file = index(output, Measurement::KernelFile);
    let edited = output.tampered(Tamper::Swap(kernel, kernel_file)).unwrap();
    verify(&edited, &booted.quoted).unwrap();
}

#[test]
fn an_edited_secure_boot_value_verifies_but_proves_nothing() {
    let booted = boot_and_quote(&BootImage::example());
    let secure_boot = index(&booted.output, Measurement::SecureBootVariable);
    // 1 → 0 in the data only: the digest (what was extended) is unchanged, so
    // the replay matches, but the data no longer hashes to it.
    let edited = booted
        .output
        .tampered(Tamper::FlipLastDataByte(secure_boot))
        .unwrap();
    let verified = verify(&edited, &booted.quoted).unwrap();
    assert_eq!(verified.facts().secure_boot(), SecureBoot::NotMeasured);
    let rules = policy(firmware::boot_policy_json(&BootImage::example()));
    assert_eq!(
        failures(&rules, &booted.quoted, &verified),
        [BootRuleFailure::SecureBootNotEnabled {
            state: SecureBoot::NotMeasured
        }]
    );
}

/// The SHA-256 PCR values `tpm2_eventlog` (tpm2-tools, an independent
/// parser) replays `log` to, from its `pcrs:` summary.
fn tpm2_eventlog_pcrs(log: &[u8]) -> (Vec<(u8, Vec<u8>)>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("binary_bios_measurements");
    std::fs::write(&path, log).unwrap();
    let out = std::process::Command::new("tpm2_eventlog")
        .arg(&path)
        .output()
        .expect("tpm2_eventlog (tpm2-tools, see scripts/deps.sh)");
    assert!(out.status.success(), "{out:?}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    let summary = yaml.split("\npcrs:\n  sha256:\n").nth(1).unwrap();
    let pcrs = summary
        .lines()
        .map_while(|line| {
            let (index, value) = line.split_once(':')?;
            let value = value.trim().strip_prefix("0x")?;
            Some((index.trim().parse().ok()?, hex::decode(value).ok()?))
        })
        .collect();
    (pcrs, yaml)
}

#[test]
fn tpm2_tools_reads_the_log_as_swtpm_measured_it() {
    let booted = boot_and_quote(&BootImage::example());
    let (pcrs, yaml) = tpm2_eventlog_pcrs(&booted.log);
    let expected: Vec<(u8, Vec<u8>)> = BOOT_PCRS
        .iter()
        .map(|&pcr| (pcr, quoted_value(&booted.quoted, pcr)))
        .collect();
    assert_eq!(pcrs, expected);
    // It decodes the structures too: the Secure Boot variable reads 1, the
    // command line is GRUB's string.
    assert!(
        yaml.contains("UnicodeName: SecureBoot\n    VariableData: \"01\""),
        "{yaml}"
    );
    assert!(
        yaml.contains("\"kernel_cmdline: /vmlinuz root=/dev/vda1 ro quiet\\0\""),
        "{yaml}"
    );
}

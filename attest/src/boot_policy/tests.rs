use std::path::PathBuf;

use super::*;
use crate::eventlog::BootLog;

fn real_log(name: &str) -> (BootLog, PcrValues) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/tpm/eventlogs");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let entry = manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == name)
        .unwrap();
    let mut pcrs = PcrValues::new();
    for (bank, values) in entry["expected_pcrs"].as_object().unwrap() {
        for (index, value) in values.as_object().unwrap() {
            pcrs.insert(
                HashAlg::from_name(bank).unwrap(),
                index.parse().unwrap(),
                hex::decode(value.as_str().unwrap()).unwrap(),
            )
            .unwrap();
        }
    }
    (
        BootLog::parse(&std::fs::read(dir.join(name)).unwrap()).unwrap(),
        pcrs,
    )
}

fn verified(name: &str) -> (VerifiedBootLog, PcrValues) {
    let (log, pcrs) = real_log(name);
    (log.verify(&pcrs).unwrap(), pcrs)
}

const RHEL8_APPS: [&str; 3] = [
    "40d6cae02973789080cf4c3a9ad11b5a0a4d8bba4438ab96e276cc784454dee7",
    "e8a268c431da72caaae407f729f602b9dbf5d1d43492d4a51cc2b688a08586e3",
    "e4c0382f98feaebfd43923a85fd6da9a20e1a48524a4d5928c31850ca1a96a6e",
];
const RHEL8_CMDLINE: &str = "(hd0,gpt2)/boot/vmlinuz-4.18.0-240.22.1.el8_3.x86_64 \
    root=UUID=f3948fb4-cce7-4193-940a-c50052e93bf3 ro net.ifnames=0 biosdevname=0 \
    scsi_mod.use_blk_mq=Y crashkernel=auto console=ttyS0,38400n8";

fn rhel8_rules() -> BootPolicy {
    serde_json::from_value(serde_json::json!({"rules": {
        "require_secure_boot": true,
        "allowed_efi_applications": RHEL8_APPS,
        "allowed_kernel_command_lines": [RHEL8_CMDLINE],
        "required_scrtm_version": "GCE Virtual Firmware v1",
    }}))
    .unwrap()
}

fn failures(result: Result<VerifiedBootState, BootPolicyViolation>) -> Vec<BootRuleFailure> {
    result.unwrap_err().failures().to_vec()
}

fn digest(hex_text: &str) -> Sha256Digest {
    Sha256Digest::from_hex(hex_text).unwrap()
}

#[test]
fn golden_pcrs_pass_on_the_quoted_values() {
    let (_, pcrs) = real_log("rhel8-uefi.bin");
    let policy = BootPolicy::GoldenPcrs(GoldenPcrs::new(pcrs.clone()).unwrap());
    let state = policy.evaluate(&pcrs, None).unwrap();
    assert_eq!(state.basis(), BootStateBasis::GoldenPcrs);
    assert_eq!(state.pcrs(), &pcrs);
}

#[test]
fn golden_pcrs_report_every_difference() {
    let (_, pcrs) = real_log("rhel8-uefi.bin");
    let golden = GoldenPcrs::new(pcrs.clone()).unwrap();
    let mut quoted = PcrValues::new();
    for (alg, pcr, value) in pcrs.iter() {
        let mut value = value.to_vec();
        if (alg, pcr) == (HashAlg::Sha1, 0) || (alg, pcr) == (HashAlg::Sha256, 7) {
            value[0] ^= 1;
        }
        if (alg, pcr) != (HashAlg::Sha256, 4) {
            quoted.insert(alg, u32::from(pcr), value).unwrap();
        }
    }
    let found = failures(golden.evaluate(&quoted));
    assert_eq!(found.len(), 3);
    assert!(matches!(
        found[0],
        BootRuleFailure::PcrMismatch {
            alg: HashAlg::Sha1,
            pcr: 0,
            ..
        }
    ));
    assert_eq!(
        found[1],
        BootRuleFailure::PcrNotQuoted {
            alg: HashAlg::Sha256,
            pcr: 4
        }
    );
    let BootRuleFailure::PcrMismatch {
        alg: HashAlg::Sha256,
        pcr: 7,
        expected,
        quoted: q,
    } = &found[2]
    else {
        panic!("{:?}", found[2]);
    };
    assert_eq!(expected.as_slice(), pcrs.get(HashAlg::Sha256, 7).unwrap());
    assert_eq!(q.as_slice(), quoted.get(HashAlg::Sha256, 7).unwrap());
}

#[test]
fn golden_pcrs_round_trip_through_serde() {
    let json = serde_json::json!({"golden_pcrs": {
        "sha256": {"0": "24af52a4f429b71a3184a6d64cddad17e54ea030e2aa6576bf3a5a3d8bd3328f"},
        "sha1": {"7": "d7a632f8990b2171e987041b0a3c69fc1b2a4f27", "14": "1F5149668C40524E01BE9CBC3AD527645943F148"},
    }});
    let policy: BootPolicy = serde_json::from_value(json).unwrap();
    let BootPolicy::GoldenPcrs(golden) = &policy else {
        panic!()
    };
    assert_eq!(golden.values().len(), 3);
    let back = serde_json::to_value(&policy).unwrap();
    assert_eq!(
        back["golden_pcrs"]["sha1"]["14"],
        "1f5149668c40524e01be9cbc3ad527645943f148"
    );
    assert_eq!(serde_json::from_value::<BootPolicy>(back).unwrap(), policy);
}

#[test]
fn malformed_policies_are_rejected() {
    let error = |json: serde_json::Value| {
        serde_json::from_value::<BootPolicy>(json)
            .unwrap_err()
            .to_string()
    };
    let zero32 = "00".repeat(32);
    assert!(
        error(serde_json::json!({"golden_pcrs": {"sm3": {"0": zero32}}}))
            .contains("unknown PCR bank")
    );
    for index in ["07", "24", "+1", "-1", "x"] {
        assert!(
            error(serde_json::json!({"golden_pcrs": {"sha256": {index: zero32}}}))
                .contains("invalid PCR index"),
            "{index}"
        );
    }
    for value in [
        "00".repeat(20),
        "zz".repeat(32),
        "0".repeat(63),
        format!("0x{}", "00".repeat(31)),
    ] {
        assert!(
            error(serde_json::json!({"golden_pcrs": {"sha256": {"0": value}}}))
                .contains("is not 32 bytes of hex"),
            "{value}"
        );
    }
    assert!(error(serde_json::json!({"golden_pcrs": {}})).contains("golden PCR values are empty"));
    assert!(error(serde_json::json!({"rules": {}})).contains("the boot rules check nothing"));
    assert!(
        error(serde_json::json!({"rules": {"require_secure_boot": false}}))
            .contains("check nothing")
    );
    assert!(
        error(serde_json::json!({"rules": {"allowed_efi_applications": []}}))
            .contains("allow-list allowed_efi_applications is empty")
    );
    assert!(error(serde_json::json!({"rules": {"require_secure_boot": true, "allowed_kernel_command_lines": []}}))
        .contains("allowed_kernel_command_lines is empty"));
    assert!(
        error(
            serde_json::json!({"rules": {"require_secure_boot": true, "allow_everything": true}})
        )
        .contains("unknown field")
    );
    assert!(
        error(serde_json::json!({"rules": {"allowed_efi_applications": ["abcd"]}}))
            .contains("64 hex digits")
    );
    assert!(error(serde_json::json!({"anything": {}})).contains("unknown variant"));
    assert_eq!(
        GoldenPcrs::new(PcrValues::new()),
        Err(BootPolicyConfigError::EmptyGoldenPcrs)
    );
    assert_eq!(
        BootRules::new(false, None, None, None),
        Err(BootPolicyConfigError::EmptyRules)
    );
}

#[test]
fn rules_pass_on_the_matching_boot() {
    let (log, pcrs) = verified("rhel8-uefi.bin");
    let state = rhel8_rules().evaluate(&pcrs, Some(&log)).unwrap();
    assert_eq!(state.basis(), BootStateBasis::BootLogRules);
    assert_eq!(state.pcrs(), log.verified_pcrs());
    let json = serde_json::to_value(rhel8_rules()).unwrap();
    assert_eq!(
        serde_json::from_value::<BootPolicy>(json).unwrap(),
        rhel8_rules()
    );
}

#[test]
fn rules_report_every_failure_with_the_offending_value() {
    // The Arch workstation: Secure Boot off, other applications, other
    // command line, S-CRTM version a GUID.
    let (log, pcrs) = verified("arch-linux-workstation.bin");
    let found = failures(rhel8_rules().evaluate(&pcrs, Some(&log)));
    let expected = vec![
        BootRuleFailure::SecureBootNotEnabled {
            state: SecureBoot::Disabled { event_index: 3 },
        },
        BootRuleFailure::EfiApplicationNotAllowed {
            event_index: 22,
            digest: digest("d51e9d20c0e180d8fdded3e7d5e05b4ab8e87b2f30e6995632a14e399332103b"),
        },
        BootRuleFailure::EfiApplicationNotAllowed {
            event_index: 23,
            digest: digest("7b50cf89806cefff619a2266ae37e1f7e7f4c14212da9445dd7e51046e90ca88"),
        },
        BootRuleFailure::KernelCommandLineNotAllowed {
            event_index: 24,
            command_line: log.facts().kernel_command_lines()[0].text.clone(),
        },
        BootRuleFailure::ScrtmVersionMismatch {
            event_index: 1,
            found: "1efb6b540c1d5540a4ad4ef4bf17b83a".to_owned(),
        },
    ];
    assert_eq!(found, expected);
}

#[test]
fn each_rule_fails_on_its_own() {
    let (log, _) = verified("rhel8-uefi.bin");
    let only = |rules: BootRules| failures(rules.evaluate(&log));
    let apps = |list: &[&str]| Some(list.iter().map(|d| digest(d)).collect::<BTreeSet<_>>());
    // One application missing from the allow-list (an unknown boot loader).
    assert_eq!(
        only(BootRules::new(false, apps(&RHEL8_APPS[..2]), None, None).unwrap()),
        [BootRuleFailure::EfiApplicationNotAllowed {
            event_index: 77,
            digest: digest(RHEL8_APPS[2])
        }]
    );
    assert_eq!(
        only(BootRules::new(false, None, Some(BTreeSet::from(["ro".to_owned()])), None).unwrap()),
        [BootRuleFailure::KernelCommandLineNotAllowed {
            event_index: 78,
            command_line: RHEL8_CMDLINE.to_owned(),
        }]
    );
    assert_eq!(
        only(BootRules::new(false, None, None, Some("v2".to_owned())).unwrap()),
        [BootRuleFailure::ScrtmVersionMismatch {
            event_index: 1,
            found: "GCE Virtual Firmware v1".to_owned(),
        }]
    );
    // Secure Boot off.
    let (ubuntu, _) = verified("ubuntu-2104-no-dbx.bin");
    assert_eq!(
        failures(
            BootRules::new(true, None, None, None)
                .unwrap()
                .evaluate(&ubuntu)
        ),
        [BootRuleFailure::SecureBootNotEnabled {
            state: SecureBoot::Disabled { event_index: 3 }
        }]
    );
    // PCR 4 not quoted in SHA-256: applications are unknown.
    let (raw, pcrs) = real_log("rhel8-uefi.bin");
    let mut no_pcr4 = PcrValues::new();
    for (alg, pcr, value) in pcrs
        .iter()
        .filter(|(a, p, _)| (*a, *p) != (HashAlg::Sha256, 4))
    {
        no_pcr4.insert(alg, u32::from(pcr), value.to_vec()).unwrap();
    }
    let partial = raw.verify(&no_pcr4).unwrap();
    assert_eq!(
        failures(
            BootRules::new(false, apps(&RHEL8_APPS), None, None)
                .unwrap()
                .evaluate(&partial)
        ),
        [BootRuleFailure::EfiApplicationsNotMeasured]
    );
    // The legacy Debian log measures no command line.
    let (debian, _) = verified("debian-10.bin");
    assert_eq!(
        failures(
            BootRules::new(false, None, Some(BTreeSet::from(["ro".to_owned()])), None)
                .unwrap()
                .evaluate(&debian)
        ),
        [BootRuleFailure::KernelCommandLineNotMeasured]
    );
    // A rules policy needs a log.
    assert_eq!(
        failures(rhel8_rules().evaluate(&pcrs, None)),
        [BootRuleFailure::BootLogMissing]
    );
}

#[test]
fn no_application_and_no_scrtm_version_fail() {
    // A minimal log: one separator in PCR 4, nothing in PCR 0.
    let mut bytes = Vec::new();
    let spec: Vec<u8> = [
        &b"Spec ID Event03\0"[..],
        &0u32.to_le_bytes(),
        &[0, 2, 0, 2],
        &1u32.to_le_bytes(),
        &0x000Bu16.to_le_bytes(),
        &32u16.to_le_bytes(),
        &[0],
    ]
    .concat();
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 20]);
    bytes.extend_from_slice(&u32::try_from(spec.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(&spec);
    bytes.extend_from_slice(&4u32.to_le_bytes());
    bytes.extend_from_slice(&4u32.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&0x000Bu16.to_le_bytes());
    bytes.extend_from_slice(&HashAlg::Sha256.hash(&[&[0; 4]]));
    bytes.extend_from_slice(&4u32.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    let log = BootLog::parse(&bytes).unwrap();
    let log = log.verify(&log.replay()).unwrap();
    let rules = BootRules::new(
        false,
        Some(BTreeSet::from([digest(RHEL8_APPS[0])])),
        None,
        Some("v1".to_owned()),
    )
    .unwrap();
    assert_eq!(
        failures(rules.evaluate(&log)),
        [
            BootRuleFailure::NoEfiApplication,
            BootRuleFailure::ScrtmVersionNotMeasured
        ]
    );
}

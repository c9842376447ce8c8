use std::path::PathBuf;

use super::*;

fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/cel")
}

fn expected() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(testdata().join("expected.json")).unwrap())
        .unwrap()
}

fn key32(hex_text: &str) -> [u8; 32] {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

fn record_from_json(r: &serde_json::Value) -> LaunchRecord {
    LaunchRecord::new(
        r["instance_id"].as_str().unwrap(),
        r["image_reference"].as_str().unwrap(),
        r["image_digest"].as_str().unwrap(),
        r["model_name"].as_str().unwrap(),
        r["model_digest"].as_str().unwrap(),
        key32(r["instance_key_sha256"].as_str().unwrap()),
    )
    .unwrap()
}

fn record(n: u8) -> LaunchRecord {
    LaunchRecord::new(
        &format!("inst-{n}"),
        "registry.example/agent:1",
        &format!("sha256:{}", "ab".repeat(32)),
        "model",
        &format!("sha256:{}", "cd".repeat(32)),
        [n; 32],
    )
    .unwrap()
}

fn quoted(value: [u8; 32]) -> PcrValues {
    let mut pcrs = PcrValues::new();
    pcrs.insert(
        HashAlg::Sha256,
        u32::from(DEFAULT_WORKLOAD_PCR),
        value.to_vec(),
    )
    .unwrap();
    pcrs
}

/// Builds a log with `append` and returns it with the PCR a TPM would hold.
fn log_of(records: &[LaunchRecord]) -> (Vec<u8>, PcrValues) {
    let mut log = Vec::new();
    let mut digests = Vec::new();
    for r in records {
        digests.push(append(&mut log, DEFAULT_WORKLOAD_PCR, r).unwrap());
    }
    (log, quoted(replay(digests.iter())))
}

fn tlv(t: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![t];
    out.extend_from_slice(&u32::try_from(value.len()).unwrap().to_be_bytes());
    out.extend_from_slice(value);
    out
}

fn launch_fields(r: &LaunchRecord) -> Vec<(u8, Vec<u8>)> {
    r.fields()
        .iter()
        .map(|(f, v)| (f.type_value(), v.to_vec()))
        .collect()
}

/// A record from raw parts; the digest is the hash of the content TLV unless given.
fn raw_record(
    recnum: &[u8],
    pcr: &[u8],
    fields: &[(u8, Vec<u8>)],
    digest: Option<Vec<u8>>,
) -> Vec<u8> {
    let content: Vec<u8> = fields.iter().flat_map(|(t, v)| tlv(*t, v)).collect();
    let content = tlv(LAUNCH_RECORD_CONTENT_TYPE, &content);
    let digest = digest.unwrap_or_else(|| sha256(&content).to_vec());
    let mut out = tlv(RECNUM, recnum);
    out.extend(tlv(PCR, pcr));
    out.extend(tlv(DIGESTS, &tlv(SHA256_ALG_ID, &digest)));
    out.extend(content);
    out
}

fn parse_err(bytes: &[u8]) -> WorkloadLogError {
    WorkloadLog::parse(bytes, DEFAULT_WORKLOAD_PCR).unwrap_err()
}

fn launch_err(fields: &[(u8, Vec<u8>)]) -> WorkloadLogError {
    parse_err(&raw_record(&0u64.to_be_bytes(), &[23], fields, None))
}

#[test]
fn generated_log_replays_to_the_swtpm_pcr() {
    let bytes = std::fs::read(testdata().join("two-launches.cel")).unwrap();
    let expected = expected();
    let pcr = quoted(key32(expected["sha256"].as_str().unwrap()));
    let log = WorkloadLog::parse(&bytes, DEFAULT_WORKLOAD_PCR).unwrap();
    assert_eq!(log.len(), 2);
    let verified = log.verify(&pcr).unwrap();
    let records: Vec<LaunchRecord> = expected["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(record_from_json)
        .collect();
    assert_eq!(verified.launch_records(), records.as_slice());
    for r in &records {
        assert_eq!(
            verified.launch_record_for_key(r.instance_key_sha256()),
            Ok(r)
        );
    }
}

#[test]
fn the_encoder_matches_the_independent_generator() {
    let bytes = std::fs::read(testdata().join("two-launches.cel")).unwrap();
    let expected = expected();
    let mut log = Vec::new();
    for r in expected["records"].as_array().unwrap() {
        let digest = append(&mut log, DEFAULT_WORKLOAD_PCR, &record_from_json(r)).unwrap();
        assert_eq!(hex::encode(digest), r["event_digest"].as_str().unwrap());
    }
    assert_eq!(log, bytes);
}

#[test]
fn round_trip() {
    let records: Vec<LaunchRecord> = (0..5).map(record).collect();
    let (log, pcr) = log_of(&records);
    let verified = WorkloadLog::parse(&log, DEFAULT_WORKLOAD_PCR)
        .unwrap()
        .verify(&pcr)
        .unwrap();
    assert_eq!(verified.launch_records(), records.as_slice());
    assert_eq!(verified.pcr(), 23);
    assert_eq!(
        verified
            .launch_record_for_key(&[3; 32])
            .unwrap()
            .instance_id(),
        "inst-3"
    );
}

#[test]
fn an_empty_log_replays_to_zeros_and_has_no_record() {
    let verified = WorkloadLog::parse(&[], 23)
        .unwrap()
        .verify(&quoted([0; 32]))
        .unwrap();
    assert_eq!(
        verified.launch_record_for_key(&[0; 32]),
        Err(WorkloadLogError::NoLaunchRecordForKey)
    );
}

#[test]
fn another_workload_pcr_can_be_configured() {
    let mut log = Vec::new();
    let digest = append(&mut log, 16, &record(1)).unwrap();
    let mut pcrs = PcrValues::new();
    pcrs.insert(HashAlg::Sha256, 16, replay([digest].iter()).to_vec())
        .unwrap();
    assert!(WorkloadLog::parse(&log, 16).unwrap().verify(&pcrs).is_ok());
    assert_eq!(
        parse_err(&log),
        WorkloadLogError::UnexpectedPcr {
            recnum: 0,
            pcr: 16,
            expected: 23
        }
    );
    assert_eq!(
        WorkloadLog::parse(&[], 24),
        Err(WorkloadLogError::InvalidWorkloadPcr { pcr: 24 })
    );
}

#[test]
fn a_forged_record_does_not_replay() {
    // The quote covers the honest log; the attacker swaps in a record of its
    // own, with a self-consistent digest.
    let (_, pcr) = log_of(&[record(1), record(2)]);
    let (forged, _) = log_of(&[record(1), record(9)]);
    let log = WorkloadLog::parse(&forged, DEFAULT_WORKLOAD_PCR).unwrap();
    assert!(matches!(
        log.verify(&pcr),
        Err(WorkloadLogError::ReplayMismatch { pcr: 23, .. })
    ));
}

#[test]
fn a_removed_or_reordered_record_is_rejected() {
    let (log, pcr) = log_of(&[record(1), record(2)]);
    let first_len = log_of(&[record(1)]).0.len();
    // Last record dropped: parses, does not replay.
    let short = WorkloadLog::parse(&log[..first_len], 23).unwrap();
    assert!(matches!(
        short.verify(&pcr),
        Err(WorkloadLogError::ReplayMismatch { .. })
    ));
    // First record dropped: numbering no longer starts at 0.
    assert_eq!(
        parse_err(&log[first_len..]),
        WorkloadLogError::RecordNumberOutOfSequence {
            expected: 0,
            found: 1
        }
    );
    // Swapped.
    let mut swapped = log[first_len..].to_vec();
    swapped.extend_from_slice(&log[..first_len]);
    assert_eq!(
        parse_err(&swapped),
        WorkloadLogError::RecordNumberOutOfSequence {
            expected: 0,
            found: 1
        }
    );
}

#[test]
fn content_not_matching_its_digest_is_rejected() {
    let (mut log, _) = log_of(&[record(1)]);
    let at = log.len() - 1; // last byte of the key hash
    log[at] ^= 1;
    assert_eq!(
        parse_err(&log),
        WorkloadLogError::ContentDigestMismatch { recnum: 0 }
    );
}

#[test]
fn the_instance_key_must_match_exactly_one_record() {
    let (log, pcr) = log_of(&[record(1), record(2), record(2)]);
    let verified = WorkloadLog::parse(&log, 23).unwrap().verify(&pcr).unwrap();
    assert_eq!(
        verified.launch_record_for_key(&[7; 32]),
        Err(WorkloadLogError::NoLaunchRecordForKey)
    );
    assert_eq!(
        verified.launch_record_for_key(&[2; 32]),
        Err(WorkloadLogError::MultipleLaunchRecordsForKey { count: 2 })
    );
    assert_eq!(
        verified
            .launch_record_for_key(&[1; 32])
            .unwrap()
            .instance_id(),
        "inst-1"
    );
}

#[test]
fn the_workload_pcr_must_be_quoted() {
    let (log, _) = log_of(&[record(1)]);
    let mut sha1_only = PcrValues::new();
    sha1_only.insert(HashAlg::Sha1, 23, vec![0; 20]).unwrap();
    assert_eq!(
        WorkloadLog::parse(&log, 23)
            .unwrap()
            .verify(&sha1_only)
            .unwrap_err(),
        WorkloadLogError::PcrNotQuoted { pcr: 23 }
    );
}

#[test]
fn truncation_at_every_length_never_panics() {
    let (log, _) = log_of(&[record(1), record(2)]);
    let boundaries = [0, log_of(&[record(1)]).0.len(), log.len()];
    for len in 0..=log.len() {
        let result = WorkloadLog::parse(&log[..len], 23);
        assert_eq!(result.is_ok(), boundaries.contains(&len), "length {len}");
        if let Err(e) = result {
            assert!(
                matches!(e, WorkloadLogError::Truncated { .. }),
                "length {len}: {e:?}"
            );
        }
    }
}

#[test]
fn oversized_inputs_are_rejected() {
    let big = vec![0u8; MAX_WORKLOAD_LOG_LEN + 1];
    assert_eq!(
        parse_err(&big),
        WorkloadLogError::LogTooLarge {
            len: MAX_WORKLOAD_LOG_LEN + 1,
            max: MAX_WORKLOAD_LOG_LEN
        }
    );
    // A length field far beyond the input.
    let (mut log, _) = log_of(&[record(1)]);
    log[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        parse_err(&log),
        WorkloadLogError::Truncated {
            offset: 5,
            needed: usize::try_from(u32::MAX).unwrap(),
            remaining: log.len() - 5
        }
    );
    // Content above MAX_CONTENT_LEN, with a matching digest.
    let mut fields = launch_fields(&record(1));
    fields[0].1 = vec![b'a'; MAX_CONTENT_LEN];
    assert!(matches!(
        launch_err(&fields),
        WorkloadLogError::BadFieldLength {
            field: LAUNCH_RECORD_CONTENT_TYPE,
            ..
        }
    ));
    // More than MAX_LAUNCH_RECORDS records.
    let mut many = Vec::new();
    for n in 0..=MAX_LAUNCH_RECORDS {
        many.extend(
            encode_record(u64::try_from(n).unwrap(), 23, &record(1))
                .unwrap()
                .0,
        );
    }
    assert_eq!(
        parse_err(&many),
        WorkloadLogError::TooManyRecords {
            max: MAX_LAUNCH_RECORDS
        }
    );
    let at_cap = many.len() - encode_record(0, 23, &record(1)).unwrap().0.len();
    let mut full = many[..at_cap].to_vec();
    assert_eq!(
        append(&mut full, 23, &record(2)),
        Err(WorkloadLogError::TooManyRecords {
            max: MAX_LAUNCH_RECORDS
        })
    );
    assert_eq!(full.len(), at_cap, "nothing appended on error");
}

#[test]
fn record_fields_are_strict() {
    let fields = launch_fields(&record(1));
    let ok = raw_record(&0u64.to_be_bytes(), &[23], &fields, None);
    assert!(WorkloadLog::parse(&ok, 23).is_ok());
    // The PCR may also be a big-endian u32.
    assert!(
        WorkloadLog::parse(
            &raw_record(&0u64.to_be_bytes(), &[0, 0, 0, 23], &fields, None),
            23
        )
        .is_ok()
    );
    assert_eq!(
        parse_err(&raw_record(&0u32.to_be_bytes(), &[23], &fields, None)),
        WorkloadLogError::BadFieldLength {
            offset: 0,
            field: RECNUM,
            len: 4
        }
    );
    assert_eq!(
        parse_err(&raw_record(&0u64.to_be_bytes(), &[0, 23], &fields, None)),
        WorkloadLogError::BadFieldLength {
            offset: 13,
            field: PCR,
            len: 2
        }
    );
    // An NV index field (type 2) where the PCR must be.
    let mut nv = ok.clone();
    nv[13] = 2;
    assert_eq!(
        parse_err(&nv),
        WorkloadLogError::UnexpectedField {
            offset: 13,
            expected: PCR,
            found: 2
        }
    );
    // Another content type.
    let mut other = ok.clone();
    let content_at = ok.len()
        - tlv(
            0,
            &fields
                .iter()
                .flat_map(|(t, v)| tlv(*t, v))
                .collect::<Vec<_>>(),
        )
        .len();
    other[content_at] = 80;
    assert_eq!(
        parse_err(&other),
        WorkloadLogError::UnknownContentType {
            recnum: 0,
            content_type: 80
        }
    );
    // Trailing garbage after a record is the start of a truncated record.
    let mut trailing = ok.clone();
    trailing.push(0);
    assert!(matches!(
        parse_err(&trailing),
        WorkloadLogError::Truncated { .. }
    ));
}

#[test]
fn digests_are_strict() {
    let fields = launch_fields(&record(1));
    let content: Vec<u8> = fields.iter().flat_map(|(t, v)| tlv(*t, v)).collect();
    let content = tlv(LAUNCH_RECORD_CONTENT_TYPE, &content);
    let digest = sha256(&content);
    let with_digests = |digests: Vec<u8>| {
        let mut out = tlv(RECNUM, &0u64.to_be_bytes());
        out.extend(tlv(PCR, &[23]));
        out.extend(tlv(DIGESTS, &digests));
        out.extend(content.clone());
        parse_err(&out)
    };
    let sha1 = tlv(0x04, &[0; 20]);
    let sha256_tlv = tlv(SHA256_ALG_ID, &digest);
    assert_eq!(
        with_digests([sha1, sha256_tlv.clone()].concat()),
        WorkloadLogError::InvalidDigests {
            recnum: 0,
            problem: DigestsProblem::UnsupportedAlgorithm { alg: 4 }
        }
    );
    assert_eq!(
        with_digests([sha256_tlv.clone(), sha256_tlv].concat()),
        WorkloadLogError::InvalidDigests {
            recnum: 0,
            problem: DigestsProblem::Duplicate
        }
    );
    assert_eq!(
        with_digests(Vec::new()),
        WorkloadLogError::InvalidDigests {
            recnum: 0,
            problem: DigestsProblem::MissingSha256
        }
    );
    assert_eq!(
        with_digests(tlv(SHA256_ALG_ID, &digest[..31])),
        WorkloadLogError::InvalidDigests {
            recnum: 0,
            problem: DigestsProblem::WrongLength { len: 31 }
        }
    );
}

#[test]
fn launch_records_are_canonical() {
    let fields = launch_fields(&record(1));
    let invalid = |field, problem| WorkloadLogError::InvalidLaunchRecord {
        recnum: 0,
        error: LaunchRecordError { field, problem },
    };
    let mut unknown = fields.clone();
    unknown.push((9, b"x".to_vec()));
    assert_eq!(
        launch_err(&unknown),
        invalid(LaunchField::Unknown(9), LaunchFieldProblem::Unknown)
    );
    let mut duplicate = fields.clone();
    duplicate.insert(1, fields[0].clone());
    assert_eq!(
        launch_err(&duplicate),
        invalid(LaunchField::InstanceId, LaunchFieldProblem::Duplicate)
    );
    let mut swapped = fields.clone();
    swapped.swap(0, 1);
    assert_eq!(
        launch_err(&swapped),
        invalid(LaunchField::InstanceId, LaunchFieldProblem::OutOfOrder)
    );
    let mut missing = fields.clone();
    missing.remove(3);
    assert_eq!(
        launch_err(&missing),
        invalid(LaunchField::ModelName, LaunchFieldProblem::Missing)
    );
    let mut no_key = fields.clone();
    no_key.pop();
    assert_eq!(
        launch_err(&no_key),
        invalid(LaunchField::InstanceKeySha256, LaunchFieldProblem::Missing)
    );
    let mut short_key = fields.clone();
    short_key[5].1.pop();
    assert_eq!(
        launch_err(&short_key),
        invalid(
            LaunchField::InstanceKeySha256,
            LaunchFieldProblem::WrongLength { len: 31 }
        )
    );
    let mut not_utf8 = fields.clone();
    not_utf8[3].1 = vec![0xff];
    assert_eq!(
        launch_err(&not_utf8),
        invalid(LaunchField::ModelName, LaunchFieldProblem::NotUtf8)
    );
    let mut bad_digest = fields.clone();
    bad_digest[2].1 = format!("sha256:{}", "AB".repeat(32)).into_bytes();
    assert_eq!(
        launch_err(&bad_digest),
        invalid(
            LaunchField::ImageDigest,
            LaunchFieldProblem::NotSha256Digest
        )
    );
}

#[test]
fn launch_record_fields_are_checked_when_built() {
    let digest = format!("sha256:{}", "0".repeat(64));
    let err = |field, problem| Err(LaunchRecordError { field, problem });
    assert_eq!(
        LaunchRecord::new("", "r", &digest, "m", &digest, [0; 32]),
        err(LaunchField::InstanceId, LaunchFieldProblem::Empty)
    );
    assert_eq!(
        LaunchRecord::new("i", "r\n", &digest, "m", &digest, [0; 32]),
        err(
            LaunchField::ImageReference,
            LaunchFieldProblem::ControlCharacter
        )
    );
    assert_eq!(
        LaunchRecord::new(
            "i",
            "r",
            &digest,
            &"m".repeat(MAX_MODEL_NAME_LEN + 1),
            &digest,
            [0; 32]
        ),
        err(
            LaunchField::ModelName,
            LaunchFieldProblem::TooLong {
                max: MAX_MODEL_NAME_LEN
            }
        )
    );
    assert_eq!(
        LaunchRecord::new("i", "r", &digest, "m", "sha384:00", [0; 32]),
        err(
            LaunchField::ModelDigest,
            LaunchFieldProblem::NotSha256Digest
        )
    );
    assert!(LaunchRecord::new("i", "r", &digest, "m", &digest, [0; 32]).is_ok());
}

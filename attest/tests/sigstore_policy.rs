//! Signing policies, trusted roots and bundle parsing: good documents load,
//! every malformed one gets its exact error, and no input panics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use keyward_attest::sigstore::{
    ArtifactKind, BundleError, BundleField, BundleVersion, DsseError, JsonErrorKind,
    MAX_BUNDLE_LEN, MAX_MANAGED_KEYS, MAX_POLICY_LEN, PREDICATE_COSIGN_SIGN_V1,
    PREDICATE_MODEL_SIGNING_V1, PREDICATE_SIMPLE_SIGNING, PolicyError, SigningPolicy,
    SubjectMatcher, TrustRoot, TrustRootError, parse_bundle, parse_dsse_envelope, parse_statement,
};
use serde_json::json;

const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn shared(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../shared/testdata/sigstore/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn key_pem() -> String {
    std::fs::read_to_string(format!(
        "{}/testdata/model-signing/keys/signer.pub",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn ca_pem(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/testdata/model-signing/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn parse(value: serde_json::Value) -> Result<SigningPolicy, PolicyError> {
    SigningPolicy::from_json(value.to_string().as_bytes())
}

fn image(extra: serde_json::Value) -> serde_json::Value {
    let mut base = json!({"kind": "image", "predicate_types": [PREDICATE_COSIGN_SIGN_V1],
        "identities": [{"issuer": ISSUER, "subject": "https://github.com/a/b/.github/workflows/r.yml@refs/tags/v1"}]});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

// --- policies ----------------------------------------------------------------------

#[test]
fn a_full_image_policy_loads_and_round_trips() {
    let document = image(json!({
        "predicate_types": [PREDICATE_COSIGN_SIGN_V1, PREDICATE_SIMPLE_SIGNING],
        "identities": [
            {"issuer": ISSUER, "subject_regex": "https://github\\.com/a/b/.*",
             "github": {"repository": "a/b", "ref": "refs/tags/v1", "workflow_sha": "0123456789abcdef0123456789abcdef01234567"}},
            {"issuer": "https://accounts.google.com", "subject": "release@example.com"}
        ],
        "keys": [{"key_id": "release-2025", "public_key": key_pem()}],
        "docker_reference": "ghcr.io/a/b"
    }));
    let policy = parse(document.clone()).unwrap();
    assert_eq!(policy.kind(), ArtifactKind::Image);
    assert_eq!(policy.identities().len(), 2);
    assert!(matches!(
        policy.identities()[0].subject,
        SubjectMatcher::Regex(_)
    ));
    assert_eq!(policy.keys()[0].key_id(), "release-2025");
    assert_eq!(policy.docker_reference(), Some("ghcr.io/a/b"));
    let again = SigningPolicy::from_json(policy.to_json().as_bytes()).unwrap();
    assert_eq!(again.to_json(), policy.to_json());
    // Also through serde, as the vault stores it inside larger documents.
    let via_serde: SigningPolicy = serde_json::from_value(document).unwrap();
    assert_eq!(via_serde.to_json(), policy.to_json());
}

#[test]
fn a_model_policy_with_a_certificate_authority_loads() {
    let policy = parse(
        json!({"kind": "model", "predicate_types": [PREDICATE_MODEL_SIGNING_V1],
        "certificate_authorities": [{"ca_id": "ml", "certificates": ca_pem("ca-bundle.pem")}]}),
    )
    .unwrap();
    assert_eq!(policy.certificate_authorities()[0].ca_id(), "ml");
}

#[test]
fn malformed_policies_get_exact_errors() {
    let cases: Vec<(serde_json::Value, PolicyError)> = vec![
        (
            image(json!({"identities": [], "keys": []})),
            PolicyError::NoSigners,
        ),
        (
            image(json!({"predicate_types": []})),
            PolicyError::NoPredicateType,
        ),
        (
            image(json!({"predicate_types": [PREDICATE_MODEL_SIGNING_V1]})),
            PolicyError::PredicateTypeForKind {
                predicate_type: PREDICATE_MODEL_SIGNING_V1.into(),
                kind: ArtifactKind::Image,
            },
        ),
        (
            image(json!({"predicate_types": ["https://slsa.dev/provenance/v1"]})),
            PolicyError::PredicateTypeForKind {
                predicate_type: "https://slsa.dev/provenance/v1".into(),
                kind: ArtifactKind::Image,
            },
        ),
        (
            image(json!({"predicate_types": [PREDICATE_COSIGN_SIGN_V1, PREDICATE_COSIGN_SIGN_V1]})),
            PolicyError::DuplicatePredicateType {
                predicate_type: PREDICATE_COSIGN_SIGN_V1.into(),
            },
        ),
        (
            json!({"kind": "model", "predicate_types": [PREDICATE_MODEL_SIGNING_V1], "docker_reference": "x",
                   "keys": [{"key_id": "k", "public_key": key_pem()}]}),
            PolicyError::FieldForKind {
                field: "docker_reference",
                kind: ArtifactKind::Model,
            },
        ),
        (
            image(
                json!({"certificate_authorities": [{"ca_id": "c", "certificates": ca_pem("ca-root.pem")}]}),
            ),
            PolicyError::FieldForKind {
                field: "certificate_authorities",
                kind: ArtifactKind::Image,
            },
        ),
        (
            image(json!({"identities": [{"issuer": ISSUER}]})),
            PolicyError::SubjectNotExactlyOne { index: 0 },
        ),
        (
            image(
                json!({"identities": [{"issuer": ISSUER, "subject": "a", "subject_regex": "a"}]}),
            ),
            PolicyError::SubjectNotExactlyOne { index: 0 },
        ),
        (
            image(json!({"identities": [{"issuer": ISSUER, "subject_regex": "("}]})),
            PolicyError::BadRegex { index: 0 },
        ),
        (
            image(json!({"identities": [{"issuer": ISSUER, "subject_regex": "x".repeat(1025)}]})),
            PolicyError::BadValue {
                field: "subject_regex",
                index: 0,
            },
        ),
        (
            image(json!({"identities": [{"issuer": "", "subject": "a"}]})),
            PolicyError::BadValue {
                field: "issuer",
                index: 0,
            },
        ),
        (
            image(json!({"identities": [{"issuer": ISSUER, "subject": "a", "github": {}}]})),
            PolicyError::BadGithubClaim {
                index: 0,
                field: "*",
            },
        ),
        (
            image(
                json!({"identities": [{"issuer": ISSUER, "subject": "a", "github": {"repository": "https://github.com/a/b"}}]}),
            ),
            PolicyError::BadGithubClaim {
                index: 0,
                field: "repository",
            },
        ),
        (
            image(
                json!({"identities": [{"issuer": ISSUER, "subject": "a", "github": {"ref": "main"}}]}),
            ),
            PolicyError::BadGithubClaim {
                index: 0,
                field: "ref",
            },
        ),
        (
            image(
                json!({"identities": [{"issuer": ISSUER, "subject": "a", "github": {"workflow_sha": "ABC"}}]}),
            ),
            PolicyError::BadGithubClaim {
                index: 0,
                field: "workflow_sha",
            },
        ),
        (
            image(
                json!({"keys": [{"key_id": "k", "public_key": key_pem()}, {"key_id": "k", "public_key": key_pem()}]}),
            ),
            PolicyError::DuplicateId { id: "k".into() },
        ),
        (
            image(
                json!({"keys": [{"key_id": "k", "public_key": "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"}]}),
            ),
            PolicyError::BadPublicKey { key_id: "k".into() },
        ),
        (
            image(json!({"keys": [{"key_id": "k", "public_key": "not pem"}]})),
            PolicyError::BadPublicKey { key_id: "k".into() },
        ),
        (
            json!({"kind": "model", "predicate_types": [PREDICATE_MODEL_SIGNING_V1],
                   "certificate_authorities": [{"ca_id": "c", "certificates": ca_pem("ca-intermediate.pem")}]}),
            PolicyError::BadCertificateAuthority { ca_id: "c".into() },
        ),
        (
            image(
                json!({"keys": (0..=MAX_MANAGED_KEYS).map(|i| json!({"key_id": format!("k{i}"), "public_key": key_pem()})).collect::<Vec<_>>()}),
            ),
            PolicyError::TooMany {
                what: "keys",
                count: MAX_MANAGED_KEYS + 1,
                max: MAX_MANAGED_KEYS,
            },
        ),
    ];
    for (document, expected) in cases {
        assert_eq!(parse(document.clone()).unwrap_err(), expected, "{document}");
    }
    let unknown = image(json!({"identity": []}));
    assert!(matches!(
        parse(unknown).unwrap_err(),
        PolicyError::Json { .. }
    ));
    let unknown_nested =
        image(json!({"identities": [{"issuer": ISSUER, "subject": "a", "email": "x"}]}));
    assert!(matches!(
        parse(unknown_nested).unwrap_err(),
        PolicyError::Json { .. }
    ));
    let big = vec![b' '; MAX_POLICY_LEN + 1];
    assert_eq!(
        SigningPolicy::from_json(&big).unwrap_err(),
        PolicyError::TooLarge {
            len: MAX_POLICY_LEN + 1,
            max: MAX_POLICY_LEN
        }
    );
}

// --- trusted roots ---------------------------------------------------------------------

#[test]
fn trusted_roots_load_and_malformed_ones_are_rejected() {
    let production = TrustRoot::production().unwrap();
    assert!(production.is_production());
    // The embedded root is the one the shared test data documents.
    let pinned = TrustRoot::from_json(&shared("trusted_root.production.json")).unwrap();
    assert!(!pinned.is_production());
    assert!(
        TrustRoot::from_json(&shared(
            "conformance/intoto-with-custom-trust-root/trusted_root.json"
        ))
        .is_ok()
    );

    assert!(matches!(
        TrustRoot::from_json(b"{"),
        Err(TrustRootError::Json {
            kind: JsonErrorKind::Eof,
            ..
        })
    ));
    assert!(matches!(
        TrustRoot::from_json(&[0xff, 0xfe]),
        Err(TrustRootError::NotUtf8)
    ));
    let big = vec![b' '; 1024 * 1024 + 1];
    assert!(matches!(
        TrustRoot::from_json(&big),
        Err(TrustRootError::TooLarge { .. })
    ));
    // A key window that ends before it starts.
    let mut root: serde_json::Value =
        serde_json::from_slice(&shared("trusted_root.production.json")).unwrap();
    root["tlogs"][0]["publicKey"]["validFor"] =
        json!({"start": "2024-01-01T00:00:00Z", "end": "2023-01-01T00:00:00Z"});
    assert!(matches!(
        TrustRoot::from_json(root.to_string().as_bytes()),
        Err(TrustRootError::Material { .. })
    ));
}

// --- bundles -----------------------------------------------------------------------------

fn conformance_bundle(case: &str) -> serde_json::Value {
    serde_json::from_slice(&shared(&format!("conformance/{case}/bundle.sigstore.json"))).unwrap()
}

#[test]
fn bundles_parse_with_their_versions() {
    for (case, version, dsse) in [
        ("happy-path-v0.1", BundleVersion::V0_1, false),
        ("happy-path-v0.2", BundleVersion::V0_2, false),
        ("happy-path-v0.3", BundleVersion::V0_3, false),
        ("happy-path-intoto-in-dsse-v3", BundleVersion::V0_3, true),
    ] {
        let parsed =
            parse_bundle(&shared(&format!("conformance/{case}/bundle.sigstore.json"))).unwrap();
        assert_eq!(
            (parsed.version(), parsed.is_dsse()),
            (version, dsse),
            "{case}"
        );
        assert_eq!(parsed.tlog_entry_count(), 1);
    }
    assert!(
        parse_bundle(&shared(
            "conformance/managed-key-happy-path/bundle.sigstore.json"
        ))
        .unwrap()
        .is_public_key()
    );
}

#[test]
fn malformed_bundles_get_exact_errors() {
    let good = conformance_bundle("happy-path-v0.3");
    let dsse = conformance_bundle("happy-path-intoto-in-dsse-v3");
    let edit = |base: &serde_json::Value, f: &dyn Fn(&mut serde_json::Value)| {
        let mut b = base.clone();
        f(&mut b);
        parse_bundle(b.to_string().as_bytes())
    };
    assert_eq!(
        edit(&good, &|b| {
            b.as_object_mut().unwrap().remove("mediaType");
        })
        .unwrap_err(),
        BundleError::MissingMediaType
    );
    assert_eq!(
        edit(&good, &|b| b["mediaType"] = json!("application/json")).unwrap_err(),
        BundleError::UnknownMediaType {
            media_type: "application/json".into()
        }
    );
    assert_eq!(
        edit(&good, &|b| b["messageSignature"]["signature"] = json!("**")).unwrap_err(),
        BundleError::InvalidBase64 {
            field: BundleField::MessageSignature
        }
    );
    assert_eq!(
        edit(
            &good,
            &|b| b["verificationMaterial"]["certificate"]["rawBytes"] = json!("%")
        )
        .unwrap_err(),
        BundleError::InvalidBase64 {
            field: BundleField::Certificate
        }
    );
    assert_eq!(
        edit(
            &good,
            &|b| b["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"] = json!("!")
        )
        .unwrap_err(),
        BundleError::InvalidBase64 {
            field: BundleField::CanonicalizedBody
        }
    );
    assert_eq!(
        edit(&dsse, &|b| b["dsseEnvelope"]["payload"] = json!("@@")).unwrap_err(),
        BundleError::InvalidBase64 {
            field: BundleField::DssePayload
        }
    );
    assert_eq!(
        edit(&dsse, &|b| {
            let sig = b["dsseEnvelope"]["signatures"][0].clone();
            b["dsseEnvelope"]["signatures"]
                .as_array_mut()
                .unwrap()
                .push(sig);
        })
        .unwrap_err(),
        BundleError::DsseSignatureCount { count: 2 }
    );
    assert_eq!(
        edit(&good, &|b| {
            b.as_object_mut().unwrap().remove("messageSignature");
        })
        .unwrap_err(),
        BundleError::ContentNotExactlyOne
    );
    assert_eq!(
        edit(&good, &|b| b["dsseEnvelope"] = dsse["dsseEnvelope"].clone()).unwrap_err(),
        BundleError::ContentNotExactlyOne
    );
    assert_eq!(
        edit(&good, &|b| b["verificationMaterial"] =
            json!({"tlogEntries": []}))
        .unwrap_err(),
        BundleError::MissingVerificationMaterial
    );
    assert!(matches!(
        edit(
            &good,
            &|b| b["verificationMaterial"]["tlogEntries"][0]["logIndex"] = json!("-1")
        )
        .unwrap_err(),
        BundleError::InvalidValue {
            kind: JsonErrorKind::Data,
            ..
        }
    ));
    assert!(matches!(
        parse_bundle(br#"{"mediaType": "x""#),
        Err(BundleError::Json {
            kind: JsonErrorKind::Eof,
            ..
        })
    ));
    assert!(matches!(
        parse_bundle(b"[1, 2]"),
        Err(BundleError::Json {
            kind: JsonErrorKind::Data,
            ..
        })
    ));
    assert!(matches!(
        parse_bundle(b"{]"),
        Err(BundleError::Json {
            kind: JsonErrorKind::Syntax,
            ..
        })
    ));
    assert_eq!(
        parse_bundle(&[0xc3, 0x28]).unwrap_err(),
        BundleError::NotUtf8
    );
    let big = vec![b' '; MAX_BUNDLE_LEN + 1];
    assert_eq!(
        parse_bundle(&big).unwrap_err(),
        BundleError::TooLarge {
            len: MAX_BUNDLE_LEN + 1,
            max: MAX_BUNDLE_LEN
        }
    );
    // Deep nesting stops at serde_json's recursion limit instead of the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        parse_bundle(deep.as_bytes()),
        Err(BundleError::Json { .. })
    ));
}

#[test]
fn standalone_dsse_and_statements_parse() {
    let dsse = conformance_bundle("happy-path-intoto-in-dsse-v3");
    let envelope = parse_dsse_envelope(dsse["dsseEnvelope"].to_string().as_bytes()).unwrap();
    assert_eq!(envelope.payload_type(), "application/vnd.in-toto+json");
    let statement = parse_statement(envelope.payload_type(), envelope.payload()).unwrap();
    assert_eq!(statement.predicate_type(), "https://slsa.dev/provenance/v1");
    let mut extra = dsse["dsseEnvelope"].clone();
    extra["unexpected"] = json!(1);
    assert!(matches!(
        parse_dsse_envelope(extra.to_string().as_bytes()),
        Err(DsseError::Json { .. })
    ));
}

/// A small deterministic mutation fuzzer over real inputs: whatever the
/// bytes, parsing returns (and never panics).
#[test]
fn mutated_inputs_never_panic() {
    let seeds = [
        shared("conformance/happy-path-v0.3/bundle.sigstore.json"),
        shared("conformance/happy-path-intoto-in-dsse-v3/bundle.sigstore.json"),
        shared("cosign-v3-image-kubewarden.sigstore.json"),
        std::fs::read(format!(
            "{}/testdata/model-signing/signatures/key-v10.sig",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in &seeds {
        for _ in 0..300 {
            let mut input = seed.clone();
            for _ in 0..(next() % 8 + 1) {
                let at = usize::try_from(next()).unwrap() % input.len();
                match next() % 4 {
                    0 => input[at] = u8::try_from(next() % 256).unwrap(),
                    1 => input.truncate(at),
                    2 => input.insert(at, b"{}[]\",:0"[usize::try_from(next() % 8).unwrap()]),
                    _ => {
                        input.remove(at);
                    }
                }
                if input.is_empty() {
                    input.push(b'{');
                }
            }
            let _ = parse_bundle(&input);
            let _ = parse_dsse_envelope(&input);
            let _ = parse_statement("application/vnd.in-toto+json", &input);
            let _ = SigningPolicy::from_json(&input);
            let _ = TrustRoot::from_json(&input);
        }
    }
}

#[test]
fn verifier_types_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<TrustRoot>();
    shareable::<SigningPolicy>();
    shareable::<keyward_attest::sigstore::VerifiedArtifact>();
    shareable::<keyward_attest::sigstore::model::VerifiedModelSignature>();
}

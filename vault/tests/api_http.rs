//! The HTTP API driven through `tower::ServiceExt::oneshot` (no socket),
//! on a temp-dir sled store and a temp audit log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keyward_vault::api::{AppState, app};
use keyward_vault::audit::{AuditLog, AuditWriter, HMAC_PREFIX, verify};
use keyward_vault::barrier::BarrierLimits;
use keyward_vault::config::{HumanDuration, Limits};
use keyward_vault::seal::Seal;
use keyward_vault::storage::{KeyRange, Keyspace, SledConfig, SledStorage, Storage};
use serde_json::{Value, json};
use tower::ServiceExt;

const OK: u8 = 0;
const FAIL: u8 = 1;
const STUCK: u8 = 2;

/// An audit sink whose behaviour a test switches: write, fail, or hang.
struct SwitchWriter {
    mode: Arc<AtomicU8>,
    file: File,
}

impl AuditWriter for SwitchWriter {
    fn append(&mut self, lines: &[u8]) -> std::io::Result<()> {
        match self.mode.load(Ordering::SeqCst) {
            FAIL => Err(std::io::Error::other("disk full")),
            STUCK => {
                std::thread::sleep(Duration::from_secs(3));
                Err(std::io::Error::other("stuck"))
            }
            _ => self.file.write_all(lines),
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    state: AppState,
    storage: Arc<dyn Storage>,
    audit_path: PathBuf,
    mode: Arc<AtomicU8>,
}

fn limits() -> Limits {
    Limits {
        max_body_bytes: 4096,
        request_timeout: HumanDuration(Duration::from_secs(10)),
        max_concurrent_requests: 16,
    }
}

/// A vault on a real audit file (`switchable`: false) or on a
/// [`SwitchWriter`] appending to the same path after a real header.
async fn harness_with(limits: Limits, audit_timeout: Duration, switchable: bool) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> =
        Arc::new(SledStorage::open(&SledConfig::new(dir.path().join("data"))).unwrap());
    let seal = Arc::new(
        Seal::open(Arc::clone(&storage), BarrierLimits::default())
            .await
            .unwrap(),
    );
    let audit_path = dir.path().join("audit.log");
    let mode = Arc::new(AtomicU8::new(OK));
    let audit = if switchable {
        drop(AuditLog::open(&audit_path, audit_timeout).unwrap());
        let head = verify(File::open(&audit_path).unwrap()).unwrap();
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&audit_path)
            .unwrap();
        AuditLog::with_writer(
            Box::new(SwitchWriter {
                mode: Arc::clone(&mode),
                file,
            }),
            head.last_hash,
            head.last_seq,
            audit_timeout,
        )
        .unwrap()
    } else {
        AuditLog::open(&audit_path, audit_timeout).unwrap()
    };
    let state = AppState::new(Arc::clone(&storage), seal, Arc::new(audit), limits);
    Harness {
        _dir: dir,
        state,
        storage,
        audit_path,
        mode,
    }
}

async fn harness() -> Harness {
    harness_with(limits(), Duration::from_secs(2), false).await
}

impl Harness {
    async fn raw(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        assert!(resp.headers().contains_key("x-request-id"));
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("x-keyward-token", t);
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.raw(req.body(body).unwrap()).await
    }

    /// Inits with 3 shares, threshold 2; returns (shares, root token).
    async fn init(&self) -> (Vec<String>, String) {
        let (status, body) = self
            .call(
                "POST",
                "/v1/sys/init",
                None,
                Some(json!({"secret_shares": 3, "secret_threshold": 2})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let keys = body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        (keys, body["root_token"].as_str().unwrap().to_owned())
    }

    async fn create_token(&self, root: &str, roles: Value) -> (String, String) {
        let (status, body) = self
            .call(
                "POST",
                "/v1/auth/token/create",
                Some(root),
                Some(json!({"roles": roles, "ttl": "5m"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["token"].as_str().unwrap().to_owned(),
            body["accessor"].as_str().unwrap().to_owned(),
        )
    }

    fn audit_text(&self) -> String {
        std::fs::read_to_string(&self.audit_path).unwrap()
    }

    fn audit_records(&self) -> Vec<Value> {
        self.audit_text()
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn token_entries(&self) -> usize {
        self.storage
            .scan(Keyspace::Tokens, KeyRange::All, 1000)
            .await
            .unwrap()
            .len()
    }
}

fn error_text(body: &Value) -> String {
    let errors = body["errors"].as_array().expect("errors array");
    assert_eq!(errors.len(), 1);
    errors[0].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn init_seal_unseal_and_audit() {
    let h = harness().await;
    let (status, body) = h.call("GET", "/v1/sys/seal-status", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["initialized"], false);
    let (status, body) = h.call("GET", "/v1/sys/health", None, None).await;
    assert_eq!(
        (status, body["sealed"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!(true))
    );
    // Sealed: everything else is 503.
    let (status, body) = h
        .call("GET", "/v1/auth/token/lookup-self", None, None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_text(&body), "Vault is sealed");

    let (keys, root) = h.init().await;
    assert_eq!(keys.len(), 3);
    let (status, _) = h
        .call(
            "POST",
            "/v1/sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = h
        .call("GET", "/v1/auth/token/lookup-self", Some(&root), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["roles"], json!(["admin"]));
    assert_eq!(body["expires_at"], Value::Null);
    let (status, _) = h.call("GET", "/v1/sys/health", None, None).await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = h.call("POST", "/v1/sys/seal", Some(&root), None).await;
    assert_eq!(
        (status, body["sealed"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (status, _) = h
        .call("GET", "/v1/auth/token/lookup-self", Some(&root), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = h.call("POST", "/v1/sys/seal", Some(&root), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    let (status, body) = h
        .call(
            "POST",
            "/v1/sys/unseal",
            None,
            Some(json!({"key": keys[0]})),
        )
        .await;
    assert_eq!(
        (status, body["progress"].clone(), body["sealed"].clone()),
        (StatusCode::OK, json!(1), json!(true))
    );
    let (status, body) = h
        .call(
            "POST",
            "/v1/sys/unseal",
            None,
            Some(json!({"key": keys[0]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&body).contains("already submitted"));
    let (status, body) = h
        .call(
            "POST",
            "/v1/sys/unseal",
            None,
            Some(json!({"key": keys[2]})),
        )
        .await;
    assert_eq!(
        (status, body["sealed"].clone()),
        (StatusCode::OK, json!(false))
    );
    let (status, _) = h
        .call(
            "POST",
            "/v1/sys/unseal",
            None,
            Some(json!({"key": keys[1]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = h
        .call("GET", "/v1/auth/token/lookup-self", Some(&root), None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // Every request on sys/auth paths is in the chained log; no secret is.
    let text = h.audit_text();
    verify(text.as_bytes()).unwrap();
    assert!(!text.contains(&root));
    for k in &keys {
        assert!(!text.contains(k.as_str()));
    }
    let records = h.audit_records();
    let ops: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["operation"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        &ops[..3],
        &[
            ("sys.init", "attempt"),
            ("sys.init", "success"),
            ("sys.init", "failed")
        ]
    );
    assert!(ops.contains(&("sys.seal", "success")));
    assert!(ops.contains(&("sys.unseal", "failed")));
    let init_ok = &records[1];
    assert!(
        init_ok["response"]["root_token"]
            .as_str()
            .unwrap()
            .starts_with(HMAC_PREFIX)
    );
    assert!(
        init_ok["response"]["keys"][0]
            .as_str()
            .unwrap()
            .starts_with(HMAC_PREFIX)
    );
    assert_eq!(init_ok["actor"], "anonymous");
    // While sealed there is no key: leaves are a placeholder, never values.
    let unseal_attempt = records
        .iter()
        .find(|r| r["operation"] == "sys.unseal")
        .unwrap();
    assert_eq!(unseal_attempt["request"]["key"], "redacted:sealed");
    let seal_ok = records
        .iter()
        .find(|r| r["operation"] == "sys.seal" && r["outcome"] == "success")
        .unwrap();
    assert_ne!(seal_ok["actor"], "anonymous");
}

#[tokio::test]
async fn bad_input_is_400_or_413_and_writes_nothing() {
    let h = harness().await;
    let cases = [
        (
            json!({"secret_shares": 3, "secret_threshold": 2, "extra": 1}),
            "extra",
        ),
        (
            json!({"secret_shares": "three", "secret_threshold": 2}),
            "secret_shares",
        ),
        (json!({"secret_threshold": 2}), "secret_shares"),
        (
            json!({"secret_shares": 2, "secret_threshold": 3}),
            "secret_threshold",
        ),
        (
            json!({"secret_shares": 300, "secret_threshold": 2}),
            "secret_shares",
        ),
    ];
    for (body, field) in cases {
        let (status, resp) = h
            .call("POST", "/v1/sys/init", None, Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            error_text(&resp).contains(field),
            "{resp} should name {field}"
        );
    }
    let malformed = Request::post("/v1/sys/init")
        .header("content-type", "application/json")
        .body(Body::from("{\"secret_shares\": 3,"))
        .unwrap();
    let (status, resp) = h.raw(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&resp).starts_with("malformed JSON"));
    let wrong_type = Request::post("/v1/sys/init")
        .header("content-type", "text/plain")
        .body(Body::from(
            "{\"secret_shares\": 3, \"secret_threshold\": 2}",
        ))
        .unwrap();
    let (status, resp) = h.raw(wrong_type).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&resp).contains("application/json"));
    let big = Request::post("/v1/sys/init")
        .header("content-type", "application/json")
        .body(Body::from(format!(
            "{{\"pad\": \"{}\"}}",
            "x".repeat(10_000)
        )))
        .unwrap();
    let (status, resp) = h.raw(big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    error_text(&resp);
    // Nothing was initialised or stored.
    let (_, status) = h.call("GET", "/v1/sys/seal-status", None, None).await;
    assert_eq!(status["initialized"], false);
    assert!(
        h.storage
            .scan(Keyspace::System, KeyRange::All, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let (keys, root) = h.init().await;
    let before = h.token_entries().await;
    for (body, field) in [
        (json!({"roles": ["god"]}), "roles[0]"),
        (json!({"roles": []}), "roles"),
        (json!({"roles": ["admin"], "ttl": "5x"}), "ttl"),
        (json!({"roles": ["admin"], "ttl": true}), "ttl"),
        (json!({"roles": ["admin"], "ttl": "400d"}), "ttl"),
        (json!({"roles": ["admin"], "policy": "x"}), "policy"),
    ] {
        let (status, resp) = h
            .call(
                "POST",
                "/v1/auth/token/create",
                Some(&root),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            error_text(&resp).contains(field),
            "{resp} should name {field}"
        );
    }
    assert_eq!(h.token_entries().await, before);
    let (status, resp) = h
        .call("POST", "/v1/sys/unseal", None, Some(json!({"key": "zz"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    h.call("POST", "/v1/sys/seal", Some(&root), None).await;
    let (status, resp) = h
        .call("POST", "/v1/sys/unseal", None, Some(json!({"key": "zz"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&resp).starts_with("key:"));
    let (_, st) = h.call("GET", "/v1/sys/seal-status", None, None).await;
    assert_eq!(st["progress"], 0);
    let (status, _) = h
        .call(
            "POST",
            "/v1/sys/unseal",
            None,
            Some(json!({"key": keys[0]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn routing_errors_have_the_error_shape() {
    let h = harness().await;
    let (status, body) = h.call("GET", "/v1/sys/nope", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "sealed first");
    error_text(&body);
    h.init().await;
    let (status, body) = h.call("GET", "/v1/sys/nope", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    error_text(&body);
    let (status, body) = h.call("GET", "/v1/sys/init", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_text(&body), "method not allowed");
}

#[tokio::test]
async fn token_roles_401_403() {
    let h = harness().await;
    let (_, root) = h.init().await;
    let (platform, platform_acc) = h.create_token(&root, json!(["platform"])).await;
    let (auditor, _) = h.create_token(&root, json!(["auditor"])).await;

    // 401: missing, malformed, unknown.
    for token in [
        None,
        Some("garbage"),
        Some("kwt_0000000000000000000000000000000000000000000000000000000000000000"),
    ] {
        let (status, body) = h
            .call("GET", "/v1/auth/token/lookup-self", token, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(error_text(&body).starts_with("permission denied (request id "));
    }
    // Bearer works as well.
    let req = Request::get("/v1/auth/token/lookup-self")
        .header("authorization", format!("Bearer {platform}"))
        .body(Body::empty())
        .unwrap();
    let (status, body) = h.raw(req).await;
    assert_eq!(
        (status, body["roles"].clone()),
        (StatusCode::OK, json!(["platform"]))
    );
    assert!(body["expires_at"].as_u64().unwrap() > body["created_at"].as_u64().unwrap());
    // 403: wrong role.
    let (status, body) = h
        .call(
            "POST",
            "/v1/auth/token/create",
            Some(&platform),
            Some(json!({"roles": ["platform"]})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_text(&body).starts_with("permission denied"));
    let (status, _) = h.call("POST", "/v1/sys/seal", Some(&auditor), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .call(
            "POST",
            "/v1/auth/token/lookup",
            Some(&platform),
            Some(json!({"accessor": platform_acc})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .call(
            "POST",
            "/v1/sys/audit-hash",
            Some(&platform),
            Some(json!({"input": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Auditor may look up by accessor; unknown accessor is 404.
    let (status, body) = h
        .call(
            "POST",
            "/v1/auth/token/lookup",
            Some(&auditor),
            Some(json!({"accessor": platform_acc})),
        )
        .await;
    assert_eq!(
        (status, body["roles"].clone()),
        (StatusCode::OK, json!(["platform"]))
    );
    let (status, _) = h
        .call(
            "POST",
            "/v1/auth/token/lookup",
            Some(&auditor),
            Some(json!({"accessor": "00".repeat(16)})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Revoke by accessor (admin), then the token is 401; revoke again 404.
    let (status, _) = h
        .call(
            "POST",
            "/v1/auth/token/revoke",
            Some(&auditor),
            Some(json!({"accessor": platform_acc})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h
        .call(
            "POST",
            "/v1/auth/token/revoke",
            Some(&root),
            Some(json!({"accessor": platform_acc})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .call("GET", "/v1/auth/token/lookup-self", Some(&platform), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = h
        .call(
            "POST",
            "/v1/auth/token/revoke",
            Some(&root),
            Some(json!({"accessor": platform_acc})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // revoke-self.
    let (status, _) = h
        .call("POST", "/v1/auth/token/revoke-self", Some(&auditor), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h
        .call("GET", "/v1/auth/token/lookup-self", Some(&auditor), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Denials are audited with the exact reason and actor; no token value.
    let text = h.audit_text();
    verify(text.as_bytes()).unwrap();
    assert!(!text.contains(&platform) && !text.contains(&auditor) && !text.contains(&root));
    let records = h.audit_records();
    let reasons: Vec<&str> = records
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"unauthenticated: no token presented"));
    assert!(reasons.contains(&"unauthenticated: malformed token"));
    assert!(reasons.contains(&"unauthenticated: unknown or revoked token"));
    assert!(reasons.contains(&"forbidden: needs one of [admin], token holds [platform]"));
    let forbidden = records
        .iter()
        .find(|r| r["reason"] == "forbidden: needs one of [admin], token holds [auditor]")
        .unwrap();
    assert_eq!(forbidden["operation"], "sys.seal");
    assert_eq!(forbidden["status"], 403);
    assert_ne!(forbidden["actor"], "anonymous");
}

#[tokio::test]
async fn audit_hash_matches_every_leaf_type() {
    let h = harness().await;
    let (_, root) = h.init().await;
    let (status, body) = h
        .call(
            "POST",
            "/v1/auth/token/create",
            Some(&root),
            Some(json!({"roles": ["release"], "ttl": 300})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["token"].as_str().unwrap().to_owned();
    let text = h.audit_text();
    assert!(!text.contains(&token));
    for input in [json!(300), json!("release"), json!(token)] {
        let (status, resp) = h
            .call(
                "POST",
                "/v1/sys/audit-hash",
                Some(&root),
                Some(json!({"input": input})),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let hash = resp["hash"].as_str().unwrap();
        assert!(hash.starts_with(HMAC_PREFIX));
        assert!(text.contains(hash), "{input} not found as {hash}");
    }
    let (status, resp) = h
        .call(
            "POST",
            "/v1/sys/audit-hash",
            Some(&root),
            Some(json!({"input": [1]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&resp).starts_with("input:"));
    // Booleans are hashed too: the created record's response has none, but
    // the hash differs from the string "true".
    let (_, b) = h
        .call(
            "POST",
            "/v1/sys/audit-hash",
            Some(&root),
            Some(json!({"input": true})),
        )
        .await;
    let (_, s) = h
        .call(
            "POST",
            "/v1/sys/audit-hash",
            Some(&root),
            Some(json!({"input": "true"})),
        )
        .await;
    assert_eq!(
        b["hash"], s["hash"],
        "documented: a leaf is hashed as its text"
    );
}

#[tokio::test]
async fn failing_audit_sink_refuses_with_503_and_no_effect() {
    let h = harness_with(limits(), Duration::from_secs(1), true).await;
    let (_, root) = h.init().await;
    let before = h.token_entries().await;
    h.mode.store(FAIL, Ordering::SeqCst);
    let (status, body) = h
        .call(
            "POST",
            "/v1/auth/token/create",
            Some(&root),
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_text(&body), "audit log unavailable; request refused");
    assert_eq!(h.token_entries().await, before, "no token was created");
    // Poisoned: later requests are refused too, even with the disk back.
    h.mode.store(OK, Ordering::SeqCst);
    let (status, _) = h.call("POST", "/v1/sys/seal", Some(&root), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (_, st) = h.call("GET", "/v1/sys/seal-status", None, None).await;
    assert_eq!(st["sealed"], false, "seal was not performed");
    // The log up to the failure still verifies.
    verify(h.audit_text().as_bytes()).unwrap();
    let (_, metrics) = h.call("GET", "/metrics", None, None).await;
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("keyward_audit_failures_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn stuck_audit_sink_times_out_with_503() {
    let h = harness_with(limits(), Duration::from_millis(200), true).await;
    let (_, root) = h.init().await;
    let before = h.token_entries().await;
    h.mode.store(STUCK, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let (status, _) = h
        .call(
            "POST",
            "/v1/auth/token/create",
            Some(&root),
            Some(json!({"roles": ["admin"]})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(h.token_entries().await, before);
}

#[tokio::test]
async fn audit_path_that_is_a_directory_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        AuditLog::open(dir.path(), Duration::from_secs(1)),
        Err(keyward_vault::audit::AuditError::Open { .. })
    ));
}

#[tokio::test]
async fn request_timeout_is_503_and_overload_is_429() {
    let mut l = limits();
    l.request_timeout = HumanDuration(Duration::from_secs(1));
    l.max_concurrent_requests = 1;
    let h = harness_with(l, Duration::from_secs(5), true).await;
    let (_, root) = h.init().await;
    h.mode.store(STUCK, Ordering::SeqCst);
    let router = app(h.state.clone());
    let slow = {
        let router = router.clone();
        let root = root.clone();
        tokio::spawn(async move {
            let req = Request::post("/v1/sys/seal")
                .header("x-keyward-token", root)
                .body(Body::empty())
                .unwrap();
            router.oneshot(req).await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let req = Request::get("/v1/sys/seal-status")
        .body(Body::empty())
        .unwrap();
    let resp = router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let resp = slow.await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error_text(&body), "request timed out");
}

#[tokio::test]
async fn metrics_and_openapi() {
    let h = harness().await;
    h.init().await;
    let (status, text) = h.call("GET", "/metrics", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap().to_owned();
    assert!(
        text.contains("keyward_http_requests_total{route=\"/v1/sys/init\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("keyward_audit_failures_total 0"));
    let (status, doc) = h.call("GET", "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/sys/init",
        "/v1/sys/unseal",
        "/v1/auth/token/create",
        "/v1/sys/audit-hash",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    assert!(doc["components"]["schemas"]["CreateTokenRequest"].is_object());
}

#[tokio::test]
async fn unseal_reset_discards_progress() {
    let h = harness().await;
    let (keys, root) = h.init().await;
    h.call("POST", "/v1/sys/seal", Some(&root), None).await;
    let (_, st) = h
        .call(
            "POST",
            "/v1/sys/unseal",
            None,
            Some(json!({"key": keys[0]})),
        )
        .await;
    assert_eq!(st["progress"], 1);
    let (status, st) = h
        .call("POST", "/v1/sys/unseal", None, Some(json!({"reset": true})))
        .await;
    assert_eq!((status, st["progress"].clone()), (StatusCode::OK, json!(0)));
    let (status, resp) = h
        .call("POST", "/v1/sys/unseal", None, Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&resp).starts_with("key:"));
    // A share of another vault: the set does not open the keyring.
    let other = harness().await;
    let (other_keys, _) = other.init().await;
    h.call(
        "POST",
        "/v1/sys/unseal",
        None,
        Some(json!({"key": keys[0]})),
    )
    .await;
    let (status, resp) = h
        .call(
            "POST",
            "/v1/sys/unseal",
            None,
            Some(json!({"key": other_keys[1]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&resp).contains("do not open"));
    let (_, st) = h.call("GET", "/v1/sys/seal-status", None, None).await;
    assert_eq!(
        (st["sealed"].clone(), st["progress"].clone()),
        (json!(true), json!(0))
    );
}

#[tokio::test]
async fn expired_token_is_401_with_the_reason_audited() {
    let h = harness().await;
    let (_, root) = h.init().await;
    let (status, body) = h
        .call(
            "POST",
            "/v1/auth/token/create",
            Some(&root),
            Some(json!({"roles": ["auditor"], "ttl": "1s"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["token"].as_str().unwrap().to_owned();
    let accessor = body["accessor"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = h
        .call("GET", "/v1/auth/token/lookup-self", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let denied = h
        .audit_records()
        .into_iter()
        .rev()
        .find(|r| r["outcome"] == "denied")
        .unwrap();
    assert_eq!(denied["actor"], accessor.as_str());
    assert!(
        denied["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("unauthenticated: token {accessor} expired at "))
    );
}

#[tokio::test]
async fn every_audited_request_has_a_chained_record() {
    let h = harness().await;
    let (keys, root) = h.init().await;
    let (_, acc) = h.create_token(&root, json!(["auditor"])).await;
    let requests: Vec<(&str, &str, Option<&str>, Option<Value>)> = vec![
        (
            "POST",
            "/v1/auth/token/create",
            Some(&root),
            Some(json!({"roles": ["release"]})),
        ),
        (
            "POST",
            "/v1/auth/token/create",
            None,
            Some(json!({"roles": ["release"]})),
        ),
        ("GET", "/v1/auth/token/lookup-self", Some(&root), None),
        (
            "POST",
            "/v1/auth/token/lookup",
            Some(&root),
            Some(json!({"accessor": acc})),
        ),
        (
            "POST",
            "/v1/auth/token/lookup",
            Some(&root),
            Some(json!({"accessor": 7})),
        ),
        (
            "POST",
            "/v1/sys/audit-hash",
            Some(&root),
            Some(json!({"input": "x"})),
        ),
        (
            "POST",
            "/v1/auth/token/revoke",
            Some(&root),
            Some(json!({"accessor": acc})),
        ),
        ("POST", "/v1/sys/seal", Some(&root), None),
        (
            "POST",
            "/v1/sys/unseal",
            None,
            Some(json!({"key": keys[0]})),
        ),
        (
            "POST",
            "/v1/sys/unseal",
            None,
            Some(json!({"key": keys[1]})),
        ),
        (
            "POST",
            "/v1/sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        ),
    ];
    let mut ids = Vec::new();
    for (method, path, token, body) in requests {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("x-keyward-token", t);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = app(h.state.clone()).oneshot(req).await.unwrap();
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
        ids.push((path, resp.status(), id));
    }
    // An oversized body on a token path is refused and audited too.
    let big = Request::post("/v1/auth/token/create")
        .header("x-keyward-token", &root)
        .header("content-type", "application/json")
        .body(Body::from(format!(
            "{{\"roles\": [\"{}\"]}}",
            "x".repeat(8000)
        )))
        .unwrap();
    let resp = app(h.state.clone()).oneshot(big).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    ids.push((
        "/v1/auth/token/create",
        resp.status(),
        resp.headers()["x-request-id"].to_str().unwrap().to_owned(),
    ));

    let text = h.audit_text();
    let head = verify(text.as_bytes()).unwrap();
    let records = h.audit_records();
    assert_eq!(head.last_seq, u64::try_from(records.len()).unwrap());
    for (path, status, id) in &ids {
        let mine: Vec<&Value> = records
            .iter()
            .filter(|r| r["request_id"] == id.as_str())
            .collect();
        assert!(!mine.is_empty(), "{path} ({status}) has no audit record");
        assert!(mine.iter().all(|r| r["path"] == *path));
        let last = mine.last().unwrap();
        assert_eq!(last["status"], status.as_u16(), "{path}: {last}");
        assert_ne!(last["outcome"], "attempt");
    }
    // A body that does not parse (`{"accessor": 7}`) is one failed record
    // with the field and the kind of error, no attempt, and not the value.
    let (_, status, id) = &ids[4];
    assert_eq!(*status, StatusCode::BAD_REQUEST);
    let mine: Vec<&Value> = records
        .iter()
        .filter(|r| r["request_id"] == id.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["outcome"], "failed", "{}", mine[0]);
    assert!(mine[0]["request"].is_null(), "{}", mine[0]);
    let reason = mine[0]["reason"].as_str().unwrap();
    assert!(
        reason == "accessor: invalid type: integer <value>, expected a string",
        "{reason}"
    );
}

/// A body that does not parse is answered with the parser's message, which
/// may quote the value; the audit record names the field and the kind of
/// error but never the value (serde's `Unexpected` and unknown-variant
/// spans are cut, however the value tries to end them early).
#[tokio::test]
async fn parse_errors_keep_request_values_out_of_the_audit_log() {
    let h = harness().await;
    let (_, root) = h.init().await;
    let cases = [
        (
            "PUT",
            "/v1/kv/app/x",
            json!({"data": "hunter2-in-a-string"}),
            "hunter2-in-a-string",
        ),
        (
            "PUT",
            "/v1/kv/app/x",
            json!({"data": "q\", expected a map `tail`"}),
            "tail",
        ),
        (
            "PUT",
            "/v1/kv/app/x",
            json!({"data": 4_242_424_242_u64}),
            "4242424242",
        ),
        ("PUT", "/v1/kv/app/x", json!({"data": 31.4159}), "31.4159"),
        (
            "POST",
            "/v1/auth/token/create",
            json!({"roles": ["hunter2`, expected x"]}),
            "hunter2",
        ),
    ];
    for (method, path, body, value) in cases {
        let (status, resp) = h.call(method, path, Some(&root), Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        // The requester sent the value; its own answer may quote it.
        assert!(error_text(&resp).contains(value), "{resp}");
        let text = h.audit_text();
        assert!(
            !text.contains(value),
            "{value} is in the audit log:\n{text}"
        );
        let last = h.audit_records().pop().unwrap();
        let reason = last["reason"].as_str().unwrap();
        assert!(reason.contains("<value>"), "{reason}");
        assert!(
            reason.starts_with("data: invalid type:")
                || reason.starts_with("roles[0]: unknown variant"),
            "{reason}"
        );
    }
}

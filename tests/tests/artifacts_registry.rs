//! Image registration by discovery through the vault's HTTP API (driven
//! with `oneshot`), against a real registry: Debian's `docker-registry`
//! started by `keyward_tests::registry`, an image pushed with skopeo and a
//! key-signed simple-signing signature written by `scripts/sign-image.py`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keyward_tests::registry::{Registry, generate_key, write_test_image};
use keyward_vault::api::{AppState, app};
use keyward_vault::artifacts::RegistrySettings;
use keyward_vault::audit::AuditLog;
use keyward_vault::barrier::BarrierLimits;
use keyward_vault::config::{ArtifactsConfig, HumanDuration, Limits};
use keyward_vault::seal::Seal;
use keyward_vault::storage::{KeyRange, Keyspace, SledConfig, SledStorage, Storage};
use serde_json::{Value, json};
use tower::ServiceExt;

const PREDICATE_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

struct Vault {
    state: AppState,
    storage: Arc<dyn Storage>,
}

async fn open(dir: &Path, registry: &Registry) -> Vault {
    let storage: Arc<dyn Storage> =
        Arc::new(SledStorage::open(&SledConfig::new(dir.join("data"))).unwrap());
    let seal = Arc::new(
        Seal::open(Arc::clone(&storage), BarrierLimits::default())
            .await
            .unwrap(),
    );
    let audit = AuditLog::open(&dir.join("audit.log"), Duration::from_secs(2)).unwrap();
    let limits = Limits {
        max_body_bytes: 256 * 1024,
        request_timeout: HumanDuration(Duration::from_secs(30)),
        max_concurrent_requests: 16,
    };
    let state = AppState::new(Arc::clone(&storage), seal, Arc::new(audit), limits);
    let config = ArtifactsConfig {
        trusted_root: None,
        registry: RegistrySettings {
            insecure_hosts: vec![registry.addr()],
            ..RegistrySettings::default()
        },
    };
    assert!(state.artifacts.configure(config));
    Vault { state, storage }
}

impl Vault {
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
        let req = match body {
            Some(v) => req
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => req.body(Body::empty()),
        };
        let resp = app(self.state.clone()).oneshot(req.unwrap()).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn artifact_count(&self) -> usize {
        self.storage
            .scan(Keyspace::Artifacts, KeyRange::All, 1000)
            .await
            .unwrap()
            .len()
    }
}

fn push_image(registry: &Registry, repository: &str, tag: &str, content: &[u8]) -> String {
    let layout = registry.scratch(&format!("image-{tag}")).unwrap();
    let digest = write_test_image(&layout, "img", content).unwrap();
    registry
        .skopeo_push(&layout, "img", repository, tag)
        .unwrap();
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_by_discovery_registered_listed_revoked() {
    let registry = Registry::start().unwrap();
    let digest = push_image(&registry, "keyward/app", "v1", b"hello v1\n");
    let keys = registry.scratch("keys").unwrap();
    let (key, public) = generate_key(&keys, "release").unwrap();
    let (_, other_public) = generate_key(&keys, "other").unwrap();
    let reference = format!("{}/keyward/app:v1", registry.addr());
    registry
        .push_simple_signature("keyward/app", &reference, &digest, &[&key])
        .unwrap();
    // An unsigned image next to it.
    let unsigned = push_image(&registry, "keyward/app", "v2", b"hello v2\n");

    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path(), &registry).await;
    let (status, body) = v
        .call(
            "POST",
            "/v1/sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let root = body["root_token"].as_str().unwrap().to_owned();
    let (status, body) = v
        .call(
            "POST",
            "/v1/auth/token/create",
            Some(&root),
            Some(json!({"roles": ["release"], "ttl": "10m"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let release = body["token"].as_str().unwrap().to_owned();

    for (name, public) in [("release-key", &public), ("other-key", &other_public)] {
        let policy = json!({"kind": "image", "predicate_types": [PREDICATE_SIMPLE_SIGNING],
            "keys": [{"key_id": name, "public_key": public}]});
        let (status, body) = v
            .call(
                "PUT",
                &format!("/v1/policies/signing/image/{name}"),
                Some(&release),
                Some(policy),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Signed by another key than the policy's: 400 with the reason.
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/images",
            Some(&release),
            Some(json!({"reference": reference, "policy": "other-key", "discover": true})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let text = body["errors"][0].as_str().unwrap();
    assert!(
        text.starts_with("discover: signature verification failed"),
        "{text}"
    );
    // Unsigned: 400, no signatures.
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/images",
            Some(&release),
            Some(
                json!({"digest": unsigned, "repository": format!("{}/keyward/app", registry.addr()),
                "policy": "release-key", "discover": true}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(v.artifact_count().await, 0);

    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/images",
            Some(&release),
            Some(json!({"reference": reference, "policy": "release-key", "discover": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["digest"], digest);
    assert_eq!(body["source"], "discovery");
    assert_eq!(
        body["signer"],
        json!({"type": "key", "key_id": "release-key"})
    );
    assert_eq!(body["predicate_type"], PREDICATE_SIMPLE_SIGNING);
    assert_eq!(body["name"], reference);

    let (status, body) = v
        .call("GET", "/v1/artifacts?kind=image", Some(&release), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["artifacts"][0]["digest"], digest);
    let (status, body) = v
        .call(
            "GET",
            &format!("/v1/artifacts/{digest}"),
            Some(&release),
            None,
        )
        .await;
    assert_eq!(
        (status, body["state"].clone()),
        (StatusCode::OK, json!("active"))
    );
    let (status, body) = v
        .call(
            "POST",
            &format!("/v1/artifacts/{digest}/revoke"),
            Some(&release),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "revoked");
    let (_, body) = v
        .call(
            "GET",
            &format!("/v1/artifacts/{digest}"),
            Some(&release),
            None,
        )
        .await;
    assert_eq!(body["state"], "revoked");
}

//! `docs/openapi.json` is the API reference: it must equal the document the
//! server serves at `/v1/openapi.json` (generated from the handlers).
//! Regenerate with `KEYWARD_UPDATE_OPENAPI=1 cargo test -p keyward-vault --test openapi_snapshot`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use utoipa::OpenApi;

#[test]
fn docs_openapi_json_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let current = keyward_vault::api::ApiDoc::openapi()
        .to_pretty_json()
        .unwrap()
        + "\n";
    if std::env::var_os("KEYWARD_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == current,
        "docs/openapi.json is stale: run KEYWARD_UPDATE_OPENAPI=1 cargo test -p keyward-vault --test openapi_snapshot"
    );
    for route in [
        "/v1/attest",
        "/v1/attest/challenge",
        "/v1/secrets/{path}",
        "/v1/sys/leases/renew",
    ] {
        assert!(current.contains(&format!("\"{route}\"")), "{route}");
    }
}

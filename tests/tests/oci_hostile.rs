//! `keyward_vault::oci` against registries that lie or misbehave, and the
//! registry features distribution 2.8 lacks (the referrers API, token
//! authentication). A small in-process HTTP/1.1 server on 127.0.0.1 plays
//! the registry; each test scripts its answers and reads back the requests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keyward_attest::sigstore::image::parse_image_digest;
use keyward_attest::sigstore::{PREDICATE_COSIGN_SIGN_V1, SigningPolicy, TrustRoot};
use keyward_tests::registry::{OCI_INDEX, OCI_MANIFEST, sha256_digest};
use keyward_vault::oci::{
    BasicCredentials, ImageError, ManifestFailure, ReferrersApi, RegistryClient, RegistryConfig,
    RegistryError, SignatureSource, TransportFailure,
};
use serde_json::json;

const NOW: u64 = 1_793_491_200;
const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Most bytes an endless body is allowed to push before the server gives up.
const ENDLESS_CAP: usize = 256 * 1024 * 1024;

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Reply {
    Bytes {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// 200 with a chunked body that never ends (until the client leaves or
    /// [`ENDLESS_CAP`] bytes were sent).
    Endless,
}

fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
    let body = body.into();
    Reply::Bytes {
        status: 200,
        headers: vec![
            ("Content-Type", content_type.to_string()),
            ("Docker-Content-Digest", sha256_digest(&body)),
        ],
        body,
    }
}

fn status(code: u16) -> Reply {
    Reply::Bytes {
        status: code,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// A scripted registry. Stops (and joins its thread) on drop.
struct Mock {
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    endless_sent: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Mock {
    fn start(route: impl Fn(&Request) -> Reply + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let endless_sent = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, requests, endless_sent) =
                (stop.clone(), requests.clone(), endless_sent.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    serve(stream, &route, &requests, &endless_sent);
                }
            })
        };
        Self {
            port,
            stop,
            requests,
            endless_sent,
            thread: Some(thread),
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn client(&self) -> RegistryClient {
        RegistryClient::new(RegistryConfig::new().allow_insecure_http(self.addr())).unwrap()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    route: &impl Fn(&Request) -> Reply,
    requests: &Mutex<Vec<String>>,
    endless_sent: &AtomicUsize,
) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // A client that stops reading leaves its socket open until its runtime
    // polls the connection again, which may be never once the test body
    // blocks in `Mock::drop`: give up writing instead.
    stream
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let request = Request {
        method: first.next().unwrap_or_default().to_string(),
        path: first.next().unwrap_or_default().to_string(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect(),
    };
    requests
        .lock()
        .unwrap()
        .push(format!("{} {}", request.method, request.path));
    match route(&request) {
        Reply::Bytes {
            status,
            headers,
            body,
        } => {
            let mut out = format!(
                "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (name, value) in headers {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
            out.push_str("\r\n");
            let _ = stream.write_all(out.as_bytes());
            let _ = stream.write_all(&body);
        }
        Reply::Endless => {
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: {OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                .as_bytes(),
            );
            let chunk = vec![b' '; 64 * 1024];
            let framed = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk,
                b"\r\n".to_vec(),
            ]
            .concat();
            while endless_sent.load(Ordering::SeqCst) < ENDLESS_CAP {
                if stream.write_all(&framed).is_err() {
                    break;
                }
                endless_sent.fetch_add(framed.len(), Ordering::SeqCst);
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn image_manifest(seed: &str) -> Vec<u8> {
    json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256_digest(seed.as_bytes()), "size": seed.len()},
        "layers": []})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn digest_reference_served_other_bytes_is_rejected() {
    let asked = image_manifest("asked for");
    let asked_digest = sha256_digest(&asked);
    let mock = Mock::start(move |r| match r.path.as_str() {
        "/v2/" => ok("application/json", "{}"),
        // Serves another manifest under the digest, announcing the right
        // digest in the header: only hashing the bytes catches it.
        p if p.starts_with("/v2/app/manifests/sha256:") => {
            let mut reply = ok(OCI_MANIFEST, image_manifest("substituted"));
            if let Reply::Bytes { headers, .. } = &mut reply {
                headers[1].1 = p.rsplit('/').next().unwrap().to_string();
            }
            reply
        }
        _ => status(404),
    });
    let error = mock
        .client()
        .resolve(&format!("{}/app@{asked_digest}", mock.addr()))
        .await
        .unwrap_err();
    let RegistryError::DigestMismatch {
        expected, found, ..
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!(expected, asked_digest);
    assert_eq!(found, sha256_digest(&image_manifest("substituted")));
}

#[tokio::test]
async fn announced_digest_must_match_the_content() {
    let mock = Mock::start(|r| match r.path.as_str() {
        "/v2/" => ok("application/json", "{}"),
        "/v2/app/manifests/v1" => {
            let mut reply = ok(OCI_MANIFEST, image_manifest("served"));
            if let Reply::Bytes { headers, .. } = &mut reply {
                headers[1].1 = sha256_digest(&image_manifest("announced"));
            }
            reply
        }
        _ => status(404),
    });
    let error = mock
        .client()
        .resolve(&format!("{}/app:v1", mock.addr()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::DigestMismatch { ref expected, .. }
            if *expected == sha256_digest(&image_manifest("announced"))),
        "{error:?}"
    );
}

#[tokio::test]
async fn endless_manifest_is_cut_at_the_cap() {
    let mock = Mock::start(|r| match r.path.as_str() {
        "/v2/" => ok("application/json", "{}"),
        "/v2/app/manifests/v1" => Reply::Endless,
        _ => status(404),
    });
    let started = Instant::now();
    let error = mock
        .client()
        .resolve(&format!("{}/app:v1", mock.addr()))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::TooLarge { limit, .. } if limit == keyward_vault::oci::MAX_MANIFEST_LEN),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // The client stopped reading long before the server's own cap.
    let sent = mock.endless_sent.load(Ordering::SeqCst);
    assert!(sent < ENDLESS_CAP, "{sent}");
}

#[tokio::test]
async fn declared_length_above_the_cap_is_refused_unread() {
    let mock = Mock::start(|r| match r.path.as_str() {
        "/v2/" => ok("application/json", "{}"),
        "/v2/app/manifests/v1" => Reply::Bytes {
            status: 200,
            headers: vec![("Content-Type", OCI_MANIFEST.to_string())],
            // Content-Length says 5 MiB; the body is cut short, never read.
            body: vec![b' '; 5 * 1024 * 1024],
        },
        _ => status(404),
    });
    let error = mock
        .client()
        .resolve(&format!("{}/app:v1", mock.addr()))
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::TooLarge { .. }), "{error:?}");
}

#[tokio::test]
async fn malformed_manifest_json_is_a_typed_error() {
    let mock = Mock::start(|r| match r.path.as_str() {
        "/v2/" => ok("application/json", "{}"),
        "/v2/app/manifests/v1" => ok(OCI_MANIFEST, "{\"schemaVersion\": 2, \"mediaType\": "),
        "/v2/app/manifests/v2" => ok(
            OCI_MANIFEST,
            json!({"schemaVersion": 1, "name": "app", "fsLayers": []}).to_string(),
        ),
        _ => status(404),
    });
    let client = mock.client();
    let error = client
        .resolve(&format!("{}/app:v1", mock.addr()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Manifest {
                failure: ManifestFailure::Json,
                ..
            }
        ),
        "{error:?}"
    );
    let error = client
        .resolve(&format!("{}/app:v2", mock.addr()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Manifest {
                failure: ManifestFailure::SchemaVersion { found: 1 },
                ..
            }
        ),
        "{error:?}"
    );
}

fn kubewarden_bundle() -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../shared/testdata/sigstore/cosign-v3-image-kubewarden.sigstore.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn referrers_api_is_used_when_the_registry_has_it() {
    let bundle = kubewarden_bundle();
    let empty = b"{}".to_vec();
    let referrer = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_V03,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(&empty), "size": 2},
        "layers": [{"mediaType": BUNDLE_V03, "digest": sha256_digest(&bundle), "size": bundle.len()}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": KUBEWARDEN_DIGEST, "size": 0}})
    .to_string()
    .into_bytes();
    let referrer_digest = sha256_digest(&referrer);
    // An SBOM referrer is listed too; it is not a signature and is skipped.
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256_digest(b"sbom"), "size": 4,
            "artifactType": "application/spdx+json"},
        {"mediaType": OCI_MANIFEST, "digest": referrer_digest, "size": referrer.len(),
            "artifactType": BUNDLE_V03}]})
    .to_string();
    let (referrer_path, blob_path) = (
        format!("/v2/kw/manifests/{referrer_digest}"),
        format!("/v2/kw/blobs/{}", sha256_digest(&bundle)),
    );
    let mock = Mock::start(move |r| {
        if r.path == "/v2/" {
            ok("application/json", "{}")
        } else if r.path == format!("/v2/kw/referrers/{KUBEWARDEN_DIGEST}") {
            ok(OCI_INDEX, index.clone())
        } else if r.path == referrer_path {
            ok(OCI_MANIFEST, referrer.clone())
        } else if r.path == blob_path {
            ok("application/octet-stream", bundle.clone())
        } else {
            status(404)
        }
    });
    let client = mock.client();
    let repository = format!("{}/kw", mock.addr());
    let digest = parse_image_digest(KUBEWARDEN_DIGEST).unwrap();
    let discovery = client.discover(&repository, &digest).await.unwrap();
    assert_eq!(discovery.referrers_api(), ReferrersApi::Supported);
    assert_eq!(discovery.candidates().len(), 1);
    assert_eq!(
        discovery.candidates()[0].origin().source,
        SignatureSource::ReferrersApi
    );

    let policy = json!({"kind": "image", "predicate_types": [PREDICATE_COSIGN_SIGN_V1],
        "identities": [{"issuer": "https://token.actions.githubusercontent.com",
            "subject": "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"}]});
    let policy = SigningPolicy::from_json(policy.to_string().as_bytes()).unwrap();
    let verified = client
        .verify_digest(
            &TrustRoot::production().unwrap(),
            &policy,
            &repository,
            &digest,
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(verified.digest_string(), KUBEWARDEN_DIGEST);

    let requests = mock.requests();
    // The tag schema is not consulted when the API answers, and the SBOM
    // referrer is never fetched.
    let tag = format!("/v2/kw/manifests/{}", KUBEWARDEN_DIGEST.replace(':', "-"));
    assert!(!requests.iter().any(|r| r.ends_with(&tag)), "{requests:?}");
    let sbom = format!("/v2/kw/manifests/{}", sha256_digest(b"sbom"));
    assert!(!requests.iter().any(|r| r.ends_with(&sbom)), "{requests:?}");
}

#[tokio::test]
async fn referrer_served_with_other_bytes_is_rejected() {
    let listed = image_manifest("listed referrer");
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha256_digest(&listed), "size": listed.len(),
            "artifactType": BUNDLE_V03}]})
    .to_string();
    let mock = Mock::start(move |r| {
        if r.path == "/v2/" {
            ok("application/json", "{}")
        } else if r.path.starts_with("/v2/kw/referrers/") {
            ok(OCI_INDEX, index.clone())
        } else if r.path.starts_with("/v2/kw/manifests/sha256:") {
            ok(OCI_MANIFEST, image_manifest("swapped referrer"))
        } else {
            status(404)
        }
    });
    let digest = parse_image_digest(KUBEWARDEN_DIGEST).unwrap();
    let error = mock
        .client()
        .verify_digest(
            &TrustRoot::production().unwrap(),
            &SigningPolicy::from_json(
                json!({"kind": "image", "predicate_types": [PREDICATE_COSIGN_SIGN_V1],
                    "identities": [{"issuer": "https://x", "subject": "y"}]})
                .to_string()
                .as_bytes(),
            )
            .unwrap(),
            &format!("{}/kw", mock.addr()),
            &digest,
            NOW,
        )
        .await
        .unwrap_err();
    let ImageError::NoneVerified { failures, .. } = error else {
        panic!("{error:?}")
    };
    assert_eq!(failures[0].origin.source, SignatureSource::ReferrersApi);
    assert!(
        matches!(
            failures[0].reason,
            keyward_vault::oci::CandidateError::Fetch(RegistryError::DigestMismatch { .. })
        ),
        "{failures:?}"
    );
}

#[tokio::test]
async fn basic_credentials_are_sent_and_required() {
    // "keyward:s3cret", base64.
    let mock = Mock::start(|r| {
        if r.header("authorization") != Some("Basic a2V5d2FyZDpzM2NyZXQ=") {
            return Reply::Bytes {
                status: 401,
                headers: vec![("WWW-Authenticate", "Basic realm=\"mock\"".to_string())],
                body: Vec::new(),
            };
        }
        match r.path.as_str() {
            "/v2/" => ok("application/json", "{}"),
            "/v2/app/manifests/v1" => ok(OCI_MANIFEST, image_manifest("private")),
            _ => status(404),
        }
    });
    let reference = format!("{}/app:v1", mock.addr());
    let error = mock.client().resolve(&reference).await.unwrap_err();
    assert!(
        matches!(error, RegistryError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    let client = RegistryClient::new(
        RegistryConfig::new()
            .allow_insecure_http(mock.addr())
            .with_basic_auth(mock.addr(), BasicCredentials::new("keyward", "s3cret")),
    )
    .unwrap();
    let resolved = client.resolve(&reference).await.unwrap();
    assert_eq!(
        resolved.digest_string(),
        sha256_digest(&image_manifest("private"))
    );
    // The password never shows in debug output.
    let debug = format!("{:?}", BasicCredentials::new("keyward", "s3cret"));
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[tokio::test]
async fn bearer_token_from_the_token_service_is_used() {
    let port = Arc::new(Mutex::new(0u16));
    let port_in = port.clone();
    let mock = Mock::start(move |r| {
        let realm = format!("http://127.0.0.1:{}/token", port_in.lock().unwrap());
        if r.path.starts_with("/token") {
            return if r.path.contains("scope=repository%3Aapp%3Apull")
                || r.path.contains("scope=repository:app:pull")
            {
                ok("application/json", json!({"token": "t0ken"}).to_string())
            } else {
                status(400)
            };
        }
        if r.header("authorization") != Some("Bearer t0ken") {
            return Reply::Bytes {
                status: 401,
                headers: vec![(
                    "WWW-Authenticate",
                    format!("Bearer realm=\"{realm}\",service=\"mock\""),
                )],
                body: Vec::new(),
            };
        }
        match r.path.as_str() {
            "/v2/app/manifests/v1" => ok(OCI_MANIFEST, image_manifest("token-protected")),
            _ => status(404),
        }
    });
    *port.lock().unwrap() = mock.port;
    let resolved = mock
        .client()
        .resolve(&format!("{}/app:v1", mock.addr()))
        .await
        .unwrap();
    assert_eq!(
        resolved.digest_string(),
        sha256_digest(&image_manifest("token-protected"))
    );
    assert!(mock.requests().iter().any(|r| r.starts_with("GET /token")));
}

#[tokio::test]
async fn tls_is_the_default() {
    // Not configured as insecure: the client speaks TLS to the plain-HTTP
    // server and fails to connect instead of falling back to HTTP.
    let mock = Mock::start(|_| ok("application/json", "{}"));
    let client = RegistryClient::new(RegistryConfig::new()).unwrap();
    let error = client
        .resolve(&format!("{}/app:v1", mock.addr()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Transport {
                failure: TransportFailure::Connect,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        mock.requests().iter().all(|r| !r.contains("/manifests/")),
        "{:?}",
        mock.requests()
    );
}

#[tokio::test]
async fn redirects_to_plain_http_elsewhere_and_redirect_loops_are_refused() {
    let port = Arc::new(Mutex::new(0u16));
    let port_in = port.clone();
    let mock = Mock::start(move |r| {
        let redirect = |location: String| Reply::Bytes {
            status: 307,
            headers: vec![("Location", location)],
            body: Vec::new(),
        };
        match r.path.as_str() {
            "/v2/" => ok("application/json", "{}"),
            // `localhost:PORT` is the same server, but not a host the
            // client was allowed to reach over plain HTTP.
            "/v2/app/manifests/v1" => redirect(format!(
                "http://localhost:{}/v2/app/manifests/v1",
                port_in.lock().unwrap()
            )),
            p if p.starts_with("/v2/app/manifests/loop") => redirect(format!("{p}x")),
            _ => status(404),
        }
    });
    *port.lock().unwrap() = mock.port;
    let client = mock.client();
    for tag in ["v1", "loop"] {
        let error = client
            .resolve(&format!("{}/app:{tag}", mock.addr()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                RegistryError::Transport {
                    failure: TransportFailure::Redirect,
                    ..
                }
            ),
            "{tag}: {error:?}"
        );
    }
    let requests = mock.requests();
    assert!(
        !requests.iter().any(|r| r.contains("localhost")),
        "{requests:?}"
    );
    let loops = requests.iter().filter(|r| r.contains("/loop")).count();
    assert_eq!(loops, keyward_vault::oci::MAX_REDIRECTS + 1, "{requests:?}");
}

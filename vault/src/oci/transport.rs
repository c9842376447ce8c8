//! Bounded HTTP reads from a registry (OCI Distribution Specification v1.1,
//! "Pulling manifests", "Pulling blobs", "Listing referrers").
//!
//! `oci-client` performs the token handshake (`WWW-Authenticate` bearer
//! challenge, token service) and parses references; the reads themselves go
//! through `reqwest` here because `oci-client` 0.18 reads manifest and
//! referrers bodies whole, with no size limit, and the vault must bound
//! every byte a registry can send it.

use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use zeroize::Zeroizing;

use super::config::{MAX_REDIRECTS, RegistryConfig};
use super::error::{RegistryError, TransportFailure};

/// The registry's announcement of the content digest (distribution
/// `docs/spec/api.md`, "Digest Header").
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

/// `sha256:<hex>`.
pub(crate) fn digest_string(digest: &[u8; 32]) -> String {
    format!("sha256:{}", hex::encode(digest))
}

/// How requests to one repository authenticate.
pub(crate) enum Credentials {
    Anonymous,
    Bearer(Zeroizing<String>),
    Basic {
        username: String,
        password: Zeroizing<String>,
    },
}

/// One repository of one registry, authenticated for pulling.
pub(crate) struct Repository {
    pub(crate) registry: String,
    pub(crate) name: String,
    scheme: &'static str,
    credentials: Credentials,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("registry", &self.registry)
            .field("name", &self.name)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

impl Repository {
    pub(crate) fn url(&self, kind: &str, reference: &str) -> String {
        format!(
            "{}://{}/v2/{}/{kind}/{reference}",
            self.scheme, self.registry, self.name
        )
    }
}

/// A response body read within its cap.
pub(crate) struct Body {
    pub(crate) bytes: Vec<u8>,
    pub(crate) content_type: Option<String>,
    pub(crate) announced_digest: Option<String>,
}

pub(crate) struct Transport {
    http: reqwest::Client,
    oci: oci_client::Client,
    timeout: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn transport_error(url: &str, error: &reqwest::Error) -> RegistryError {
    if error.is_timeout() {
        return RegistryError::Timeout {
            url: url.to_string(),
        };
    }
    let failure = if error.is_redirect() {
        TransportFailure::Redirect
    } else if error.is_connect() {
        TransportFailure::Connect
    } else if error.is_body() || error.is_decode() {
        TransportFailure::Body
    } else {
        TransportFailure::Request
    };
    RegistryError::Transport {
        url: url.to_string(),
        failure,
    }
}

impl Transport {
    pub(crate) fn new(config: &RegistryConfig) -> Result<Self, RegistryError> {
        let insecure = config.insecure_hosts().clone();
        // Plain HTTP only where configured, also after redirects: a registry
        // reached over TLS must not be able to send the client to cleartext.
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            let allowed = attempt.url().scheme() == "https"
                || attempt.url().host_str().is_some_and(|host| {
                    let with_port = attempt
                        .url()
                        .port()
                        .map_or_else(|| host.to_string(), |port| format!("{host}:{port}"));
                    insecure.contains(&with_port)
                });
            // `previous` holds every URL requested so far, the first included.
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if !allowed {
                attempt.error("redirect to plain HTTP refused")
            } else {
                attempt.follow()
            }
        });
        let timeout = config.request_timeout();
        let http = reqwest::Client::builder()
            .redirect(redirects)
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| RegistryError::ClientSetup)?;
        let oci = oci_client::Client::try_from(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(
                config.insecure_hosts().iter().cloned().collect(),
            ),
            platform_resolver: None,
            connect_timeout: Some(timeout),
            read_timeout: Some(timeout),
            ..ClientConfig::default()
        })
        .map_err(|_| RegistryError::ClientSetup)?;
        Ok(Self { http, oci, timeout })
    }

    /// Authenticates for pulling from `registry/name`: the bearer token the
    /// registry's token service issues (anonymously or with the configured
    /// credentials), else basic credentials when configured, else nothing.
    pub(crate) async fn repository(
        &self,
        config: &RegistryConfig,
        reference: &Reference,
    ) -> Result<Repository, RegistryError> {
        let registry = reference.resolve_registry().to_string();
        let basic = config
            .credentials(reference.registry())
            .or(config.credentials(&registry));
        let auth = basic.map_or(RegistryAuth::Anonymous, |c| {
            RegistryAuth::Basic(c.username().to_string(), c.password().to_string())
        });
        let scheme = if config.is_insecure(&registry) {
            "http"
        } else {
            "https"
        };
        let handshake = self.oci.auth(reference, &auth, RegistryOperation::Pull);
        let token = match tokio::time::timeout(self.timeout, handshake).await {
            Ok(Ok(token)) => token,
            // Not reaching the registry at all is a transport failure, not
            // an authentication one.
            Ok(Err(oci_client::errors::OciDistributionError::RequestError(error))) => {
                return Err(transport_error(
                    &format!("{scheme}://{registry}/v2/"),
                    &error,
                ));
            }
            Ok(Err(_)) => return Err(RegistryError::Auth { registry }),
            Err(_) => {
                return Err(RegistryError::Timeout {
                    url: format!("{scheme}://{registry}/v2/"),
                });
            }
        };
        let credentials = match (token, basic) {
            (Some(token), _) => Credentials::Bearer(Zeroizing::new(token)),
            (None, Some(c)) => Credentials::Basic {
                username: c.username().to_string(),
                password: Zeroizing::new(c.password().to_string()),
            },
            (None, None) => Credentials::Anonymous,
        };
        Ok(Repository {
            registry,
            name: reference.repository().to_string(),
            scheme,
            credentials,
        })
    }

    /// GETs `url`, reading at most `limit` body bytes. Non-success statuses
    /// become errors without their body being read.
    pub(crate) async fn get(
        &self,
        repository: &Repository,
        url: &str,
        accept: &str,
        limit: usize,
    ) -> Result<Body, RegistryError> {
        match tokio::time::timeout(self.timeout, self.get_inner(repository, url, accept, limit))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(RegistryError::Timeout {
                url: url.to_string(),
            }),
        }
    }

    async fn get_inner(
        &self,
        repository: &Repository,
        url: &str,
        accept: &str,
        limit: usize,
    ) -> Result<Body, RegistryError> {
        let request = self.http.get(url).header(ACCEPT, accept);
        // reqwest drops the Authorization header on redirects to another
        // host (object storage), so credentials stay with the registry.
        let request = match &repository.credentials {
            Credentials::Anonymous => request,
            Credentials::Bearer(token) => request.bearer_auth(token.as_str()),
            Credentials::Basic { username, password } => {
                request.basic_auth(username, Some(password.as_str()))
            }
        };
        let mut response = request.send().await.map_err(|e| transport_error(url, &e))?;
        let status = response.status();
        if status != StatusCode::OK {
            let url = url.to_string();
            return Err(match status {
                StatusCode::NOT_FOUND => RegistryError::NotFound { url },
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                    url,
                    status: status.as_u16(),
                },
                _ => RegistryError::Status {
                    url,
                    status: status.as_u16(),
                },
            });
        }
        let too_large = || RegistryError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if response
            .content_length()
            .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > limit))
        {
            return Err(too_large());
        }
        let (content_type, announced_digest) = headers(response.headers());
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(url, &e))?
        {
            if bytes.len().saturating_add(chunk.len()) > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Body {
            bytes,
            content_type,
            announced_digest,
        })
    }
}

fn headers(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    (text(CONTENT_TYPE.as_str()), text(DOCKER_CONTENT_DIGEST))
}

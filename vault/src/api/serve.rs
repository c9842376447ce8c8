//! Opening the vault's state from a [`Config`] and serving [`super::app`]
//! on a listener: plain HTTP where the config allows it (dev mode or
//! loopback), otherwise TLS with rustls (aws-lc-rs provider, already in the
//! tree) through `tokio-rustls` and hyper-util's connection builder —
//! leaner than `axum-server`, which would add its own TLS glue.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::sys::{close_tpm, open_tpm};
use super::{AppState, app, now_secs};
use crate::audit::{AuditError, AuditKey, AuditLog};
use crate::auth::{AuthError, Role, TokenSecret};
use crate::barrier::BarrierLimits;
use crate::config::{Config, TlsConfig};
use crate::seal::{DevModeWarning, Seal, SealError, SealKind};
use crate::storage::{SledConfig, SledStorage, Storage, StorageError};

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not start or keep serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Opening storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// Opening or initialising the seal failed.
    #[error("seal: {0}")]
    Seal(#[from] SealError),
    /// Opening the audit log failed (the server does not start without it).
    #[error("audit log: {0}")]
    Audit(#[from] AuditError),
    /// Creating the dev-mode root token failed.
    #[error("root token: {0}")]
    Token(#[from] AuthError),
    /// Binding the listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS {path}: {what}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The `[enrollment]` section's certificates or lists are unusable.
    #[error("enrollment: {0}")]
    Enrollment(#[from] crate::hosts::EnrollmentConfigError),
    /// The `[artifacts]` section's trusted root or registry settings are unusable.
    #[error("artifacts: {0}")]
    Artifacts(#[from] crate::artifacts::SettingsError),
    /// The `[release]` section is unusable.
    #[error("release: {0}")]
    Release(String),
    /// Serving failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens storage, seal (sealed) and the audit log named in `config`. In
/// dev mode the store is temporary: its root key never outlives the
/// process, so neither should the data.
pub async fn open_state(config: &Config) -> Result<AppState, ServeError> {
    let sled = if config.dev {
        SledConfig::temporary()
    } else {
        SledConfig::new(&config.data_dir)
    };
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&sled)?);
    let seal = Arc::new(Seal::open(Arc::clone(&storage), BarrierLimits::default()).await?);
    let audit = Arc::new(AuditLog::open(
        &config.audit.path,
        config.audit.write_timeout.0,
    )?);
    if let Some(r) = audit.recovered() {
        eprintln!(
            "keyward: audit log {}: cut off an unterminated last line {} ({} bytes, sha256 {}) and recorded it",
            config.audit.path.display(),
            r.line,
            r.bytes,
            hex::encode(r.sha256)
        );
    }
    let state = AppState::new(storage, seal, audit, config.limits.clone());
    state
        .enrollment
        .configure(crate::hosts::EnrollmentSettings::load(&config.enrollment)?);
    state.artifacts.configure(config.artifacts.clone());
    state.artifacts.verifiers()?;
    state.seal_tpm.configure(config.seal.tcti.clone());
    configure_release(&state, &config.release)?;
    auto_unseal(&state).await;
    Ok(state)
}

/// Applies `[release]`.
pub fn configure_release(
    state: &AppState,
    config: &crate::config::ReleaseConfig,
) -> Result<(), ServeError> {
    let ms = |d: crate::config::HumanDuration| u64::try_from(d.0.as_millis()).unwrap_or(u64::MAX);
    if config.workload_pcr > 23 {
        return Err(ServeError::Release("workload_pcr must be 0-23".into()));
    }
    state.release.configure(crate::release::ReleaseSettings {
        nonce_ttl_ms: ms(config.nonce_ttl),
        session_ttl_ms: ms(config.session_ttl),
        pop_window_ms: ms(config.pop_window),
        workload_pcr: config.workload_pcr,
    });
    let identity = match &config.identity {
        None => None,
        Some(c) => {
            let settings = crate::secrets::identity::IdentitySettings {
                issuer: c.issuer.clone(),
                trust_domain: c.trust_domain.clone(),
                default_ttl_secs: c.default_ttl.as_secs(),
                max_ttl_secs: c.max_ttl.as_secs(),
                rotation_period_secs: c.rotation_period.as_secs(),
            };
            settings
                .validate()
                .map_err(|e| ServeError::Release(format!("identity: {e}")))?;
            Some(settings)
        }
    };
    state.engines.configure_identity(identity);
    let obo = match &config.on_behalf_of {
        None => None,
        Some(c) => {
            let bytes = std::fs::read(&c.jwks_file).map_err(|e| {
                ServeError::Release(format!(
                    "on_behalf_of.jwks_file {}: {e}",
                    c.jwks_file.display()
                ))
            })?;
            let jwks = crate::obo::Jwks::from_json(&bytes)
                .map_err(|e| ServeError::Release(format!("on_behalf_of.jwks_file: {e}")))?;
            let mut settings = crate::obo::OboSettings::new(&c.issuer, &c.audience, jwks);
            settings.leeway_secs = c.leeway.as_secs();
            Some(settings)
        }
    };
    state.engines.configure_obo(obo);
    Ok(())
}

/// The background worker: every second, expires due leases, retries failed
/// revocations, prunes used nonces and rotates the identity key when due.
/// Runs until the returned handle is aborted.
pub fn spawn_worker(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = super::release::maintain(&state).await {
                eprintln!("keyward: lease maintenance failed: {e}");
            }
        }
    })
}

/// At startup, a TPM-sealed vault unseals itself with the configured TPM.
/// A refusal (changed PCRs, another TPM, no TPM) is not fatal: the server
/// starts sealed and says why on stderr, and the recovery shares unseal it
/// through `/v1/sys/unseal`.
async fn auto_unseal(state: &AppState) {
    let status = state.seal.status();
    if status.kind != Some(SealKind::Tpm) || !status.sealed {
        return;
    }
    let Some(tcti) = state.seal_tpm.tcti() else {
        eprintln!(
            "keyward: the vault is sealed to a TPM but seal.tcti is not configured; \
             it stays sealed until the recovery shares are submitted"
        );
        return;
    };
    let result = async {
        let tpm = open_tpm(tcti.clone()).await?;
        let unsealed = state.seal.auto_unseal(&tpm).await;
        close_tpm(tpm).await;
        unsealed
    }
    .await;
    if let Err(e) = result {
        eprintln!(
            "keyward: TPM auto-unseal with {tcti} failed: {e}; the vault stays sealed \
             until the recovery shares are submitted"
        );
        return;
    }
    match AuditKey::load_or_create(&state.storage, state.seal.barrier()).await {
        Ok(key) => {
            state.audit.set_key(key);
            eprintln!("keyward: unsealed with the TPM ({tcti})");
        }
        Err(e) => {
            // Without the audit key, records could not hash their leaves:
            // seal again rather than serve.
            state.seal.seal();
            eprintln!("keyward: audit key unavailable after TPM unseal ({e}); sealed again");
        }
    }
}

/// Dev mode: initialises in memory and creates a root token (admin, no
/// expiry), for the binary to print with the warning.
pub async fn init_dev(
    state: &AppState,
    listen: SocketAddr,
) -> Result<(DevModeWarning, TokenSecret), ServeError> {
    let warning = state.seal.init_dev(listen).await?;
    let key = AuditKey::load_or_create(&state.storage, state.seal.barrier()).await?;
    state.audit.set_key(key);
    let (token, _) = state
        .tokens
        .create(&[Role::Admin], None, now_secs())
        .await?;
    Ok((warning, token))
}

fn tls_acceptor(tls: &TlsConfig) -> Result<TlsAcceptor, ServeError> {
    let file_err = |path: &PathBuf| {
        let path = path.clone();
        move |e: rustls::pki_types::pem::Error| ServeError::TlsFile {
            path,
            what: e.to_string(),
        }
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .map_err(file_err(&tls.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_err(&tls.cert))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(file_err(&tls.key))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves the API until `shutdown` resolves.
pub async fn serve(
    config: &Config,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let worker = spawn_worker(state.clone());
    let _worker = AbortOnDrop(worker);
    let router = app(state);
    let Some(tls) = &config.tls else {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        return Ok(());
    };
    let acceptor = tls_acceptor(tls)?;
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    // Out of descriptors and the like: back off, keep serving.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Aborts the task when dropped (the worker stops with the server).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! [`ClientBuilder`]: where the vault is, which TPM and AK quote, which
//! instance key the workload holds, and which logs go into the evidence.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use keyward_hardware::{AkBlob, PcrBank, PcrSelection};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::client::{Client, Config};
use crate::error::ClientError;
use crate::quoter::{DirectTpm, Quoter};

/// The environment variable naming the instance key file.
pub const INSTANCE_KEY_ENV: &str = "KEYWARD_INSTANCE_KEY";
/// The environment variable naming the workload log.
pub const WORKLOAD_LOG_ENV: &str = "KEYWARD_WORKLOAD_LOG";
/// The environment variable naming the host state directory.
pub const STATE_DIR_ENV: &str = "KEYWARD_STATE_DIR";
/// The environment variable naming the TPM (a TCTI string).
pub const TCTI_ENV: &str = "KEYWARD_TCTI";
/// The environment variable naming the workload PCR.
pub const WORKLOAD_PCR_ENV: &str = "KEYWARD_WORKLOAD_PCR";
/// The environment variable naming the vault URL.
pub const VAULT_ENV: &str = "KEYWARD_VAULT";
/// The environment variable naming a PEM file of CA roots for the vault.
pub const CACERT_ENV: &str = "KEYWARD_CACERT";
/// The boot PCRs quoted by default.
const BOOT_PCRS: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
/// Where Linux exposes the firmware's boot event log.
pub const DEFAULT_BOOT_LOG: &str = "/sys/kernel/security/tpm0/binary_bios_measurements";
/// The TPM used when none is named.
pub const DEFAULT_TCTI: &str = "device:/dev/tpmrm0";
/// The PCRs quoted by default: boot PCRs 0–9 and the workload PCR.
pub const DEFAULT_PCRS: [u8; 11] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 23];
/// Largest instance key file read.
const MAX_KEY_FILE: u64 = 4096;
/// Largest `host.json` read.
const MAX_HOST_FILE: u64 = 64 * 1024;
/// Largest CA bundle.
const MAX_CA_BUNDLE: u64 = 1 << 20;

/// The instance key: the workload's Ed25519 key pair. `ring` keeps the
/// private scalar inside [`Ed25519KeyPair`]; the PKCS#8 bytes it came from
/// are wiped as soon as it is parsed.
pub(crate) struct InstanceKey {
    pub(crate) pair: Ed25519KeyPair,
    pub(crate) public: [u8; keyward_attest::instance::INSTANCE_KEY_LEN],
}

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceKey")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

fn instance_key(pkcs8: &[u8]) -> Result<InstanceKey, ClientError> {
    let der: Zeroizing<Vec<u8>> = if pkcs8.starts_with(b"-----BEGIN") {
        pem_body(pkcs8, "PRIVATE KEY").ok_or(ClientError::InvalidConfig {
            what: "instance key: not a PEM PRIVATE KEY",
        })?
    } else {
        Zeroizing::new(pkcs8.to_vec())
    };
    // v2 documents (ring's own) carry the public key and are checked against
    // it; v1 documents (OpenSSL's) do not carry it.
    let pair = Ed25519KeyPair::from_pkcs8(&der)
        .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der))
        .map_err(|_| ClientError::InvalidConfig {
            what: "instance key: not a PKCS#8 Ed25519 private key",
        })?;
    let public = <[u8; 32]>::try_from(pair.public_key().as_ref()).map_err(|_| {
        ClientError::InvalidConfig {
            what: "instance key: public key is not 32 bytes",
        }
    })?;
    Ok(InstanceKey { pair, public })
}

/// The base64 body of the first PEM block labelled `label`.
fn pem_body(text: &[u8], label: &str) -> Option<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(text).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?.checked_add(begin.len())?;
    let rest = text.get(start..)?;
    let stop = rest.find(&end)?;
    let body: Zeroizing<String> = Zeroizing::new(
        rest.get(..stop)?
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .ok()
        .map(Zeroizing::new)
}

/// Reads at most `max` bytes of `path`; longer files are refused.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let file_error = |source| ClientError::File {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(file_error)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(file_error)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        return Err(file_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        )));
    }
    Ok(bytes)
}

/// Refuses a private key file that others may read (as ssh does).
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), ClientError> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).map_err(|source| ClientError::File {
        path: path.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(ClientError::InvalidConfig {
            what: "instance key file is readable by group or others (want 0600)",
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), ClientError> {
    Ok(())
}

#[derive(Deserialize)]
struct HostFile {
    host_id: String,
    #[serde(default)]
    vault: Option<String>,
}

/// Where the boot log comes from.
#[derive(Debug, Clone)]
enum BootLog {
    /// The kernel's, if the file exists.
    Default,
    /// This file.
    Path(PathBuf),
    /// None (golden-PCR boot policies).
    Without,
}

/// Builds a [`Client`]. Required: the vault URL, the instance key, and the
/// host (a state directory, or a host id and AK, or a custom [`Quoter`]
/// with a host id).
#[derive(Default)]
pub struct ClientBuilder {
    vault: Option<String>,
    ca_roots: Option<Result<Vec<u8>, ClientError>>,
    instance_key: Option<Result<InstanceKey, ClientError>>,
    tcti: Option<String>,
    quoter: Option<Arc<dyn Quoter>>,
    state_dir: Option<PathBuf>,
    host: Option<(String, AkBlob)>,
    host_id: Option<String>,
    workload_log: Option<PathBuf>,
    boot_log: Option<BootLog>,
    pcrs: Option<Vec<u8>>,
    timeout: Option<Duration>,
    /// A launch environment variable that could not be used.
    env_error: Option<ClientError>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("vault", &self.vault)
            .field("tcti", &self.tcti)
            .field("state_dir", &self.state_dir)
            .field("workload_log", &self.workload_log)
            .field("pcrs", &self.pcrs)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The vault's base URL (`https://vault:8200`; `http://` for loopback
    /// development only).
    pub fn vault(mut self, url: impl Into<String>) -> Self {
        self.vault = Some(url.into());
        self
    }

    /// PEM CA certificates to trust for the vault's TLS certificate, instead
    /// of the platform's roots.
    pub fn ca_roots(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_roots = Some(Ok(pem.into()));
        self
    }

    /// Configures what `keyward launch` hands the workload it starts:
    /// the instance key (`KEYWARD_INSTANCE_KEY`, as
    /// [`instance_key_from_env`](Self::instance_key_from_env)), the host
    /// state directory (`KEYWARD_STATE_DIR`), the TPM (`KEYWARD_TCTI`) and
    /// the workload PCR (`KEYWARD_WORKLOAD_PCR`, quoted with PCRs 0–9); the
    /// workload log (`KEYWARD_WORKLOAD_LOG`) is read by
    /// [`build`](Self::build) in any case. Also, when set, the vault URL
    /// (`KEYWARD_VAULT`) and a PEM file of CA roots for its TLS certificate
    /// (`KEYWARD_CACERT`). Calls made after this one override what it set.
    pub fn from_launch_env(mut self) -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        self = self.instance_key_from_env();
        if let Some(dir) = var(STATE_DIR_ENV) {
            self.state_dir = Some(PathBuf::from(dir));
        }
        if let Some(tcti) = var(TCTI_ENV).and_then(|v| v.into_string().ok()) {
            self.tcti = Some(tcti);
        }
        if let Some(pcr) = var(WORKLOAD_PCR_ENV) {
            match pcr.to_str().and_then(|p| p.parse::<u8>().ok()) {
                // An index above 23 is refused by build, as for `pcrs`.
                Some(pcr) => self.pcrs = Some(BOOT_PCRS.iter().copied().chain([pcr]).collect()),
                None => {
                    self.env_error = Some(ClientError::InvalidConfig {
                        what: "KEYWARD_WORKLOAD_PCR is not a PCR index",
                    });
                }
            }
        }
        if let Some(url) = var(VAULT_ENV).and_then(|v| v.into_string().ok()) {
            self.vault = Some(url);
        }
        if let Some(path) = var(CACERT_ENV) {
            let path = PathBuf::from(path);
            let pem = read_bounded(&path, MAX_CA_BUNDLE).map(|pem| pem.to_vec());
            self.ca_roots = Some(pem);
        }
        self
    }

    /// Reads the instance key from the PKCS#8 file named by
    /// `KEYWARD_INSTANCE_KEY` (written 0600 by `keyward launch`). A file
    /// readable by group or others is refused.
    pub fn instance_key_from_env(mut self) -> Self {
        let loaded = match std::env::var_os(INSTANCE_KEY_ENV) {
            None => Err(ClientError::InvalidConfig {
                what: "KEYWARD_INSTANCE_KEY is not set",
            }),
            Some(path) => {
                let path = PathBuf::from(path);
                check_private(&path)
                    .and_then(|()| read_bounded(&path, MAX_KEY_FILE))
                    .and_then(|bytes| instance_key(&bytes))
            }
        };
        self.instance_key = Some(loaded);
        self
    }

    /// The instance key as PKCS#8 (DER or PEM) bytes.
    pub fn instance_key_pkcs8(mut self, pkcs8: &[u8]) -> Self {
        self.instance_key = Some(instance_key(pkcs8));
        self
    }

    /// The TPM to quote with, as a TCTI string (default
    /// `device:/dev/tpmrm0`). Opened once, at [`build`](Self::build).
    pub fn tpm(mut self, tcti: impl Into<String>) -> Self {
        self.tcti = Some(tcti.into());
        self
    }

    /// A custom quoter (a shared [`DirectTpm`], or a host daemon); replaces
    /// [`tpm`](Self::tpm) and the AK. The host id still comes from
    /// [`host_state_dir`](Self::host_state_dir) or [`host_id`](Self::host_id).
    pub fn quoter(mut self, quoter: Arc<dyn Quoter>) -> Self {
        self.quoter = Some(quoter);
        self
    }

    /// The host's state directory as `keyward host enroll` leaves it:
    /// `host.json` (host id, vault URL) and `ak.blob`; also the default place
    /// of the workload log (`workload.cel`).
    pub fn host_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// The host id and its enrolled AK, instead of a state directory.
    pub fn host(mut self, host_id: impl Into<String>, ak: AkBlob) -> Self {
        self.host = Some((host_id.into(), ak));
        self
    }

    /// The host id alone, for use with [`quoter`](Self::quoter).
    pub fn host_id(mut self, host_id: impl Into<String>) -> Self {
        self.host_id = Some(host_id.into());
        self
    }

    /// The workload Canonical Event Log (default: `KEYWARD_WORKLOAD_LOG`,
    /// else `<state-dir>/workload.cel`). Read afresh at every attestation.
    pub fn workload_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.workload_log = Some(path.into());
        self
    }

    /// The boot event log (default: the kernel's, when it exists).
    pub fn boot_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.boot_log = Some(BootLog::Path(path.into()));
        self
    }

    /// Sends no boot log (hosts under a golden-PCR boot policy).
    pub fn without_boot_log(mut self) -> Self {
        self.boot_log = Some(BootLog::Without);
        self
    }

    /// The SHA-256 PCRs to quote (default 0–9 and 23).
    pub fn pcrs(mut self, indices: &[u8]) -> Self {
        self.pcrs = Some(indices.to_vec());
        self
    }

    /// Timeout of each HTTP request (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Checks the configuration, opens the TPM, and makes the client. No
    /// request is sent yet: the first release attests.
    pub fn build(self) -> Result<Client, ClientError> {
        if let Some(e) = self.env_error {
            return Err(e);
        }
        let key = self.instance_key.ok_or(ClientError::InvalidConfig {
            what: "no instance key (instance_key_from_env or instance_key_pkcs8)",
        })??;
        let host_file = match &self.state_dir {
            Some(dir) => {
                let path = dir.join("host.json");
                let bytes = read_bounded(&path, MAX_HOST_FILE)?;
                Some(serde_json::from_slice::<HostFile>(&bytes).map_err(|_| {
                    ClientError::InvalidConfig {
                        what: "host.json: expected {\"host_id\": …, \"vault\": …}",
                    }
                })?)
            }
            None => None,
        };
        let vault = self
            .vault
            .or_else(|| host_file.as_ref().and_then(|h| h.vault.clone()))
            .ok_or(ClientError::InvalidConfig {
                what: "no vault URL",
            })?;
        let vault = vault.trim_end_matches('/').to_owned();
        let base = reqwest::Url::parse(&vault).map_err(|_| ClientError::InvalidConfig {
            what: "vault URL does not parse",
        })?;
        if !matches!(base.scheme(), "https" | "http") || base.query().is_some() {
            return Err(ClientError::InvalidConfig {
                what: "vault URL must be http(s)://host[:port][/prefix]",
            });
        }
        let (host_id, quoter): (String, Arc<dyn Quoter>) = match (self.quoter, self.host) {
            (Some(_), Some(_)) => {
                return Err(ClientError::InvalidConfig {
                    what: "give either a quoter or a host AK, not both",
                });
            }
            (Some(quoter), None) => {
                let id = self
                    .host_id
                    .or_else(|| host_file.as_ref().map(|h| h.host_id.clone()))
                    .ok_or(ClientError::InvalidConfig {
                        what: "no host id (host_id or host_state_dir)",
                    })?;
                (id, quoter)
            }
            (None, host) => {
                let (id, ak) = match (host, &self.state_dir, &host_file) {
                    (Some(h), _, _) => h,
                    (None, Some(dir), Some(file)) => {
                        (file.host_id.clone(), AkBlob::load(&dir.join("ak.blob"))?)
                    }
                    _ => {
                        return Err(ClientError::InvalidConfig {
                            what: "no host (host_state_dir, host, or quoter)",
                        });
                    }
                };
                let tcti = self.tcti.as_deref().unwrap_or(DEFAULT_TCTI);
                (id, Arc::new(DirectTpm::open(tcti, ak)?))
            }
        };
        if host_id.is_empty() || host_id.len() > 256 {
            return Err(ClientError::InvalidConfig {
                what: "host id is empty or longer than 256 bytes",
            });
        }
        let workload_log = self
            .workload_log
            .or_else(|| std::env::var_os(WORKLOAD_LOG_ENV).map(PathBuf::from))
            .or_else(|| self.state_dir.as_ref().map(|d| d.join("workload.cel")))
            .ok_or(ClientError::InvalidConfig {
                what: "no workload log (workload_log, KEYWARD_WORKLOAD_LOG or host_state_dir)",
            })?;
        let boot_log = match self.boot_log.unwrap_or(BootLog::Default) {
            BootLog::Path(p) => Some(p),
            BootLog::Without => None,
            BootLog::Default => {
                let p = PathBuf::from(DEFAULT_BOOT_LOG);
                p.exists().then_some(p)
            }
        };
        let pcrs = self.pcrs.unwrap_or_else(|| DEFAULT_PCRS.to_vec());
        if pcrs.is_empty() || pcrs.iter().any(|i| *i > keyward_hardware::MAX_PCR_INDEX) {
            return Err(ClientError::InvalidConfig {
                what: "PCR selection empty or above 23",
            });
        }
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout.unwrap_or(Duration::from_secs(30)))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = self.ca_roots.transpose()? {
            if u64::try_from(pem.len()).unwrap_or(u64::MAX) > MAX_CA_BUNDLE {
                return Err(ClientError::InvalidConfig {
                    what: "CA bundle larger than 1 MiB",
                });
            }
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
                ClientError::InvalidConfig {
                    what: "ca_roots: not PEM certificates",
                }
            })?;
            if certs.is_empty() {
                return Err(ClientError::InvalidConfig {
                    what: "ca_roots: no certificate",
                });
            }
            http = http.tls_certs_only(certs);
        }
        let http = http.build().map_err(|_| ClientError::InvalidConfig {
            what: "the HTTP client could not be built",
        })?;
        Ok(Client::new(Config {
            http,
            vault,
            base_path: base.path().trim_end_matches('/').to_owned(),
            key,
            host_id,
            quoter,
            workload_log,
            boot_log,
            selection: vec![PcrSelection::new(PcrBank::Sha256, &pcrs)],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn pkcs8() -> Vec<u8> {
        Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn instance_key_reads_der_and_pem_and_refuses_garbage() {
        let der = pkcs8();
        let from_der = instance_key(&der).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let from_pem = instance_key(pem.as_bytes()).unwrap();
        assert_eq!(from_der.public, from_pem.public);
        assert!(!format!("{from_der:?}").contains("private"));

        let mut tampered = der.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        for bad in [
            &tampered[..],
            b"not a key",
            b"-----BEGIN PRIVATE KEY-----\n!!\n",
        ] {
            assert!(
                matches!(
                    instance_key(bad),
                    Err(ClientError::InvalidConfig { what }) if what.starts_with("instance key: ")
                ),
                "{bad:?}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("keyward-client-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("instance.key");
        std::fs::write(&path, pkcs8()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(check_private(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            check_private(&path),
            Err(ClientError::InvalidConfig { what })
                if what == "instance key file is readable by group or others (want 0600)"
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_over_their_cap_are_refused() {
        let dir = std::env::temp_dir().join(format!("keyward-client-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        std::fs::write(&path, [7u8; 16]).unwrap();
        assert_eq!(read_bounded(&path, 16).unwrap().len(), 16);
        match read_bounded(&path, 15) {
            Err(ClientError::File { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::InvalidData);
            }
            other => panic!("expected a File error, got {other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn build_checks_the_configuration() {
        let key = pkcs8();
        let no_vault = ClientBuilder::default().instance_key_pkcs8(&key).build();
        assert!(matches!(
            no_vault,
            Err(ClientError::InvalidConfig {
                what: "no vault URL"
            })
        ));
        let ftp = ClientBuilder::default()
            .vault("ftp://vault")
            .instance_key_pkcs8(&key)
            .build();
        assert!(matches!(
            ftp,
            Err(ClientError::InvalidConfig { what }) if what.starts_with("vault URL must be")
        ));
        let no_host = ClientBuilder::default()
            .vault("http://127.0.0.1:8200")
            .instance_key_pkcs8(&key)
            .build();
        assert!(matches!(
            no_host,
            Err(ClientError::InvalidConfig {
                what: "no host (host_state_dir, host, or quoter)"
            })
        ));
    }
}

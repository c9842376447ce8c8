//! The server's configuration file (TOML); every field is documented in
//! `docs/config.md`, and `examples/keyward.toml` is loaded by a test.
//!
//! Unknown fields are errors (`deny_unknown_fields`), so a misspelt option
//! is refused instead of silently ignored. [`Config::validate`] enforces
//! what the types cannot: plain HTTP only in dev mode or on a loopback
//! address, dev mode only on loopback, limits within their caps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest config file read.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Cap on `limits.max_body_bytes`: storage values are at most 1 MiB.
pub const MAX_BODY_BYTES_CAP: usize = 8 << 20;
/// Cap on `limits.max_concurrent_requests`.
pub const MAX_CONCURRENCY_CAP: usize = 65_536;
/// Cap on any duration (one year): bounds arithmetic on it.
pub const MAX_DURATION_SECS: u64 = 365 * 24 * 3600;

/// A duration written as integer seconds or as a string with a unit:
/// `"90s"`, `"5m"`, `"2h"`, `"7d"` (Vault's convention). One helper for the
/// config file and every API field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

/// Why a duration does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Not digits followed by one of `s`, `m`, `h`, `d`.
    #[error("invalid duration {0:?}: use seconds or a number with s, m, h or d (\"90s\", \"5m\")")]
    Syntax(String),
    /// Longer than [`MAX_DURATION_SECS`].
    #[error("duration of {secs}s is above the maximum of {max}s")]
    TooLong {
        /// The value in seconds.
        secs: u64,
        /// The cap.
        max: u64,
    },
}

impl HumanDuration {
    /// Parses `"90s"`, `"5m"`, `"2h"`, `"7d"` or `"120"` (seconds).
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let syntax = || DurationError::Syntax(text.chars().take(32).collect());
        let (digits, unit) = match text.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (text.get(..i).ok_or_else(syntax)?, c),
            _ => (text, 's'),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let n: u64 = digits.parse().map_err(|_| syntax())?;
        let factor = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(syntax()),
        };
        Self::from_secs(n.checked_mul(factor).ok_or_else(syntax)?)
    }

    /// From seconds, capped at [`MAX_DURATION_SECS`].
    pub fn from_secs(secs: u64) -> Result<Self, DurationError> {
        if secs > MAX_DURATION_SECS {
            return Err(DurationError::TooLong {
                secs,
                max: MAX_DURATION_SECS,
            });
        }
        Ok(Self(Duration::from_secs(secs)))
    }

    /// Whole seconds.
    pub fn as_secs(self) -> u64 {
        self.0.as_secs()
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        let parsed = match Raw::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "expected a duration: seconds or a string like \"90s\", \"5m\"",
            )
        })? {
            Raw::Secs(s) => Self::from_secs(s),
            Raw::Text(t) => Self::parse(&t),
        };
        parsed.map_err(serde::de::Error::custom)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}s", self.0.as_secs()))
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Dev mode: root key in memory only, loopback only, plain HTTP.
    #[serde(default)]
    pub dev: bool,
    /// Directory of the embedded database.
    pub data_dir: PathBuf,
    /// TLS certificate and key; required unless dev mode or loopback.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Seal hints.
    #[serde(default)]
    pub seal: SealConfig,
    /// Request limits.
    #[serde(default)]
    pub limits: Limits,
    /// The audit log.
    pub audit: AuditConfig,
    /// The artifact registry: Sigstore trusted root, OCI registry access.
    #[serde(default)]
    pub artifacts: ArtifactsConfig,
    /// Host enrollment: EK trust, allowlist, TTL, auto-approve rules.
    #[serde(default)]
    pub enrollment: EnrollmentConfig,
    /// The release path: nonce and session lifetimes, identity tokens,
    /// on-behalf-of users.
    #[serde(default)]
    pub release: ReleaseConfig,
}

/// `[release]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseConfig {
    /// Nonce time to live.
    #[serde(default = "default_nonce_ttl")]
    pub nonce_ttl: HumanDuration,
    /// Attestation session time to live.
    #[serde(default = "default_session_ttl")]
    pub session_ttl: HumanDuration,
    /// How far a proof of possession's time may be from the vault's clock.
    #[serde(default = "default_pop_window")]
    pub pop_window: HumanDuration,
    /// The workload PCR the launcher extends.
    #[serde(default = "default_workload_pcr")]
    pub workload_pcr: u8,
    /// `[release.identity]`: workload identity tokens; off when absent.
    #[serde(default)]
    pub identity: Option<IdentityConfig>,
    /// `[release.on_behalf_of]`: the OIDC issuer of user tokens.
    #[serde(default)]
    pub on_behalf_of: Option<OnBehalfOfConfig>,
}

fn default_nonce_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_session_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_pop_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_workload_pcr() -> u8 {
    23
}

impl Default for ReleaseConfig {
    fn default() -> Self {
        Self {
            nonce_ttl: default_nonce_ttl(),
            session_ttl: default_session_ttl(),
            pop_window: default_pop_window(),
            workload_pcr: default_workload_pcr(),
            identity: None,
            on_behalf_of: None,
        }
    }
}

/// `[release.identity]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// The tokens' `iss`, and the base of the discovery document: this
    /// vault's URL + `/v1/identity`.
    pub issuer: String,
    /// The trust domain in subjects (`keyward://<trust-domain>/…`).
    pub trust_domain: String,
    /// Token lifetime when none is asked for.
    #[serde(default = "default_identity_ttl")]
    pub default_ttl: HumanDuration,
    /// Longest token lifetime.
    #[serde(default = "default_identity_max_ttl")]
    pub max_ttl: HumanDuration,
    /// Signing key rotation period.
    #[serde(default = "default_rotation")]
    pub rotation_period: HumanDuration,
}

fn default_identity_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_identity_max_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}
fn default_rotation() -> HumanDuration {
    HumanDuration(Duration::from_secs(86_400))
}

/// `[release.on_behalf_of]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnBehalfOfConfig {
    /// The user tokens' `iss`, exactly.
    pub issuer: String,
    /// The audience user tokens must name (this vault).
    pub audience: String,
    /// The issuer's JWKS (a JSON file).
    pub jwks_file: PathBuf,
    /// Clock-skew allowance.
    #[serde(default = "default_leeway")]
    pub leeway: HumanDuration,
}

fn default_leeway() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

/// `[artifacts]`: what artifact verification trusts and how registries
/// are reached (see `docs/config.md`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactsConfig {
    /// A pinned Sigstore `trusted_root.json`; default: the public-good root
    /// embedded in `keyward-attest`.
    #[serde(default)]
    pub trusted_root: Option<PathBuf>,
    /// `[artifacts.registry]`.
    #[serde(default)]
    pub registry: crate::artifacts::RegistrySettings,
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How `keyward operator init` protects the root key, by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum SealType {
    /// Shamir unseal shares.
    #[default]
    Shamir,
    /// This host's TPM, with recovery shares.
    Tpm,
}

/// `[seal]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealConfig {
    /// The seal type `init` uses.
    #[serde(default, rename = "type")]
    pub kind: SealType,
    /// Default share count for `init`.
    #[serde(default = "default_shares")]
    pub shares: u8,
    /// Default threshold for `init`.
    #[serde(default = "default_threshold")]
    pub threshold: u8,
    /// The TCTI of this host's TPM (`device:/dev/tpmrm0`,
    /// `swtpm:path=…`). When set, `POST /v1/sys/init` accepts
    /// `"type": "tpm"`, and a TPM-sealed vault unseals itself at startup.
    #[serde(default)]
    pub tcti: Option<String>,
}

fn default_shares() -> u8 {
    5
}
fn default_threshold() -> u8 {
    3
}

impl Default for SealConfig {
    fn default() -> Self {
        Self {
            kind: SealType::Shamir,
            shares: default_shares(),
            threshold: default_threshold(),
            tcti: None,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, in bytes (413 above).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Time a request may take before it is answered 503.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// Requests handled at once; more are answered 429 at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrent_requests: usize,
}

fn default_max_body() -> usize {
    1 << 20
}
fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_concurrency() -> usize {
    256
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: default_max_body(),
            request_timeout: default_request_timeout(),
            max_concurrent_requests: default_concurrency(),
        }
    }
}

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The audit log file (JSON lines, hash-chained).
    pub path: PathBuf,
    /// Longest wait for a record to be durable before the request fails 503.
    #[serde(default = "default_audit_timeout")]
    pub write_timeout: HumanDuration,
}

fn default_audit_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}

/// `[enrollment]`: how `POST /v1/hosts/enroll` judges a TPM (see
/// `docs/config.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentConfig {
    /// PEM or DER files, or directories of them, holding the TPM
    /// manufacturers' EK root certificates (trust anchors).
    #[serde(default)]
    pub ek_roots: Vec<PathBuf>,
    /// Files or directories of EK intermediate CA certificates (used to
    /// build chains, never trusted on their own).
    #[serde(default)]
    pub ek_intermediates: Vec<PathBuf>,
    /// Hex SHA-256 of EK public keys (DER SubjectPublicKeyInfo) that may
    /// enroll without an EK certificate.
    #[serde(default)]
    pub ek_allowlist: Vec<String>,
    /// Require extKeyUsage tcg-kp-EKCertificate on EK certificates.
    #[serde(default)]
    pub require_ek_eku: bool,
    /// Refuse EK chains with a certificate past its notAfter.
    #[serde(default)]
    pub enforce_expiry: bool,
    /// Accept sha1WithRSAEncryption signatures in EK chains.
    #[serde(default = "default_true")]
    pub allow_sha1_signatures: bool,
    /// How long a pending enrollment waits for its activation.
    #[serde(default = "default_enrollment_ttl")]
    pub ttl: HumanDuration,
    /// Rules under which an activated host is `active` at once.
    #[serde(default)]
    pub auto_approve: AutoApproveConfig,
}

/// `[enrollment.auto_approve]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoApproveConfig {
    /// Subjects (as `keyward host show` prints the EK issuer) of EK
    /// certificate issuers whose hosts are approved at once.
    #[serde(default)]
    pub ek_issuers: Vec<String>,
    /// Hex SHA-256 of EK public keys approved at once.
    #[serde(default)]
    pub ek_hashes: Vec<String>,
}

fn default_true() -> bool {
    true
}
fn default_enrollment_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

impl Default for EnrollmentConfig {
    fn default() -> Self {
        Self {
            ek_roots: Vec::new(),
            ek_intermediates: Vec::new(),
            ek_allowlist: Vec::new(),
            require_ek_eku: false,
            enforce_expiry: false,
            allow_sha1_signatures: default_true(),
            ttl: default_enrollment_ttl(),
            auto_approve: AutoApproveConfig::default(),
        }
    }
}

/// Why a configuration is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("{path}: larger than {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The cap.
        max: u64,
    },
    /// The TOML does not parse or has unknown or missing fields.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the field and line).
        source: toml::de::Error,
    },
    /// Plain HTTP on a non-loopback address outside dev mode.
    #[error(
        "listen address {addr} is not loopback: configure [tls] (plain HTTP only on loopback or in dev mode)"
    )]
    TlsRequired {
        /// The address.
        addr: SocketAddr,
    },
    /// Dev mode on a non-loopback address.
    #[error("dev mode requires a loopback listen address, not {addr}")]
    DevNotLoopback {
        /// The address.
        addr: SocketAddr,
    },
    /// `seal.tcti` is not a TCTI the TPM layer accepts.
    #[error("seal.tcti = {tcti:?}: not a supported TCTI (device:…, swtpm:…, mssim:…, tabrmd:…)")]
    SealTcti {
        /// The value given.
        tcti: String,
    },
    /// A limit is zero or above its cap.
    #[error("limits.{field} = {value}: must be between 1 and {max}")]
    Limit {
        /// The field.
        field: &'static str,
        /// The value.
        value: u64,
        /// The cap.
        max: u64,
    },
}

impl Config {
    /// Parses TOML text and validates it; `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        use std::io::Read;
        let read = |source| ConfigError::Read {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES.saturating_add(1))
            .read_to_string(&mut text)
            .map_err(read)?;
        if u64::try_from(text.len()).unwrap_or(u64::MAX) > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
                max: MAX_CONFIG_BYTES,
            });
        }
        Self::parse(&text, path)
    }

    /// Checks what the types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let loopback = self.listen.ip().is_loopback();
        if self.dev && !loopback {
            return Err(ConfigError::DevNotLoopback { addr: self.listen });
        }
        if self.tls.is_none() && !loopback {
            return Err(ConfigError::TlsRequired { addr: self.listen });
        }
        // Checked here so a typo fails at startup, not at the first init or
        // restart; the TPM layer refuses keys libtss2 would ignore.
        if let Some(tcti) = &self.seal.tcti
            && keyward_hardware::parse_tcti(tcti).is_err()
        {
            return Err(ConfigError::SealTcti { tcti: tcti.clone() });
        }
        let limit = |field, value: usize, max: usize| {
            if value == 0 || value > max {
                return Err(ConfigError::Limit {
                    field,
                    value: u64::try_from(value).unwrap_or(u64::MAX),
                    max: u64::try_from(max).unwrap_or(u64::MAX),
                });
            }
            Ok(())
        };
        limit(
            "max_body_bytes",
            self.limits.max_body_bytes,
            MAX_BODY_BYTES_CAP,
        )?;
        limit(
            "max_concurrent_requests",
            self.limits.max_concurrent_requests,
            MAX_CONCURRENCY_CAP,
        )?;
        if self.limits.request_timeout.as_secs() == 0 {
            return Err(ConfigError::Limit {
                field: "request_timeout",
                value: 0,
                max: MAX_DURATION_SECS,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    const MINIMAL: &str =
        "listen = \"127.0.0.1:8200\"\ndata_dir = \"/tmp/x\"\n[audit]\npath = \"/tmp/a.log\"\n";

    #[test]
    fn example_file_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/keyward.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.limits.request_timeout.as_secs(), 30);
        assert!(config.tls.is_some());
        assert_eq!(config.release.session_ttl.as_secs(), 300);
        assert_eq!(config.release.workload_pcr, 23);
        let identity = config.release.identity.unwrap();
        assert_eq!(identity.trust_domain, "example.com");
        assert_eq!(identity.max_ttl.as_secs(), 3600);
        assert_eq!(config.release.on_behalf_of.unwrap().audience, "keyward");
    }

    #[test]
    fn release_defaults_and_unknown_keys() {
        let config: Config = toml::from_str(MINIMAL).unwrap();
        assert_eq!(config.release.nonce_ttl.as_secs(), 60);
        assert_eq!(config.release.pop_window.as_secs(), 30);
        assert!(config.release.identity.is_none());
        let bad = format!("{MINIMAL}[release]\nsession_tll = \"5m\"\n");
        assert!(toml::from_str::<Config>(&bad).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(HumanDuration::parse("90s").unwrap().as_secs(), 90);
        assert_eq!(HumanDuration::parse("5m").unwrap().as_secs(), 300);
        assert_eq!(HumanDuration::parse("2h").unwrap().as_secs(), 7200);
        assert_eq!(HumanDuration::parse("7d").unwrap().as_secs(), 604_800);
        assert_eq!(HumanDuration::parse("12").unwrap().as_secs(), 12);
        for bad in ["", "s", "5x", "-5s", "5 m", "1.5h", "99999999999999999999d"] {
            assert!(
                matches!(HumanDuration::parse(bad), Err(DurationError::Syntax(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            HumanDuration::parse("400d"),
            Err(DurationError::TooLong { .. })
        ));
        let d: HumanDuration = serde_json::from_str("60").unwrap();
        assert_eq!(d.as_secs(), 60);
        assert!(serde_json::from_str::<HumanDuration>("true").is_err());
    }

    #[test]
    fn minimal_and_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.limits.max_body_bytes, 1 << 20);
        assert_eq!(c.audit.write_timeout.as_secs(), 2);
        assert_eq!(c.seal.tcti, None);
        let tpm = parse(&format!(
            "{MINIMAL}[seal]\ntcti = \"swtpm:path=/run/t.sock\"\n"
        ))
        .unwrap();
        assert_eq!(tpm.seal.tcti.as_deref(), Some("swtpm:path=/run/t.sock"));
    }

    #[test]
    fn refusals() {
        let unknown = format!("{MINIMAL}\n[limits]\nmax_body = 5\n");
        let Err(ConfigError::Parse { source, .. }) = parse(&unknown) else {
            panic!()
        };
        assert!(source.to_string().contains("max_body"));
        let public = MINIMAL.replace("127.0.0.1", "0.0.0.0");
        assert!(matches!(
            parse(&public),
            Err(ConfigError::TlsRequired { .. })
        ));
        let dev_public = format!("dev = true\n{public}");
        assert!(matches!(
            parse(&dev_public),
            Err(ConfigError::DevNotLoopback { .. })
        ));
        let tcti = format!("{MINIMAL}\n[seal]\ntcti = \"swtpm:bogus=1\"\n");
        assert!(matches!(parse(&tcti), Err(ConfigError::SealTcti { .. })));
        let zero = format!("{MINIMAL}\n[limits]\nmax_concurrent_requests = 0\n");
        assert!(matches!(
            parse(&zero),
            Err(ConfigError::Limit {
                field: "max_concurrent_requests",
                ..
            })
        ));
    }
}

//! The pure part of the operator debug commands (design brief §5):
//!
//! - `keyward debug verify-bundle --bundle F (--certificate-identity ID
//!   --certificate-oidc-issuer URL | --key KEY.pem) [--trusted-root F]
//!   FILE_OR_sha256:DIGEST` (the Sigstore conformance CLI protocol) →
//!   [`verify_bundle_command`];
//! - `keyward debug verify-model --signature model.sig (--identity ID
//!   --issuer URL | --key KEY.pem | --certificate-chain CA.pem)
//!   [--ignore-paths P…] [--trusted-root F] MODEL_DIR` →
//!   [`verify_model_signature_command`] and [`verify_model_command`].
//!
//! The binary reads the files and walks the model directory; these
//! functions take the bytes and return a [`VerifiedArtifact`] or a
//! [`CommandError`] whose [`CommandError::report`] is the text to print.

use std::error::Error as _;

use super::bundle::parse_bundle;
use super::dsse::parse_sha256_hex;
use super::error::VerifyError;
use super::model::{ModelError, VerifiedModelSignature, verify_model_signature};
use super::policy::{PolicyError, SigningPolicy};
use super::trust::{TrustRoot, TrustRootError};
use super::verified::VerifiedArtifact;
use super::verify::{ArtifactInput, verify_bundle};

/// Who must have signed, as the command line says it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum CommandSigner<'a> {
    /// `--certificate-identity` / `--identity` and `--certificate-oidc-issuer` / `--issuer`.
    Identity {
        /// The certificate SAN, exactly.
        identity: &'a str,
        /// The OIDC issuer, exactly.
        issuer: &'a str,
    },
    /// `--key KEY.pem`: the PEM text.
    Key(&'a str),
    /// `--certificate-chain CA.pem` (models only): the PEM text.
    CertificateChain(&'a str),
}

/// The positional `FILE_OR_sha256:DIGEST` argument of `verify-bundle`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum CommandArtifact<'a> {
    /// The file's bytes.
    File(&'a [u8]),
    /// The argument as given, `sha256:<64 hex>`.
    Digest(&'a str),
}

impl<'a> CommandArtifact<'a> {
    /// Classifies the positional argument as the conformance protocol does:
    /// `sha256:` followed by anything is a digest, everything else a path.
    pub fn is_digest_argument(argument: &str) -> bool {
        argument.starts_with("sha256:")
    }
}

/// Why a debug command rejected its input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// `--trusted-root` is not a usable trusted root.
    #[error("trusted root: {0}")]
    TrustRoot(#[from] TrustRootError),
    /// The signer options do not form a policy (e.g. an unparsable key).
    #[error("signer options: {0}")]
    Policy(#[from] PolicyError),
    /// The digest argument is not `sha256:` and 64 lower-case hex digits.
    #[error("artifact digest must be sha256:<64 lower-case hex digits>")]
    BadDigest,
    /// This signer option does not apply to the command.
    #[error("this signer option is not valid for this command")]
    SignerOption,
    /// Verification failed.
    #[error("verification failed: {0}")]
    Verify(#[from] VerifyError),
    /// Model verification failed.
    #[error("model verification failed: {0}")]
    Model(#[from] ModelError),
}

impl CommandError {
    /// The error and its causes, one per line: what the command prints.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut source = self.source();
        while let Some(cause) = source {
            // Errors that wrap another print it already; only new detail is added.
            let text = cause.to_string();
            if !out.contains(&text) {
                out.push_str("\n  caused by: ");
                out.push_str(&text);
            }
            source = cause.source();
        }
        out
    }
}

fn trust_root(trusted_root: Option<&[u8]>) -> Result<TrustRoot, TrustRootError> {
    match trusted_root {
        Some(bytes) => TrustRoot::from_json(bytes),
        None => TrustRoot::production(),
    }
}

/// `keyward debug verify-bundle`. `now` is the verification time in UNIX
/// seconds. Exit 0 on `Ok`, non-zero with [`CommandError::report`] on `Err`.
pub fn verify_bundle_command(
    bundle: &[u8],
    signer: CommandSigner<'_>,
    trusted_root: Option<&[u8]>,
    artifact: CommandArtifact<'_>,
    now: u64,
) -> Result<VerifiedArtifact, CommandError> {
    let policy = match signer {
        CommandSigner::Identity { identity, issuer } => {
            SigningPolicy::blob_identity(identity, issuer)?
        }
        CommandSigner::Key(pem) => SigningPolicy::blob_key("key", pem)?,
        CommandSigner::CertificateChain(_) => return Err(CommandError::SignerOption),
    };
    let input = match artifact {
        CommandArtifact::File(bytes) => ArtifactInput::Bytes(bytes),
        CommandArtifact::Digest(text) => ArtifactInput::Sha256(
            text.strip_prefix("sha256:")
                .and_then(parse_sha256_hex)
                .ok_or(CommandError::BadDigest)?,
        ),
    };
    let trust = trust_root(trusted_root)?;
    let bundle = parse_bundle(bundle).map_err(VerifyError::from)?;
    Ok(verify_bundle(&trust, &policy, &bundle, input, now)?)
}

/// `keyward debug verify-model`, first half: checks the signature file and
/// its signer and returns the signed manifest. The binary then walks the
/// model directory into [`VerifiedModelSignature::hasher`] (ignore paths:
/// `--ignore-paths` and the signature file when it lies inside the model
/// directory, relative to it; git files ignored as `model_signing verify`
/// does by default) and finishes with [`VerifiedModelSignature::check_hashed`];
/// [`VerifiedArtifact::model`] then holds the version id to print.
pub fn verify_model_signature_command(
    signature: &[u8],
    signer: CommandSigner<'_>,
    trusted_root: Option<&[u8]>,
    now: u64,
) -> Result<VerifiedModelSignature, CommandError> {
    let policy = match signer {
        CommandSigner::Identity { identity, issuer } => {
            SigningPolicy::model_policy(Some((identity, issuer)), None, None)?
        }
        CommandSigner::Key(pem) => SigningPolicy::model_policy(None, Some(pem), None)?,
        CommandSigner::CertificateChain(pem) => SigningPolicy::model_policy(None, None, Some(pem))?,
    };
    let trust = trust_root(trusted_root)?;
    Ok(verify_model_signature(&trust, &policy, signature, now)?)
}

/// `keyward debug verify-model` for a model held in memory as (relative
/// path, contents): both halves of [`verify_model_signature_command`].
pub fn verify_model_command(
    signature: &[u8],
    signer: CommandSigner<'_>,
    trusted_root: Option<&[u8]>,
    files: &[(&str, &[u8])],
    ignore_paths: &[&str],
    now: u64,
) -> Result<VerifiedArtifact, CommandError> {
    let verified = verify_model_signature_command(signature, signer, trusted_root, now)?;
    Ok(verified.check_files(files, ignore_paths, true)?)
}

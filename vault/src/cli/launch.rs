//! `keyward launch`: start one workload instance so that it can attest
//! (design brief §2, "Launch").
//!
//! In order, stopping at the first failure:
//! 1. parse `--image REF@sha256:…` and check every launch record field;
//! 2. with `--model-dir`, compute the directory's model version id the way
//!    `model_signing` does with its default settings (files, SHA-256, git
//!    files ignored; [`keyward_attest::sigstore::model_digest`]) and refuse
//!    to launch when it is not `--model-digest`;
//! 3. generate the instance key (Ed25519, PKCS#8, `ring`) and write it 0600
//!    into a fresh 0700 directory (see "Where the key goes");
//! 4. under an exclusive lock on the workload log ([`LogLock`]): append
//!    the launch record (`cel::append`), `fsync`, then extend the workload
//!    PCR with the digest `cel::append` returned. The
//!    lock covers the extend too, so concurrent launches extend in log
//!    order. Extending only after the record is durable means a crash leaves
//!    a record without its extend — every later attestation on this host
//!    fails the replay (fail closed) — never an extend the log cannot
//!    explain;
//! 5. `exec` CMD with `KEYWARD_INSTANCE_KEY` (the key file),
//!    `KEYWARD_WORKLOAD_LOG`, `KEYWARD_WORKLOAD_PCR`, `KEYWARD_STATE_DIR`,
//!    `KEYWARD_TCTI` and `KEYWARD_INSTANCE_ID` set: the launcher process
//!    becomes the workload.
//!
//! # Where the key goes
//! The first of `$XDG_RUNTIME_DIR` and `/run/keyward` that exists and is a
//! tmpfs mount (per `/proc/self/mountinfo`), else the system temp directory.
//! On tmpfs the key never reaches a disk; in the temp-dir fallback it may,
//! and a warning says so. The directory is created with `mkdir` (never
//! reused: a name planted by someone else makes the launch fail) and mode
//! 0700, the file with `O_EXCL` and mode 0600, so only this user (and root)
//! can read it. The launcher cannot delete it after `exec`: the workload
//! should read it and remove the directory. The key's bytes in this process
//! are wiped where we own them; `ring`'s PKCS#8 document buffer is not.
//!
//! # Hand-written parts
//! The tmpfs check reads `/proc/self/mountinfo` because `statfs(2)` needs
//! `libc` or `unsafe`, neither available here. The model directory is
//! walked by the vault's own `model_dir::walk_model_dir`, into plain
//! digests (a `ModelHasher` needs a verified signature; here there is only
//! a digest to compare).
//!
//! # What it does not do
//! It does not talk to the vault, and does not check that the image or the
//! model is registered or signed (the vault does, at release time). It does
//! not sandbox CMD. `--model-dir` supports `model_signing`'s default file
//! serialization only (no shards, no other hashes). The PCR is resettable
//! by the host OS (PCR 23 from locality 0): the record is evidence only as
//! far as boot policy makes the host OS trusted.

use std::ffi::OsString;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use keyward_attest::cel::{self, DEFAULT_WORKLOAD_PCR, LaunchRecord, MAX_WORKLOAD_LOG_LEN};
use keyward_attest::sigstore::model_digest::ModelDigester;
use keyward_hardware::Tpm;
use keyward_vault::model_dir::{ModelDirError, ModelFiles, read_chunks, walk_model_dir};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use zeroize::Zeroizing;

use super::Exit;

/// Largest `/proc/self/mountinfo` read.
const MAX_MOUNTINFO: u64 = 4 << 20;
/// The file holding the instance key inside its private directory.
const KEY_FILE: &str = "instance.key";

/// Arguments of `keyward launch`.
#[derive(Debug, clap::Args)]
pub(crate) struct LaunchArgs {
    /// The container image, `REF@sha256:<64 hex>`.
    #[arg(long)]
    image: String,
    /// The model version id, `sha256:<64 hex>` (model-signing root digest).
    #[arg(long)]
    model_digest: String,
    /// The model name recorded (default: the --model-dir directory's name, else "model").
    #[arg(long)]
    model_name: Option<String>,
    /// Check that this directory hashes to --model-digest before launching.
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// With --model-dir: a path (relative to it) left out of the digest; repeat for more.
    #[arg(long)]
    ignore_paths: Vec<String>,
    /// The workload PCR.
    #[arg(long, default_value_t = DEFAULT_WORKLOAD_PCR,
          value_parser = clap::value_parser!(u8).range(0..=23))]
    pcr: u8,
    /// The TPM, e.g. `device:/dev/tpmrm0` or `swtpm:path=…`.
    #[arg(long, env = "KEYWARD_TCTI", default_value = "device:/dev/tpmrm0")]
    tcti: String,
    /// Where host state (AK blob, host.json, workload log) is kept.
    #[arg(long, default_value = "/var/lib/keyward")]
    state_dir: PathBuf,
    /// The workload log (default: <state-dir>/workload.cel; created if absent).
    #[arg(long)]
    workload_log: Option<PathBuf>,
    /// The instance id recorded (default: 128 random bits, hex).
    #[arg(long)]
    instance_id: Option<String>,
    /// The workload command and its arguments, after `--`.
    #[arg(last = true, required = true, num_args = 1..)]
    command: Vec<OsString>,
}

/// Why a launch was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum LaunchError {
    /// `--image` is not `REF@sha256:<64 lower-case hex>`.
    #[error("--image {image:?} is not REF@sha256:<64 lower-case hex digits>")]
    InvalidImage {
        /// What was given.
        image: String,
    },
    /// A launch record field is invalid.
    #[error("{0}")]
    Record(#[from] cel::LaunchRecordError),
    /// `--ignore-paths` or a model path was refused.
    #[error("model directory: {0}")]
    ModelPaths(#[from] keyward_attest::sigstore::model::ModelError),
    /// The model directory could not be read.
    #[error("model directory: {0}")]
    ModelDir(#[from] ModelDirError),
    /// The model directory does not hash to `--model-digest`.
    #[error("model directory {dir} hashes to {computed}, not --model-digest {expected}")]
    ModelDigestMismatch {
        /// The directory.
        dir: PathBuf,
        /// `--model-digest`.
        expected: String,
        /// What the directory hashes to.
        computed: String,
    },
    /// The system random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// Reading, writing or locking a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another launch held the workload log for longer than the timeout.
    #[error("workload log {path}: still locked by another launch after {LOCK_TIMEOUT:?}")]
    LockTimeout {
        /// The log.
        path: PathBuf,
    },
    /// The workload log is invalid, or the record does not fit.
    #[error("workload log {path}: {source}")]
    WorkloadLog {
        /// The log.
        path: PathBuf,
        /// Why.
        source: cel::WorkloadLogError,
    },
    /// The TPM could not be opened.
    #[error("TPM {tcti}: {source}")]
    Tpm {
        /// The TCTI.
        tcti: String,
        /// Why.
        source: keyward_hardware::TpmError,
    },
    /// The record is in the log but the PCR extend failed: the log no longer
    /// replays, so attestation fails until the host reboots with a fresh log.
    #[error(
        "extending PCR {pcr} failed after the launch record was appended to {path} \
         (the log no longer replays; attestation on this host will fail): {source}"
    )]
    Extend {
        /// The workload PCR.
        pcr: u8,
        /// The log.
        path: PathBuf,
        /// Why.
        source: keyward_hardware::TpmError,
    },
    /// `exec` failed.
    #[error("cannot run {command:?}: {source}")]
    Exec {
        /// The program.
        command: OsString,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LaunchError + '_ {
    move |source| LaunchError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Splits `REF@sha256:<hex>` into the reference and the digest.
fn parse_image(image: &str) -> Result<(&str, &str), LaunchError> {
    let invalid = || LaunchError::InvalidImage {
        image: image.chars().take(200).collect(),
    };
    let (reference, digest) = image.rsplit_once('@').ok_or_else(invalid)?;
    let hex = digest.strip_prefix("sha256:").ok_or_else(invalid)?;
    let hex_ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if reference.is_empty() || !hex_ok {
        return Err(invalid());
    }
    Ok((reference, digest))
}

fn random_hex(rng: &SystemRandom, len: usize) -> Result<String, LaunchError> {
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes).map_err(|_| LaunchError::Random)?;
    Ok(hex::encode(bytes))
}

/// The launcher's side of a model directory walk: plain SHA-256 digests
/// into a [`ModelDigester`] (a `ModelHasher` needs a verified signature;
/// here there is only the digest to compare).
struct DigestFiles(ModelDigester);

impl ModelFiles for DigestFiles {
    fn is_ignored(&self, relative: &str) -> bool {
        self.0.is_ignored(relative)
    }

    fn file(&mut self, relative: &str, path: &Path) -> Result<(), ModelDirError> {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        read_chunks(path, |chunk| context.update(chunk))?;
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.finish().as_ref());
        // `false` (ignored) cannot happen: the walk skips ignored paths.
        self.0.add_file(relative, digest)?;
        Ok(())
    }
}

/// The model version id of `root`, walked as the vault walks it
/// ([`walk_model_dir`]).
fn digest_model_dir(root: &Path, ignore: &[&str]) -> Result<String, LaunchError> {
    let mut files = DigestFiles(ModelDigester::new(ignore)?);
    walk_model_dir(root, &mut files)?;
    Ok(files.0.finish())
}

/// Undoes `\ooo` escapes of a mountinfo path field.
fn unescape_mount_path(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        let octal = bytes
            .get(i.saturating_add(1)..i.saturating_add(4))
            .filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        if let Some(value) = octal {
            out.push(value);
            i = i.saturating_add(4);
        } else {
            out.push(b);
            i = i.saturating_add(1);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when `dir` is on a tmpfs: the file system type of the longest mount
/// point containing it, per `/proc/self/mountinfo` (proc(5)).
fn is_tmpfs(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let Ok(text) = super::read_input(Path::new("/proc/self/mountinfo"), MAX_MOUNTINFO) else {
        return false;
    };
    let text = String::from_utf8_lossy(&text);
    let mut best: Option<(usize, bool)> = None;
    for line in text.lines() {
        // id parent major:minor root mount-point options [optional…] - fstype source super
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let (Some(mount_point), Some(fstype)) = (left.split(' ').nth(4), right.split(' ').next())
        else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_mount_path(mount_point));
        if dir.starts_with(&mount_point) {
            let depth = mount_point.components().count();
            // Later lines of the same depth are mounted over earlier ones.
            if best.is_none_or(|(d, _)| depth >= d) {
                best = Some((depth, fstype == "tmpfs"));
            }
        }
    }
    best.is_some_and(|(_, tmpfs)| tmpfs)
}

/// Where the instance key's directory is created, and whether that is a tmpfs.
fn key_base() -> (PathBuf, bool) {
    let candidates = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .into_iter()
        .chain([PathBuf::from("/run/keyward")]);
    for dir in candidates {
        if dir.is_dir() && is_tmpfs(&dir) {
            return (dir, true);
        }
    }
    (std::env::temp_dir(), false)
}

/// A fresh 0700 directory holding the key file, removed when a launch fails
/// (after a successful `exec` no destructor runs, so it stays for CMD).
struct KeyDir(PathBuf);

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Generates the instance key, writes its PKCS#8 0600 into a fresh private
/// directory and returns the directory, the key file and the public key.
fn write_instance_key(rng: &SystemRandom) -> Result<(KeyDir, PathBuf, [u8; 32]), LaunchError> {
    // ring's `Document` is not wiped; our copy is.
    let pkcs8 = Zeroizing::new(
        Ed25519KeyPair::generate_pkcs8(rng)
            .map_err(|_| LaunchError::Random)?
            .as_ref()
            .to_vec(),
    );
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| LaunchError::Random)?;
    let public: [u8; 32] = pair
        .public_key()
        .as_ref()
        .try_into()
        .map_err(|_| LaunchError::Random)?;

    let (base, tmpfs) = key_base();
    if !tmpfs {
        eprintln!(
            "warning: neither $XDG_RUNTIME_DIR nor /run/keyward is a tmpfs; the instance key \
             goes to {} and may reach the disk",
            base.display()
        );
    }
    let dir = base.join(format!("keyward-instance-{}", random_hex(rng, 16)?));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(io(&dir))?;
    let key_dir = KeyDir(dir);
    let path = key_dir.0.join(KEY_FILE);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    file.write_all(&pkcs8)
        .and_then(|()| file.sync_all())
        .map_err(io(&path))?;
    Ok((key_dir, path, public))
}

/// Appends `record` to the log at `path` under an exclusive lock, makes it
/// durable, then extends `pcr` (still under the lock).
fn append_and_extend(
    path: &Path,
    pcr: u8,
    record: &LaunchRecord,
    tpm: &Tpm,
) -> Result<(), LaunchError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io(parent))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(io(path))?;
    let lock = LogLock::acquire(&file, path, LOCK_TIMEOUT)?;
    let cap = u64::try_from(MAX_WORKLOAD_LOG_LEN)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut log = Vec::new();
    (&mut file)
        .take(cap)
        .read_to_end(&mut log)
        .map_err(io(path))?;
    let old_len = log.len();
    let digest = cel::append(&mut log, pcr, record).map_err(|source| LaunchError::WorkloadLog {
        path: path.to_owned(),
        source,
    })?;
    let added = log.get(old_len..).unwrap_or_default();
    let start = u64::try_from(old_len).unwrap_or(u64::MAX);
    let written = file
        .seek(std::io::SeekFrom::Start(start))
        .and_then(|_| file.write_all(added))
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        // Leave the log as it was, so it stays valid.
        let _ = file.set_len(start).and_then(|()| file.sync_all());
        return Err(LaunchError::Io {
            path: path.to_owned(),
            source,
        });
    }
    if old_len == 0
        && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
    {
        // A new file's directory entry must be durable too.
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io(parent))?;
    }
    tpm.extend_pcr_sha256(pcr, digest)
        .map_err(|source| LaunchError::Extend {
            pcr,
            path: path.to_owned(),
            source,
        })?;
    drop(lock);
    drop(file);
    Ok(())
}

/// How long a launch waits for another launch to finish with the log.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// An exclusive lock on one workload log: `flock(2)` through std's
/// [`File::try_lock`](std::fs::File::try_lock), held on the launch's own
/// open file description.
///
/// The kernel releases it when the process exits or crashes, so no stale
/// lock can block later launches, and only processes that can open the log
/// can take it. Waiting is a bounded retry loop over `try_lock`, so a launch
/// stuck behind another gives up with [`LaunchError::LockTimeout`] instead of
/// hanging.
struct LogLock {
    /// A duplicate of the launch's descriptor: the same open file
    /// description, so the same lock.
    file: std::fs::File,
}

impl LogLock {
    fn acquire(
        file: &std::fs::File,
        path: &Path,
        timeout: std::time::Duration,
    ) -> Result<Self, LaunchError> {
        let file = file.try_clone().map_err(io(path))?;
        let deadline = std::time::Instant::now().checked_add(timeout);
        let mut wait = std::time::Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if deadline.is_none_or(|d| std::time::Instant::now() >= d) {
                        return Err(LaunchError::LockTimeout {
                            path: path.to_owned(),
                        });
                    }
                    std::thread::sleep(wait);
                    wait = wait
                        .saturating_mul(2)
                        .min(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(path)(e)),
            }
        }
    }
}

impl Drop for LogLock {
    fn drop(&mut self) {
        // Closing every descriptor of the description would release it
        // too; unlocking here does not wait for the caller's to close.
        let _ = self.file.unlock();
    }
}

fn launch(args: LaunchArgs) -> Result<std::convert::Infallible, LaunchError> {
    let (image_reference, image_digest) = parse_image(&args.image)?;
    let rng = SystemRandom::new();
    let instance_id = match &args.instance_id {
        Some(id) => id.clone(),
        None => random_hex(&rng, 16)?,
    };
    let model_name = args
        .model_name
        .clone()
        .or_else(|| {
            args.model_dir
                .as_deref()
                .and_then(|d| d.canonicalize().ok())
                .and_then(|d| d.file_name()?.to_str().map(str::to_owned))
        })
        .unwrap_or_else(|| "model".to_owned());
    // Checks every field before anything is computed or written.
    LaunchRecord::new(
        &instance_id,
        image_reference,
        image_digest,
        &model_name,
        &args.model_digest,
        [0u8; 32],
    )?;
    if let Some(dir) = &args.model_dir {
        let ignore: Vec<&str> = args.ignore_paths.iter().map(String::as_str).collect();
        let computed = digest_model_dir(dir, &ignore)?;
        if computed != args.model_digest {
            return Err(LaunchError::ModelDigestMismatch {
                dir: dir.clone(),
                expected: args.model_digest.clone(),
                computed,
            });
        }
    }
    // Open the TPM before anything is written: an unusable TPM leaves no trace.
    let tpm = Tpm::open(&args.tcti).map_err(|source| LaunchError::Tpm {
        tcti: args.tcti.clone(),
        source,
    })?;
    let (key_dir, key_path, public) = write_instance_key(&rng)?;
    let record = LaunchRecord::new(
        &instance_id,
        image_reference,
        image_digest,
        &model_name,
        &args.model_digest,
        keyward_attest::instance::instance_key_sha256(&public),
    )?;
    let log_path = args
        .workload_log
        .clone()
        .unwrap_or_else(|| args.state_dir.join("workload.cel"));
    let log_path = std::path::absolute(&log_path).map_err(io(&log_path))?;
    append_and_extend(&log_path, args.pcr, &record, &tpm)?;
    // Close the TPM connection: CMD must not inherit it.
    drop(tpm);

    let mut parts = args.command.iter();
    let program = parts.next().cloned().unwrap_or_default();
    let error = std::process::Command::new(&program)
        .args(parts)
        .env("KEYWARD_INSTANCE_KEY", &key_path)
        .env("KEYWARD_INSTANCE_ID", &instance_id)
        .env("KEYWARD_WORKLOAD_LOG", &log_path)
        .env("KEYWARD_WORKLOAD_PCR", args.pcr.to_string())
        .env("KEYWARD_STATE_DIR", &args.state_dir)
        .env("KEYWARD_TCTI", &args.tcti)
        .exec();
    // Only reached when exec failed: the key goes, the record stays (it is
    // in the PCR; nothing will ever present its key).
    drop(key_dir);
    Err(LaunchError::Exec {
        command: program,
        source: error,
    })
}

/// Runs `keyward launch`. Returns only on failure: on success the process
/// has become CMD.
pub(crate) fn run(args: LaunchArgs) -> Exit {
    match launch(args) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("keyward launch: {e}");
            match e {
                LaunchError::InvalidImage { .. }
                | LaunchError::Record(_)
                | LaunchError::ModelDigestMismatch { .. } => Exit::Rejected,
                _ => Exit::Failed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        let hex = "a".repeat(64);
        let good = format!("registry.example/app:1.0@sha256:{hex}");
        assert_eq!(
            parse_image(&good).ok(),
            Some(("registry.example/app:1.0", format!("sha256:{hex}").as_str()))
        );
        for bad in [
            "registry.example/app:1.0".to_owned(),
            format!("@sha256:{hex}"),
            format!("app@sha512:{hex}"),
            format!("app@sha256:{}", "A".repeat(64)),
            format!("app@sha256:{}", "a".repeat(63)),
        ] {
            assert!(
                matches!(parse_image(&bad), Err(LaunchError::InvalidImage { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn log_lock_is_exclusive_per_file() {
        let dir = std::env::temp_dir().join(format!(
            "keyward-lock-test-{}",
            random_hex(&SystemRandom::new(), 8).unwrap_or_default()
        ));
        std::fs::create_dir(&dir).unwrap();
        let (a, b) = (dir.join("a.cel"), dir.join("b.cel"));
        let file_a = std::fs::File::create(&a).unwrap();
        let file_b = std::fs::File::create(&b).unwrap();
        let zero = std::time::Duration::ZERO;
        let held = LogLock::acquire(&file_a, &a, zero).unwrap();
        // The same file, opened again (as another launch would): refused.
        let again = std::fs::File::open(&a).unwrap();
        assert!(matches!(
            LogLock::acquire(&again, &a, zero),
            Err(LaunchError::LockTimeout { path }) if path == a
        ));
        // Another file is not affected.
        let other = LogLock::acquire(&file_b, &b, zero).unwrap();
        // Released when dropped (as when the process dies).
        drop(held);
        let _ = LogLock::acquire(&again, &a, zero).unwrap();
        drop(other);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mount_path("/run/a\\040b"), "/run/a b");
        assert_eq!(unescape_mount_path("/x\\"), "/x\\");
        assert_eq!(unescape_mount_path("/x\\9"), "/x\\9");
    }
}

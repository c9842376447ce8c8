//! swtpm test harness: one manufactured software TPM per [`SimHost`].
//!
//! Every call to [`SimHost::start`]:
//! 1. manufactures a fresh TPM state in its own temp dir with
//!    `swtpm_setup --tpm2 --create-ek-cert --create-platform-cert --pcr-banks sha256`,
//!    whose EK certificates are issued by a local CA ([`LocalCa`]) that all
//!    tests of a target directory share — tests validate real certificate
//!    chains, and nothing touches `/var/lib/swtpm-localca` or `/etc`;
//! 2. binds the TPM's Unix sockets (`swtpm.sock`, `swtpm.sock.ctrl`) itself
//!    and hands the listening descriptors to `swtpm socket` as a **child
//!    process** (never `-d`). Because the sockets listen before swtpm starts,
//!    clients can connect at once: there is no readiness polling and no port
//!    to collide on.
//!
//! Dropping the `SimHost` kills swtpm and waits for it (in containers
//! without an init process an orphan would never be reaped), then removes
//! the temp dir.
//!
//! swtpm serves one client connection at a time: close a [`Tpm`] before
//! pointing tpm2-tools at the same `SimHost`.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::{EkKind, Tpm, TpmError};

/// Why the harness could not start an swtpm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A tool exited unsuccessfully.
    #[error("{tool} failed ({status}); log: {log}")]
    Tool {
        /// The program.
        tool: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The tail of its log.
        log: String,
    },
    /// The shared local CA could not be set up earlier in this process.
    #[error("local CA unavailable: {0}")]
    Ca(String),
    /// Talking to the new TPM failed.
    #[error(transparent)]
    Tpm(#[from] TpmError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// The swtpm local CA shared by every [`SimHost`] of a target directory.
///
/// It lives in `$KEYWARD_SWTPM_CA_DIR` when set, else in
/// `<cargo target dir>/keyward-swtpm-ca`, and is created on first use by
/// `swtpm_localca` (which serialises concurrent users with a lock file).
/// The root is self-signed; EK certificates are issued by its intermediate.
#[derive(Debug)]
pub struct LocalCa {
    dir: PathBuf,
}

impl LocalCa {
    /// The shared CA, with its configuration written.
    pub fn shared() -> Result<&'static LocalCa, HarnessError> {
        static CA: OnceLock<Result<LocalCa, String>> = OnceLock::new();
        CA.get_or_init(|| LocalCa::prepare(ca_dir()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| HarnessError::Ca(e.clone()))
    }

    fn prepare(dir: PathBuf) -> Result<LocalCa, HarnessError> {
        std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
        let d = dir.display();
        write_atomically(
            &dir.join("swtpm-localca.conf"),
            &format!(
                "statedir = {d}\nsigningkey = {d}/signkey.pem\nissuercert = {d}/issuercert.pem\ncertserial = {d}/certserial\n"
            ),
        )?;
        write_atomically(
            &dir.join("swtpm-localca.options"),
            "--platform-manufacturer Keyward\n--platform-version 2.1\n--platform-model swtpm\n",
        )?;
        write_atomically(
            &dir.join("swtpm_setup.conf"),
            &format!(
                "create_certs_tool = swtpm_localca\ncreate_certs_tool_config = {d}/swtpm-localca.conf\ncreate_certs_tool_options = {d}/swtpm-localca.options\nactive_pcr_banks = sha256\n"
            ),
        )?;
        Ok(LocalCa { dir })
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The self-signed root certificate (PEM). Exists once a TPM was manufactured.
    pub fn root_cert_path(&self) -> PathBuf {
        self.dir.join("swtpm-localca-rootca-cert.pem")
    }

    /// The intermediate that signs EK certificates (PEM).
    pub fn intermediate_cert_path(&self) -> PathBuf {
        self.dir.join("issuercert.pem")
    }

    fn setup_config(&self) -> PathBuf {
        self.dir.join("swtpm_setup.conf")
    }
}

fn ca_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KEYWARD_SWTPM_CA_DIR") {
        return PathBuf::from(dir);
    }
    // Test and bench binaries run from <target>/<profile>/deps/; cargo marks
    // the target directory with CACHEDIR.TAG.
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(std::env::temp_dir)
        .join("keyward-swtpm-ca")
}

fn write_atomically(path: &Path, contents: &str) -> Result<(), HarnessError> {
    if std::fs::read_to_string(path).is_ok_and(|existing| existing == contents) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, contents).map_err(io(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("rename to {}", path.display())))
}

/// A running, manufactured swtpm.
#[derive(Debug)]
pub struct SimHost {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ca: &'static LocalCa,
}

impl SimHost {
    /// Manufactures and starts a new swtpm.
    pub fn start() -> Result<Self, HarnessError> {
        let ca = LocalCa::shared()?;
        let dir = tempfile::Builder::new()
            .prefix("keyward-swtpm-")
            .tempdir()
            .map_err(io("create temp dir"))?;
        let state = dir.path().join("state");
        std::fs::create_dir(&state).map_err(io("create state dir"))?;
        let log = dir.path().join("swtpm_setup.log");
        let status = Command::new("swtpm_setup")
            .args(["--tpm2", "--create-ek-cert", "--create-platform-cert"])
            .args(["--pcr-banks", "sha256"])
            .arg("--config")
            .arg(ca.setup_config())
            .arg("--tpm-state")
            .arg(&state)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(io(
                "run swtpm_setup (is swtpm-tools installed? see scripts/deps.sh)",
            ))?;
        if !status.success() {
            return Err(HarnessError::Tool {
                tool: "swtpm_setup",
                status,
                log: log_tail(&log),
            });
        }
        let mut host = Self {
            child: None,
            dir,
            ca,
        };
        host.spawn()?;
        Ok(host)
    }

    fn spawn(&mut self) -> Result<(), HarnessError> {
        let socket = self.socket_path();
        let ctrl = self.dir.path().join("swtpm.sock.ctrl");
        for path in [&socket, &ctrl] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(format!("remove {}", path.display()))(e)),
            }
        }
        let server = UnixListener::bind(&socket).map_err(io("bind swtpm socket"))?;
        let control = UnixListener::bind(&ctrl).map_err(io("bind swtpm ctrl socket"))?;
        let (server_fd, control_fd) = (server.as_raw_fd(), control.as_raw_fd());
        let mut command = Command::new("swtpm");
        command
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", self.dir.path().join("state").display()))
            .arg("--server")
            .arg(format!("type=unixio,fd={server_fd}"))
            .arg("--ctrl")
            .arg(format!("type=unixio,fd={control_fd}"))
            .arg("--log")
            .arg(format!(
                "file={},level=1",
                self.dir.path().join("swtpm.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure runs in the forked child before exec and calls
        // only fcntl(2), which is async-signal-safe. It clears FD_CLOEXEC on
        // the two listening sockets so that swtpm inherits exactly them; the
        // parent's descriptors keep FD_CLOEXEC, so concurrent spawns from
        // other threads never inherit them.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(move || {
                for fd in [server_fd, control_fd] {
                    if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .map_err(io("start swtpm (is swtpm installed?)"))?;
        // The child holds the sockets now; ours close when the listeners drop.
        drop((server, control));
        self.child = Some(child);
        Ok(())
    }

    /// The TCTI string for this TPM (`swtpm:path=…`).
    pub fn tcti(&self) -> String {
        format!("swtpm:path={}", self.socket_path().display())
    }

    /// The data socket.
    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("swtpm.sock")
    }

    /// The temp dir holding this TPM's state, sockets and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The local CA that issued this TPM's EK certificates.
    pub fn ca(&self) -> &'static LocalCa {
        self.ca
    }

    /// Connects to this TPM.
    pub fn open(&self) -> Result<Tpm, TpmError> {
        Tpm::open(&self.tcti())
    }

    /// Reads the EK certificate of `kind` (DER), through a short-lived connection.
    pub fn ek_certificate(&self, kind: EkKind) -> Result<Vec<u8>, TpmError> {
        self.open()?.ek_certificate(kind)
    }

    /// Kills swtpm and starts it again on the same state: a reboot. PCRs
    /// reset; persistent objects, NV indices and the seeds survive.
    pub fn reboot(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.spawn()
    }

    /// The process id of the running swtpm.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SimHost {
    fn drop(&mut self) {
        self.stop();
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or_default().to_owned()
}

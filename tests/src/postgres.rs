//! A real PostgreSQL for tests: Debian's server (PostgreSQL 15 on Debian
//! 12), one per test, in a temporary directory, on 127.0.0.1 with a free
//! port, stopped and reaped on drop.
//!
//! - `initdb` makes a cluster whose only superuser is `keyward_admin`, with
//!   a generated password, and `scram-sha-256` authentication for every
//!   connection (TCP and Unix socket): tests log in the way workloads do.
//! - `postgres` runs as a direct child (no `pg_ctl`, no daemonising), as the
//!   unprivileged `postgres` system user (PostgreSQL refuses root) through
//!   `setpriv`, which `exec`s, so the child's pid is the postmaster's and
//!   signals reach it. Drop asks for a fast shutdown (SIGINT: backends are
//!   terminated, then the postmaster exits), waits a bounded time, and
//!   kills if needed; the sandbox has no init to reap orphans, so the
//!   backends must end with their postmaster rather than be left behind.
//! - Readiness is polled (bounded): the postmaster must still run and a real
//!   `psql` login as the admin must succeed, which also proves that the
//!   server on the port is ours.
//! - [`Postgres::psql`] runs the real `psql` client for one command;
//!   [`Postgres::psql_session`] keeps one `psql` connected, to watch what
//!   happens to an open session.
//!
//! Nothing here panics: every failure is an `io::Error` naming what failed.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};

/// The cluster's superuser.
pub const ADMIN_USER: &str = "keyward_admin";
/// Port attempts before giving up (another process may take the port
/// between our probe and the server's bind).
const START_ATTEMPTS: usize = 5;
/// How long a started server may take to accept a login.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Between readiness probes.
const READY_POLL: Duration = Duration::from_millis(50);
/// How long drop waits for a fast shutdown before killing.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// Bound on one answer in a [`PsqlSession`].
const SESSION_TIMEOUT: Duration = Duration::from_secs(20);
/// The line a session echoes after each command.
const SESSION_MARKER: &str = "__keyward_psql_done__";
/// The unprivileged account the server runs as.
const SERVER_ACCOUNT: &str = "postgres";

fn error(message: impl Into<String>) -> io::Error {
    io::Error::other(message.into())
}

/// A running PostgreSQL, stopped (fast shutdown, then kill) and reaped on
/// drop.
pub struct Postgres {
    child: Child,
    port: u16,
    password: String,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("pid", &self.child.id())
            .field("port", &self.port)
            .field("password", &"[redacted]")
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl Postgres {
    /// Makes a cluster and starts it on a free loopback port, returning when
    /// the admin can log in.
    pub fn start() -> io::Result<Self> {
        let bin = server_bin_dir()?;
        let (uid, gid) = account_ids(SERVER_ACCOUNT)?;
        let mut last = error("postgres did not start");
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&bin, uid, gid) {
                Ok(server) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once(bin: &Path, uid: u32, gid: u32) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("keyward-postgres-")
            .tempdir()?;
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
            .map_err(|e| error(format!("chown of the postgres temp dir: {e}")))?;
        let password = random_hex(16)?;
        let pwfile = dir.path().join("pwfile");
        fs::write(&pwfile, &password)?;
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o600))?;
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        let data = dir.path().join("data");

        let output = as_account(uid, gid, &bin.join("initdb"))
            .current_dir(dir.path())
            .arg("-D")
            .arg(&data)
            .args(["-U", ADMIN_USER, "--auth=scram-sha-256", "--no-sync"])
            .args(["--encoding=UTF8", "--locale=C"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| error(format!("running initdb: {e}")))?;
        let _ = fs::remove_file(&pwfile);
        if !output.status.success() {
            return Err(error(format!(
                "initdb failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }

        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = File::create(dir.path().join("postgres.log"))?;
        let child = as_account(uid, gid, &bin.join("postgres"))
            .current_dir(dir.path())
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir.path())
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-c", "fsync=off", "-c", "shared_buffers=16MB"])
            .args(["-c", "max_connections=30"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| error(format!("spawning postgres: {e}")))?;
        // From here on, drop stops the child whatever happens.
        let mut server = Self {
            child,
            port,
            password,
            bin: bin.to_path_buf(),
            dir,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + READY_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(error(format!("postgres exited ({status}): {}", self.log())));
            }
            let probe = self.psql(ADMIN_USER, &self.password, "SELECT 1");
            if probe.as_deref().is_ok_and(|out| out == "1") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(error(format!(
                    "postgres not ready after {READY_DEADLINE:?} (last probe: {probe:?}): {}",
                    self.log()
                )));
            }
            std::thread::sleep(READY_POLL);
        }
    }

    /// `postgres://keyward_admin:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://{ADMIN_USER}:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
    }

    /// The superuser's password.
    pub fn admin_password(&self) -> &str {
        &self.password
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// Runs `sql` with the real `psql` as `user` over TCP (database
    /// `postgres`), stopping at the first error. Returns unaligned, tuples-only
    /// output without the final newline; on failure the error holds psql's
    /// exit status and stderr.
    pub fn psql(&self, user: &str, password: &str, sql: &str) -> io::Result<String> {
        let output = self
            .psql_command(user, password)
            .arg("-c")
            .arg(sql)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| error(format!("running psql: {e}")))?;
        if output.status.success() {
            let mut stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            while stdout.ends_with('\n') {
                stdout.pop();
            }
            Ok(stdout)
        } else {
            Err(error(format!(
                "psql as {user} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// Runs `sql` as the superuser.
    pub fn admin_psql(&self, sql: &str) -> io::Result<String> {
        self.psql(ADMIN_USER, &self.password, sql)
    }

    /// A `psql` kept connected as `user`; fails if the first query
    /// (`SELECT current_user`) does not answer `user`.
    pub fn psql_session(&self, user: &str, password: &str) -> io::Result<PsqlSession> {
        let stderr = tempfile::tempfile()?;
        let mut child = self
            .psql_command(user, password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone()?)
            .spawn()
            .map_err(|e| error(format!("spawning psql: {e}")))?;
        let (stdin, stdout) = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => (stdin, stdout),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error("psql session without pipes"));
            }
        };
        let (sender, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        if sender.send(line).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let mut session = PsqlSession {
            child,
            stdin: Some(stdin),
            lines,
            reader: Some(reader),
            stderr,
        };
        let current = session.query("SELECT current_user;")?;
        if current != user {
            return Err(error(format!("psql session is {current:?}, not {user:?}")));
        }
        Ok(session)
    }

    fn psql_command(&self, user: &str, password: &str) -> Command {
        let mut command = Command::new(self.bin.join("psql"));
        command
            .args(["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", user, "-d", "postgres"])
            .env("PGPASSWORD", password)
            .env("PGSSLMODE", "disable")
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGOPTIONS", "-c statement_timeout=20000")
            .env_remove("PGSERVICE")
            .env_remove("PGPASSFILE")
            .env_remove("PGSERVICEFILE");
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Fast shutdown: the postmaster terminates its backends and exits.
        let signalled = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if signalled {
            let deadline = Instant::now() + SHUTDOWN_DEADLINE;
            while Instant::now() < deadline {
                match self.child.try_wait() {
                    Ok(Some(_)) | Err(_) => return,
                    Ok(None) => std::thread::sleep(READY_POLL),
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `psql` process kept connected; killed and reaped on drop.
pub struct PsqlSession {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    reader: Option<JoinHandle<()>>,
    stderr: File,
}

impl fmt::Debug for PsqlSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PsqlSession")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl PsqlSession {
    /// Sends `sql` (a complete statement, with its `;`) and returns its
    /// output lines joined by `\n`. If psql ends instead (it does on any
    /// error, `ON_ERROR_STOP`), the error holds its exit status and stderr.
    pub fn query(&mut self, sql: &str) -> io::Result<String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| error("psql session already ended"))?;
        let sent = writeln!(stdin, "{sql}\n\\echo {SESSION_MARKER}").and_then(|()| stdin.flush());
        let mut out = Vec::new();
        loop {
            if sent.is_err() {
                return Err(self.ended());
            }
            match self.lines.recv_timeout(SESSION_TIMEOUT) {
                Ok(line) if line == SESSION_MARKER => return Ok(out.join("\n")),
                Ok(line) => out.push(line),
                Err(RecvTimeoutError::Disconnected) => return Err(self.ended()),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(error(format!(
                        "psql session gave no answer within {SESSION_TIMEOUT:?}"
                    )));
                }
            }
        }
    }

    /// psql has exited (or its pipe broke): reap it and report why.
    fn ended(&mut self) -> io::Error {
        self.stdin = None;
        let status = self.child.wait();
        let mut stderr = String::new();
        let _ = self
            .stderr
            .rewind()
            .and_then(|()| self.stderr.read_to_string(&mut stderr));
        match status {
            Ok(status) => error(format!("psql session ended ({status}): {stderr}")),
            Err(e) => error(format!("psql session ended (wait failed: {e}): {stderr}")),
        }
    }
}

impl Drop for PsqlSession {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// `setpriv` to the account, then `exec` of `program`: no extra process
/// between us and the program, unlike `runuser`/`su`.
fn as_account(uid: u32, gid: u32, program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(program);
    command
}

/// The newest `/usr/lib/postgresql/<major>/bin` holding `initdb`.
fn server_bin_dir() -> io::Result<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let entries = fs::read_dir(root).map_err(|e| {
        error(format!(
            "{}: {e} (is the postgresql package installed? scripts/deps.sh)",
            root.display()
        ))
    })?;
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in entries {
        let entry = entry?;
        let Some(major) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let bin = entry.path().join("bin");
        if bin.join("initdb").is_file() && best.as_ref().is_none_or(|(m, _)| major > *m) {
            best = Some((major, bin));
        }
    }
    best.map(|(_, bin)| bin)
        .ok_or_else(|| error(format!("no PostgreSQL server under {}", root.display())))
}

/// uid and gid of `account`, from /etc/passwd.
fn account_ids(account: &str) -> io::Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    for line in passwd.lines() {
        let mut fields = line.split(':');
        if fields.next() != Some(account) {
            continue;
        }
        let mut numbers = fields.skip(1).take(2).map(str::parse::<u32>);
        if let (Some(Ok(uid)), Some(Ok(gid))) = (numbers.next(), numbers.next()) {
            return Ok((uid, gid));
        }
    }
    Err(error(format!(
        "no `{account}` account in /etc/passwd (is the postgresql package installed?)"
    )))
}

fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buffer = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buffer)
        .map_err(|_| error("system random generator failed"))?;
    Ok(hex::encode(buffer))
}

//! A real OCI registry for tests: Debian's `docker-registry` (distribution
//! 2.8.2), one per test, on 127.0.0.1 with a free port, storage in a
//! temporary directory, killed and reaped on drop.
//!
//! Also the ways tests put content into it: `skopeo copy` from an OCI image
//! layout (images and simple-signing signature artifacts), and plain HTTP
//! pushes of blobs and manifests for what skopeo 1.9.3 refuses to copy
//! unchanged (referrers indexes) or what a test crafts by hand.
//!
//! Nothing here panics: every failure is an `io::Error` naming what failed.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Port attempts before giving up (another process may take the port
/// between our probe and the registry's bind).
const START_ATTEMPTS: usize = 5;
/// How long a started registry may take to answer `GET /v2/`.
const READY_DEADLINE: Duration = Duration::from_secs(20);
/// Between readiness probes.
const READY_POLL: Duration = Duration::from_millis(50);
/// Bound on one harness HTTP exchange.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

fn error(message: impl Into<String>) -> io::Error {
    io::Error::other(message.into())
}

/// A running `docker-registry`, stopped (killed and waited for) on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free loopback port and waits until it answers.
    pub fn start() -> io::Result<Self> {
        let mut last = error("docker-registry did not start");
        for _ in 0..START_ATTEMPTS {
            match Self::start_once() {
                Ok(registry) => return Ok(registry),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn start_once() -> io::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::Builder::new()
            .prefix("keyward-registry-")
            .tempdir()?;
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: info\n  formatter: text\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: keyward-test-only\n",
                dir.path().join("storage").display()
            ),
        )?;
        let log = File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| error(format!("spawning docker-registry: {e}")))?;
        // From here on, drop stops the child whatever happens.
        let mut registry = Self { child, port, dir };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + READY_DEADLINE;
        let listening = format!("listening on 127.0.0.1:{}", self.port);
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(error(format!(
                    "docker-registry exited ({status}): {}",
                    self.log()
                )));
            }
            // Our own process must be the one listening (the log says so),
            // not whatever else took the port.
            if self.log().contains(&listening) && self.get("/v2/").is_ok_and(|r| r.status == 200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(error(format!(
                    "docker-registry not ready after {READY_DEADLINE:?}: {}",
                    self.log()
                )));
            }
            std::thread::sleep(READY_POLL);
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the registry logged so far, including its access log
    /// (one line per request: `"GET /v2/… HTTP/1.1" STATUS …`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A scratch directory that lives as long as the registry.
    pub fn scratch(&self, name: &str) -> io::Result<PathBuf> {
        let path = self.dir.path().join("scratch").join(name);
        fs::create_dir_all(&path)?;
        Ok(path)
    }

    /// Copies `layout:layout_tag` (an OCI image layout) to
    /// `ADDR/repository:tag` with skopeo, byte for byte.
    pub fn skopeo_push(
        &self,
        layout: &Path,
        layout_tag: &str,
        repository: &str,
        tag: &str,
    ) -> io::Result<()> {
        // An explicit accept-anything policy: the test machine's
        // /etc/containers/policy.json is not ours to rely on.
        let policy = self.dir.path().join("skopeo-policy.json");
        fs::write(
            &policy,
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )?;
        let output = Command::new("skopeo")
            .arg("--policy")
            .arg(&policy)
            .args([
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--preserve-digests",
            ])
            .arg(format!("oci:{}:{layout_tag}", layout.display()))
            .arg(format!("docker://{}/{repository}:{tag}", self.addr()))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| error(format!("running skopeo: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(error(format!(
                "skopeo copy failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )))
        }
    }

    /// Uploads a blob (distribution API: POST an upload, PUT its content
    /// with the digest) and returns its `sha256:<hex>` digest.
    pub fn put_blob(&self, repository: &str, bytes: &[u8]) -> io::Result<String> {
        let digest = sha256_digest(bytes);
        let HttpResponse {
            status, headers, ..
        } = self.request(
            "POST",
            &format!("/v2/{repository}/blobs/uploads/"),
            &[],
            &[],
        )?;
        let location = header(&headers, "location")
            .filter(|_| status == 202)
            .ok_or_else(|| error(format!("blob upload start answered {status}")))?;
        let path = location
            .strip_prefix(&format!("http://{}", self.addr()))
            .unwrap_or(location);
        let separator = if path.contains('?') { '&' } else { '?' };
        let HttpResponse { status, body, .. } = self.request(
            "PUT",
            &format!("{path}{separator}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        )?;
        if status != 201 {
            return Err(error(format!(
                "blob upload answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(digest)
    }

    /// Puts a manifest under `reference` (tag or digest) and returns its
    /// `sha256:<hex>` digest.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> io::Result<String> {
        let HttpResponse { status, body, .. } = self.request(
            "PUT",
            &format!("/v2/{repository}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            bytes,
        )?;
        if status != 201 {
            return Err(error(format!(
                "manifest put answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(sha256_digest(bytes))
    }

    /// `GET path` (accepting OCI and Docker manifests and indexes),
    /// returning status, headers and body.
    pub fn get(&self, path: &str) -> io::Result<HttpResponse> {
        let accept = format!(
            "{OCI_MANIFEST}, {OCI_INDEX}, application/vnd.docker.distribution.manifest.v2+json, \
             application/vnd.docker.distribution.manifest.list.v2+json"
        );
        self.request("GET", path, &[("Accept", &accept)], &[])
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
        stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr(),
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        parse_response(&response)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Kill, then reap: the sandbox has no init to collect zombies.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response to a harness request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_response(response: &[u8]) -> io::Result<HttpResponse> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| error("HTTP response without header end"))?;
    let (head, rest) = response.split_at(split);
    let body = rest.get(4..).unwrap_or_default();
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| error("HTTP response without status"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = header(&headers, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut body: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| error("bad chunk"))?;
        let (size_line, rest) = body.split_at(line_end);
        let size = usize::from_str_radix(String::from_utf8_lossy(size_line).trim(), 16)
            .map_err(|_| error("bad chunk size"))?;
        let rest = rest.get(2..).ok_or_else(|| error("bad chunk"))?;
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or_else(|| error("short chunk"))?);
        body = rest
            .get(size.saturating_add(2)..)
            .ok_or_else(|| error("short chunk"))?;
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
    )
}

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An OCI image layout (OCI image-spec `image-layout.md`) being written.
#[derive(Debug)]
pub struct OciLayout {
    dir: PathBuf,
    manifests: Vec<serde_json::Value>,
}

impl OciLayout {
    /// An empty layout in `dir` (created).
    pub fn new(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir.join("blobs").join("sha256"))?;
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifests: Vec::new(),
        })
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a blob; returns its descriptor (`mediaType`, `digest`, `size`).
    pub fn blob(&self, media_type: &str, bytes: &[u8]) -> io::Result<serde_json::Value> {
        let digest = sha256_digest(bytes);
        let hex = digest.trim_start_matches("sha256:");
        fs::write(self.dir.join("blobs").join("sha256").join(hex), bytes)?;
        Ok(serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()}))
    }

    /// Stores a manifest under `tag` and rewrites `index.json`; returns its
    /// digest.
    pub fn manifest(&mut self, tag: &str, media_type: &str, bytes: &[u8]) -> io::Result<String> {
        self.blob(media_type, bytes)?;
        let digest = sha256_digest(bytes);
        self.manifests.push(serde_json::json!({
            "mediaType": media_type,
            "digest": digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        let index = serde_json::json!({"schemaVersion": 2, "manifests": self.manifests});
        fs::write(self.dir.join("index.json"), index.to_string())?;
        Ok(digest)
    }
}

/// A one-file POSIX tar archive (ustar), deterministic: mode 0644, owner 0,
/// mtime 0. The layer of [`write_test_image`].
pub fn tar_one_file(name: &str, content: &[u8]) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 512];
    let mut put = |offset: usize, field: &[u8]| {
        header
            .get_mut(offset..offset.saturating_add(field.len()))
            .map(|slot| slot.copy_from_slice(field))
            .ok_or_else(|| error("tar field out of range"))
    };
    if name.len() > 99 {
        return Err(error("tar name too long"));
    }
    put(0, name.as_bytes())?;
    put(100, b"0000644\0")?;
    put(108, b"0000000\0")?;
    put(116, b"0000000\0")?;
    put(124, format!("{:011o}\0", content.len()).as_bytes())?;
    put(136, b"00000000000\0")?;
    put(148, b"        ")?;
    put(156, b"0")?;
    put(257, b"ustar\0")?;
    put(263, b"00")?;
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header
        .get_mut(148..156)
        .ok_or_else(|| error("tar checksum out of range"))?
        .copy_from_slice(format!("{checksum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    let padding = (512 - content.len() % 512) % 512;
    tar.extend(std::iter::repeat_n(0u8, padding.saturating_add(1024)));
    Ok(tar)
}

/// Writes a small deterministic image (an OCI config and one layer holding
/// `/hello` with `content`) under `tag` in a new layout at `dir`; returns
/// the manifest digest. The same content always gives the same digest.
pub fn write_test_image(dir: &Path, tag: &str, content: &[u8]) -> io::Result<String> {
    let mut layout = OciLayout::new(dir)?;
    let layer_bytes = tar_one_file("hello", content)?;
    let layer = layout.blob("application/vnd.oci.image.layer.v1.tar", &layer_bytes)?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer_bytes)]},
    });
    let config = layout.blob(
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    )?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": [layer],
    });
    layout.manifest(tag, OCI_MANIFEST, manifest.to_string().as_bytes())
}

/// The Python of the tools venv `scripts/deps.sh` creates:
/// `$KEYWARD_TOOLS_VENV/bin/python`, else `target/tools-venv/bin/python`.
pub fn tools_python() -> PathBuf {
    let venv = std::env::var_os("KEYWARD_TOOLS_VENV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools-venv"),
        PathBuf::from,
    );
    venv.join("bin").join("python")
}

/// `scripts/sign-image.py`.
pub fn sign_image_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/sign-image.py")
}

fn run_signer(args: &[&std::ffi::OsStr]) -> io::Result<String> {
    let output = Command::new(tools_python())
        .arg(sign_image_script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| error(format!("running sign-image.py: {e}")))?;
    if !output.status.success() {
        return Err(error(format!(
            "sign-image.py failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Generates an EC P-256 key pair with `scripts/sign-image.py keygen`;
/// returns the private key path and the public key PEM.
pub fn generate_key(dir: &Path, name: &str) -> io::Result<(PathBuf, String)> {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub"));
    run_signer(&["keygen".as_ref(), private.as_os_str(), public.as_os_str()])?;
    Ok((private, fs::read_to_string(public)?))
}

impl Registry {
    /// Signs `digest` for `docker_reference` with each key
    /// (`scripts/sign-image.py sign`) and pushes the artifact with skopeo to
    /// `repository:sha256-<hex>.sig`. Returns the tag.
    pub fn push_simple_signature(
        &self,
        repository: &str,
        docker_reference: &str,
        digest: &str,
        keys: &[&Path],
    ) -> io::Result<String> {
        let name = format!("sig-{}", digest.replace(':', "-"));
        let layout = self.scratch(&name)?;
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "sign".as_ref(),
            "--reference".as_ref(),
            docker_reference.as_ref(),
            "--digest".as_ref(),
            digest.as_ref(),
            "--out".as_ref(),
            layout.as_os_str(),
        ];
        for key in keys {
            args.push("--key".as_ref());
            args.push(key.as_os_str());
        }
        let tag = run_signer(&args)?;
        self.skopeo_push(&layout, "sig", repository, &tag)?;
        Ok(tag)
    }
}

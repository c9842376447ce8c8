//! The model version id of a model directory, computed without a signature:
//! what `keyward launch --model-dir` checks against the `--model-digest` it
//! is about to record.
//!
//! # What it computes
//! The root digest OpenSSF model signing (PyPI `model-signing` 1.x) signs with
//! its default serialization (`model_signing sign` without options):
//!
//! - one resource per regular file, named by its `/`-separated path relative
//!   to the model directory, hashed with SHA-256 (`hashing.Config` default
//!   `use_file_serialization(hashing_algorithm="sha256")`);
//! - git files (`.git`, `.gitattributes`, `.github`, `.gitignore`) and the
//!   caller's ignore paths left out, a path ignoring everything beneath it
//!   (`ignore_git_paths=True`, `ignore_paths`);
//! - resources in the order `Manifest.resource_descriptors` yields them:
//!   sorted by `PurePosixPath`, which compares the lists of path components,
//!   not the joined strings (`a/b` sorts before `a.b`, although `/` > `.`);
//! - root digest = SHA-256 over the concatenated raw 32-byte file digests in
//!   that order (`_signing/signing.py`, the in-toto subject digest), written
//!   as the model version id `sha256:<64 lower-case hex>`.
//!
//! # What it does not do
//! No I/O: the caller walks the directory and hashes each file (in
//! `keyward-vault`), then hands over (path, SHA-256) pairs. No shard
//! serialization and no other hash types: a launcher compares against what a
//! release engineer registered with the default settings. No signature: this
//! says which bytes a directory holds, not who vouched for them; the vault
//! checks that the digest is a registered, signed model version.
//!
//! # Why not [`ModelHasher`](super::model::ModelHasher)
//! `ModelHasher` is built from a verified signature (its serialization and
//! ignore paths are the signed ones) and only compares; it has no public
//! constructor and does not expose the root digest. The ignore-path and path
//! rules here are the same as its rules.

use std::collections::BTreeMap;

use super::dsse::to_hex;
use super::model::{MAX_IGNORE_PATHS, MAX_MODEL_FILES, MAX_MODEL_PATH_LEN, ModelError};

/// Git files `model_signing` ignores by default (`ignore_git_paths`); the
/// same list as [`super::model`]'s verifier.
const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// Accumulates (path, SHA-256) pairs of a model's files and yields the model
/// version id. Feed it while walking the directory; ask
/// [`ModelDigester::is_ignored`] before descending into a directory or
/// hashing a file.
#[derive(Debug)]
pub struct ModelDigester {
    ignores: Vec<Vec<String>>,
    files: BTreeMap<Vec<String>, [u8; 32]>,
}

impl ModelDigester {
    /// A digester ignoring git files and `ignore_paths` (relative to the
    /// model directory, `/`-separated). An ignore path that is empty or
    /// absolute is refused ([`ModelError::InvalidIgnorePath`]); one that
    /// cannot name a file in the directory (with `..`) ignores nothing, as
    /// in `model_signing`.
    pub fn new(ignore_paths: &[&str]) -> Result<Self, ModelError> {
        if ignore_paths.len().saturating_add(GIT_PATHS.len()) > MAX_IGNORE_PATHS {
            return Err(ModelError::TooMany {
                what: "ignore paths",
                max: MAX_IGNORE_PATHS,
            });
        }
        for path in ignore_paths {
            if path.is_empty() || path.starts_with('/') || path.len() > MAX_MODEL_PATH_LEN {
                return Err(ModelError::InvalidIgnorePath {
                    path: path.chars().take(200).collect(),
                });
            }
        }
        let ignores = ignore_paths
            .iter()
            .copied()
            .chain(GIT_PATHS)
            .map(|path| {
                path.split('/')
                    .filter(|c| !c.is_empty() && *c != ".")
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|components| !components.is_empty() && !components.iter().any(|c| c == ".."))
            .collect();
        Ok(Self {
            ignores,
            files: BTreeMap::new(),
        })
    }

    /// True when `path` (a file or a directory) is ignored: an ignore path
    /// equals it or one of its ancestors.
    pub fn is_ignored(&self, path: &str) -> bool {
        let components: Vec<&str> = path.split('/').collect();
        self.ignores.iter().any(|ignore| {
            ignore.len() <= components.len()
                && ignore
                    .iter()
                    .zip(&components)
                    .all(|(a, b)| a.as_str() == *b)
        })
    }

    /// Records the SHA-256 of the file at `path` (normalized: relative, no
    /// empty, `.` or `..` components). Ignored paths are skipped and return
    /// `Ok(false)`.
    pub fn add_file(&mut self, path: &str, sha256: [u8; 32]) -> Result<bool, ModelError> {
        let valid = !path.is_empty()
            && path.len() <= MAX_MODEL_PATH_LEN
            && path
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if !valid {
            return Err(ModelError::InvalidPath {
                path: path.chars().take(200).collect(),
            });
        }
        if self.is_ignored(path) {
            return Ok(false);
        }
        if self.files.len() >= MAX_MODEL_FILES {
            return Err(ModelError::TooMany {
                what: "files",
                max: MAX_MODEL_FILES,
            });
        }
        let key: Vec<String> = path.split('/').map(str::to_owned).collect();
        if self.files.insert(key, sha256).is_some() {
            return Err(ModelError::DuplicateFile {
                path: path.to_owned(),
            });
        }
        Ok(true)
    }

    /// Number of files recorded (ignored ones excluded).
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The model version id, `sha256:<root digest hex>`. The map's key order
    /// (lists of components, compared element by element as strings, i.e.
    /// by Unicode code point) is `PurePosixPath` order.
    pub fn finish(self) -> String {
        let mut root = ring::digest::Context::new(&ring::digest::SHA256);
        for digest in self.files.values() {
            root.update(digest);
        }
        format!("sha256:{}", to_hex(root.finish().as_ref()))
    }
}

/// The model version id (`sha256:<hex>`) of a model given as (relative path,
/// SHA-256 of the file's contents) pairs, in any order, with git files and
/// `ignore` left out. See [`ModelDigester`].
pub fn digest_model_files<'a>(
    files: impl IntoIterator<Item = (&'a str, [u8; 32])>,
    ignore: &[&str],
) -> Result<String, ModelError> {
    let mut digester = ModelDigester::new(ignore)?;
    for (path, sha256) in files {
        digester.add_file(path, sha256)?;
    }
    Ok(digester.finish())
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn sha256(bytes: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
        out
    }

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/model-signing")
    }

    /// Every regular file under `dir`, as (relative path, contents).
    fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                read_tree(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_str().unwrap();
                out.push((relative.to_owned(), std::fs::read(&path).unwrap()));
            }
        }
    }

    fn committed_id(signature: &str) -> String {
        let text = std::fs::read_to_string(testdata().join("signatures/root-digests.txt")).unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(signature)?.strip_prefix(' '))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn digest_of(files: &[(String, Vec<u8>)], ignore: &[&str]) -> Result<String, ModelError> {
        digest_model_files(files.iter().map(|(p, c)| (p.as_str(), sha256(c))), ignore)
    }

    fn model_files() -> Vec<(String, Vec<u8>)> {
        let root = testdata().join("model");
        let mut files = Vec::new();
        read_tree(&root, &root, &mut files);
        files
    }

    #[test]
    fn matches_model_signing_root_digest() {
        let files = model_files();
        // The directory really holds git files, which must be ignored.
        assert!(files.iter().any(|(p, _)| p == ".gitignore"));
        assert!(files.iter().any(|(p, _)| p.starts_with(".github/")));
        let id = digest_of(&files, &["README.md"]).unwrap();
        assert_eq!(id, committed_id("key-v11.sig"));
        // Input order does not matter.
        let mut reversed = files.clone();
        reversed.reverse();
        assert_eq!(digest_of(&reversed, &["README.md"]).unwrap(), id);
    }

    #[test]
    fn one_changed_byte_changes_the_digest() {
        let mut files = model_files();
        let expected = committed_id("key-v11.sig");
        let weights = files.iter_mut().find(|(p, _)| p == "weights.bin").unwrap();
        weights.1[100] ^= 1;
        let id = digest_of(&files, &["README.md"]).unwrap();
        assert_ne!(id, expected);
        assert!(id.starts_with("sha256:") && id.len() == 71);
    }

    #[test]
    fn ignored_and_unignored_files() {
        let files = model_files();
        let expected = committed_id("key-v11.sig");
        // Without the ignore, README.md is part of the model.
        assert_ne!(digest_of(&files, &[]).unwrap(), expected);
        // Ignoring a directory ignores what is beneath it.
        let mut more = files.clone();
        more.push(("extra/a.bin".to_owned(), b"x".to_vec()));
        assert_ne!(digest_of(&more, &["README.md"]).unwrap(), expected);
        assert_eq!(digest_of(&more, &["README.md", "extra"]).unwrap(), expected);
        // A new git file is ignored like the others.
        more.push((".git/HEAD".to_owned(), b"ref".to_vec()));
        assert_eq!(
            digest_of(&more, &["README.md", "./extra/"]).unwrap(),
            expected
        );
    }

    #[test]
    fn resources_sorted_by_path_components() {
        let (a, b) = (sha256(b"in a/b"), sha256(b"in a.b"));
        let id = digest_model_files([("a.b", b), ("a/b", a)], &[]).unwrap();
        // PurePosixPath order: ["a", "b"] < ["a.b"], so a/b comes first even
        // though the string "a.b" < "a/b".
        let mut concat = a.to_vec();
        concat.extend_from_slice(&b);
        assert_eq!(id, format!("sha256:{}", to_hex(&sha256(&concat))));
        let mut string_order = b.to_vec();
        string_order.extend_from_slice(&a);
        assert_ne!(id, format!("sha256:{}", to_hex(&sha256(&string_order))));
    }

    #[test]
    fn empty_model_is_hash_of_nothing() {
        let id = digest_model_files([], &[]).unwrap();
        assert_eq!(id, format!("sha256:{}", to_hex(&sha256(b""))));
    }

    #[test]
    fn invalid_paths_are_refused() {
        for bad in ["", "/abs", "a//b", "a/./b", "../up", "a/", "x/.."] {
            let err = digest_model_files([(bad, [0u8; 32])], &[]).unwrap_err();
            assert!(
                matches!(&err, ModelError::InvalidPath { path } if path == bad),
                "{bad:?}: {err:?}"
            );
        }
        let long = "a".repeat(MAX_MODEL_PATH_LEN + 1);
        assert!(matches!(
            digest_model_files([(long.as_str(), [0u8; 32])], &[]),
            Err(ModelError::InvalidPath { .. })
        ));
    }

    #[test]
    fn duplicate_file_is_refused() {
        let err =
            digest_model_files([("w.bin", [1u8; 32]), ("w.bin", [2u8; 32])], &[]).unwrap_err();
        assert!(matches!(err, ModelError::DuplicateFile { path } if path == "w.bin"));
    }

    #[test]
    fn invalid_ignore_paths_are_refused() {
        for bad in ["", "/etc"] {
            let err = ModelDigester::new(&[bad]).unwrap_err();
            assert!(
                matches!(&err, ModelError::InvalidIgnorePath { path } if path == bad),
                "{bad:?}: {err:?}"
            );
        }
        let many = vec!["x"; MAX_IGNORE_PATHS];
        assert!(matches!(
            ModelDigester::new(&many),
            Err(ModelError::TooMany {
                what: "ignore paths",
                ..
            })
        ));
        // `..` ignores nothing (model_signing joins it without resolving).
        let digester = ModelDigester::new(&["../weights.bin"]).unwrap();
        assert!(!digester.is_ignored("weights.bin"));
        assert!(digester.is_ignored(".git/config"));
    }
}

//! Walking a model directory into `keyward-attest`'s model hasher, the way
//! OpenSSF model-signing serializes a model: every regular file, by its
//! `/`-separated path relative to the model directory, streamed in chunks.
//!
//! This is I/O, so it lives here and not in `keyward-attest`, which only
//! hashes the bytes it is handed.

use std::io::Read;
use std::path::{Path, PathBuf};

use keyward_attest::sigstore::model::{ModelError, ModelHasher};

/// Deepest directory nesting followed.
pub const MAX_DEPTH: usize = 64;
/// Read buffer for streaming file contents.
const CHUNK: usize = 1 << 20;

/// Why a model directory could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelDirError {
    /// Reading the directory or a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A path is not UTF-8, so it cannot name a signed resource.
    #[error("{path}: file name is not UTF-8")]
    NonUtf8Path {
        /// The path.
        path: PathBuf,
    },
    /// A symbolic link: model-signing refuses them by default, and following
    /// one could hash files outside the model.
    #[error("{path}: symbolic links are not followed")]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("{path}: directories nested deeper than {MAX_DEPTH}")]
    TooDeep {
        /// The path.
        path: PathBuf,
    },
    /// The hasher refused a path (too many files, invalid name, …).
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// What a model directory walk hands each file to: [`ModelHasher`] (to
/// check a signature) or any other digest of the same serialization (the
/// launcher's, which has a digest to compare and no signature).
pub trait ModelFiles {
    /// True when `relative` (a file or a directory) is not part of the model.
    fn is_ignored(&self, relative: &str) -> bool;
    /// Takes the regular file at `relative` (`/`-separated, relative to the
    /// model directory); `path` is where to read it.
    fn file(&mut self, relative: &str, path: &Path) -> Result<(), ModelDirError>;
}

impl ModelFiles for ModelHasher {
    fn is_ignored(&self, relative: &str) -> bool {
        ModelHasher::is_ignored(self, relative)
    }

    fn file(&mut self, relative: &str, path: &Path) -> Result<(), ModelDirError> {
        let Some(mut file_hasher) = ModelHasher::file(self, relative)? else {
            return Ok(());
        };
        read_chunks(path, |chunk| file_hasher.update(chunk))?;
        file_hasher.finish();
        Ok(())
    }
}

/// Feeds every regular file under `root` into `hasher`, in sorted order.
pub fn hash_model_dir(root: &Path, hasher: &mut ModelHasher) -> Result<(), ModelDirError> {
    walk_model_dir(root, hasher)
}

/// Hands every regular file under `root` that `files` does not ignore to
/// `files`, in sorted path order. Symbolic links are refused unless
/// ignored; nesting is capped at [`MAX_DEPTH`]; other file types (sockets,
/// devices) are skipped.
pub fn walk_model_dir(root: &Path, files: &mut impl ModelFiles) -> Result<(), ModelDirError> {
    walk(root, root, 0, files)
}

/// Streams the file at `path` to `chunk`, [`CHUNK`] bytes at a time.
pub fn read_chunks(path: &Path, mut chunk: impl FnMut(&[u8])) -> Result<(), ModelDirError> {
    let io = |source| ModelDirError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buffer).map_err(io)?;
        match buffer.get(..n) {
            Some(bytes) if !bytes.is_empty() => chunk(bytes),
            _ => return Ok(()),
        }
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    files: &mut impl ModelFiles,
) -> Result<(), ModelDirError> {
    if depth > MAX_DEPTH {
        return Err(ModelDirError::TooDeep {
            path: dir.to_owned(),
        });
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ModelDirError::Io { path, source }
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).map_err(io(&path))?;
        let relative = path
            .strip_prefix(root)
            .ok()
            .and_then(Path::to_str)
            .ok_or_else(|| ModelDirError::NonUtf8Path { path: path.clone() })?
            .to_owned();
        if files.is_ignored(&relative) {
            continue;
        }
        if meta.file_type().is_symlink() {
            return Err(ModelDirError::Symlink { path });
        }
        if meta.is_dir() {
            walk(root, &path, depth.saturating_add(1), files)?;
        } else if meta.is_file() {
            files.file(&relative, &path)?;
        }
    }
    Ok(())
}

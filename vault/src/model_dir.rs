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

/// Feeds every regular file under `root` into `hasher`, in sorted order.
pub fn hash_model_dir(root: &Path, hasher: &mut ModelHasher) -> Result<(), ModelDirError> {
    walk(root, root, 0, hasher)
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    hasher: &mut ModelHasher,
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
        if meta.file_type().is_symlink() {
            if hasher.is_ignored(&relative) {
                continue;
            }
            return Err(ModelDirError::Symlink { path });
        }
        if meta.is_dir() {
            if !hasher.is_ignored(&relative) {
                walk(root, &path, depth + 1, hasher)?;
            }
            continue;
        }
        if !meta.is_file() {
            continue;
        }
        let Some(mut file_hasher) = hasher.file(&relative)? else {
            continue;
        };
        let mut file = std::fs::File::open(&path).map_err(io(&path))?;
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buffer).map_err(io(&path))?;
            let Some(chunk) = buffer.get(..n) else { break };
            if chunk.is_empty() {
                break;
            }
            file_hasher.update(chunk);
        }
        file_hasher.finish();
    }
    Ok(())
}

//! Where MNIST comes from: an explicit directory, the environment, the cache, the Hub.

use super::file::MnistFile;
use super::load::{find_file, has_all_files};
use super::origin::{DataOrigin, ResolvedDir};
use crate::error::{DataError, Result};
use std::path::{Path, PathBuf};

/// Environment variable naming a directory that holds the four MNIST IDX files (or holds
/// them in a `mnist/` subdirectory).
pub const DATA_DIR_ENV: &str = "VAEKIT_DATA_DIR";

/// Environment variable overriding vaekit's cache directory (default
/// `$XDG_CACHE_HOME/vaekit`, else `$HOME/.cache/vaekit`).
pub const CACHE_DIR_ENV: &str = "VAEKIT_CACHE_DIR";

/// vaekit's cache directory: `$VAEKIT_CACHE_DIR`, else `$XDG_CACHE_HOME/vaekit`, else
/// `$HOME/.cache/vaekit`; `None` when none of these is set.
pub fn vaekit_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var(CACHE_DIR_ENV)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("vaekit")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("vaekit")))
}

/// What the resolution may look at; [`resolve_mnist_dir`] fills it from the process
/// environment, tests fill it by hand.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sources {
    pub explicit: Option<PathBuf>,
    pub env_dir: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub hub: bool,
}

/// Finds MNIST, in this order:
/// 1. `explicit`, when given: it must hold the four files (no fallback);
/// 2. `$VAEKIT_DATA_DIR`, when set: it (or its `mnist/` subdirectory) must hold them;
/// 3. vaekit's cache (`<cache>/mnist`), filled by an earlier Hub download;
/// 4. with the `hub` feature: the Hugging Face Hub cache (`$HF_HOME`), converted to IDX
///    into vaekit's cache without touching the network;
/// 5. with the `hub` feature: a download of `ylecun/mnist` from the Hub, converted likewise.
///
/// # Errors
/// [`DataError::MissingFile`] when an explicit or environment directory lacks a file;
/// [`DataError::NotFound`], listing every step and what to do, when nothing is found.
pub fn resolve_mnist_dir(explicit: Option<&Path>) -> Result<ResolvedDir> {
    let sources = Sources {
        explicit: explicit.map(Path::to_path_buf),
        env_dir: std::env::var_os(DATA_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        cache_dir: vaekit_cache_dir(),
        hub: cfg!(feature = "hub"),
    };
    resolve(&sources)
}

pub(crate) fn resolve(s: &Sources) -> Result<ResolvedDir> {
    if let Some(dir) = &s.explicit {
        require_all(dir)?;
        return Ok(ResolvedDir {
            dir: dir.clone(),
            origin: DataOrigin::Explicit,
        });
    }
    if let Some(dir) = &s.env_dir {
        let nested = dir.join("mnist");
        let dir = if !has_all_files(dir) && has_all_files(&nested) {
            nested
        } else {
            dir.clone()
        };
        require_all(&dir).map_err(|e| DataError::NotFound {
            guidance: format!("${DATA_DIR_ENV} is set, but {e}"),
        })?;
        return Ok(ResolvedDir {
            dir,
            origin: DataOrigin::Environment,
        });
    }
    let cached = s.cache_dir.as_ref().map(|c| c.join("mnist"));
    if let Some(dir) = cached.as_ref().filter(|d| has_all_files(d)) {
        return Ok(ResolvedDir {
            dir: dir.clone(),
            origin: DataOrigin::Cache,
        });
    }
    #[cfg(feature = "hub")]
    if s.hub
        && let Some(dir) = &cached
    {
        return super::hub::fetch(dir);
    }
    Err(DataError::NotFound {
        guidance: guidance(s, cached.as_deref()),
    })
}

fn require_all(dir: &Path) -> Result<()> {
    MnistFile::ALL
        .iter()
        .try_for_each(|&role| find_file(dir, role).map(|_| ()))
}

fn guidance(s: &Sources, cached: Option<&Path>) -> String {
    let cache = match cached {
        Some(d) => format!("{} holds no MNIST files", d.display()),
        None => {
            format!("no cache directory (${CACHE_DIR_ENV}, $XDG_CACHE_HOME and $HOME are unset)")
        }
    };
    let hub = if !s.hub {
        "this build has no `hub` feature".to_string()
    } else if cached.is_none() {
        "nowhere to store a download (no cache directory)".to_string()
    } else {
        "not reached".to_string()
    };
    let names: Vec<&str> = MnistFile::ALL.iter().map(|f| f.file_name()).collect();
    format!(
        "MNIST not found. Tried, in order:\n  \
         1. an explicit directory (train-iaf --data-dir DIR): not given\n  \
         2. ${DATA_DIR_ENV}: not set\n  \
         3. the cache: {cache}\n  \
         4. the Hugging Face Hub (ylecun/mnist): {hub}\n\
         To fix it, do one of:\n  \
         - put the four IDX files ({}; gzipped or not) in a directory and pass --data-dir DIR, \
           or set {DATA_DIR_ENV}=DIR;\n  \
         - on a machine with a network, build with `--features hub` (e.g. \
           `cargo run --release -p train-iaf --features hub -- data`) to download them once \
           into the cache.",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_fixture(dir: &Path, gz: bool) {
        crate::write_synthetic_mnist(dir, 2, 2, gz).unwrap();
    }

    #[test]
    fn order_explicit_env_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, cache) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("cache"),
        );
        write_fixture(&a, true);
        write_fixture(&b.join("mnist"), false);
        write_fixture(&cache.join("mnist"), false);
        let all = Sources {
            explicit: Some(a.clone()),
            env_dir: Some(b.clone()),
            cache_dir: Some(cache.clone()),
            hub: false,
        };
        assert_eq!(
            resolve(&all).unwrap(),
            ResolvedDir {
                dir: a.clone(),
                origin: DataOrigin::Explicit
            }
        );
        let no_explicit = Sources {
            explicit: None,
            ..all.clone()
        };
        assert_eq!(
            resolve(&no_explicit).unwrap(),
            ResolvedDir {
                dir: b.join("mnist"),
                origin: DataOrigin::Environment
            }
        );
        let cache_only = Sources {
            env_dir: None,
            ..no_explicit.clone()
        };
        assert_eq!(
            resolve(&cache_only).unwrap(),
            ResolvedDir {
                dir: cache.join("mnist"),
                origin: DataOrigin::Cache
            }
        );
    }

    #[test]
    fn explicit_or_env_without_files_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let s = Sources {
            explicit: Some(empty.clone()),
            ..Default::default()
        };
        let msg = resolve(&s).unwrap_err().to_string();
        assert!(
            msg.contains("train-images-idx3-ubyte: file not found"),
            "{msg}"
        );
        let s = Sources {
            env_dir: Some(empty),
            ..Default::default()
        };
        let msg = resolve(&s).unwrap_err().to_string();
        assert!(msg.contains("$VAEKIT_DATA_DIR is set, but"), "{msg}");
    }

    #[test]
    fn nothing_found_says_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Sources {
            cache_dir: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        let msg = resolve(&s).unwrap_err().to_string();
        for needle in [
            "MNIST not found",
            "--data-dir DIR",
            "VAEKIT_DATA_DIR=DIR",
            "--features hub",
            "train-images-idx3-ubyte",
        ] {
            assert!(msg.contains(needle), "missing {needle:?} in:\n{msg}");
        }
    }
}

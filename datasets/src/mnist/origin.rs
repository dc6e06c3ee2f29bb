//! Where a copy of MNIST was found.

use serde::Serialize;
use std::path::PathBuf;

/// Which step of the resolution order found the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DataOrigin {
    /// The directory the caller named.
    Explicit,
    /// The directory in `$VAEKIT_DATA_DIR`.
    Environment,
    /// IDX files already in vaekit's cache (converted from an earlier Hub download).
    Cache,
    /// Parquet files already in the Hugging Face Hub cache, converted now.
    HubCache,
    /// Downloaded from the Hugging Face Hub now.
    Download,
}

/// A directory holding the four MNIST files, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedDir {
    /// The directory.
    pub dir: PathBuf,
    /// The step that found it.
    pub origin: DataOrigin,
}

//! The typed error of every loader in this crate.

use std::path::PathBuf;

/// Why a data set could not be loaded. Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A required file is absent.
    #[error("{}: file not found (looked for {})", .expected.display(), tried_list(.tried))]
    MissingFile {
        /// The canonical path of the file that was expected.
        expected: PathBuf,
        /// Every name that was tried.
        tried: Vec<PathBuf>,
    },
    /// The file exists but could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{}: corrupt or truncated gzip stream: {source}", .path.display())]
    CorruptGzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: std::io::Error,
    },
    /// The IDX magic number is not the one this file must have.
    #[error(
        "{}: bad IDX magic number 0x{found:08x}, expected 0x{expected:08x} (unsigned bytes, {} dimension(s)); not an MNIST {} file",
        .path.display(), expected & 0xff, .kind
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number required.
        expected: u32,
        /// The magic number read.
        found: u32,
        /// What the file should hold ("images" or "labels").
        kind: &'static str,
    },
    /// The file is shorter than its header promises.
    #[error("{}: truncated: {what} needs {expected} bytes, the file holds {found}", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Which part is cut short ("header", "data").
        what: &'static str,
        /// Bytes required.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// The file is longer than its header promises.
    #[error("{}: {found} bytes of data where the header promises {expected}", .path.display())]
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Bytes promised.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// Dimensions that cannot be MNIST's.
    #[error("{}: {reason}", .path.display())]
    BadDims {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Images and labels disagree on the number of examples.
    #[error(
        "{} holds {n_images} images but {} holds {n_labels} labels",
        .images.display(), .labels.display()
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Its count.
        n_images: usize,
        /// The label file.
        labels: PathBuf,
        /// Its count.
        n_labels: usize,
    },
    /// A label outside 0..=9.
    #[error("{}: label {value} at index {index} is not a digit 0-9", .path.display())]
    BadLabel {
        /// The label file.
        path: PathBuf,
        /// Position of the bad label.
        index: usize,
        /// The value read.
        value: u8,
    },
    /// No data set could be found or fetched; the message says what to do.
    #[error("{guidance}")]
    NotFound {
        /// What was tried and how to provide the data.
        guidance: String,
    },
    /// The Hugging Face Hub download or its conversion failed.
    #[error("Hugging Face Hub: {message}")]
    Hub {
        /// What failed.
        message: String,
    },
    /// An invalid argument (empty batch, validation split larger than the set, ...).
    #[error("{0}")]
    Config(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle::Error),
}

fn tried_list(tried: &[PathBuf]) -> String {
    let names: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// `Result` with a [`DataError`].
pub type Result<T> = std::result::Result<T, DataError>;

//! vaekit's workspace end-to-end tests (in `tests/`), and the helpers they share.

use std::path::PathBuf;

/// Environment variable naming a directory with the real MNIST files; `.ci/run` points it at
/// `../shared/datasets/mnist`. Tests that need real MNIST skip, saying why, when it is unset.
pub const REAL_MNIST_ENV: &str = "VAEKIT_TEST_MNIST_DIR";

/// The real-MNIST directory from [`REAL_MNIST_ENV`], or `None` after printing why the calling
/// test is skipped.
pub fn real_mnist_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os(REAL_MNIST_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            eprintln!(
                "skipping {test}: set {REAL_MNIST_ENV} to a directory holding the MNIST IDX files"
            );
            None
        }
    }
}

//! What the binary's tests share: running `train-iaf` as a user does, a small synthetic
//! MNIST, reading its outputs.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `train-iaf args` with `envs` set and `VAEKIT_DATA_DIR` unset; its output, whatever the
/// exit status.
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train-iaf"))
        .args(args)
        .env_remove("VAEKIT_DATA_DIR")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

/// [`run`], asserting that it succeeds (the message shows its stderr).
pub fn train_iaf_env(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let out = run(args, envs);
    assert!(
        out.status.success(),
        "train-iaf {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`train_iaf_env`] with no extra environment.
pub fn train_iaf(args: &[&str]) -> Output {
    train_iaf_env(args, &[])
}

/// A synthetic MNIST directory of 80 training and 30 test images under `dir`.
pub fn synthetic_mnist(dir: &Path) -> PathBuf {
    let data = dir.join("mnist");
    vaekit_datasets::write_synthetic_mnist(&data, 80, 30, true).unwrap();
    data
}

/// Whether `path` starts like a PNG file.
pub fn is_png(path: &Path) -> bool {
    std::fs::read(path)
        .map(|b| b.starts_with(&[0x89, b'P', b'N', b'G']))
        .unwrap_or(false)
}

/// The JSON file at `path`.
pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

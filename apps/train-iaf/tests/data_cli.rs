//! `train-iaf data` as a user runs it.
#![allow(clippy::unwrap_used)] // tests panic on purpose

use std::path::Path;
use std::process::{Command, Output};
use vaekit_datasets::write_synthetic_mnist;

fn train_iaf(args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_train-iaf"));
    cmd.args(args).env_remove("VAEKIT_DATA_DIR");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("train-iaf runs")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn reports_a_fixture_and_flags_it_non_canonical() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic_mnist(tmp.path(), 30, 10, true).unwrap();
    let dir = tmp.path().to_str().unwrap();
    let out = train_iaf(&["data", "--data-dir", dir, "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["train"]["count"], 30);
    assert_eq!(v["test"]["count"], 10);
    assert_eq!(v["origin"], "explicit");
    assert_eq!(v["canonical"], false);
    let out = train_iaf(&["data", "--data-dir", dir, "--require-canonical"], &[]);
    assert_eq!(out.status.code(), Some(2));
    // Text output.
    let out = train_iaf(&["data", "--data-dir", dir], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("train     30 images of 28x28"), "{text}");
}

#[test]
fn truncated_file_exits_non_zero_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic_mnist(tmp.path(), 30, 10, true).unwrap();
    let path = tmp.path().join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let out = train_iaf(
        &["data", "--data-dir", tmp.path().to_str().unwrap(), "--json"],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("train-images-idx3-ubyte.gz: corrupt or truncated gzip stream"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn resolution_uses_the_environment_then_explains() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic_mnist(&data.join("mnist"), 20, 10, false).unwrap();
    let cache = tmp.path().join("cache");
    let out = train_iaf(
        &["data", "--json"],
        &[("VAEKIT_DATA_DIR", &data), ("VAEKIT_CACHE_DIR", &cache)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json(&out)["origin"], "environment");

    let out = train_iaf(&["data"], &[("VAEKIT_CACHE_DIR", &cache)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("MNIST not found") && err.contains("--data-dir DIR"),
        "{err}"
    );
}

#[test]
fn real_mnist_matches_the_canonical_figures() {
    let Some(dir) = std::env::var_os("VAEKIT_TEST_MNIST_DIR").filter(|v| !v.is_empty()) else {
        eprintln!(
            "skipping real_mnist_matches_the_canonical_figures: VAEKIT_TEST_MNIST_DIR is unset"
        );
        return;
    };
    let out = train_iaf(
        &[
            "data",
            "--data-dir",
            dir.to_str().unwrap(),
            "--json",
            "--require-canonical",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["train"]["count"], 60_000);
    assert_eq!(v["test"]["count"], 10_000);
    let mean = v["train"]["mean_intensity"].as_f64().unwrap();
    assert!((mean - 0.1307).abs() < 1e-4, "{mean}");
    assert_eq!(v["canonical"], true);
}

//! `train-iaf train -> resume -> eval -> sample` on a small synthetic MNIST, as a user runs
//! it: every output file present and valid, and resume continues the same run.
#![allow(clippy::unwrap_used)]

mod common;

use common::{is_png, json, train_iaf};
use std::path::Path;
use std::process::Command;
use vaekit_datasets::write_synthetic_mnist;

#[test]
fn train_resume_eval_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    write_synthetic_mnist(&data, 80, 30, true).unwrap();
    let run = tmp.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let out = train_iaf(&[
        "train",
        "--preset",
        "iwae-dense",
        "--data-dir",
        d,
        "--out",
        r,
        "--epochs",
        "2",
        "--is-samples",
        "8",
        "--k",
        "3",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("epoch     2/2") && text.contains("IS-8 NLL"),
        "{text}"
    );
    for file in [
        "config.json",
        "metrics.jsonl",
        "results.json",
        "samples.png",
        "reconstructions.png",
        "curves.png",
        "checkpoints/epoch-000002.json",
    ] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    for png in ["samples.png", "reconstructions.png", "curves.png"] {
        assert!(is_png(&run.join(png)), "{png} is not a PNG");
    }
    let cfg = json(&run.join("config.json"));
    assert_eq!(cfg["objective"]["objective"]["kind"], "iwae");
    let results = json(&run.join("results.json"));
    assert_eq!(results["epochs"], 2);
    assert!(results["is_nll"].as_f64().unwrap().is_finite());
    // A second train into the same directory is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
        .args(["train", "--data-dir", d, "--out", r])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a run"));
    // Resume to 3 epochs: one more line of metrics.
    train_iaf(&["resume", "--run", r, "--epochs", "3"]);
    let lines = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let epochs: Vec<u64> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(epochs, vec![1, 2, 3]);
    assert_eq!(json(&run.join("results.json"))["epochs"], 3);
    // Eval and sample from the checkpoint.
    let out = train_iaf(&["eval", "--run", r, "--is-samples", "5", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["epochs"], 3);
    assert!(run.join("eval-is5.json").exists());
    // HAIS from the full posterior and BDMC on simulated points, on 4 test images.
    let out = train_iaf(&[
        "eval",
        "--run",
        r,
        "--is-samples",
        "0",
        "--limit-test",
        "4",
        "--hais-steps",
        "5",
        "--hais-leapfrog",
        "2",
        "--hais-chains",
        "3",
        "--bdmc",
        "2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["test_points"], 4);
    assert!(v.get("is_nll").is_none());
    assert!(v["hais"]["nll"].as_f64().unwrap().is_finite());
    assert_eq!(v["hais"]["config"]["start"], "posterior");
    assert!(v["hais"]["leapfrog_steps_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(v["bdmc"]["config"]["start"], "encoder");
    let (lower, upper) = (
        v["bdmc"]["lower"].as_f64().unwrap(),
        v["bdmc"]["upper"].as_f64().unwrap(),
    );
    assert!((v["bdmc"]["gap"].as_f64().unwrap() - (upper - lower)).abs() < 1e-9);
    // BDMC alone: the test set skipped.
    let out = train_iaf(&[
        "eval",
        "--run",
        r,
        "--is-samples",
        "0",
        "--limit-test",
        "0",
        "--hais-steps",
        "3",
        "--hais-chains",
        "2",
        "--bdmc",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("hais").is_none() && v["bdmc"]["gap"].as_f64().is_some());
    let results = json(&run.join("results.json"));
    assert_eq!(results["hais"]["test_points"], 4);
    assert!(results["bdmc"]["gap"].as_f64().is_some());
    assert!(
        results["is_nll"].as_f64().is_some(),
        "training results kept"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
        .args([
            "eval",
            "--run",
            r,
            "--is-samples",
            "0",
            "--hais-steps",
            "3",
            "--hais-start",
            "flow",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("prior, encoder or posterior"));
    std::fs::remove_file(run.join("samples.png")).unwrap();
    train_iaf(&["sample", "--run", r]);
    assert!(is_png(&run.join("samples.png")));
    // A run that crashed before its first checkpoint resumes from epoch 0.
    std::fs::remove_dir_all(run.join("checkpoints")).unwrap();
    std::fs::remove_file(run.join("metrics.jsonl")).unwrap();
    let out = train_iaf(&["resume", "--run", r, "--epochs", "1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("starting from epoch 0"));
    assert_eq!(json(&run.join("results.json"))["epochs"], 1);
}

/// A time budget stops training before an epoch that would end past it, then the run
/// finishes (pictures, results) as usual; the budget is recorded in `config.json`.
#[test]
fn time_budget_stops_training_and_finishes_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    write_synthetic_mnist(&data, 40, 20, true).unwrap();
    let run = tmp.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    // 0.0001 min = 6 ms: the first epoch runs (no epoch time is known yet), the second
    // would end past the budget.
    let out = train_iaf(&[
        "train",
        "--preset",
        "iwae-dense",
        "--data-dir",
        d,
        "--out",
        r,
        "--epochs",
        "50",
        "--is-samples",
        "4",
        "--time-budget",
        "0.0001",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stopping after epoch 1"), "{text}");
    assert_eq!(json(&run.join("results.json"))["epochs"], 1);
    assert!(is_png(&run.join("samples.png")));
    assert_eq!(
        json(&run.join("config.json"))["time_budget_minutes"],
        0.0001
    );
    // A bad budget is refused before training.
    let bad = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
        .args(["resume", "--run", r, "--time-budget", "0"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--time-budget"));
}

#[test]
fn bad_configurations_fail_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
        .args([
            "train",
            "--preset",
            "nope",
            "--out",
            tmp.path().join("r").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown preset"));
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "preset = 3").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
        .args([
            "train",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            tmp.path().join("r2").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`preset` must be a preset's name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
        .args(["resume", "--run", tmp.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a run directory"));
}

/// The `metrics.jsonl` lines of a run without their wall times.
fn metrics_without_time(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("seconds");
            v
        })
        .collect()
}

#[test]
fn discrete_latents_train_and_resume_identically_with_every_estimator_state() {
    // NVIL keeps moving averages, RWS a second optimizer: both must survive a resume.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    write_synthetic_mnist(&data, 60, 20, true).unwrap();
    let d = data.to_str().unwrap();
    for (estimator, latent) in [("nvil", "bernoulli:12,8"), ("rws", "categorical:3x4")] {
        let whole = tmp.path().join(format!("{estimator}-whole"));
        let split = tmp.path().join(format!("{estimator}-split"));
        let common = [
            "--preset",
            "sbn",
            "--estimator",
            estimator,
            "--latent",
            latent,
            "--data-dir",
            d,
            "--is-samples",
            "4",
            "--batch-size",
            "10",
            "--limit-test",
            "5",
        ];
        let mut args = vec!["train", "--out", whole.to_str().unwrap(), "--epochs", "2"];
        args.extend(common);
        let out = train_iaf(&args);
        assert!(String::from_utf8_lossy(&out.stdout).contains("IS-4 NLL"));
        let mut args = vec!["train", "--out", split.to_str().unwrap(), "--epochs", "1"];
        args.extend(common);
        train_iaf(&args);
        train_iaf(&["resume", "--run", split.to_str().unwrap(), "--epochs", "2"]);
        assert_eq!(
            metrics_without_time(&whole),
            metrics_without_time(&split),
            "{estimator}: a resumed run differs"
        );
        let cfg = json(&whole.join("config.json"));
        assert_eq!(cfg["latent"]["kind"], "discrete");
        assert_eq!(json(&whole.join("results.json"))["test_points"], 5);
        // `eval` takes every test image unless told otherwise.
        train_iaf(&[
            "eval",
            "--run",
            whole.to_str().unwrap(),
            "--is-samples",
            "3",
        ]);
        assert_eq!(json(&whole.join("eval-is3.json"))["test_points"], 20);
        for png in ["samples.png", "reconstructions.png"] {
            assert!(is_png(&whole.join(png)), "{png}");
        }
        // HMC cannot move discrete latents: a clear refusal, not a panic.
        let hais = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
            .args([
                "eval",
                "--run",
                whole.to_str().unwrap(),
                "--is-samples",
                "0",
            ])
            .args(["--hais-steps", "5"])
            .output()
            .unwrap();
        assert!(!hais.status.success());
        assert!(String::from_utf8_lossy(&hais.stderr).contains("continuous latents"));
    }
    // Pathwise gradients through discrete latents are refused before training.
    let bad = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
        .args([
            "train",
            "--preset",
            "sbn",
            "--estimator",
            "elbo",
            "--data-dir",
            d,
        ])
        .args(["--out", tmp.path().join("bad").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("discrete latents"));
}

/// Faults a user meets: the newest checkpoint damaged (resume falls back to the newest
/// loadable one and says which it skipped and why), and a fresh `train` into a directory that
/// holds checkpoints but no config.json (refused, instead of silently continuing them).
#[test]
fn damaged_checkpoints_and_orphaned_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    write_synthetic_mnist(&data, 40, 10, true).unwrap();
    let run = tmp.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    let common = ["--data-dir", d, "--out", r, "--is-samples", "2"];
    let mut args = vec!["train", "--epochs", "3"];
    args.extend(common);
    train_iaf(&args);
    // Truncate the newest checkpoint's tensors, as a full disk or a crash might.
    let newest = run.join("checkpoints/epoch-000003.safetensors");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 3]).unwrap();
    let out = train_iaf(&["resume", "--run", r, "--epochs", "4"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("skipped the damaged checkpoint epoch-000003")
            && stderr.contains("continuing from epoch-000002"),
        "{stderr}"
    );
    let epochs: Vec<u64> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        epochs,
        vec![1, 2, 3, 4],
        "epoch 3 re-run from epoch 2's checkpoint, its old line dropped"
    );
    assert!(stderr.contains("dropping 1 line"), "{stderr}");
    assert_eq!(json(&run.join("results.json"))["epochs"], 4);
    // Checkpoints without config.json: a fresh train is refused and leaves them alone.
    std::fs::remove_file(run.join("config.json")).unwrap();
    let before = std::fs::read(run.join("checkpoints/epoch-000004.json")).unwrap();
    let mut args = vec!["train", "--epochs", "1"];
    args.extend(common);
    let refused = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
        .args(&args)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("holds checkpoints") && stderr.contains("no config.json"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(run.join("checkpoints/epoch-000004.json")).unwrap(),
        before
    );
    assert!(!run.join("config.json").exists());
}

/// Every bad value a user can type is refused before training, with the flag (or field), the
/// value and the rule; a partial configuration file layers over its preset and trains.
#[test]
fn bad_inputs_are_refused_naming_the_flag_value_and_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    write_synthetic_mnist(&data, 30, 10, true).unwrap();
    let d = data.to_str().unwrap();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let unknown = write(
        "unknown.toml",
        "preset = \"iwae-dense\"\n[optimizer]\nbeta = 0.5\n",
    );
    let bad_beta = write("beta.toml", "[optimizer]\nbeta2 = 1.0\n");
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec!["--k", "0"], &["--k 0", "at least 1"]),
        (vec!["--estimator", "vimco", "--k", "0"], &["--k 0"]),
        (
            vec!["--estimator", "vimco", "--k", "1"],
            &["VIMCO needs --k 2"],
        ),
        (
            vec!["--batch-size", "0"],
            &["batch_size (--batch-size) = 0", "at least 1"],
        ),
        (vec!["--epochs", "0"], &["epochs (--epochs) = 0"]),
        (
            vec!["--is-samples", "0"],
            &["is_samples (--is-samples) = 0"],
        ),
        (vec!["--lr=-0.1"], &["lr (--lr) = -0.1", "(0, inf)"]),
        (vec!["--lr", "NaN"], &["lr (--lr) = NaN"]),
        (vec!["--ema-decay", "1.5"], &["--ema-decay 1.5", "(0, 1)"]),
        (
            vec!["--limit-train", "0"],
            &["limit_train (--limit-train) = 0"],
        ),
        (
            vec!["--time-budget=-5"],
            &["time_budget_minutes (--time-budget) = -5"],
        ),
        (
            vec!["--schedule-span", "0"],
            &["--schedule-span", "positive"],
        ),
        // A --k that the preset's objective would ignore: warm-up and free bits are ELBO-only.
        (
            vec!["--preset", "iaf-resnet", "--k", "5"],
            &["objective.warmup", "ELBO only", "IWAE"],
        ),
        (
            vec!["--config", &unknown],
            &["unknown configuration key `optimizer.beta`"],
        ),
        (
            vec!["--config", &bad_beta],
            &["optimizer.beta2 = 1", "[0, 1)"],
        ),
    ];
    for (i, (extra, expected)) in cases.iter().enumerate() {
        let out_dir = tmp.path().join(format!("run{i}"));
        let mut args = vec!["train", "--data-dir", d, "--out", out_dir.to_str().unwrap()];
        args.extend(extra.iter().copied());
        let out = Command::new(env!("CARGO_BIN_EXE_train-iaf"))
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra:?} was accepted");
        for e in *expected {
            assert!(stderr.contains(e), "{extra:?}: expected {e:?} in {stderr}");
        }
        assert!(
            !out_dir.join("config.json").exists(),
            "{extra:?} wrote a run"
        );
    }
    // A partial file over its preset, then a flag over the file.
    let partial = write(
        "partial.toml",
        "preset = \"iwae-dense\"\nepochs = 1\nbatch_size = 10\n[optimizer]\neps = 1e-6\n",
    );
    let run = tmp.path().join("layered");
    train_iaf(&[
        "train",
        "--config",
        &partial,
        "--batch-size",
        "5",
        "--data-dir",
        d,
        "--out",
        run.to_str().unwrap(),
        "--is-samples",
        "2",
    ]);
    let cfg = json(&run.join("config.json"));
    assert_eq!(cfg["epochs"], 1);
    assert_eq!(cfg["batch_size"], 5, "the flag wins over the file");
    assert_eq!(cfg["optimizer"]["eps"], 1e-6);
    assert_eq!(
        cfg["optimizer"]["beta2"], 0.999,
        "the preset fills the rest"
    );
}

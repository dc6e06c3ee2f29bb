//! What a user sees of a run: a readable `curves.png`, progress lines on every long job and a
//! TensorBoard log whose values are the run's own (read back in Rust, and by TensorBoard's
//! own reader where Python has it).
#![allow(clippy::unwrap_used)]

mod common;

use common::{json, synthetic_mnist, train_iaf_env};
use std::path::Path;
use std::process::Command;
use vaekit_monitor::{images, read_events, scalars};

/// `train-iaf args` with a progress line at every update: the lines the log of a long job
/// would show.
fn train_iaf(args: &[&str]) -> std::process::Output {
    train_iaf_env(args, &[("VAEKIT_PROGRESS", "lines:0")])
}

/// `(width, height, RGB pixels)` of a PNG file.
fn decode_rgb(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| match channels {
            1 | 2 => [p[0]; 3],
            _ => [p[0], p[1], p[2]],
        })
        .collect();
    (info.width, info.height, pixels)
}

fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn curves_progress_and_tensorboard_of_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_mnist(tmp.path());
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
        "3",
        "--is-samples",
        "8",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Progress: every epoch's steps with the running loss, and importance sampling's points
    // with its running NLL, each job closed by a line with its summary.
    for expected in [
        "epoch 1: 1/",
        "epoch 3: ",
        "steps done in",
        "IS-8: 20/30 points",
        "IS-8: 30 points done in",
        "; loss ",
        "; nll ",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }

    // curves.png: four panels with axes, labels and legends in ink, and the series in their
    // colours (blue train, red test).
    let (w, h, px) = decode_rgb(&run.join("curves.png"));
    assert_eq!((w, h), (1280, 900));
    let count = |f: &dyn Fn(&[u8; 3]) -> bool| px.iter().filter(|p| f(p)).count();
    let ink = count(&|p| p.iter().all(|&c| c < 90));
    let blue = count(&|p| *p == [31, 119, 180]);
    let red = count(&|p| *p == [214, 39, 40]);
    assert!(ink > 5_000, "too little text and axes: {ink} dark pixels");
    assert!(
        blue > 500 && red > 300,
        "series missing: blue {blue}, red {red}"
    );
    // The y-axis labels of the left panels: ink in the left margin.
    let left_margin_ink = px
        .chunks(w as usize)
        .map(|row| {
            row[..70]
                .iter()
                .filter(|p| p.iter().all(|&c| c < 90))
                .count()
        })
        .sum::<usize>();
    assert!(left_margin_ink > 300, "no y-axis labels: {left_margin_ink}");

    // TensorBoard: one event file whose scalars are metrics.jsonl's, the IS NLL of
    // results.json, and the two pictures.
    let tb: Vec<_> = std::fs::read_dir(run.join("tb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(tb.len(), 1, "{tb:?}");
    let events = read_events(&tb[0]).unwrap();
    let values = scalars(&events);
    let lookup = |tag: &str, step: i64| {
        values
            .iter()
            .find(|(t, s, _)| t == tag && *s == step)
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no {tag} at step {step}"))
    };
    for m in metrics(&run) {
        let step = m["epoch"].as_i64().unwrap();
        for (tag, key) in [
            ("neg_elbo/test", "test_neg_elbo"),
            ("neg_elbo/train", "train_neg_elbo"),
            ("train/kl", "kl"),
            ("train/lr", "lr"),
        ] {
            assert_eq!(lookup(tag, step), m[key].as_f64().unwrap() as f32, "{tag}");
        }
    }
    let results = json(&run.join("results.json"));
    assert_eq!(
        lookup("test/is8_nll", 3),
        results["is_nll"].as_f64().unwrap() as f32
    );
    let pictures: Vec<(String, i64)> = images(&events)
        .into_iter()
        .map(|(tag, step, image)| {
            assert!(
                image
                    .encoded_image_string
                    .starts_with(&[0x89, b'P', b'N', b'G'])
            );
            (tag, step)
        })
        .collect();
    assert_eq!(
        pictures,
        [
            ("samples".to_string(), 3),
            ("reconstructions".to_string(), 3)
        ]
    );
    tensorboard_reads(&run.join("tb"), lookup("neg_elbo/test", 3));

    // eval: HAIS reports its transitions with acceptance and step size, and its NLL joins
    // results.json, curves.png and TensorBoard.
    let out = train_iaf(&[
        "eval",
        "--run",
        r,
        "--is-samples",
        "0",
        "--limit-test",
        "4",
        "--hais-steps",
        "6",
        "--hais-chains",
        "2",
        "--hais-leapfrog",
        "2",
        "--hais-batch",
        "4",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "HAIS: 1/",
        "transitions",
        "accept ",
        "step ",
        "HAIS: ",
        "done in",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    let results = json(&run.join("results.json"));
    assert!(results["hais"]["nll"].as_f64().unwrap().is_finite());
    let files: Vec<_> = std::fs::read_dir(run.join("tb")).unwrap().collect();
    assert_eq!(files.len(), 2, "eval adds an event file");

    // Without --tensorboard, no tb/.
    let quiet = tmp.path().join("quiet");
    train_iaf(&[
        "train",
        "--data-dir",
        d,
        "--out",
        quiet.to_str().unwrap(),
        "--epochs",
        "1",
        "--is-samples",
        "2",
        "--tensorboard",
        "false",
    ]);
    assert!(!quiet.join("tb").exists());
}

/// TensorBoard's own reader (Python), where it is installed: the same test figure.
fn tensorboard_reads(dir: &Path, expected: f32) {
    let script = "import sys\n\
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator as E\n\
a = E(sys.argv[1], size_guidance={'scalars': 0, 'images': 0}); a.Reload()\n\
s = [e for e in a.Scalars('neg_elbo/test') if e.step == 3][0]\n\
print(repr(s.value), len(a.Images('samples')))\n";
    let has_reader = Command::new("python3")
        .args([
            "-c",
            "import tensorboard.backend.event_processing.event_accumulator",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_reader {
        eprintln!(
            "skipping TensorBoard's own reader: not installed (python3 -m pip install tensorboard)"
        );
        return;
    }
    let o = Command::new("python3")
        .args(["-c", script, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "TensorBoard cannot read {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let mut parts = text.split_whitespace();
    let value: f64 = parts.next().unwrap().parse().unwrap();
    assert_eq!(value as f32, expected, "TensorBoard read {text}");
    assert_eq!(parts.next(), Some("1"), "TensorBoard read {text}");
}

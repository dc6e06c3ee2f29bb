//! What a user sees of a run: a readable `curves.png`, progress lines on every long job and a
//! TensorBoard log whose values are the run's own (read back in Rust, and by TensorBoard's
//! own reader where Python has it).
#![allow(clippy::unwrap_used)]

mod common;

use common::{json, run, synthetic_mnist, train_iaf_env};
use std::path::Path;
use std::process::Command;
use vaekit_monitor::tensorboard::What;
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
        "test bound (current weights): 30/30 points",
        "; bound ",
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
    // TensorBoard's own reader sees the same test figure and the sample grid.
    let body = "s = [e for e in a.Scalars('neg_elbo/test') if e.step == 3][0]\n\
print(repr(s.value), len(a.Images('samples')))";
    if let Some(text) = tensorboard_python(&run.join("tb"), body) {
        let mut parts = text.split_whitespace();
        let value: f64 = parts.next().unwrap().parse().unwrap();
        assert_eq!(
            value as f32,
            lookup("neg_elbo/test", 3),
            "TensorBoard read {text}"
        );
        assert_eq!(parts.next(), Some("1"), "TensorBoard read {text}");
    }

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

    // A crash after epoch 4 was logged but before its checkpoint: a stray epoch-4 figure in an
    // older file. The resume reruns epoch 4 and marks its restart there, so TensorBoard shows
    // epoch 4 once, with the rerun's value.
    {
        let mut stray = vaekit_monitor::EventWriter::create(&run.join("tb")).unwrap();
        stray.add_scalar("neg_elbo/test", 4, 1e6).unwrap();
        stray.flush().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    train_iaf(&["resume", "--run", r, "--epochs", "4"]);
    let mut newest: Vec<_> = std::fs::read_dir(run.join("tb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    newest.sort();
    let events = read_events(newest.last().unwrap()).unwrap();
    assert!(
        matches!(&events[1].what, Some(What::SessionLog(l)) if l.status == 1 && events[1].step == 4),
        "the resumed log does not start with a restart at epoch 4: {:?}",
        events.get(1)
    );
    let epoch4 = metrics(&run)[3]["test_neg_elbo"].as_f64().unwrap() as f32;
    let body = "print(' '.join('%d:%r' % (e.step, e.value) for e in a.Scalars('neg_elbo/test')))";
    if let Some(text) = tensorboard_python(&run.join("tb"), body) {
        let steps: Vec<(i64, f32)> = text
            .split_whitespace()
            .map(|p| {
                let (s, v) = p.split_once(':').unwrap();
                (s.parse().unwrap(), v.parse::<f64>().unwrap() as f32)
            })
            .collect();
        assert_eq!(
            steps.iter().map(|p| p.0).collect::<Vec<_>>(),
            [1, 2, 3, 4],
            "TensorBoard read {text}"
        );
        assert_eq!(steps[3].1, epoch4, "TensorBoard read {text}");
    }

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

/// What TensorBoard's own reader (Python's `EventAccumulator` over `dir`) prints for
/// `body`, a script in which `a` is the loaded accumulator; `None` where it is not
/// installed (an error where `VAEKIT_REQUIRE_TENSORBOARD` says it must be).
fn tensorboard_python(dir: &Path, body: &str) -> Option<String> {
    let has_reader = Command::new("python3")
        .args([
            "-c",
            "import tensorboard.backend.event_processing.event_accumulator",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_reader {
        assert!(
            std::env::var_os("VAEKIT_REQUIRE_TENSORBOARD").is_none(),
            "VAEKIT_REQUIRE_TENSORBOARD is set but python3 cannot import tensorboard"
        );
        eprintln!(
            "skipping TensorBoard's own reader: not installed (python3 -m pip install tensorboard)"
        );
        return None;
    }
    let script = format!(
        "import sys\n\
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator as E\n\
a = E(sys.argv[1], size_guidance={{'scalars': 0, 'images': 0}}); a.Reload()\n{body}\n"
    );
    let o = Command::new("python3")
        .args(["-c", &script, dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "TensorBoard cannot read {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

#[test]
fn a_bad_progress_setting_is_refused_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_mnist(tmp.path());
    let out_dir = tmp.path().join("run");
    let out = run(
        &[
            "train",
            "--data-dir",
            data.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[("VAEKIT_PROGRESS", "lines:-2")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("VAEKIT_PROGRESS=\"lines:-2\"")
            && stderr.contains("lines:SECONDS (SECONDS >= 0)"),
        "{stderr}"
    );
    assert!(!out_dir.exists(), "a run directory was created");
}

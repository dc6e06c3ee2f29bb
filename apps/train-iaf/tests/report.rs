//! `train-iaf report`: a self-contained page with the results table, the curves and the
//! pictures, loaded in a real headless browser (Chromium) that must render every image.
//!
//! Without a browser the page's content is still checked and the browser part is skipped
//! with a message, unless `VAEKIT_REQUIRE_BROWSER=1` (CI sets it after installing Debian's
//! `chromium`). `VAEKIT_CHROMIUM` names the browser; `VAEKIT_REPORT_SCREENSHOT` keeps the
//! screenshot at that path.
#![allow(clippy::unwrap_used)]

mod common;

use common::{run, synthetic_mnist};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `train-iaf args`, asserting success; its stdout.
fn train_iaf(args: &[&str]) -> String {
    String::from_utf8_lossy(&common::train_iaf(args).stdout).into_owned()
}

fn browser() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("VAEKIT_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
    .find(|p| p.is_file())
}

/// Chromium headless on `page`, with the flags a closed network and a root user need.
fn chromium(browser: &Path, profile: &Path, extra: &[&str], page: &Path) -> std::process::Output {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let profile = format!("--user-data-dir={}", profile.display());
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--virtual-time-budget=10000",
        profile.as_str(),
    ];
    args.extend_from_slice(extra);
    args.push(url.as_str());
    let out = Command::new(browser).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        browser.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn report_of_one_and_of_two_runs_renders_in_a_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_mnist(tmp.path());
    let d = data.to_str().unwrap();
    let runs: Vec<PathBuf> = ["dense", "dense-k5"]
        .iter()
        .map(|n| tmp.path().join(n))
        .collect();
    for (run, k) in runs.iter().zip(["1", "5"]) {
        train_iaf(&[
            "train",
            "--data-dir",
            d,
            "--out",
            run.to_str().unwrap(),
            "--epochs",
            "2",
            "--is-samples",
            "4",
            "--k",
            k,
        ]);
    }
    let (r1, r2) = (runs[0].to_str().unwrap(), runs[1].to_str().unwrap());

    // One run: the page lands in the run, holds its table and three inlined pictures, and
    // asks for nothing from outside.
    let said = train_iaf(&["report", r1]);
    let single = runs[0].join("report.html");
    assert!(said.contains(&single.display().to_string()), "{said}");
    let html = std::fs::read_to_string(&single).unwrap();
    assert_eq!(count(&html, "<table id=\"results\""), 1);
    assert_eq!(count(&html, "src=\"data:image/png;base64,"), 3);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "outside resource"
    );
    assert!(html.contains("IS-4 NLL"), "no NLL line");

    // Two runs: a comparison with overlaid curves and the settings that differ.
    let both = tmp.path().join("both.html");
    train_iaf(&["report", r1, r2, "--out", both.to_str().unwrap()]);
    let html = std::fs::read_to_string(&both).unwrap();
    assert_eq!(count(&html, "src=\"data:image/png;base64,"), 7);
    assert!(html.contains("<table id=\"differences\""));
    assert!(
        html.contains("objective.objective.k"),
        "the differing k is not listed"
    );
    // A directory that is not a run is named.
    let out = run(&["report", tmp.path().to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a run directory"));

    let Some(browser) = browser() else {
        assert!(
            std::env::var_os("VAEKIT_REQUIRE_BROWSER").is_none(),
            "VAEKIT_REQUIRE_BROWSER is set but no chromium was found"
        );
        eprintln!(
            "skipping the browser check: no chromium (apt-get install chromium, or set VAEKIT_CHROMIUM)"
        );
        return;
    };
    let profile = tmp.path().join("profile");

    // The DOM after load: every image decoded (the page marks each), the tables there.
    let dom = chromium(&browser, &profile, &["--dump-dom"], &both);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("data-images=\"7\""),
        "images not counted:\n{dom:.2000}"
    );
    assert!(
        dom.contains("data-rendered=\"7\""),
        "an image did not render"
    );
    assert_eq!(count(&dom, "data-rendered=\"yes\""), 7);
    for text in [
        "Results",
        "IS NLL ± SE",
        "dense-k5",
        "Settings that differ",
        "Compared",
    ] {
        assert!(dom.contains(text), "no {text:?} in the page");
    }

    // The screenshot of one run's page: the table's text, the curves' colours and the
    // pictures' grey grid on the page, not a blank window.
    let shot = tmp.path().join("report.png");
    let arg = format!("--screenshot={}", shot.display());
    chromium(
        &browser,
        &profile,
        &[
            arg.as_str(),
            "--window-size=1280,1500",
            "--force-device-scale-factor=0.5",
        ],
        &single,
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let near = |p: &[u8], c: [u8; 3]| (0..3).all(|i| (p[i] as i32 - c[i] as i32).abs() < 40);
    let total = pixels.len();
    let non_white = pixels.iter().filter(|p| !near(p, [255, 255, 255])).count();
    let blue = pixels.iter().filter(|p| near(p, [31, 119, 180])).count();
    let red = pixels.iter().filter(|p| near(p, [214, 39, 40])).count();
    let grid_grey = pixels.iter().filter(|p| near(p, [40, 40, 40])).count();
    assert!(
        non_white * 20 > total,
        "blank page: {non_white} of {total} pixels"
    );
    assert!(
        blue > 50 && red > 50,
        "no curves on the page: blue {blue}, red {red}"
    );
    assert!(grid_grey > 500, "no image grid on the page: {grid_grey}");
    if let Some(keep) = std::env::var_os("VAEKIT_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

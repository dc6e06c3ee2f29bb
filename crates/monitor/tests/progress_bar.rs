//! The plain-line style: rate-limited lines with the job's figures, a closing line, and
//! silence for short jobs.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use vaekit_core::Progress;
use vaekit_monitor::{ProgressBar, ProgressStyle};

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().map(|b| b.clone()).unwrap_or_default()).unwrap_or_default()
    }
}

#[test]
fn lines_report_each_update_past_the_interval_and_close_the_job() {
    let out = Shared::default();
    let mut bar = ProgressBar::with_style(
        ProgressStyle::Lines {
            every: Duration::ZERO,
        },
        Box::new(out.clone()),
    );
    bar.start("IS-5000", 40, "points");
    bar.update(20, &[("nll", 88.123456), ("ess", 31.5)]);
    bar.update(40, &[("nll", 87.5), ("ess", 30.0)]);
    bar.finish(&[("nll", 87.5), ("se", 0.25)]);
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    // The times depend on the machine's speed: only their places are checked.
    assert!(
        lines[0].starts_with("IS-5000: 20/40 points (50 %), "),
        "{text}"
    );
    assert!(lines[0].contains(" elapsed, ETA "), "{text}");
    assert!(lines[0].ends_with("; nll 88.123  ess 31.500"), "{text}");
    assert!(
        lines[1].starts_with("IS-5000: 40/40 points (100 %)"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("IS-5000: 40 points done in "),
        "{text}"
    );
    assert!(lines[2].ends_with("; nll 87.500  se 0.2500"), "{text}");
}

#[test]
fn a_failed_job_says_where_it_stopped() {
    let out = Shared::default();
    let mut bar = ProgressBar::with_style(
        ProgressStyle::Lines {
            every: Duration::ZERO,
        },
        Box::new(out.clone()),
    );
    bar.start("HAIS", 10, "transitions");
    bar.update(4, &[("accept", 0.6)]);
    bar.finish(&[]);
    let text = out.text();
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("HAIS: stopped at 4/10 transitions after "),
        "{text}"
    );
}

#[test]
fn a_job_shorter_than_the_interval_prints_nothing() {
    let out = Shared::default();
    let mut bar = ProgressBar::with_style(
        ProgressStyle::Lines {
            every: Duration::from_secs(3600),
        },
        Box::new(out.clone()),
    );
    for epoch in 1..=3 {
        bar.start(&format!("epoch {epoch}"), 10, "steps");
        for done in 1..=10 {
            bar.update(done, &[("loss", 100.0 / done as f64)]);
        }
        bar.finish(&[("loss", 10.0)]);
    }
    assert_eq!(out.text(), "");
    bar.println("epoch 3: test -ELBO 99.1");
    assert_eq!(out.text(), "epoch 3: test -ELBO 99.1\n");
}

#[test]
fn hidden_shows_nothing() {
    let mut bar = ProgressBar::hidden();
    bar.start("HAIS", 5, "transitions");
    bar.update(5, &[("accept", 0.65)]);
    bar.finish(&[]);
    bar.println("dropped");
    assert_eq!(bar.style(), ProgressStyle::Hidden);
}

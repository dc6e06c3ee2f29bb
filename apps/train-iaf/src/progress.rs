//! A one-line progress bar on a terminal; silence otherwise (the per-epoch log lines remain).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Redraws `epoch e/E [#####.....] done/total steps  ETA` on stderr at most ten times a
/// second, when stderr is a terminal.
pub struct Progress {
    enabled: bool,
    label: String,
    started: Instant,
    last_draw: Option<Instant>,
}

impl Progress {
    /// A bar for one epoch; disabled when stderr is not a terminal.
    pub fn new(label: String) -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
            label,
            started: Instant::now(),
            last_draw: None,
        }
    }

    /// Records that `done` of `total` steps are finished.
    pub fn update(&mut self, done: usize, total: usize) {
        if !self.enabled || total == 0 {
            return;
        }
        let now = Instant::now();
        if done < total
            && self
                .last_draw
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return;
        }
        self.last_draw = Some(now);
        let _ = write!(std::io::stderr(), "\r{}", self.line(done, total, now));
    }

    /// Clears the bar so that the next log line starts clean.
    pub fn finish(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }

    fn line(&self, done: usize, total: usize, now: Instant) -> String {
        const WIDTH: usize = 30;
        let filled = (done * WIDTH) / total;
        let elapsed = (now - self.started).as_secs_f64();
        let eta = if done > 0 {
            elapsed / done as f64 * (total - done) as f64
        } else {
            f64::NAN
        };
        format!(
            "{} [{}{}] {done}/{total} steps  {elapsed:.0}s elapsed  ETA {eta:.0}s ",
            self.label,
            "#".repeat(filled),
            ".".repeat(WIDTH - filled)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_fills_in_proportion_and_estimates_the_remaining_time() {
        let p = Progress {
            enabled: true,
            label: "epoch 1/2".into(),
            started: Instant::now(),
            last_draw: None,
        };
        let later = p.started + Duration::from_secs(10);
        let line = p.line(30, 60, later);
        assert!(line.contains(&format!("[{}{}]", "#".repeat(15), ".".repeat(15))));
        assert!(line.contains("30/60 steps"));
        assert!(line.contains("ETA 10s"));
    }
}

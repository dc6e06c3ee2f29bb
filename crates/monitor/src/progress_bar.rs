//! A progress sink for people: an indicatif bar on a terminal, rate-limited lines in a log.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};
use vaekit_core::{Progress, Stat};

/// How a [`ProgressBar`] shows progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProgressStyle {
    /// A redrawn bar (indicatif) with the job's running figures and ETA, on stderr; cleared
    /// when the job finishes.
    Bar,
    /// A plain line at most every `every` while a job runs (none for a job shorter than
    /// `every`), and a closing line for a job that printed one: for logs, where a redrawn bar
    /// would fill the file.
    Lines {
        /// The least time between two lines.
        every: Duration,
    },
    /// Nothing.
    Hidden,
}

impl ProgressStyle {
    /// `bar`, `off` (hidden) or `lines:S` (a line at most every `S ≥ 0` seconds).
    ///
    /// # Errors
    /// Any other text, with the rule.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?}: expected bar, off or lines:SECONDS (SECONDS >= 0)");
        match text {
            "bar" => Ok(Self::Bar),
            "off" => Ok(Self::Hidden),
            _ => {
                let seconds: f64 = text
                    .strip_prefix("lines:")
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(bad)?;
                Duration::try_from_secs_f64(seconds)
                    .map(|every| Self::Lines { every })
                    .map_err(|_| bad())
            }
        }
    }
}

/// The job being shown.
struct Job {
    name: String,
    total: u64,
    unit: &'static str,
    started: Instant,
    last_line: Instant,
    lines: usize,
    done: u64,
    bar: Option<indicatif::ProgressBar>,
}

/// Shows the progress of vaekit's long jobs ([`vaekit_core::Progress`]): training epochs,
/// importance sampling, HAIS, BDMC.
///
/// [`ProgressBar::new`] picks a bar when stderr is a terminal and lines every 30 s otherwise;
/// the environment variable `VAEKIT_PROGRESS` overrides that: `bar`, `off`, or `lines:S`
/// (a line at most every `S` seconds, `S ≥ 0`).
pub struct ProgressBar {
    style: ProgressStyle,
    out: Box<dyn Write + Send>,
    job: Option<Job>,
}

impl std::fmt::Debug for ProgressBar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressBar")
            .field("style", &self.style)
            .field("job", &self.job.as_ref().map(|j| &j.name))
            .finish()
    }
}

impl Default for ProgressBar {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressBar {
    /// A bar when stderr is a terminal, lines on stderr at most every 30 s otherwise, unless
    /// `VAEKIT_PROGRESS` says otherwise (a value it cannot read is reported once on stderr
    /// and ignored).
    pub fn new() -> Self {
        Self::from_env().unwrap_or_else(|e| {
            eprintln!("warning: {e}; using the default");
            Self::with_style(default_style(), Box::new(std::io::stderr()))
        })
    }

    /// [`ProgressBar::new`], refusing a `VAEKIT_PROGRESS` it cannot read.
    ///
    /// # Errors
    /// `VAEKIT_PROGRESS` set to anything but `bar`, `off` or `lines:S` (`S ≥ 0`), named with
    /// its value and the rule.
    pub fn from_env() -> Result<Self, String> {
        let style = match std::env::var("VAEKIT_PROGRESS") {
            Ok(v) => ProgressStyle::parse(&v).map_err(|e| format!("VAEKIT_PROGRESS={e}"))?,
            Err(_) => default_style(),
        };
        Ok(Self::with_style(style, Box::new(std::io::stderr())))
    }

    /// Shows nothing.
    pub fn hidden() -> Self {
        Self::with_style(ProgressStyle::Hidden, Box::new(std::io::sink()))
    }

    /// `style`, writing lines to `out` ([`ProgressStyle::Bar`] always draws on stderr).
    pub fn with_style(style: ProgressStyle, out: Box<dyn Write + Send>) -> Self {
        Self {
            style,
            out,
            job: None,
        }
    }

    /// The style in use.
    pub fn style(&self) -> ProgressStyle {
        self.style
    }

    /// Prints `line` without breaking the bar (on stderr for a bar; to the lines' output
    /// otherwise; dropped when hidden).
    pub fn println(&mut self, line: &str) {
        match (&self.style, self.job.as_ref().and_then(|j| j.bar.as_ref())) {
            (ProgressStyle::Hidden, _) => {}
            (_, Some(bar)) => bar.println(line),
            _ => {
                let _ = writeln!(self.out, "{line}");
            }
        }
    }
}

/// A bar when stderr is a terminal, lines every 30 s otherwise.
fn default_style() -> ProgressStyle {
    if std::io::stderr().is_terminal() {
        ProgressStyle::Bar
    } else {
        ProgressStyle::Lines {
            every: Duration::from_secs(30),
        }
    }
}

/// `name value` pairs, each value to about four significant digits.
pub(crate) fn format_stats(stats: &[Stat]) -> String {
    stats
        .iter()
        .map(|(name, v)| format!("{name} {}", format_value(*v)))
        .collect::<Vec<_>>()
        .join("  ")
}

fn format_value(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() || a == 0.0 {
        format!("{v}")
    } else if a >= 1000.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.3}")
    } else if a >= 1e-3 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    }
}

/// Seconds as `42s`, `3m05s` or `1h02m`.
pub(crate) fn format_seconds(s: f64) -> String {
    if !s.is_finite() {
        return "?".into();
    }
    let s = s.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

impl Job {
    fn line(&self, done: u64, stats: &[Stat], now: Instant) -> String {
        let elapsed = (now - self.started).as_secs_f64();
        let eta = if done > 0 {
            elapsed / done as f64 * self.total.saturating_sub(done) as f64
        } else {
            f64::NAN
        };
        let pct = 100.0 * done as f64 / self.total.max(1) as f64;
        let mut line = format!(
            "{}: {done}/{} {} ({pct:.0} %), {} elapsed, ETA {}",
            self.name,
            self.total,
            self.unit,
            format_seconds(elapsed),
            format_seconds(eta)
        );
        if !stats.is_empty() {
            line.push_str("; ");
            line.push_str(&format_stats(stats));
        }
        line
    }
}

impl Progress for ProgressBar {
    fn start(&mut self, job: &str, total: u64, unit: &'static str) {
        if let Some(old) = self.job.take()
            && let Some(bar) = old.bar
        {
            bar.finish_and_clear();
        }
        let bar = (self.style == ProgressStyle::Bar).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr_with_hz(10),
            );
            let template = "{prefix} [{bar:30}] {pos}/{len} {msg} · {elapsed} · ETA {eta}";
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("#>."));
            }
            bar.set_prefix(job.to_string());
            bar.set_message(unit);
            bar
        });
        let now = Instant::now();
        self.job = Some(Job {
            name: job.to_string(),
            total,
            unit,
            started: now,
            last_line: now,
            lines: 0,
            done: 0,
            bar,
        });
    }

    fn update(&mut self, done: u64, stats: &[Stat]) {
        let Some(job) = &mut self.job else { return };
        job.done = done;
        match self.style {
            ProgressStyle::Bar => {
                if let Some(bar) = &job.bar {
                    bar.set_position(done);
                    if !stats.is_empty() {
                        bar.set_message(format!("{}  {}", job.unit, format_stats(stats)));
                    }
                }
            }
            ProgressStyle::Lines { every } => {
                let now = Instant::now();
                if now - job.last_line >= every {
                    job.last_line = now;
                    job.lines += 1;
                    let line = job.line(done, stats, now);
                    let _ = writeln!(self.out, "{line}");
                    let _ = self.out.flush();
                }
            }
            ProgressStyle::Hidden => {}
        }
    }

    fn finish(&mut self, summary: &[Stat]) {
        let Some(job) = self.job.take() else { return };
        if let Some(bar) = job.bar {
            bar.finish_and_clear();
        } else if job.lines > 0 {
            let elapsed = format_seconds(job.started.elapsed().as_secs_f64());
            // A job that failed ends without a summary.
            let mut line = if summary.is_empty() {
                format!(
                    "{}: stopped at {}/{} {} after {elapsed}",
                    job.name, job.done, job.total, job.unit
                )
            } else {
                format!("{}: {} {} done in {elapsed}", job.name, job.total, job.unit)
            };
            if !summary.is_empty() {
                line.push_str("; ");
                line.push_str(&format_stats(summary));
            }
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_durations_read_at_a_glance() {
        assert_eq!(
            format_stats(&[("nll", 84.31234), ("step", 0.012345), ("lr", 3e-5)]),
            "nll 84.312  step 0.0123  lr 3.00e-5"
        );
        assert_eq!(format_seconds(42.4), "42s");
        assert_eq!(format_seconds(185.0), "3m05s");
        assert_eq!(format_seconds(3720.0), "1h02m");
        assert_eq!(format_seconds(f64::NAN), "?");
    }

    #[test]
    fn styles_parse_with_their_rule_in_the_error() {
        assert_eq!(ProgressStyle::parse("bar"), Ok(ProgressStyle::Bar));
        assert_eq!(ProgressStyle::parse("off"), Ok(ProgressStyle::Hidden));
        assert_eq!(
            ProgressStyle::parse("lines:2.5"),
            Ok(ProgressStyle::Lines {
                every: Duration::from_millis(2500)
            })
        );
        for bad in ["lines:-1", "lines:x", "fancy", "lines:inf"] {
            let e = ProgressStyle::parse(bad).err().unwrap_or_default();
            assert!(e.contains("lines:SECONDS"), "{bad}: {e}");
        }
    }
}

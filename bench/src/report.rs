//! The table: per workload, each side's median over every round's samples, the ratio
//! vaekit / PyTorch of those medians and of each round's, vaekit's GFLOP/s and its fraction
//! of the FMA peak measured in the same run.

use crate::timing::{Measurement, median};
use crate::workloads::Workload;
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// A line of the worker's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerLine {
    /// The FMA peak of the worker's threads, GFLOP/s (`None` without AVX2+FMA).
    Peak {
        /// GFLOP/s.
        gflops: Option<f64>,
    },
    /// One workload.
    Result(Measurement),
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Threads on each side.
    pub threads: usize,
    /// Whether both sides were pinned to cores `0..threads`.
    pub pinned: bool,
    /// Rounds: each side measured every workload once per round.
    pub rounds: usize,
    /// The FMA peak on vaekit's side.
    pub peak_gflops: Option<f64>,
    /// vaekit's measurements, one per workload and round, in the order taken.
    pub vaekit: Vec<Measurement>,
    /// PyTorch's, when it ran, likewise.
    pub torch: Vec<Measurement>,
    /// Where PyTorch came from, or why it did not run.
    pub torch_note: Option<String>,
}

impl Report {
    /// An empty report.
    pub fn new(threads: usize, pinned: bool, rounds: usize) -> Self {
        Self {
            threads,
            pinned,
            rounds,
            peak_gflops: None,
            vaekit: Vec::new(),
            torch: Vec::new(),
            torch_note: None,
        }
    }

    /// The Markdown table of `workloads`, with a header of the conditions.
    pub fn table(&self, workloads: &[&Workload]) -> String {
        // Every sample of `name` on one side, all rounds pooled, and each round's median.
        let pooled = |v: &[Measurement], name: &str| -> (Option<f64>, Vec<f64>) {
            let rounds: Vec<&Measurement> = v.iter().filter(|m| m.name == name).collect();
            let all: Vec<f64> = rounds.iter().flat_map(|m| m.samples_ms.clone()).collect();
            let med = (!all.is_empty()).then(|| median(&all));
            (med, rounds.iter().map(|m| m.median_ms).collect())
        };
        let mut s = String::new();
        let _ = writeln!(
            s,
            "threads: {}{}; {} round(s), sides interleaved; FMA peak: {}; {}",
            self.threads,
            if self.pinned { " (pinned)" } else { "" },
            self.rounds,
            self.peak_gflops
                .map_or("not measured".to_string(), |g| format!(
                    "{g:.1} GFLOP/s ({} FMAs)",
                    crate::peak::fma_isa().unwrap_or("?")
                )),
            self.torch_note.as_deref().unwrap_or("")
        );
        let _ = writeln!(
            s,
            "\n| workload | vaekit ms | PyTorch ms | vaekit / PyTorch | per round | vaekit GFLOP/s | of peak | vaekit throughput | PyTorch throughput |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|");
        for w in workloads {
            let (v, v_rounds) = pooled(&self.vaekit, w.name);
            let (t, t_rounds) = pooled(&self.torch, w.name);
            let per_round = if t_rounds.is_empty() {
                "-".to_string()
            } else {
                let r: Vec<String> = v_rounds
                    .iter()
                    .zip(&t_rounds)
                    .map(|(v, t)| format!("{:.2}", v / t))
                    .collect();
                r.join(" ")
            };
            let ms = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}"));
            let ratio = match (v, t) {
                (Some(v), Some(t)) => format!("{:.2}", v / t),
                _ => "-".to_string(),
            };
            let gflops = v.map(|v| w.flops / (v * 1e-3) / 1e9);
            let of_peak = match (gflops, self.peak_gflops) {
                (Some(g), Some(p)) => format!("{:.0} %", 100.0 * g / p),
                _ => "-".to_string(),
            };
            let through = |x: Option<f64>| match (w.items, x) {
                (Some((n, unit)), Some(ms)) => format!("{:.0} {unit}", n / (ms * 1e-3)),
                _ => "-".to_string(),
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                w.name,
                ms(v),
                ms(t),
                ratio,
                per_round,
                gflops.map_or("-".to_string(), |g| format!("{g:.1}")),
                of_peak,
                through(v),
                through(t)
            );
        }
        s
    }
}

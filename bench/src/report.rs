//! The table: per workload, each side's median over every round's samples, the ratios
//! vaekit / PyTorch and vaekit / JAX of those medians and of each round's, vaekit's GFLOP/s
//! and its fraction of the FMA peak measured in the same run.

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
    /// JAX's, when it ran, likewise.
    #[serde(default)]
    pub jax: Vec<Measurement>,
    /// Where JAX came from, or why it did not run.
    #[serde(default)]
    pub jax_note: Option<String>,
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
            jax: Vec::new(),
            jax_note: None,
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
            "threads: {}{}; {} round(s), sides interleaved; FMA peak: {}; vaekit's kernels: {} (of {} on this CPU), its GEMM: {}{}",
            self.threads,
            if self.pinned { " (pinned)" } else { "" },
            self.rounds,
            self.peak_gflops
                .map_or("not measured".to_string(), |g| format!(
                    "{g:.1} GFLOP/s ({} FMAs)",
                    vaekit_ops::fma_isa().unwrap_or("?")
                )),
            vaekit_ops::isa().name(),
            vaekit_ops::detected_isa().name(),
            vaekit_ops::gemm_isa(),
            [&self.torch_note, &self.jax_note]
                .into_iter()
                .flatten()
                .map(|n| format!("; {n}"))
                .collect::<String>()
        );
        let _ = writeln!(
            s,
            "\n| workload | vaekit ms | PyTorch ms | JAX ms | vaekit / PyTorch | per round | vaekit / JAX | per round | vaekit GFLOP/s | of peak | vaekit throughput | PyTorch throughput | JAX throughput |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let ms = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}"));
        for w in workloads {
            let (v, v_rounds) = pooled(&self.vaekit, w.name);
            // The pooled ratio and each round's, against one peer.
            let against = |peer: &[Measurement]| -> (Option<f64>, String, String) {
                let (t, t_rounds) = pooled(peer, w.name);
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
                let ratio = match (v, t) {
                    (Some(v), Some(t)) => format!("{:.2}", v / t),
                    _ => "-".to_string(),
                };
                (t, ratio, per_round)
            };
            let (t, t_ratio, t_rounds) = against(&self.torch);
            let (j, j_ratio, j_rounds) = against(&self.jax);
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
                "| {} | {} | {} | {} | {t_ratio} | {t_rounds} | {j_ratio} | {j_rounds} | {} | {of_peak} | {} | {} | {} |",
                w.name,
                ms(v),
                ms(t),
                ms(j),
                gflops.map_or("-".to_string(), |g| format!("{g:.1}")),
                through(v),
                through(t),
                through(j)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::ALL;

    fn m(name: &str, samples: &[f64]) -> Measurement {
        Measurement {
            name: name.to_string(),
            median_ms: crate::timing::median(samples),
            samples_ms: samples.to_vec(),
            iterations: 1,
        }
    }

    /// A workload's medians pool every round's samples on each side, its ratio is that of
    /// the pooled medians, and each round's ratio is listed in order; a side without the
    /// workload prints dashes.
    #[test]
    fn pools_rounds_and_lists_their_ratios() {
        let (a, b) = (&ALL[0], &ALL[1]);
        let mut r = Report::new(2, true, 2);
        r.vaekit = vec![m(a.name, &[1.0, 2.0, 3.0]), m(a.name, &[5.0, 6.0, 7.0])];
        r.torch = vec![m(a.name, &[4.0, 4.0, 4.0]), m(a.name, &[8.0, 8.0, 8.0])];
        r.jax = vec![m(a.name, &[2.0, 2.0, 2.0]), m(a.name, &[8.0, 8.0, 8.0])];
        r.vaekit.push(m(b.name, &[9.0]));
        let table = r.table(&[a, b]);
        let row_a = table
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", a.name)))
            .expect("a row for the first workload");
        // Pooled: vaekit median of 1,2,3,5,6,7 = 4; PyTorch of 4,4,4,8,8,8 = 6; JAX of
        // 2,2,2,8,8,8 = 5.
        assert!(
            row_a.contains("| 4.00 | 6.00 | 5.00 | 0.67 | 0.50 0.75 | 0.80 | 1.00 0.75 |"),
            "{row_a}"
        );
        let row_b = table
            .lines()
            .find(|l| l.starts_with(&format!("| {} |", b.name)))
            .expect("a row for the second workload");
        assert!(
            row_b.contains("| 9.00 | - | - | - | - | - | - |"),
            "{row_b}"
        );
        assert!(table.contains("2 round(s), sides interleaved"));
    }
}

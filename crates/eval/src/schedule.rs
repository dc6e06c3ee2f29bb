//! Annealing schedules: the inverse temperatures `0 = β_0 < β_1 < ... < β_T = 1`.

use candle::Result;
use serde::{Deserialize, Serialize};

/// How the `T` intermediate distributions `f_β ∝ f_0^{1-β} f_1^β` are spaced.
///
/// # References
/// Neal, "Annealed importance sampling", 1998 (linear and geometric spacing); Wu, Burda,
/// Salakhutdinov, Grosse, arXiv 1611.04273, section 4 (the sigmoid schedule with a radius,
/// which spends more steps near both ends).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AnnealingSchedule {
    /// `β_t = t / T`.
    Linear,
    /// `β_1 = min_beta` up to `β_T = 1`, evenly spaced in `log β` (`β_0 = 0`).
    Geometric {
        /// The first non-zero inverse temperature, in `(0, 1)`.
        min_beta: f64,
    },
    /// `β_t ∝ σ(-r + 2 r t / T)`, shifted and scaled so that `β_0 = 0` and `β_T = 1`.
    Sigmoid {
        /// `r`: larger values crowd the steps towards both ends.
        radius: f64,
    },
}

impl Default for AnnealingSchedule {
    fn default() -> Self {
        Self::Sigmoid { radius: 4.0 }
    }
}

impl AnnealingSchedule {
    /// The `T + 1` inverse temperatures `β_0 = 0, ..., β_T = 1`, non-decreasing.
    ///
    /// # Errors
    /// `num_steps == 0`; `min_beta` outside `(0, 1)`; a radius that is not positive and
    /// finite.
    pub fn betas(&self, num_steps: usize) -> Result<Vec<f64>> {
        if num_steps == 0 {
            candle::bail!("annealing schedule: need at least one step");
        }
        let t_max = num_steps as f64;
        let betas: Vec<f64> = match *self {
            Self::Linear => (0..=num_steps).map(|t| t as f64 / t_max).collect(),
            Self::Geometric { min_beta } => {
                if !(min_beta > 0.0 && min_beta < 1.0) {
                    candle::bail!(
                        "geometric schedule: min_beta must lie in (0, 1), got {min_beta}"
                    );
                }
                let mut b = vec![0.0];
                if num_steps == 1 {
                    b.push(1.0);
                } else {
                    let span = (num_steps - 1) as f64;
                    b.extend((0..num_steps).map(|i| min_beta.powf(1.0 - i as f64 / span)));
                }
                b
            }
            Self::Sigmoid { radius } => {
                if !(radius > 0.0 && radius.is_finite()) {
                    candle::bail!("sigmoid schedule: radius must be positive, got {radius}");
                }
                let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
                let s: Vec<f64> = (0..=num_steps)
                    .map(|t| sigmoid(-radius + 2.0 * radius * t as f64 / t_max))
                    .collect();
                let (lo, hi) = (s[0], s[num_steps]);
                s.iter().map(|v| (v - lo) / (hi - lo)).collect()
            }
        };
        // Exact end points whatever the rounding.
        let mut betas = betas;
        betas[0] = 0.0;
        betas[num_steps] = 1.0;
        Ok(betas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schedule_runs_from_zero_to_one_monotonically() {
        for schedule in [
            AnnealingSchedule::Linear,
            AnnealingSchedule::Geometric { min_beta: 1e-4 },
            AnnealingSchedule::Sigmoid { radius: 4.0 },
        ] {
            for t in [1, 2, 7, 1000] {
                let b = schedule.betas(t).unwrap();
                assert_eq!(b.len(), t + 1);
                assert_eq!((b[0], b[t]), (0.0, 1.0), "{schedule:?} T={t}");
                assert!(b.windows(2).all(|w| w[1] >= w[0]), "{schedule:?} T={t}");
            }
        }
    }

    #[test]
    fn spacing_matches_the_definitions() {
        let lin = AnnealingSchedule::Linear.betas(4).unwrap();
        assert_eq!(lin, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let geo = AnnealingSchedule::Geometric { min_beta: 1e-3 }
            .betas(4)
            .unwrap();
        for (g, e) in geo.iter().zip([0.0, 1e-3, 1e-2, 1e-1, 1.0]) {
            assert!((g - e).abs() < 1e-12, "{geo:?}");
        }
        // The sigmoid schedule is symmetric about its middle: β_t + β_{T-t} = 1.
        let sig = AnnealingSchedule::Sigmoid { radius: 4.0 }
            .betas(10)
            .unwrap();
        for t in 0..=10 {
            assert!((sig[t] + sig[10 - t] - 1.0).abs() < 1e-12);
        }
        // And it crowds the ends: its first step is smaller than the linear one.
        assert!(sig[1] < 0.1);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(AnnealingSchedule::Linear.betas(0).is_err());
        assert!(
            AnnealingSchedule::Geometric { min_beta: 0.0 }
                .betas(5)
                .is_err()
        );
        assert!(
            AnnealingSchedule::Sigmoid { radius: f64::NAN }
                .betas(5)
                .is_err()
        );
    }
}

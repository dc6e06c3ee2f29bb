//! How the HMC step sizes of an AIS run are chosen: tuned by a pilot run and then frozen
//! (the default, which keeps AIS unbiased), or adapted online inside the estimating run
//! (a heuristic).

use serde::{Deserialize, Serialize};

/// How an AIS evaluation sets each data point's HMC step sizes.
///
/// AIS's weights are unbiased for `Z` (and BDMC's bounds hold) only when every transition
/// kernel is fixed before the run: a step size adapted from the same chains' acceptance makes
/// the kernel at step `k` depend on the chains' past.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StepSizeTuning {
    /// A pilot run on the same data points, with its own noise stream and `chains` chains
    /// per data point, adapts the step size online ([`crate::HmcConfig::adaptation`]); the
    /// estimating runs (forward and reverse alike) then use, for each data point and each of
    /// `stretches` equal stretches of the schedule's transitions, the geometric mean of the
    /// step sizes the pilot used there, frozen. Without an adaptation the configured step
    /// size is used throughout and no pilot runs.
    Pilot {
        /// Pilot chains per data point (≥ 1).
        chains: usize,
        /// Stretches of the schedule with their own step size (≥ 1; at most the number of
        /// transitions is used).
        stretches: usize,
    },
    /// The step size adapted online inside the estimating run from its own chains'
    /// acceptance, as in Wu et al.'s released code: a heuristic. The transitions then depend
    /// on the chains' past, so the estimate is no longer an unbiased estimate of `p(x)` and
    /// BDMC's sandwich loses its guarantee.
    Online,
}

impl Default for StepSizeTuning {
    fn default() -> Self {
        StepSizeTuning::Pilot {
            chains: 4,
            stretches: 20,
        }
    }
}

impl StepSizeTuning {
    /// A one-line description for reports, naming the online adaptation a heuristic.
    pub fn describe(&self) -> String {
        match self {
            StepSizeTuning::Pilot { chains, stretches } => format!(
                "frozen per data point and per stretch ({stretches} stretches) from a pilot run with {chains} chains and its own noise"
            ),
            StepSizeTuning::Online => {
                "online adaptation inside the estimating run (a heuristic: the estimate is not unbiased)"
                    .into()
            }
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// Zero pilot chains or stretches.
    pub fn validate(&self) -> candle::Result<()> {
        if let StepSizeTuning::Pilot { chains, stretches } = *self
            && (chains == 0 || stretches == 0)
        {
            candle::bail!(
                "AIS: the step-size pilot needs chains >= 1 and stretches >= 1, got {chains} and {stretches}"
            );
        }
        Ok(())
    }
}

/// Step sizes fixed before an annealing run: one per data point (group of chains) and
/// stretch of the forward schedule's transitions.
#[derive(Debug, Clone, PartialEq)]
pub struct FrozenStepSizes {
    /// `[groups][stretches]`.
    sizes: Vec<Vec<f64>>,
    /// Transitions of the forward schedule (`T − 1`).
    transitions: usize,
}

impl FrozenStepSizes {
    /// From a trace of the step sizes each group used at each transition of a forward run
    /// (`trace[j][g]`, `j` in schedule order): the geometric mean over each of `stretches`
    /// equal stretches of the transitions.
    ///
    /// # Errors
    /// An empty trace, rows of different lengths, a non-positive or non-finite step size,
    /// zero stretches.
    pub fn from_trace(trace: &[Vec<f64>], stretches: usize) -> candle::Result<Self> {
        let transitions = trace.len();
        let groups = trace.first().map_or(0, Vec::len);
        if transitions == 0 || groups == 0 || stretches == 0 {
            candle::bail!(
                "frozen step sizes: need a non-empty trace and at least one stretch ({transitions} transitions, {groups} groups, {stretches} stretches)"
            );
        }
        let stretches = stretches.min(transitions);
        let mut sums = vec![vec![0.0f64; stretches]; groups];
        let mut counts = vec![0usize; stretches];
        for (j, row) in trace.iter().enumerate() {
            if row.len() != groups {
                candle::bail!("frozen step sizes: trace rows of different lengths");
            }
            let s = Self::stretch_of(j, transitions, stretches);
            counts[s] += 1;
            for (g, &h) in row.iter().enumerate() {
                if !(h > 0.0 && h.is_finite()) {
                    candle::bail!(
                        "frozen step sizes: step size {h} of group {g} at transition {j}"
                    );
                }
                sums[g][s] += h.ln();
            }
        }
        let sizes = sums
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .zip(&counts)
                    .map(|(s, &c)| (s / c as f64).exp())
                    .collect()
            })
            .collect();
        Ok(Self { sizes, transitions })
    }

    /// The same step size `size` everywhere, for `groups` groups.
    pub fn constant(groups: usize, transitions: usize, size: f64) -> Self {
        Self {
            sizes: vec![vec![size]; groups],
            transitions: transitions.max(1),
        }
    }

    /// The stretch of forward transition `j` of `transitions` split into `stretches`.
    fn stretch_of(j: usize, transitions: usize, stretches: usize) -> usize {
        (j * stretches / transitions.max(1)).min(stretches - 1)
    }

    /// Number of groups (data points).
    pub fn groups(&self) -> usize {
        self.sizes.len()
    }

    /// Transitions of the forward schedule these sizes were made for.
    pub fn transitions(&self) -> usize {
        self.transitions
    }

    /// The step sizes of forward transition `j` for every group.
    pub fn at(&self, j: usize) -> Vec<f64> {
        self.sizes
            .iter()
            .map(|row| row[Self::stretch_of(j, self.transitions, row.len())])
            .collect()
    }
}

/// How an [`crate::anneal`] run sets its step sizes.
#[derive(Debug, Clone, Copy)]
pub enum StepSizePlan<'a> {
    /// Start at [`crate::HmcConfig::initial_step_size`] and adapt online per group (a
    /// heuristic for estimates; the way a pilot run tunes).
    Online,
    /// Sizes fixed before the run; a reverse run (decreasing inverse temperatures) looks up
    /// each transition by its place in the forward schedule.
    Frozen(&'a FrozenStepSizes),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretches_take_geometric_means_in_schedule_order() -> candle::Result<()> {
        // 4 transitions, 2 groups, 2 stretches.
        let trace = vec![
            vec![1.0, 0.5],
            vec![4.0, 0.5],
            vec![2.0, 8.0],
            vec![8.0, 2.0],
        ];
        let f = FrozenStepSizes::from_trace(&trace, 2)?;
        assert_eq!(f.groups(), 2);
        assert_eq!(f.at(0), vec![2.0, 0.5]);
        assert_eq!(f.at(1), vec![2.0, 0.5]);
        assert_eq!(f.at(2), vec![4.0, 4.0]);
        assert_eq!(f.at(3), vec![4.0, 4.0]);
        // More stretches than transitions: one per transition.
        let g = FrozenStepSizes::from_trace(&trace, 10)?;
        assert_eq!(g.at(1), vec![4.0, 0.5]);
        assert!(FrozenStepSizes::from_trace(&[], 2).is_err());
        assert!(FrozenStepSizes::from_trace(&[vec![0.0]], 1).is_err());
        assert!(FrozenStepSizes::from_trace(&trace, 0).is_err());
        Ok(())
    }

    #[test]
    fn tuning_validates_and_names_the_heuristic() {
        assert!(StepSizeTuning::default().validate().is_ok());
        assert!(
            StepSizeTuning::Pilot {
                chains: 0,
                stretches: 3
            }
            .validate()
            .is_err()
        );
        assert!(StepSizeTuning::Online.describe().contains("heuristic"));
    }
}

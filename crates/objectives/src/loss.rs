//! The loss object: an objective, the estimator's running statistics and a bounded summary
//! of its evaluations.

use crate::context::EvalContext;
use crate::estimator::EstimatorState;
use crate::evaluate::evaluate_with;
use crate::evaluation::Evaluation;
use crate::objective::ObjectiveConfig;
use candle::Result;
use serde::{Deserialize, Serialize};

/// The finite evaluations a [`Loss`] has made since its summary was last taken, as sums
/// (added in call order, so a caller that sums the same values gets the same bits) and their
/// means: a fixed-size record however long a run is. A mean of no evaluation is NaN.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct LossSummary {
    /// Finite evaluations summarised.
    pub count: u64,
    /// The first and the last (fractional) epoch evaluated at; `0` when `count` is `0`.
    pub epochs: (f64, f64),
    /// Sums of the minimised scalar, the bound, `E_q[log p(x|z)]`, the KL, `log p(x, z)` and
    /// `log q(z|x)`, in that order.
    sums: [f64; 6],
}

impl LossSummary {
    fn add(&mut self, loss: f64, eval: &Evaluation, epoch: f64) {
        self.count += 1;
        if self.count == 1 {
            self.epochs.0 = epoch;
        }
        self.epochs.1 = epoch;
        let values = [
            loss,
            eval.bound,
            eval.reconstruction,
            eval.kl,
            eval.mean_log_p,
            eval.mean_log_q,
        ];
        for (s, v) in self.sums.iter_mut().zip(values) {
            *s += v;
        }
    }

    fn mean(&self, i: usize) -> f64 {
        self.sums[i] / self.count as f64
    }

    /// Mean minimised scalar.
    pub fn loss(&self) -> f64 {
        self.mean(0)
    }

    /// Mean bound, nats per data point.
    pub fn bound(&self) -> f64 {
        self.mean(1)
    }

    /// Mean `E_q[log p(x|z)]`.
    pub fn reconstruction(&self) -> f64 {
        self.mean(2)
    }

    /// Mean KL.
    pub fn kl(&self) -> f64 {
        self.mean(3)
    }

    /// Mean `log p(x, z)`.
    pub fn mean_log_p(&self) -> f64 {
        self.mean(4)
    }

    /// Mean `log q(z|x)`.
    pub fn mean_log_q(&self) -> f64 {
        self.mean(5)
    }
}

/// An objective with the estimator's running statistics (NVIL's moving averages, which a
/// training pass updates and a checkpoint keeps) and a [`LossSummary`] of its finite
/// evaluations.
#[derive(Debug, Clone)]
pub struct Loss {
    config: ObjectiveConfig,
    summary: LossSummary,
    state: EstimatorState,
}

impl Loss {
    /// A loss for an objective configuration.
    pub fn new(config: ObjectiveConfig) -> Self {
        Self {
            config,
            summary: LossSummary::default(),
            state: EstimatorState::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ObjectiveConfig {
        &self.config
    }

    /// Evaluates the objective on `ctx`'s batch with this loss's running statistics, and adds
    /// a finite evaluation to the summary. A non-finite one is returned (and not summarised)
    /// so that the caller can skip it; [`Evaluation::checked`] makes it an error.
    ///
    /// # Errors
    /// Those of [`crate::evaluate`].
    pub fn compute(&mut self, ctx: EvalContext) -> Result<Evaluation> {
        let epoch = ctx.epoch;
        let eval = evaluate_with(&self.config, &mut self.state, ctx)?;
        if eval.is_finite() {
            let loss = eval.loss.to_dtype(candle::DType::F64)?.to_scalar::<f64>()?;
            self.summary.add(loss, &eval, epoch);
        }
        Ok(eval)
    }

    /// The summary since it was last taken.
    pub fn summary(&self) -> LossSummary {
        self.summary
    }

    /// Replaces the summary (a caller that undoes a step restores the one from before it).
    pub fn set_summary(&mut self, summary: LossSummary) {
        self.summary = summary;
    }

    /// The summary since it was last taken, starting a new one (e.g. at the end of an epoch).
    pub fn take_summary(&mut self) -> LossSummary {
        std::mem::take(&mut self.summary)
    }

    /// The estimator's running statistics (NVIL's moving averages), for checkpoints.
    pub fn state(&self) -> EstimatorState {
        self.state
    }

    /// Restores the estimator's running statistics (from a checkpoint).
    pub fn set_state(&mut self, state: EstimatorState) {
        self.state = state;
    }
}

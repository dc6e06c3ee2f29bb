//! The loss object: an objective plus the history of its evaluations.

use crate::estimator::EstimatorState;
use crate::model::{GenerativeModel, InferenceNetwork};
use crate::objective::{Evaluation, ObjectiveConfig, evaluate_with_state};
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_core::NoiseSource;
use vaekit_nets::Pass;

/// One evaluation, as recorded in a [`Loss`]'s history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossRecord {
    /// The (fractional) epoch it was evaluated at.
    pub epoch: f64,
    /// The minimised scalar.
    pub loss: f64,
    /// The bound, nats per data point.
    pub bound: f64,
    /// Mean `E_q[log p(x|z)]`.
    pub reconstruction: f64,
    /// Mean KL.
    pub kl: f64,
    /// Mean `log p(x, z)`.
    pub mean_log_p: f64,
    /// Mean `log q(z|x)`.
    pub mean_log_q: f64,
}

/// Takes an inference network, a generative model and a batch, returns a scalar to
/// differentiate, and keeps the history (loss, bound, mean log p, mean log q per call).
#[derive(Debug, Clone)]
pub struct Loss {
    config: ObjectiveConfig,
    history: Vec<LossRecord>,
    state: EstimatorState,
}

impl Loss {
    /// A loss for an objective configuration.
    pub fn new(config: ObjectiveConfig) -> Self {
        Self {
            config,
            history: Vec::new(),
            state: EstimatorState::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ObjectiveConfig {
        &self.config
    }

    /// Evaluates the objective on `x: [B, P]` and records it.
    ///
    /// # Errors
    /// Those of [`evaluate`].
    pub fn compute(
        &mut self,
        inference: &dyn InferenceNetwork,
        model: &dyn GenerativeModel,
        x: &Tensor,
        epoch: f64,
        noise: &mut dyn NoiseSource,
        pass: Pass,
    ) -> Result<Evaluation> {
        self.compute_unchecked(inference, model, x, epoch, noise, pass)?
            .checked()
    }

    /// [`Loss::compute`] without the finiteness check: non-finite evaluations are returned
    /// (and not recorded) so that the caller can skip them; see [`Evaluation::is_finite`].
    ///
    /// # Errors
    /// Those of [`evaluate_unchecked`].
    pub fn compute_unchecked(
        &mut self,
        inference: &dyn InferenceNetwork,
        model: &dyn GenerativeModel,
        x: &Tensor,
        epoch: f64,
        noise: &mut dyn NoiseSource,
        pass: Pass,
    ) -> Result<Evaluation> {
        let eval = evaluate_with_state(
            &self.config,
            &mut self.state,
            inference,
            model,
            x,
            epoch,
            noise,
            pass,
        )?;
        if eval.is_finite() {
            self.record(&eval, epoch)?;
        }
        Ok(eval)
    }

    fn record(&mut self, eval: &Evaluation, epoch: f64) -> Result<()> {
        self.history.push(LossRecord {
            epoch,
            loss: eval.loss.to_dtype(candle::DType::F64)?.to_scalar::<f64>()?,
            bound: eval.bound,
            reconstruction: eval.reconstruction,
            kl: eval.kl,
            mean_log_p: eval.mean_log_p,
            mean_log_q: eval.mean_log_q,
        });
        Ok(())
    }

    /// Every recorded evaluation, oldest first.
    pub fn history(&self) -> &[LossRecord] {
        &self.history
    }

    /// The estimator's running statistics (NVIL's moving averages), for checkpoints.
    pub fn state(&self) -> EstimatorState {
        self.state
    }

    /// Restores the estimator's running statistics (from a checkpoint).
    pub fn set_state(&mut self, state: EstimatorState) {
        self.state = state;
    }

    /// Forgets the history (e.g. at the start of an epoch).
    pub fn clear_history(&mut self) {
        self.history.clear();
    }
}

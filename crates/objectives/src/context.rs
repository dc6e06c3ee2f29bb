//! What one evaluation of an objective reads.

use crate::model::{GenerativeModel, InferenceNetwork};
use candle::Tensor;
use vaekit_core::NoiseSource;
use vaekit_nets::Pass;

/// One evaluation's inputs: the two networks, the batch `x: [B, P]`, the (fractional)
/// epoch that warm-up and temperature schedules read, the noise the draws come from, and
/// the pass (training, evaluation, data-dependent initialisation).
///
/// ```ignore
/// let ctx = EvalContext::new(&q, &p, &x, &mut noise).with_pass(Pass::Train).at_epoch(3.5);
/// let eval = vaekit_objectives::evaluate(&config, ctx)?.checked()?;
/// ```
pub struct EvalContext<'a> {
    /// q(z|x).
    pub inference: &'a dyn InferenceNetwork,
    /// p(x, z).
    pub model: &'a dyn GenerativeModel,
    /// The batch, `[B, P]`.
    pub x: &'a Tensor,
    /// The (fractional) epoch, `>= 0`.
    pub epoch: f64,
    /// Where every draw comes from.
    pub noise: &'a mut dyn NoiseSource,
    /// Training, evaluation or data-dependent initialisation.
    pub pass: Pass<'a>,
}

impl<'a> EvalContext<'a> {
    /// An evaluation pass ([`Pass::Eval`]) at epoch 0.
    pub fn new(
        inference: &'a dyn InferenceNetwork,
        model: &'a dyn GenerativeModel,
        x: &'a Tensor,
        noise: &'a mut dyn NoiseSource,
    ) -> Self {
        Self {
            inference,
            model,
            x,
            epoch: 0.0,
            noise,
            pass: Pass::Eval,
        }
    }

    /// The same with another pass.
    pub fn with_pass(self, pass: Pass<'a>) -> Self {
        Self { pass, ..self }
    }

    /// The same at another (fractional) epoch.
    pub fn at_epoch(self, epoch: f64) -> Self {
        Self { epoch, ..self }
    }
}

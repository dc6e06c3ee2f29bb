//! The one way to evaluate an objective: [`evaluate`] dispatches to the ELBO (`elbo.rs`), the
//! IWAE bound (`iwae.rs`) or an estimator (`estimator/`); [`data_dependent_init`] runs the
//! ELBO with the initialising pass.

use crate::context::EvalContext;
use crate::elbo::elbo;
use crate::estimator::{self, EstimatorState};
use crate::evaluation::Evaluation;
use crate::iwae::iwae;
use crate::model::{GenerativeModel, InferenceNetwork};
use crate::objective::{Objective, ObjectiveConfig};
use candle::{Result, Tensor};
use vaekit_core::NoiseSource;
use vaekit_nets::{ParamStore, Pass};

/// Evaluates `config` on `ctx`'s batch, with fresh estimator statistics (NVIL's moving
/// averages start afresh; [`crate::Loss::compute`] keeps them across calls). A NaN or
/// infinite bound is returned, not an error: [`Evaluation::checked`] turns it into one, and
/// the trainer skips and counts such batches.
///
/// # Errors
/// A zero sample count; a pathwise objective (ELBO, IWAE) trained through a posterior that is
/// not reparameterized (discrete latents); DReG with a flow posterior; the estimators' own.
pub fn evaluate(config: &ObjectiveConfig, ctx: EvalContext) -> Result<Evaluation> {
    evaluate_with(config, &mut EstimatorState::default(), ctx)
}

/// Data-dependent initialisation: one pass of the single-sample ELBO over the batch `x`
/// (`[B, P]`, as training will see it) with [`Pass::DataInit`], which writes weight norm's
/// gains and biases in `store` so that every pre-activation starts with zero mean and unit
/// variance (Salimans and Kingma, arXiv 1602.07868). Layers without weight norm are left as
/// they are.
///
/// # Errors
/// A batch of the wrong shape; a non-finite bound; candle's.
pub fn data_dependent_init(
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    store: &ParamStore,
    x: &Tensor,
    noise: &mut dyn NoiseSource,
) -> Result<()> {
    let ctx = EvalContext::new(inference, model, x, noise).with_pass(Pass::DataInit(store));
    evaluate(&ObjectiveConfig::elbo(), ctx)?.checked()?;
    Ok(())
}

/// [`evaluate`] with the estimator's running statistics in `state`, which a training pass
/// updates.
pub(crate) fn evaluate_with(
    config: &ObjectiveConfig,
    state: &mut EstimatorState,
    ctx: EvalContext,
) -> Result<Evaluation> {
    let num_samples = config.objective.num_samples();
    if num_samples == 0 {
        candle::bail!("objective: num_samples must be > 0");
    }
    match config.objective {
        Objective::Elbo { analytic_kl, .. } => elbo(config, analytic_kl, num_samples, ctx),
        Objective::Iwae { gradient, .. } => iwae(gradient, num_samples, ctx),
        _ => estimate(config, state, num_samples, ctx),
    }
}

/// The estimators for latents that cannot be reparameterized (`estimator/`).
fn estimate(
    config: &ObjectiveConfig,
    state: &mut EstimatorState,
    num_samples: usize,
    ctx: EvalContext,
) -> Result<Evaluation> {
    let EvalContext {
        inference,
        model,
        x,
        epoch,
        noise,
        pass,
    } = ctx;
    match config.objective {
        Objective::Reinforce { baseline, .. } => estimator::reinforce(
            baseline,
            state,
            inference,
            model,
            x,
            num_samples,
            noise,
            pass,
        ),
        Objective::Vimco { .. } => estimator::vimco(inference, model, x, num_samples, noise, pass),
        Objective::Rws { wake_fraction, .. } => {
            estimator::rws(wake_fraction, inference, model, x, num_samples, noise, pass)
        }
        Objective::Concrete {
            temperature,
            straight_through,
            ..
        } => estimator::concrete(
            temperature,
            straight_through,
            inference,
            model,
            x,
            epoch,
            num_samples,
            noise,
            pass,
        ),
        Objective::Elbo { .. } | Objective::Iwae { .. } => {
            candle::bail!("objective: the ELBO and IWAE are pathwise, not estimators")
        }
    }
}

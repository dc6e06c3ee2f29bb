//! One training-pass evaluation of a built model and its gradients, for the models' tests.
#![allow(dead_code, clippy::unwrap_used)]

use candle::backprop::GradStore;
use candle::{Device, Tensor, Var};
use vaekit_core::SeededNoise;
use vaekit_models::{Model, RunConfig};
use vaekit_nets::Pass;
use vaekit_objectives::{EvalContext, Evaluation, evaluate};

/// `cfg`'s model (built on the CPU), its objective on `x` in a training pass with seed 1,
/// and the loss's gradients.
pub fn one_step(cfg: &RunConfig, x: &Tensor) -> (Model, Evaluation, GradStore) {
    let model = cfg.build(&Device::Cpu).unwrap();
    let eval = evaluate(
        &cfg.objective,
        EvalContext::new(
            model.q.as_ref(),
            model.p.as_ref(),
            x,
            &mut SeededNoise::new(1),
        )
        .with_pass(Pass::Train),
    )
    .unwrap();
    let grads = eval.loss.backward().unwrap();
    (model, eval, grads)
}

/// `|∇ var|²`, or `None` when the gradient store has no entry for it.
pub fn grad_norm(grads: &GradStore, var: &Var) -> Option<f32> {
    let g = grads.get(var.as_tensor())?;
    Some(
        g.sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
    )
}

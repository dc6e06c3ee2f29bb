//! The dense VAE workloads: a training step (ELBO and IWAE-50), importance sampling and a
//! HAIS leapfrog step, all through the same networks `train-iaf --preset iwae-dense` builds.

use super::Step;
use candle::{DType, Device, Tensor, Var};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_eval::{
    AisStart, ImportanceConfig, PathPoint, VaePath, importance_sampled_log_likelihood, leapfrog,
};
use vaekit_models::{Model, RunConfig, build, frozen};
use vaekit_nets::{ParamStore, Pass};
use vaekit_objectives::{
    EvalContext, GenerativeModel, InferenceNetwork, IwaeGradient, Loss, Objective, ObjectiveConfig,
};
use vaekit_train::{Optimizer, OptimizerConfig};

type Q = Box<dyn InferenceNetwork>;
type P = Box<dyn GenerativeModel>;

/// The `iwae-dense` preset's networks, as `train-iaf` builds them: over a new store (from
/// `init_seed`), or frozen over `store`'s values (plain tensors, as `train-iaf eval` uses).
fn trainable(init_seed: u64, dev: &Device) -> anyhow::Result<Model> {
    Ok(build(
        &RunConfig::preset("iwae-dense")?.model,
        init_seed,
        dev,
    )?)
}

fn frozen_networks(store: &ParamStore, dev: &Device) -> anyhow::Result<(Q, P)> {
    Ok(frozen(&RunConfig::preset("iwae-dense")?.model, store, dev)?)
}

/// `rows` binary images of 784 pixels, seeded.
fn binary_batch(rows: usize, noise: &mut SeededNoise, dev: &Device) -> anyhow::Result<Tensor> {
    Ok(noise
        .uniform(&(rows, 784).into(), DType::F32, dev)?
        .ge(0.5)?
        .to_dtype(DType::F32)?)
}

fn train_step(objective: Objective, batch: usize, dev: &Device) -> anyhow::Result<Step> {
    let Model { store, q, p } = trainable(0, dev)?;
    let named = store.trainable();
    let vars: Vec<Var> = named.iter().map(|(_, v)| v.clone()).collect();
    let mut noise = SeededNoise::new(1);
    let x = binary_batch(batch, &mut noise, dev)?;
    let mut loss = Loss::new(ObjectiveConfig {
        objective,
        ..ObjectiveConfig::default()
    });
    let mut opt = Optimizer::new(OptimizerConfig::default());
    Ok(Box::new(move || {
        let ctx = EvalContext::new(q.as_ref(), p.as_ref(), &x, &mut noise);
        let eval = loss.compute(ctx.with_pass(Pass::Train))?.checked()?;
        let grads = eval.gradients(&vars, &[])?;
        opt.step(&named, &grads, 1e-3)?;
        Ok(())
    }))
}

/// The ELBO with the analytic KL, one sample.
const ELBO: Objective = Objective::Elbo {
    num_samples: 1,
    analytic_kl: true,
};

/// One ELBO training step at batch 100.
pub fn vae_step(dev: &Device) -> anyhow::Result<Step> {
    train_step(ELBO, 100, dev)
}

/// One ELBO training step at batch 20: the IWAE paper's batch, `train-iaf`'s main job's step.
pub fn vae_step_b20(dev: &Device) -> anyhow::Result<Step> {
    train_step(ELBO, 20, dev)
}

/// One IWAE (k = 50) training step at batch 100.
pub fn iwae_step(dev: &Device) -> anyhow::Result<Step> {
    train_step(
        Objective::Iwae {
            num_samples: 50,
            gradient: IwaeGradient::Standard,
        },
        100,
        dev,
    )
}

/// IS of 20 data points with 500 samples each (one chunk), as `train-iaf eval` runs it.
pub fn importance(dev: &Device) -> anyhow::Result<Step> {
    let store = trainable(0, dev)?.store;
    let (q, p) = frozen_networks(&store, dev)?;
    let mut noise = SeededNoise::new(1);
    let x = binary_batch(20, &mut noise, dev)?;
    let config = ImportanceConfig {
        num_samples: 500,
        chunk: 500,
        batch_size: 20,
    };
    Ok(Box::new(move || {
        importance_sampled_log_likelihood(
            q.as_ref(),
            p.as_ref(),
            &x,
            &config,
            &mut noise,
            &mut (),
        )?;
        Ok(())
    }))
}

/// One leapfrog step of HAIS from the prior at β = 0.5: 100 data points × 16 chains.
pub fn leapfrog_step(dev: &Device) -> anyhow::Result<Step> {
    let (batch, chains) = (100, 16);
    let store = trainable(0, dev)?.store;
    let (q, p) = frozen_networks(&store, dev)?;
    let mut noise = SeededNoise::new(1);
    let x = binary_batch(batch, &mut noise, dev)?;
    let eps = noise.standard_normal(&(batch, chains, 50).into(), DType::F32, dev)?;
    let momentum = noise.standard_normal(&(batch, chains, 50).into(), DType::F32, dev)?;
    let step = Tensor::full(0.05f32, (batch, 1, 1), dev)?;
    // The path borrows the networks: keep them alive inside the closure.
    let models = Box::new((q, p, x));
    let models: &'static (Q, P, Tensor) = Box::leak(models);
    let path = VaePath::new(
        models.0.as_ref(),
        models.1.as_ref(),
        &models.2,
        AisStart::Prior,
    )?;
    let point = PathPoint::evaluate(&path, &eps)?;
    Ok(Box::new(move || {
        leapfrog(&path, &point, &momentum, 0.5, &step, 1)?;
        Ok(())
    }))
}

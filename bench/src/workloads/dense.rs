//! The dense VAE workloads: a training step (ELBO and IWAE-50), importance sampling and a
//! HAIS leapfrog step, all through the same networks `train-iaf --preset iwae-dense` builds.

use super::Step;
use candle::{DType, Device, Tensor, Var};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_eval::{
    AisStart, ImportanceConfig, PathPoint, VaePath, importance_sampled_log_likelihood, leapfrog,
};
use vaekit_flows::FlowChain;
use vaekit_nets::{
    DenseConfig, DenseDecoder, DenseEncoder, Likelihood, ParamStore, Pass, dense_decoder,
    dense_encoder,
};
use vaekit_objectives::{
    DecoderModel, EncoderFlow, IwaeGradient, Loss, Objective, ObjectiveConfig,
};
use vaekit_train::{Optimizer, OptimizerConfig};

type Q = EncoderFlow<DenseEncoder>;
type P = DecoderModel<DenseDecoder>;

/// The networks over `store`, trainable or frozen (plain tensors, as `train-iaf eval` uses;
/// the store must hold the parameters already).
fn networks(store: &ParamStore, frozen: bool, dev: &Device) -> anyhow::Result<(Q, P)> {
    let cfg = DenseConfig::default();
    let vb = if frozen {
        store.frozen_var_builder(DType::F32, dev)
    } else {
        store.var_builder(DType::F32, dev)
    };
    let q = EncoderFlow::new(dense_encoder(&cfg, vb.pp("encoder"))?, FlowChain::default());
    let p = DecoderModel::new(
        dense_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder"))?,
        DType::F32,
        dev,
    )?;
    Ok((q, p))
}

/// `rows` binary images of 784 pixels, seeded.
fn binary_batch(rows: usize, noise: &mut SeededNoise, dev: &Device) -> anyhow::Result<Tensor> {
    Ok(noise
        .uniform(&(rows, 784).into(), DType::F32, dev)?
        .ge(0.5)?
        .to_dtype(DType::F32)?)
}

fn train_step(objective: Objective, dev: &Device) -> anyhow::Result<Step> {
    let store = ParamStore::new(0);
    let (q, p) = networks(&store, false, dev)?;
    let named = store.trainable();
    let vars: Vec<Var> = named.iter().map(|(_, v)| v.clone()).collect();
    let mut noise = SeededNoise::new(1);
    let x = binary_batch(100, &mut noise, dev)?;
    let mut loss = Loss::new(ObjectiveConfig {
        objective,
        ..ObjectiveConfig::default()
    });
    let mut opt = Optimizer::new(OptimizerConfig::default());
    Ok(Box::new(move || {
        let eval = loss.compute(&q, &p, &x, 0.0, &mut noise, Pass::Train)?;
        let grads = eval.gradients(&vars, &[])?;
        opt.step(&named, &grads, 1e-3)?;
        loss.clear_history();
        Ok(())
    }))
}

/// One ELBO training step at batch 100.
pub fn vae_step(dev: &Device) -> anyhow::Result<Step> {
    train_step(
        Objective::Elbo {
            num_samples: 1,
            analytic_kl: true,
        },
        dev,
    )
}

/// One IWAE (k = 50) training step at batch 100.
pub fn iwae_step(dev: &Device) -> anyhow::Result<Step> {
    train_step(
        Objective::Iwae {
            num_samples: 50,
            gradient: IwaeGradient::Standard,
        },
        dev,
    )
}

/// IS of 20 data points with 500 samples each (one chunk), as `train-iaf eval` runs it.
pub fn importance(dev: &Device) -> anyhow::Result<Step> {
    let store = ParamStore::new(0);
    networks(&store, false, dev)?;
    let (q, p) = networks(&store, true, dev)?;
    let mut noise = SeededNoise::new(1);
    let x = binary_batch(20, &mut noise, dev)?;
    let config = ImportanceConfig {
        num_samples: 500,
        chunk: 500,
        batch_size: 20,
    };
    Ok(Box::new(move || {
        importance_sampled_log_likelihood(&q, &p, &x, &config, &mut noise)?;
        Ok(())
    }))
}

/// One leapfrog step of HAIS from the prior at β = 0.5: 100 data points × 16 chains.
pub fn leapfrog_step(dev: &Device) -> anyhow::Result<Step> {
    let (batch, chains) = (100, 16);
    let store = ParamStore::new(0);
    networks(&store, false, dev)?;
    let (q, p) = networks(&store, true, dev)?;
    let mut noise = SeededNoise::new(1);
    let x = binary_batch(batch, &mut noise, dev)?;
    let eps = noise.standard_normal(&(batch, chains, 50).into(), DType::F32, dev)?;
    let momentum = noise.standard_normal(&(batch, chains, 50).into(), DType::F32, dev)?;
    let step = Tensor::full(0.05f32, (batch, 1, 1), dev)?;
    // The path borrows the networks: keep them alive inside the closure.
    let models = Box::new((q, p, x));
    let models: &'static (Q, P, Tensor) = Box::leak(models);
    let path = VaePath::new(&models.0, &models.1, &models.2, AisStart::Prior)?;
    let point = PathPoint::evaluate(&path, &eps)?;
    Ok(Box::new(move || {
        leapfrog(&path, &point, &momentum, 0.5, &step, 1)?;
        Ok(())
    }))
}

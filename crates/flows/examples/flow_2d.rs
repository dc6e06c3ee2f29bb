//! A flow on its own: four IAF steps (a MADE each, no context) fitted to a 2-D banana
//! density by minimising KL(q || p) over draws of q, in the spirit of Rezende and Mohamed
//! (2015), §6.1 (their targets are unnormalised energies fitted with planar flows).
//! The target is normalised, so the printed KL is exact up to Monte Carlo error and falls
//! towards 0 as the flow learns the curved shape a Gaussian cannot take.
//! `cargo run --release --example flow_2d`
use candle::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_flows::{Flow, IafVariant, MadeConfig, iaf_chain};
use vaekit_nets::{Normalization, ParamStore, Pass};

/// `log p(z)` of the banana: `z1 ~ N(0, 2²)`, `z2 | z1 ~ N(z1²/4 - 1, 0.5²)`; `[N, 2] -> [N]`.
fn log_target(z: &Tensor) -> candle::Result<Tensor> {
    let (z1, z2) = (
        z.narrow(1, 0, 1)?.squeeze(1)?,
        z.narrow(1, 1, 1)?.squeeze(1)?,
    );
    let log_normal = |x: Tensor, scale: f64| -> candle::Result<Tensor> {
        let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        (x / scale)?
            .sqr()?
            .affine(-0.5, -(scale.ln() + half_ln_2pi))
    };
    let mean2 = ((z1.sqr()? * 0.25)? - 1.0)?;
    log_normal(z1.clone(), 2.0)? + log_normal((z2 - mean2)?, 0.5)?
}

/// `log q(z) - log p(z)` for `n` draws `z = f(ε)`, `ε ~ N(0, I)`: `[n]`.
fn log_ratio(flow: &dyn Flow, n: usize, noise: &mut SeededNoise) -> candle::Result<Tensor> {
    let eps = noise.standard_normal(&(n, 2).into(), DType::F32, &Device::Cpu)?;
    let log_base = ((eps.sqr()?.sum(1)? * -0.5)? - (2.0 * std::f64::consts::PI).ln())?;
    let out = flow.forward(&eps, None, Pass::Train)?;
    (log_base - out.log_det_jacobian)? - log_target(&out.value)?
}

fn main() -> candle::Result<()> {
    let store = ParamStore::new(0);
    let made = MadeConfig {
        dim: 2,
        hidden: vec![32, 32],
        context_dim: 0,
        norm: Normalization::None,
        ..MadeConfig::default()
    };
    let variant = IafVariant::Gated { forget_bias: 1.0 };
    let flow = iaf_chain(
        4,
        &made,
        variant,
        store.var_builder(DType::F32, &Device::Cpu),
    )?;
    let vars = store.trainable().into_iter().map(|(_, v)| v).collect();
    let mut adam = AdamW::new(
        vars,
        ParamsAdamW {
            lr: 3e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut noise = SeededNoise::new(1);
    for step in 0..=2000 {
        if step % 400 == 0 {
            let kl = log_ratio(&flow, 20_000, &mut noise)?
                .mean(0)?
                .to_scalar::<f32>()?;
            println!("step {step:>4}: KL(q || p) = {kl:.4} nats (20000 draws)");
        }
        let loss = log_ratio(&flow, 256, &mut noise)?.mean(0)?;
        adam.backward_step(&loss)?;
    }
    Ok(())
}

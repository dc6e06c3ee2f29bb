//! One gated IAF step at the IAF paper's size.

use super::Step;
use candle::{DType, Device, Shape, Var};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_flows::{Flow, IafVariant, MadeConfig, iaf_step as build_step};
use vaekit_nets::{ParamStore, Pass};

/// Batch 100, latent 64, cMADE [1920, 1920] with context 1920, weight norm, ELU; the loss
/// `Σ z'² + Σ log det` differentiated for the parameters, `z` and the context.
pub fn iaf_step(dev: &Device) -> anyhow::Result<Step> {
    let store = ParamStore::new(0);
    let step = build_step(
        &MadeConfig::default(),
        IafVariant::Gated { forget_bias: 1.0 },
        store.var_builder(DType::F32, dev),
    )?;
    let mut noise = SeededNoise::new(1);
    let z = Var::from_tensor(&noise.standard_normal(&Shape::from((100, 64)), DType::F32, dev)?)?;
    let h =
        Var::from_tensor(&noise.standard_normal(&Shape::from((100, 1920)), DType::F32, dev)?)?;
    Ok(Box::new(move || {
        let out = step.forward(z.as_tensor(), Some(h.as_tensor()), Pass::Train)?;
        (out.value.sqr()?.sum_all()? + out.log_det_jacobian.sum_all()?)?.backward()?;
        Ok(())
    }))
}

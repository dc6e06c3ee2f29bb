//! Adam and Adamax with state keyed by parameter name, so it can be checkpointed.

use candle::{Result, Shape, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

use vaekit_ops::{
    AdamStep, HostMoments, HostUpdate, adam_update, adam_update_applies, adam_update_host_all,
    adam_update_host_applies,
};

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam (Kingma & Ba, arXiv 1412.6980, algorithm 1).
    #[default]
    Adam,
    /// Adamax, Adam with the infinity norm (same paper, algorithm 2); the IAF paper's choice.
    Adamax,
}

/// Hyper-parameters of an [`Optimizer`]. Weight decay is explicit and decoupled
/// (`p -= lr · weight_decay · p`), 0 by default, unlike candle-nn's `AdamW` (0.01).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// Adam or Adamax.
    pub kind: OptimizerKind,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment (Adam) or infinity-norm (Adamax) decay.
    pub beta2: f64,
    /// Denominator offset.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl OptimizerConfig {
    /// The update kernels' view of this configuration.
    pub fn adam_step(&self) -> AdamStep {
        AdamStep {
            adamax: self.kind == OptimizerKind::Adamax,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
        }
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Adam,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Adam or Adamax over named variables. State: the step count and, per parameter name, the
/// first moment `m` and the second moment `v` (Adam) or infinity norm `u` (Adamax).
///
/// On the CPU (contiguous f32 and f64 parameters) the moments live in host vectors and each
/// parameter is updated in one fused pass (`vaekit_ops::adam_update_host`), all of a step's
/// parameters in one parallel region, moments below the smallest normal number stored as
/// zero; on CUDA with the `cuda` feature the moments are tensors updated in place by fused
/// kernels (`vaekit_ops::adam_update`, `vaekit-kernels`, without that flush); on other
/// devices, and for other dtypes or strided parameters, the update is composed from candle
/// ops. The three agree to rounding (and the flush). The state is owned:
/// [`Optimizer::state_tensors`] and [`Optimizer::load_state`] copy.
#[derive(Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    step: u64,
    state: BTreeMap<String, Moments>,
}

/// One parameter's moments: in host memory for the CPU's one-pass update, else tensors.
#[derive(Debug)]
enum Moments {
    Host { moments: HostMoments, shape: Shape },
    Tensors(Tensor, Tensor),
}

impl Moments {
    /// Copies as tensors (`m`, `v`) of the parameter's shape.
    fn tensors(&self) -> Result<(Tensor, Tensor)> {
        match self {
            Moments::Host { moments, shape } => moments.to_tensors(shape),
            Moments::Tensors(m, v) => Ok((m.copy()?, v.copy()?)),
        }
    }
}

impl Optimizer {
    /// A fresh optimizer.
    pub fn new(config: OptimizerConfig) -> Self {
        Self {
            config,
            step: 0,
            state: BTreeMap::new(),
        }
    }

    /// Steps taken.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Applies one update with learning rate `lr`: `params[i]` moves along `grads[i]`.
    ///
    /// Everything is checked before anything moves: on a length, name, shape or dtype error
    /// the parameters, the moments and the step count stay as they were.
    ///
    /// # Errors
    /// Length mismatches, a name or a variable given twice, a gradient or saved moment whose
    /// shape is not its parameter's, a dtype the update does not cover.
    pub fn step(&mut self, params: &[(String, Var)], grads: &[Tensor], lr: f64) -> Result<()> {
        if params.len() != grads.len() {
            candle::bail!(
                "optimizer: {} parameters but {} gradients",
                params.len(),
                grads.len()
            );
        }
        let (mut names, mut ids) = (HashSet::new(), HashSet::new());
        for (name, var) in params {
            if !names.insert(name.as_str()) || !ids.insert(var.as_tensor().id()) {
                candle::bail!("optimizer: parameter {name} is given twice (by name or variable)");
            }
        }
        let grads: Vec<Tensor> = params
            .iter()
            .zip(grads)
            .map(|((name, var), g)| {
                if g.shape() != var.shape() {
                    candle::bail!(
                        "optimizer: gradient {:?} for parameter {name} of {:?}",
                        g.dims(),
                        var.dims()
                    );
                }
                g.to_dtype(var.dtype())
            })
            .collect::<Result<_>>()?;
        // The CPU's parameters keep their moments in host memory; saved tensors are converted
        // (and checked) before any update.
        let host: Vec<usize> = (0..params.len())
            .filter(|&i| {
                adam_update_host_applies(params[i].1.as_tensor()) && grads[i].device().is_cpu()
            })
            .collect();
        let mut converted = Vec::new();
        for &i in &host {
            let (name, p) = (&params[i].0, params[i].1.as_tensor());
            let moments = match self.state.get(name) {
                Some(Moments::Host { shape, .. }) if shape == p.shape() => continue,
                Some(Moments::Host { shape, .. }) => candle::bail!(
                    "optimizer: moments of {name} have shape {shape:?}, the parameter {:?}",
                    p.dims()
                ),
                Some(Moments::Tensors(m, v)) if m.shape() == p.shape() => {
                    HostMoments::from_tensors(m, v)?
                }
                Some(Moments::Tensors(m, _)) => candle::bail!(
                    "optimizer: moments of {name} have shape {:?}, the parameter {:?}",
                    m.dims(),
                    p.dims()
                ),
                None => HostMoments::zeros(p)?,
            };
            if moments.len() != p.elem_count() || !moments.matches(p.dtype()) {
                candle::bail!("optimizer: saved moments of {name} do not fit the parameter");
            }
            converted.push((name.clone(), moments, p.shape().clone()));
        }
        for (name, moments, shape) in converted {
            self.state.insert(name, Moments::Host { moments, shape });
        }
        self.step += 1;
        let t = self.step as i32;
        let c = self.config;
        // Other devices and dtypes, one after another.
        for (i, ((name, var), g)) in params.iter().zip(&grads).enumerate() {
            if !host.contains(&i) {
                self.update_other(name, var, g, lr, t)?;
            }
        }
        // The CPU's, all in one parallel region.
        let mut taken: Vec<(usize, HostMoments, Shape)> = Vec::with_capacity(host.len());
        for &i in &host {
            match self.state.remove(&params[i].0) {
                Some(Moments::Host { moments, shape }) => taken.push((i, moments, shape)),
                _ => candle::bail!("optimizer: the moments of {} went missing", params[i].0),
            }
        }
        let mut updates: Vec<HostUpdate> = taken
            .iter_mut()
            .map(|(i, moments, _)| HostUpdate {
                param: params[*i].1.as_tensor(),
                grad: &grads[*i],
                moments,
            })
            .collect();
        let done = adam_update_host_all(&c.adam_step(), lr, t, &mut updates);
        drop(updates);
        for (i, moments, shape) in taken {
            self.state
                .insert(params[i].0.clone(), Moments::Host { moments, shape });
        }
        done
    }

    /// The update of a parameter off the host path: in-place kernels on CUDA, else
    /// composed from candle ops; its moments as tensors on its device.
    fn update_other(&mut self, name: &str, var: &Var, g: &Tensor, lr: f64, t: i32) -> Result<()> {
        let (c, p) = (self.config, var.as_tensor());
        let (m, v) = match self.state.get(name) {
            Some(Moments::Tensors(m, v)) => (m.clone(), v.clone()),
            Some(host) => {
                let (m, v) = host.tensors()?;
                (m.to_device(p.device())?, v.to_device(p.device())?)
            }
            None => (p.zeros_like()?, p.zeros_like()?),
        };
        let (m, v) = if adam_update_applies(p) && p.is_contiguous() {
            adam_update(&c.adam_step(), lr, t, p, g, &m, &v)?;
            (m, v)
        } else {
            composed_update(&c, lr, t, var, g, m, v)?
        };
        self.state.insert(name.to_string(), Moments::Tensors(m, v));
        Ok(())
    }

    /// The state as named tensors (`m.<name>`, `v.<name>`) for a checkpoint: copies, since
    /// the fused update mutates the live state in place.
    ///
    /// # Errors
    /// A failed copy.
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (name, moments) in &self.state {
            let (m, v) = moments.tensors()?;
            out.insert(format!("m.{name}"), m);
            out.insert(format!("v.{name}"), v);
        }
        Ok(out)
    }

    /// Restores the state saved by [`Optimizer::state_tensors`] and the step count.
    ///
    /// # Errors
    /// A first moment without its second.
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        self.state.clear();
        for (key, m) in tensors {
            if let Some(name) = key.strip_prefix("m.") {
                let Some(v) = tensors.get(&format!("v.{name}")) else {
                    candle::bail!("optimizer: checkpoint has m.{name} but no v.{name}");
                };
                self.state
                    .insert(name.to_string(), Moments::Tensors(m.copy()?, v.copy()?));
            }
        }
        self.step = step;
        Ok(())
    }
}

/// The update composed from candle ops (any device, any float dtype): returns the new
/// moments and sets `var`.
fn composed_update(
    c: &OptimizerConfig,
    lr: f64,
    t: i32,
    var: &Var,
    g: &Tensor,
    m: Tensor,
    v: Tensor,
) -> Result<(Tensor, Tensor)> {
    let m = ((m * c.beta1)? + (g * (1.0 - c.beta1))?)?;
    let (v, update) = match c.kind {
        OptimizerKind::Adam => {
            let v = ((v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&m / (1.0 - c.beta1.powi(t)))?;
            let v_hat = (&v / (1.0 - c.beta2.powi(t)))?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            (v, update)
        }
        OptimizerKind::Adamax => {
            let u = (v * c.beta2)?.maximum(&g.abs()?)?;
            let update = ((&m / (&u + c.eps)?)? / (1.0 - c.beta1.powi(t)))?;
            (u, update)
        }
    };
    let mut next = (var.as_tensor() - (update * lr)?)?;
    if c.weight_decay != 0.0 {
        next = (next - (var.as_tensor() * (lr * c.weight_decay))?)?;
    }
    var.set(&next)?;
    Ok((m, v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    /// Two Adam steps on a scalar, against the update computed by hand from the paper.
    #[test]
    fn adam_matches_the_algorithm() -> Result<()> {
        let var = Var::new(&[1.0f64], &Device::Cpu)?;
        let params = vec![("p".to_string(), var.clone())];
        let mut opt = Optimizer::new(OptimizerConfig::default());
        let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8, 0.1);
        let (mut p, mut m, mut v) = (1.0f64, 0.0, 0.0);
        for t in 1..=3 {
            let g = 2.0 * p; // gradient of p²
            opt.step(&params, &[Tensor::new(&[g], &Device::Cpu)?], lr)?;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let (mh, vh) = (m / (1.0 - b1.powi(t)), v / (1.0 - b2.powi(t)));
            p -= lr * mh / (vh.sqrt() + eps);
            assert!((var.as_tensor().to_vec1::<f64>()?[0] - p).abs() < 1e-12);
        }
        Ok(())
    }

    /// The fused in-place CPU update against the composed one (kept for other devices), for
    /// both rules, with weight decay, over several steps of f32 and f64 parameters, small
    /// (one pass) and large (chunks on rayon's threads, the last one partial).
    #[test]
    fn fused_update_matches_the_composed_one() -> Result<()> {
        let dev = Device::Cpu;
        for (kind, (rows, cols)) in [
            (OptimizerKind::Adam, (3, 4)),
            (OptimizerKind::Adamax, (3, 4)),
            (OptimizerKind::Adam, (300, 251)),
            (OptimizerKind::Adamax, (300, 251)),
        ] {
            for dtype in [candle::DType::F32, candle::DType::F64] {
                let cfg = OptimizerConfig {
                    kind,
                    weight_decay: 0.01,
                    eps: 1e-4,
                    ..OptimizerConfig::default()
                };
                let n = rows * cols;
                let init = Tensor::arange(0f64, n as f64, &dev)?
                    .affine(3.6 / n as f64, -1.7)?
                    .reshape((rows, cols))?
                    .to_dtype(dtype)?;
                let fused = Var::from_tensor(&init)?;
                let composed = Var::from_tensor(&init)?;
                let (m, v) = (init.zeros_like()?, init.zeros_like()?);
                let (mut m2, mut v2) = (init.zeros_like()?, init.zeros_like()?);
                for t in 1..=5 {
                    let g = fused.as_tensor().sin()?.affine(f64::from(t), 0.1)?;
                    adam_update(&cfg.adam_step(), 0.01, t, fused.as_tensor(), &g, &m, &v)?;
                    (m2, v2) = composed_update(&cfg, 0.01, t, &composed, &g, m2, v2)?;
                    let tol = if dtype == candle::DType::F32 {
                        1e-6
                    } else {
                        1e-14
                    };
                    for (x, y) in [
                        (fused.as_tensor(), composed.as_tensor()),
                        (&m, &m2),
                        (&v, &v2),
                    ] {
                        let diff = (x.to_dtype(candle::DType::F64)?
                            - y.to_dtype(candle::DType::F64)?)?
                        .abs()?
                        .flatten_all()?
                        .max(0)?
                        .to_scalar::<f64>()?;
                        assert!(diff < tol, "{kind:?} {dtype:?} step {t}: {diff}");
                    }
                }
                // The parameter moved, so the comparison is not vacuous.
                let moved = (fused.as_tensor() - &init)?.abs()?.sum_all()?;
                assert!(moved.to_dtype(candle::DType::F64)?.to_scalar::<f64>()? > 1e-3);
            }
        }
        Ok(())
    }

    #[test]
    fn adamax_converges_and_state_round_trips() -> Result<()> {
        let var = Var::new(&[3.0f64, -2.0], &Device::Cpu)?;
        let params = vec![("w".to_string(), var.clone())];
        let cfg = OptimizerConfig {
            kind: OptimizerKind::Adamax,
            ..OptimizerConfig::default()
        };
        let mut opt = Optimizer::new(cfg);
        for _ in 0..500 {
            let g = (var.as_tensor() * 2.0)?;
            opt.step(&params, &[g], 0.05)?;
        }
        assert!(var.as_tensor().abs()?.max(0)?.to_scalar::<f64>()? < 1e-2);
        let saved = opt.state_tensors()?;
        let mut restored = Optimizer::new(cfg);
        restored.load_state(&saved, opt.step_count())?;
        let a = var.as_tensor().to_vec1::<f64>()?;
        let other = Var::new(a.as_slice(), &Device::Cpu)?;
        let g = (var.as_tensor() * 2.0)?;
        opt.step(&params, std::slice::from_ref(&g), 0.05)?;
        restored.step(&[("w".to_string(), other.clone())], &[g], 0.05)?;
        assert_eq!(
            var.as_tensor().to_vec1::<f64>()?,
            other.as_tensor().to_vec1::<f64>()?
        );
        Ok(())
    }

    /// A run saved after 3 steps (host moments written as tensors of the parameter's shape),
    /// restored and continued for 3 more, equals 6 uninterrupted steps bit for bit: f32, a
    /// 2-D parameter above the kernels' threading threshold.
    #[test]
    fn restored_state_continues_bit_for_bit() -> Result<()> {
        let dev = &Device::Cpu;
        let (rows, cols) = (300, 200);
        let init = Tensor::arange(0f32, (rows * cols) as f32, dev)?
            .affine(1e-4, -2.0)?
            .reshape((rows, cols))?;
        let grad = |p: &Var, t: usize| p.as_tensor().cos()?.affine(t as f64, 0.05);
        let straight = Var::from_tensor(&init)?;
        let mut opt = Optimizer::new(OptimizerConfig::default());
        let named = |v: &Var| vec![("w".to_string(), v.clone())];
        for t in 1..=6 {
            opt.step(&named(&straight), &[grad(&straight, t)?], 1e-2)?;
        }
        let first = Var::from_tensor(&init)?;
        let mut before = Optimizer::new(OptimizerConfig::default());
        for t in 1..=3 {
            before.step(&named(&first), &[grad(&first, t)?], 1e-2)?;
        }
        let saved = before.state_tensors()?;
        assert_eq!(saved["m.w"].dims(), &[rows, cols]);
        let resumed = Var::from_tensor(&first.as_tensor().copy()?)?;
        let mut after = Optimizer::new(OptimizerConfig::default());
        after.load_state(&saved, before.step_count())?;
        for t in 4..=6 {
            after.step(&named(&resumed), &[grad(&resumed, t)?], 1e-2)?;
        }
        let bits = |t: &Tensor| -> Result<Vec<u32>> {
            Ok(t.flatten_all()?
                .to_vec1::<f32>()?
                .iter()
                .map(|x| x.to_bits())
                .collect())
        };
        assert_eq!(bits(straight.as_tensor())?, bits(resumed.as_tensor())?);
        let (a, b) = (opt.state_tensors()?, after.state_tensors()?);
        assert_eq!(bits(&a["m.w"])?, bits(&b["m.w"])?);
        assert_eq!(bits(&a["v.w"])?, bits(&b["v.w"])?);
        Ok(())
    }

    /// A step refused for a bad gradient, a repeated name or a repeated variable changes
    /// nothing: parameters, moments and the step count stay as they were.
    #[test]
    fn a_refused_step_changes_nothing() -> Result<()> {
        let dev = &Device::Cpu;
        let (a, b) = (
            Var::from_tensor(&Tensor::ones((2, 3), candle::DType::F32, dev)?)?,
            Var::from_tensor(&Tensor::ones(4, candle::DType::F32, dev)?)?,
        );
        let params = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
        let grads = vec![
            a.as_tensor().affine(0.5, 0.0)?,
            b.as_tensor().affine(-1.0, 0.0)?,
        ];
        let mut opt = Optimizer::new(OptimizerConfig::default());
        opt.step(&params, &grads, 0.1)?;
        let (before, pa, pb) = (
            opt.state_tensors()?,
            a.to_vec2::<f32>()?,
            b.to_vec1::<f32>()?,
        );
        let wrong = vec![grads[0].clone(), Tensor::ones(5, candle::DType::F32, dev)?];
        let e = opt.step(&params, &wrong, 0.1).unwrap_err();
        assert!(e.to_string().contains("gradient [5]"), "{e}");
        let twice = vec![("a".to_string(), a.clone()), ("a".to_string(), b.clone())];
        assert!(opt.step(&twice, &grads, 0.1).is_err());
        let shared = vec![("a".to_string(), a.clone()), ("c".to_string(), a.clone())];
        let e = opt
            .step(&shared, &[grads[0].clone(), grads[0].clone()], 0.1)
            .unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert_eq!(opt.step_count(), 1);
        assert_eq!(a.to_vec2::<f32>()?, pa);
        assert_eq!(b.to_vec1::<f32>()?, pb);
        let after = opt.state_tensors()?;
        for (k, t) in &before {
            assert_eq!(
                t.flatten_all()?.to_vec1::<f32>()?,
                after[k].flatten_all()?.to_vec1::<f32>()?
            );
        }
        // A saved moment of another shape is refused when loaded into a step.
        let mut wrong_shape = before.clone();
        wrong_shape.insert(
            "m.a".into(),
            Tensor::zeros((3, 2), candle::DType::F32, dev)?,
        );
        wrong_shape.insert(
            "v.a".into(),
            Tensor::zeros((3, 2), candle::DType::F32, dev)?,
        );
        let mut loaded = Optimizer::new(OptimizerConfig::default());
        loaded.load_state(&wrong_shape, 1)?;
        let e = loaded.step(&params, &grads, 0.1).unwrap_err();
        assert!(e.to_string().contains("moments of a"), "{e}");
        assert_eq!(a.to_vec2::<f32>()?, pa);
        Ok(())
    }

    /// A step over a CPU f32 parameter (one-pass host update) and an f16 one (the composed
    /// update) moves both as Adam's first step does: by about `lr` against the gradient's sign.
    #[test]
    fn host_and_composed_parameters_in_one_step() -> Result<()> {
        let dev = &Device::Cpu;
        let a = Var::from_tensor(&Tensor::ones(3, candle::DType::F32, dev)?)?;
        let h = Var::from_tensor(&Tensor::ones(3, candle::DType::F16, dev)?)?;
        let params = vec![("a".to_string(), a.clone()), ("h".to_string(), h.clone())];
        let grads = vec![
            Tensor::new(&[1f32, -2.0, 0.5], dev)?,
            Tensor::new(&[-1f32, 3.0, 0.25], dev)?.to_dtype(candle::DType::F16)?,
        ];
        let mut opt = Optimizer::new(OptimizerConfig::default());
        opt.step(&params, &grads, 0.01)?;
        let moved = |v: &Var| -> Result<Vec<f32>> {
            Ok(v.to_dtype(candle::DType::F32)?
                .to_vec1::<f32>()?
                .iter()
                .map(|x| x - 1.0)
                .collect())
        };
        for (v, want) in [(&a, [-0.01f32, 0.01, -0.01]), (&h, [0.01, -0.01, -0.01])] {
            for (got, want) in moved(v)?.iter().zip(want) {
                assert!((got - want).abs() < 1e-3, "{got} against {want}");
            }
        }
        let saved = opt.state_tensors()?;
        assert_eq!(saved["m.h"].dtype(), candle::DType::F16);
        assert_eq!(saved["m.a"].dims(), &[3]);
        Ok(())
    }
}

//! Seeded parameter creation for candle-nn's `VarBuilder`.
//!
//! candle initialises weights with its CPU generator, which cannot be seeded. [`ParamStore`]
//! is a `VarBuilder` backend that creates every new variable from a [`SeededNoise`] stream,
//! interpreting candle-nn's `Init` hints (constant, normal, uniform, Kaiming) itself, so that
//! every candle-nn layer built on it (`linear`, `conv2d`, `batch_norm`, ...) and every vaekit
//! layer is initialised reproducibly. Variables are created in construction order, which is
//! deterministic, so the same seed gives the same weights.

use candle::{DType, Device, Result, Shape, Tensor, Var};
use candle_nn::init::{FanInOut, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder, VarMap};
use std::sync::{Arc, Mutex};
use vaekit_core::{NoiseSource, SeededNoise};

/// Suffixes of variables that are state, not trainable parameters (batch-norm statistics).
pub const NON_TRAINABLE_SUFFIXES: [&str; 2] = ["running_mean", "running_var"];

/// A `VarMap` whose new variables are drawn from a seeded noise source.
///
/// Clones share the same variables and the same noise stream.
#[derive(Clone)]
pub struct ParamStore {
    varmap: VarMap,
    noise: Arc<Mutex<SeededNoise>>,
}

impl std::fmt::Debug for ParamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParamStore")
            .field("variables", &self.names().len())
            .finish()
    }
}

impl ParamStore {
    /// The variable map, locked (a poisoned lock still holds consistent data: every writer
    /// inserts or sets one whole variable).
    fn vars(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Var>> {
        match self.varmap.data().lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// An empty store whose initialisations come from `SeededNoise::new(seed)`.
    pub fn new(seed: u64) -> Self {
        Self {
            varmap: VarMap::new(),
            noise: Arc::new(Mutex::new(SeededNoise::new(seed))),
        }
    }

    /// A `VarBuilder` creating variables in this store.
    pub fn var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    /// A `VarBuilder` over detached copies of the current values (sharing their storage):
    /// networks built on it compute the same function but autograd tracks none of their
    /// parameters, so a gradient with respect to an input (HMC's `∇_z log p(x, z)`) costs no
    /// parameter gradients. Asking it for a variable the store lacks is an error.
    pub fn frozen_var_builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        let tensors: std::collections::HashMap<String, Tensor> = self
            .vars()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect();
        VarBuilder::from_tensors(tensors, dtype, device)
    }

    /// The underlying `VarMap` (for saving, loading and optimizers).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// All variable names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.vars().keys().cloned().collect();
        names.sort();
        names
    }

    /// The trainable variables (everything but batch-norm running statistics), sorted by name:
    /// a stable order for optimizers and checkpoints.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.sorted_vars()
            .into_iter()
            .filter(|(name, _)| is_trainable(name))
            .collect()
    }

    /// Every variable, sorted by name.
    pub fn sorted_vars(&self) -> Vec<(String, Var)> {
        let map = self.vars();
        let mut vars: Vec<(String, Var)> =
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Overwrites variable `name` in place (data-dependent initialisation, loading).
    ///
    /// # Errors
    /// An unknown name or a shape mismatch.
    pub fn set(&self, name: &str, value: &Tensor) -> Result<()> {
        let map = self.vars();
        match map.get(name) {
            Some(var) => var.set(&value.to_dtype(var.dtype())?),
            None => candle::bail!("ParamStore: no variable named {name}"),
        }
    }

    fn init(&self, shape: &Shape, init: Init, dtype: DType, device: &Device) -> Result<Tensor> {
        let mut noise = match self.noise.lock() {
            Ok(n) => n,
            Err(poisoned) => poisoned.into_inner(),
        };
        let normal = |noise: &mut SeededNoise, mean: f64, std: f64| -> Result<Tensor> {
            noise
                .standard_normal(shape, DType::F32, device)?
                .affine(std, mean)?
                .to_dtype(dtype)
        };
        let uniform = |noise: &mut SeededNoise, lo: f64, up: f64| -> Result<Tensor> {
            noise
                .uniform(shape, DType::F32, device)?
                .affine(up - lo, lo)?
                .to_dtype(dtype)
        };
        match init {
            Init::Const(c) => Tensor::ones(shape, dtype, device)?.affine(c, 0.0),
            Init::Randn { mean, stdev } => normal(&mut noise, mean, stdev),
            Init::Uniform { lo, up } => uniform(&mut noise, lo, up),
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let fan = match fan {
                    FanInOut::FanIn | FanInOut::FanOut => fan.for_shape(shape),
                };
                let std = non_linearity.gain() / (fan.max(1) as f64).sqrt();
                match dist {
                    NormalOrUniform::Normal => normal(&mut noise, 0.0, std),
                    NormalOrUniform::Uniform => {
                        let bound = 3f64.sqrt() * std;
                        uniform(&mut noise, -bound, bound)
                    }
                }
            }
        }
    }
}

/// Whether a variable name denotes a trainable parameter.
pub fn is_trainable(name: &str) -> bool {
    !NON_TRAINABLE_SUFFIXES.iter().any(|s| name.ends_with(s))
}

impl SimpleBackend for ParamStore {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        {
            let map = self.vars();
            if let Some(var) = map.get(name) {
                if var.shape() != &s {
                    candle::bail!(
                        "ParamStore: {name} exists with shape {:?}, asked for {s:?}",
                        var.shape()
                    );
                }
                return Ok(var.as_tensor().clone());
            }
        }
        let value = self.init(&s, h, dtype, dev)?;
        let var = Var::from_tensor(&value)?;
        let tensor = var.as_tensor().clone();
        let mut map = self.vars();
        map.insert(name.to_string(), var);
        Ok(tensor)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, _dev: &Device) -> Result<Tensor> {
        let map = self.vars();
        match map.get(name) {
            Some(var) => var.as_tensor().to_dtype(dtype),
            None => candle::bail!("ParamStore: no variable named {name}"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars().contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_weights_and_names_are_stable() -> Result<()> {
        let build = |seed| -> Result<(ParamStore, Tensor)> {
            let store = ParamStore::new(seed);
            let vb = store.var_builder(DType::F32, &Device::Cpu);
            let lin = candle_nn::linear(4, 3, vb.pp("enc").pp("fc"))?;
            let _bn = candle_nn::batch_norm(
                3,
                candle_nn::BatchNormConfig::default(),
                vb.pp("enc").pp("bn"),
            )?;
            Ok((store, lin.weight().clone()))
        };
        let (s1, w1) = build(7)?;
        let (_, w2) = build(7)?;
        let (_, w3) = build(8)?;
        assert_eq!(w1.to_vec2::<f32>()?, w2.to_vec2::<f32>()?);
        assert_ne!(w1.to_vec2::<f32>()?, w3.to_vec2::<f32>()?);
        assert_eq!(
            s1.names(),
            vec![
                "enc.bn.bias",
                "enc.bn.running_mean",
                "enc.bn.running_var",
                "enc.bn.weight",
                "enc.fc.bias",
                "enc.fc.weight"
            ]
        );
        let trainable: Vec<String> = s1.trainable().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            trainable,
            vec![
                "enc.bn.bias",
                "enc.bn.weight",
                "enc.fc.bias",
                "enc.fc.weight"
            ]
        );
        // candle-nn's linear asks for Kaiming normal with the ReLU gain: std = sqrt(2 / fan_in).
        let big = ParamStore::new(1);
        let w = candle_nn::linear(400, 300, big.var_builder(DType::F32, &Device::Cpu))?
            .weight()
            .clone();
        let std = w.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        let expected = (2.0f64 / 400.0).sqrt();
        assert!(
            (f64::from(std) - expected).abs() < 0.01 * expected,
            "{std} vs {expected}"
        );
        // set() writes in place: the layer sees the new value.
        s1.set(
            "enc.fc.weight",
            &Tensor::zeros((3, 4), DType::F32, &Device::Cpu)?,
        )?;
        assert_eq!(w1.sum_all()?.to_scalar::<f32>()?, 0.0);
        Ok(())
    }
}

//! The inference network of a discrete-latent model and its posterior.

use super::config::DiscreteConfig;
use super::units::{LatentUnits, LayerDraw, split_layers};
use crate::mlp::Mlp;
use crate::model::{InferenceNetwork, LatentSample, Posterior};
use crate::relaxation::Relaxation;
use candle::{D, Result, Tensor};
use candle_nn::VarBuilder;
use vaekit_core::NoiseSource;
use vaekit_distributions::Distribution;
use vaekit_nets::{Activation, Pass};

/// `q(z_1 | x) Π_{l>1} q(z_l | z_{l-1})` with networks at `encoder.layer{l}` and, when
/// configured, the learned baseline `b(x)` at `encoder.baseline` (trained with the inference
/// network by score-function estimators).
#[derive(Debug, Clone)]
pub struct DiscreteEncoder {
    layers: Vec<LatentUnits>,
    nets: Vec<Mlp>,
    baseline: Option<Mlp>,
}

impl DiscreteEncoder {
    /// Builds the networks at `vb` (pass `vb.pp("encoder")`).
    ///
    /// # Errors
    /// An invalid configuration; variable creation errors.
    pub fn new(config: &DiscreteConfig, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(candle::Error::Msg)?;
        let mut nets = Vec::with_capacity(config.layers.len());
        let mut in_dim = config.data_dim;
        for (l, units) in config.layers.iter().enumerate() {
            nets.push(Mlp::new(
                in_dim,
                &config.hidden,
                units.width(),
                config.activation,
                &vb.pp(format!("layer{l}")),
            )?);
            in_dim = units.width();
        }
        let baseline = config
            .baseline_hidden
            .map(|h| {
                Mlp::new(
                    config.data_dim,
                    &[h],
                    1,
                    Activation::Tanh,
                    &vb.pp("baseline"),
                )
            })
            .transpose()?;
        Ok(Self {
            layers: config.layers.clone(),
            nets,
            baseline,
        })
    }
}

impl InferenceNetwork for DiscreteEncoder {
    fn forward<'a>(&'a self, x: &Tensor, pass: Pass<'a>) -> Result<Box<dyn Posterior + 'a>> {
        let first_logits = self.nets[0].forward(x, pass)?;
        Ok(Box::new(DiscretePosterior {
            encoder: self,
            first_logits,
            pass,
        }))
    }

    fn baseline(&self, x: &Tensor, pass: Pass) -> Result<Option<Tensor>> {
        self.baseline
            .as_ref()
            .map(|b| b.forward(x, pass)?.squeeze(D::Minus1))
            .transpose()
    }
}

/// `q(z|x)` of a [`DiscreteEncoder`] for one batch. Its `rsample_with_log_prob` returns plain
/// draws ([`Posterior::is_reparameterized`] is false): train it with a score-function
/// estimator, RWS, or a Concrete relaxation.
#[derive(Debug)]
pub struct DiscretePosterior<'a> {
    encoder: &'a DiscreteEncoder,
    /// Logits of the first layer, `[B, W_1]`.
    first_logits: Tensor,
    pass: Pass<'a>,
}

impl DiscretePosterior<'_> {
    /// An ancestral pass over `num_samples` draws per data point: `step(layer, units, logits
    /// [B·S, W])` gives the layer's draw; returns `z: [B, S, D]` and `log q: [B, S]`.
    fn ancestral(
        &self,
        num_samples: usize,
        step: &mut dyn FnMut(usize, &LatentUnits, &Tensor) -> Result<LayerDraw>,
    ) -> Result<(Tensor, Tensor)> {
        let (b, w) = self.first_logits.dims2()?;
        let s = num_samples;
        let mut logits = self
            .first_logits
            .unsqueeze(1)?
            .broadcast_as((b, s, w))?
            .reshape((b * s, w))?;
        let mut zs = Vec::with_capacity(self.encoder.layers.len());
        let mut log_q: Option<Tensor> = None;
        for (l, units) in self.encoder.layers.iter().enumerate() {
            let (z, value, lq) = step(l, units, &logits)?;
            log_q = Some(match log_q {
                Some(acc) => (acc + lq)?,
                None => lq,
            });
            zs.push(z);
            if let Some(net) = self.encoder.nets.get(l + 1) {
                logits = net.forward(&value, self.pass)?;
            }
        }
        let z = Tensor::cat(&zs, D::Minus1)?;
        let d = z.dim(D::Minus1)?;
        let log_q = log_q.ok_or_else(|| candle::Error::Msg("no latent layers".into()))?;
        Ok((z.reshape((b, s, d))?, log_q.reshape((b, s))?))
    }
}

impl Posterior for DiscretePosterior<'_> {
    /// Plain draws, as [`Posterior::sample_with_log_prob`]: no gradient flows through `z`.
    fn rsample_with_log_prob(
        &self,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<LatentSample> {
        self.sample_with_log_prob(num_samples, noise)
    }

    fn log_prob(&self, z: &Tensor) -> Result<Tensor> {
        let (b, s, d) = z.dims3()?;
        if b != self.first_logits.dim(0)? {
            candle::bail!(
                "discrete posterior: z has {b} rows for a batch of {}",
                self.first_logits.dim(0)?
            );
        }
        let layers = split_layers(&z.reshape((b * s, d))?, &self.encoder.layers)?;
        let (_, log_q) = self.ancestral(s, &mut |l, units, logits| {
            let v = layers[l].clone();
            Ok((v.clone(), v.clone(), units.log_prob(logits, &v)?))
        })?;
        Ok(log_q)
    }

    fn as_distribution(&self) -> Option<&dyn Distribution> {
        None
    }

    fn is_reparameterized(&self) -> bool {
        false
    }

    fn sample_with_log_prob(
        &self,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<LatentSample> {
        let (z, log_q) = self.ancestral(num_samples, &mut |_, units, logits| {
            let v = units.sample(logits, noise)?;
            Ok((v.clone(), v.clone(), units.log_prob(logits, &v)?))
        })?;
        Ok(LatentSample::scored(z, log_q))
    }

    fn rsample_relaxed(
        &self,
        num_samples: usize,
        relaxation: Relaxation,
        noise: &mut dyn NoiseSource,
    ) -> Result<LatentSample> {
        let (z, log_q) = self.ancestral(num_samples, &mut |_, units, logits| {
            units.relaxed_step(logits, relaxation, noise)
        })?;
        Ok(LatentSample::scored(z, log_q))
    }
}

//! The generative model of a discrete-latent model and its (hierarchical) prior.

use super::config::DiscreteConfig;
use super::units::{LatentUnits, LayerDraw, split_layers};
use crate::mlp::Mlp;
use crate::model::GenerativeModel;
use crate::prior::PriorRef;
use crate::relaxation::Relaxation;
use candle::{D, DType, Device, Result, Shape, Tensor};
use candle_nn::{Init, VarBuilder};
use vaekit_core::NoiseSource;
use vaekit_distributions::{Bernoulli, Distribution, Independent};
use vaekit_nets::Pass;

/// `p(z) = p(z_L) Π_{l<L} p(z_l | z_{l+1})` over the concatenated latent vector
/// `[z_1, .., z_L]`: learned top logits (`decoder.prior_logits`) and conditional networks
/// `decoder.layer{l}` (`z_{l+1} -> logits of z_l`). Its networks have no normalisation, so
/// they behave alike in every [`Pass`] (the `Distribution` API carries none).
///
/// # Shapes
/// `batch_shape = []`, `event_shape = [D]` with `D = Σ_l W_l`.
#[derive(Debug, Clone)]
pub struct DiscretePrior {
    layers: Vec<LatentUnits>,
    top_logits: Tensor,
    /// `nets[l]` gives the logits of layer `l` from layer `l + 1`.
    nets: Vec<Mlp>,
    event_shape: Shape,
    batch_shape: Shape,
}

impl DiscretePrior {
    fn top_logits(&self, n: usize) -> Result<Tensor> {
        let w = self.top_logits.dim(0)?;
        self.top_logits
            .unsqueeze(0)?
            .broadcast_as((n, w))?
            .contiguous()
    }

    /// An ancestral pass from the top layer down: `step(units, logits [N, W], l)` gives
    /// `(stored z, value for the next network, log p [N])`; returns the layers' stored values
    /// (first layer first), the first layer's value and `log p(z)`, `[N]`.
    fn ancestral(
        &self,
        n: usize,
        step: &mut dyn FnMut(usize, &LatentUnits, &Tensor) -> Result<LayerDraw>,
    ) -> Result<(Vec<Tensor>, Tensor, Tensor)> {
        let top = self.layers.len() - 1;
        let mut logits = self.top_logits(n)?;
        let mut stored = vec![None; self.layers.len()];
        let mut log_p: Option<Tensor> = None;
        let mut value = None;
        for l in (0..=top).rev() {
            let (z, v, lp) = step(l, &self.layers[l], &logits)?;
            log_p = Some(match log_p {
                Some(acc) => (acc + lp)?,
                None => lp,
            });
            stored[l] = Some(z);
            if l > 0 {
                logits = self.nets[l - 1].forward(&v, Pass::Train)?;
            }
            value = Some(v);
        }
        let stored = stored.into_iter().flatten().collect();
        let missing = || candle::Error::Msg("discrete prior: no layers".into());
        Ok((
            stored,
            value.ok_or_else(missing)?,
            log_p.ok_or_else(missing)?,
        ))
    }
}

/// `[.., D]` to `[N, D]` with the leading shape.
fn flatten_leading(z: &Tensor) -> Result<(Tensor, Vec<usize>)> {
    let dims = z.dims();
    let Some((&d, lead)) = dims.split_last() else {
        candle::bail!("discrete latent: a scalar is not a latent vector");
    };
    let n = lead.iter().product::<usize>();
    Ok((z.reshape((n, d))?, lead.to_vec()))
}

impl Distribution for DiscretePrior {
    fn name(&self) -> &'static str {
        "DiscretePrior"
    }
    fn batch_shape(&self) -> &Shape {
        &self.batch_shape
    }
    fn event_shape(&self) -> &Shape {
        &self.event_shape
    }
    fn dtype(&self) -> DType {
        self.top_logits.dtype()
    }
    fn device(&self) -> &Device {
        self.top_logits.device()
    }
    /// Ancestral draws, `sample_shape ++ [D]`.
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let n = sample_shape.iter().product::<usize>();
        let (stored, _, _) = self.ancestral(n, &mut |_, units, logits| {
            let v = units.sample(logits, noise)?;
            let lp = v.zeros_like()?.sum(D::Minus1)?;
            Ok((v.clone(), v, lp))
        })?;
        let mut shape = sample_shape.to_vec();
        shape.push(self.event_shape.dims()[0]);
        Tensor::cat(&stored, D::Minus1)?.reshape(shape)
    }
    /// `log p(z)` of values `[.., D]`, `[..]`.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let (z, lead) = flatten_leading(value)?;
        let layers = split_layers(&z, &self.layers)?;
        let (_, _, lp) = self.ancestral(z.dim(0)?, &mut |l, units, logits| {
            let v = layers[l].clone();
            Ok((v.clone(), v.clone(), units.log_prob(logits, &v)?))
        })?;
        lp.reshape(lead)
    }
}

/// `p(x, z) = p(z) p(x | z_1)` with the [`DiscretePrior`] and Bernoulli pixels from the
/// network `decoder.output` (`z_1 -> pixel logits`).
#[derive(Debug, Clone)]
pub struct DiscreteDecoder {
    prior: DiscretePrior,
    output: Mlp,
}

impl DiscreteDecoder {
    /// Builds the networks at `vb` (pass `vb.pp("decoder")`).
    ///
    /// # Errors
    /// An invalid configuration; variable creation errors.
    pub fn new(config: &DiscreteConfig, dtype: DType, vb: VarBuilder) -> Result<Self> {
        config.validate().map_err(candle::Error::Msg)?;
        let layers = config.layers.clone();
        let top = layers.len() - 1;
        let top_logits = vb
            .get_with_hints(layers[top].width(), "prior_logits", Init::Const(0.0))?
            .to_dtype(dtype)?;
        let nets = (0..top)
            .map(|l| {
                Mlp::new(
                    layers[l + 1].width(),
                    &config.hidden,
                    layers[l].width(),
                    config.activation,
                    &vb.pp(format!("layer{l}")),
                )
            })
            .collect::<Result<_>>()?;
        let output = Mlp::new(
            layers[0].width(),
            &config.hidden,
            config.data_dim,
            config.activation,
            &vb.pp("output"),
        )?;
        Ok(Self {
            prior: DiscretePrior {
                event_shape: Shape::from(config.latent_dim()),
                batch_shape: Shape::from(()),
                layers,
                top_logits,
                nets,
            },
            output,
        })
    }

    fn pixels(&self, z1: &Tensor, pass: Pass) -> Result<Box<dyn Distribution>> {
        let logits = self.output.forward(z1, pass)?;
        Ok(Box::new(Independent::new(
            Bernoulli::new_unchecked(logits)?,
            1,
        )?))
    }
}

impl GenerativeModel for DiscreteDecoder {
    /// `p(x | z_1)` for `z: [N, D]` (the first layer's values are read).
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<Box<dyn Distribution>> {
        let z1 = z.narrow(D::Minus1, 0, self.prior.layers[0].width())?;
        self.pixels(&z1, pass)
    }

    fn prior(&self, _pass: Pass) -> Result<PriorRef<'_>> {
        Ok(PriorRef::Fixed(&self.prior))
    }

    fn log_prob_relaxed(
        &self,
        x: &Tensor,
        z: &Tensor,
        relaxation: Relaxation,
        pass: Pass,
    ) -> Result<(Tensor, Tensor)> {
        let (b, s, d) = z.dims3()?;
        let layers = split_layers(&z.reshape((b * s, d))?, &self.prior.layers)?;
        let tau = relaxation.temperature;
        let (_, value, log_prior) = self.prior.ancestral(b * s, &mut |l, units, logits| {
            let zl = &layers[l];
            Ok((
                zl.clone(),
                units.relaxed_value(zl)?,
                units.relaxed_log_prob(logits, zl, tau)?,
            ))
        })?;
        let p = x.dim(1)?;
        let xs = x
            .unsqueeze(1)?
            .broadcast_as((b, s, p))?
            .reshape((b * s, p))?;
        let log_lik = self.pixels(&value, pass)?.log_prob(&xs)?;
        Ok((log_lik.reshape((b, s))?, log_prior.reshape((b, s))?))
    }
}

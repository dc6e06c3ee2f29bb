//! Top-down generation: `p(z_L) Π_l p(z_l|z_{l+1}) p(x|z_1)`.

use super::config::{HierarchyConfig, split};
use super::gaussian::{head, log_density};
use crate::mlp::Mlp;
use crate::model::GenerativeModel;
use crate::prior::PriorRef;
use candle::{D, DType, Device, Result, Shape, Tensor};
use candle_nn::VarBuilder;
use vaekit_core::NoiseSource;
use vaekit_distributions::Distribution;
use vaekit_nets::{DecoderOutput, Likelihood, Pass};

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// The generative network of a [`HierarchyConfig`]: `p(z_L) = N(0, I)`, layer `l < L - 1`
/// maps `z_{l+1}` to the location and log-scale of `z_l`, and `pixels` maps `z_1` to the
/// likelihood's parameters. Every network mirrors the encoder's hidden widths.
#[derive(Debug, Clone)]
pub struct HierarchicalDecoder {
    layers: Vec<Mlp>,
    pixels: Mlp,
    units: Vec<usize>,
    likelihood: Likelihood,
    dtype: DType,
    device: Device,
}

impl HierarchicalDecoder {
    /// The networks of `p(z_l|z_{l+1})`, `l = 0 .. L - 2` (a top-down encoder shares them).
    pub(crate) fn conditionals(&self) -> &[Mlp] {
        &self.layers
    }

    /// The units of every layer, bottom first.
    pub(crate) fn units(&self) -> &[usize] {
        &self.units
    }

    /// The decoder of `config` with `likelihood` pixels, parameters at `vb.pp("layer{l}")`
    /// and `vb.pp("pixels")`.
    ///
    /// # Errors
    /// [`HierarchyConfig::validate`]'s; candle's.
    pub fn new(config: &HierarchyConfig, likelihood: Likelihood, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let reversed =
            |h: &[usize]| -> Vec<usize> { h.iter().rev().copied().collect::<Vec<usize>>() };
        let mut layers = Vec::with_capacity(config.layers.len() - 1);
        for l in 0..config.layers.len() - 1 {
            let above = &config.layers[l + 1];
            layers.push(Mlp::new(
                above.units,
                &reversed(&above.hidden),
                2 * config.layers[l].units,
                config.activation,
                &vb.pp(format!("layer{l}")),
            )?);
        }
        let first = &config.layers[0];
        let pixels = Mlp::new(
            first.units,
            &reversed(&first.hidden),
            likelihood.outputs_per_pixel() * config.input_dim,
            config.activation,
            &vb.pp("pixels"),
        )?;
        Ok(Self {
            layers,
            pixels,
            units: config.units(),
            likelihood,
            dtype: vb.dtype(),
            device: vb.device().clone(),
        })
    }
}

impl GenerativeModel for HierarchicalDecoder {
    /// `p(x | z_1)` for `z: [N, D]` (the first `D_1` values are read).
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<Box<dyn Distribution>> {
        let z1 = z.narrow(D::Minus1, 0, self.units[0])?;
        DecoderOutput::from_rows(&self.pixels.forward(&z1, pass)?, self.likelihood)?.distribution()
    }

    fn prior(&self, _pass: Pass) -> Result<PriorRef<'_>> {
        Ok(PriorRef::Built(Box::new(HierarchicalPrior {
            layers: self.layers.clone(),
            units: self.units.clone(),
            batch_shape: Shape::from(()),
            event_shape: Shape::from(self.units.iter().sum::<usize>()),
            dtype: self.dtype,
            device: self.device.clone(),
        })))
    }
}

/// `p(z) = N(z_L; 0, I) Π_{l<L} p(z_l | z_{l+1})` over `z = [z_1, .., z_L]`: event `[D]`,
/// batch `[]`. Its networks have no normalisation, so the density is the same in every kind
/// of pass.
#[derive(Debug, Clone)]
pub struct HierarchicalPrior {
    layers: Vec<Mlp>,
    units: Vec<usize>,
    batch_shape: Shape,
    event_shape: Shape,
    dtype: DType,
    device: Device,
}

impl HierarchicalPrior {
    /// `(loc, log_scale)` of `z_l` given `z_{l+1}: [N, D_{l+1}]`.
    fn conditional(&self, l: usize, above: &Tensor) -> Result<(Tensor, Tensor)> {
        head(&self.layers[l].forward(above, Pass::Eval)?)
    }

    /// [`HierarchicalPrior::conditional`] of draws `[B, S, D_{l+1}]`, each `[B, S, D_l]`.
    pub(crate) fn conditional_draws(&self, l: usize, above: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, s, d) = above.dims3()?;
        let (loc, log_scale) = self.conditional(l, &above.reshape((b * s, d))?)?;
        let width = loc.dim(D::Minus1)?;
        Ok((
            loc.reshape((b, s, width))?,
            log_scale.reshape((b, s, width))?,
        ))
    }

    /// The units of every layer, bottom first.
    pub(crate) fn units(&self) -> &[usize] {
        &self.units
    }

    /// `prior` as a hierarchical prior with layers of `units`, if it is one.
    pub(crate) fn matching<'p>(
        prior: &'p dyn Distribution,
        units: &[usize],
    ) -> Option<&'p HierarchicalPrior> {
        let any: &dyn std::any::Any = prior;
        any.downcast_ref::<HierarchicalPrior>()
            .filter(|p| p.units() == units)
    }
}

impl Distribution for HierarchicalPrior {
    fn name(&self) -> &'static str {
        "HierarchicalPrior"
    }
    fn batch_shape(&self) -> &Shape {
        &self.batch_shape
    }
    fn event_shape(&self) -> &Shape {
        &self.event_shape
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn device(&self) -> &Device {
        &self.device
    }

    /// Ancestral draws from the top, `sample_shape ++ [D]`, detached.
    fn sample(&self, sample_shape: &[usize], noise: &mut dyn NoiseSource) -> Result<Tensor> {
        let n = sample_shape.iter().product::<usize>();
        let top = *self.units.last().unwrap_or(&0);
        let mut z = noise.standard_normal(&(n, top).into(), self.dtype, &self.device)?;
        let mut zs = vec![z.clone()];
        for l in (0..self.layers.len()).rev() {
            let (loc, log_scale) = self.conditional(l, &z)?;
            let eps = noise.standard_normal(loc.shape(), self.dtype, &self.device)?;
            z = (loc + (log_scale.exp()? * eps)?)?.detach();
            zs.push(z.clone());
        }
        zs.reverse();
        let mut shape = sample_shape.to_vec();
        shape.push(self.event_shape.dims()[0]);
        Tensor::cat(&zs, D::Minus1)?.reshape(shape)
    }

    /// `log p(z)` of values `[.., D]`, `[..]`.
    fn log_prob(&self, value: &Tensor) -> Result<Tensor> {
        let d = self.event_shape.dims()[0];
        if value.dim(D::Minus1)? != d {
            candle::bail!("HierarchicalPrior: value {:?}, event [{d}]", value.dims());
        }
        let lead = value.dims()[..value.rank() - 1].to_vec();
        let rows = value.reshape(((), d))?;
        let parts = split(&rows, &self.units)?;
        let top = parts
            .last()
            .ok_or_else(|| candle::Error::Msg("no layers".into()))?;
        let top_dim = top.dim(D::Minus1)? as f64;
        let mut lp = ((top.sqr()?.sum(D::Minus1)? * -0.5)? - top_dim * HALF_LN_2PI)?;
        for l in 0..self.layers.len() {
            let (loc, log_scale) = self.conditional(l, &parts[l + 1])?;
            lp = (lp + log_density(&parts[l], &loc, &log_scale)?)?;
        }
        lp.reshape(lead)
    }
}

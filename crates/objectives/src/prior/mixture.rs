//! A learned mixture-of-Gaussians prior.

use super::{LatentPrior, PriorRef};
use candle::{Result, Tensor};
use candle_nn::{Init, VarBuilder};
use vaekit_distributions::MixtureSameFamily;
use vaekit_nets::Pass;

/// `p(z) = Σ_k softmax(a)_k N(z; μ_k, diag(exp(2 s_k)))` with trainable logits `a: [K]`
/// (`logits`, initialised to zero: equal weights), locations `μ: [K, D]` (`loc`, standard
/// normal draws) and log-scales `s: [K, D]` (`log_scale`, zero).
///
/// Its density goes through [`MixtureSameFamily`], whose unbatched log-density costs two
/// matrix products (`[N, K]`, not `[N, K, D]`). Sampling draws a component, then the
/// Gaussian; its KL against a posterior is Monte Carlo (the registry has no closed form).
///
/// # References
/// Dilokthanakul et al., "Deep unsupervised clustering with Gaussian mixture variational
/// autoencoders", arXiv 1611.02648; Tomczak & Welling, arXiv 1705.07120 (the MoG baseline of
/// the VampPrior paper).
#[derive(Debug, Clone)]
pub struct MixturePrior {
    logits: Tensor,
    loc: Tensor,
    log_scale: Tensor,
}

impl MixturePrior {
    /// `components` Gaussians on `dim` dimensions, their parameters created under `vb`
    /// (`logits`, `loc`, `log_scale`).
    ///
    /// # Errors
    /// `components` or `dim` zero; candle's.
    pub fn new(components: usize, dim: usize, vb: VarBuilder) -> Result<Self> {
        if components == 0 || dim == 0 {
            candle::bail!(
                "MixturePrior: components = {components}, dim = {dim}: both must be >= 1"
            );
        }
        Ok(Self {
            logits: vb.get_with_hints(components, "logits", Init::Const(0.0))?,
            loc: vb.get_with_hints(
                (components, dim),
                "loc",
                Init::Randn {
                    mean: 0.0,
                    stdev: 1.0,
                },
            )?,
            log_scale: vb.get_with_hints((components, dim), "log_scale", Init::Const(0.0))?,
        })
    }

    /// `K`.
    pub fn components(&self) -> usize {
        self.logits.dim(0).unwrap_or(0)
    }
}

impl LatentPrior for MixturePrior {
    fn latent_dim(&self) -> usize {
        self.loc.dim(1).unwrap_or(0)
    }

    fn distribution(&self, _pass: Pass) -> Result<PriorRef<'_>> {
        Ok(PriorRef::Built(Box::new(
            MixtureSameFamily::from_log_scale_unchecked(
                self.logits.clone(),
                self.loc.clone(),
                self.log_scale.clone(),
            )?,
        )))
    }
}

//! The VampPrior: a mixture of the variational posteriors of learned pseudo-inputs.

use super::{LatentPrior, PriorRef};
use candle::{Result, Tensor};
use candle_nn::{Init, VarBuilder};
use vaekit_distributions::MixtureSameFamily;
use vaekit_nets::{Encoder, Pass};

/// `p(z) = (1/K) Σ_k q(z | u_k)`: the encoder's diagonal Gaussian at `K` learned
/// pseudo-inputs `u_k = clamp(w_k, 0, 1)`, with `w: [K, P]` (`pseudo_inputs`) initialised
/// from `N(0.05, 0.01²)` as in the reference code.
///
/// The encoder must share its parameters with the inference network's (build it twice from
/// the same `VarBuilder` path: the second build finds the variables the first created), so
/// the prior follows the posterior as training moves it. The encoder runs on the
/// pseudo-inputs in the pass it is given, except a data-dependent initialisation pass, which
/// runs as evaluation so that weight-norm gains stay fitted to the data.
///
/// Its density goes through [`MixtureSameFamily`]'s product form (`[N, K]`). Because the
/// encoder appears in the prior, the inference network's gradient includes the prior's
/// term: estimators that give the two groups separate surrogates (DReG, RWS) do not apply
/// (`vaekit-models` refuses them).
///
/// # References
/// Tomczak & Welling, "VAE with a VampPrior", AISTATS 2018, arXiv 1705.07120 (section 3;
/// 500 pseudo-inputs for MNIST).
#[derive(Debug, Clone)]
pub struct VampPrior<E> {
    encoder: E,
    pseudo_inputs: Tensor,
}

impl<E: Encoder> VampPrior<E> {
    /// `components` pseudo-inputs of `input_dim` values under `vb` (`pseudo_inputs`),
    /// mapped by `encoder`.
    ///
    /// # Errors
    /// `components` or `input_dim` zero; candle's.
    pub fn new(encoder: E, components: usize, input_dim: usize, vb: VarBuilder) -> Result<Self> {
        if components == 0 || input_dim == 0 {
            candle::bail!(
                "VampPrior: components = {components}, input_dim = {input_dim}: both must be >= 1"
            );
        }
        let pseudo_inputs = vb.get_with_hints(
            (components, input_dim),
            "pseudo_inputs",
            Init::Randn {
                mean: 0.05,
                stdev: 0.01,
            },
        )?;
        Ok(Self {
            encoder,
            pseudo_inputs,
        })
    }

    /// The pseudo-inputs `u = clamp(w, 0, 1)`, `[K, P]`.
    ///
    /// # Errors
    /// candle's.
    pub fn pseudo_inputs(&self) -> Result<Tensor> {
        self.pseudo_inputs.clamp(0.0, 1.0)
    }

    /// `K`.
    pub fn components(&self) -> usize {
        self.pseudo_inputs.dim(0).unwrap_or(0)
    }
}

impl<E: Encoder> LatentPrior for VampPrior<E> {
    fn latent_dim(&self) -> usize {
        self.encoder.latent_dim()
    }

    fn distribution(&self, pass: Pass) -> Result<PriorRef<'_>> {
        let pass = match pass {
            Pass::DataInit(_) => Pass::Eval,
            other => other,
        };
        let u = self.pseudo_inputs()?;
        let encoded = self.encoder.forward(&u, pass)?;
        let logits = Tensor::zeros(self.components(), u.dtype(), u.device())?;
        Ok(PriorRef::Built(Box::new(
            MixtureSameFamily::from_log_scale_unchecked(logits, encoded.loc, encoded.log_scale)?,
        )))
    }
}

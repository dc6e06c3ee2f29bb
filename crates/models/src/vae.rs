//! The serializable description of a VAE: networks, posterior flow, latent kind and
//! likelihood, and its checks before any tensor exists.

use crate::error::{bail, check_count};
use crate::{ConfigError, FlowConfig, LatentConfig, Networks, PriorConfig};
use serde::{Deserialize, Serialize};
use vaekit_flows::{MadeConfig, SylvesterKind};
use vaekit_nets::{Activation, Likelihood, Normalization};
use vaekit_objectives::{IwaeGradient, Objective, ObjectiveConfig};

/// A VAE: what [`crate::build`] turns into an inference network and a generative model.
///
/// The prior of Gaussian latents is `prior` (the standard normal by default); discrete
/// latents have their model's own (hierarchical) prior. In a [`crate::RunConfig`] (and a run's
/// `config.json`) these fields sit at the top level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    /// Encoder and decoder of Gaussian latents (ignored by discrete ones).
    pub networks: Networks,
    /// The Gaussian posterior's flow.
    pub flow: FlowConfig,
    /// Gaussian (default) or discrete latents.
    #[serde(default)]
    pub latent: LatentConfig,
    /// Pixel likelihood.
    pub likelihood: Likelihood,
    /// The prior of Gaussian latents (default: the standard normal).
    #[serde(default)]
    pub prior: PriorConfig,
}

impl VaeConfig {
    /// The latent dimension of the Gaussian networks.
    pub fn latent_dim(&self) -> usize {
        match &self.latent {
            LatentConfig::Hierarchy(c) => c.latent_dim(),
            _ => self.networks.latent_dim(),
        }
    }

    /// The encoder's context width.
    pub fn context_dim(&self) -> usize {
        self.networks.context_dim()
    }

    /// The MADE configuration of an IAF flow with these hidden widths: the latent dimension
    /// and the encoder's context width are the networks', so they cannot disagree.
    pub fn made(&self, hidden: &[usize], norm: Normalization) -> MadeConfig {
        MadeConfig {
            dim: self.latent_dim(),
            hidden: hidden.to_vec(),
            context_dim: self.context_dim(),
            norm,
            activation: Activation::Elu,
            ..MadeConfig::default()
        }
    }

    /// Checks the networks, the flow and the likelihood, before any tensor exists: every
    /// count in its range, a context for a flow, IAF widths that are multiples of the latent
    /// dimension, a valid discrete configuration, and no flow on discrete latents.
    ///
    /// # Errors
    /// The first rule broken, naming the field and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.latent {
            LatentConfig::Discrete(c) => {
                c.validate().map_err(|e| ConfigError::new(e.to_string()))?;
                self.no_flow_own_prior("discrete latents", "")?;
            }
            LatentConfig::Gaussian => self.validate_gaussian()?,
            LatentConfig::Hierarchy(c) => {
                c.validate().map_err(|e| ConfigError::new(e.to_string()))?;
                self.no_flow_own_prior(
                    "stochastic hierarchies",
                    " (IAF steps in each layer: --layer-iaf or latent.iaf)",
                )?;
            }
        }
        if let Likelihood::DiscretizedLogistic { num_bins } = self.likelihood {
            check_count("likelihood.num_bins", num_bins, 2)?;
        }
        Ok(())
    }

    /// Whether the posterior's density is known along its sampling path only: a flow after
    /// the encoder's Gaussian, or IAF steps in a hierarchy's layers.
    fn path_density_only(&self) -> bool {
        !matches!(self.flow, FlowConfig::None)
            || matches!(&self.latent, LatentConfig::Hierarchy(c) if c.iaf.is_some())
    }

    /// Latents that replace the networks (discrete ones, hierarchies) take no flow (`hint`
    /// ends the message) and bring their own prior.
    fn no_flow_own_prior(&self, kind: &str, hint: &str) -> Result<(), ConfigError> {
        if !matches!(self.flow, FlowConfig::None) {
            bail!("{kind} take no flow{hint}");
        }
        if self.prior.is_learned() {
            bail!(
                "prior = {}: {kind} have their own prior; use --prior standard",
                self.prior.describe()
            );
        }
        Ok(())
    }

    fn validate_gaussian(&self) -> Result<(), ConfigError> {
        check_count("networks.latent_dim", self.latent_dim(), 1)?;
        self.prior.validate()?;
        if matches!(self.prior, PriorConfig::Vamp { .. })
            && self.networks.normalization() == Normalization::Batch
        {
            bail!(
                "prior = {}: the VampPrior runs the encoder on its pseudo-inputs, which would move batch norm's running statistics; use networks.norm = none or weight",
                self.prior.describe()
            );
        }
        match &self.networks {
            Networks::Dense(c) => {
                check_count("networks.input_dim", c.input_dim, 1)?;
                if let Some(w) = c.hidden.iter().find(|&&w| w == 0) {
                    bail!("networks.hidden: width {w} must be at least 1");
                }
            }
            Networks::ResNet(c) => {
                if c.kernel % 2 == 0 {
                    bail!("networks.kernel = {}: must be odd", c.kernel);
                }
                if c.stages.iter().any(|s| s.channels == 0 || s.blocks == 0) {
                    bail!("networks.stages: every stage needs channels >= 1 and blocks >= 1");
                }
            }
            Networks::Gated(_) => {}
        }
        match &self.flow {
            FlowConfig::None => return Ok(()),
            FlowConfig::Iaf { steps, hidden, .. } => {
                check_count("flow.steps", *steps, 1)?;
                if hidden.is_empty() {
                    bail!("flow.hidden: an IAF's MADE needs at least one hidden layer");
                }
            }
            FlowConfig::Planar { steps } => check_count("flow.steps", *steps, 1)?,
            FlowConfig::Sylvester { steps, sylvester } => {
                check_count("flow.steps", *steps, 1)?;
                if let SylvesterKind::Householder { reflections } = sylvester {
                    check_count("flow.sylvester.reflections", *reflections, 1)?;
                }
            }
        }
        if self.context_dim() == 0 {
            bail!("a flow posterior needs an encoder context (context_dim > 0)");
        }
        if let FlowConfig::Iaf { hidden, .. } = &self.flow
            && let Some(w) = hidden.iter().find(|&&w| w % self.latent_dim() != 0)
        {
            bail!(
                "IAF hidden width {w} must be a multiple of the latent dimension {}",
                self.latent_dim()
            );
        }
        Ok(())
    }

    /// Checks that `objective` can train this model: pathwise bounds (ELBO, IWAE) need
    /// Gaussian latents and the Concrete relaxation discrete ones; NVIL's learned baseline
    /// needs a discrete model with a baseline network; VIMCO needs two draws or more; DReG and
    /// the score-function estimators a posterior without a flow (or layer IAFs); free-bits
    /// groups at most the latent dimension.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn check_objective(&self, objective: &ObjectiveConfig) -> Result<(), ConfigError> {
        let o = objective.objective;
        let pathwise = matches!(o, Objective::Elbo { .. } | Objective::Iwae { .. });
        match &self.latent {
            LatentConfig::Discrete(c) => {
                if pathwise {
                    bail!(
                        "discrete latents cannot be trained by the ELBO or IWAE gradient: choose --estimator reinforce, nvil, vimco, rws, concrete or concrete-st"
                    );
                }
                if let Objective::Reinforce { baseline, .. } = o
                    && baseline.learned
                    && c.baseline_hidden.is_none()
                {
                    bail!("NVIL's learned baseline needs baseline_hidden in the latent config");
                }
            }
            LatentConfig::Gaussian | LatentConfig::Hierarchy(_) => {
                if matches!(o, Objective::Concrete { .. }) {
                    bail!(
                        "the Concrete relaxation needs discrete latents (--latent bernoulli:.. or categorical:..)"
                    );
                }
                if let Objective::Reinforce { baseline, .. } = o
                    && baseline.learned
                {
                    bail!(
                        "NVIL's learned baseline exists for discrete latents only; use --estimator reinforce"
                    );
                }
                if let Some(fb) = objective.free_bits
                    && fb.groups > 1
                    && (self.prior.is_learned()
                        || matches!(self.latent, LatentConfig::Hierarchy(_)))
                {
                    bail!(
                        "objective.free_bits.groups = {}: per-dimension KLs need a prior and a posterior that factorise over the dimensions, which {} does not: use free_bits.groups = 1",
                        fb.groups,
                        match self.latent {
                            LatentConfig::Hierarchy(_) => "a stochastic hierarchy".to_string(),
                            _ => format!("the prior {}", self.prior.describe()),
                        }
                    );
                }
                if let Some(fb) = objective.free_bits
                    && fb.groups > self.latent_dim()
                {
                    bail!(
                        "objective.free_bits.groups = {}: must be at most the latent dimension {}",
                        fb.groups,
                        self.latent_dim()
                    );
                }
            }
        }
        match o {
            Objective::Vimco { num_samples } if num_samples < 2 => {
                bail!("VIMCO needs --k 2 or more")
            }
            Objective::Concrete { temperature, .. } if !temperature.is_valid() => {
                bail!("the Concrete temperatures must be finite and > 0")
            }
            Objective::Iwae {
                gradient: IwaeGradient::Dreg,
                ..
            } if self.path_density_only() => {
                bail!("DReG needs a posterior without a flow (or layer IAFs)")
            }
            Objective::Reinforce { .. } | Objective::Vimco { .. } | Objective::Rws { .. }
                if self.path_density_only() =>
            {
                bail!(
                    "the score-function estimators (reinforce, nvil, vimco, rws) need log q at any point, which a flow posterior (or layer IAFs) has only along its sampling path: use --estimator elbo or iwae"
                )
            }
            Objective::Iwae {
                gradient: IwaeGradient::Dreg,
                ..
            }
            | Objective::Rws { .. }
                if matches!(self.prior, PriorConfig::Vamp { .. }) =>
            {
                bail!(
                    "the VampPrior's encoder is part of the prior, so the inference network's gradient has a prior term that DReG and RWS leave out: use --estimator elbo or iwae"
                )
            }
            _ => Ok(()),
        }
    }
}

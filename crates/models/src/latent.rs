//! Gaussian or discrete latent variables.

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use vaekit_nets::Activation;
use vaekit_objectives::{
    DiscreteConfig, HierarchyConfig, HierarchyInference, LatentUnits, LayerIaf, StochasticLayer,
};

/// The latent variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LatentConfig {
    /// Gaussian latents of `networks` (with the configured flow).
    #[default]
    Gaussian,
    /// Discrete latents: a sigmoid belief network or a categorical VAE, which replaces
    /// `networks` and `flow`.
    Discrete(DiscreteConfig),
    /// A hierarchy of Gaussian latent layers (top-down generation; bottom-up or top-down
    /// inference), which replaces `networks`, `flow` and `prior`.
    Hierarchy(HierarchyConfig),
}

impl LatentConfig {
    /// Parses `gaussian`, `bernoulli:200`, `bernoulli:200,200`, `categorical:30x10` or
    /// `hierarchy:100,50` (Gaussian layers of 100 and 50 units, bottom first, each reached
    /// through two tanh layers twice as wide as itself: the IWAE paper's two-layer model,
    /// bottom-up; [`LatentConfig::with_inference`] makes it top-down).
    ///
    /// # Errors
    /// Another form, or a configuration that fails its own validation.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = || {
            ConfigError::new(format!(
                "invalid --latent {text:?}: use gaussian, bernoulli:W[,W..], categorical:VxC or hierarchy:U,U[,U..]"
            ))
        };
        if text == "gaussian" {
            return Ok(LatentConfig::Gaussian);
        }
        let (kind, spec) = text.split_once(':').ok_or_else(bad)?;
        let config = match kind {
            "bernoulli" => {
                let units = spec
                    .split(',')
                    .map(|w| w.trim().parse::<usize>().map_err(|_| bad()))
                    .collect::<Result<Vec<_>, _>>()?;
                DiscreteConfig::sigmoid_belief_net(784, &units)
            }
            "hierarchy" => {
                let units = spec
                    .split(',')
                    .map(|w| w.trim().parse::<usize>().map_err(|_| bad()))
                    .collect::<Result<Vec<_>, _>>()?;
                let config = HierarchyConfig {
                    input_dim: 784,
                    layers: units
                        .iter()
                        .map(|&u| StochasticLayer {
                            units: u,
                            hidden: vec![2 * u, 2 * u],
                        })
                        .collect(),
                    activation: Activation::Tanh,
                    inference: HierarchyInference::BottomUp,
                    iaf: None,
                };
                config
                    .validate()
                    .map_err(|e| ConfigError::new(format!("invalid --latent {text:?}: {e}")))?;
                return Ok(LatentConfig::Hierarchy(config));
            }
            "categorical" => {
                let (v, c) = spec.split_once('x').ok_or_else(bad)?;
                let (v, c) = (v.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?);
                DiscreteConfig::categorical_vae(784, v, c)
            }
            _ => return Err(bad()),
        };
        config
            .validate()
            .map_err(|e| ConfigError::new(e.to_string()))?;
        Ok(LatentConfig::Discrete(config))
    }

    /// This configuration with a stochastic hierarchy's inference order set to `name`
    /// (`bottom-up` or `top-down`: `--inference`).
    ///
    /// # Errors
    /// Another name, or latents that are not a hierarchy, naming `--inference`.
    pub fn with_inference(self, name: &str) -> Result<Self, ConfigError> {
        let inference = HierarchyInference::parse(name)
            .map_err(|e| ConfigError::new(format!("invalid --inference {name:?}: {e}")))?;
        match self {
            LatentConfig::Hierarchy(c) => {
                Ok(LatentConfig::Hierarchy(HierarchyConfig { inference, ..c }))
            }
            other => Err(ConfigError::new(format!(
                "--inference {name}: it orders a stochastic hierarchy's layers (--latent hierarchy:U,U or the iwae-2layer preset); these latents are {}",
                other.describe()
            ))),
        }
    }

    /// This configuration with `steps` gated IAF steps after every layer of a stochastic
    /// hierarchy's posterior (`--layer-iaf`; 0 removes them): each a MADE of two hidden
    /// layers of width `w`, the smallest multiple of every layer's units that is at least
    /// twice the largest (200 for the iwae-2layer model's 100 and 50), conditioned on a
    /// context as wide as the largest layer. See [`LayerIaf`].
    ///
    /// # Errors
    /// `steps` above 64, latents that are not a hierarchy, layers whose widths would exceed
    /// 8192 or whose largest exceeds 4096 units, naming `--layer-iaf`.
    pub fn with_layer_iaf(self, steps: usize) -> Result<Self, ConfigError> {
        let LatentConfig::Hierarchy(c) = self else {
            return Err(ConfigError::new(format!(
                "--layer-iaf {steps}: it adds IAF steps to a stochastic hierarchy's layers (--latent hierarchy:U,U or the iwae-2layer preset); these latents are {}",
                self.describe()
            )));
        };
        if steps > 64 {
            return Err(ConfigError::new(format!(
                "--layer-iaf {steps}: must be 0 to 64"
            )));
        }
        let units = c.units();
        let largest = units.iter().copied().max().unwrap_or(1);
        let lcm = units
            .iter()
            .fold(1usize, |a, &u| (a / gcd(a, u)).saturating_mul(u));
        let width = (2 * largest).div_ceil(lcm) * lcm;
        if width > MAX_LAYER_IAF_WIDTH {
            return Err(ConfigError::new(format!(
                "--layer-iaf {steps}: the layers {units:?} need MADE widths that are multiples of {lcm}, here {width}, above {MAX_LAYER_IAF_WIDTH}: set latent.iaf in a --config file"
            )));
        }
        let iaf = (steps > 0).then(|| LayerIaf::gated(steps, vec![width, width], largest));
        if let Some(iaf) = &iaf {
            iaf.validate(&units)
                .map_err(|e| ConfigError::new(format!("--layer-iaf {steps}: {e}")))?;
        }
        Ok(LatentConfig::Hierarchy(HierarchyConfig { iaf, ..c }))
    }

    /// A short description (`bernoulli:200,200`).
    pub fn describe(&self) -> String {
        match self {
            LatentConfig::Gaussian => "gaussian".into(),
            LatentConfig::Hierarchy(c) => {
                let units: Vec<String> = c.layers.iter().map(|l| l.units.to_string()).collect();
                let mut text = format!("hierarchy:{}", units.join(","));
                if c.inference == HierarchyInference::TopDown {
                    text.push_str(" (top-down inference)");
                }
                if let Some(iaf) = &c.iaf {
                    text.push_str(&format!(" with {} IAF steps per layer", iaf.steps));
                }
                text
            }
            LatentConfig::Discrete(c) => {
                let parts: Vec<String> = c
                    .layers
                    .iter()
                    .map(|l| match l {
                        LatentUnits::Bernoulli { units } => format!("bernoulli:{units}"),
                        LatentUnits::Categorical { variables, classes } => {
                            format!("categorical:{variables}x{classes}")
                        }
                    })
                    .collect();
                parts.join(",")
            }
        }
    }
}

/// The widest MADE layer `--layer-iaf` builds.
const MAX_LAYER_IAF_WIDTH: usize = 8192;

/// The greatest common divisor.
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

//! Gaussian or discrete latent variables.

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use vaekit_nets::Activation;
use vaekit_objectives::{
    DiscreteConfig, HierarchyConfig, HierarchyInference, LatentUnits, StochasticLayer,
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

    /// A short description (`bernoulli:200,200`).
    pub fn describe(&self) -> String {
        match self {
            LatentConfig::Gaussian => "gaussian".into(),
            LatentConfig::Hierarchy(c) => {
                let units: Vec<String> = c.layers.iter().map(|l| l.units.to_string()).collect();
                match c.inference {
                    HierarchyInference::BottomUp => format!("hierarchy:{}", units.join(",")),
                    HierarchyInference::TopDown => {
                        format!("hierarchy:{} (top-down inference)", units.join(","))
                    }
                }
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

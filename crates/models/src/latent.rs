//! Gaussian or discrete latent variables.

use crate::ConfigError;
use serde::{Deserialize, Serialize};
use vaekit_objectives::{DiscreteConfig, LatentUnits};

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
}

impl LatentConfig {
    /// Parses `gaussian`, `bernoulli:200`, `bernoulli:200,200` or `categorical:30x10`.
    ///
    /// # Errors
    /// Another form, or a discrete configuration that fails its own validation.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = || {
            ConfigError::new(format!(
                "invalid --latent {text:?}: use gaussian, bernoulli:W[,W..] or categorical:VxC"
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

    /// A short description (`bernoulli:200,200`).
    pub fn describe(&self) -> String {
        match self {
            LatentConfig::Gaussian => "gaussian".into(),
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

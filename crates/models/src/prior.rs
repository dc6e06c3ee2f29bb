//! Which prior a Gaussian-latent VAE has.

use crate::ConfigError;
use crate::error::bail;
use serde::{Deserialize, Serialize};

/// The most components a learned prior may have (a VampPrior runs the encoder on every
/// pseudo-input at every step).
pub const MAX_PRIOR_COMPONENTS: usize = 10_000;

/// The prior `p(z)` of Gaussian latents (discrete latents have their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PriorConfig {
    /// `N(0, I)`: analytic KLs against the Gaussian posterior.
    #[default]
    StandardNormal,
    /// A learned mixture of `components` diagonal Gaussians
    /// ([`vaekit_objectives::MixturePrior`], parameters `prior.*`).
    Mixture {
        /// `K`, in `1..=10000`.
        components: usize,
    },
    /// The VampPrior: the encoder's posterior at `pseudo_inputs` learned inputs, equally
    /// weighted ([`vaekit_objectives::VampPrior`], `prior.pseudo_inputs`).
    Vamp {
        /// `K`, in `1..=10000` (500 in the paper's MNIST models).
        pseudo_inputs: usize,
    },
}

impl PriorConfig {
    /// Parses `standard`, `mog:K` or `vamp:K`.
    ///
    /// # Errors
    /// Another form, or `K` outside `1..=10000`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let bad = || {
            ConfigError::new(format!(
                "invalid --prior {text:?}: use standard, mog:K or vamp:K (K in 1..={MAX_PRIOR_COMPONENTS})"
            ))
        };
        let config = match text.split_once(':') {
            None if text == "standard" => PriorConfig::StandardNormal,
            Some(("mog", k)) => PriorConfig::Mixture {
                components: k.parse().map_err(|_| bad())?,
            },
            Some(("vamp", k)) => PriorConfig::Vamp {
                pseudo_inputs: k.parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        };
        config.validate().map_err(|_| bad())?;
        Ok(config)
    }

    /// `standard`, `mog:K` or `vamp:K`.
    pub fn describe(&self) -> String {
        match self {
            PriorConfig::StandardNormal => "standard".into(),
            PriorConfig::Mixture { components } => format!("mog:{components}"),
            PriorConfig::Vamp { pseudo_inputs } => format!("vamp:{pseudo_inputs}"),
        }
    }

    /// Checks the component count.
    ///
    /// # Errors
    /// `K` outside `1..=10000`, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (field, k) = match *self {
            PriorConfig::StandardNormal => return Ok(()),
            PriorConfig::Mixture { components } => ("prior.components", components),
            PriorConfig::Vamp { pseudo_inputs } => ("prior.pseudo_inputs", pseudo_inputs),
        };
        if !(1..=MAX_PRIOR_COMPONENTS).contains(&k) {
            bail!("{field} = {k}: must be in 1..={MAX_PRIOR_COMPONENTS}");
        }
        Ok(())
    }

    /// Whether the prior has trainable parameters.
    pub fn is_learned(&self) -> bool {
        !matches!(self, PriorConfig::StandardNormal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_describes_and_rejects() {
        for text in ["standard", "mog:10", "vamp:500"] {
            assert_eq!(PriorConfig::parse(text).unwrap().describe(), text);
        }
        for bad in [
            "",
            "mog",
            "mog:0",
            "vamp:x",
            "vamp:10001",
            "normal",
            "mog:-1",
        ] {
            let e = PriorConfig::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--prior"), "{bad}: {e}");
        }
        let e = PriorConfig::Vamp { pseudo_inputs: 0 }
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("prior.pseudo_inputs = 0"), "{e}");
    }
}

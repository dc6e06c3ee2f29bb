//! The run configuration: presets, TOML/JSON files and command-line overrides.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use vaekit_datasets::Binarization;
use vaekit_flows::{IafVariant, MadeConfig, SylvesterKind};
use vaekit_nets::{Activation, DenseConfig, GatedConfig, Likelihood, Normalization, ResNetConfig};
use vaekit_objectives::{FreeBits, IwaeGradient, KlWarmup, Objective, ObjectiveConfig};
use vaekit_train::{LrSchedule, OptimizerConfig, OptimizerKind};

/// The encoder/decoder pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Networks {
    /// Dense networks.
    Dense(DenseConfig),
    /// ResNet networks.
    ResNet(ResNetConfig),
    /// Gated-convolution networks.
    Gated(GatedConfig),
}

impl Networks {
    pub fn latent_dim(&self) -> usize {
        match self {
            Networks::Dense(c) => c.latent_dim,
            Networks::ResNet(c) => c.latent_dim,
            Networks::Gated(c) => c.latent_dim,
        }
    }

    pub fn context_dim(&self) -> usize {
        match self {
            Networks::Dense(c) => c.context_dim,
            Networks::ResNet(c) => c.context_dim,
            Networks::Gated(c) => c.context_dim,
        }
    }
}

/// The posterior's flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FlowConfig {
    /// A plain Gaussian posterior.
    None,
    /// `steps` IAF steps on a conditional MADE (hidden widths and normalisation as given).
    Iaf {
        steps: usize,
        hidden: Vec<usize>,
        norm: Normalization,
        variant: IafVariant,
    },
    /// `steps` amortized planar steps.
    Planar { steps: usize },
    /// `steps` amortized Sylvester steps.
    Sylvester {
        steps: usize,
        sylvester: SylvesterKind,
    },
}

/// Everything a run needs; written to `config.json` in the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The preset this configuration started from.
    pub preset: String,
    /// Networks.
    pub networks: Networks,
    /// Posterior flow.
    pub flow: FlowConfig,
    /// Pixel likelihood.
    pub likelihood: Likelihood,
    /// Objective (and warm-up, free bits).
    pub objective: ObjectiveConfig,
    /// Optimizer.
    pub optimizer: OptimizerConfig,
    /// Base learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// Epochs to train.
    pub epochs: u64,
    /// Minibatch size.
    pub batch_size: usize,
    /// Gradient clipping by global norm.
    pub clip_norm: Option<f64>,
    /// Parameter EMA decay (evaluation uses the average).
    pub ema_decay: Option<f64>,
    /// Seed of the initialisation and of the training noise stream.
    pub seed: u64,
    /// Training-set binarization.
    pub binarization: Binarization,
    /// Seed of the test set's single binarization (the IWAE protocol).
    pub test_binarization_seed: u64,
    /// Use only the first N training images (quick checks).
    pub limit_train: Option<usize>,
    /// Use only the first N test images (quick checks).
    pub limit_test: Option<usize>,
    /// Importance samples for the final NLL.
    pub is_samples: usize,
    /// MNIST directory (resolution order applies when absent).
    pub data_dir: Option<PathBuf>,
}

/// Names of the presets.
pub const PRESETS: [&str; 3] = ["iwae-dense", "iaf-resnet", "snf-gated"];

impl RunConfig {
    /// A preset by name.
    pub fn preset(name: &str) -> Result<Self> {
        let base = RunConfig {
            preset: name.to_string(),
            networks: Networks::Dense(DenseConfig::default()),
            flow: FlowConfig::None,
            likelihood: Likelihood::Bernoulli,
            objective: ObjectiveConfig {
                objective: Objective::Elbo {
                    num_samples: 1,
                    analytic_kl: true,
                },
                warmup: None,
                free_bits: None,
            },
            optimizer: OptimizerConfig {
                kind: OptimizerKind::Adam,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-4,
                weight_decay: 0.0,
            },
            lr: 1e-3,
            schedule: LrSchedule::IwaePaper,
            epochs: 3280,
            batch_size: 20,
            clip_norm: None,
            ema_decay: None,
            seed: 0,
            binarization: Binarization::Dynamic,
            test_binarization_seed: 123,
            limit_train: None,
            limit_test: None,
            is_samples: 5000,
            data_dir: None,
        };
        Ok(match name {
            // The IWAE paper's dense VAE: 784-200-200-50, tanh, Bernoulli, Adam(eps 1e-4),
            // batch 20, 3^i epochs at 1e-3·10^(-i/7).
            "iwae-dense" => base,
            // The reference TF implementation's ResNet VAE with 8 IAF steps.
            "iaf-resnet" => {
                let resnet = ResNetConfig::reference_tf();
                RunConfig {
                    flow: FlowConfig::Iaf {
                        steps: 8,
                        hidden: vec![1920, 1920],
                        norm: Normalization::Weight,
                        variant: IafVariant::Gated { forget_bias: 1.0 },
                    },
                    networks: Networks::ResNet(resnet),
                    objective: ObjectiveConfig {
                        objective: Objective::Elbo {
                            num_samples: 1,
                            analytic_kl: true,
                        },
                        warmup: Some(KlWarmup { epochs: 200.0 }),
                        free_bits: Some(FreeBits {
                            nats_per_dim: 0.01,
                            groups: 1,
                        }),
                    },
                    optimizer: OptimizerConfig {
                        eps: 1e-8,
                        ..base.optimizer
                    },
                    schedule: LrSchedule::StepDecay {
                        gamma: 0.5,
                        every_epochs: 800.0,
                    },
                    epochs: 2500,
                    batch_size: 200,
                    ema_decay: Some(0.999),
                    is_samples: 1000,
                    ..base
                }
            }
            // The Sylvester paper's gated-conv VAE with 4 orthogonal Sylvester steps.
            "snf-gated" => RunConfig {
                networks: Networks::Gated(GatedConfig {
                    latent_dim: 64,
                    context_dim: 256,
                    log_scale_offset: 0.0,
                    norm: Normalization::None,
                    ..GatedConfig::default()
                }),
                flow: FlowConfig::Sylvester {
                    steps: 4,
                    sylvester: SylvesterKind::Householder { reflections: 8 },
                },
                objective: ObjectiveConfig {
                    objective: Objective::Elbo {
                        num_samples: 1,
                        analytic_kl: true,
                    },
                    warmup: Some(KlWarmup { epochs: 100.0 }),
                    free_bits: None,
                },
                optimizer: OptimizerConfig {
                    eps: 1e-8,
                    ..base.optimizer
                },
                schedule: LrSchedule::Constant,
                lr: 5e-4,
                epochs: 2000,
                batch_size: 100,
                is_samples: 1000,
                ..base
            },
            other => bail!(
                "unknown preset {other:?}; choose one of {}",
                PRESETS.join(", ")
            ),
        })
    }

    /// Reads a configuration file (`.toml` or `.json`).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => toml::from_str(&text)
                .with_context(|| format!("{}: invalid TOML configuration", path.display())),
            _ => serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid JSON configuration", path.display())),
        }
    }

    /// Sets the number of importance samples `k` of the objective (`1` gives the ELBO).
    pub fn set_k(&mut self, k: usize) {
        self.objective.objective = if k <= 1 {
            Objective::Elbo {
                num_samples: 1,
                analytic_kl: true,
            }
        } else {
            Objective::Iwae {
                num_samples: k,
                gradient: IwaeGradient::Standard,
            }
        };
    }

    /// Checks the combination before any tensor exists.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 || self.epochs == 0 || self.is_samples == 0 {
            bail!("batch_size, epochs and is_samples must be > 0");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("lr must be finite and > 0, got {}", self.lr);
        }
        let needs_context = !matches!(self.flow, FlowConfig::None);
        if needs_context && self.networks.context_dim() == 0 {
            bail!("a flow posterior needs an encoder context (context_dim > 0)");
        }
        if let FlowConfig::Iaf { hidden, .. } = &self.flow
            && let Some(w) = hidden
                .iter()
                .find(|&&w| w % self.networks.latent_dim() != 0)
        {
            bail!(
                "IAF hidden width {w} must be a multiple of the latent dimension {}",
                self.networks.latent_dim()
            );
        }
        if let (
            Objective::Iwae {
                gradient: IwaeGradient::Dreg,
                ..
            },
            false,
        ) = (
            self.objective.objective,
            matches!(self.flow, FlowConfig::None),
        ) {
            bail!("DReG needs a posterior without a flow");
        }
        Ok(())
    }

    /// The MADE configuration of an IAF flow.
    pub fn made(&self, hidden: &[usize], norm: Normalization) -> MadeConfig {
        MadeConfig {
            dim: self.networks.latent_dim(),
            hidden: hidden.to_vec(),
            context_dim: self.networks.context_dim(),
            norm,
            activation: Activation::Elu,
            ..MadeConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_round_trip() -> Result<()> {
        for name in PRESETS {
            let cfg = RunConfig::preset(name)?;
            cfg.validate()?;
            let back: RunConfig = serde_json::from_str(&serde_json::to_string(&cfg)?)?;
            assert_eq!(back, cfg);
        }
        assert!(RunConfig::preset("nope").is_err());
        let mut c = RunConfig::preset("iwae-dense")?;
        c.set_k(50);
        assert_eq!(
            c.objective.objective,
            Objective::Iwae {
                num_samples: 50,
                gradient: IwaeGradient::Standard
            }
        );
        Ok(())
    }
}

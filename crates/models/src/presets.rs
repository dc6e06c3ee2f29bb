//! The named presets: the papers' models with their training settings.

use crate::error::bail;
use crate::estimator_objective;
use crate::{ConfigError, FlowConfig, LatentConfig, Networks, RunConfig, VaeConfig};
use vaekit_datasets::Binarization;
use vaekit_flows::{IafVariant, SylvesterKind};
use vaekit_nets::{DenseConfig, GatedConfig, Likelihood, Normalization, ResNetConfig};
use vaekit_objectives::{DiscreteConfig, FreeBits, KlWarmup, Objective, ObjectiveConfig};
use vaekit_train::{LrSchedule, OptimizerConfig, OptimizerKind};

/// Names of the presets.
pub const PRESETS: [&str; 4] = ["iwae-dense", "iaf-resnet", "snf-gated", "sbn"];

impl RunConfig {
    /// A preset by name.
    ///
    /// # Errors
    /// An unknown name.
    pub fn preset(name: &str) -> Result<Self, ConfigError> {
        let base = RunConfig {
            preset: name.to_string(),
            model: VaeConfig {
                networks: Networks::Dense(DenseConfig::default()),
                flow: FlowConfig::None,
                latent: LatentConfig::Gaussian,
                likelihood: Likelihood::Bernoulli,
            },
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
            ema_warmup: true,
            seed: 0,
            binarization: Binarization::Dynamic,
            test_binarization_seed: 123,
            limit_train: None,
            limit_test: None,
            is_samples: 5000,
            data_dir: None,
            time_budget_minutes: None,
        };
        Ok(match name {
            // The IWAE paper's dense VAE: 784-200-200-50, tanh, Bernoulli, Adam(eps 1e-4),
            // batch 20, 3^i epochs at 1e-3·10^(-i/7).
            "iwae-dense" => base,
            // The reference TF implementation's ResNet VAE with 8 IAF steps. Like the IAF
            // reference code it evaluates with a moving average of the parameters (decay
            // 0.999), which smooths the step-to-step noise of long runs; its decay is warmed
            // up (`ema_warmup`), so a short run is evaluated near its current weights.
            "iaf-resnet" => {
                let resnet = ResNetConfig::reference_tf();
                RunConfig {
                    model: VaeConfig {
                        flow: FlowConfig::Iaf {
                            steps: 8,
                            hidden: vec![1920, 1920],
                            norm: Normalization::Weight,
                            variant: IafVariant::Gated { forget_bias: 1.0 },
                        },
                        networks: Networks::ResNet(resnet),
                        ..base.model
                    },
                    objective: ObjectiveConfig {
                        objective: Objective::Elbo {
                            num_samples: 1,
                            analytic_kl: true,
                        },
                        warmup: Some(KlWarmup { epochs: 200.0 }),
                        // Free bits as in the IAF reference code (openai/iaf, tf_train.py:
                        // `kl_min=0.25`, "number of free bits/nats", floored per latent
                        // channel after averaging over the batch); this latent is a vector,
                        // so one group per dimension: Σ_d max(0.25, E_x KL_d), the KL of each
                        // dimension taken through the IAF steps.
                        free_bits: Some(FreeBits {
                            nats_per_dim: 0.25,
                            groups: 64,
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
                model: VaeConfig {
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
                    ..base.model
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
            // A sigmoid belief network with one layer of 200 binary units, trained by NVIL
            // (batch 24, Adam 3e-4); `--latent` and `--estimator` change it.
            "sbn" => {
                let mut cfg = RunConfig {
                    model: VaeConfig {
                        latent: LatentConfig::Discrete(DiscreteConfig::sigmoid_belief_net(
                            784,
                            &[200],
                        )),
                        ..base.model
                    },
                    objective: estimator_objective("nvil", 1)?.into(),
                    optimizer: OptimizerConfig {
                        eps: 1e-8,
                        ..base.optimizer
                    },
                    schedule: LrSchedule::Constant,
                    lr: 3e-4,
                    epochs: 1000,
                    batch_size: 24,
                    ..base
                };
                cfg.fit_baseline();
                cfg
            }
            other => bail!(
                "unknown preset {other:?}; choose one of {}",
                PRESETS.join(", ")
            ),
        })
    }
}

//! The named presets: the papers' models with their training settings.

use crate::error::bail;
use crate::estimator_objective;
use crate::{ConfigError, FlowConfig, LatentConfig, Networks, PriorConfig, RunConfig, VaeConfig};
use vaekit_datasets::Binarization;
use vaekit_flows::{IafVariant, SylvesterKind};
use vaekit_nets::{DenseConfig, GatedConfig, Likelihood, Normalization, ResNetConfig};
use vaekit_objectives::{
    DiscreteConfig, FreeBits, HierarchyConfig, KlWarmup, Objective, ObjectiveConfig,
};
use vaekit_train::{LrSchedule, OptimizerConfig, OptimizerKind};

/// Names of the presets.
pub const PRESETS: [&str; 7] = [
    "iwae-dense",
    "iaf-resnet",
    "snf-gated",
    "sbn",
    "vamp-dense",
    "dense-iaf",
    "iwae-2layer",
];

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
                prior: PriorConfig::StandardNormal,
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
        // The Sylvester and VampPrior papers' training: the ELBO with a KL warm-up over 100
        // epochs, Adam 5e-4 (eps 1e-8), batch 100, up to 2000 epochs.
        let warmed = RunConfig {
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
            ..base.clone()
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
                is_samples: 1000,
                ..warmed
            },
            // The VampPrior paper's one-layer VAE on dynamic MNIST (Tomczak & Welling 2018,
            // section 4): 40 latents, two hidden layers of 300 units, 500 pseudo-inputs,
            // KL warm-up over 100 epochs, Adam 5e-4, batch 100. The paper's hidden layers are
            // gated (h = (W x) ⊙ σ(V x)); these are tanh, as in the IWAE networks.
            "vamp-dense" => RunConfig {
                model: VaeConfig {
                    networks: Networks::Dense(DenseConfig {
                        hidden: vec![300, 300],
                        latent_dim: 40,
                        ..DenseConfig::default()
                    }),
                    prior: PriorConfig::Vamp { pseudo_inputs: 500 },
                    ..base.model
                },
                ..warmed
            },
            // The IWAE paper's dense networks (784-200-200-50, tanh) with an IAF posterior:
            // two steps, each a MADE of two hidden layers of 200 units (four per latent
            // dimension, so every autoregressive degree has four units) conditioned on a
            // 50-wide context from the encoder, gated updates as in the IAF paper. Two steps
            // add a third to the multiply-adds of a draw (a MADE step is 50·200 + 200·200 +
            // 200·100, the encoder and decoder about 424 000), though at batch 20 the many
            // small ops make a step about twice as long as iwae-dense's. Training as
            // iwae-dense, so the two compare at equal wall time.
            "dense-iaf" => RunConfig {
                model: VaeConfig {
                    networks: Networks::Dense(DenseConfig {
                        context_dim: 50,
                        ..DenseConfig::default()
                    }),
                    flow: FlowConfig::Iaf {
                        steps: 2,
                        hidden: vec![200, 200],
                        norm: Normalization::None,
                        variant: IafVariant::Gated { forget_bias: 1.0 },
                    },
                    ..base.model
                },
                ..base
            },
            // The IWAE paper's two-stochastic-layer model (section 5; the widths of its reference
            // code's experiments.py): x - 200 - 200 - z1 (100) - 100 - 100 - z2 (50), tanh,
            // mirrored generatively; trained as iwae-dense (Adam with eps 1e-4, batch 20, the
            // 3280-epoch schedule). `--k` makes it an IWAE.
            "iwae-2layer" => RunConfig {
                model: VaeConfig {
                    latent: LatentConfig::Hierarchy(HierarchyConfig::iwae_two_layer(784)),
                    ..base.model
                },
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

//! The run configuration: presets, TOML/JSON files and command-line overrides.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use vaekit_datasets::Binarization;
use vaekit_flows::{IafVariant, MadeConfig, SylvesterKind};
use vaekit_nets::{Activation, DenseConfig, GatedConfig, Likelihood, Normalization, ResNetConfig};
use vaekit_objectives::{
    DiscreteConfig, FreeBits, IwaeGradient, KlWarmup, LatentUnits, Objective, ObjectiveConfig,
    ScoreBaseline, TemperatureSchedule,
};
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
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            anyhow::anyhow!(
                "invalid --latent {text:?}: use gaussian, bernoulli:W[,W..] or categorical:VxC"
            )
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
                    .collect::<Result<Vec<_>>>()?;
                DiscreteConfig::sigmoid_belief_net(784, &units)
            }
            "categorical" => {
                let (v, c) = spec.split_once('x').ok_or_else(bad)?;
                let (v, c) = (v.parse().map_err(|_| bad())?, c.parse().map_err(|_| bad())?);
                DiscreteConfig::categorical_vae(784, v, c)
            }
            _ => return Err(bad()),
        };
        config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
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

/// Names of the `--estimator` choices.
pub const ESTIMATORS: [&str; 8] = [
    "elbo",
    "iwae",
    "reinforce",
    "nvil",
    "vimco",
    "rws",
    "concrete",
    "concrete-st",
];

/// The objective of an `--estimator` name with `k` draws per data point.
pub fn estimator_objective(name: &str, k: usize) -> Result<Objective> {
    if k == 0 {
        bail!("--k 0: the number of draws per data point must be at least 1");
    }
    Ok(match name {
        "elbo" => Objective::Elbo {
            num_samples: k,
            analytic_kl: true,
        },
        "iwae" => Objective::Iwae {
            num_samples: k,
            gradient: IwaeGradient::Standard,
        },
        "reinforce" => Objective::Reinforce {
            num_samples: k,
            baseline: ScoreBaseline::default(),
        },
        "nvil" => Objective::Reinforce {
            num_samples: k,
            baseline: ScoreBaseline::nvil(),
        },
        "vimco" => Objective::Vimco { num_samples: k },
        "rws" => Objective::Rws {
            num_samples: k,
            wake_fraction: 1.0,
        },
        "concrete" | "concrete-st" => Objective::Concrete {
            num_samples: k,
            temperature: TemperatureSchedule::default(),
            straight_through: name == "concrete-st",
        },
        other => bail!(
            "unknown estimator {other:?}; choose one of {}",
            ESTIMATORS.join(", ")
        ),
    })
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
    /// Gaussian (default) or discrete latents.
    #[serde(default)]
    pub latent: LatentConfig,
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
    /// Decay of the exponential moving average of the parameters, in `(0, 1)`; evaluation
    /// (the per-epoch test bound, pictures, IS, HAIS, BDMC) then uses the average and says
    /// so. `null`: no average, evaluation uses the current parameters.
    pub ema_decay: Option<f64>,
    /// Warm the average's decay up (`min(decay, (1 + t) / (10 + t))` at update `t`, as
    /// TensorFlow's `ExponentialMovingAverage` with `num_updates`), so that a short run is
    /// not evaluated at nearly its initial parameters. `true` in every preset; a `config.json`
    /// written before the field existed reads as `false`, so such a run resumes with the
    /// plain decay it was trained with.
    #[serde(default)]
    pub ema_warmup: bool,
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
    /// Wall-clock budget of the training in one invocation, minutes: no epoch is started
    /// that would end past it (judged by the previous epoch's time), then the pictures and
    /// the final evaluation run as usual.
    #[serde(default)]
    pub time_budget_minutes: Option<f64>,
}

/// `value >= min` for a count, or an error naming the field.
fn check_count(field: &str, value: usize, min: usize) -> Result<()> {
    if value < min {
        bail!("{field} = {value}: must be at least {min}");
    }
    Ok(())
}

/// `lo < value < hi` (and not NaN), or an error naming the field.
fn check_open(field: &str, value: f64, lo: f64, hi: f64) -> Result<()> {
    if !(value > lo && value < hi) {
        bail!("{field} = {value}: must lie in ({lo}, {hi})");
    }
    Ok(())
}

/// `lo <= value < hi` (and not NaN), or an error naming the field.
fn check_half_open(field: &str, value: f64, lo: f64, hi: f64) -> Result<()> {
    if !(value >= lo && value < hi) {
        bail!("{field} = {value}: must lie in [{lo}, {hi})");
    }
    Ok(())
}

/// A short name of an objective for messages.
fn objective_name(o: &Objective) -> &'static str {
    match o {
        Objective::Elbo { .. } => "the ELBO",
        Objective::Iwae { .. } => "the IWAE bound",
        Objective::Reinforce { .. } => "REINFORCE/NVIL",
        Objective::Vimco { .. } => "VIMCO",
        Objective::Rws { .. } => "reweighted wake-sleep",
        Objective::Concrete { .. } => "the Concrete relaxation",
    }
}

/// Names of the presets.
pub const PRESETS: [&str; 4] = ["iwae-dense", "iaf-resnet", "snf-gated", "sbn"];

impl RunConfig {
    /// A preset by name.
    pub fn preset(name: &str) -> Result<Self> {
        let base = RunConfig {
            preset: name.to_string(),
            networks: Networks::Dense(DenseConfig::default()),
            flow: FlowConfig::None,
            latent: LatentConfig::Gaussian,
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
            // A sigmoid belief network with one layer of 200 binary units, trained by NVIL
            // (batch 24, Adam 3e-4); `--latent` and `--estimator` change it.
            "sbn" => {
                let mut cfg = RunConfig {
                    latent: LatentConfig::Discrete(DiscreteConfig::sigmoid_belief_net(784, &[200])),
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

    /// Sets the number of importance samples `k` of the objective: for the ELBO and IWAE,
    /// `1` gives the ELBO and more the IWAE bound; the other estimators keep their kind.
    ///
    /// # Errors
    /// `k = 0`.
    pub fn set_k(&mut self, k: usize) -> Result<()> {
        if k == 0 {
            bail!("--k 0: the number of draws per data point must be at least 1");
        }
        let o = &mut self.objective.objective;
        match o {
            Objective::Reinforce { num_samples, .. }
            | Objective::Vimco { num_samples }
            | Objective::Rws { num_samples, .. }
            | Objective::Concrete { num_samples, .. } => {
                *num_samples = k;
                return Ok(());
            }
            Objective::Elbo { .. } | Objective::Iwae { .. } => {}
        }
        *o = if k <= 1 {
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
        Ok(())
    }

    /// Sets the estimator (`--estimator`) with `k` draws per data point.
    pub fn set_estimator(&mut self, name: &str, k: usize) -> Result<()> {
        self.objective.objective = estimator_objective(name, k)?;
        self.fit_baseline();
        Ok(())
    }

    /// Gives a discrete model the learned baseline network that NVIL needs, and removes it
    /// for the other estimators (which would leave its parameters without gradients).
    pub fn fit_baseline(&mut self) {
        if let LatentConfig::Discrete(c) = &mut self.latent {
            let learned = matches!(
                self.objective.objective,
                Objective::Reinforce { baseline, .. } if baseline.learned
            );
            c.baseline_hidden = learned.then_some(c.baseline_hidden.unwrap_or(100));
        }
    }

    /// Checks every field's range and the combination before any tensor exists. Each
    /// error names the field (and its flag), the value and the rule; the ranges are listed in
    /// `docs/configuration.md`.
    pub fn validate(&self) -> Result<()> {
        self.validate_ranges()?;
        let pathwise = matches!(
            self.objective.objective,
            Objective::Elbo { .. } | Objective::Iwae { .. }
        );
        match &self.latent {
            LatentConfig::Discrete(c) => {
                c.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
                if pathwise {
                    bail!(
                        "discrete latents cannot be trained by the ELBO or IWAE gradient: choose --estimator reinforce, nvil, vimco, rws, concrete or concrete-st"
                    );
                }
                if !matches!(self.flow, FlowConfig::None) {
                    bail!("discrete latents take no flow");
                }
                if let Objective::Reinforce { baseline, .. } = self.objective.objective
                    && baseline.learned
                    && c.baseline_hidden.is_none()
                {
                    bail!("NVIL's learned baseline needs baseline_hidden in the latent config");
                }
            }
            LatentConfig::Gaussian => {
                if matches!(self.objective.objective, Objective::Concrete { .. }) {
                    bail!(
                        "the Concrete relaxation needs discrete latents (--latent bernoulli:.. or categorical:..)"
                    );
                }
                if let Objective::Reinforce { baseline, .. } = self.objective.objective
                    && baseline.learned
                {
                    bail!(
                        "NVIL's learned baseline exists for discrete latents only; use --estimator reinforce"
                    );
                }
            }
        }
        match self.objective.objective {
            Objective::Vimco { num_samples } if num_samples < 2 => {
                bail!("VIMCO needs --k 2 or more")
            }
            Objective::Concrete { temperature, .. } if !temperature.is_valid() => {
                bail!("the Concrete temperatures must be finite and > 0")
            }
            _ => {}
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

    /// [`RunConfig::validate`] and, for a run about to start, settings that its objective
    /// would ignore or cannot honour: KL warm-up and free bits apply to the ELBO only, and
    /// free bits in groups need a flow that keeps the dimensions apart. (Existing runs are
    /// not held to this, so that runs made before the rules still resume and evaluate.)
    ///
    /// # Errors
    /// Those of [`RunConfig::validate`]; warm-up or free bits with another bound.
    pub fn validate_new_run(&self) -> Result<()> {
        self.validate()?;
        if let Some(fb) = self.objective.free_bits
            && fb.groups > 1
            && matches!(
                self.flow,
                FlowConfig::Planar { .. } | FlowConfig::Sylvester { .. }
            )
        {
            bail!(
                "objective.free_bits.groups = {}: planar and Sylvester flows mix the latent dimensions, so they give no per-dimension KL; use groups = 1",
                fb.groups
            );
        }
        let objective = self.objective.objective;
        if !matches!(objective, Objective::Elbo { .. }) {
            let remedy = "set it to null under `objective` in a JSON --config file, or train the ELBO (--k 1)";
            if self.objective.warmup.is_some() {
                bail!(
                    "objective.warmup: KL warm-up applies to the ELBO only, and this run would train {} and ignore it: {remedy}",
                    objective_name(&objective)
                );
            }
            if self.objective.free_bits.is_some() {
                bail!(
                    "objective.free_bits: free bits apply to the ELBO only, and this run would train {} and ignore them: {remedy}",
                    objective_name(&objective)
                );
            }
        }
        Ok(())
    }

    /// Every numeric field against its stated range.
    fn validate_ranges(&self) -> Result<()> {
        check_count("batch_size (--batch-size)", self.batch_size, 1)?;
        check_count("epochs (--epochs)", self.epochs as usize, 1)?;
        check_count("is_samples (--is-samples)", self.is_samples, 1)?;
        check_open("lr (--lr)", self.lr, 0.0, f64::INFINITY)?;
        if let Some(c) = self.clip_norm {
            check_open("clip_norm", c, 0.0, f64::INFINITY)?;
        }
        if let Some(d) = self.ema_decay {
            check_open(
                "ema_decay (--ema-decay; 0 turns the average off)",
                d,
                0.0,
                1.0,
            )?;
        }
        if let Some(n) = self.limit_train {
            check_count("limit_train (--limit-train)", n, 1)?;
        }
        if let Some(n) = self.limit_test {
            check_count("limit_test (--limit-test)", n, 1)?;
        }
        if let Some(m) = self.time_budget_minutes {
            check_open("time_budget_minutes (--time-budget)", m, 0.0, f64::INFINITY)?;
        }
        let o = &self.optimizer;
        check_half_open("optimizer.beta1", o.beta1, 0.0, 1.0)?;
        check_half_open("optimizer.beta2", o.beta2, 0.0, 1.0)?;
        check_open("optimizer.eps", o.eps, 0.0, f64::INFINITY)?;
        check_half_open("optimizer.weight_decay", o.weight_decay, 0.0, f64::INFINITY)?;
        match self.schedule {
            LrSchedule::StepDecay {
                gamma,
                every_epochs,
            } => {
                check_open("schedule.gamma", gamma, 0.0, f64::INFINITY)?;
                check_open("schedule.every_epochs", every_epochs, 0.0, f64::INFINITY)?;
            }
            LrSchedule::Exponential { gamma } => {
                check_open("schedule.gamma", gamma, 0.0, f64::INFINITY)?;
            }
            LrSchedule::IwaePaperScaled { span_epochs } => {
                check_open(
                    "schedule.span_epochs (--schedule-span)",
                    span_epochs,
                    0.0,
                    f64::INFINITY,
                )?;
            }
            LrSchedule::Constant | LrSchedule::IwaePaper => {}
        }
        let k = self.objective.objective.num_samples();
        check_count("objective.num_samples (--k)", k, 1)?;
        if let Objective::Rws { wake_fraction, .. } = self.objective.objective
            && !(0.0..=1.0).contains(&wake_fraction)
        {
            bail!("objective.wake_fraction = {wake_fraction}: must lie in [0, 1]");
        }
        if let Some(w) = self.objective.warmup {
            check_half_open("objective.warmup.epochs", w.epochs, 0.0, f64::INFINITY)?;
        }
        if let Some(fb) = self.objective.free_bits {
            check_half_open(
                "objective.free_bits.nats_per_dim",
                fb.nats_per_dim,
                0.0,
                f64::INFINITY,
            )?;
            check_count("objective.free_bits.groups", fb.groups, 1)?;

            if let LatentConfig::Gaussian = self.latent
                && fb.groups > self.networks.latent_dim()
            {
                bail!(
                    "objective.free_bits.groups = {}: must be at most the latent dimension {}",
                    fb.groups,
                    self.networks.latent_dim()
                );
            }
        }
        if let LatentConfig::Gaussian = self.latent {
            check_count("networks.latent_dim", self.networks.latent_dim(), 1)?;
            if let Networks::Dense(c) = &self.networks {
                check_count("networks.input_dim", c.input_dim, 1)?;
                if let Some(w) = c.hidden.iter().find(|&&w| w == 0) {
                    bail!("networks.hidden: width {w} must be at least 1");
                }
            }
            if let Networks::ResNet(c) = &self.networks {
                if c.kernel % 2 == 0 {
                    bail!("networks.kernel = {}: must be odd", c.kernel);
                }
                if c.stages.iter().any(|s| s.channels == 0 || s.blocks == 0) {
                    bail!("networks.stages: every stage needs channels >= 1 and blocks >= 1");
                }
            }
            match &self.flow {
                FlowConfig::None => {}
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
        }
        if let Likelihood::DiscretizedLogistic { num_bins } = self.likelihood {
            check_count("likelihood.num_bins", num_bins, 2)?;
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
        let mut sbn = RunConfig::preset("sbn")?;
        sbn.latent = LatentConfig::parse("bernoulli:200,200")?;
        sbn.set_estimator("vimco", 5)?;
        sbn.validate()?;
        assert_eq!(sbn.latent.describe(), "bernoulli:200,bernoulli:200");
        assert_eq!(sbn.objective.objective, Objective::Vimco { num_samples: 5 });
        let LatentConfig::Discrete(c) = &sbn.latent else {
            bail!("not discrete")
        };
        assert_eq!(
            c.baseline_hidden, None,
            "only NVIL builds a baseline network"
        );
        sbn.set_estimator("nvil", 1)?;
        let LatentConfig::Discrete(c) = &sbn.latent else {
            bail!("not discrete")
        };
        assert_eq!(c.baseline_hidden, Some(100));
        assert_eq!(
            LatentConfig::parse("categorical:30x10")?.describe(),
            "categorical:30x10"
        );
        for bad in [
            "bernoulli:",
            "bernoulli:0",
            "categorical:30",
            "categorical:3x1",
            "poisson:3",
        ] {
            assert!(LatentConfig::parse(bad).is_err(), "{bad}");
        }
        sbn.set_k(7)?;
        assert_eq!(
            sbn.objective.objective.num_samples(),
            7,
            "--k keeps the estimator"
        );
        // A config.json from before `ema_warmup` keeps the plain decay; presets warm it up.
        let mut legacy = serde_json::to_value(RunConfig::preset("iaf-resnet")?)?;
        assert_eq!(legacy["ema_warmup"], true);
        legacy.as_object_mut().map(|o| o.remove("ema_warmup"));
        assert!(!serde_json::from_value::<RunConfig>(legacy)?.ema_warmup);
        // An existing run trained with IWAE on top of warm-up and free bits still loads; a
        // new one is refused (its objective would ignore them).
        let mut iwae = RunConfig::preset("iaf-resnet")?;
        iwae.set_k(5)?;
        iwae.validate()?;
        let err = iwae.validate_new_run().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("objective.warmup")));
        // Grouped free bits need a flow that keeps the dimensions apart.
        let mut planar = RunConfig::preset("iaf-resnet")?;
        planar.flow = FlowConfig::Planar { steps: 2 };
        planar.validate()?;
        let err = planar.validate_new_run().err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("objective.free_bits.groups = 64")));
        let mut c = RunConfig::preset("iwae-dense")?;
        c.set_k(50)?;
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

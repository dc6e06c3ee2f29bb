//! A training run's configuration: the model, the objective, the optimizer, the data.

use crate::error::{bail, check_count, check_half_open, check_open};
use crate::{ConfigError, FlowConfig, LatentConfig, VaeConfig, estimator_objective};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use vaekit_datasets::Binarization;
use vaekit_objectives::{IwaeGradient, Objective, ObjectiveConfig};
use vaekit_train::{LrSchedule, OptimizerConfig, TrainConfig};

/// Everything a training run needs (the model, the objective, the optimizer and its
/// schedule, the data settings), as `train-iaf` writes it to a run's `config.json`. Start
/// from [`RunConfig::preset`] and change fields; [`RunConfig::validate`] checks each field's
/// stated range (docs/configuration.md) and the combination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The preset this configuration started from.
    pub preset: String,
    /// The model: networks, flow, latent kind, likelihood (at the top level of the JSON).
    #[serde(flatten)]
    pub model: VaeConfig,
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

impl RunConfig {
    /// The trainer's settings of this run (the rest of [`TrainConfig`] at its defaults, the
    /// inference group at [`crate::ParamGroup::inference_prefixes`]).
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            batch_size: self.batch_size,
            lr: self.lr,
            schedule: self.schedule,
            optimizer: self.optimizer,
            objective: self.objective,
            clip_norm: self.clip_norm,
            ema_decay: self.ema_decay,
            ema_warmup: self.ema_warmup,
            seed: self.seed,
            binarization: self.binarization,
            inference_prefixes: crate::ParamGroup::inference_prefixes(),
            ..TrainConfig::default()
        }
    }

    /// Sets the number of importance samples `k` of the objective: for the ELBO and IWAE,
    /// `1` gives the ELBO and more the IWAE bound; the other estimators keep their kind.
    ///
    /// # Errors
    /// `k = 0`.
    pub fn set_k(&mut self, k: usize) -> Result<(), ConfigError> {
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
    ///
    /// # Errors
    /// Those of [`estimator_objective`].
    pub fn set_estimator(&mut self, name: &str, k: usize) -> Result<(), ConfigError> {
        self.objective.objective = estimator_objective(name, k)?;
        self.fit_baseline();
        Ok(())
    }

    /// Gives a discrete model the learned baseline network that NVIL needs, and removes it
    /// for the other estimators (which would leave its parameters without gradients).
    pub fn fit_baseline(&mut self) {
        if let LatentConfig::Discrete(c) = &mut self.model.latent {
            let learned = matches!(
                self.objective.objective,
                Objective::Reinforce { baseline, .. } if baseline.learned
            );
            c.baseline_hidden = learned.then_some(c.baseline_hidden.unwrap_or(100));
        }
    }

    /// Checks every field's range and the combination before any tensor exists: the
    /// training fields here, the model by [`VaeConfig::validate`], the objective against the
    /// model by [`VaeConfig::check_objective`]. Each error names the field (and its flag),
    /// the value and the rule; the ranges are listed in `docs/configuration.md`.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_ranges()?;
        self.model.validate()?;
        self.model.check_objective(&self.objective)
    }

    /// [`RunConfig::validate`] and, for a run about to start, settings that its objective
    /// would ignore or cannot honour: KL warm-up and free bits apply to the ELBO only, and
    /// free bits in groups need a flow that keeps the dimensions apart. (Existing runs are
    /// not held to this, so that runs made before the rules still resume and evaluate.)
    ///
    /// # Errors
    /// Those of [`RunConfig::validate`]; warm-up or free bits with another bound.
    pub fn validate_new_run(&self) -> Result<(), ConfigError> {
        self.validate()?;
        if let Some(fb) = self.objective.free_bits
            && fb.groups > 1
            && matches!(
                self.model.flow,
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
    fn validate_ranges(&self) -> Result<(), ConfigError> {
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
        }
        Ok(())
    }
}

//! The fit loop: epochs up to a target, a wall-clock budget, data-dependent initialisation,
//! the per-epoch test bound with the weights evaluation uses, checkpoints, and hooks for
//! logging and progress.

use crate::ema::{EmaSummary, Weights};
use crate::trainer::{EpochReport, TrainError, Trainer};
use candle::Device;
use serde::{Deserialize, Serialize};
use std::time::Instant;
use vaekit_core::{Progress, SeededNoise};
use vaekit_datasets::DataSource;
use vaekit_objectives::{ObjectiveConfig, data_dependent_init};

/// What [`Trainer::fit`] does besides the training steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Train until the trainer's epoch count reaches this (a resumed trainer continues).
    pub epochs: u64,
    /// Wall-clock budget of this call, seconds, `> 0`: no epoch is started that would end
    /// past it, judged by the previous epoch's time. `None`: no budget.
    pub time_budget_seconds: Option<f64>,
    /// The test bound after every epoch: the objective, the batch size (`>= 1`) and the
    /// seed of its own noise stream (the training stream is not touched).
    pub test: Option<TestEvaluation>,
    /// Run the data-dependent initialisation ([`Trainer::data_init`]) before the first step
    /// of a trainer that has taken none. `false` for a store whose values are already
    /// final (loaded, or initialised by the caller): weight norm's gains and biases would
    /// be overwritten.
    pub data_init: bool,
}

/// The per-epoch test evaluation of [`FitConfig::test`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestEvaluation {
    /// The bound to evaluate (the single-sample ELBO with analytic KL is customary).
    pub objective: ObjectiveConfig,
    /// Rows per evaluation batch, at least 1.
    pub batch_size: usize,
    /// Seed of the evaluation's noise stream, the same every epoch.
    pub seed: u64,
}

impl TestEvaluation {
    /// The single-sample ELBO with analytic KL, in batches of 500, with noise from `seed`.
    pub fn elbo(seed: u64) -> Self {
        Self {
            objective: ObjectiveConfig::elbo(),
            batch_size: 500,
            seed,
        }
    }
}

/// One epoch as [`FitHooks::epoch_done`] sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// The trainer's report (training bound of the current weights, KL, learning rate,
    /// seconds of the steps, steps skipped).
    pub report: EpochReport,
    /// The weights the test figures use ([`Trainer::evaluation_weights`]).
    pub weights: Weights,
    /// The test bound with `weights` (nats per data point), when a test set was given.
    pub test_bound: Option<f64>,
    /// The test bound of the current weights, when `weights` is the average.
    pub test_bound_current: Option<f64>,
    /// The parameter average after the epoch, when the trainer keeps one.
    pub ema: Option<EmaSummary>,
}

/// How [`Trainer::fit`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitOutcome {
    /// Epochs trained in this call.
    pub epochs_trained: u64,
    /// Whether the time budget stopped training before the target epoch.
    pub stopped_by_budget: bool,
    /// Whether data-dependent initialisation ran (a trainer that has taken no step yet).
    pub data_init: bool,
    /// Wall-clock seconds of the call.
    pub seconds: f64,
}

/// Callbacks of [`Trainer::fit`], every one a no-op by default. They run on a worker of
/// vaekit's pool where the training steps run (see [`Trainer::train_epoch_with_progress`]).
pub trait FitHooks: Send {
    /// Before an epoch (1-based number of the epoch about to run).
    fn epoch_started(&mut self, epoch: u64) {
        let _ = epoch;
    }

    /// Where each epoch's training reports its steps (see
    /// [`Trainer::train_epoch_with_progress`]); `None`, the default, reports nothing.
    fn progress(&mut self) -> Option<&mut dyn Progress> {
        None
    }

    /// After an epoch's test evaluation, before its checkpoint. An error stops the fit.
    ///
    /// # Errors
    /// Whatever the hook's logging fails with.
    fn epoch_done(&mut self, record: &EpochRecord) -> Result<(), TrainError> {
        let _ = record;
        Ok(())
    }

    /// The time budget stops training after `epoch`, `elapsed` seconds into the call.
    fn budget_reached(&mut self, epoch: u64, elapsed: f64) {
        let _ = (epoch, elapsed);
    }
}

/// Hooks that do nothing.
impl FitHooks for () {}

impl Trainer<'_> {
    /// Trains up to `config.epochs` on `train` (each batch transformed by
    /// [`crate::TrainConfig::binarization`]), evaluating `test` (rows as the model sees
    /// them) after every epoch with the weights evaluation uses, and writing a checkpoint
    /// after every epoch when the trainer has a checkpoint directory
    /// ([`Trainer::with_checkpoints`]).
    ///
    /// With [`FitConfig::data_init`], a trainer that has taken no step yet first runs the
    /// data-dependent initialisation (weight norm's gains and biases; nothing for other
    /// layers) on the first `batch_size` rows of `train`, transformed, with noise of its own
    /// (`seed ^ 0x5eed_1d17`), so the training stream is not touched. Resume first
    /// ([`Trainer::resume`]) to continue a run: it is then skipped. The time budget counts
    /// from after it.
    ///
    /// # Errors
    /// Before any step: an empty training set; a `time_budget_seconds` that is not `> 0`; a
    /// test set without [`FitConfig::test`] or a test batch size of 0. Then those of
    /// [`Trainer::train_epoch`] and [`Trainer::evaluate`], and a hook's.
    pub fn fit(
        &mut self,
        train: &dyn DataSource,
        test: Option<&dyn DataSource>,
        config: &FitConfig,
        device: &Device,
        hooks: &mut dyn FitHooks,
    ) -> Result<FitOutcome, TrainError> {
        // On vaekit's pool, where parallel ops join cheaply (in place when already there).
        vaekit_core::on_pool(|| -> Result<FitOutcome, TrainError> {
            if train.is_empty() {
                return Err(TrainError::Config("fit: the training set is empty".into()));
            }
            if let Some(b) = config.time_budget_seconds
                && (b.is_nan() || b <= 0.0)
            {
                return Err(TrainError::Config(format!(
                    "fit: time_budget_seconds = {b}: must be > 0"
                )));
            }
            match (test, &config.test) {
                (Some(_), None) => {
                    return Err(TrainError::Config(
                        "fit: a test set was given without FitConfig::test".into(),
                    ));
                }
                (_, Some(t)) if t.batch_size == 0 => {
                    return Err(TrainError::Config(
                        "fit: test.batch_size = 0: must be at least 1".into(),
                    ));
                }
                _ => {}
            }
            let data_init = config.data_init && self.state().step == 0;
            if data_init {
                self.data_init(train, device).map_err(|e| {
                    TrainError::Config(format!("data-dependent initialisation failed: {e}"))
                })?;
            }
            let start = Instant::now();
            let first_epoch = self.state().epoch;
            let mut stopped_by_budget = false;
            let mut last_epoch_seconds = 0.0;
            while self.state().epoch < config.epochs {
                if let Some(budget) = config.time_budget_seconds {
                    let elapsed = start.elapsed().as_secs_f64();
                    if elapsed + last_epoch_seconds > budget {
                        hooks.budget_reached(self.state().epoch, elapsed);
                        stopped_by_budget = true;
                        break;
                    }
                }
                let epoch_start = Instant::now();
                hooks.epoch_started(self.state().epoch + 1);
                let report = match hooks.progress() {
                    Some(progress) => self.train_epoch_with_progress(train, device, progress)?,
                    None => self.train_epoch(train, device)?,
                };
                let weights = self.evaluation_weights();
                let (test_bound, test_bound_current) = match (test, &config.test) {
                    (Some(data), Some(t)) => {
                        let mut bound = |w| {
                            let mut none = ();
                            let progress = hooks.progress().unwrap_or(&mut none);
                            self.evaluate(data, &t.objective, t.batch_size, t.seed, w, progress)
                        };
                        let current = match weights {
                            Weights::Averaged => Some(bound(Weights::Current)?),
                            Weights::Current => None,
                        };
                        (Some(bound(weights)?), current)
                    }
                    _ => (None, None),
                };
                hooks.epoch_done(&EpochRecord {
                    report,
                    weights,
                    test_bound,
                    test_bound_current,
                    ema: self.ema_summary(),
                })?;
                self.checkpoint(None)?;
                last_epoch_seconds = epoch_start.elapsed().as_secs_f64();
            }
            Ok(FitOutcome {
                epochs_trained: self.state().epoch - first_epoch,
                stopped_by_budget,
                data_init,
                seconds: start.elapsed().as_secs_f64(),
            })
        })
    }

    /// Data-dependent initialisation on the first `batch_size` rows of `train` (see
    /// [`Trainer::fit`]).
    ///
    /// # Errors
    /// An empty training set; tensor errors.
    pub fn data_init(&mut self, train: &dyn DataSource, device: &Device) -> Result<(), TrainError> {
        let n = self.config().batch_size.min(train.len()).max(1);
        let mut noise = SeededNoise::new(self.config().seed ^ 0x5eed_1d17);
        let data_error = |e: vaekit_datasets::DataError| TrainError::Config(e.to_string());
        let x = train
            .gather(&(0..n).collect::<Vec<_>>(), device)
            .map_err(data_error)?;
        let x = self
            .config()
            .binarization
            .apply(&x, &mut noise)
            .map_err(data_error)?;
        data_dependent_init(self.inference(), self.model(), self.store(), &x, &mut noise)?;
        Ok(())
    }
}

//! The training loop.

use crate::checkpoint::{CheckpointDir, CheckpointError, SkippedCheckpoint, TrainerState};
use crate::clip::clip_grad_norm;
use crate::ema::{Ema, EmaSummary, Weights};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::schedule::LrSchedule;
use candle::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use vaekit_core::{Progress, SeededNoise, report_job};
use vaekit_datasets::{Batcher, BatcherConfig, Binarization, DataSource};
use vaekit_nets::{ParamStore, Pass};
use vaekit_objectives::{
    EvalContext, Evaluation, GenerativeModel, InferenceNetwork, IwaeGradient, Loss, Objective,
    ObjectiveConfig, evaluate,
};

/// Checkpoint prefix of the inference network's optimizer state.
const INFERENCE_OPTIMIZER_PREFIX: &str = "opt_inference.";

/// A separate optimizer for the inference network's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InferenceOptimizer {
    /// Its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Its learning rate relative to the model's (same schedule).
    pub lr_scale: f64,
}

/// Variables with their names.
type NamedVars = Vec<(String, Var)>;

/// Why training stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// A tensor operation failed.
    #[error(transparent)]
    Tensor(#[from] candle::Error),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Too many consecutive steps had a non-finite loss or gradient.
    #[error(
        "training stopped: {0} consecutive steps had a non-finite loss or gradient (epoch {1}); the last checkpoint is intact"
    )]
    NonFinite(u32, u64),
    /// Bad data or configuration.
    #[error("{0}")]
    Config(String),
    /// A [`crate::FitHooks`] callback failed (writing a log, say).
    #[error("{0}")]
    Hook(String),
}

/// Everything the loop needs besides the networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Minibatch size.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f64,
    /// Learning-rate schedule over epochs.
    pub schedule: LrSchedule,
    /// Optimizer hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// The objective.
    pub objective: ObjectiveConfig,
    /// Clip gradients to this global norm.
    pub clip_norm: Option<f64>,
    /// Keep an exponential moving average of the parameters with this decay, in `(0, 1)`
    /// ([`Ema`]); [`Trainer::evaluation_weights`] is then the average. `None`: no average.
    pub ema_decay: Option<f64>,
    /// Warm the average's decay up as TensorFlow's `ExponentialMovingAverage` with
    /// `num_updates` does ([`Ema::decay_at`]); without it a short run is evaluated at nearly
    /// its initial parameters. Default `true`.
    #[serde(default = "default_true")]
    pub ema_warmup: bool,
    /// Stop after this many consecutive non-finite steps.
    pub max_consecutive_nonfinite: u32,
    /// Epoch checkpoints to keep.
    pub keep_last: usize,
    /// Seed of the run's noise stream (shuffles, binarization, samples).
    pub seed: u64,
    /// Binarization of training batches.
    pub binarization: Binarization,
    /// Parameter-name prefixes of the inference network (for estimators whose inference
    /// network has its own loss, e.g. DReG); every other parameter belongs to the model.
    pub inference_prefixes: Vec<String>,
    /// Step the inference network with its own optimizer. Objectives with separate losses
    /// (reweighted wake-sleep) get one with the model's settings when this is `None`.
    #[serde(default)]
    pub inference_optimizer: Option<InferenceOptimizer>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            lr: 1e-3,
            schedule: LrSchedule::Constant,
            optimizer: OptimizerConfig::default(),
            objective: ObjectiveConfig::default(),
            clip_norm: None,
            ema_decay: None,
            ema_warmup: true,
            max_consecutive_nonfinite: 20,
            keep_last: 3,
            seed: 0,
            binarization: Binarization::Dynamic,
            inference_prefixes: vec!["encoder.".into(), "flow.".into()],
            inference_optimizer: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// What one epoch did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// The epoch just completed (1-based).
    pub epoch: u64,
    /// Mean minimised loss (for DReG, the generative model's surrogate, not the bound; NaN
    /// when every step was skipped).
    pub loss: f64,
    /// Mean training bound, nats per data point (−loss without warm-up or free bits), of the
    /// current parameters at each step (never the average).
    pub bound: f64,
    /// Mean KL.
    pub kl: f64,
    /// Mean reconstruction term.
    pub reconstruction: f64,
    /// Learning rate at the start of the epoch.
    pub lr: f64,
    /// Steps skipped for non-finite values this epoch.
    pub skipped: u64,
    /// Wall time of the epoch.
    pub seconds: f64,
}

/// Which checkpoint [`Trainer::resume`] continued from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedCheckpointInfo {
    /// Its name (`epoch-000007`).
    pub name: String,
    /// Newer checkpoints that were damaged and passed over, newest first, with the reason.
    pub skipped: Vec<SkippedCheckpoint>,
}

/// Trains an inference network and a generative model whose parameters live in a
/// [`ParamStore`].
pub struct Trainer<'a> {
    config: TrainConfig,
    store: &'a ParamStore,
    inference: &'a dyn InferenceNetwork,
    model: &'a dyn GenerativeModel,
    loss: Loss,
    optimizer: Optimizer,
    /// The inference network's own optimizer and learning-rate scale, when it has one.
    inference_optimizer: Option<(Optimizer, f64)>,
    ema: Option<Ema>,
    noise: SeededNoise,
    state: TrainerState,
    checkpoints: Option<CheckpointDir>,
    /// Consecutive non-finite steps, across epoch boundaries.
    consecutive_nonfinite: u32,
}

impl std::fmt::Debug for Trainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("state", &self.state)
            .finish()
    }
}

impl<'a> Trainer<'a> {
    /// A trainer of `inference` and `model`, whose parameters live in `store`, without
    /// checkpoints ([`Trainer::with_checkpoints`] adds them).
    ///
    /// # Errors
    /// An `ema_decay` outside `(0, 1)`.
    pub fn new(
        config: TrainConfig,
        store: &'a ParamStore,
        inference: &'a dyn InferenceNetwork,
        model: &'a dyn GenerativeModel,
    ) -> Result<Self, TrainError> {
        let ema = config
            .ema_decay
            .map(|d| Ema::with_warmup(d, config.ema_warmup))
            .transpose()
            .map_err(|e| TrainError::Config(format!("ema_decay: {e}")))?;
        let noise = SeededNoise::new(config.seed);
        let state = TrainerState {
            epoch: 0,
            step: 0,
            noise: noise.state(),
            best_validation: None,
            skipped_steps: 0,
            config: serde_json::Value::Null,
            estimator: Default::default(),
        };
        let separate = config
            .inference_optimizer
            .or_else(|| {
                config
                    .objective
                    .objective
                    .separate_losses()
                    .then_some(InferenceOptimizer {
                        optimizer: config.optimizer,
                        lr_scale: 1.0,
                    })
            })
            .map(|o| (Optimizer::new(o.optimizer), o.lr_scale));
        Ok(Self {
            loss: Loss::new(config.objective),
            optimizer: Optimizer::new(config.optimizer),
            inference_optimizer: separate,
            ema,
            checkpoints: None,
            config,
            store,
            inference,
            model,
            noise,
            state,
            consecutive_nonfinite: 0,
        })
    }

    /// Writes a checkpoint to `dir` at every [`Trainer::checkpoint`] (keeping the last
    /// `keep_last` epochs), and lets [`Trainer::resume`] read them.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn with_checkpoints(mut self, dir: &Path) -> Result<Self, TrainError> {
        self.checkpoints = Some(CheckpointDir::new(dir, self.config.keep_last)?);
        Ok(self)
    }

    /// Stores `config` (the run's own description, e.g. `train-iaf`'s `config.json`) in every
    /// later checkpoint.
    pub fn with_run_config(mut self, config: serde_json::Value) -> Self {
        self.set_run_config(config);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The parameters it trains.
    pub fn store(&self) -> &'a ParamStore {
        self.store
    }

    /// The inference network it trains.
    pub fn inference(&self) -> &'a dyn InferenceNetwork {
        self.inference
    }

    /// The generative model it trains.
    pub fn model(&self) -> &'a dyn GenerativeModel {
        self.model
    }

    /// The trainer state (epoch, step, noise position, ...).
    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// The loss object, with the estimator's running state and the summary of the last
    /// epoch's finite evaluations.
    pub fn loss(&self) -> &Loss {
        &self.loss
    }

    /// Replaces the run configuration stored in later checkpoints (after a resume with changed
    /// settings).
    pub fn set_run_config(&mut self, config: serde_json::Value) {
        self.state.config = config;
    }

    /// The parameter average, when the configuration keeps one.
    pub fn ema(&self) -> Option<&Ema> {
        self.ema.as_ref()
    }

    /// The average's decay, warm-up, update count and weight on its first parameters.
    pub fn ema_summary(&self) -> Option<EmaSummary> {
        self.ema.as_ref().map(Ema::summary)
    }

    /// The weights evaluations use unless told otherwise: the average when there is one.
    pub fn evaluation_weights(&self) -> Weights {
        if self.ema.is_some() {
            Weights::Averaged
        } else {
            Weights::Current
        }
    }

    /// Runs `f` with `weights` in the parameters (the average swapped in for
    /// [`Weights::Averaged`]), restoring the current parameters afterwards, also when `f`
    /// fails.
    ///
    /// # Errors
    /// [`TrainError::Config`] for [`Weights::Averaged`] without an average (converted into
    /// `E`); those of `f` and of swapping.
    pub fn with_weights<T, E: From<candle::Error>>(
        &self,
        weights: Weights,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let ema = match (weights, &self.ema) {
            (Weights::Current, _) => None,
            (Weights::Averaged, Some(ema)) => Some(ema),
            (Weights::Averaged, None) => {
                return Err(candle::Error::Msg(
                    "averaged weights asked for, but this run keeps no parameter average (ema_decay is unset)"
                        .into(),
                )
                .into());
            }
        };
        let trainable = self.store.trainable();
        let backup = match ema {
            Some(ema) => Some(ema.swap_in(&trainable)?),
            None => None,
        };
        let result = f();
        if let (Some(ema), Some(b)) = (ema, backup) {
            ema.swap_out(&trainable, &b)?;
        }
        result
    }

    /// Resumes from the latest loadable checkpoint, if there is one: parameters, optimizer
    /// state, EMA, noise position and trainer state. Damaged newer checkpoints are passed
    /// over and named in the result; `None` when there is no checkpoint.
    ///
    /// # Errors
    /// Every checkpoint damaged; one whose parameters do not match the networks.
    pub fn resume(&mut self, device: &Device) -> Result<Option<LoadedCheckpointInfo>, TrainError> {
        let Some(dir) = &self.checkpoints else {
            return Ok(None);
        };
        let loaded = match dir.load_latest(device) {
            Ok(found) => found,
            Err(CheckpointError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        self.restore(&loaded.tensors, loaded.state)?;
        Ok(Some(LoadedCheckpointInfo {
            name: loaded.name,
            skipped: loaded.skipped,
        }))
    }

    fn restore(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        state: TrainerState,
    ) -> Result<(), TrainError> {
        for name in self.store.names() {
            let Some(t) = tensors.get(&format!("param.{name}")) else {
                return Err(TrainError::Config(format!(
                    "checkpoint has no parameter {name}"
                )));
            };
            self.store.set(&name, t)?;
        }
        let opt: HashMap<String, Tensor> = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("opt.").map(|n| (n.to_string(), v.clone())))
            .collect();
        self.optimizer.load_state(&opt, state.step)?;
        let has_inference_state = tensors
            .keys()
            .any(|k| k.starts_with(INFERENCE_OPTIMIZER_PREFIX));
        if state.step > 0 && has_inference_state != self.inference_optimizer.is_some() {
            return Err(TrainError::Config(format!(
                "the checkpoint was written with {} optimizer for the inference network and this run uses {}: resuming would restart Adam's moments with a stale step count",
                if has_inference_state {
                    "a separate"
                } else {
                    "no separate"
                },
                if self.inference_optimizer.is_some() {
                    "one"
                } else {
                    "none"
                }
            )));
        }
        if let Some((inf, _)) = &mut self.inference_optimizer {
            let opt: HashMap<String, Tensor> = tensors
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix(INFERENCE_OPTIMIZER_PREFIX)
                        .map(|n| (n.to_string(), v.clone()))
                })
                .collect();
            inf.load_state(&opt, state.step)?;
        }
        self.loss.set_state(state.estimator);
        if let Some(ema) = &mut self.ema {
            ema.load_state(tensors, state.step)?;
        }
        self.noise = SeededNoise::from_state(state.noise);
        self.state = state;
        Ok(())
    }

    fn tensors(&self) -> candle::Result<HashMap<String, Tensor>> {
        let mut out: HashMap<String, Tensor> = self
            .store
            .sorted_vars()
            .into_iter()
            .map(|(n, v)| (format!("param.{n}"), v.as_tensor().clone()))
            .collect();
        out.extend(
            self.optimizer
                .state_tensors()?
                .into_iter()
                .map(|(k, v)| (format!("opt.{k}"), v)),
        );
        if let Some((inf, _)) = &self.inference_optimizer {
            out.extend(
                inf.state_tensors()?
                    .into_iter()
                    .map(|(k, v)| (format!("{INFERENCE_OPTIMIZER_PREFIX}{k}"), v)),
            );
        }
        if let Some(ema) = &self.ema {
            out.extend(ema.state_tensors()?);
        }
        Ok(out)
    }

    /// Writes the epoch checkpoint (and `best` when `validation` improves on the best so far).
    ///
    /// # Errors
    /// Checkpoint errors.
    pub fn checkpoint(&mut self, validation: Option<f64>) -> Result<(), TrainError> {
        self.state.noise = self.noise.state();
        self.state.estimator = self.loss.state();
        let improved = match (validation, self.state.best_validation) {
            (Some(v), Some(best)) => v > best,
            (Some(_), None) => true,
            _ => false,
        };
        if improved {
            self.state.best_validation = validation;
        }
        if let Some(dir) = &self.checkpoints {
            let tensors = self.tensors()?;
            dir.save_epoch(&tensors, &self.state)?;
            if improved {
                dir.save("best", &tensors, &self.state)?;
            }
        }
        Ok(())
    }

    /// One epoch over `data` (intensities, binarized per batch as configured).
    ///
    /// # Errors
    /// [`TrainError::NonFinite`] after too many consecutive non-finite steps; tensor errors.
    pub fn train_epoch(
        &mut self,
        data: &dyn DataSource,
        device: &Device,
    ) -> Result<EpochReport, TrainError> {
        self.train_epoch_with_progress(data, device, &mut ())
    }

    /// [`Trainer::train_epoch`], reporting to `progress` as a job named `epoch N` (the
    /// 1-based epoch) counted in steps, with the epoch's running mean loss (`loss`) after every
    /// minibatch and its final `loss` and `bound`.
    ///
    /// The epoch runs on a worker of vaekit's thread pool ([`vaekit_core::on_pool`]) while
    /// the calling thread waits, so `progress` runs on that worker: it must not wait for the
    /// calling thread (a lock the caller holds, such as Python's GIL in a binding that calls
    /// back into Python) nor for another vaekit call to finish, which would need a free
    /// worker. Calls from several threads at once share the pool's workers.
    ///
    /// # Errors
    /// Those of [`Trainer::train_epoch`].
    pub fn train_epoch_with_progress(
        &mut self,
        data: &dyn DataSource,
        device: &Device,
        progress: &mut dyn Progress,
    ) -> Result<EpochReport, TrainError> {
        // On vaekit's pool, where parallel ops join cheaply (in place when already there).
        vaekit_core::on_pool(|| -> Result<EpochReport, TrainError> {
            let start = Instant::now();
            let batcher = Batcher::new(
                data.len(),
                BatcherConfig {
                    batch_size: self.config.batch_size,
                    shuffle: true,
                    drop_last: false,
                },
            )
            .map_err(|e| TrainError::Config(e.to_string()))?;
            let batches = batcher
                .epoch(&mut self.noise)
                .map_err(|e| TrainError::Config(e.to_string()))?;
            let lr = self
                .config
                .schedule
                .lr(self.config.lr, self.state.epoch as f64);
            let trainable = self.store.trainable();
            let (inference_vars, model_vars): (NamedVars, NamedVars) =
                trainable.iter().cloned().partition(|(n, _)| {
                    self.config
                        .inference_prefixes
                        .iter()
                        .any(|p| n.starts_with(p.as_str()))
                });
            let dreg = matches!(
                self.config.objective.objective,
                Objective::Iwae {
                    gradient: IwaeGradient::Dreg,
                    ..
                }
            );
            if (self.config.objective.objective.separate_losses() || dreg)
                && inference_vars.is_empty()
            {
                return Err(TrainError::Config(format!(
                    "{:?} trains the inference network with its own loss, but no parameter matches the inference prefixes {:?}{}",
                    self.config.objective.objective,
                    self.config.inference_prefixes,
                    if dreg {
                        " (every parameter would get the plain IWAE gradient)"
                    } else {
                        ""
                    }
                )));
            }
            let model_v: Vec<Var> = model_vars.iter().map(|(_, v)| v.clone()).collect();
            let inference_v: Vec<Var> = inference_vars.iter().map(|(_, v)| v.clone()).collect();
            let ordered: Vec<(String, Var)> =
                model_vars.iter().chain(&inference_vars).cloned().collect();
            let mut skipped = 0u64;
            // The loss summarises this epoch's evaluations only; a skipped step's is undone,
            // so the summary is the epoch's report.
            self.loss.take_summary();
            // Batch-norm running statistics are updated inside the forward pass: snapshot them so
            // that a skipped (non-finite) step cannot leave NaN in them.
            let state_vars: NamedVars = self
                .store
                .sorted_vars()
                .into_iter()
                .filter(|(n, _)| !vaekit_nets::is_trainable(n))
                .collect();
            let nb = batches.len().max(1) as f64;
            // The pool's workers stay awake through the epoch's steps (`vaekit_core::keep_awake`):
            // a step forks a few dozen times with serial work in between, and waking parked
            // workers each time cost the dense VAE step about a quarter of its time.
            let job = format!("epoch {}", self.state.epoch + 1);
            let steps = batches.len() as u64;
            let summary = report_job(
                progress,
                &job,
                steps,
                "steps",
                |progress| {
                    vaekit_core::keep_awake(
                        || -> Result<vaekit_objectives::LossSummary, TrainError> {
                            for (i, indices) in batches.iter().enumerate() {
                                let x = data
                                    .gather(indices, device)
                                    .map_err(|e| TrainError::Config(e.to_string()))?;
                                let x = self
                                    .config
                                    .binarization
                                    .apply(&x, &mut self.noise)
                                    .map_err(|e| TrainError::Config(e.to_string()))?;
                                let epoch_frac = self.state.epoch as f64 + i as f64 / nb;
                                let snapshot: Vec<Tensor> = state_vars
                                    .iter()
                                    .map(|(_, v)| v.as_tensor().copy())
                                    .collect::<candle::Result<_>>()?;
                                let (estimator_snapshot, summary_snapshot) =
                                    (self.loss.state(), self.loss.summary());
                                let eval = self.loss.compute(
                                    EvalContext::new(
                                        self.inference,
                                        self.model,
                                        &x,
                                        &mut self.noise,
                                    )
                                    .with_pass(Pass::Train)
                                    .at_epoch(epoch_frac),
                                )?;
                                let step = match eval.is_finite() {
                                    true => {
                                        let mut grads = eval.gradients(&model_v, &inference_v)?;
                                        let norm = match self.config.clip_norm {
                                            Some(max) => clip_grad_norm(&mut grads, max)?,
                                            None => crate::clip::global_norm(&grads)?,
                                        };
                                        norm.is_finite().then_some(grads)
                                    }
                                    false => None,
                                };
                                match step {
                                    Some(grads) => {
                                        self.consecutive_nonfinite = 0;
                                        match &mut self.inference_optimizer {
                                            Some((inf, scale)) => {
                                                let (model_grads, inf_grads) =
                                                    grads.split_at(model_vars.len());
                                                self.optimizer.step(
                                                    &model_vars,
                                                    model_grads,
                                                    lr,
                                                )?;
                                                inf.step(&inference_vars, inf_grads, lr * *scale)?;
                                            }
                                            None => self.optimizer.step(&ordered, &grads, lr)?,
                                        }
                                        if let Some(ema) = &mut self.ema {
                                            ema.update(&trainable)?;
                                        }
                                        self.state.step += 1;
                                    }
                                    None => {
                                        for ((_, var), saved) in state_vars.iter().zip(&snapshot) {
                                            var.set(saved)?;
                                        }
                                        self.loss.set_state(estimator_snapshot);
                                        self.loss.set_summary(summary_snapshot);
                                        skipped += 1;
                                        self.consecutive_nonfinite += 1;
                                        self.state.skipped_steps += 1;
                                        if self.consecutive_nonfinite
                                            >= self.config.max_consecutive_nonfinite
                                        {
                                            return Err(TrainError::NonFinite(
                                                self.consecutive_nonfinite,
                                                self.state.epoch,
                                            ));
                                        }
                                    }
                                }
                                progress
                                    .update(i as u64 + 1, &[("loss", self.loss.summary().loss())]);
                            }
                            Ok(self.loss.summary())
                        },
                    )
                },
                |s| vec![("loss", s.loss()), ("bound", s.bound())],
            )?;
            self.state.epoch += 1;
            self.state.noise = self.noise.state();
            self.state.estimator = self.loss.state();
            // An epoch in which every step was skipped has no mean: NaN, not 0.
            Ok(EpochReport {
                epoch: self.state.epoch,
                loss: summary.loss(),
                bound: summary.bound(),
                kl: summary.kl(),
                reconstruction: summary.reconstruction(),
                lr,
                skipped,
                seconds: start.elapsed().as_secs_f64(),
            })
        })
    }

    /// The mean bound of `objective` over `data` (rows as the model sees them, `[N, P]`: no
    /// per-batch transform is applied, so binarize a test set once, e.g. with
    /// `vaekit_datasets::binarize_fixed`, as the IWAE protocol does), in evaluation mode with
    /// `weights` ([`Trainer::evaluation_weights`] for the run's default); draws
    /// from a separate stream seeded by `seed`, so evaluation does not disturb training's
    /// noise. Reports to `progress` as a job named `test bound (<weights> weights)` over the
    /// data points, with the running mean bound (`bound`).
    ///
    /// # Errors
    /// A `batch_size` of 0; [`Weights::Averaged`] without an average; tensor errors.
    pub fn evaluate(
        &self,
        data: &dyn DataSource,
        objective: &ObjectiveConfig,
        batch_size: usize,
        seed: u64,
        weights: Weights,
        progress: &mut dyn Progress,
    ) -> Result<f64, TrainError> {
        // On vaekit's pool, where parallel ops join cheaply (in place when already there).
        vaekit_core::on_pool(|| -> Result<f64, TrainError> {
            if batch_size == 0 {
                return Err(TrainError::Config(
                    "evaluate: batch_size must be at least 1".into(),
                ));
            }
            let mut noise = SeededNoise::new(seed);
            let n = data.len();
            // The parameters' device (CPU for a model without parameters).
            let device = self
                .store
                .trainable()
                .first()
                .map_or(Device::Cpu, |(_, v)| v.device().clone());
            let job = format!("test bound ({weights} weights)");
            report_job(
                progress,
                &job,
                n as u64,
                "points",
                |progress| {
                    self.with_weights(weights, || -> Result<f64, TrainError> {
                        let mut total = 0.0;
                        let mut start = 0;
                        while start < n {
                            let b = batch_size.min(n - start);
                            let x = data
                                .rows(start, b, &device)
                                .map_err(|e| TrainError::Config(e.to_string()))?;
                            let e = evaluate(
                                objective,
                                EvalContext::new(self.inference, self.model, &x, &mut noise)
                                    .at_epoch(self.state.epoch as f64),
                            )
                            .and_then(Evaluation::checked)?;
                            total += e.bound * b as f64;
                            start += b;
                            progress.update(start as u64, &[("bound", total / start as f64)]);
                        }
                        Ok(total / n.max(1) as f64)
                    })
                },
                |b| vec![("bound", *b)],
            )
        })
    }
}

//! A run directory and what happens in it: train, resume, eval, sample.

use crate::curves::write_curves;
use crate::images::write_grid;
use crate::metrics::{EpochMetrics, append_metrics, drop_metrics_after, read_metrics};
use crate::tensorboard::{open_tensorboard, write_epoch, write_final, write_pictures};
use anyhow::{Context, Result, bail};
use candle::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use vaekit_core::{Progress, SeededNoise};
use vaekit_datasets::{ImageSet, Mnist, binarize_fixed, resolve_mnist_dir};
use vaekit_eval::{ImportanceConfig, NllReport, importance_sampled_log_likelihood};
use vaekit_models::{Model, RunConfig};
use vaekit_monitor::{EventWriter, ProgressBar};
use vaekit_nets::Pass;
use vaekit_objectives::{GenerativeModel, InferenceNetwork};
use vaekit_train::{
    EmaSummary, EpochRecord, FitConfig, FitHooks, LoadedCheckpointInfo, TestEvaluation, TrainError,
    Trainer, Weights, write_atomic,
};

/// `results.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub preset: String,
    pub epochs: u64,
    /// Which weights every figure below used (`averaged` or `current`), except
    /// `test_neg_elbo_current`.
    pub weights: Weights,
    /// The parameter average at the end of training; `null` when the run keeps none.
    pub ema: Option<EmaSummary>,
    pub test_neg_elbo: f64,
    /// The last epoch's test −ELBO of the current weights, when the figures are the
    /// average's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_neg_elbo_current: Option<f64>,
    pub is_samples: usize,
    pub is_nll: f64,
    pub is_std_error: f64,
    pub is_mean_ess: f64,
    pub test_points: usize,
    pub test_binarization_seed: u64,
    pub train_seconds: f64,
    pub eval_seconds: f64,
}

/// The data of a run: training intensities and the fixed binarized test set.
pub(crate) struct Data {
    pub train: ImageSet,
    pub test_x: Tensor,
}

fn load_data(cfg: &RunConfig, device: &Device) -> Result<Data> {
    let found = resolve_mnist_dir(cfg.data_dir.as_deref()).context("cannot find MNIST")?;
    let mnist = Mnist::load_dir(&found.dir)
        .with_context(|| format!("cannot load MNIST from {}", found.dir.display()))?;
    let limit = |set: &ImageSet, n: Option<usize>| -> Result<ImageSet> {
        match n {
            Some(n) if n < set.len() => Ok(set.subset(&(0..n).collect::<Vec<_>>())?),
            _ => Ok(set.clone()),
        }
    };
    let train = limit(&mnist.train, cfg.limit_train)?;
    let test = limit(&mnist.test, cfg.limit_test)?;
    let test_x = binarize_fixed(&test.images_f32(device)?, cfg.test_binarization_seed)?;
    Ok(Data { train, test_x })
}

/// Starts a new run in `out` (which must not hold one already); with `tensorboard`, event
/// files go to `out/tb/`.
pub fn train(cfg: RunConfig, out: &Path, tensorboard: bool, device: &Device) -> Result<()> {
    if out.join("config.json").exists() {
        bail!(
            "{} already holds a run; use `train-iaf resume --run {}`",
            out.display(),
            out.display()
        );
    }
    let checkpoints = out.join("checkpoints");
    if let Ok(entries) = std::fs::read_dir(&checkpoints)
        && let Some(found) = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with(".json") || n.ends_with(".safetensors"))
    {
        bail!(
            "{} holds checkpoints ({found}, ...) but no config.json: a new run would silently continue or overwrite them; move them away, or restore the run's config.json and use `train-iaf resume --run {}`",
            checkpoints.display(),
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomic(&out.join("config.json"), &serde_json::to_vec_pretty(&cfg)?)?;
    run(cfg, out, false, tensorboard, device)
}

/// Continues the run in `dir`, optionally to a new number of epochs and with a new time
/// budget (which, like a stored one, counts from the start of this invocation). TensorBoard
/// events are written when the run has a `tb/` directory.
pub fn resume(
    dir: &Path,
    epochs: Option<u64>,
    time_budget: Option<f64>,
    device: &Device,
) -> Result<()> {
    let mut cfg = read_config(dir)?;
    if epochs.is_some() || time_budget.is_some() {
        if let Some(e) = epochs {
            cfg.epochs = e;
        }
        if let Some(m) = time_budget {
            cfg.time_budget_minutes = Some(m);
        }
        cfg.validate()?;
        write_atomic(&dir.join("config.json"), &serde_json::to_vec_pretty(&cfg)?)?;
    }
    let tensorboard = dir.join("tb").is_dir();
    run(cfg, dir, true, tensorboard, device)
}

fn read_config(dir: &Path) -> Result<RunConfig> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{} is not a run directory (no config.json)", dir.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid configuration", path.display()))
}

fn run(
    cfg: RunConfig,
    out: &Path,
    resuming: bool,
    tensorboard: bool,
    device: &Device,
) -> Result<()> {
    let data = load_data(&cfg, device)?;
    let model = cfg.build(device)?;
    let (store, q, p) = (&model.store, model.q.as_ref(), model.p.as_ref());
    let mut trainer = Trainer::new(cfg.train_config(), store, q, p)?
        .with_checkpoints(&out.join("checkpoints"))?;
    // A fresh run never picks up checkpoints (`train` refuses a directory that holds some).
    let resumed = if resuming {
        let found = trainer.resume(device)?;
        match &found {
            Some(info) => report_skipped(info),
            None => println!(
                "{} holds no complete checkpoint yet: starting from epoch 0",
                out.join("checkpoints").display()
            ),
        }
        // Lines of epochs after the checkpoint (logged before a crash, or by checkpoints that
        // were passed over as damaged) are re-run: drop them, so that the log is the run's.
        drop_metrics_after(out, trainer.state().epoch)?;
        found.is_some()
    } else {
        false
    };
    // After the resume, whose checkpoint carries the configuration it was written with.
    trainer.set_run_config(serde_json::to_value(&cfg)?);
    println!(
        "{} run in {}: {} training and {} test images, epochs {} -> {}",
        cfg.preset,
        out.display(),
        data.train.len(),
        data.test_x.dim(0)?,
        trainer.state().epoch,
        cfg.epochs
    );
    let fit = FitConfig {
        epochs: cfg.epochs,
        time_budget_seconds: cfg.time_budget_minutes.map(|m| m * 60.0),
        test: Some(TestEvaluation::elbo(vaekit_core::derive_seed(
            cfg.test_binarization_seed,
            2,
        ))),
        data_init: true,
    };
    let mut hooks = RunLog {
        out,
        total: cfg.epochs,
        budget_minutes: cfg.time_budget_minutes,
        bar: ProgressBar::from_env().map_err(anyhow::Error::msg)?,
        // The event log is best effort: a failure to write it warns and stops it, never the
        // training or its checkpoints.
        tb: if tensorboard {
            open_tensorboard(out, resumed.then_some(trainer.state().epoch as i64 + 1))
        } else {
            None
        },
    };
    // A resumed run continues from its checkpoint; a fresh one starts with the
    // data-dependent initialisation (`Trainer::fit` runs it before the first step).
    let outcome = trainer
        .fit(&data.train, Some(&data.test_x), &fit, device, &mut hooks)
        .context(if resumed {
            "resumed training failed"
        } else {
            "training failed"
        })?;
    let train_seconds = outcome.seconds;
    let RunLog { mut bar, tb, .. } = hooks;

    let weights = trainer.evaluation_weights();
    trainer.with_weights(weights, || pictures(&cfg, out, q, p, &data.test_x))?;
    // The curves now, so that a run stopped during importance sampling has them; again
    // below with the final NLL.
    let title = run_title(&cfg, out, trainer.state().epoch);
    write_curves(out, &title, false)?;
    let metrics = read_metrics(out)?;
    // The last epoch's figures, when that epoch was evaluated with the weights used now (a
    // line written before the weights were recorded counts only for a run without an
    // average).
    let last = metrics.last().filter(|m| {
        m.epoch == trainer.state().epoch
            && (m.weights == Some(weights) || (m.weights.is_none() && weights == Weights::Current))
    });
    let test_neg_elbo = last.map_or(f64::NAN, |m| m.test_neg_elbo);
    let (report, eval_seconds) = trainer.with_weights(weights, || {
        importance_nll(q, p, &data.test_x, cfg.is_samples, &mut bar)
    })?;
    let results = Results {
        preset: cfg.preset.clone(),
        epochs: trainer.state().epoch,
        weights,
        ema: trainer.ema_summary(),
        test_neg_elbo,
        test_neg_elbo_current: last.and_then(|m| m.test_neg_elbo_current),
        is_samples: cfg.is_samples,
        is_nll: report.mean_nll,
        is_std_error: report.std_error,
        is_mean_ess: report.mean_ess,
        test_points: report.log_likelihoods.len(),
        test_binarization_seed: cfg.test_binarization_seed,
        train_seconds,
        eval_seconds,
    };
    write_atomic(
        &out.join("results.json"),
        &serde_json::to_vec_pretty(&results)?,
    )?;
    write_curves(out, &title, true)?;
    if let Some(mut tb) = tb {
        let k = results.is_samples;
        let finals = [
            (format!("test/is{k}_nll"), results.is_nll),
            (format!("test/is{k}_std_error"), results.is_std_error),
        ];
        let step = results.epochs as i64;
        if let Err(e) =
            write_final(&mut tb, step, &finals).and_then(|()| write_pictures(&mut tb, out, step))
        {
            eprintln!("warning: the TensorBoard log lacks the final figures: {e:#}");
        }
    }
    println!(
        "done ({} weights): test -ELBO {:.3}, IS-{} NLL {:.3} ± {:.3} (mean ESS {:.1}); results in {}",
        weights,
        results.test_neg_elbo,
        results.is_samples,
        results.is_nll,
        results.is_std_error,
        results.is_mean_ess,
        out.join("results.json").display()
    );
    Ok(())
}

/// The title of a run's pictures: preset, directory and epochs.
pub(crate) fn run_title(cfg: &RunConfig, dir: &Path, epochs: u64) -> String {
    format!("{} · {} · {epochs} epochs", cfg.preset, dir.display())
}

/// The run directory's side of [`Trainer::fit`]: the progress bar, a `metrics.jsonl` line,
/// TensorBoard scalars and a printed line per epoch, and the budget's message.
struct RunLog<'o> {
    out: &'o Path,
    total: u64,
    budget_minutes: Option<f64>,
    bar: ProgressBar,
    tb: Option<EventWriter>,
}

impl FitHooks for RunLog<'_> {
    fn progress(&mut self) -> Option<&mut dyn Progress> {
        Some(&mut self.bar)
    }

    fn epoch_done(&mut self, r: &EpochRecord) -> std::result::Result<(), TrainError> {
        let report = &r.report;
        let m = EpochMetrics {
            epoch: report.epoch,
            train_neg_elbo: -report.bound,
            test_neg_elbo: r.test_bound.map_or(f64::NAN, |b| -b),
            weights: Some(r.weights),
            test_neg_elbo_current: r.test_bound_current.map(|b| -b),
            ema: r.ema,
            kl: report.kl,
            reconstruction: report.reconstruction,
            lr: report.lr,
            seconds: report.seconds,
            skipped_steps: report.skipped,
        };
        append_metrics(self.out, &m).map_err(|e| TrainError::Hook(format!("{e:#}")))?;
        if let Some(tb) = &mut self.tb
            && let Err(e) = write_epoch(tb, &m)
        {
            eprintln!(
                "warning: the TensorBoard log stops at epoch {}: {e:#}",
                m.epoch
            );
            self.tb = None;
        }
        println!(
            "epoch {:>5}/{}  train -ELBO {:8.3}  test -ELBO {}  KL {:7.3}  lr {:.2e}  {:.1} s{}",
            m.epoch,
            self.total,
            m.train_neg_elbo,
            test_figures(&m),
            m.kl,
            m.lr,
            m.seconds,
            if m.skipped_steps > 0 {
                format!("  ({} steps skipped: non-finite)", m.skipped_steps)
            } else {
                String::new()
            }
        );
        Ok(())
    }

    fn budget_reached(&mut self, epoch: u64, elapsed: f64) {
        println!(
            "time budget of {:.2} min: stopping after epoch {epoch} ({:.2} min trained; the next epoch would end past it)",
            self.budget_minutes.unwrap_or(f64::NAN),
            elapsed / 60.0
        );
    }
}

/// The per-epoch line's test figures: `123.456` with the current weights; with an average,
/// `123.456 (averaged; current 120.000)`.
fn test_figures(m: &EpochMetrics) -> String {
    match (m.weights, m.test_neg_elbo_current) {
        (Some(Weights::Averaged), Some(current)) => {
            format!("{:8.3} (averaged; current {current:.3})", m.test_neg_elbo)
        }
        _ => format!("{:8.3}", m.test_neg_elbo),
    }
}

pub(crate) fn importance_nll(
    q: &dyn InferenceNetwork,
    p: &dyn GenerativeModel,
    test_x: &Tensor,
    k: usize,
    progress: &mut dyn Progress,
) -> Result<(NllReport, f64)> {
    let start = Instant::now();
    let cfg = ImportanceConfig {
        num_samples: k,
        chunk: 500.min(k),
        batch_size: 20,
    };
    let report = importance_sampled_log_likelihood(
        q,
        p,
        test_x,
        &cfg,
        &mut SeededNoise::new(0xe7a1),
        progress,
    )?;
    Ok((report, start.elapsed().as_secs_f64()))
}

/// `samples.png` (64 draws from the prior) and `reconstructions.png` (16 test images above
/// their reconstructions).
fn pictures(
    cfg: &RunConfig,
    out: &Path,
    q: &dyn InferenceNetwork,
    p: &dyn GenerativeModel,
    test_x: &Tensor,
) -> Result<()> {
    let side = 28;
    let mut noise = SeededNoise::new(cfg.seed ^ 0x9a11e7);
    let z = p.prior(Pass::Eval)?.sample(&[64], &mut noise)?;
    let means = mean_images(p, &z)?;
    write_grid(&out.join("samples.png"), &means, side, 8)?;
    let n = 16.min(test_x.dim(0)?);
    let x = test_x.narrow(0, 0, n)?;
    let sample = q.sample(&x, 1, &mut noise, Pass::Eval)?;
    let z = sample.z.squeeze(1)?;
    let recon = mean_images(p, &z)?;
    let originals: Vec<Vec<f32>> = x.to_dtype(DType::F32)?.to_vec2::<f32>()?;
    let mut grid = originals;
    grid.extend(recon);
    write_grid(&out.join("reconstructions.png"), &grid, side, n)?;
    Ok(())
}

/// The mean of `p(x|z)` for each row of `z`, as `[0, 1]` images (Bernoulli probabilities;
/// a draw for likelihoods without a closed-form mean).
fn mean_images(p: &dyn GenerativeModel, z: &Tensor) -> Result<Vec<Vec<f32>>> {
    use vaekit_distributions::{Bernoulli, Distribution, Independent, Moments};
    let px = p.forward(z, Pass::Eval)?;
    let dist: &dyn Distribution = px.as_ref();
    let any: &dyn std::any::Any = dist;
    let images = match any.downcast_ref::<Independent<Bernoulli>>() {
        Some(b) => b.mean()?,
        None => px.sample(&[], &mut SeededNoise::new(0))?,
    };
    Ok(images.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

/// Pictures from the run's latest checkpoint.
pub fn sample(dir: &Path, device: &Device) -> Result<PathBuf> {
    let (cfg, data, built) = open_run(dir, false, device)?;
    let Model { store, q, p } = &built;
    let (q, p) = (q.as_ref(), p.as_ref());
    let trainer = restore(&cfg, dir, store, q, p, "sample from", device)?;
    trainer.with_weights(trainer.evaluation_weights(), || {
        pictures(&cfg, dir, q, p, &data.test_x)
    })?;
    Ok(dir.join("samples.png"))
}

/// A run directory's configuration, data and (freshly initialised) networks; with
/// `whole_test_set` the run's own `limit_test` is ignored (evaluation takes every test image
/// unless told otherwise).
pub(crate) fn open_run(
    dir: &Path,
    whole_test_set: bool,
    device: &Device,
) -> Result<(RunConfig, Data, Model)> {
    let cfg = read_config(dir)?;
    let data = if whole_test_set {
        load_data(
            &RunConfig {
                limit_test: None,
                ..cfg.clone()
            },
            device,
        )?
    } else {
        load_data(&cfg, device)?
    };
    let built = cfg.build(device)?;
    Ok((cfg, data, built))
}

/// A trainer over the networks with the run's latest checkpoint loaded into them.
pub(crate) fn restore<'a>(
    cfg: &RunConfig,
    dir: &Path,
    store: &'a vaekit_nets::ParamStore,
    q: &'a dyn InferenceNetwork,
    p: &'a dyn GenerativeModel,
    what: &str,
    device: &Device,
) -> Result<Trainer<'a>> {
    let mut trainer = Trainer::new(cfg.train_config(), store, q, p)?
        .with_checkpoints(&dir.join("checkpoints"))?;
    match trainer.resume(device)? {
        Some(info) => report_skipped(&info),
        None => bail!(
            "{} has no checkpoint to {what}",
            dir.join("checkpoints").display()
        ),
    }
    Ok(trainer)
}

/// Warns about damaged checkpoints that a resume passed over.
fn report_skipped(info: &LoadedCheckpointInfo) {
    for s in &info.skipped {
        eprintln!("warning: skipped the damaged checkpoint {s}");
    }
    if !info.skipped.is_empty() {
        eprintln!("warning: continuing from {}", info.name);
    }
}

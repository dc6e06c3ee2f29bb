//! `train-iaf eval`: importance sampling, HAIS and BDMC on a run's latest checkpoint.

use crate::curves::write_curves;
use crate::run::{importance_nll, open_run, restore, run_title};
use crate::tensorboard::write_eval;
use anyhow::{Context, Result, bail};
use candle::Device;
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Instant;
use vaekit_core::SeededNoise;
use vaekit_eval::{
    AisConfig, AisStart, AnnealingSchedule, HmcConfig, StepSizeTuning, ais_log_likelihood, bdmc,
};
use vaekit_models::{LatentConfig, Model, frozen};
use vaekit_monitor::ProgressBar;
use vaekit_train::{Weights, write_atomic};

/// Options of `train-iaf eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run directory.
    #[arg(long)]
    pub run: PathBuf,
    /// Importance samples per test image (0 skips importance sampling).
    #[arg(long, default_value_t = 5000)]
    pub is_samples: usize,
    /// Evaluate only the first N test images (all methods use the same images); 0 skips
    /// the test set (for BDMC alone). Without it every test image is evaluated, whatever
    /// `--limit-test` the run was trained with.
    #[arg(long)]
    pub limit_test: Option<usize>,
    /// Annealing steps of Hamiltonian AIS (0 skips HAIS).
    #[arg(long, default_value_t = 0)]
    pub hais_steps: usize,
    /// Leapfrog steps per HMC transition.
    #[arg(long, default_value_t = 10)]
    pub hais_leapfrog: usize,
    /// AIS chains per test image.
    #[arg(long, default_value_t = 16)]
    pub hais_chains: usize,
    /// Where the chains start: prior (`N(0, I)`: the prior of a standard-normal model, not a
    /// learned or hierarchical one, which the annealing path reaches anyway), encoder or
    /// posterior (the full flow or hierarchical posterior).
    #[arg(long, default_value = "posterior")]
    pub hais_start: AisStart,
    /// Initial HMC step size (> 0), adapted per test image towards 65 % acceptance by the
    /// pilot run (or online, with `--hais-tuning online`).
    #[arg(long, default_value_t = 0.1)]
    pub hais_step_size: f64,
    /// How each test image's HMC step sizes are set: `pilot` (a pilot run with its own
    /// noise tunes them, then they are frozen per stretch of the schedule, so HAIS and BDMC
    /// keep their guarantees) or `online` (adapted inside the estimating run: a heuristic
    /// whose estimate is not unbiased).
    #[arg(long, default_value = "pilot", value_name = "HOW")]
    pub hais_tuning: String,
    /// Chains per test image of the step-size pilot run (>= 1).
    #[arg(long, default_value_t = 4)]
    pub hais_pilot_chains: usize,
    /// Stretches of the annealing schedule with their own frozen step size (>= 1).
    #[arg(long, default_value_t = 20)]
    pub hais_stretches: usize,
    /// Test images annealed together.
    #[arg(long, default_value_t = 100)]
    pub hais_batch: usize,
    /// Simulated points for bidirectional Monte Carlo (0 skips BDMC); uses the HAIS settings
    /// (a `posterior` start is replaced by `encoder`, whose map can be inverted, or by `prior`
    /// for a stochastic hierarchy). HAIS on the test images runs too unless `--limit-test 0`.
    #[arg(long, default_value_t = 0)]
    pub bdmc: usize,
    /// Which weights to evaluate: averaged (the run's parameter average, the default when
    /// it keeps one) or current (the parameters as the optimizer left them, the default
    /// otherwise).
    #[arg(long, value_name = "WHICH")]
    pub weights: Option<Weights>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl EvalArgs {
    fn tuning(&self) -> Result<StepSizeTuning> {
        let tuning = match self.hais_tuning.as_str() {
            "pilot" => StepSizeTuning::Pilot {
                chains: self.hais_pilot_chains,
                stretches: self.hais_stretches,
            },
            "online" => StepSizeTuning::Online,
            other => bail!("--hais-tuning {other:?}: choose pilot or online"),
        };
        if self.hais_steps > 0 || self.bdmc > 0 {
            for (flag, value) in [
                ("--hais-leapfrog", self.hais_leapfrog),
                ("--hais-chains", self.hais_chains),
                ("--hais-batch", self.hais_batch),
            ] {
                if value == 0 {
                    bail!("{flag} 0: must be at least 1");
                }
            }
            if !(self.hais_step_size > 0.0 && self.hais_step_size.is_finite()) {
                bail!(
                    "--hais-step-size {}: must be positive and finite",
                    self.hais_step_size
                );
            }
        }
        if (self.hais_steps > 0 || self.bdmc > 0) && matches!(tuning, StepSizeTuning::Pilot { .. })
        {
            if self.hais_pilot_chains == 0 {
                bail!("--hais-pilot-chains 0: must be at least 1");
            }
            if self.hais_stretches == 0 {
                bail!("--hais-stretches 0: must be at least 1");
            }
        }
        Ok(tuning)
    }

    fn ais_config(&self, start: AisStart, tuning: StepSizeTuning) -> AisConfig {
        AisConfig {
            num_steps: self.hais_steps.max(1),
            schedule: AnnealingSchedule::default(),
            chains: self.hais_chains,
            batch_size: self.hais_batch,
            hmc: HmcConfig {
                leapfrog_steps: self.hais_leapfrog,
                initial_step_size: self.hais_step_size,
                ..HmcConfig::default()
            },
            start,
            tuning,
        }
    }
}

/// Runs the requested evaluations; writes `eval-<what>.json` in the run and merges the
/// figures into `results.json` when the run has one.
pub fn eval(args: &EvalArgs, device: &Device) -> Result<()> {
    let dir = &args.run;
    if args.is_samples == 0 && args.hais_steps == 0 && args.bdmc == 0 {
        bail!("nothing to evaluate: give --is-samples, --hais-steps or --bdmc");
    }
    let tuning = args.tuning()?;
    let (cfg, data, built) = open_run(dir, true, device)?;
    let Model { store, q, p } = &built;
    let (q, p) = (q.as_ref(), p.as_ref());
    let trainer = restore(&cfg, dir, store, q, p, "evaluate", device)?;
    let n = data.test_x.dim(0)?;
    let points = args.limit_test.map_or(n, |l| l.min(n));
    if points == 0 && args.bdmc == 0 {
        bail!("nothing to evaluate: --limit-test 0 skips the test set and no --bdmc was given");
    }
    let test_x = data.test_x.narrow(0, 0, points)?;
    let weights = args.weights.unwrap_or(trainer.evaluation_weights());
    if weights == Weights::Averaged && trainer.ema().is_none() {
        bail!(
            "--weights averaged: {} keeps no parameter average (it was trained without --ema-decay)",
            dir.display()
        );
    }
    let mut summary = json!({
        "run": dir, "epochs": trainer.state().epoch, "test_points": points,
        "test_binarization_seed": cfg.test_binarization_seed,
        "weights": weights, "ema": trainer.ema_summary(),
    });
    let mut lines = Vec::new();
    let mut bar = ProgressBar::from_env().map_err(anyhow::Error::msg)?;
    // Final figures for TensorBoard, tagged by method and, for part of the test set, by the
    // number of images (training logs the whole set's under `test/`).
    let mut scalars: Vec<(String, f64)> = Vec::new();
    let section = if points == n {
        "test".to_string()
    } else {
        format!("test_first{points}")
    };
    if args.is_samples > 0 && points > 0 {
        let (report, seconds) = trainer.with_weights(weights, || {
            importance_nll(q, p, &test_x, args.is_samples, &mut bar)
        })?;
        scalars.push((
            format!("{section}/is{}_nll", args.is_samples),
            report.mean_nll,
        ));
        summary["is_samples"] = json!(args.is_samples);
        summary["is_nll"] = json!(report.mean_nll);
        summary["is_std_error"] = json!(report.std_error);
        summary["is_mean_ess"] = json!(report.mean_ess);
        summary["is_seconds"] = json!(seconds);
        lines.push(format!(
            "IS-{} NLL {:.3} ± {:.3} nats (mean ESS {:.1}, {seconds:.1} s)",
            args.is_samples, report.mean_nll, report.std_error, report.mean_ess
        ));
    }
    // HMC differentiates with respect to z only: networks over plain tensors.
    if args.hais_steps > 0 && points > 0 {
        let config = args.ais_config(args.hais_start, tuning);
        let start = Instant::now();
        let report = trainer.with_weights(weights, || -> Result<_> {
            let (fq, fp) = frozen(&cfg.model, store, device)?;
            ais_log_likelihood(
                fq.as_ref(),
                fp.as_ref(),
                &test_x,
                &config,
                &mut SeededNoise::new(0x4a15),
                &mut bar,
            )
            .context("HAIS failed")
        })?;
        let seconds = start.elapsed().as_secs_f64();
        let leapfrogs = report.gradient_evaluations * config.chains * points;
        scalars.push((
            format!("test/hais{}_nll", config.num_steps),
            report.mean_nll,
        ));
        summary["hais"] = json!({
            "nll": report.mean_nll, "std_error": report.std_error,
            "mean_chain_std_error": mean(&report.chain_std_errors),
            "mean_acceptance": report.mean_acceptance, "mean_step_size": report.mean_step_size,
            "step_size_tuning": report.step_size_tuning,
            "config": config, "seconds": seconds,
            "leapfrog_steps_per_second": leapfrogs as f64 / seconds,
        });
        lines.push(format!(
            "HAIS NLL {:.3} ± {:.3} nats ({} steps × {} leapfrog, {} chains from the {:?}; acceptance {:.2}; step sizes {}; {seconds:.1} s)",
            report.mean_nll,
            report.std_error,
            config.num_steps,
            config.hmc.leapfrog_steps,
            config.chains,
            config.start,
            report.mean_acceptance,
            tuning_label(tuning)
        ));
    }
    if args.bdmc > 0 {
        // Reverse chains need the start's inverse map: the encoder's Gaussian where there
        // is one, else (a stochastic hierarchy) the standard normal.
        let start_kind = match (args.hais_start, &cfg.model.latent) {
            (AisStart::Posterior, LatentConfig::Hierarchy(_)) => AisStart::Prior,
            (AisStart::Posterior, _) => AisStart::Encoder,
            (other, _) => other,
        };
        let config = args.ais_config(start_kind, tuning);
        let start = Instant::now();
        let report = trainer.with_weights(weights, || -> Result<_> {
            let (fq, fp) = frozen(&cfg.model, store, device)?;
            bdmc(
                fq.as_ref(),
                fp.as_ref(),
                args.bdmc,
                &config,
                &mut SeededNoise::new(0xbd3c),
                &mut bar,
            )
            .context("BDMC failed")
        })?;
        let seconds = start.elapsed().as_secs_f64();
        scalars.push(("simulated/bdmc_lower".into(), report.lower));
        scalars.push(("simulated/bdmc_upper".into(), report.upper));
        summary["bdmc"] = json!({
            "points": args.bdmc, "lower": report.lower, "upper": report.upper, "gap": report.gap,
            "lower_std_error": report.lower_std_error, "upper_std_error": report.upper_std_error,
            "step_size_tuning": report.step_size_tuning,
            "config": config, "seconds": seconds,
        });
        lines.push(format!(
            "BDMC on {} simulated points: {:.3} <= log p(x) <= {:.3}, gap {:.3} nats (step sizes {}; {seconds:.1} s)",
            args.bdmc,
            report.lower,
            report.upper,
            report.gap,
            tuning_label(tuning)
        ));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{} over {points} test images after {} epochs, {weights} weights{}:",
            dir.display(),
            trainer.state().epoch,
            match (weights, trainer.ema_summary()) {
                (Weights::Averaged, Some(e)) => format!(
                    " (decay {}, {} updates, weight {:.1e} left on the first)",
                    e.decay, e.updates, e.initial_weight
                ),
                _ => String::new(),
            }
        );
        for l in &lines {
            println!("  {l}");
        }
    }
    let mut tag = match (args.is_samples, args.hais_steps, args.bdmc) {
        (_, 0, 0) => format!("is{}", args.is_samples),
        (_, h, 0) => format!("hais{h}"),
        (_, _, b) => format!("bdmc{b}"),
    };
    if weights != trainer.evaluation_weights() {
        tag = format!("{tag}-{weights}");
    }
    if (args.hais_steps > 0 || args.bdmc > 0) && tuning == StepSizeTuning::Online {
        tag = format!("{tag}-online");
    }
    write_atomic(
        &dir.join(format!("eval-{tag}.json")),
        &serde_json::to_vec_pretty(&summary)?,
    )?;
    // results.json holds the run's own weights' figures, from step sizes fixed in advance.
    if weights == trainer.evaluation_weights() && tuning != StepSizeTuning::Online {
        merge_results(dir, &summary)?;
        // The curves show the run's own figures: redraw them with the new ones.
        if dir.join("results.json").exists() {
            write_curves(dir, &run_title(&cfg, dir, trainer.state().epoch), true)?;
        }
        write_eval(dir, trainer.state().epoch as i64, &scalars);
    }
    Ok(())
}

/// A short name of the step-size tuning for the printed lines.
fn tuning_label(tuning: StepSizeTuning) -> &'static str {
    match tuning {
        StepSizeTuning::Pilot { .. } => "tuned by a pilot, then frozen",
        StepSizeTuning::Online => "adapted online (a heuristic)",
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Adds the HAIS and BDMC figures to the run's `results.json` (when it exists), keyed so
/// that the training results stay as they are.
fn merge_results(dir: &std::path::Path, summary: &Value) -> Result<()> {
    let path = dir.join("results.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut results: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid results", path.display()))?;
    for key in ["hais", "bdmc"] {
        if let Some(v) = summary.get(key) {
            let mut v = v.clone();
            if key == "hais" {
                v["test_points"] = summary["test_points"].clone();
            }
            v["weights"] = summary["weights"].clone();
            results[key] = v;
        }
    }
    write_atomic(&path, &serde_json::to_vec_pretty(&results)?)?;
    Ok(())
}

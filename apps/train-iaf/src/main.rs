//! `train-iaf`: train and evaluate VAEs with inverse autoregressive flows on binarized MNIST.
//!
//! Subcommands: `data` (find and verify MNIST), `train`, `resume`, `eval`, `sample`,
//! `report`.

mod curves;
mod data;
mod evaluate;
mod images;
mod layers;
mod metrics;
mod plots;
mod report;
mod run;
mod tensorboard;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use vaekit_models::{ESTIMATORS, LatentConfig, PRESETS, PriorConfig, RunConfig};
use vaekit_train::LrSchedule;

/// Train and evaluate VAEs with inverse autoregressive flows on binarized MNIST.
#[derive(Debug, Parser)]
#[command(name = "train-iaf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where tensors live: cpu, cuda, cuda:N, metal or metal:N (GPUs need a build with
    /// `--features cuda` or `metal`; see docs/gpu.md). Not stored in the run: a run may be
    /// resumed or evaluated on another device.
    #[arg(long, global = true, default_value = "cpu", value_name = "DEVICE")]
    device: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find, load and verify MNIST: counts, mean intensity, canonical checksums.
    Data(data::DataArgs),
    /// Train a new run: writes config.json, metrics.jsonl, checkpoints, pictures, results.json.
    Train(Box<TrainArgs>),
    /// Continue a run from its latest checkpoint (bit-identically on CPU).
    Resume {
        /// The run directory.
        #[arg(long)]
        run: PathBuf,
        /// Train to this many epochs in total.
        #[arg(long)]
        epochs: Option<u64>,
        /// Wall-clock budget of this invocation's training, minutes (replaces the run's).
        #[arg(long, value_name = "MINUTES")]
        time_budget: Option<f64>,
    },
    /// Test log-likelihood of a run's latest checkpoint: importance sampling, optionally
    /// Hamiltonian annealed importance sampling and BDMC bounds on simulated data.
    Eval(evaluate::EvalArgs),
    /// Draw samples.png and reconstructions.png from a run's latest checkpoint.
    Sample {
        /// The run directory.
        #[arg(long)]
        run: PathBuf,
    },
    /// One self-contained HTML page of one or more runs: configuration, results, curves,
    /// samples and reconstructions, and with several runs a comparison.
    Report(report::ReportArgs),
}

#[derive(Debug, Args)]
struct TrainArgs {
    /// Starting configuration: iwae-dense, iaf-resnet, snf-gated or sbn.
    #[arg(long, default_value = "iwae-dense")]
    preset: String,
    /// A configuration file (TOML or JSON) layered over a preset: the preset named by its
    /// `preset` key (else `--preset`), then the file's fields, then the flags. Unknown keys
    /// are errors; a `config.json` of a run works too.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory holding the four MNIST IDX files.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The run directory to create.
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    /// Epochs to train.
    #[arg(long)]
    epochs: Option<u64>,
    /// Seed of initialisation and training noise.
    #[arg(long)]
    seed: Option<u64>,
    /// Importance samples of the objective: 1 trains the ELBO (VAE), k > 1 the IWAE bound.
    #[arg(long)]
    k: Option<usize>,
    /// Latent variables: gaussian, bernoulli:200 (a sigmoid belief network; bernoulli:200,200
    /// for two layers) or categorical:30x10 (a categorical VAE).
    #[arg(long, value_name = "SPEC")]
    latent: Option<String>,
    /// Inference order of a stochastic hierarchy (--latent hierarchy:U,U, the iwae-2layer
    /// preset): bottom-up (the IWAE paper's) or top-down (the ladder VAE's: each layer's
    /// prior conditional times a bottom-up Gaussian, every layer's KL in closed form; train
    /// it with a KL warm-up, objective.warmup.epochs in a --config file). Default: the
    /// preset's.
    #[arg(long, value_name = "ORDER")]
    inference: Option<String>,
    /// Gated IAF steps after every layer of a stochastic hierarchy's posterior, 0 to 64 (0:
    /// none): each a MADE of two hidden layers (the smallest multiple of every layer's units
    /// that is at least twice the largest, 200 for iwae-2layer) with a context as wide as the
    /// largest layer (widths above 8192 are refused). Trains with elbo or iwae, not DReG or
    /// the score-function estimators. Default: the preset's (none).
    #[arg(long, value_name = "STEPS")]
    layer_iaf: Option<usize>,
    /// Prior of Gaussian latents: standard (N(0, I)), mog:K (a learned mixture of K
    /// Gaussians) or vamp:K (the VampPrior with K pseudo-inputs); K in 1..=10000. Default:
    /// the preset's.
    #[arg(long, value_name = "SPEC")]
    prior: Option<String>,
    /// Gradient estimator: elbo, iwae (pathwise, Gaussian latents), reinforce, nvil, vimco,
    /// rws, concrete or concrete-st (straight-through); draws per data point from --k.
    #[arg(long, value_name = "NAME")]
    estimator: Option<String>,
    /// Minibatch size.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Base learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Scale the IWAE paper's learning-rate schedule (3^i epochs at 1e-3·10^(-i/7), 3280 in
    /// all) so its eight stages span N epochs: for a run with a time budget.
    #[arg(long, value_name = "N")]
    schedule_span: Option<f64>,
    /// Stop training when the next epoch would end past this many minutes of wall-clock
    /// time, then draw the pictures and evaluate as usual.
    #[arg(long, value_name = "MINUTES")]
    time_budget: Option<f64>,
    /// Use only the first N training images.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Use only the first N test images.
    #[arg(long)]
    limit_test: Option<usize>,
    /// Importance samples for the final test NLL.
    #[arg(long)]
    is_samples: Option<usize>,
    /// Keep an exponential moving average of the parameters with this decay, in (0, 1), and
    /// evaluate with it (its decay warmed up, so short runs are not evaluated at their
    /// initial weights); 0 turns it off. Default: the preset's (0.999 for iaf-resnet, off
    /// otherwise).
    #[arg(long, value_name = "DECAY")]
    ema_decay: Option<f64>,
    /// Write TensorBoard event files to the run's `tb/` (scalars per epoch, the pictures,
    /// the final NLLs): true (the default; `--tensorboard` alone too) or false.
    /// `tensorboard --logdir runs` shows them.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    tensorboard: bool,
}

fn train(args: &TrainArgs, device: &candle::Device) -> Result<()> {
    let mut cfg = match &args.config {
        Some(path) => layers::from_file(path, &args.preset)?,
        None => RunConfig::preset(&args.preset)
            .with_context(|| format!("presets: {}", PRESETS.join(", ")))?,
    };
    if let Some(v) = &args.data_dir {
        cfg.data_dir = Some(v.clone());
    }
    if let Some(v) = args.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = args.seed {
        cfg.seed = v;
    }
    if let Some(v) = &args.latent {
        cfg.model.latent = LatentConfig::parse(v)?;
    }
    if let Some(v) = &args.inference {
        cfg.model.latent = cfg.model.latent.clone().with_inference(v)?;
    }
    if let Some(steps) = args.layer_iaf {
        cfg.model.latent = cfg.model.latent.clone().with_layer_iaf(steps)?;
    }
    if let Some(v) = &args.prior {
        cfg.model.prior = PriorConfig::parse(v)?;
    }
    match &args.estimator {
        Some(name) => {
            let default_k = if matches!(name.as_str(), "vimco" | "rws") {
                5
            } else {
                1
            };
            cfg.set_estimator(name, args.k.unwrap_or(default_k))
                .with_context(|| format!("estimators: {}", ESTIMATORS.join(", ")))?;
        }
        None => {
            if let Some(v) = args.k {
                cfg.set_k(v)?;
            }
        }
    }
    cfg.fit_baseline();
    if let Some(v) = args.batch_size {
        cfg.batch_size = v;
    }
    if let Some(v) = args.lr {
        cfg.lr = v;
    }
    if let Some(span) = args.schedule_span {
        anyhow::ensure!(
            matches!(
                cfg.schedule,
                LrSchedule::IwaePaper | LrSchedule::IwaePaperScaled { .. }
            ),
            "--schedule-span scales the iwae_paper schedule; this configuration uses {:?}",
            cfg.schedule
        );
        anyhow::ensure!(
            span.is_finite() && span > 0.0,
            "--schedule-span must be a positive number of epochs, got {span}"
        );
        cfg.schedule = LrSchedule::IwaePaperScaled { span_epochs: span };
    }
    if let Some(v) = args.time_budget {
        cfg.time_budget_minutes = Some(v);
    }
    if let Some(v) = args.limit_train {
        cfg.limit_train = Some(v);
    }
    if let Some(v) = args.limit_test {
        cfg.limit_test = Some(v);
    }
    if let Some(v) = args.is_samples {
        cfg.is_samples = v;
    }
    if let Some(d) = args.ema_decay {
        anyhow::ensure!(
            d == 0.0 || (d > 0.0 && d < 1.0),
            "--ema-decay {d}: must be 0 (no average) or lie in (0, 1)"
        );
        cfg.ema_decay = (d > 0.0).then_some(d);
    }
    cfg.validate_new_run()?;
    run::train(cfg, &args.out, args.tensorboard, device)
}

fn main() -> ExitCode {
    // Applied at load time already where the platform allows; idempotent.
    #[cfg(feature = "fast-alloc")]
    vaekit_core::configure_process();
    let cli = Cli::parse();
    let device = match vaekit_core::parse_device(&cli.device) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --device: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A progress setting that cannot be read is refused before any work.
    if let Err(e) = vaekit_monitor::ProgressBar::from_env() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // Every command runs on vaekit's thread pool, where candle's GEMM and vaekit's parallel
    // ops fork and join without waking this thread (`vaekit_core::on_pool`).
    let result = vaekit_core::on_pool(|| match cli.command {
        Command::Data(args) => data::run(&args),
        Command::Train(args) => train(&args, &device).map(|()| ExitCode::SUCCESS),
        Command::Resume {
            run,
            epochs,
            time_budget,
        } => run::resume(&run, epochs, time_budget, &device).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => evaluate::eval(&args, &device).map(|()| ExitCode::SUCCESS),
        Command::Sample { run } => run::sample(&run, &device).map(|p| {
            println!("wrote {}", p.display());
            ExitCode::SUCCESS
        }),
        Command::Report(args) => report::report(&args).map(|p| {
            println!("wrote {}", p.display());
            ExitCode::SUCCESS
        }),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

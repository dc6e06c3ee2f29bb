//! A VAE with an IAF posterior built from the crates, trained on MNIST, evaluated by IS.
//! `cargo run --release --example vae_iaf -- [MNIST_DIR] [EPOCHS]` (no directory: MNIST is
//! found as `train-iaf` finds it, from $VAEKIT_DATA_DIR or the cache).
use candle::Device;
use std::path::PathBuf;
use vaekit_core::SeededNoise;
use vaekit_datasets::{Mnist, binarize_fixed, resolve_mnist_dir};
use vaekit_eval::{ImportanceConfig, importance_sampled_log_likelihood};
use vaekit_flows::IafVariant;
use vaekit_models::{FlowConfig, Networks, RunConfig, build};
use vaekit_monitor::ProgressBar;
use vaekit_nets::{DenseConfig, Normalization};
use vaekit_train::{TrainConfig, Trainer, Weights};

fn main() -> anyhow::Result<()> {
    let (mut args, dev) = (std::env::args().skip(1), Device::Cpu);
    let dir = args.next().map(PathBuf::from);
    let epochs: u64 = args.next().map_or(Ok(1), |e| e.parse())?;
    let mnist = Mnist::load_dir(&resolve_mnist_dir(dir.as_deref())?.dir)?;
    // The IWAE paper's 784-200-200-50 tanh VAE, with a 50-wide context for two IAF steps.
    let mut cfg = RunConfig::preset("iwae-dense")?.model;
    cfg.networks = Networks::Dense(DenseConfig {
        context_dim: 50,
        ..DenseConfig::default()
    });
    cfg.flow = FlowConfig::Iaf {
        steps: 2,
        hidden: vec![100, 100],
        norm: Normalization::None,
        variant: IafVariant::Gated { forget_bias: 1.0 },
    };
    let model = build(&cfg, 1, &dev)?;
    let (q, p) = (model.q.as_ref(), model.p.as_ref());
    // The ELBO with Adam at 1e-3, batches of 100, dynamically binarized.
    let config = TrainConfig {
        batch_size: 100,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(config.clone(), &model.store, q, p)?;
    // A bar on a terminal (steps, running loss, ETA), a line every 30 s in a log.
    let mut bar = ProgressBar::new();
    for _ in 0..epochs {
        let r = trainer.train_epoch_with_progress(&mnist.train, &dev, &mut bar)?;
        println!(
            "epoch {}: train -ELBO {:.3} ({:.2} s)",
            r.epoch, -r.bound, r.seconds
        );
    }
    // The test set binarized once (the IWAE protocol); its bound; IS-500.
    let test = binarize_fixed(&mnist.test.images_f32(&dev)?, 123)?;
    let elbo = trainer.evaluate(&test, &config.objective, 500, 7, Weights::Current, &mut bar)?;
    let is = ImportanceConfig {
        num_samples: 500,
        ..ImportanceConfig::default()
    };
    let first = test.narrow(0, 0, 1000)?;
    let nll =
        importance_sampled_log_likelihood(q, p, &first, &is, &mut SeededNoise::new(9), &mut bar)?;
    println!(
        "test -ELBO {:.3}; IS-500 NLL of the first 1000 test images {:.3} ± {:.3}",
        -elbo, nll.mean_nll, nll.std_error
    );
    Ok(())
}

//! Deeper models from the crates: the IWAE paper's two-stochastic-layer VAE (`iwae-2layer`),
//! the same hierarchy with top-down inference through its generative path, the hierarchy with
//! two IAF steps in each layer's posterior, and a VAE with a
//! VampPrior (`vamp-dense`), each trained for a few epochs on the first N MNIST training
//! images, then scored on the first 200 test images by the test ELBO, IS-200 and, over all
//! 150 latents of the hierarchies, HAIS started from the posterior.
//! `cargo run --release -p vaekit-models --example deeper_models -- [MNIST_DIR] [EPOCHS] [N]`
//! (defaults: found as `train-iaf` finds MNIST, 3 epochs, 5000 images).
use candle::Device;
use std::path::PathBuf;
use vaekit_core::SeededNoise;
use vaekit_datasets::{Mnist, binarize_fixed, resolve_mnist_dir};
use vaekit_eval::{
    AisConfig, AisStart, ImportanceConfig, ais_log_likelihood, importance_sampled_log_likelihood,
};
use vaekit_models::{LatentConfig, RunConfig, frozen};
use vaekit_train::{Trainer, Weights};

fn main() -> anyhow::Result<()> {
    let (mut args, dev) = (std::env::args().skip(1), Device::Cpu);
    let dir = args.next().map(PathBuf::from);
    let epochs: u64 = args.next().map_or(Ok(3), |e| e.parse())?;
    let n: usize = args.next().map_or(Ok(5000), |e| e.parse())?;
    let mnist = Mnist::load_dir(&resolve_mnist_dir(dir.as_deref())?.dir)?;
    let train = mnist.train.subset(&(0..n).collect::<Vec<_>>())?;
    let test = binarize_fixed(&mnist.test.images_f32(&dev)?.narrow(0, 0, 200)?, 123)?;
    let mut top_down = RunConfig::preset("iwae-2layer")?;
    top_down.model.latent = top_down.model.latent.with_inference("top-down")?;
    let mut layer_iaf = RunConfig::preset("iwae-2layer")?;
    layer_iaf.model.latent = layer_iaf.model.latent.with_layer_iaf(2)?;
    let runs = [
        ("iwae-2layer", RunConfig::preset("iwae-2layer")?),
        ("iwae-2layer, top-down", top_down),
        ("iwae-2layer, IAF in each layer", layer_iaf),
        ("vamp-dense", RunConfig::preset("vamp-dense")?),
    ];
    for (preset, cfg) in runs {
        let model = cfg.build(&dev)?;
        let (q, p) = (model.q.as_ref(), model.p.as_ref());
        let config = cfg.train_config();
        let mut trainer = Trainer::new(config.clone(), &model.store, q, p)?;
        for _ in 0..epochs {
            let r = trainer.train_epoch_with_progress(&train, &dev, &mut ())?;
            println!("{preset} epoch {}: train -ELBO {:.2}", r.epoch, -r.bound);
        }
        let elbo = trainer.evaluate(&test, &config.objective, 200, 7, Weights::Current, &mut ())?;
        let is = ImportanceConfig {
            num_samples: 200,
            ..ImportanceConfig::default()
        };
        let nll =
            importance_sampled_log_likelihood(q, p, &test, &is, &mut SeededNoise::new(9), &mut ())?;
        println!(
            "{preset}: test -ELBO {:.2}, IS-200 NLL {:.2} ± {:.2}",
            -elbo, nll.mean_nll, nll.std_error
        );
        if let LatentConfig::Hierarchy(_) = cfg.model.latent {
            // HMC moves z only: the networks over plain tensors.
            let (fq, fp) = frozen(&cfg.model, &model.store, &dev)?;
            let ais = AisConfig {
                num_steps: 100,
                chains: 4,
                start: AisStart::Posterior,
                ..AisConfig::default()
            };
            let first = test.narrow(0, 0, 20)?;
            let r = ais_log_likelihood(
                fq.as_ref(),
                fp.as_ref(),
                &first,
                &ais,
                &mut SeededNoise::new(3),
                &mut (),
            )?;
            println!(
                "{preset}: HAIS-100 NLL of 20 test images {:.2} ± {:.2}",
                r.mean_nll, r.std_error
            );
        }
    }
    Ok(())
}

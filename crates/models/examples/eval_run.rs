//! Evaluates a `train-iaf` run's latest checkpoint from the crates: IS, Hamiltonian AIS and
//! BDMC, with the weights the run evaluates with (its parameter average, if it keeps one).
//! `cargo run --release --example eval_run -- RUN_DIR [TEST_POINTS]`
use anyhow::Context;
use candle::Device;
use std::path::PathBuf;
use vaekit_core::SeededNoise;
use vaekit_datasets::{Mnist, binarize_fixed, resolve_mnist_dir};
use vaekit_eval::importance_sampled_log_likelihood;
use vaekit_eval::{AisConfig, AisStart, ImportanceConfig, ais_log_likelihood, bdmc};
use vaekit_models::{RunConfig, frozen};
use vaekit_train::Trainer;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let run = PathBuf::from(
        args.next()
            .context("usage: eval_run RUN_DIR [TEST_POINTS]")?,
    );
    let points: usize = args.next().map_or(Ok(100), |n| n.parse())?;
    let dev = Device::Cpu;
    let cfg: RunConfig = serde_json::from_str(&std::fs::read_to_string(run.join("config.json"))?)?;
    // The networks, then the latest complete checkpoint's parameters (and average) into them.
    let model = cfg.build(&dev)?;
    let (q, p) = (model.q.as_ref(), model.p.as_ref());
    let mut trainer = Trainer::new(cfg.train_config(), &model.store, q, p)?
        .with_checkpoints(&run.join("checkpoints"))?;
    trainer
        .resume(&dev)?
        .context("the run has no complete checkpoint")?;
    let weights = trainer.evaluation_weights();
    // The run's test set, binarized once with its seed.
    let mnist = Mnist::load_dir(&resolve_mnist_dir(cfg.data_dir.as_deref())?.dir)?;
    let test = binarize_fixed(&mnist.test.images_f32(&dev)?, cfg.test_binarization_seed)?;
    let x = test.narrow(0, 0, points.min(test.dim(0)?))?;
    trainer.with_weights(weights, || -> anyhow::Result<()> {
        let is = ImportanceConfig {
            num_samples: 1000,
            ..ImportanceConfig::default()
        };
        let r =
            importance_sampled_log_likelihood(q, p, &x, &is, &mut SeededNoise::new(1), &mut ())?;
        println!(
            "IS-1000 NLL {:.3} ± {:.3} ({weights} weights)",
            r.mean_nll, r.std_error
        );
        // HMC moves z only: networks over the same values as plain, untracked tensors.
        let (fq, fp) = frozen(&cfg.model, &model.store, &dev)?;
        let ais = AisConfig {
            num_steps: 200,
            chains: 8,
            ..AisConfig::default()
        };
        let r = ais_log_likelihood(
            fq.as_ref(),
            fp.as_ref(),
            &x,
            &ais,
            &mut SeededNoise::new(2),
            &mut (),
        )?;
        println!(
            "HAIS NLL {:.3} ± {:.3} (200 steps, 8 chains)",
            r.mean_nll, r.std_error
        );
        // BDMC's reverse runs need a start whose map can be inverted: the encoder (or prior).
        let ais = AisConfig {
            start: AisStart::Encoder,
            ..ais
        };
        let r = bdmc(
            fq.as_ref(),
            fp.as_ref(),
            10,
            &ais,
            &mut SeededNoise::new(3),
            &mut (),
        )?;
        println!(
            "BDMC on 10 simulated points: {:.3} <= log p(x) <= {:.3}",
            r.lower, r.upper
        );
        Ok(())
    })
}

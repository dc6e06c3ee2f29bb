//! The training loop: bit-identical resume, the non-finite guard, crash-safe checkpoints,
//! split gradients for DReG, and that training improves the bound.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device};
use std::collections::HashMap;
use vaekit_datasets::{Mnist, write_synthetic_mnist};
use vaekit_flows::{IafVariant, MadeConfig, iaf_chain};
use vaekit_nets::{
    DenseConfig, DenseDecoder, DenseEncoder, Likelihood, Normalization, ParamStore, dense_decoder,
    dense_encoder,
};
use vaekit_objectives::{DecoderModel, EncoderFlow, IwaeGradient, Objective, ObjectiveConfig};
use vaekit_train::*;

struct Vae {
    store: ParamStore,
    q: EncoderFlow<DenseEncoder>,
    p: DecoderModel<DenseDecoder>,
}

fn vae(init_seed: u64) -> Vae {
    let store = ParamStore::new(init_seed);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let cfg = DenseConfig {
        hidden: vec![24],
        latent_dim: 3,
        context_dim: 6,
        norm: Normalization::Batch,
        ..DenseConfig::default()
    };
    let made = MadeConfig {
        dim: 3,
        hidden: vec![6],
        context_dim: 6,
        norm: Normalization::Weight,
        ..MadeConfig::default()
    };
    let q = EncoderFlow::new(
        dense_encoder(&cfg, vb.pp("encoder")).unwrap(),
        iaf_chain(2, &made, IafVariant::default(), vb.pp("flow")).unwrap(),
    );
    let p = DecoderModel::new(
        dense_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder")).unwrap(),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    Vae { store, q, p }
}

fn data() -> (tempfile::TempDir, vaekit_datasets::ImageSet) {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic_mnist(tmp.path(), 60, 10, false).unwrap();
    let mnist = Mnist::load_dir(tmp.path()).unwrap();
    (tmp, mnist.train)
}

fn config() -> TrainConfig {
    TrainConfig {
        batch_size: 20,
        clip_norm: Some(50.0),
        ema_decay: Some(0.9),
        objective: ObjectiveConfig {
            objective: Objective::Elbo {
                num_samples: 2,
                analytic_kl: true,
            },
            ..ObjectiveConfig::default()
        },
        seed: 5,
        ..TrainConfig::default()
    }
}

fn params(store: &ParamStore) -> HashMap<String, Vec<f32>> {
    store
        .sorted_vars()
        .into_iter()
        .map(|(n, v)| {
            (
                n,
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap(),
            )
        })
        .collect()
}

#[test]
fn resume_continues_bit_identically() {
    let (_d, train) = data();
    let dev = Device::Cpu;
    // Two epochs in one go.
    let a = vae(1);
    let mut ta = Trainer::new(config(), &a.store, &a.q, &a.p).unwrap();
    ta.train_epoch(&train, &dev).unwrap();
    let second_a = ta.train_epoch(&train, &dev).unwrap();
    let after_a = params(&a.store);
    // One epoch, a checkpoint, new networks (initialised differently), resume, one epoch.
    let ckpt = tempfile::tempdir().unwrap();
    {
        let b = vae(1);
        let mut tb = Trainer::new(config(), &b.store, &b.q, &b.p)
            .unwrap()
            .with_checkpoints(ckpt.path())
            .unwrap()
            .with_run_config(serde_json::json!({"run": "b"}));
        tb.train_epoch(&train, &dev).unwrap();
        tb.checkpoint(None).unwrap();
    }
    let c = vae(999);
    let mut tc = Trainer::new(config(), &c.store, &c.q, &c.p)
        .unwrap()
        .with_checkpoints(ckpt.path())
        .unwrap();
    assert_eq!(tc.resume(&dev).unwrap().unwrap().name, "epoch-000001");
    assert_eq!(tc.state().epoch, 1);
    assert_eq!(tc.state().config, serde_json::json!({"run": "b"}));
    let second_c = tc.train_epoch(&train, &dev).unwrap();
    assert_eq!(params(&c.store), after_a, "parameters after resume differ");
    assert_eq!(
        (second_c.loss, second_c.bound, second_c.kl),
        (second_a.loss, second_a.bound, second_a.kl)
    );
    assert_eq!(tc.state().step, ta.state().step);
    assert_eq!(tc.state().noise, ta.state().noise);
    // The parameter average continues bit for bit: same count, same weights.
    assert_eq!(tc.ema_summary(), ta.ema_summary());
    let averaged = |t: &Trainer, store: &ParamStore| {
        t.with_weights(Weights::Averaged, || -> candle::Result<_> {
            Ok(params(store))
        })
        .unwrap()
    };
    assert_eq!(averaged(&tc, &c.store), averaged(&ta, &a.store));
}

/// A short run (24 steps) evaluated with a slow average (decay 0.999): with the warm-up the
/// averaged weights' bound is close to the current weights'; without it the average is
/// still mostly the first step's parameters (weight 0.999^23 = 0.98).
#[test]
fn a_short_run_is_evaluated_near_its_current_weights() {
    let (_d, train) = data();
    let dev = Device::Cpu;
    let x = vaekit_datasets::binarize_fixed(&train.images_f32(&dev).unwrap(), 0).unwrap();
    let run = |warmup: bool| {
        let m = vae(2);
        let cfg = TrainConfig {
            lr: 3e-3,
            ema_decay: Some(0.999),
            ema_warmup: warmup,
            ..config()
        };
        let mut t = Trainer::new(cfg.clone(), &m.store, &m.q, &m.p).unwrap();
        let initial = t
            .evaluate(&x, &cfg.objective, 30, 7, Weights::Current, &mut ())
            .unwrap();
        for _ in 0..8 {
            t.train_epoch(&train, &dev).unwrap();
        }
        assert_eq!(t.evaluation_weights(), Weights::Averaged);
        let current = t
            .evaluate(&x, &cfg.objective, 30, 7, Weights::Current, &mut ())
            .unwrap();
        let averaged = t
            .evaluate(&x, &cfg.objective, 30, 7, Weights::Averaged, &mut ())
            .unwrap();
        let summary = t.ema_summary().unwrap();
        assert_eq!(summary.updates, 24);
        (initial, current, averaged, summary.initial_weight)
    };
    let (initial, current, averaged, left) = run(true);
    assert!(current > initial + 20.0, "{initial} -> {current}");
    assert!(left < Ema::initial_weight_bound(24) * 1.000001, "{left}");
    assert!(
        (current - averaged).abs() < 0.1 * (current - initial),
        "averaged {averaged} vs current {current} (initial {initial})"
    );
    let (initial, current, averaged, left) = run(false);
    assert!((left - 0.999f64.powi(23)).abs() < 1e-9, "{left}");
    assert!(
        current - averaged > 0.5 * (current - initial),
        "without the warm-up the average stays near the start: averaged {averaged}, current {current}, initial {initial}"
    );
    // No average: asking for one is an error, the default is the current weights.
    let m = vae(2);
    let t = Trainer::new(
        TrainConfig {
            ema_decay: None,
            ..config()
        },
        &m.store,
        &m.q,
        &m.p,
    )
    .unwrap();
    assert_eq!(t.evaluation_weights(), Weights::Current);
    let err = t
        .evaluate(&x, &config().objective, 30, 7, Weights::Averaged, &mut ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("keeps no parameter average"), "{err}");
    for bad in [0.0, 1.0, -1.0, f64::NAN] {
        let err = Trainer::new(
            TrainConfig {
                ema_decay: Some(bad),
                ..config()
            },
            &m.store,
            &m.q,
            &m.p,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("ema_decay") && err.contains("(0, 1)"), "{err}");
    }
}

#[test]
fn training_improves_the_bound_and_evaluation_uses_a_separate_stream() {
    let (_d, train) = data();
    let dev = Device::Cpu;
    let m = vae(2);
    let cfg = TrainConfig {
        lr: 3e-3,
        ..config()
    };
    let mut t = Trainer::new(cfg.clone(), &m.store, &m.q, &m.p).unwrap();
    let x = vaekit_datasets::binarize_fixed(&train.images_f32(&dev).unwrap(), 0).unwrap();
    let before = t
        .evaluate(&x, &cfg.objective, 30, 7, t.evaluation_weights(), &mut ())
        .unwrap();
    let noise_before = t.state().noise;
    assert_eq!(
        t.evaluate(&x, &cfg.objective, 30, 7, t.evaluation_weights(), &mut ())
            .unwrap(),
        before,
        "evaluation is deterministic for a seed"
    );
    assert_eq!(
        t.state().noise,
        noise_before,
        "evaluation does not consume the training stream"
    );
    for _ in 0..8 {
        t.train_epoch(&train, &dev).unwrap();
    }
    let after = t
        .evaluate(&x, &cfg.objective, 30, 7, t.evaluation_weights(), &mut ())
        .unwrap();
    assert!(
        after > before + 20.0,
        "the bound should improve: {before} -> {after}"
    );
    // The loss keeps one summary of the last epoch (its three steps), not a growing history.
    assert_eq!(t.loss().summary().count, 3);
}

#[test]
fn non_finite_steps_are_skipped_counted_and_stop_the_run() {
    let (_d, train) = data();
    let dev = Device::Cpu;
    let ckpt = tempfile::tempdir().unwrap();
    let m = vae(3);
    // 3 batches per epoch, so a limit of 4 can only trip across an epoch boundary.
    let cfg = TrainConfig {
        max_consecutive_nonfinite: 4,
        ..config()
    };
    let mut t = Trainer::new(cfg, &m.store, &m.q, &m.p)
        .unwrap()
        .with_checkpoints(ckpt.path())
        .unwrap();
    t.train_epoch(&train, &dev).unwrap();
    t.checkpoint(Some(-100.0)).unwrap();
    let good = params(&m.store);
    // Poison the encoder's first layer: its batch norm now sees NaN, and every step is
    // non-finite.
    let w = m
        .store
        .sorted_vars()
        .into_iter()
        .find(|(n, _)| n == "encoder.fc0.weight")
        .unwrap()
        .1;
    m.store
        .set(
            "encoder.fc0.weight",
            &w.as_tensor().affine(0.0, f64::NAN).unwrap(),
        )
        .unwrap();
    let r = t.train_epoch(&train, &dev).unwrap();
    assert_eq!(r.skipped, 3);
    assert!(
        r.loss.is_nan() && r.bound.is_nan(),
        "an all-skipped epoch has no mean: {r:?}"
    );
    let err = t.train_epoch(&train, &dev).unwrap_err();
    assert!(matches!(err, TrainError::NonFinite(4, 2)), "{err}");
    assert!(err.to_string().contains("the last checkpoint is intact"));
    assert_eq!(t.state().skipped_steps, 4);
    // The skipped steps did not write NaN into the batch-norm statistics.
    let stats = params(&m.store);
    for name in ["encoder.fc0.bn.running_mean", "encoder.fc0.bn.running_var"] {
        assert!(
            stats[name].iter().all(|v| v.is_finite()),
            "{name} holds NaN"
        );
    }
    // The checkpoint still holds the good parameters.
    let loaded = CheckpointDir::new(ckpt.path(), 3)
        .unwrap()
        .load_latest(&dev)
        .unwrap();
    let (tensors, state) = (loaded.tensors, loaded.state);
    assert_eq!(state.epoch, 1);
    assert_eq!(state.best_validation, Some(-100.0));
    let saved = tensors["param.encoder.fc0.weight"]
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(saved, good["encoder.fc0.weight"]);
}

#[test]
fn checkpoints_are_complete_or_ignored_and_retained() {
    let dev = Device::Cpu;
    let tmp = tempfile::tempdir().unwrap();
    let dir = CheckpointDir::new(tmp.path(), 2).unwrap();
    let state = |epoch| TrainerState {
        epoch,
        step: epoch * 10,
        noise: vaekit_core::SeededNoise::new(0).state(),
        best_validation: None,
        skipped_steps: 0,
        config: serde_json::json!({}),
        estimator: Default::default(),
    };
    let tensors: HashMap<String, candle::Tensor> = [(
        "param.w".to_string(),
        candle::Tensor::new(&[1.0f32, 2.0], &dev).unwrap(),
    )]
    .into_iter()
    .collect();
    for e in 1..=4 {
        dir.save_epoch(&tensors, &state(e)).unwrap();
    }
    assert_eq!(
        dir.epochs().unwrap(),
        vec![3, 4],
        "only the last two are kept"
    );
    // A run killed while writing epoch 5: tensors written, state not yet; and a stray temp.
    std::fs::write(tmp.path().join("epoch-000005.safetensors"), b"partial").unwrap();
    std::fs::write(tmp.path().join("epoch-000005.json.tmp"), b"{").unwrap();
    let latest = dir.load_latest(&dev).unwrap();
    assert_eq!(latest.state.epoch, 4);
    assert_eq!(
        latest.tensors["param.w"].to_vec1::<f32>().unwrap(),
        vec![1.0, 2.0]
    );
    assert!(latest.skipped.is_empty());
    // A corrupt state file (newest) and a truncated tensors file (next): both passed over,
    // named with their reasons, and the newest loadable checkpoint is taken.
    std::fs::write(tmp.path().join("epoch-000006.json"), b"not json").unwrap();
    let st4 = tmp.path().join("epoch-000004.safetensors");
    let bytes = std::fs::read(&st4).unwrap();
    std::fs::write(&st4, &bytes[..bytes.len() / 2]).unwrap();
    let latest = dir.load_latest(&dev).unwrap();
    assert_eq!(latest.name, "epoch-000003");
    assert_eq!(latest.state.epoch, 3);
    let skipped: Vec<String> = latest.skipped.iter().map(|s| s.to_string()).collect();
    assert_eq!(latest.skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].starts_with("epoch-000006") && skipped[0].contains("bad trainer state"),
        "{skipped:?}"
    );
    assert!(
        skipped[1].starts_with("epoch-000004") && skipped[1].contains("epoch-000004.safetensors"),
        "{skipped:?}"
    );
    // Every checkpoint damaged: an error naming each.
    std::fs::write(tmp.path().join("epoch-000003.safetensors"), b"").unwrap();
    let err = dir.load_latest(&dev).unwrap_err();
    assert!(matches!(err, CheckpointError::NoneLoadable { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        ["epoch-000006", "epoch-000004", "epoch-000003"]
            .iter()
            .all(|n| msg.contains(n)),
        "{msg}"
    );
    assert!(matches!(
        CheckpointDir::new(&tmp.path().join("empty"), 1)
            .unwrap()
            .load_latest(&dev),
        Err(CheckpointError::NotFound(_))
    ));
}

#[test]
fn dreg_trains_both_groups_with_their_own_losses() {
    let (_d, train) = data();
    let dev = Device::Cpu;
    // DReG needs a plain Gaussian posterior: no flow.
    let store = ParamStore::new(4);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let cfg = DenseConfig {
        hidden: vec![16],
        latent_dim: 3,
        ..DenseConfig::default()
    };
    let q = EncoderFlow::new(
        dense_encoder(&cfg, vb.pp("encoder")).unwrap(),
        vaekit_flows::FlowChain::default(),
    );
    let p = DecoderModel::new(
        dense_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder")).unwrap(),
        DType::F32,
        &dev,
    )
    .unwrap();
    let before = params(&store);
    let tc = TrainConfig {
        objective: ObjectiveConfig {
            objective: Objective::Iwae {
                num_samples: 5,
                gradient: IwaeGradient::Dreg,
            },
            ..ObjectiveConfig::default()
        },
        ..config()
    };
    // Prefixes that match no parameter would silently give DReG the plain IWAE gradient.
    let wrong = TrainConfig {
        inference_prefixes: vec!["inference_net.".into()],
        ..tc.clone()
    };
    let mut t = Trainer::new(wrong, &store, &q, &p).unwrap();
    let err = t.train_epoch(&train, &dev).unwrap_err().to_string();
    assert!(
        err.contains("Dreg") && err.contains("inference_net.") && err.contains("plain IWAE"),
        "{err}"
    );
    assert_eq!(params(&store), before, "nothing was trained");
    let mut t = Trainer::new(tc, &store, &q, &p).unwrap();
    let r = t.train_epoch(&train, &dev).unwrap();
    assert!(r.bound.is_finite() && r.skipped == 0);
    let after = params(&store);
    for (name, v) in &before {
        if vaekit_nets::is_trainable(name) {
            assert_ne!(&after[name], v, "{name} did not move");
        }
    }
}

#[test]
fn resume_refuses_a_changed_optimizer_split() {
    // A checkpoint of one shared optimizer resumed with a separate inference optimizer would
    // restart the inference moments at a stale step count: refused, naming the cause.
    let (_tmp, train) = data();
    let dir = tempfile::tempdir().unwrap();
    let v = vae(1);
    let mut t = Trainer::new(config(), &v.store, &v.q, &v.p)
        .unwrap()
        .with_checkpoints(dir.path())
        .unwrap();
    t.train_epoch(&train, &Device::Cpu).unwrap();
    t.checkpoint(None).unwrap();
    let separate = TrainConfig {
        inference_optimizer: Some(InferenceOptimizer {
            optimizer: OptimizerConfig::default(),
            lr_scale: 1.0,
        }),
        ..config()
    };
    let w = vae(1);
    let mut resumed = Trainer::new(separate, &w.store, &w.q, &w.p)
        .unwrap()
        .with_checkpoints(dir.path())
        .unwrap();
    let err = resumed.resume(&Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("optimizer"), "{err}");
}

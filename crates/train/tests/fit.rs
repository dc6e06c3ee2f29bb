//! `Trainer::fit`: the loop's epochs, hooks, test bound, data-dependent initialisation and
//! time budget, over an `ImageSet` for training and a binarized `Tensor` for the test bound.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device};
use vaekit_core::{Progress, ProgressEvent, ProgressLog};
use vaekit_datasets::{DataSource, Mnist, binarize_fixed, write_synthetic_mnist};
use vaekit_flows::FlowChain;
use vaekit_nets::{
    DenseConfig, Likelihood, Normalization, ParamStore, dense_decoder, dense_encoder,
};
use vaekit_objectives::{DecoderModel, EncoderFlow};
use vaekit_train::*;

struct Vae {
    store: ParamStore,
    q: EncoderFlow<vaekit_nets::DenseEncoder>,
    p: DecoderModel<vaekit_nets::DenseDecoder>,
}

/// A small dense VAE whose hidden layers have weight norm (so data-dependent
/// initialisation has something to write).
fn vae() -> Vae {
    let store = ParamStore::new(3);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let cfg = DenseConfig {
        input_dim: 16,
        hidden: vec![12],
        latent_dim: 3,
        norm: Normalization::Weight,
        ..DenseConfig::default()
    };
    let q = EncoderFlow::new(
        dense_encoder(&cfg, vb.pp("encoder")).unwrap(),
        FlowChain::default(),
    );
    let p = DecoderModel::new(
        dense_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder")).unwrap(),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    Vae { store, q, p }
}

#[derive(Default)]
struct Log {
    started: Vec<u64>,
    progress: ProgressLog,
    records: Vec<EpochRecord>,
    budget: Vec<u64>,
}

impl FitHooks for Log {
    fn epoch_started(&mut self, epoch: u64) {
        self.started.push(epoch);
    }
    fn progress(&mut self) -> Option<&mut dyn Progress> {
        Some(&mut self.progress)
    }
    fn epoch_done(&mut self, record: &EpochRecord) -> Result<(), TrainError> {
        self.records.push(record.clone());
        Ok(())
    }
    fn budget_reached(&mut self, epoch: u64, _elapsed: f64) {
        self.budget.push(epoch);
    }
}

#[test]
fn fit_runs_epochs_hooks_test_bound_init_and_budget() {
    let dev = Device::Cpu;
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic_mnist(tmp.path(), 60, 10, false).unwrap();
    let mnist = Mnist::load_dir(tmp.path()).unwrap();
    // 4x4 crops would need a new reader: the synthetic set's images are 28x28, so take the
    // first 16 pixels of every image as a tiny data set of our own.
    let train = mnist
        .train
        .images_f32(&dev)
        .unwrap()
        .narrow(1, 0, 16)
        .unwrap();
    let test = binarize_fixed(
        &mnist
            .test
            .images_f32(&dev)
            .unwrap()
            .narrow(1, 0, 16)
            .unwrap(),
        1,
    )
    .unwrap();
    let m = vae();
    let config = TrainConfig {
        batch_size: 20,
        ..TrainConfig::default()
    };
    let mut t = Trainer::new(config, &m.store, &m.q, &m.p).unwrap();
    let gain = |s: &ParamStore| {
        s.trainable()
            .into_iter()
            .find(|(n, _)| n.ends_with(".g") || n.contains("gain"))
            .map(|(_, v)| {
                v.as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            })
    };
    let before = gain(&m.store);
    let fit = FitConfig {
        epochs: 2,
        time_budget_seconds: None,
        test: Some(TestEvaluation::elbo(5)),
        data_init: true,
    };
    // A bad test setup is refused before any step.
    let no_test = FitConfig {
        test: None,
        ..fit.clone()
    };
    assert!(t.fit(&train, Some(&test), &no_test, &dev, &mut ()).is_err());
    let zero = FitConfig {
        test: Some(TestEvaluation {
            batch_size: 0,
            ..TestEvaluation::elbo(5)
        }),
        ..fit.clone()
    };
    assert!(t.fit(&train, Some(&test), &zero, &dev, &mut ()).is_err());
    assert_eq!((t.state().epoch, gain(&m.store)), (0, before.clone()));
    let mut log = Log::default();
    let out = t.fit(&train, Some(&test), &fit, &dev, &mut log).unwrap();
    assert_eq!(
        (out.epochs_trained, out.data_init, out.stopped_by_budget),
        (2, true, false)
    );
    assert_eq!(log.started, [1, 2]);
    // Each epoch is two whole jobs: three steps of 20 reporting the running loss, then the
    // test bound over its 10 points; each ends with the figure the epoch's record holds.
    log.progress.check().expect("well-formed progress");
    let test_job = format!("test bound ({} weights)", Weights::Current);
    assert_eq!(
        log.progress.jobs(),
        ["epoch 1", test_job.as_str(), "epoch 2", test_job.as_str()]
    );
    let mut job = 0;
    let mut steps = 0;
    for event in &log.progress.events {
        match event {
            ProgressEvent::Start { total, unit, .. } => {
                assert_eq!(
                    (*total, *unit),
                    if job % 2 == 0 {
                        (3, "steps")
                    } else {
                        (10, "points")
                    }
                );
            }
            ProgressEvent::Update { stats, .. } => {
                let (name, v) = stats[0];
                assert_eq!(name, if job % 2 == 0 { "loss" } else { "bound" });
                assert!(v.is_finite());
                steps += usize::from(job % 2 == 0);
            }
            ProgressEvent::Finish { summary } => {
                let record = &log.records[job / 2];
                let expected = if job % 2 == 0 {
                    ("loss", record.report.loss)
                } else {
                    ("bound", record.test_bound.unwrap())
                };
                assert_eq!(summary[0], expected);
                job += 1;
            }
        }
    }
    assert_eq!(steps, 2 * 3, "three batches of 20 per epoch");
    assert!(
        before.is_some() && gain(&m.store) != before,
        "weight norm's gains were initialised"
    );
    // Without `data_init`, a fresh trainer's store is left as it is before the first step.
    let m2 = vae();
    let mut t2 = Trainer::new(TrainConfig::default(), &m2.store, &m2.q, &m2.p).unwrap();
    t2.data_init(&train, &dev).unwrap();
    let initialised = gain(&m2.store);
    let no_init = FitConfig {
        epochs: 0,
        test: None,
        data_init: false,
        ..fit.clone()
    };
    let out = t2.fit(&train, None, &no_init, &dev, &mut ()).unwrap();
    assert!(!out.data_init);
    assert_eq!(gain(&m2.store), initialised);
    // The record's test bound is the trainer's own evaluation of the test rows.
    let last = log.records.last().unwrap();
    let again = t
        .evaluate(
            &test,
            &TestEvaluation::elbo(5).objective,
            500,
            5,
            last.weights,
            &mut (),
        )
        .unwrap();
    assert_eq!(last.test_bound, Some(again));
    assert_eq!((last.report.epoch, last.test_bound_current), (2, None));
    // A second call continues where the first stopped, without initialising again.
    let out = t
        .fit(
            &train,
            None,
            &FitConfig {
                epochs: 3,
                ..fit.clone()
            },
            &dev,
            &mut log,
        )
        .unwrap();
    assert_eq!((out.epochs_trained, out.data_init), (1, false));
    assert_eq!(
        log.records.last().unwrap().test_bound,
        None,
        "no test set given"
    );
    // A budget already spent stops before the next epoch; a bad one is refused.
    let tiny = FitConfig {
        epochs: 10,
        time_budget_seconds: Some(1e-12),
        ..fit.clone()
    };
    let out = t.fit(&train, None, &tiny, &dev, &mut log).unwrap();
    assert_eq!((out.epochs_trained, out.stopped_by_budget), (0, true));
    assert_eq!(log.budget, [3]);
    for bad in [0.0, -1.0, f64::NAN] {
        let cfg = FitConfig {
            time_budget_seconds: Some(bad),
            ..fit.clone()
        };
        let err = t.fit(&train, None, &cfg, &dev, &mut ()).unwrap_err();
        assert!(err.to_string().contains("time_budget_seconds"), "{err}");
    }
    assert_eq!(DataSource::len(&train), 60);
}

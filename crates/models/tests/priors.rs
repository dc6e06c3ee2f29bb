//! Learned priors in built models: a VampPrior shares every encoder parameter with the
//! inference network, its pseudo-inputs sit in the generative group, and one ELBO step's
//! gradient reaches the pseudo-inputs, the mixture's parameters and the encoder through the
//! prior; the prior's own density moves the encoder under a VampPrior and not under a
//! mixture; estimators that would leave the prior's encoder term out are refused, as are
//! grouped free bits and batch norm where they cannot work; a run's configuration without a
//! `prior` field (written before priors existed) reads as the standard normal.
#![allow(clippy::unwrap_used)]

mod common;

use candle::{Device, Tensor};
use vaekit_models::{ParamGroup, PriorConfig, RunConfig};
use vaekit_nets::{DenseConfig, Pass};
use vaekit_objectives::{IwaeGradient, Objective};

fn small(prior: PriorConfig) -> RunConfig {
    let mut cfg = RunConfig::preset("iwae-dense").unwrap();
    cfg.model.networks = vaekit_models::Networks::Dense(DenseConfig {
        input_dim: 12,
        hidden: vec![8],
        latent_dim: 3,
        ..DenseConfig::default()
    });
    cfg.model.prior = prior;
    cfg
}

fn batch() -> Tensor {
    let v: Vec<f32> = (0..5 * 12)
        .map(|i| ((i * 7) % 3 == 0) as u8 as f32)
        .collect();
    Tensor::from_vec(v, (5, 12), &Device::Cpu).unwrap()
}

#[test]
fn learned_priors_train_with_the_model() {
    for prior in [
        PriorConfig::Vamp { pseudo_inputs: 4 },
        PriorConfig::Mixture { components: 3 },
    ] {
        let cfg = small(prior);
        let (model, eval, grads) = common::one_step(&cfg, &batch());
        assert!(eval.loss.to_scalar::<f32>().unwrap().is_finite());
        let names = model.store.names();
        let prior_vars: Vec<_> = names.iter().filter(|n| n.starts_with("prior.")).collect();
        match prior {
            // The prior's encoder made no variables of its own.
            PriorConfig::Vamp { .. } => assert_eq!(prior_vars, ["prior.pseudo_inputs"]),
            _ => assert_eq!(prior_vars.len(), 3, "{prior_vars:?}"),
        }
        let generative: Vec<String> = model
            .parameters(ParamGroup::Generative)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(prior_vars.iter().all(|n| generative.contains(n)));
        for (name, var) in model.store.trainable() {
            if name.starts_with("prior.") {
                let norm = common::grad_norm(&grads, &var).unwrap();
                assert!(norm > 0.0, "{}: no gradient for {name}", prior.describe());
            }
        }
    }
}

#[test]
fn the_vamp_prior_refuses_estimators_that_split_the_encoder_gradient() {
    let mut dreg = small(PriorConfig::Vamp { pseudo_inputs: 4 });
    dreg.objective.objective = Objective::Iwae {
        num_samples: 5,
        gradient: IwaeGradient::Dreg,
    };
    let mut rws = small(PriorConfig::Vamp { pseudo_inputs: 4 });
    rws.set_estimator("rws", 5).unwrap();
    for cfg in [dreg, rws] {
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("VampPrior"), "{e}");
    }
    let mut ok = small(PriorConfig::Vamp { pseudo_inputs: 4 });
    ok.set_estimator("iwae", 5).unwrap();
    ok.validate().unwrap();
    // A mixture prior has no such term: DReG stands.
    let mut mog = small(PriorConfig::Mixture { components: 2 });
    mog.objective.objective = Objective::Iwae {
        num_samples: 5,
        gradient: IwaeGradient::Dreg,
    };
    mog.validate().unwrap();
}

#[test]
fn the_vamp_prior_alone_moves_the_encoder() {
    // log p(z) at fixed points: under a VampPrior its gradient reaches the encoder (the
    // prior is the encoder at the pseudo-inputs); under a mixture prior it does not.
    let z = Tensor::new(&[[0.3f32, -1.0, 0.5], [1.2, 0.1, -0.4]], &Device::Cpu).unwrap();
    for (prior, reaches) in [
        (PriorConfig::Vamp { pseudo_inputs: 4 }, true),
        (PriorConfig::Mixture { components: 3 }, false),
    ] {
        let model = small(prior).build(&Device::Cpu).unwrap();
        let lp = model.p.prior(Pass::Train).unwrap().log_prob(&z).unwrap();
        let grads = lp.sum_all().unwrap().backward().unwrap();
        let moved = model
            .store
            .trainable()
            .into_iter()
            .filter(|(n, _)| n.starts_with("encoder."))
            .any(|(_, v)| common::grad_norm(&grads, &v).is_some_and(|g| g > 0.0));
        assert_eq!(moved, reaches, "{}", prior.describe());
    }
}

#[test]
fn a_configuration_without_a_prior_reads_as_the_standard_normal() {
    // A run's config.json written before priors existed: the model's fields at the top
    // level, no `prior`.
    let cfg = small(PriorConfig::StandardNormal);
    let mut json = serde_json::to_value(&cfg).unwrap();
    assert!(json.as_object_mut().unwrap().remove("prior").is_some());
    let back: RunConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back.model.prior, PriorConfig::StandardNormal);
    assert_eq!(back, cfg);
    let bad = small(PriorConfig::Mixture { components: 0 })
        .validate()
        .unwrap_err();
    assert!(bad.to_string().contains("prior.components = 0"), "{bad}");
    // Grouped free bits need factorising densities, which a learned prior does not have.
    let mut grouped = small(PriorConfig::Mixture { components: 2 });
    grouped.objective.free_bits = Some(vaekit_objectives::FreeBits {
        nats_per_dim: 0.25,
        groups: 3,
    });
    let e = grouped.validate().unwrap_err().to_string();
    assert!(e.contains("free_bits.groups = 3"), "{e}");
    // A VampPrior would move batch norm's running statistics.
    let mut bn = small(PriorConfig::Vamp { pseudo_inputs: 4 });
    if let vaekit_models::Networks::Dense(c) = &mut bn.model.networks {
        c.norm = vaekit_nets::Normalization::Batch;
    }
    assert!(
        bn.validate()
            .unwrap_err()
            .to_string()
            .contains("batch norm")
    );
}

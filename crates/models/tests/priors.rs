//! Learned priors in built models: a VampPrior shares every encoder parameter with the
//! inference network, its pseudo-inputs sit in the generative group, and one ELBO step's
//! gradient reaches the pseudo-inputs, the mixture's parameters and the encoder through the
//! prior; estimators that would leave the prior's encoder term out are refused; a
//! configuration without a `prior` field (runs written before priors existed) reads as the
//! standard normal.
#![allow(clippy::unwrap_used)]

mod common;

use candle::{Device, Tensor};
use vaekit_models::{ParamGroup, PriorConfig, RunConfig, VaeConfig};
use vaekit_nets::DenseConfig;
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
fn a_configuration_without_a_prior_reads_as_the_standard_normal() {
    let cfg = small(PriorConfig::StandardNormal);
    let mut json = serde_json::to_value(&cfg.model).unwrap();
    json.as_object_mut().unwrap().remove("prior");
    let back: VaeConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back.prior, PriorConfig::StandardNormal);
    let bad = small(PriorConfig::Mixture { components: 0 })
        .validate()
        .unwrap_err();
    assert!(bad.to_string().contains("prior.components = 0"), "{bad}");
}

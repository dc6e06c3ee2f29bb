//! The `iwae-2layer` preset and `--latent hierarchy:..`: the IWAE paper's shapes, every
//! parameter reached by one step's gradient under the ELBO (with the layered KL), IWAE and
//! DReG in both inference orders (and, with IAF steps in each layer, under the ELBO and
//! IWAE, DReG refused), a flow or a learned prior refused, and the parsers' range.
#![allow(clippy::unwrap_used)]

mod common;

use candle::{Device, Tensor};
use vaekit_models::{FlowConfig, LatentConfig, PriorConfig, RunConfig};
use vaekit_objectives::{HierarchyInference, IwaeGradient, KlMethod, Objective};

fn batch() -> Tensor {
    let v: Vec<f32> = (0..4 * 784)
        .map(|i| ((i * 13) % 5 < 2) as u8 as f32)
        .collect();
    Tensor::from_vec(v, (4, 784), &Device::Cpu).unwrap()
}

#[test]
fn the_two_layer_preset_has_the_papers_shapes_and_every_parameter_learns() {
    let cfg = RunConfig::preset("iwae-2layer").unwrap();
    let LatentConfig::Hierarchy(h) = &cfg.model.latent else {
        panic!("iwae-2layer: {:?}", cfg.model.latent)
    };
    assert_eq!(h.units(), [100, 50]);
    assert_eq!(h.layers[0].hidden, [200, 200]);
    assert_eq!(h.layers[1].hidden, [100, 100]);
    assert_eq!(cfg.model.latent_dim(), 150);
    assert_eq!(h.inference, HierarchyInference::BottomUp);
    let mut top_down = cfg.clone();
    top_down.model.latent = top_down.model.latent.with_inference("top-down").unwrap();
    let dreg = Objective::Iwae {
        num_samples: 3,
        gradient: IwaeGradient::Dreg,
    };
    for (cfg, objective) in [&cfg, &top_down]
        .into_iter()
        .flat_map(|c| pathwise().into_iter().chain([dreg]).map(move |o| (c, o)))
    {
        let (eval, params) = one_step_reaches_every_parameter(cfg, objective, "");
        if matches!(objective, Objective::Elbo { .. }) {
            let analytic_layers = match cfg.model.latent {
                LatentConfig::Hierarchy(ref h) if h.inference == HierarchyInference::TopDown => 2,
                _ => 1,
            };
            assert_eq!(
                eval.kl_method,
                KlMethod::PerLayer {
                    analytic_layers,
                    layers: 2,
                    num_samples: 1
                }
            );
        }
        assert!(params.len() >= 20, "{} parameters", params.len());
    }
}

/// The pathwise bounds: the single-draw ELBO with analytic KLs and the standard IWAE-3.
fn pathwise() -> [Objective; 2] {
    [
        Objective::Elbo {
            num_samples: 1,
            analytic_kl: true,
        },
        Objective::Iwae {
            num_samples: 3,
            gradient: IwaeGradient::Standard,
        },
    ]
}

/// One step of `cfg` trained by `objective`: the bound is finite and every parameter gets a
/// nonzero gradient. Returns the evaluation and the parameters' names.
fn one_step_reaches_every_parameter(
    cfg: &RunConfig,
    objective: Objective,
    label: &str,
) -> (vaekit_objectives::Evaluation, Vec<String>) {
    let mut cfg = cfg.clone();
    cfg.objective.objective = objective;
    cfg.validate().unwrap();
    let (model, eval, grads) = common::one_step(&cfg, &batch());
    assert!(eval.bound.is_finite());
    let params = model.store.trainable();
    for (name, var) in &params {
        let norm = common::grad_norm(&grads, var)
            .unwrap_or_else(|| panic!("{label} {objective:?}: no gradient for {name}"));
        assert!(
            norm > 0.0,
            "{label} {objective:?}: zero gradient for {name}"
        );
    }
    (eval, params.into_iter().map(|(n, _)| n).collect())
}

#[test]
fn hierarchies_refuse_flows_and_learned_priors_and_parse_their_layers() {
    let base = RunConfig::preset("iwae-2layer").unwrap();
    let mut flow = base.clone();
    flow.model.flow = FlowConfig::Planar { steps: 2 };
    assert!(flow.validate().unwrap_err().to_string().contains("no flow"));
    let mut vamp = base.clone();
    vamp.model.prior = PriorConfig::Vamp { pseudo_inputs: 10 };
    assert!(
        vamp.validate()
            .unwrap_err()
            .to_string()
            .contains("own prior")
    );
    let parsed = LatentConfig::parse("hierarchy:100,50").unwrap();
    assert_eq!(parsed, base.model.latent);
    assert_eq!(parsed.describe(), "hierarchy:100,50");
    let top_down = parsed.clone().with_inference("top-down").unwrap();
    assert_eq!(top_down.describe(), "hierarchy:100,50 (top-down inference)");
    assert_eq!(top_down.with_inference("bottom-up").unwrap(), parsed);
    let err = LatentConfig::parse("hierarchy:100,50")
        .unwrap()
        .with_inference("sideways")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--inference") && err.contains("sideways"),
        "{err}"
    );
    let err = LatentConfig::Gaussian
        .with_inference("top-down")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--inference") && err.contains("gaussian"),
        "{err}"
    );
    for bad in [
        "hierarchy:100",
        "hierarchy:0,5",
        "hierarchy:",
        "hierarchy:a,b",
    ] {
        let e = LatentConfig::parse(bad).unwrap_err().to_string();
        assert!(e.contains("--latent"), "{bad}: {e}");
    }
}

#[test]
fn a_hierarchy_takes_the_discretized_logistic_likelihood() {
    let mut cfg = RunConfig::preset("iwae-2layer").unwrap();
    cfg.model.likelihood = vaekit_nets::Likelihood::DiscretizedLogistic { num_bins: 256 };
    // 8-bit grey levels in [0, 1].
    let v: Vec<f32> = (0..4 * 784)
        .map(|i| ((i * 37) % 256) as f32 / 255.0)
        .collect();
    let x = Tensor::from_vec(v, (4, 784), &Device::Cpu).unwrap();
    let (_, eval, _) = common::one_step(&cfg, &x);
    // A discretized likelihood has log p(x|z) <= 0, so the bound is below -KL.
    assert!(eval.bound.is_finite() && eval.bound < 0.0, "{}", eval.bound);
    assert!(eval.reconstruction < 0.0, "{}", eval.reconstruction);
}

#[test]
fn a_hierarchy_written_before_the_inference_order_existed_reads_as_bottom_up() {
    let latent = RunConfig::preset("iwae-2layer").unwrap().model.latent;
    let mut json = serde_json::to_value(&latent).unwrap();
    assert_eq!(json["inference"], "bottom-up");
    json.as_object_mut().unwrap().remove("inference").unwrap();
    let back: LatentConfig = serde_json::from_value(json).unwrap();
    assert_eq!(back, latent);
}

#[test]
fn layer_iafs_train_in_both_orders_under_the_elbo_and_iwae_and_refuse_dreg() {
    let base = RunConfig::preset("iwae-2layer").unwrap();
    for inference in ["bottom-up", "top-down"] {
        let mut cfg = base.clone();
        cfg.model.latent = cfg
            .model
            .latent
            .with_inference(inference)
            .unwrap()
            .with_layer_iaf(2)
            .unwrap();
        let LatentConfig::Hierarchy(h) = &cfg.model.latent else {
            panic!("{:?}", cfg.model.latent)
        };
        let iaf = h.iaf.as_ref().unwrap();
        // The smallest multiple of 100 and 50 at least twice 100; a context of 100.
        assert_eq!(
            (iaf.steps, &iaf.hidden[..], iaf.context_dim),
            (2, &[200, 200][..], 100)
        );
        assert!(
            cfg.model
                .latent
                .describe()
                .ends_with("with 2 IAF steps per layer")
        );
        for objective in pathwise() {
            let (eval, params) = one_step_reaches_every_parameter(&cfg, objective, inference);
            if matches!(objective, Objective::Elbo { .. }) {
                // No closed form through the flows.
                assert_eq!(eval.kl_method, KlMethod::MonteCarlo { num_samples: 1 });
            }
            let flows = params.iter().filter(|n| n.contains(".flow")).count();
            assert!(flows >= 8, "{inference}: {flows} flow parameters");
        }
        let mut dreg = cfg.clone();
        dreg.objective.objective = Objective::Iwae {
            num_samples: 3,
            gradient: IwaeGradient::Dreg,
        };
        let err = dreg.validate().unwrap_err().to_string();
        assert!(err.contains("DReG") && err.contains("layer IAFs"), "{err}");
        // The score-function estimators need log q off the sampling path.
        for estimator in ["reinforce", "vimco", "rws"] {
            let mut score = cfg.clone();
            score.objective.objective = vaekit_models::estimator_objective(estimator, 5).unwrap();
            let err = score.validate().unwrap_err().to_string();
            assert!(err.contains("sampling path"), "{estimator}: {err}");
        }
        // 0 removes them again.
        let plain = cfg.model.latent.clone().with_layer_iaf(0).unwrap();
        assert!(matches!(plain, LatentConfig::Hierarchy(ref h) if h.iaf.is_none()));
    }
    for (latent, steps, needle) in [
        (LatentConfig::Gaussian, 2, "gaussian"),
        (base.model.latent.clone(), 65, "0 to 64"),
        // Coprime layers would need MADE widths that are multiples of 9797.
        (LatentConfig::parse("hierarchy:97,101").unwrap(), 2, "9797"),
    ] {
        let err = latent.with_layer_iaf(steps).unwrap_err().to_string();
        assert!(err.contains("--layer-iaf") && err.contains(needle), "{err}");
    }
}

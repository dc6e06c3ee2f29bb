//! The presets, the estimator names and the checks of a configuration.

use candle::Device;
use vaekit_models::{
    FlowConfig, LatentConfig, ModelError, Networks, PRESETS, ParamGroup, RunConfig, build,
};
use vaekit_objectives::{IwaeGradient, Objective};

#[test]
fn presets_are_valid_and_round_trip() -> Result<(), Box<dyn std::error::Error>> {
    for name in PRESETS {
        let cfg = RunConfig::preset(name)?;
        cfg.validate()?;
        let back: RunConfig = serde_json::from_str(&serde_json::to_string(&cfg)?)?;
        assert_eq!(back, cfg);
    }
    assert!(RunConfig::preset("nope").is_err());
    let mut sbn = RunConfig::preset("sbn")?;
    sbn.model.latent = LatentConfig::parse("bernoulli:200,200")?;
    sbn.set_estimator("vimco", 5)?;
    sbn.validate()?;
    assert_eq!(sbn.model.latent.describe(), "bernoulli:200,bernoulli:200");
    assert_eq!(sbn.objective.objective, Objective::Vimco { num_samples: 5 });
    let LatentConfig::Discrete(c) = &sbn.model.latent else {
        return Err("not discrete".into());
    };
    assert_eq!(
        c.baseline_hidden, None,
        "only NVIL builds a baseline network"
    );
    sbn.set_estimator("nvil", 1)?;
    let LatentConfig::Discrete(c) = &sbn.model.latent else {
        return Err("not discrete".into());
    };
    assert_eq!(c.baseline_hidden, Some(100));
    assert_eq!(
        LatentConfig::parse("categorical:30x10")?.describe(),
        "categorical:30x10"
    );
    for bad in [
        "bernoulli:",
        "bernoulli:0",
        "categorical:30",
        "categorical:3x1",
        "poisson:3",
    ] {
        assert!(LatentConfig::parse(bad).is_err(), "{bad}");
    }
    sbn.set_k(7)?;
    assert_eq!(
        sbn.objective.objective.num_samples(),
        7,
        "--k keeps the estimator"
    );
    // A config.json from before `ema_warmup` keeps the plain decay; presets warm it up.
    let mut legacy = serde_json::to_value(RunConfig::preset("iaf-resnet")?)?;
    assert_eq!(legacy["ema_warmup"], true);
    legacy.as_object_mut().map(|o| o.remove("ema_warmup"));
    assert!(!serde_json::from_value::<RunConfig>(legacy)?.ema_warmup);
    // An existing run trained with IWAE on top of warm-up and free bits still loads; a
    // new one is refused (its objective would ignore them).
    let mut iwae = RunConfig::preset("iaf-resnet")?;
    iwae.set_k(5)?;
    iwae.validate()?;
    let err = iwae.validate_new_run().err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("objective.warmup")));
    // Grouped free bits need a flow that keeps the dimensions apart.
    let mut planar = RunConfig::preset("iaf-resnet")?;
    planar.model.flow = FlowConfig::Planar { steps: 2 };
    planar.validate()?;
    let err = planar.validate_new_run().err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("objective.free_bits.groups = 64")));
    let mut c = RunConfig::preset("iwae-dense")?;
    c.set_k(50)?;
    assert_eq!(
        c.objective.objective,
        Objective::Iwae {
            num_samples: 50,
            gradient: IwaeGradient::Standard
        }
    );
    Ok(())
}

/// Every preset builds, with every parameter in one of the two groups.
#[test]
fn every_preset_builds_with_its_parameters_in_the_two_groups() -> Result<(), ModelError> {
    for name in PRESETS {
        let cfg = RunConfig::preset(name)?;
        let model = cfg.build(&Device::Cpu)?;
        let all = model.store.trainable();
        let q = model.parameters(ParamGroup::Inference);
        let p = model.parameters(ParamGroup::Generative);
        assert!(!q.is_empty() && !p.is_empty(), "{name}");
        assert_eq!(
            q.len() + p.len(),
            all.len(),
            "{name}: a parameter outside both groups"
        );
    }
    // The trainer's default inference prefixes are the library's paths.
    assert_eq!(
        vaekit_train::TrainConfig::default().inference_prefixes,
        ParamGroup::inference_prefixes()
    );
    Ok(())
}

/// Mismatches are refused by the configuration, before any tensor exists.
#[test]
fn mismatches_are_refused_before_any_tensor() -> Result<(), ModelError> {
    let refused = |cfg: &RunConfig| cfg.validate().err().map(|e| e.to_string());
    let mut iaf = RunConfig::preset("iaf-resnet")?;
    iaf.model.flow = FlowConfig::Iaf {
        steps: 2,
        hidden: vec![100],
        norm: vaekit_nets::Normalization::None,
        variant: vaekit_flows::IafVariant::Gated { forget_bias: 1.0 },
    };
    assert!(refused(&iaf).is_some_and(|e| e.contains("multiple of the latent dimension 64")));
    let mut dense = RunConfig::preset("iwae-dense")?;
    dense.model.flow = FlowConfig::Planar { steps: 2 };
    if let Networks::Dense(n) = &mut dense.model.networks {
        n.context_dim = 0;
    }
    assert!(refused(&dense).is_some_and(|e| e.contains("encoder context")));
    assert!(matches!(
        build(&dense.model, 0, &Device::Cpu),
        Err(ModelError::Config(_))
    ));
    dense.model.flow = FlowConfig::None;
    dense.objective.objective = Objective::Iwae {
        num_samples: 5,
        gradient: IwaeGradient::Dreg,
    };
    dense.validate()?;
    dense.model.flow = FlowConfig::Planar { steps: 2 };
    if let Networks::Dense(n) = &mut dense.model.networks {
        n.context_dim = 8;
    }
    assert!(refused(&dense).is_some_and(|e| e.contains("DReG")));
    Ok(())
}

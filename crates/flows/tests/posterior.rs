//! The flow posterior: shapes, `log q = log q0 - Σ log det`, and gradients reaching every
//! parameter of the encoder and of each flow family through samples and log-densities.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Shape};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_flows::*;
use vaekit_nets::{DenseConfig, Encoder, Normalization, ParamStore, Pass, dense_encoder};

#[test]
fn posterior_samples_log_densities_and_gradients() {
    let store = ParamStore::new(5);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let enc_cfg = DenseConfig {
        hidden: vec![16],
        latent_dim: 4,
        context_dim: 8,
        input_dim: 12,
        ..DenseConfig::default()
    };
    let encoder = dense_encoder(&enc_cfg, vb.pp("encoder")).unwrap();
    let made_cfg = MadeConfig {
        dim: 4,
        hidden: vec![8, 8],
        context_dim: 8,
        norm: Normalization::Weight,
        ..MadeConfig::default()
    };
    let steps: Vec<Box<dyn Flow>> = vec![
        Box::new(
            iaf_chain(
                2,
                &made_cfg,
                IafVariant::Gated { forget_bias: 1.0 },
                vb.pp("iaf"),
            )
            .unwrap(),
        ),
        Box::new(planar_step(4, 8, vb.pp("planar")).unwrap()),
        Box::new(
            sylvester_step(
                4,
                8,
                SylvesterKind::Householder { reflections: 2 },
                0,
                vb.pp("hsnf"),
            )
            .unwrap(),
        ),
        Box::new(sylvester_step(4, 8, SylvesterKind::Triangular, 1, vb.pp("tsnf")).unwrap()),
    ];
    let posterior = FlowPosterior::new(FlowChain::new(steps));
    let x = SeededNoise::new(1)
        .uniform(&Shape::from((3, 12)), DType::F32, &Device::Cpu)
        .unwrap();
    let encoded = encoder.forward(&x, Pass::Train).unwrap();
    let sample = posterior
        .rsample_with_log_prob(&encoded, 5, &mut SeededNoise::new(2), Pass::Train)
        .unwrap();
    assert_eq!(sample.z.dims(), &[5, 3, 4]);
    assert_eq!(sample.log_q.dims(), &[5, 3]);
    // log q = log q0 - log det of the chain applied to z0.
    let flat = sample.z0.reshape((15, 4)).unwrap();
    let ctx = encoded
        .context
        .unsqueeze(0)
        .unwrap()
        .broadcast_as((5, 3, 8))
        .unwrap()
        .reshape((15, 8))
        .unwrap();
    let out = posterior
        .flow()
        .forward(&flat, Some(&ctx), Pass::Train)
        .unwrap();
    let expected = (&sample.log_q0 - out.log_det_jacobian.reshape((5, 3)).unwrap()).unwrap();
    let diff = (expected - &sample.log_q)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff < 1e-5, "{diff}");
    // Every trainable parameter (encoder and all four flow families) gets a gradient.
    let loss =
        (sample.log_q.mean_all().unwrap() + sample.z.sqr().unwrap().mean_all().unwrap()).unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in store.trainable() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let v = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(
            v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0),
            "{name}: gradient not finite and non-zero"
        );
    }
    // An empty chain is the encoder's Gaussian.
    let plain = FlowPosterior::new(FlowChain::default());
    let s = plain
        .rsample_with_log_prob(&encoded, 2, &mut SeededNoise::new(3), Pass::Eval)
        .unwrap();
    assert_eq!(
        s.log_q.to_vec2::<f32>().unwrap(),
        s.log_q0.to_vec2::<f32>().unwrap()
    );
    let _ = SeededNoise::new(0)
        .uniform(&Shape::from(1), DType::F32, &Device::Cpu)
        .unwrap();
}

/// Parameter paths are the checkpoint format: pinned.
#[test]
fn iaf_parameter_paths_are_pinned() {
    let store = ParamStore::new(0);
    let made_cfg = MadeConfig {
        dim: 2,
        hidden: vec![4],
        context_dim: 3,
        norm: Normalization::Weight,
        ..MadeConfig::default()
    };
    iaf_chain(
        2,
        &made_cfg,
        IafVariant::Gated { forget_bias: 1.0 },
        store.var_builder(DType::F32, &Device::Cpu).pp("flow"),
    )
    .unwrap();
    let names = store.names();
    let expected: Vec<String> = (0..2)
        .flat_map(|k| {
            [
                "context.bias",
                "context.g",
                "context.weight",
                "hidden0.bias",
                "hidden0.g",
                "hidden0.weight",
                "out.bias",
                "out.g",
                "out.weight",
            ]
            .into_iter()
            .map(move |p| format!("flow.iaf{k}.made.{p}"))
        })
        .collect();
    assert_eq!(names, expected);
}

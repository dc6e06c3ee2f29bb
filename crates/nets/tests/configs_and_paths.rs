//! Configurations round-trip through JSON (they are saved with every run), and parameter
//! paths are pinned (they are the checkpoint format: a rename breaks every saved model).
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Shape};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_nets::*;

#[test]
fn configs_round_trip_through_json() {
    let dense = DenseConfig {
        hidden: vec![300, 100],
        norm: Normalization::Batch,
        input_to_every_layer: true,
        activation: Activation::Elu,
        ..DenseConfig::default()
    };
    let back: DenseConfig = serde_json::from_str(&serde_json::to_string(&dense).unwrap()).unwrap();
    assert_eq!(back, dense);
    for cfg in [
        ResNetConfig::reference_tf(),
        ResNetConfig {
            upsample: Upsample::Nearest,
            ..ResNetConfig::iaf_paper()
        },
    ] {
        let back: ResNetConfig =
            serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
    }
    let gated = GatedConfig::default();
    let back: GatedConfig = serde_json::from_str(&serde_json::to_string(&gated).unwrap()).unwrap();
    assert_eq!(back, gated);
    let json = serde_json::to_string(&Likelihood::DiscretizedLogistic { num_bins: 256 }).unwrap();
    assert_eq!(json, r#"{"kind":"discretized_logistic","num_bins":256}"#);
}

#[test]
fn parameter_paths_are_pinned() {
    let store = ParamStore::new(0);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let cfg = DenseConfig {
        hidden: vec![8],
        norm: Normalization::Batch,
        latent_dim: 2,
        context_dim: 3,
        input_dim: 4,
        ..DenseConfig::default()
    };
    dense_encoder(&cfg, vb.pp("encoder")).unwrap();
    dense_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder")).unwrap();
    assert_eq!(
        store.names(),
        vec![
            "decoder.fc0.bn.bias",
            "decoder.fc0.bn.running_mean",
            "decoder.fc0.bn.running_var",
            "decoder.fc0.bn.weight",
            "decoder.fc0.weight",
            "decoder.out.bias",
            "decoder.out.weight",
            "encoder.fc0.bn.bias",
            "encoder.fc0.bn.running_mean",
            "encoder.fc0.bn.running_var",
            "encoder.fc0.bn.weight",
            "encoder.fc0.weight",
            "encoder.head.context.bias",
            "encoder.head.context.weight",
            "encoder.head.loc.bias",
            "encoder.head.loc.weight",
            "encoder.head.log_scale.bias",
            "encoder.head.log_scale.weight",
        ]
    );
}

#[test]
fn weight_normalised_convolutions_are_data_initialised() {
    let store = ParamStore::new(1);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let x = (SeededNoise::new(2)
        .standard_normal(&Shape::from((16, 3, 8, 8)), DType::F32, &Device::Cpu)
        .unwrap()
        * 4.0)
        .unwrap();
    let cfg = ConvConfig {
        padding: 1,
        norm: Normalization::Weight,
        init_scale: 1.0,
        ..ConvConfig::default()
    };
    let conv = conv2d(3, 5, 3, cfg, vb.pp("c")).unwrap();
    let deconv = conv_transpose2d(
        3,
        4,
        3,
        ConvConfig {
            stride: 2,
            output_padding: 1,
            ..cfg
        },
        vb.pp("t"),
    )
    .unwrap();
    for y in [
        conv.forward(&x, Pass::DataInit(&store)).unwrap(),
        deconv.forward(&x, Pass::DataInit(&store)).unwrap(),
    ] {
        // Per channel, over batch and space: mean 0, standard deviation 1.
        let mean = y.mean_keepdim((0, 2, 3)).unwrap();
        let std = y
            .broadcast_sub(&mean)
            .unwrap()
            .sqr()
            .unwrap()
            .mean((0, 2, 3))
            .unwrap()
            .sqrt()
            .unwrap();
        for (m, s) in mean
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .zip(std.to_vec1::<f32>().unwrap())
        {
            assert!(
                m.abs() < 1e-4 && (s - 1.0).abs() < 1e-3,
                "mean {m}, std {s}"
            );
        }
    }
}

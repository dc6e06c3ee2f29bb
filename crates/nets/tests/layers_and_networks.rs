//! Every layer and network: output shapes, train vs eval (batch-norm statistics), weight norm
//! recomputed per forward with data-dependent initialisation, and after one backward pass a
//! finite, non-zero gradient for every trainable parameter.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Result, Shape, Tensor};
use vaekit_core::testing::assert_all_close;
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_nets::*;

fn randn(shape: impl Into<Shape>, seed: u64) -> Tensor {
    SeededNoise::new(seed)
        .standard_normal(&shape.into(), DType::F32, &Device::Cpu)
        .unwrap()
}

/// Backpropagates `loss` and checks every trainable parameter of `store`.
fn assert_every_parameter_learns(store: &ParamStore, loss: &Tensor) {
    let grads = loss.backward().unwrap();
    let trainable = store.trainable();
    assert!(!trainable.is_empty());
    for (name, var) in trainable {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} received no gradient"));
        let v = g
            .flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        assert!(
            v.iter().all(|x| x.is_finite()),
            "{name}: non-finite gradient"
        );
        assert!(v.iter().any(|x| *x != 0.0), "{name}: all-zero gradient");
    }
}

fn encoder_loss(out: &EncoderOutput) -> Tensor {
    let a = out.loc.sqr().unwrap().sum_all().unwrap();
    let b = out.log_scale.sin().unwrap().sum_all().unwrap();
    let c = out.context.sqr().unwrap().sum_all().unwrap();
    ((a + b).unwrap() + c).unwrap()
}

fn binary_images(n: usize, pixels: usize, seed: u64) -> Tensor {
    SeededNoise::new(seed)
        .uniform(&Shape::from((n, pixels)), DType::F32, &Device::Cpu)
        .unwrap()
        .gt(0.5)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

#[test]
fn linear_layers_match_their_formulas_and_learn() {
    for norm in [
        Normalization::None,
        Normalization::Batch,
        Normalization::Weight,
    ] {
        let store = ParamStore::new(1);
        let vb = store.var_builder(DType::F32, &Device::Cpu);
        let layer = linear(
            5,
            3,
            LinearConfig {
                norm,
                init_scale: 1.0,
            },
            vb.pp("fc"),
        )
        .unwrap();
        let x = randn((8, 5), 2);
        let y = layer.forward(&x, Pass::Train).unwrap();
        assert_eq!(y.dims(), &[8, 3]);
        if norm != Normalization::Batch {
            // Independent reference: x Wᵀ + b with the effective weight.
            let w = layer.effective_weight().unwrap();
            let b = store
                .varmap()
                .data()
                .lock()
                .unwrap()
                .get("fc.bias")
                .unwrap()
                .as_tensor()
                .clone();
            let expected = x
                .matmul(&w.t().unwrap())
                .unwrap()
                .broadcast_add(&b)
                .unwrap();
            assert_all_close(&y, &expected, 1e-5, 1e-6).unwrap();
        }
        assert_every_parameter_learns(&store, &y.sqr().unwrap().sum_all().unwrap());
    }
}

/// A `[samples, batch, in]` input (IWAE's and HMC's layout) gives the same values and the
/// same gradients (input and every parameter) as candle's `broadcast_matmul` of the
/// effective weight plus the bias, in f64, with and without weight norm and a mask.
#[test]
fn linear_layers_on_rank_3_inputs_match_broadcast_matmul() {
    let noise = |shape: (usize, usize, usize), seed| {
        SeededNoise::new(seed)
            .standard_normal(&Shape::from(shape), DType::F64, &Device::Cpu)
            .unwrap()
    };
    for (norm, masked) in [
        (Normalization::None, false),
        (Normalization::Weight, false),
        (Normalization::None, true),
        (Normalization::Weight, true),
    ] {
        let store = ParamStore::new(3);
        let vb = store.var_builder(DType::F64, &Device::Cpu);
        let config = LinearConfig {
            norm,
            init_scale: 1.0,
        };
        let layer = if masked {
            let mask = Tensor::from_vec(
                (0..15).map(|i| f64::from(i % 3 != 0)).collect::<Vec<_>>(),
                (3, 5),
                &Device::Cpu,
            )
            .unwrap();
            masked_linear(5, 3, mask, config, vb.pp("fc")).unwrap()
        } else {
            linear(5, 3, config, vb.pp("fc")).unwrap()
        };
        let x = candle::Var::from_tensor(&noise((4, 6, 5), 4)).unwrap();
        let r = noise((4, 6, 3), 5);
        let bias = store.varmap().data().lock().unwrap()["fc.bias"]
            .as_tensor()
            .clone();
        let ours = layer.forward(x.as_tensor(), Pass::Train).unwrap();
        let reference = x
            .as_tensor()
            .broadcast_matmul(&layer.effective_weight().unwrap().t().unwrap())
            .unwrap()
            .broadcast_add(&bias)
            .unwrap();
        assert_eq!(ours.dims(), &[4, 6, 3]);
        assert_all_close(&ours, &reference, 1e-12, 1e-12).unwrap();
        let g_ours = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let g_ref = (&reference * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let mut tensors = vec![x.as_tensor().clone()];
        tensors.extend(
            store
                .trainable()
                .into_iter()
                .map(|(_, v)| v.as_tensor().clone()),
        );
        for t in &tensors {
            assert_all_close(g_ours.get(t).unwrap(), g_ref.get(t).unwrap(), 1e-12, 1e-12).unwrap();
        }
    }
}

#[test]
fn weight_norm_is_recomputed_every_forward_and_data_initialised() {
    let store = ParamStore::new(3);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let layer = linear(
        6,
        4,
        LinearConfig {
            norm: Normalization::Weight,
            init_scale: 0.5,
        },
        vb.pp("wn"),
    )
    .unwrap();
    let x = (randn((256, 6), 4) * 3.0)
        .unwrap()
        .affine(1.0, 2.0)
        .unwrap();
    let y = layer.forward(&x, Pass::DataInit(&store)).unwrap();
    // After data-dependent init each unit has mean 0 and std init_scale on this batch.
    let mean = y.mean(0).unwrap().to_vec1::<f32>().unwrap();
    let std = y
        .broadcast_sub(&y.mean_keepdim(0).unwrap())
        .unwrap()
        .sqr()
        .unwrap()
        .mean(0)
        .unwrap()
        .sqrt()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for (m, s) in mean.iter().zip(&std) {
        assert!(
            m.abs() < 1e-4 && (s - 0.5).abs() < 1e-3,
            "mean {m}, std {s}"
        );
    }
    // The same output in a plain pass: the init was written to the store.
    assert_all_close(&layer.forward(&x, Pass::Train).unwrap(), &y, 1e-5, 1e-5).unwrap();
    // Rows of the effective weight have norm g, whatever v is: change v, the norms stay.
    let g = store
        .varmap()
        .data()
        .lock()
        .unwrap()
        .get("wn.g")
        .unwrap()
        .as_tensor()
        .to_vec1::<f32>()
        .unwrap();
    store
        .set("wn.weight", &(randn((4, 6), 5) * 10.0).unwrap())
        .unwrap();
    let norms = layer
        .effective_weight()
        .unwrap()
        .sqr()
        .unwrap()
        .sum(1)
        .unwrap()
        .sqrt()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for (n, g) in norms.iter().zip(&g) {
        assert!(
            (n - g).abs() < 1e-4 * g.abs().max(1.0),
            "row norm {n} vs g {g}"
        );
    }
}

#[test]
fn batch_norm_train_and_eval() {
    let store = ParamStore::new(5);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let layer = linear(
        4,
        3,
        LinearConfig {
            norm: Normalization::Batch,
            init_scale: 1.0,
        },
        vb.pp("bn_fc"),
    )
    .unwrap();
    let x = randn((32, 4), 6).affine(2.0, 5.0).unwrap();
    let running = |name: &str| {
        store
            .varmap()
            .data()
            .lock()
            .unwrap()
            .get(name)
            .unwrap()
            .as_tensor()
            .to_vec1::<f32>()
            .unwrap()
    };
    let before = running("bn_fc.bn.running_mean");
    let train = layer.forward(&x, Pass::Train).unwrap();
    let after = running("bn_fc.bn.running_mean");
    assert_ne!(before, after, "a training pass updates the running mean");
    // Batch statistics in training: per-unit mean 0.
    assert!(
        train
            .mean(0)
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            < 1e-4
    );
    let eval = layer.forward(&x, Pass::Eval).unwrap();
    assert_eq!(
        running("bn_fc.bn.running_mean"),
        after,
        "an eval pass leaves the statistics alone"
    );
    let diff = (eval - train)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff > 1e-2, "eval uses running statistics, not the batch's");
    assert!(!store.trainable().iter().any(|(n, _)| n.contains("running")));
}

#[test]
fn masked_linear_respects_the_mask() {
    let store = ParamStore::new(7);
    let vb = store.var_builder(DType::F64, &Device::Cpu);
    let mask = Tensor::new(&[[1.0f64, 0.0, 0.0], [1.0, 1.0, 0.0]], &Device::Cpu).unwrap();
    let layer = masked_linear(3, 2, mask, LinearConfig::default(), vb.pp("m")).unwrap();
    let x = Tensor::new(&[[1.0f64, 2.0, 3.0]], &Device::Cpu).unwrap();
    let x2 = Tensor::new(&[[1.0f64, 2.0, 100.0]], &Device::Cpu).unwrap();
    let (y, y2) = (
        layer.forward(&x, Pass::Train).unwrap(),
        layer.forward(&x2, Pass::Train).unwrap(),
    );
    assert_eq!(
        y.to_vec2::<f64>().unwrap(),
        y2.to_vec2::<f64>().unwrap(),
        "input 3 is masked out"
    );
    assert!(
        masked_linear(
            3,
            2,
            Tensor::ones((3, 2), DType::F64, &Device::Cpu).unwrap(),
            LinearConfig::default(),
            vb.pp("bad")
        )
        .is_err()
    );
}

#[test]
fn conv_layers_and_blocks() {
    for norm in [
        Normalization::None,
        Normalization::Batch,
        Normalization::Weight,
    ] {
        let store = ParamStore::new(8);
        let vb = store.var_builder(DType::F32, &Device::Cpu);
        let x = randn((2, 3, 9, 9), 9);
        let conv = conv2d(
            3,
            4,
            3,
            ConvConfig {
                padding: 1,
                stride: 2,
                norm,
                ..ConvConfig::default()
            },
            vb.pp("c"),
        )
        .unwrap();
        let y = conv.forward(&x, Pass::DataInit(&store)).unwrap();
        assert_eq!(y.dims(), &[2, 4, 5, 5]);
        let t = conv_transpose2d(
            4,
            2,
            3,
            ConvConfig {
                padding: 1,
                stride: 2,
                output_padding: 0,
                norm,
                init_scale: 1.0,
            },
            vb.pp("t"),
        )
        .unwrap();
        let z = t.forward(&y, Pass::Train).unwrap();
        assert_eq!(z.dims(), &[2, 2, 9, 9]);
        let g = gated_conv2d(
            3,
            4,
            5,
            ConvConfig {
                padding: 2,
                norm,
                ..ConvConfig::default()
            },
            vb.pp("g"),
        )
        .unwrap();
        let gy = g.forward(&x, Pass::Train).unwrap();
        assert_eq!(gy.dims(), &[2, 4, 9, 9]);
        let gt = gated_conv_transpose2d(
            4,
            3,
            5,
            ConvConfig {
                padding: 2,
                stride: 2,
                output_padding: 1,
                norm,
                init_scale: 1.0,
            },
            vb.pp("gt"),
        )
        .unwrap();
        assert_eq!(
            gt.forward(&gy, Pass::Train).unwrap().dims(),
            &[2, 3, 18, 18]
        );
        let loss = (z.sqr().unwrap().sum_all().unwrap()
            + gt.forward(&gy, Pass::Train).unwrap().sum_all().unwrap())
        .unwrap();
        assert_every_parameter_learns(&store, &loss);
    }
    // Res blocks: every resampling mode.
    let store = ParamStore::new(10);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let x = randn((2, 4, 7, 7), 11);
    let cfg = ResBlockConfig::default();
    let same = res_block(4, 4, cfg, vb.pp("same")).unwrap();
    let down = res_block(
        4,
        6,
        ResBlockConfig {
            resample: Resample::Down,
            ..cfg
        },
        vb.pp("down"),
    )
    .unwrap();
    let up = res_block(
        6,
        4,
        ResBlockConfig {
            resample: Resample::UpTransposed { output_padding: 0 },
            ..cfg
        },
        vb.pp("up"),
    )
    .unwrap();
    let near = res_block(
        4,
        5,
        ResBlockConfig {
            resample: Resample::UpNearest { size: 14 },
            norm: Normalization::Batch,
            ..cfg
        },
        vb.pp("near"),
    )
    .unwrap();
    let a = same.forward(&x, Pass::Train).unwrap();
    let b = down.forward(&a, Pass::Train).unwrap();
    assert_eq!(b.dims(), &[2, 6, 4, 4]);
    let c = up.forward(&b, Pass::Train).unwrap();
    assert_eq!(c.dims(), &[2, 4, 7, 7]);
    let d = near.forward(&c, Pass::Train).unwrap();
    assert_eq!(d.dims(), &[2, 5, 14, 14]);
    assert_every_parameter_learns(&store, &d.sqr().unwrap().sum_all().unwrap());
    assert!(res_block(4, 4, ResBlockConfig { kernel: 4, ..cfg }, vb.pp("even")).is_err());
}

/// Builds an encoder/decoder pair, checks shapes, data-dependent init, and gradients.
fn check_pair(
    encoder: &dyn Encoder,
    decoder: &dyn Decoder,
    store: &ParamStore,
    pixels: usize,
) -> Result<()> {
    let x = binary_images(3, pixels, 12);
    // Data-dependent initialisation runs through every layer.
    encoder.forward(&x, Pass::DataInit(store))?;
    let out = encoder.forward(&x, Pass::Train)?;
    let d = encoder.latent_dim();
    assert_eq!(out.loc.dims(), &[3, d]);
    assert_eq!(out.log_scale.dims(), &[3, d]);
    assert_eq!(out.context.dims(), &[3, encoder.context_dim()]);
    let z = (&out.loc + (out.log_scale.exp()? * randn((3, d), 13))?)?;
    decoder.forward(&z, Pass::DataInit(store))?;
    let px = decoder.forward(&z, Pass::Train)?;
    assert_eq!(px.mean()?.dims(), &[3, pixels]);
    let log_lik = px.log_prob(&x)?;
    assert_eq!(log_lik.dims(), &[3]);
    let loss = (encoder_loss(&out) - log_lik.sum_all()?)?;
    assert_every_parameter_learns(store, &loss);
    // `log_likelihood_rows` (the dense Bernoulli decoder's fused op) against the output's own,
    // two latent rows per image, and every parameter learns through it.
    let z2 = Tensor::cat(&[&z, &z.affine(0.5, 0.1)?], 1)?.reshape((6, d))?;
    let rows = decoder.log_likelihood_rows(&z2, &x, Pass::Train)?;
    let plain = decoder.forward(&z2, Pass::Train)?.log_likelihood_rows(&x)?;
    assert_eq!(rows.dims(), &[3, 2]);
    assert_all_close(&rows, &plain, 1e-5, 1e-3)?;
    let loss = (encoder_loss(&out) - rows.sum_all()?)?;
    assert_every_parameter_learns(store, &loss);
    // Eval mode gives finite outputs too.
    let e = decoder.forward(&z.detach(), Pass::Eval)?.log_prob(&x)?;
    assert!(e.to_vec1::<f32>()?.iter().all(|v| v.is_finite()));
    Ok(())
}

#[test]
fn dense_networks() {
    for (norm, every, act) in [
        (Normalization::None, false, Activation::Tanh),
        (Normalization::Batch, true, Activation::Elu),
        (Normalization::Weight, true, Activation::Elu),
    ] {
        let cfg = DenseConfig {
            hidden: vec![32, 16],
            norm,
            input_to_every_layer: every,
            activation: act,
            latent_dim: 5,
            context_dim: 7,
            log_scale_offset: -3.0,
            ..DenseConfig::default()
        };
        for likelihood in [
            Likelihood::Bernoulli,
            Likelihood::DiscretizedLogistic { num_bins: 256 },
        ] {
            let store = ParamStore::new(14);
            let vb = store.var_builder(DType::F32, &Device::Cpu);
            let enc = dense_encoder(&cfg, vb.pp("encoder")).unwrap();
            let dec = dense_decoder(&cfg, likelihood, vb.pp("decoder")).unwrap();
            check_pair(&enc, &dec, &store, 784).unwrap();
        }
    }
    // The log-scale offset shifts the head.
    let store = ParamStore::new(15);
    let cfg = DenseConfig {
        log_scale_offset: -3.0,
        ..DenseConfig::default()
    };
    let enc = dense_encoder(&cfg, store.var_builder(DType::F32, &Device::Cpu)).unwrap();
    let mean_log_scale = enc
        .forward(&binary_images(4, 784, 1), Pass::Eval)
        .unwrap()
        .log_scale
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((mean_log_scale + 3.0).abs() < 1.0, "{mean_log_scale}");
}

#[test]
fn resnet_networks() {
    let small = ResNetConfig {
        stages: vec![
            Stage {
                channels: 6,
                blocks: 2,
                downsample: true,
            },
            Stage {
                channels: 8,
                blocks: 1,
                downsample: true,
            },
            Stage {
                channels: 8,
                blocks: 1,
                downsample: false,
            },
        ],
        latent_dim: 4,
        context_dim: 10,
        ..ResNetConfig::reference_tf()
    };
    for (norm, upsample) in [
        (Normalization::Weight, Upsample::TransposedConv),
        (Normalization::Batch, Upsample::Nearest),
        (Normalization::None, Upsample::TransposedConv),
    ] {
        let cfg = ResNetConfig {
            norm,
            upsample,
            ..small.clone()
        };
        let store = ParamStore::new(16);
        let vb = store.var_builder(DType::F32, &Device::Cpu);
        let enc = resnet_encoder(&cfg, vb.pp("encoder")).unwrap();
        let dec = resnet_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder")).unwrap();
        check_pair(&enc, &dec, &store, 784).unwrap();
    }
    // The IAF paper's three stride-2 stages (28 -> 14 -> 7 -> 4) and dense layer, narrowed.
    let iaf = ResNetConfig {
        stages: vec![
            Stage {
                channels: 4,
                blocks: 1,
                downsample: true
            };
            3
        ],
        dense_units: Some(20),
        context_dim: 6,
        ..ResNetConfig::iaf_paper()
    };
    assert_eq!(iaf.spatial_sizes(), vec![28, 14, 7, 4]);
    let store = ParamStore::new(17);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let enc = resnet_encoder(&iaf, vb.pp("encoder")).unwrap();
    let dec = resnet_decoder(
        &iaf,
        Likelihood::DiscretizedLogistic { num_bins: 256 },
        vb.pp("decoder"),
    )
    .unwrap();
    check_pair(&enc, &dec, &store, 784).unwrap();
    // Full-size presets build and run.
    for cfg in [ResNetConfig::reference_tf(), ResNetConfig::iaf_paper()] {
        let store = ParamStore::new(18);
        let vb = store.var_builder(DType::F32, &Device::Cpu);
        let enc = resnet_encoder(&cfg, vb.pp("encoder")).unwrap();
        let out = enc.forward(&binary_images(2, 784, 2), Pass::Eval).unwrap();
        assert_eq!(out.context.dims(), &[2, cfg.context_dim]);
        let dec = resnet_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder")).unwrap();
        assert_eq!(
            dec.forward(&out.loc, Pass::Eval)
                .unwrap()
                .mean()
                .unwrap()
                .dims(),
            &[2, 784]
        );
    }
}

#[test]
fn gated_networks() {
    let cfg = GatedConfig {
        latent_dim: 6,
        context_dim: 12,
        ..GatedConfig::default()
    };
    let store = ParamStore::new(19);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let enc = gated_encoder(&cfg, vb.pp("encoder")).unwrap();
    let dec = gated_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder")).unwrap();
    check_pair(&enc, &dec, &store, 784).unwrap();
    let bad = GatedConfig {
        image: ImageShape {
            channels: 1,
            height: 32,
            width: 32,
        },
        ..cfg
    };
    assert!(gated_encoder(&bad, vb.pp("x")).is_err());
}

#[test]
fn same_seed_same_network() {
    let out = |seed| {
        let store = ParamStore::new(seed);
        let enc = dense_encoder(
            &DenseConfig::default(),
            store.var_builder(DType::F32, &Device::Cpu),
        )
        .unwrap();
        enc.forward(&binary_images(2, 784, 0), Pass::Eval)
            .unwrap()
            .loc
            .to_vec2::<f32>()
            .unwrap()
    };
    assert_eq!(out(3), out(3));
    assert_ne!(out(3), out(4));
}

/// The layers behind `ours` (f32, parameters in `store`) against `formula` (f64, given the
/// input and the parameters `names`): the output and the gradients of the input and of each
/// named parameter, of a fixed random weighting of the output. Every parameter but the
/// weights is first set to random values around 1 (so that `g` and biases matter).
fn check_against_formula(
    store: &ParamStore,
    names: &[&str],
    x: &Tensor,
    seed: u64,
    ours: impl Fn(&Tensor) -> Tensor,
    formula: impl Fn(&Tensor, &[&Tensor]) -> Result<Tensor>,
) {
    for (i, (name, var)) in store.sorted_vars().into_iter().enumerate() {
        if !name.ends_with(".weight") {
            let v = randn(var.shape().clone(), seed + i as u64)
                .affine(0.3, 1.0)
                .unwrap();
            store.set(&name, &v).unwrap();
        }
    }
    let find = |n: &str| {
        store
            .sorted_vars()
            .into_iter()
            .find(|(k, _)| k == n)
            .unwrap()
            .1
    };
    let vars: Vec<_> = names.iter().map(|n| find(n)).collect();
    let xv = candle::Var::from_tensor(x).unwrap();
    let y = ours(xv.as_tensor()).to_dtype(DType::F64).unwrap();
    let weights = randn(y.shape().clone(), seed + 100)
        .to_dtype(DType::F64)
        .unwrap();
    let grads = (&y * &weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let mut got = vec![y, grads.get(xv.as_tensor()).unwrap().clone()];
    got.extend(
        vars.iter()
            .map(|v| grads.get(v.as_tensor()).unwrap().clone()),
    );
    let f64var = |t: &Tensor| candle::Var::from_tensor(&t.to_dtype(DType::F64).unwrap()).unwrap();
    let x64 = f64var(x);
    let p64: Vec<_> = vars.iter().map(|v| f64var(v.as_tensor())).collect();
    let p: Vec<&Tensor> = p64.iter().map(|v| v.as_tensor()).collect();
    let y64 = formula(x64.as_tensor(), &p).unwrap();
    let grads = (&y64 * &weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let mut want = vec![y64.clone(), grads.get(x64.as_tensor()).unwrap().clone()];
    want.extend(p.iter().map(|v| grads.get(v).unwrap().clone()));
    for ((a, e), what) in got.iter().zip(&want).zip(["y", "dx"].iter().chain(names)) {
        let a = a.to_dtype(DType::F64).unwrap();
        let scale = e
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        eprintln!("{what}: max |expected| {scale:.3e}");
        assert_all_close(&a, e, 1e-3, 1e-3 * scale).unwrap();
    }
}

/// `t · g / |v| + b` per output channel (axis 1 of `t`), `|v|` summed over `axes`.
fn weight_norm(t: Tensor, v: &Tensor, g: &Tensor, b: &Tensor, axes: &[usize]) -> Result<Tensor> {
    let norm = v.sqr()?.sum(axes)?.sqrt()?;
    let scale = (g / norm)?.reshape((1, (), 1, 1))?;
    t.broadcast_mul(&scale)?
        .broadcast_add(&b.reshape((1, (), 1, 1))?)
}

/// The IAF paper's ResNet block, `x + 0.1·wn(conv(elu(wn(conv(elu(x))))))`, against that
/// formula written with candle's own f64 `elu` and `conv2d` from the block's parameters.
/// Eight images of 16 maps run the fused path (pre-activated convolutions with the weight
/// norm and the residual scale folded into the kernels; direct where the CPU has AVX-512).
#[test]
fn resnet_block_matches_its_formula() {
    let store = ParamStore::new(20);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let cfg = ResBlockConfig::default();
    let block = res_block(16, 16, cfg, vb.pp("b")).unwrap();
    let names = [
        "b.conv1.weight",
        "b.conv1.g",
        "b.conv1.bias",
        "b.conv2.weight",
        "b.conv2.g",
        "b.conv2.bias",
    ];
    let wn_conv = |h: &Tensor, p: &[&Tensor]| {
        weight_norm(
            h.elu(1.0)?.conv2d(p[0], 1, 1, 1, 1)?,
            p[0],
            p[1],
            p[2],
            &[1, 2, 3],
        )
    };
    check_against_formula(
        &store,
        &names,
        &randn((8, 16, 14, 14), 21),
        30,
        |x| block.forward(x, Pass::Train).unwrap(),
        |x, p| x + (wn_conv(&wn_conv(x, &p[..3])?, &p[3..])? * cfg.residual_scale)?,
    );
}

/// Weight-normalised convolution and transposed convolution layers (the gated-conv VAE's,
/// 5x5 at stride 2) against `t · g / |v| + b` written with candle's own f64 ops, `|v|` per
/// output channel (axis 0 of a convolution's kernel, axis 1 of a transposed one's), on the
/// fused path (weight norm folded into the kernel; direct where the CPU has AVX-512).
#[test]
fn weight_normalised_convolutions_match_their_formula() {
    let store = ParamStore::new(24);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let config = ConvConfig {
        padding: 2,
        stride: 2,
        norm: Normalization::Weight,
        ..ConvConfig::default()
    };
    let conv = conv2d(6, 16, 5, config, vb.pp("c")).unwrap();
    let up_config = ConvConfig {
        output_padding: 1,
        ..config
    };
    let up = conv_transpose2d(16, 6, 5, up_config, vb.pp("t")).unwrap();
    let names = ["c.weight", "c.g", "c.bias", "t.weight", "t.g", "t.bias"];
    let ours = |x: &Tensor| {
        let h = conv.forward(x, Pass::Train).unwrap();
        assert_eq!(h.dims(), &[8, 16, 7, 7]);
        up.forward(&h, Pass::Train).unwrap()
    };
    check_against_formula(
        &store,
        &names,
        &randn((8, 6, 14, 14), 25),
        40,
        ours,
        |x, p| {
            let h = weight_norm(x.conv2d(p[0], 2, 2, 1, 1)?, p[0], p[1], p[2], &[1, 2, 3])?;
            weight_norm(
                h.conv_transpose2d(p[3], 2, 1, 2, 1)?,
                p[3],
                p[4],
                p[5],
                &[0, 2, 3],
            )
        },
    );
}

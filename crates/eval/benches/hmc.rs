//! One leapfrog step (one `∇_z log p(x, z)` through the IWAE paper's dense decoder,
//! 50-200-200-784 with a Bernoulli likelihood) for 100 data points × 16 chains, with the
//! decoder over plain tensors (as `train-iaf eval` builds it) against the same decoder over
//! trainable `Var`s (whose parameter gradients are computed and thrown away). Batch leapfrog
//! steps per second = 1 / time per iteration; criterion also prints chain-steps per second.

use candle::{DType, Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_eval::{AisStart, PathPoint, VaePath, leapfrog};
use vaekit_flows::FlowChain;
use vaekit_nets::{DenseConfig, Likelihood, ParamStore, dense_decoder, dense_encoder};
use vaekit_objectives::{DecoderModel, EncoderFlow};

const BATCH: usize = 100;
const CHAINS: usize = 16;

fn leapfrog_dense(c: &mut Criterion) {
    let dev = Device::Cpu;
    let cfg = DenseConfig::default();
    let store = ParamStore::new(0);
    let vb = store.var_builder(DType::F32, &dev);
    let q = EncoderFlow::new(
        dense_encoder(&cfg, vb.pp("encoder")).expect("encoder"),
        FlowChain::default(),
    );
    let trainable = DecoderModel::new(
        dense_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder")).expect("decoder"),
        DType::F32,
        &dev,
    )
    .expect("model");
    let frozen_vb = store.frozen_var_builder(DType::F32, &dev);
    let frozen = DecoderModel::new(
        dense_decoder(&cfg, Likelihood::Bernoulli, frozen_vb.pp("decoder")).expect("decoder"),
        DType::F32,
        &dev,
    )
    .expect("model");
    let mut noise = SeededNoise::new(1);
    let x = noise
        .uniform(&(BATCH, 784).into(), DType::F32, &dev)
        .expect("x")
        .ge(0.5)
        .expect("ge")
        .to_dtype(DType::F32)
        .expect("cast");
    let eps = noise
        .standard_normal(&(BATCH, CHAINS, 50).into(), DType::F32, &dev)
        .expect("eps");
    let momentum = noise
        .standard_normal(&(BATCH, CHAINS, 50).into(), DType::F32, &dev)
        .expect("momentum");
    let step = Tensor::full(0.05f32, (BATCH, 1, 1), &dev).expect("step");
    let mut group = c.benchmark_group("cpu/hais_leapfrog_dense_b100_c16");
    group.sample_size(20);
    // Criterion prints chain-steps per second ("elem/s") beside the time per batch step.
    group.throughput(Throughput::Elements((BATCH * CHAINS) as u64));
    for (name, model) in [("frozen", &frozen), ("trainable_vars", &trainable)] {
        let path = VaePath::new(&q, model, &x, AisStart::Prior).expect("path");
        let point = PathPoint::evaluate(&path, &eps).expect("point");
        group.bench_function(name, |b| {
            b.iter(|| {
                black_box(leapfrog(&path, &point, &momentum, 0.5, &step, 1).expect("leapfrog"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, leapfrog_dense);
criterion_main!(benches);

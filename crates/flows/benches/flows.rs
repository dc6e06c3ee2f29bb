//! Forward + backward of one IAF step at the IAF paper's size: batch 100, latent 64,
//! cMADE hidden [1920, 1920] with context 1920, weight norm, gated update.

use candle::{DType, Device, Shape};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_flows::{Flow, IafVariant, MadeConfig, iaf_step};
use vaekit_nets::{ParamStore, Pass};

fn iaf(c: &mut Criterion) {
    let dev = Device::Cpu;
    let store = ParamStore::new(0);
    let cfg = MadeConfig::default(); // 64, [1920, 1920], context 1920, weight norm
    let step = iaf_step(
        &cfg,
        IafVariant::Gated { forget_bias: 1.0 },
        store.var_builder(DType::F32, &dev),
    )
    .expect("step");
    let mut noise = SeededNoise::new(1);
    let z = noise
        .standard_normal(&Shape::from((100, 64)), DType::F32, &dev)
        .expect("z");
    let h = noise
        .standard_normal(&Shape::from((100, 1920)), DType::F32, &dev)
        .expect("h");
    let mut group = c.benchmark_group("cpu/iaf_step");
    group.sample_size(10);
    group.bench_function("fwd_bwd_b100_d64_w1920", |b| {
        b.iter(|| {
            let out = step.forward(&z, Some(&h), Pass::Train).expect("forward");
            let loss = (out.value.sqr().expect("sqr").sum_all().expect("sum")
                + out.log_det_jacobian.sum_all().expect("sum"))
            .expect("add");
            black_box(loss.backward().expect("backward"));
        })
    });
    group.finish();
}

criterion_group!(benches, iaf);
criterion_main!(benches);

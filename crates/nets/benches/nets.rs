//! Forward + backward of a ResNet block (batch 32, 64 maps, 14x14 and 28x28) and of a 3x3
//! 64 -> 64 convolution through im2col + GEMM against candle's own conv2d and its backward.

use candle::{DType, Device, Shape, Tensor, Var};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_nets::{ConvGeometry, ParamStore, Pass, ResBlockConfig, conv2d_gemm, res_block};

fn input(shape: (usize, usize, usize, usize), seed: u64) -> Tensor {
    SeededNoise::new(seed)
        .standard_normal(&Shape::from(shape), DType::F32, &Device::Cpu)
        .expect("input")
}

fn resnet_block(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu/res_block");
    group.sample_size(10);
    for side in [14, 28] {
        let store = ParamStore::new(0);
        let block = res_block(
            64,
            64,
            ResBlockConfig::default(),
            store.var_builder(DType::F32, &Device::Cpu),
        )
        .expect("block");
        let x = input((32, 64, side, side), 1);
        group.bench_function(format!("fwd_bwd_b32_c64_{side}x{side}"), |b| {
            b.iter(|| {
                black_box(
                    block
                        .forward(&x, Pass::Train)
                        .expect("forward")
                        .sqr()
                        .expect("sqr")
                        .sum_all()
                        .expect("sum")
                        .backward()
                        .expect("backward"),
                )
            })
        });
    }
    group.finish();
}

fn conv_backward(c: &mut Criterion) {
    let mut group = c.benchmark_group("cpu/conv3x3_c64_b32_14x14_fwd_bwd");
    group.sample_size(10);
    let x = Var::from_tensor(&input((32, 64, 14, 14), 2)).expect("x");
    let w = Var::from_tensor(&input((64, 64, 3, 3), 3).affine(0.05, 0.0).expect("w")).expect("w");
    let geometry = ConvGeometry {
        padding: 1,
        stride: 1,
        dilation: 1,
    };
    group.bench_function("vaekit_im2col_gemm", |b| {
        b.iter(|| {
            black_box(
                conv2d_gemm(x.as_tensor(), w.as_tensor(), geometry)
                    .expect("conv")
                    .sum_all()
                    .expect("sum")
                    .backward()
                    .expect("backward"),
            )
        })
    });
    group.bench_function("candle_conv2d", |b| {
        b.iter(|| {
            black_box(
                x.as_tensor()
                    .conv2d(w.as_tensor(), 1, 1, 1, 1)
                    .expect("conv")
                    .sum_all()
                    .expect("sum")
                    .backward()
                    .expect("backward"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, resnet_block, conv_backward);
criterion_main!(benches);

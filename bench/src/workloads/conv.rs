//! The convolution workloads: a 3x3 convolution, the IAF paper's ResNet block and a stride-2
//! transposed convolution, each forward + backward of the sum of the output.

use super::Step;
use candle::{DType, Device, Shape, Tensor, Var};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_nets::{
    ConvConfig, ConvGeometry, Normalization, ParamStore, Pass, ResBlockConfig, conv_transpose2d,
    conv2d_gemm, res_block,
};

fn normal(shape: (usize, usize, usize, usize), seed: u64, dev: &Device) -> anyhow::Result<Tensor> {
    Ok(SeededNoise::new(seed).standard_normal(&Shape::from(shape), DType::F32, dev)?)
}

/// 3x3 64 -> 64, pad 1, batch 32 at 14x14, gradients for input and weight (vaekit's
/// convolution layers' path: im2col and one GEMM each way).
pub fn conv3x3(dev: &Device) -> anyhow::Result<Step> {
    let x = Var::from_tensor(&normal((32, 64, 14, 14), 2, dev)?)?;
    let w = Var::from_tensor(&normal((64, 64, 3, 3), 3, dev)?.affine(0.05, 0.0)?)?;
    let geometry = ConvGeometry {
        padding: 1,
        stride: 1,
        dilation: 1,
    };
    Ok(Box::new(move || {
        conv2d_gemm(x.as_tensor(), w.as_tensor(), geometry)?
            .sum_all()?
            .backward()?;
        Ok(())
    }))
}

/// The ResNet block of the IAF paper, 64 maps, batch 32 at 14x14, input gradient included.
pub fn resblock(dev: &Device) -> anyhow::Result<Step> {
    let store = ParamStore::new(0);
    let block = res_block(
        64,
        64,
        ResBlockConfig::default(),
        store.var_builder(DType::F32, dev),
    )?;
    let x = Var::from_tensor(&normal((32, 64, 14, 14), 1, dev)?)?;
    Ok(Box::new(move || {
        block
            .forward(x.as_tensor(), Pass::Train)?
            .sum_all()?
            .backward()?;
        Ok(())
    }))
}

/// Transposed 3x3 stride 2, 7x7 -> 14x14, 64 -> 64, with bias, input gradient included.
pub fn conv_transpose(dev: &Device) -> anyhow::Result<Step> {
    let store = ParamStore::new(0);
    let config = ConvConfig {
        padding: 1,
        stride: 2,
        output_padding: 1,
        norm: Normalization::None,
        init_scale: 1.0,
    };
    let layer = conv_transpose2d(64, 64, 3, config, store.var_builder(DType::F32, dev))?;
    let x = Var::from_tensor(&normal((32, 64, 7, 7), 4, dev)?)?;
    Ok(Box::new(move || {
        layer
            .forward(x.as_tensor(), Pass::Train)?
            .sum_all()?
            .backward()?;
        Ok(())
    }))
}

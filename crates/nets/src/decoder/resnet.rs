//! The ResNet decoder, mirroring [`crate::ResNetEncoder`].

use super::{Decoder, DecoderOutput, Likelihood};
use crate::conv::{Conv2d, ConvConfig, conv2d};
use crate::encoder::{ResNetConfig, Upsample};
use crate::linear::{Linear, LinearConfig, linear};
use crate::pass::Pass;
use crate::resnet_block::{ResBlock, Resample, res_block};
use candle::{Result, Tensor};
use candle_nn::VarBuilder;

/// A ResNet decoder: optional dense layer (`dense`), a linear map to the last stage's
/// feature maps (`project`), the stages in reverse (`stage{i}.block{j}`, the last block of
/// each downsampling stage upsampling back to the encoder's size), and an output convolution
/// (`out`).
///
/// # Shapes
/// `z: [N, latent_dim]` gives parameters over `[N, C·H·W]`.
#[derive(Debug, Clone)]
pub struct ResNetDecoder {
    dense: Option<Linear>,
    project: Linear,
    blocks: Vec<ResBlock>,
    out: Conv2d,
    likelihood: Likelihood,
    config: ResNetConfig,
}

/// Builds a ResNet decoder at `vb`'s path.
///
/// # Errors
/// An invalid configuration; variable creation errors.
pub fn resnet_decoder(
    config: &ResNetConfig,
    likelihood: Likelihood,
    vb: VarBuilder,
) -> Result<ResNetDecoder> {
    config.validate()?;
    let lin = LinearConfig {
        norm: config.norm,
        init_scale: 1.0,
    };
    let mut width = config.latent_dim;
    let dense = match config.dense_units {
        Some(units) => {
            let layer = linear(width, units, lin, vb.pp("dense"))?;
            width = units;
            Some(layer)
        }
        None => None,
    };
    let project = linear(width, config.final_features(), lin, vb.pp("project"))?;
    let sizes = config.spatial_sizes();
    let mut blocks = Vec::new();
    let n = config.stages.len();
    for i in (0..n).rev() {
        let stage = config.stages[i];
        let target_channels = if i == 0 {
            stage.channels
        } else {
            config.stages[i - 1].channels
        };
        for j in 0..stage.blocks {
            let last = j + 1 == stage.blocks;
            let resample = match (last && stage.downsample, config.upsample) {
                (false, _) => Resample::Same,
                (true, Upsample::TransposedConv) => Resample::UpTransposed {
                    output_padding: sizes[i] + 1 - 2 * sizes[i + 1],
                },
                (true, Upsample::Nearest) => Resample::UpNearest { size: sizes[i] },
            };
            let out_channels = if last {
                target_channels
            } else {
                stage.channels
            };
            blocks.push(res_block(
                stage.channels,
                out_channels,
                config.block(resample),
                vb.pp(format!("stage{i}")).pp(format!("block{j}")),
            )?);
        }
    }
    let out_cfg = ConvConfig {
        padding: config.kernel / 2,
        ..ConvConfig::default()
    };
    let k = likelihood.outputs_per_pixel() * config.image.channels;
    let out = conv2d(
        config.stages[0].channels,
        k,
        config.kernel,
        out_cfg,
        vb.pp("out"),
    )?;
    Ok(ResNetDecoder {
        dense,
        project,
        blocks,
        out,
        likelihood,
        config: config.clone(),
    })
}

impl Decoder for ResNetDecoder {
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<DecoderOutput> {
        let act = self.config.activation;
        let mut h = z.clone();
        if let Some(dense) = &self.dense {
            h = act.apply(&dense.forward(&h, pass)?)?;
        }
        let sizes = self.config.spatial_sizes();
        let side = sizes[sizes.len() - 1];
        let channels = self.config.stages[self.config.stages.len() - 1].channels;
        let mut h = self
            .project
            .forward(&h, pass)?
            .reshape((z.dim(0)?, channels, side, side))?;
        for block in &self.blocks {
            h = block.forward(&h, pass)?;
        }
        let raw = self.out.forward(&act.apply(&h)?, pass)?;
        let n = raw.dim(0)?;
        // [N, k·C, H, W] -> [N, k, C·H·W]
        let raw = raw.reshape((
            n,
            self.likelihood.outputs_per_pixel(),
            self.config.image.pixels(),
        ))?;
        DecoderOutput::from_raw(&raw, self.likelihood)
    }
    fn latent_dim(&self) -> usize {
        self.config.latent_dim
    }
}

//! The ResNet encoder of the IAF paper and of its reference TF implementation.

use super::{Encoder, EncoderOutput, GaussianHead};
use crate::activation::Activation;
use crate::conv::{Conv2d, ConvConfig, conv2d};
use crate::linear::{Linear, LinearConfig, linear};
use crate::norm::Normalization;
use crate::pass::Pass;
use crate::resnet_block::{ResBlock, ResBlockConfig, Resample, res_block};
use candle::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// The shape of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
}

impl ImageShape {
    /// 1 x 28 x 28.
    pub const MNIST: ImageShape = ImageShape {
        channels: 1,
        height: 28,
        width: 28,
    };

    /// Pixels per image, `C·H·W`.
    pub fn pixels(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// `[B, C·H·W]` (or already `[B, C, H, W]`) as `[B, C, H, W]`.
    ///
    /// # Errors
    /// A size that does not match.
    pub fn to_images(&self, x: &Tensor) -> Result<Tensor> {
        let b = x.dim(0)?;
        if x.elem_count() != b * self.pixels() {
            candle::bail!(
                "expected images of {:?} ({} values each), got a tensor of shape {:?}",
                self,
                self.pixels(),
                x.dims()
            );
        }
        x.reshape((b, self.channels, self.height, self.width))
    }
}

/// One resolution of a ResNet: `blocks` blocks of `channels` maps; the first block halves
/// the resolution when `downsample`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// Feature maps.
    pub channels: usize,
    /// Number of blocks (>= 1).
    pub blocks: usize,
    /// Whether the stage's first block uses stride 2.
    pub downsample: bool,
}

/// How the decoder doubles the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Upsample {
    /// Stride-2 transposed convolutions.
    #[default]
    TransposedConv,
    /// Nearest-neighbour upsampling then a convolution (no checkerboard artefacts).
    Nearest,
}

/// Configuration of the ResNet encoder and decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResNetConfig {
    /// Input images.
    pub image: ImageShape,
    /// Stages from the input side.
    pub stages: Vec<Stage>,
    /// Square kernel size of every convolution (odd).
    pub kernel: usize,
    /// Normalisation of the convolutions.
    pub norm: Normalization,
    /// Activation.
    pub activation: Activation,
    /// Scale of the residual branch.
    pub residual_scale: f64,
    /// Optional dense layer between the last feature maps and the heads.
    pub dense_units: Option<usize>,
    /// Decoder upsampling.
    pub upsample: Upsample,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Context dimension (0 for none).
    pub context_dim: usize,
    /// Added to the log-scale head's output.
    pub log_scale_offset: f64,
}

impl ResNetConfig {
    /// The reference TF implementation's MNIST setting: 6 blocks of 64 maps, 3x3 kernels, 2
    /// downsampling steps (28 -> 14 -> 7), weight norm, ELU, 64 latents, context 1920.
    pub fn reference_tf() -> Self {
        Self {
            image: ImageShape::MNIST,
            stages: vec![
                Stage {
                    channels: 64,
                    blocks: 2,
                    downsample: true,
                },
                Stage {
                    channels: 64,
                    blocks: 2,
                    downsample: true,
                },
                Stage {
                    channels: 64,
                    blocks: 2,
                    downsample: false,
                },
            ],
            kernel: 3,
            norm: Normalization::Weight,
            activation: Activation::Elu,
            residual_scale: 0.1,
            dense_units: None,
            upsample: Upsample::TransposedConv,
            latent_dim: 64,
            context_dim: 1920,
            log_scale_offset: 0.0,
        }
    }

    /// The IAF paper's MNIST setting: three stride-2 blocks at 16, 32, 32 maps
    /// (28 -> 14 -> 7 -> 4), then a 450-unit dense layer.
    pub fn iaf_paper() -> Self {
        Self {
            stages: vec![
                Stage {
                    channels: 16,
                    blocks: 1,
                    downsample: true,
                },
                Stage {
                    channels: 32,
                    blocks: 1,
                    downsample: true,
                },
                Stage {
                    channels: 32,
                    blocks: 1,
                    downsample: true,
                },
            ],
            dense_units: Some(450),
            latent_dim: 32,
            context_dim: 450,
            ..Self::reference_tf()
        }
    }

    /// Spatial size after the stem and after each stage: `[H, ...]` (square images).
    pub fn spatial_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![self.image.height];
        for stage in &self.stages {
            let last = sizes[sizes.len() - 1];
            sizes.push(if stage.downsample {
                last.div_ceil(2)
            } else {
                last
            });
        }
        sizes
    }

    /// Feature count after the last stage, `C · h · w`.
    pub fn final_features(&self) -> usize {
        let s = self.spatial_sizes();
        let side = s[s.len() - 1];
        self.stages
            .last()
            .map_or(self.image.channels, |st| st.channels)
            * side
            * side
    }

    pub(crate) fn block(&self, resample: Resample) -> ResBlockConfig {
        ResBlockConfig {
            kernel: self.kernel,
            resample,
            norm: self.norm,
            activation: self.activation,
            residual_scale: self.residual_scale,
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.image.height != self.image.width {
            candle::bail!("ResNetConfig: square images only, got {:?}", self.image);
        }
        if self.stages.is_empty() || self.stages.iter().any(|s| s.blocks == 0 || s.channels == 0) {
            candle::bail!(
                "ResNetConfig: need at least one stage, each with blocks >= 1 and channels >= 1"
            );
        }
        if self.kernel.is_multiple_of(2) || self.latent_dim == 0 {
            candle::bail!("ResNetConfig: kernel must be odd and latent_dim > 0");
        }
        Ok(())
    }
}

/// A ResNet encoder: a stem convolution (`stem`), the stages' blocks (`stage{i}.block{j}`),
/// an optional dense layer (`dense`) and the heads (`head.*`).
///
/// # Shapes
/// `x: [B, C·H·W]` gives loc, log_scale `[B, latent_dim]`, context `[B, context_dim]`.
///
/// # References
/// Kingma et al., "Improved variational inference with inverse autoregressive flow",
/// arXiv 1606.04934, appendix C.
#[derive(Debug, Clone)]
pub struct ResNetEncoder {
    stem: Conv2d,
    blocks: Vec<ResBlock>,
    dense: Option<Linear>,
    head: GaussianHead,
    config: ResNetConfig,
}

/// Builds a ResNet encoder at `vb`'s path.
///
/// # Errors
/// An invalid configuration; variable creation errors.
pub fn resnet_encoder(config: &ResNetConfig, vb: VarBuilder) -> Result<ResNetEncoder> {
    config.validate()?;
    let pad = config.kernel / 2;
    let stem_cfg = ConvConfig {
        padding: pad,
        norm: config.norm,
        ..ConvConfig::default()
    };
    let stem = conv2d(
        config.image.channels,
        config.stages[0].channels,
        config.kernel,
        stem_cfg,
        vb.pp("stem"),
    )?;
    let mut blocks = Vec::new();
    let mut channels = config.stages[0].channels;
    for (i, stage) in config.stages.iter().enumerate() {
        for j in 0..stage.blocks {
            let resample = if j == 0 && stage.downsample {
                Resample::Down
            } else {
                Resample::Same
            };
            blocks.push(res_block(
                channels,
                stage.channels,
                config.block(resample),
                vb.pp(format!("stage{i}")).pp(format!("block{j}")),
            )?);
            channels = stage.channels;
        }
    }
    let mut features = config.final_features();
    let dense = match config.dense_units {
        Some(units) => {
            let layer = linear(
                features,
                units,
                LinearConfig {
                    norm: config.norm,
                    init_scale: 1.0,
                },
                vb.pp("dense"),
            )?;
            features = units;
            Some(layer)
        }
        None => None,
    };
    let head = GaussianHead::new(
        features,
        config.latent_dim,
        config.context_dim,
        config.log_scale_offset,
        vb.pp("head"),
    )?;
    Ok(ResNetEncoder {
        stem,
        blocks,
        dense,
        head,
        config: config.clone(),
    })
}

impl Encoder for ResNetEncoder {
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<EncoderOutput> {
        let mut h = self.stem.forward(&self.config.image.to_images(x)?, pass)?;
        for block in &self.blocks {
            h = block.forward(&h, pass)?;
        }
        let mut features = self.config.activation.apply(&h)?.flatten_from(1)?;
        if let Some(dense) = &self.dense {
            features = self
                .config
                .activation
                .apply(&dense.forward(&features, pass)?)?;
        }
        self.head.forward(&features, pass)
    }
    fn latent_dim(&self) -> usize {
        self.head.latent_dim()
    }
    fn context_dim(&self) -> usize {
        self.config.context_dim
    }
}

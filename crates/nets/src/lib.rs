//! # vaekit-nets
//!
//! Layers candle lacks and the VAE networks built from them.
//!
//! - [`ParamStore`]: a `VarBuilder` backend that initialises every parameter from a seeded
//!   noise stream (candle's own initialisers cannot be seeded).
//! - Layers: [`Linear`] (optionally masked, for MADE), [`Conv2d`] and [`ConvTranspose2d`]
//!   (one small GEMM per image around im2col / col2im: [`conv2d_gemm`], [`conv_transpose2d_gemm`];
//!   f32 "same" convolutions run a direct AVX-512 kernel instead where the CPU has one),
//!   each with
//!   [`Normalization`] none / batch / weight (weight recomputed every forward, data-dependent
//!   initialisation through [`Pass::DataInit`]); [`GatedConv2d`], [`GatedConvTranspose2d`];
//!   [`ResBlock`].
//! - Networks: dense, ResNet and gated-conv encoders and decoders ([`Encoder`], [`Decoder`]),
//!   each with a serde config; their parameter paths are the checkpoint format.
//!
//! Layers take a [`Pass`]: `Train`, `Eval` or `DataInit(&store)`.

mod activation;
mod conv;
mod decoder;
mod encoder;
mod gated;
mod linear;
mod linear_act;
mod norm;
mod params;
mod pass;
mod resnet_block;

pub use activation::Activation;
pub use conv::{Conv2d, ConvConfig, ConvTranspose2d, conv_transpose2d, conv2d};
pub use decoder::{
    Decoder, DecoderOutput, DenseDecoder, GatedDecoder, Likelihood, ResNetDecoder, dense_decoder,
    gated_decoder, resnet_decoder,
};
pub use encoder::{
    DenseConfig, DenseEncoder, Encoder, EncoderOutput, GatedConfig, GatedEncoder, ImageShape,
    ResNetConfig, ResNetEncoder, Stage, Upsample, dense_encoder, gated_encoder, resnet_encoder,
};
pub use gated::{GatedConv2d, GatedConvTranspose2d, gated_conv_transpose2d, gated_conv2d};
pub use linear::{Linear, LinearConfig, linear, masked_linear};
pub use norm::Normalization;
pub use params::{NON_TRAINABLE_SUFFIXES, ParamStore, is_trainable};
pub use pass::Pass;
pub use resnet_block::{ResBlock, ResBlockConfig, Resample, res_block};
pub use vaekit_ops::{ConvGeometry, conv_transpose2d_gemm, conv2d_gemm};

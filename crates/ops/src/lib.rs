//! # vaekit-ops
//!
//! vaekit's CPU kernels, each a candle op with its own backward, called by the layers of
//! `vaekit-nets`. Each public function takes tensors on any device and chooses inside itself
//! between the CPU kernel and the equivalent composition of candle primitives (other
//! devices, other dtypes), so a layer has one code path.
//!
//! - Matrix products: [`linear_t`] (`x Wᵀ + b`, the bias added in the GEMM's output pass;
//!   [`LinearT`] with a fused activation), [`matmul_t`] (`x Wᵀ`; the backward computes only
//!   the operand gradients autograd tracks), on `gemm` with vaekit's column blocking.
//! - Convolutions: [`conv2d_gemm`] and [`conv_transpose2d_gemm`] (one GEMM per image around
//!   im2col / col2im, or a direct AVX-512 kernel for odd kernels with "same" padding), and
//!   [`conv2d_bias`] / [`conv_transpose2d_bias`] with the bias, weight norm, a pre-activation
//!   and a residual scale fused in; [`ConvGeometry`] describes one.
//! - Per-channel passes: [`bias_add`], [`channel_affine`]; weight norm's [`row_norm`] and the
//!   MADE's [`masked`] weights.
//! - [`linear_bernoulli_sum`]: the decoder's output layer and its Bernoulli log-likelihood as
//!   one op, whose logits never enter the graph.
//! - The optimizer's passes: [`adam_update`] (Adam / Adamax in place, [`AdamStep`]) and the
//!   gradient norm's [`squared_norm`].
//! - [`fma_peak_gflops`]: the CPU's measured FMA peak (the widest FMAs it has, [`fma_isa`]),
//!   which every performance figure is quoted against.
//! - The diagonal Gaussian's hot path: [`normal_log_prob_sum`],
//!   [`standard_normal_log_prob_sum`] and [`normal_reparameterize`] (`μ + σ ε` with
//!   `log q` in the same pass).
//!
//! Every kernel is tested against its candle composition (values and gradients), and the
//! SIMD paths against the portable ones. CPU kernels and `unsafe` live here (and, until they
//! move, in `vaekit-core`'s numerics); the modelling crates call these functions.

mod adam_update;
mod channel_affine;
mod conv_bias;
mod conv_direct;
mod conv_gemm;
mod conv_grads;
mod gemm;
mod im2col;
mod im2col_phase;
mod linear_bernoulli;
mod matmul;
mod matmul_grads;
mod normal_fused;
mod peak;
mod squared_norm;
mod weight_ops;

pub use adam_update::{AdamStep, adam_update, adam_update_applies};
pub use channel_affine::{bias_add, channel_affine};
pub use conv_bias::{conv_transpose2d_bias, conv2d_bias};
pub use conv_gemm::{conv_transpose2d_gemm, conv2d_gemm};
pub use im2col::ConvGeometry;
pub use linear_bernoulli::linear_bernoulli_sum;
pub use matmul::{LinearT, linear_t, matmul_t};
pub use normal_fused::{
    HALF_LN_2PI, normal_log_prob_sum, normal_reparameterize, standard_normal_log_prob_sum,
};
pub use peak::{fma_isa, fma_peak_gflops};
pub use squared_norm::squared_norm;
pub use weight_ops::{masked, row_norm};

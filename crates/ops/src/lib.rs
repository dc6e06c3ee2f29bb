//! # vaekit-ops
//!
//! vaekit's kernels, at the bottom of its crate graph: each a candle op with its own
//! backward, called by the modelling crates (which hold no `unsafe` and no storage matches),
//! and the thread pool they run on. Each public function takes tensors on any device and chooses inside itself
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
//!   MADE's [`masked`] weights, and [`weight_norm_linear`]: a weight-normalised (masked)
//!   layer's product with its backward as one op.
//! - [`linear_bernoulli_sum`]: the decoder's output layer and its Bernoulli log-likelihood as
//!   one op, whose logits never enter the graph.
//! - The optimizer's passes: [`adam_update_host`] (Adam / Adamax in one pass, with the moments
//!   in host memory: [`HostMoments`]), [`adam_update`] (three in-place passes over moments
//!   held as tensors, on CPU or CUDA; [`AdamStep`]) and the gradient norm's [`squared_norm`].
//! - [`fma_peak_gflops`]: the CPU's measured FMA peak (the widest FMAs it has, [`fma_isa`]),
//!   which every performance figure is quoted against.
//! - The diagonal Gaussian's hot path: [`normal_log_prob_sum`],
//!   [`standard_normal_log_prob_sum`] and [`normal_reparameterize`] (`μ + σ ε` with
//!   `log q` in the same pass).
//!
//! - Element-wise numerics: [`softplus`], [`log_sigmoid`], [`log1mexp`], [`tanh`], [`elu`],
//!   [`clamp_preserve_gradients`], the Bernoulli log-likelihoods ([`bernoulli_log_prob_sum`],
//!   [`bernoulli_sum_and_score`]) on branch-free f32 math dispatched to AVX-512 or AVX2 at run
//!   time ([`avx2_dispatch!`]); [`log_mean_exp`], [`log_sum_exp`], [`log_softmax`];
//!   [`expand_leading`] with a block-sum backward.
//! - Randomness's kernels: [`philox4x32_10`] and its blocks, [`box_muller`] (the seeded noise
//!   source itself is `vaekit_core::SeededNoise`).
//! - Threads: [`pool`], [`on_pool`], [`for_chunks`], [`keep_awake`].
//! - [`testing`]: finite differences, autograd gradients, moment checks, closeness.
//!
//! Every kernel is tested against its candle composition (values and gradients), and the
//! SIMD paths against the portable ones. CUDA versions of the fused ops launch
//! `vaekit-kernels` (feature `cuda`). With the default `fast-alloc` feature this crate links
//! `vaekit-alloc`, so every program that uses vaekit gets mimalloc and candle's thread settings
//! at load time.

// Links vaekit-alloc (mimalloc, configured at load time) into every program that uses vaekit.
#[cfg(feature = "fast-alloc")]
pub use vaekit_alloc::configure as configure_process;

mod adam_host;
mod adam_update;
mod awake;
mod box_muller;
mod channel_affine;
mod conv_bias;
mod conv_direct;
mod conv_gemm;
mod conv_grads;
mod expand;
mod gemm;
mod grad_mode;
mod im2col;
mod im2col_phase;
mod isa;
mod linear_bernoulli;
mod matmul;
mod matmul_grads;
mod normal_fused;
mod numerics;
mod peak;
mod philox;
mod squared_norm;
mod storage;
pub mod testing;
mod threads;
mod weight_norm_linear;
mod weight_ops;

pub use adam_host::{
    HostMoments, HostUpdate, adam_update_host, adam_update_host_all, adam_update_host_applies,
};
pub use adam_update::{AdamStep, adam_update, adam_update_applies};
pub use awake::{IDLE_LIMIT, START_LIMIT, keep_awake};
// Philox's and Box–Muller's building blocks, for vaekit-core's `SeededNoise` only.
#[doc(hidden)]
pub use box_muller::{TWO_POW_M53, box_muller, box_muller_f32};
pub use channel_affine::{bias_add, channel_affine};
pub use conv_bias::{conv_transpose2d_bias, conv2d_bias};
pub use conv_gemm::{conv_transpose2d_gemm, conv2d_gemm};
pub use expand::expand_leading;
pub use grad_mode::second_order_gradients;
pub use im2col::ConvGeometry;
pub use isa::{Isa, detected_isa, gemm_isa, isa, set_isa_cap};
pub use linear_bernoulli::linear_bernoulli_sum;
pub use matmul::{LinearT, linear_t, matmul_t};
pub use normal_fused::{
    HALF_LN_2PI, normal_log_prob_sum, normal_reparameterize, standard_normal_log_prob_sum,
};
pub use numerics::{
    FusedActivation, bernoulli_log_prob, bernoulli_log_prob_sum, bernoulli_sum_and_score,
    clamp_preserve_gradients, elu, is_finite, log_mean_exp, log_sigmoid, log_softmax, log_sum_exp,
    log1mexp, map_elementwise, softplus, tanh,
};
pub use peak::{fma_isa, fma_peak_gflops};
pub use philox::philox4x32_10;
#[doc(hidden)]
pub use philox::{LANES, philox_blocks, words64};
pub use squared_norm::squared_norm;
pub use storage::{contiguous_part, contiguous_slice, has_cpu_kernel, has_kernel};
pub use threads::{PAR_MIN_ELEMS, POOL_STACK_BYTES, for_chunks, for_chunks_above, on_pool, pool};
pub use weight_norm_linear::weight_norm_linear;
pub use weight_ops::{masked, row_norm};

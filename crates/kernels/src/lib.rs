//! # vaekit-kernels
//!
//! CUDA kernels for vaekit's fused hot-path ops, launched on candle's CUDA storage. The ops
//! themselves (their shapes, backward passes and CPU kernels) live in `vaekit-ops`; their
//! `cuda_fwd` call the launchers here, and their CUDA tests
//! (`tests/tests/cuda_ops.rs`, run with `--features cuda`) check every kernel against the
//! CPU op, values and gradients.
//!
//! The kernels are compiled to PTX by `build.rs` (nvcc, virtual architecture
//! `compute_$VAEKIT_PTX_ARCH`, default 75) and loaded once per device by name. All take
//! contiguous f32 or f64 storage; the reductions accumulate in f64 in a fixed order, so a
//! run is deterministic on one GPU.
//!
//! This crate is excluded from the workspace: building it needs nvcc (`docs/gpu.md`).

mod elementwise;
mod launch;
mod optim;
mod reduce;

pub use elementwise::{Binary, Unary, binary, unary};
pub use optim::{ParamUpdate, StateUpdate, param_update, state_update};
pub use reduce::{bernoulli_sum, bernoulli_sum_score, sum_squares};

//! # vaekit-train
//!
//! Training for vaekit models: [`Optimizer`] (Adam, Adamax) with state keyed by parameter
//! name, [`LrSchedule`], [`clip_grad_norm`], [`Ema`], atomic [`CheckpointDir`]s with last-N and
//! best-by-validation retention, and the [`Trainer`] loop (seeded batching and
//! binarization, a guard that skips and counts non-finite steps, bit-identical resume on
//! CPU).

mod checkpoint;
mod clip;
mod ema;
mod fused_update;
mod optim;
mod schedule;
mod trainer;

pub use checkpoint::{
    CheckpointDir, CheckpointError, LoadedCheckpoint, SkippedCheckpoint, TrainerState, write_atomic,
};
pub use clip::{clip_grad_norm, global_norm};
pub use ema::{Ema, EmaSummary, Weights};
pub use optim::{Optimizer, OptimizerConfig, OptimizerKind};
pub use schedule::LrSchedule;
pub use trainer::{
    EpochReport, InferenceOptimizer, LoadedCheckpointInfo, TrainConfig, TrainError, Trainer,
};

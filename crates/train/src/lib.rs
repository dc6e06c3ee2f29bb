//! # vaekit-train
//!
//! Training for vaekit models: [`Optimizer`] (Adam, Adamax) with state keyed by parameter
//! name, [`LrSchedule`], [`clip_grad_norm`], [`Ema`], atomic [`CheckpointDir`]s with last-N and
//! best-by-validation retention, and the [`Trainer`]: epochs over any
//! [`vaekit_datasets::DataSource`] (seeded batching and per-batch binarization, a guard that
//! skips and counts non-finite steps, bit-identical resume on CPU), and [`Trainer::fit`], the
//! whole loop (data-dependent initialisation, a time budget, the per-epoch test bound,
//! checkpoints, [`FitHooks`] for logging and progress).

mod checkpoint;
mod clip;
mod ema;
mod fit;
mod optim;
mod schedule;
mod trainer;

pub use checkpoint::{
    CheckpointDir, CheckpointError, LoadedCheckpoint, SkippedCheckpoint, TrainerState, write_atomic,
};
pub use clip::{clip_grad_norm, global_norm};
pub use ema::{Ema, EmaSummary, Weights};
pub use fit::{EpochRecord, FitConfig, FitHooks, FitOutcome, TestEvaluation};
pub use optim::{Optimizer, OptimizerConfig, OptimizerKind};
pub use schedule::LrSchedule;
pub use trainer::{
    EpochReport, InferenceOptimizer, LoadedCheckpointInfo, TrainConfig, TrainError, Trainer,
};

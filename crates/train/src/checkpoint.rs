//! Checkpoints: tensors as safetensors plus trainer state as JSON, written atomically, with
//! last-N and best-by-validation retention.

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use vaekit_core::NoiseState;

/// Why a checkpoint operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A file could not be written, renamed or read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The JSON state is malformed.
    #[error("{}: bad trainer state: {source}", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The tensors could not be saved or loaded.
    #[error("{}: {source}", .path.display())]
    Tensor {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: candle::Error,
    },
    /// No complete checkpoint exists.
    #[error("no complete checkpoint in {}", .0.display())]
    NotFound(PathBuf),
}

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Completed epochs.
    pub epoch: u64,
    /// Optimizer steps taken.
    pub step: u64,
    /// The noise stream's position.
    pub noise: NoiseState,
    /// The best validation bound so far (nats per data point, higher is better).
    pub best_validation: Option<f64>,
    /// Steps skipped for a non-finite loss or gradient, in total.
    pub skipped_steps: u64,
    /// The resolved run configuration.
    pub config: serde_json::Value,
    /// The estimator's running statistics (NVIL's moving averages); absent in checkpoints
    /// written before they existed.
    #[serde(default)]
    pub estimator: vaekit_objectives::EstimatorState,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, and an
/// fsync of the directory.
///
/// # Errors
/// [`CheckpointError::Io`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A directory of checkpoints named `epoch-NNNNNN` (and `best`), each a `.safetensors` file
/// and a `.json` file. The JSON is written last, so a checkpoint is complete exactly when its
/// JSON exists: a run killed while writing leaves the previous checkpoint usable.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    dir: PathBuf,
    keep_last: usize,
}

impl CheckpointDir {
    /// Checkpoints in `dir` (created if needed), keeping the `keep_last` most recent.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(dir: &Path, keep_last: usize) -> Result<Self, CheckpointError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            keep_last: keep_last.max(1),
        })
    }

    fn paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{name}.safetensors")),
            self.dir.join(format!("{name}.json")),
        )
    }

    /// Saves tensors and state as checkpoint `name`.
    ///
    /// # Errors
    /// I/O or serialisation errors.
    pub fn save(
        &self,
        name: &str,
        tensors: &HashMap<String, Tensor>,
        state: &TrainerState,
    ) -> Result<(), CheckpointError> {
        let (st, js) = self.paths(name);
        // Overwriting a name: retract the old JSON first, so that a crash between the two
        // writes leaves no checkpoint under this name rather than old JSON over new tensors.
        if js.exists() {
            std::fs::remove_file(&js).map_err(io(&js))?;
        }
        let bytes = safetensors_bytes(tensors).map_err(|source| CheckpointError::Tensor {
            path: st.clone(),
            source,
        })?;
        write_atomic(&st, &bytes)?;
        let json = serde_json::to_vec_pretty(state).map_err(|source| CheckpointError::Json {
            path: js.clone(),
            source,
        })?;
        write_atomic(&js, &json)
    }

    /// Saves epoch `epoch`'s checkpoint, then removes epoch checkpoints beyond the last
    /// `keep_last`.
    ///
    /// # Errors
    /// I/O or serialisation errors.
    pub fn save_epoch(
        &self,
        tensors: &HashMap<String, Tensor>,
        state: &TrainerState,
    ) -> Result<(), CheckpointError> {
        self.save(&format!("epoch-{:06}", state.epoch), tensors, state)?;
        let epochs = self.epochs()?;
        for old in epochs
            .iter()
            .take(epochs.len().saturating_sub(self.keep_last))
        {
            let (st, js) = self.paths(&format!("epoch-{old:06}"));
            // The JSON goes first so that a half-removed checkpoint is never taken as complete.
            std::fs::remove_file(&js).map_err(io(&js))?;
            std::fs::remove_file(&st).map_err(io(&st))?;
        }
        Ok(())
    }

    /// Complete epoch checkpoints, oldest first.
    ///
    /// # Errors
    /// The directory cannot be read.
    pub fn epochs(&self) -> Result<Vec<u64>, CheckpointError> {
        let mut out: Vec<u64> = std::fs::read_dir(&self.dir)
            .map_err(io(&self.dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix("epoch-"))
                    .and_then(|n| n.strip_suffix(".json"))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// Loads checkpoint `name`.
    ///
    /// # Errors
    /// Missing or corrupt files.
    pub fn load(
        &self,
        name: &str,
        device: &Device,
    ) -> Result<(HashMap<String, Tensor>, TrainerState), CheckpointError> {
        let (st, js) = self.paths(name);
        let json = std::fs::read(&js).map_err(io(&js))?;
        let state: TrainerState =
            serde_json::from_slice(&json).map_err(|source| CheckpointError::Json {
                path: js.clone(),
                source,
            })?;
        let tensors =
            candle::safetensors::load(&st, device).map_err(|source| CheckpointError::Tensor {
                path: st.clone(),
                source,
            })?;
        Ok((tensors, state))
    }

    /// Loads the most recent complete epoch checkpoint.
    ///
    /// # Errors
    /// [`CheckpointError::NotFound`] when there is none.
    pub fn load_latest(
        &self,
        device: &Device,
    ) -> Result<(HashMap<String, Tensor>, TrainerState), CheckpointError> {
        match self.epochs()?.last() {
            Some(e) => self.load(&format!("epoch-{e:06}"), device),
            None => Err(CheckpointError::NotFound(self.dir.clone())),
        }
    }
}

/// The safetensors encoding of `tensors`, in memory (sorted by name by the format).
fn safetensors_bytes(tensors: &HashMap<String, Tensor>) -> candle::Result<Vec<u8>> {
    let contiguous: Vec<(&str, Tensor)> = tensors
        .iter()
        .map(|(k, v)| Ok((k.as_str(), v.contiguous()?)))
        .collect::<candle::Result<_>>()?;
    safetensors::tensor::serialize(contiguous.iter().map(|(k, v)| (*k, v)), None)
        .map_err(candle::Error::wrap)
}

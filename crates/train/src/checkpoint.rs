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
    /// Every complete epoch checkpoint is damaged.
    #[error("no loadable checkpoint in {}: {}", .dir.display(), .skipped.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    NoneLoadable {
        /// The directory.
        dir: PathBuf,
        /// Each checkpoint tried, newest first, and why it failed.
        skipped: Vec<SkippedCheckpoint>,
    },
}

/// A checkpoint passed over because it could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCheckpoint {
    /// Its name (`epoch-000007`).
    pub name: String,
    /// Why it could not be loaded.
    pub reason: String,
}

impl std::fmt::Display for SkippedCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.reason)
    }
}

/// A checkpoint read back by [`CheckpointDir::load_latest`].
#[derive(Debug, Clone)]
pub struct LoadedCheckpoint {
    /// Its tensors.
    pub tensors: HashMap<String, Tensor>,
    /// Its trainer state.
    pub state: TrainerState,
    /// Its name (`epoch-000007`).
    pub name: String,
    /// Newer checkpoints that were damaged and passed over, newest first.
    pub skipped: Vec<SkippedCheckpoint>,
}

/// What a checkpoint's JSON holds: the trainer state and, when it is not `<name>.safetensors`,
/// the name of its tensors file (a checkpoint overwritten in place alternates between two
/// tensors files, so that the complete old one stays until the new JSON replaces the old).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    state: TrainerState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tensors_file: Option<String>,
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

    /// The second tensors file of checkpoint `name`, for overwriting it in place.
    fn alternate_name(name: &str) -> String {
        format!("{name}.next.safetensors")
    }

    /// The checkpoint `name`'s record and the path of its tensors file, when its JSON exists.
    fn record(&self, name: &str) -> Result<Option<(Record, PathBuf)>, CheckpointError> {
        let (st, js) = self.paths(name);
        let json = match std::fs::read(&js) {
            Ok(j) => j,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&js)(e)),
        };
        let record: Record =
            serde_json::from_slice(&json).map_err(|source| CheckpointError::Json {
                path: js.clone(),
                source,
            })?;
        let tensors = match &record.tensors_file {
            Some(f) => self.dir.join(f),
            None => st,
        };
        Ok(Some((record, tensors)))
    }

    /// Saves tensors and state as checkpoint `name`. A complete checkpoint of that name is
    /// on disk at every moment: overwriting one writes the tensors to the other of two files
    /// (`<name>.safetensors`, `<name>.next.safetensors`), then atomically replaces the JSON
    /// that names them, then removes the old tensors.
    ///
    /// # Errors
    /// I/O or serialisation errors.
    pub fn save(
        &self,
        name: &str,
        tensors: &HashMap<String, Tensor>,
        state: &TrainerState,
    ) -> Result<(), CheckpointError> {
        self.save_observed(name, tensors, state, &mut || {})
    }

    /// [`CheckpointDir::save`], calling `between` after each file operation (the tests'
    /// window on every intermediate state).
    fn save_observed(
        &self,
        name: &str,
        tensors: &HashMap<String, Tensor>,
        state: &TrainerState,
        between: &mut dyn FnMut(),
    ) -> Result<(), CheckpointError> {
        let (st, js) = self.paths(name);
        let alternate = self.dir.join(Self::alternate_name(name));
        // A damaged old record is overwritten like a missing one.
        let old = self.record(name).ok().flatten().map(|(_, path)| path);
        let target = if old.as_deref() == Some(st.as_path()) {
            alternate.clone()
        } else {
            st.clone()
        };
        let bytes = safetensors_bytes(tensors).map_err(|source| CheckpointError::Tensor {
            path: target.clone(),
            source,
        })?;
        write_atomic(&target, &bytes)?;
        between();
        let record = Record {
            state: state.clone(),
            tensors_file: (target != st).then(|| Self::alternate_name(name)),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|source| CheckpointError::Json {
            path: js.clone(),
            source,
        })?;
        write_atomic(&js, &json)?;
        between();
        if let Some(old) = old
            && old != target
        {
            std::fs::remove_file(&old).map_err(io(&old))?;
            between();
        }
        Ok(())
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
            let name = format!("epoch-{old:06}");
            let (st, js) = self.paths(&name);
            let alternate = self.dir.join(Self::alternate_name(&name));
            // The JSON goes first so that a half-removed checkpoint is never taken as complete.
            std::fs::remove_file(&js).map_err(io(&js))?;
            for path in [st, alternate] {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(&path)(e));
                    }
                    _ => {}
                }
            }
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
        let Some((record, st)) = self.record(name)? else {
            let (_, js) = self.paths(name);
            return Err(io(&js)(std::io::Error::from(std::io::ErrorKind::NotFound)));
        };
        let tensors =
            candle::safetensors::load(&st, device).map_err(|source| CheckpointError::Tensor {
                path: st.clone(),
                source,
            })?;
        Ok((tensors, record.state))
    }

    /// Loads the most recent complete epoch checkpoint that can be read; damaged newer ones
    /// (a truncated tensors file, malformed JSON) are passed over and listed in
    /// [`LoadedCheckpoint::skipped`].
    ///
    /// # Errors
    /// [`CheckpointError::NotFound`] when there is none; [`CheckpointError::NoneLoadable`]
    /// when every one is damaged.
    pub fn load_latest(&self, device: &Device) -> Result<LoadedCheckpoint, CheckpointError> {
        let epochs = self.epochs()?;
        if epochs.is_empty() {
            return Err(CheckpointError::NotFound(self.dir.clone()));
        }
        let mut skipped = Vec::new();
        for e in epochs.iter().rev() {
            let name = format!("epoch-{e:06}");
            match self.load(&name, device) {
                Ok((tensors, state)) => {
                    return Ok(LoadedCheckpoint {
                        tensors,
                        state,
                        name,
                        skipped,
                    });
                }
                Err(err) => skipped.push(SkippedCheckpoint {
                    name,
                    reason: err.to_string(),
                }),
            }
        }
        Err(CheckpointError::NoneLoadable {
            dir: self.dir.clone(),
            skipped,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn state(epoch: u64) -> TrainerState {
        TrainerState {
            epoch,
            step: epoch * 10,
            noise: vaekit_core::SeededNoise::new(0).state(),
            best_validation: Some(-(epoch as f64)),
            skipped_steps: 0,
            config: serde_json::json!({}),
            estimator: Default::default(),
        }
    }

    fn tensors(v: f32) -> HashMap<String, Tensor> {
        [(
            "param.w".to_string(),
            Tensor::new(&[v, v], &Device::Cpu).unwrap_or_else(|_| unreachable!()),
        )]
        .into_iter()
        .collect()
    }

    fn value(dir: &CheckpointDir) -> Result<(u64, f32), CheckpointError> {
        let (t, s) = dir.load("best", &Device::Cpu)?;
        let v = t["param.w"]
            .to_vec1::<f32>()
            .map_err(|source| CheckpointError::Tensor {
                path: PathBuf::new(),
                source,
            })?;
        Ok((s.epoch, v[0]))
    }

    /// Overwriting `best` three times: after every single file operation, `best` loads
    /// completely, as the old or the new checkpoint (never a mix, never missing).
    #[test]
    fn best_is_complete_at_every_moment_of_an_overwrite() -> Result<(), CheckpointError> {
        let tmp = tempfile::tempdir().map_err(io(Path::new("tmp")))?;
        let dir = CheckpointDir::new(tmp.path(), 3)?;
        dir.save("best", &tensors(1.0), &state(1))?;
        for epoch in 2..=4u64 {
            let old = (epoch - 1, (epoch - 1) as f32);
            let new = (epoch, epoch as f32);
            let mut seen = Vec::new();
            dir.save_observed("best", &tensors(epoch as f32), &state(epoch), &mut || {
                seen.push(value(&dir).map_err(|e| e.to_string()));
            })?;
            assert!(seen.len() >= 2, "{seen:?}");
            for v in &seen {
                assert!(
                    *v == Ok(old) || *v == Ok(new),
                    "epoch {epoch}: an intermediate state loads as {v:?}"
                );
            }
            assert_eq!(value(&dir)?, new);
        }
        // Two tensors files at most, and only the current one left behind.
        let files: Vec<String> = std::fs::read_dir(tmp.path())
            .map_err(io(tmp.path()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".safetensors"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        Ok(())
    }
}

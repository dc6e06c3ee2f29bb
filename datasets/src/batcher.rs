//! Mini-batches of indices, shuffled per epoch from the noise source.

use crate::error::{DataError, Result};
use serde::{Deserialize, Serialize};
use vaekit_core::{NoiseSource, permutation};

/// How a [`Batcher`] cuts an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatcherConfig {
    /// Examples per batch (> 0).
    pub batch_size: usize,
    /// Draw a fresh permutation every epoch (otherwise the natural order).
    pub shuffle: bool,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            shuffle: true,
            drop_last: false,
        }
    }
}

/// Cuts `0..n` into batches of indices, one epoch at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batcher {
    n: usize,
    config: BatcherConfig,
}

impl Batcher {
    /// A batcher over `n` examples.
    ///
    /// # Errors
    /// [`DataError::Config`] for a zero batch size, or when `drop_last` would leave no batch.
    pub fn new(n: usize, config: BatcherConfig) -> Result<Self> {
        if config.batch_size == 0 {
            return Err(DataError::Config("batcher: batch_size must be > 0".into()));
        }
        if config.drop_last && n < config.batch_size {
            return Err(DataError::Config(format!(
                "batcher: {n} examples make no full batch of {} with drop_last",
                config.batch_size
            )));
        }
        Ok(Self { n, config })
    }

    /// Number of batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        if self.config.drop_last {
            self.n / self.config.batch_size
        } else {
            self.n.div_ceil(self.config.batch_size)
        }
    }

    /// The batches of one epoch. With `shuffle`, the permutation is drawn from `noise` (the
    /// noise source is not touched otherwise), so a resumed run replays the same epochs.
    ///
    /// # Errors
    /// Those of the noise source.
    pub fn epoch(&self, noise: &mut dyn NoiseSource) -> Result<Vec<Vec<usize>>> {
        let order = if self.config.shuffle {
            permutation(noise, self.n)?
        } else {
            (0..self.n).collect()
        };
        Ok(order
            .chunks(self.config.batch_size)
            .take(self.batches_per_epoch())
            .map(<[usize]>::to_vec)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaekit_core::SeededNoise;

    #[test]
    fn covers_every_index_once_per_epoch() -> Result<()> {
        let cfg = BatcherConfig {
            batch_size: 4,
            shuffle: true,
            drop_last: false,
        };
        let b = Batcher::new(10, cfg)?;
        assert_eq!(b.batches_per_epoch(), 3);
        let mut noise = SeededNoise::new(0);
        let e1 = b.epoch(&mut noise)?;
        let e2 = b.epoch(&mut noise)?;
        assert_ne!(e1, e2);
        assert_eq!(e1.iter().map(Vec::len).collect::<Vec<_>>(), vec![4, 4, 2]);
        let mut all: Vec<usize> = e1.concat();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        Ok(())
    }

    #[test]
    fn drop_last_and_natural_order() -> Result<()> {
        let cfg = BatcherConfig {
            batch_size: 4,
            shuffle: false,
            drop_last: true,
        };
        let b = Batcher::new(10, cfg)?;
        let e = b.epoch(&mut SeededNoise::new(0))?;
        assert_eq!(e, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        assert!(Batcher::new(3, cfg).is_err());
        assert!(
            Batcher::new(
                3,
                BatcherConfig {
                    batch_size: 0,
                    ..cfg
                }
            )
            .is_err()
        );
        Ok(())
    }
}

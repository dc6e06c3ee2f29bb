//! The running state of an estimator (NVIL's moving averages), kept by the loss object and
//! checkpointed with the trainer so that a resumed run continues identically.

use serde::{Deserialize, Serialize};

/// Moving averages of the score-function learning signal (after the learned baseline).
///
/// # References
/// Mnih & Gregor, arXiv 1402.0030, section 3.3 (centering and variance normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct EstimatorState {
    /// Running mean `c` of the signal.
    pub signal_mean: f64,
    /// Running variance of the signal.
    pub signal_variance: f64,
    /// Updates so far (the first one sets the averages to the batch's statistics).
    pub updates: u64,
}

impl EstimatorState {
    /// Folds in a batch mean and variance with decay `alpha`:
    /// `c <- alpha c + (1 - alpha) c_batch` (the first update takes the batch values).
    pub fn update(&mut self, alpha: f64, mean: f64, variance: f64) {
        if self.updates == 0 {
            self.signal_mean = mean;
            self.signal_variance = variance;
        } else {
            self.signal_mean = alpha * self.signal_mean + (1.0 - alpha) * mean;
            self.signal_variance = alpha * self.signal_variance + (1.0 - alpha) * variance;
        }
        self.updates += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_update_takes_the_batch_then_averages() {
        let mut s = EstimatorState::default();
        s.update(0.8, -100.0, 25.0);
        assert_eq!((s.signal_mean, s.signal_variance), (-100.0, 25.0));
        s.update(0.8, -90.0, 5.0);
        assert!((s.signal_mean - -98.0).abs() < 1e-12);
        assert!((s.signal_variance - 21.0).abs() < 1e-12);
        assert_eq!(s.updates, 2);
    }
}

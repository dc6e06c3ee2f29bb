//! Progress of the annealing jobs, counted in HMC transitions.

use vaekit_core::{Progress, Stat};

/// Counts a job's transitions and reports each with its acceptance, step size and the
/// job's own running figures.
pub(crate) struct Ticker<'a> {
    progress: &'a mut dyn Progress,
    done: u64,
    figures: Vec<Stat>,
}

impl<'a> Ticker<'a> {
    /// Counts on `progress`, whose job (in transitions) has started.
    pub(crate) fn new(progress: &'a mut dyn Progress) -> Self {
        Self {
            progress,
            done: 0,
            figures: Vec::new(),
        }
    }

    /// One transition done, with the mean acceptance of its chains and its mean step size.
    pub(crate) fn transition(&mut self, acceptance: f64, step_size: f64) {
        self.done += 1;
        let mut stats = vec![("accept", acceptance), ("step", step_size)];
        stats.extend_from_slice(&self.figures);
        self.progress.update(self.done, &stats);
    }

    /// Sets a running figure (replacing one of the same name) shown with later updates.
    pub(crate) fn set(&mut self, name: &'static str, value: f64) {
        match self.figures.iter_mut().find(|(n, _)| *n == name) {
            Some(f) => f.1 = value,
            None => self.figures.push((name, value)),
        }
    }
}

/// HMC transitions per batch of an AIS run with these settings: the annealing run's, and the
/// pilot's when one tunes the step sizes.
pub(crate) fn transitions_per_batch(config: &crate::AisConfig, betas: usize) -> u64 {
    let run = betas.saturating_sub(2) as u64;
    let pilot = match config.tuning {
        crate::StepSizeTuning::Pilot { .. } if config.hmc.adaptation.is_some() => run,
        _ => 0,
    };
    run + pilot
}

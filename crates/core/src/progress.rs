//! Progress of long jobs: what a job reports as it goes, for a bar or a log to show.

/// A running statistic shown beside a job's progress, such as `("nll", 84.3)`.
pub type Stat = (&'static str, f64);

/// Receives the progress of a long job: an epoch of training, importance sampling over a
/// test set, HAIS or BDMC. The library's long-running entry points take a
/// `&mut dyn Progress`; pass `&mut ()` for none. `vaekit-monitor`'s `ProgressBar` draws a bar
/// on a terminal and rate-limited lines elsewhere.
///
/// A job calls [`Progress::start`] once, [`Progress::update`] as units finish (with `done`
/// never decreasing and at most the `total` it announced), and [`Progress::finish`] when it
/// ends, successfully or not; a sink may see several jobs in turn. The calls run on whichever
/// thread runs the job (a worker of vaekit's pool), so a sink must not wait for the thread
/// that called the library.
pub trait Progress: Send {
    /// A job named `job` (for example `"IS-5000"`) starts, with `total` units of `unit`
    /// (`"points"`, `"steps"`) to do.
    fn start(&mut self, job: &str, total: u64, unit: &'static str) {
        let _ = (job, total, unit);
    }

    /// `done` of the job's units are finished; `stats` are its running statistics.
    fn update(&mut self, done: u64, stats: &[Stat]) {
        let _ = (done, stats);
    }

    /// The job ended; `summary` are its final statistics (empty when it failed).
    fn finish(&mut self, summary: &[Stat]) {
        let _ = summary;
    }
}

/// No progress reported.
impl Progress for () {}

/// Runs `body` as the job `job` of `total` units of `unit` on `progress`: starts it, lets
/// `body` report its updates, and finishes it with `summary` of the result (with nothing after
/// an error), so that every job a sink sees ends.
///
/// # Errors
/// Those of `body`.
pub fn report_job<T, E>(
    progress: &mut dyn Progress,
    job: &str,
    total: u64,
    unit: &'static str,
    body: impl FnOnce(&mut dyn Progress) -> Result<T, E>,
    summary: impl FnOnce(&T) -> Vec<Stat>,
) -> Result<T, E> {
    progress.start(job, total, unit);
    let result = body(progress);
    progress.finish(&match &result {
        Ok(value) => summary(value),
        Err(_) => Vec::new(),
    });
    result
}

/// One call a [`ProgressLog`] recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    /// [`Progress::start`].
    Start {
        /// The job's name.
        job: String,
        /// Its units to do.
        total: u64,
        /// What a unit is.
        unit: &'static str,
    },
    /// [`Progress::update`].
    Update {
        /// Units done.
        done: u64,
        /// Running statistics.
        stats: Vec<Stat>,
    },
    /// [`Progress::finish`].
    Finish {
        /// Final statistics.
        summary: Vec<Stat>,
    },
}

/// A sink that records every call in order, for tests of the jobs that report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressLog {
    /// Every call, in order.
    pub events: Vec<ProgressEvent>,
}

impl Progress for ProgressLog {
    fn start(&mut self, job: &str, total: u64, unit: &'static str) {
        self.events.push(ProgressEvent::Start {
            job: job.to_string(),
            total,
            unit,
        });
    }

    fn update(&mut self, done: u64, stats: &[Stat]) {
        self.events.push(ProgressEvent::Update {
            done,
            stats: stats.to_vec(),
        });
    }

    fn finish(&mut self, summary: &[Stat]) {
        self.events.push(ProgressEvent::Finish {
            summary: summary.to_vec(),
        });
    }
}

impl ProgressLog {
    /// The names of the jobs started, in order.
    pub fn jobs(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ProgressEvent::Start { job, .. } => Some(job.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Checks that the calls form whole jobs: each start is followed by updates whose
    /// `done` never decreases nor passes the total and whose last is the total, then a
    /// finish.
    ///
    /// # Errors
    /// A description of the first call out of place.
    pub fn check(&self) -> Result<(), String> {
        // (total, last done) of the job running.
        let mut running: Option<(u64, u64)> = None;
        for (i, e) in self.events.iter().enumerate() {
            running = match (e, running) {
                (ProgressEvent::Start { total, .. }, None) => Some((*total, 0)),
                (ProgressEvent::Update { done, .. }, Some((total, last)))
                    if *done >= last && *done <= total =>
                {
                    Some((total, *done))
                }
                (ProgressEvent::Finish { .. }, Some((total, last))) if last == total => None,
                (e, r) => return Err(format!("call {i} ({e:?}) out of place (running: {r:?})")),
            };
        }
        match running {
            None => Ok(()),
            Some(r) => Err(format!("a job never finished: {r:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_ends_with_its_summary_or_with_nothing_after_an_error() {
        let mut log = ProgressLog::default();
        let ok: Result<u64, ()> = report_job(
            &mut log,
            "sum",
            2,
            "parts",
            |p| {
                p.update(1, &[("s", 1.0)]);
                p.update(2, &[("s", 3.0)]);
                Ok(3)
            },
            |v| vec![("s", *v as f64)],
        );
        assert_eq!(ok, Ok(3));
        assert_eq!(log.check(), Ok(()));
        let failed: Result<u64, &str> = report_job(
            &mut log,
            "fail",
            5,
            "parts",
            |_| Err("bad"),
            |_| vec![("never", 0.0)],
        );
        assert_eq!(failed, Err("bad"));
        assert_eq!(log.jobs(), ["sum", "fail"]);
        assert_eq!(
            log.events.last(),
            Some(&ProgressEvent::Finish { summary: vec![] })
        );
        // A job that stops short of its total is not well formed.
        assert!(log.check().is_err());
    }
}

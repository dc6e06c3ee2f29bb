//! # vaekit-monitor
//!
//! Watching vaekit's long jobs as they run.
//!
//! - [`ProgressBar`] implements [`vaekit_core::Progress`]: an indicatif bar with the job's
//!   running figures and ETA on a terminal; otherwise plain lines at most every few seconds,
//!   so that logs stay short. Pass it to `Trainer::fit`'s hooks, to importance sampling,
//!   HAIS or BDMC.
//! - [`EventWriter`] writes TensorBoard event files (scalars and PNG images) that
//!   `tensorboard --logdir` reads; [`read_events`] reads them back, checking every record's
//!   checksum.
//!
//! ```
//! use vaekit_core::Progress;
//! use vaekit_monitor::{EventWriter, ProgressBar, read_events};
//!
//! # fn main() -> std::io::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let mut tb = EventWriter::create(dir.path())?;
//! tb.add_scalar("test/neg_elbo", 1, 95.2)?;
//! tb.flush()?;
//! let events = read_events(tb.path())?;
//! assert_eq!(vaekit_monitor::scalars(&events), vec![("test/neg_elbo".to_string(), 1, 95.2f32)]);
//!
//! let mut bar = ProgressBar::hidden();
//! bar.start("IS-5000", 100, "points");
//! bar.update(100, &[("nll", 84.3)]);
//! bar.finish(&[("nll", 84.3)]);
//! # Ok(())
//! # }
//! ```

mod progress_bar;
pub mod tensorboard;

pub use progress_bar::{ProgressBar, ProgressStyle};
pub use tensorboard::{EventWriter, images, read_events, scalars};

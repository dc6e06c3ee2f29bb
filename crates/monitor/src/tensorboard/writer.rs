//! Writing an event file.

use super::proto::{Event, Image, Kind, SessionLog, Summary, Value, What};
use super::record::write_record;
use prost::Message;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends scalars and images to a new TensorBoard event file in a log directory; point
/// `tensorboard --logdir` at the directory (or at its parent, to compare runs).
///
/// Every call writes one event; [`EventWriter::flush`] pushes them to the disk (call it after
/// each epoch). A process killed while writing leaves at most one record cut short, which
/// TensorBoard and [`super::read_events`] skip. Several writers (a resumed run) write
/// several files in one directory, which TensorBoard merges.
#[derive(Debug)]
pub struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn host() -> String {
    let name = std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if name.is_empty() { "host".into() } else { name }
}

impl EventWriter {
    /// Creates `dir` if needed and a new file `events.out.tfevents.<seconds>.<host>.<pid>`
    /// (with a counter when that exists) in it, starting with the version record.
    ///
    /// # Errors
    /// The directory or file cannot be created or written; the message names the path.
    pub fn create(dir: &Path) -> io::Result<Self> {
        let named =
            |e: io::Error, p: &Path| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
        std::fs::create_dir_all(dir).map_err(|e| named(e, dir))?;
        let wall = now();
        let stem = format!(
            "events.out.tfevents.{}.{}.{}",
            wall as u64,
            host(),
            std::process::id()
        );
        let mut counter = 0u32;
        let (file, path) = loop {
            let name = match counter {
                0 => stem.clone(),
                n => format!("{stem}.{n}"),
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && counter < 1000 => {
                    counter += 1;
                }
                Err(e) => return Err(named(e, &path)),
            }
        };
        let mut writer = Self {
            out: BufWriter::new(file),
            path,
        };
        writer.write_event(Event {
            wall_time: wall,
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        writer.flush()?;
        Ok(writer)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_event(&mut self, event: Event) -> io::Result<()> {
        write_record(&mut self.out, &event.encode_to_vec())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
    }

    fn write_values(&mut self, step: i64, value: Vec<Value>) -> io::Result<()> {
        self.write_event(Event {
            wall_time: now(),
            step,
            what: Some(What::Summary(Summary { value })),
        })
    }

    /// The scalar `tag` at `step` (stored as f32, as TensorBoard keeps scalars).
    ///
    /// # Errors
    /// A write error, naming the file.
    pub fn add_scalar(&mut self, tag: &str, step: i64, value: f64) -> io::Result<()> {
        self.add_scalars(step, &[(tag, value)])
    }

    /// Several scalars at `step`, in one event.
    ///
    /// # Errors
    /// A write error, naming the file.
    pub fn add_scalars(&mut self, step: i64, values: &[(&str, f64)]) -> io::Result<()> {
        let value = values
            .iter()
            .map(|(tag, v)| Value {
                tag: (*tag).to_string(),
                kind: Some(Kind::SimpleValue(*v as f32)),
            })
            .collect();
        self.write_values(step, value)
    }

    /// The image `tag` at `step`: `png` is a PNG file's bytes of a `width × height` image
    /// with `channels` channels (1 grey, 3 RGB, 4 RGBA).
    ///
    /// # Errors
    /// Sizes beyond `i32`; a write error, naming the file.
    pub fn add_image(
        &mut self,
        tag: &str,
        step: i64,
        png: &[u8],
        width: u32,
        height: u32,
        channels: u8,
    ) -> io::Result<()> {
        let too_large = |_| io::Error::new(io::ErrorKind::InvalidInput, "image too large");
        let image = Image {
            height: i32::try_from(height).map_err(too_large)?,
            width: i32::try_from(width).map_err(too_large)?,
            colorspace: i32::from(channels),
            encoded_image_string: png.to_vec(),
        };
        self.write_values(
            step,
            vec![Value {
                tag: tag.to_string(),
                kind: Some(Kind::Image(image)),
            }],
        )
    }

    /// Marks a restart at `step` (`SessionLog` `START`): TensorBoard then drops the events of
    /// `step` and later that earlier files of the directory hold, such as an epoch logged
    /// just before a crash and run again after the resume from the checkpoint before it.
    ///
    /// # Errors
    /// A write error, naming the file.
    pub fn add_session_start(&mut self, step: i64) -> io::Result<()> {
        self.write_event(Event {
            wall_time: now(),
            step,
            what: Some(What::SessionLog(SessionLog {
                status: 1,
                checkpoint_path: String::new(),
                msg: String::new(),
            })),
        })
    }

    /// Writes the buffered events and asks the system to put them on the disk.
    ///
    /// # Errors
    /// A write error, naming the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data())
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

//! TensorBoard event files: the `Event` protocol buffer in TFRecord framing.
//!
//! The format is TensorFlow's (`tensorflow/core/util/event.proto`,
//! `tensorflow/core/framework/summary.proto`, `tensorflow/core/lib/io/record_writer.cc`):
//! each record is the payload's length (`u64`, little-endian), the masked CRC-32C of those
//! eight bytes, the payload, and the payload's masked CRC-32C. The messages are encoded with
//! `prost`; only the fields vaekit writes are declared, and a reader skips the others.

mod proto;
mod reader;
mod record;
mod writer;

pub use proto::{Event, Image, Kind, SessionLog, Summary, Value, What};
pub use reader::{images, read_events, scalars};
pub use writer::EventWriter;

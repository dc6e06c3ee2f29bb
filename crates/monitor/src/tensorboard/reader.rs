//! Reading an event file back.

use super::proto::{Event, Image, Kind, What};
use super::record::read_record;
use prost::Message;
use std::io::{self, BufReader};
use std::path::Path;

/// Every event of the file at `path`, in order, each record's checksums checked. A record
/// cut short at the end (a writer killed mid-write) ends the list, as in TensorBoard.
///
/// # Errors
/// The file cannot be opened or read, a checksum does not match, or a payload is not an
/// `Event`; the message names the file and the record's index.
pub fn read_events(path: &Path) -> io::Result<Vec<Event>> {
    let file = std::fs::File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut input = BufReader::new(file);
    let mut events = Vec::new();
    loop {
        let named = |e: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: record {}: {e}", path.display(), events.len()),
            )
        };
        let Some(payload) = read_record(&mut input).map_err(|e| named(e.to_string()))? else {
            return Ok(events);
        };
        let event = Event::decode(payload.as_slice()).map_err(|e| named(e.to_string()))?;
        events.push(event);
    }
}

/// The scalars of `events` as `(tag, step, value)`, in order.
pub fn scalars(events: &[Event]) -> Vec<(String, i64, f32)> {
    values(events)
        .filter_map(|(tag, step, kind)| match kind {
            Kind::SimpleValue(v) => Some((tag.to_string(), step, *v)),
            Kind::Image(_) => None,
        })
        .collect()
}

/// The images of `events` as `(tag, step, image)`, in order.
pub fn images(events: &[Event]) -> Vec<(String, i64, Image)> {
    values(events)
        .filter_map(|(tag, step, kind)| match kind {
            Kind::Image(image) => Some((tag.to_string(), step, image.clone())),
            Kind::SimpleValue(_) => None,
        })
        .collect()
}

fn values(events: &[Event]) -> impl Iterator<Item = (&str, i64, &Kind)> {
    events.iter().flat_map(|e| {
        let values = match &e.what {
            Some(What::Summary(s)) => s.value.as_slice(),
            _ => &[],
        };
        values
            .iter()
            .filter_map(move |v| v.kind.as_ref().map(|k| (v.tag.as_str(), e.step, k)))
    })
}

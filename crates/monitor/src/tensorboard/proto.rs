//! The parts of TensorFlow's `Event` and `Summary` messages that scalars and images use.

/// One event of an event file (`tensorflow.Event`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch when the event was written.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step (vaekit writes the epoch).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event holds.
    #[prost(oneof = "What", tags = "3, 5, 7")]
    pub what: Option<What>,
}

/// `Event.what`: the file's version record or a summary.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// The first event of every file: `brain.Event:2`.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Tagged values.
    #[prost(message, tag = "5")]
    Summary(Summary),
    /// A session's start or end.
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

/// `tensorflow.SessionLog`: a `START` at step `s` tells TensorBoard that the run restarted
/// there, so it drops the events of step `s` and later that came before it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionLog {
    /// 0 unspecified, 1 `START`, 2 `STOP`, 3 `CHECKPOINT`.
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// The checkpoint, for `CHECKPOINT`.
    #[prost(string, tag = "2")]
    pub checkpoint_path: String,
    /// A message.
    #[prost(string, tag = "3")]
    pub msg: String,
}

/// `tensorflow.Summary`: tagged values of one step.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    /// The name TensorBoard shows (`/` groups tags into sections).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// A scalar or an image.
    #[prost(oneof = "Kind", tags = "2, 4")]
    pub kind: Option<Kind>,
}

/// `Summary.Value.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    /// A scalar (`simple_value`, f32 as TensorBoard stores it).
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// An encoded image.
    #[prost(message, tag = "4")]
    Image(Image),
}

/// `tensorflow.Summary.Image`: an encoded (PNG) image.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// Height in pixels.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Width in pixels.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 2 grey and alpha, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The PNG file's bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

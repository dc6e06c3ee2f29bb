//! The accessor methods every `Distribution` implementation shares.

/// Expands to `name`, `batch_shape`, `event_shape`, `dtype` and `device` for a struct with
/// `batch_shape` and `event_shape` fields. `tensor field` takes dtype and device from that
/// tensor field; `fields` from `dtype` and `device` fields.
macro_rules! distribution_accessors {
    ($name:literal, tensor $anchor:ident) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn batch_shape(&self) -> &candle::Shape {
            &self.batch_shape
        }
        fn event_shape(&self) -> &candle::Shape {
            &self.event_shape
        }
        fn dtype(&self) -> candle::DType {
            self.$anchor.dtype()
        }
        fn device(&self) -> &candle::Device {
            self.$anchor.device()
        }
    };
    ($name:literal, fields) => {
        fn name(&self) -> &'static str {
            $name
        }
        fn batch_shape(&self) -> &candle::Shape {
            &self.batch_shape
        }
        fn event_shape(&self) -> &candle::Shape {
            &self.event_shape
        }
        fn dtype(&self) -> candle::DType {
            self.dtype
        }
        fn device(&self) -> &candle::Device {
            &self.device
        }
    };
}

pub(crate) use distribution_accessors;

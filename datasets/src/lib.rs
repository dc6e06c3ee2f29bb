//! # vaekit-datasets
//!
//! MNIST for vaekit, the same way with and without a network.
//!
//! - [`Mnist::load_dir`] reads the four standard IDX files, gzipped or not, validating magic
//!   numbers, dimensions, counts and labels, and checks each file's md5 against the canonical
//!   one. Every failure is a [`DataError`] that names the file.
//! - [`resolve_mnist_dir`] finds the data: an explicit directory, `$VAEKIT_DATA_DIR`, vaekit's
//!   cache, and with the `hub` feature the Hugging Face Hub (`ylecun/mnist`).
//! - [`Binarization`]: dynamic (fresh Bernoulli draws every epoch), fixed (drawn once from a
//!   seed: the IWAE test protocol) or thresholded; [`Batcher`] shuffles per epoch; image sets
//!   split off validation data ([`ImageSet::split_last`], [`ImageSet::split_random`]).
//!
//! All randomness comes from a [`vaekit_core::NoiseSource`].
//!
//! ```no_run
//! use candle::Device;
//! use vaekit_core::SeededNoise;
//! use vaekit_datasets::{resolve_mnist_dir, Batcher, BatcherConfig, Binarization, Mnist};
//!
//! # fn main() -> Result<(), vaekit_datasets::DataError> {
//! let found = resolve_mnist_dir(None)?;
//! let mnist = Mnist::load_dir(&found.dir)?;
//! let (train, valid) = mnist.train.split_last(10_000)?;
//! let batcher = Batcher::new(train.len(), BatcherConfig::default())?;
//! let mut noise = SeededNoise::new(0);
//! for indices in batcher.epoch(&mut noise)? {
//!     let x = train.gather_f32(&indices, &Device::Cpu)?;
//!     let x = Binarization::Dynamic.apply(&x, &mut noise)?; // [100, 784] of 0/1
//! }
//! # let _ = valid;
//! # Ok(())
//! # }
//! ```

mod batcher;
mod binarize;
mod error;
mod fixture;
pub mod idx;
mod image_set;
mod mnist;
mod source;

pub use batcher::{Batcher, BatcherConfig};
pub use binarize::{Binarization, binarize_dynamic, binarize_fixed, binarize_threshold};
pub use error::{DataError, Result};
pub use fixture::write_synthetic_mnist;
pub use image_set::ImageSet;
pub use mnist::{
    CACHE_DIR_ENV, DATA_DIR_ENV, DataOrigin, Mnist, MnistFile, ResolvedDir, SourceFile,
    resolve_mnist_dir, vaekit_cache_dir,
};
pub use source::DataSource;

//! MNIST (LeCun, Cortes, Burges): the four IDX files, loaded from a directory, the cache or
//! the Hugging Face Hub.

mod file;
#[cfg(feature = "hub")]
mod hub;
mod load;
mod origin;
mod resolve;

pub use file::{MnistFile, SourceFile};
pub use load::Mnist;
pub use origin::{DataOrigin, ResolvedDir};
pub use resolve::{CACHE_DIR_ENV, DATA_DIR_ENV, resolve_mnist_dir, vaekit_cache_dir};

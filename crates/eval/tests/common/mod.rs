//! Fixtures shared by the evaluation tests.

use candle::{Device, Tensor};
use vaekit_objectives::LinearGaussian;

/// A linear-Gaussian model with orthogonal loadings (4 pixels, 2 latents, noise 0.7): its
/// exact posterior is a diagonal Gaussian, which the linear encoder represents exactly.
#[allow(clippy::unwrap_used)]
pub fn orthogonal_linear_gaussian() -> LinearGaussian {
    let w = Tensor::from_vec(
        vec![1.0, 0.0, 0.5, 0.0, 0.0, 2.0, 0.0, -1.0],
        (4, 2),
        &Device::Cpu,
    )
    .unwrap();
    LinearGaussian::new(
        w,
        Tensor::new(&[0.1, -0.2, 0.3, 0.0], &Device::Cpu).unwrap(),
        0.7,
    )
    .unwrap()
}

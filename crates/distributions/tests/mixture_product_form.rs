//! The unbatched mixture's log-density in product form (two matrix products in f64) against
//! the batched mixture's element-wise form on the same parameters: values and gradients with
//! respect to the point and every parameter, in f32 and f64, with points far from every
//! component (where the expanded square could cancel) included.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Shape, Tensor, Var};
use vaekit_core::testing::max_abs_diff;
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_distributions::{Distribution, MixtureSameFamily};

fn randn(seed: u64, shape: &[usize], scale: f64, dtype: DType) -> Tensor {
    SeededNoise::new(seed)
        .standard_normal(&Shape::from(shape), DType::F64, &Device::Cpu)
        .unwrap()
        .affine(scale, 0.0)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// `max |a - b|` relative to `max(1, max |b|)`.
fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
    let zero = b.zeros_like().unwrap();
    let scale = max_abs_diff(b, &zero).unwrap().max(1.0);
    max_abs_diff(a, b).unwrap() / scale
}

#[test]
fn product_form_matches_the_elementwise_form() {
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-6)] {
        let (k, d) = (7, 5);
        let logits = Var::from_tensor(&randn(1, &[k], 1.0, dtype)).unwrap();
        let loc = Var::from_tensor(&randn(2, &[k, d], 2.0, dtype)).unwrap();
        let log_scale = Var::from_tensor(&randn(3, &[k, d], 0.8, dtype)).unwrap();
        // [4, 3, D] points: most near the components, the last row 40 units away.
        let mut x = randn(4, &[4, 3, d], 2.0, dtype);
        let far = randn(5, &[1, 3, d], 40.0, dtype);
        x = Tensor::cat(&[x.narrow(0, 0, 3).unwrap(), far], 0).unwrap();
        let x = Var::from_tensor(&x).unwrap();
        let unbatched = MixtureSameFamily::from_log_scale(
            logits.as_tensor().clone(),
            loc.as_tensor().clone(),
            log_scale.as_tensor().clone(),
        )
        .unwrap();
        // The same mixture with a batch of one takes the element-wise form.
        let batched = MixtureSameFamily::from_log_scale(
            logits.as_tensor().unsqueeze(0).unwrap(),
            loc.as_tensor().unsqueeze(0).unwrap(),
            log_scale.as_tensor().unsqueeze(0).unwrap(),
        )
        .unwrap();
        let a = unbatched.log_prob(x.as_tensor()).unwrap();
        let b = batched
            .log_prob(&x.as_tensor().unsqueeze(2).unwrap())
            .unwrap();
        let b = b.squeeze(2).unwrap();
        assert_eq!(a.dims(), [4, 3]);
        assert_eq!(a.dtype(), dtype);
        assert!(
            max_rel(&a, &b) < tol,
            "{dtype:?} values: {}",
            max_rel(&a, &b)
        );
        // A random projection's gradients.
        let proj = randn(6, &[4, 3], 1.0, dtype);
        let ga = (&a * &proj).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (&b * &proj).unwrap().sum_all().unwrap().backward().unwrap();
        for (name, v) in [
            ("x", &x),
            ("logits", &logits),
            ("loc", &loc),
            ("log_scale", &log_scale),
        ] {
            let (u, w) = (
                ga.get(v.as_tensor()).unwrap(),
                gb.get(v.as_tensor()).unwrap(),
            );
            let r = max_rel(u, w);
            assert!(r < 10.0 * tol, "{dtype:?} gradient of {name}: {r}");
        }
        // A single point (rank-1 value) gives a [K]-free scalar.
        let one = unbatched
            .log_prob(&x.as_tensor().get(0).unwrap().get(0).unwrap())
            .unwrap();
        assert_eq!(one.dims(), [] as [usize; 0]);
    }
}

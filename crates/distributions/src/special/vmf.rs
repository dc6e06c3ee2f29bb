//! The von Mises–Fisher normalizer and mean resultant length, as differentiable tensor ops.

use super::bessel::{bessel_iv_ratio, log_bessel_iv};
use super::gamma::ln_gamma;
use candle::{Result, Tensor};
use vaekit_core::map_elementwise;

/// `ln |S^{m-1}| = ln(2 π^{m/2} / Γ(m/2))`, the log surface area of the unit sphere in `R^m`.
pub fn log_sphere_area(m: usize) -> f64 {
    let half = m as f64 / 2.0;
    std::f64::consts::LN_2 + half * std::f64::consts::PI.ln() - ln_gamma(half)
}

fn log_normalizer(m: usize, kappa: f64) -> f64 {
    if kappa == 0.0 {
        return -log_sphere_area(m);
    }
    let v = m as f64 / 2.0 - 1.0;
    v * kappa.ln() - (m as f64 / 2.0) * (2.0 * std::f64::consts::PI).ln() - log_bessel_iv(v, kappa)
}

fn mean_resultant(m: usize, kappa: f64) -> f64 {
    bessel_iv_ratio(m as f64 / 2.0 - 1.0, kappa)
}

fn mean_resultant_derivative(m: usize, kappa: f64) -> f64 {
    if kappa == 0.0 {
        return 1.0 / m as f64;
    }
    let a = mean_resultant(m, kappa);
    // The terms cancel to about (m-1)/(2κ²): ~2e-4 relative error at κ = 1e4, growing
    // beyond; the true derivative is positive, so round-off never makes it negative.
    (1.0 - a * a - (m as f64 - 1.0) * a / kappa).max(0.0)
}

/// `ln C_m(κ)`, the log-normalizer of the von Mises–Fisher density on `S^{m-1}`,
/// `C_m(κ) = κ^{m/2-1} / ((2π)^{m/2} I_{m/2-1}(κ))`, with `C_m(0) = 1 / |S^{m-1}|`.
/// Its derivative is `-A_m(κ)` ([`vmf_mean_resultant`]).
///
/// # Shapes
/// Element-wise over `kappa`.
///
/// # Errors
/// Non-float dtypes.
///
/// # References
/// K. V. Mardia, P. E. Jupp, "Directional Statistics", 2000, section 9.3.
pub fn vmf_log_normalizer(kappa: &Tensor, m: usize) -> Result<Tensor> {
    map_elementwise(
        kappa,
        "vmf_log_normalizer",
        move |k| log_normalizer(m, k),
        move |k| -mean_resultant(m, k),
    )
}

/// `A_m(κ) = I_{m/2}(κ) / I_{m/2-1}(κ)`: the mean resultant length `E[μᵀx]` of a von
/// Mises–Fisher variable on `S^{m-1}`. Its derivative is `1 - A² - (m-1) A / κ` (`1/m` at 0).
///
/// # Shapes
/// Element-wise over `kappa`.
///
/// # Errors
/// Non-float dtypes.
pub fn vmf_mean_resultant(kappa: &Tensor, m: usize) -> Result<Tensor> {
    map_elementwise(
        kappa,
        "vmf_mean_resultant",
        move |k| mean_resultant(m, k),
        move |k| mean_resultant_derivative(m, k),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;
    use vaekit_core::testing::{assert_all_close, autograd_gradient, finite_difference_gradient};

    #[test]
    fn gradients_match_finite_differences() -> Result<()> {
        let kappa = Tensor::new(&[0.01, 0.7, 5.0, 60.0, 900.0], &Device::Cpu)?;
        for m in [2, 3, 10, 50] {
            for f in [
                vmf_log_normalizer as fn(&Tensor, usize) -> Result<Tensor>,
                vmf_mean_resultant,
            ] {
                let g = |k: &Tensor| f(k, m);
                // A step of 1e-3: at κ = 900 the derivative is ~1e-6 and a smaller step
                // drowns it in the round-off of ln I_v(κ) ≈ 900.
                let fd = finite_difference_gradient(g, &kappa, 1e-3)?;
                assert_all_close(&autograd_gradient(g, &kappa)?, &fd, 1e-5, 1e-9)?;
            }
        }
        Ok(())
    }

    #[test]
    fn closed_forms_at_the_edges() -> Result<()> {
        // m = 3: C_3(κ) = κ / (4π sinh κ), A_3(κ) = coth κ - 1/κ; κ = 0 is the uniform sphere.
        let k = Tensor::new(&[0.0, 1e-8, 0.5, 30.0, 1e4], &Device::Cpu)?;
        let got = vmf_log_normalizer(&k, 3)?.to_vec1::<f64>()?;
        let area = (4.0 * std::f64::consts::PI).ln();
        assert!((got[0] + area).abs() < 1e-14);
        assert!((got[1] + area).abs() < 1e-12);
        for (i, &kv) in [0.5f64, 30.0].iter().enumerate() {
            let exact = kv.ln() - (4.0 * std::f64::consts::PI).ln() - kv.sinh().ln();
            assert!((got[i + 2] - exact).abs() < 1e-12, "{kv}");
        }
        // ln sinh(κ) = κ - ln 2 + ln(1 - e^{-2κ}) for κ = 1e4.
        let exact = 1e4f64.ln() - area - (1e4 - std::f64::consts::LN_2);
        assert!((got[4] - exact).abs() < 1e-9 * 1e4);
        let a = vmf_mean_resultant(&k, 3)?.to_vec1::<f64>()?;
        assert_eq!(a[0], 0.0);
        assert!((a[3] - (1.0 / 30f64.tanh() - 1.0 / 30.0)).abs() < 1e-12);
        assert!((a[4] - (1.0 - 1e-4)).abs() < 1e-12);
        let g = autograd_gradient(
            |k| vmf_mean_resultant(k, 3),
            &Tensor::new(&[0.0], &Device::Cpu)?,
        )?;
        assert!((g.to_vec1::<f64>()?[0] - 1.0 / 3.0).abs() < 1e-15);
        assert!((log_sphere_area(2) - (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
        Ok(())
    }
}

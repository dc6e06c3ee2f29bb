//! Special functions the families need, evaluated in f64 on the host.

mod bessel;
mod gamma;
mod vmf;

pub use bessel::{bessel_iv_ratio, log_bessel_iv};
pub use gamma::ln_gamma;
pub use vmf::{log_sphere_area, vmf_log_normalizer, vmf_mean_resultant};

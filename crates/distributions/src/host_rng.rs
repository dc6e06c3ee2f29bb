//! Scalar draws on the host from a `NoiseSource`, for rejection samplers (Wood's vMF
//! sampler, Marsaglia–Tsang gamma) whose loop lengths depend on the draws.

use candle::Result;
use vaekit_core::NoiseSource;

const BLOCK: usize = 256;
const TWO_POW_M53: f64 = 1.0 / (1u64 << 53) as f64;

/// Buffered 64-bit words from a noise source turned into uniforms, normals, gammas and betas.
/// Words are fetched in blocks of 256, so the stream advances deterministically.
pub(crate) struct HostRng<'a> {
    noise: &'a mut dyn NoiseSource,
    words: Vec<u64>,
    next: usize,
}

impl<'a> HostRng<'a> {
    pub(crate) fn new(noise: &'a mut dyn NoiseSource) -> Self {
        Self {
            noise,
            words: vec![0; BLOCK],
            next: BLOCK,
        }
    }

    fn word(&mut self) -> Result<u64> {
        if self.next == BLOCK {
            self.noise.fill_u64(&mut self.words)?;
            self.next = 0;
        }
        self.next += 1;
        Ok(self.words[self.next - 1])
    }

    /// U(0, 1], never 0 (safe under `ln`).
    pub(crate) fn uniform_open(&mut self) -> Result<f64> {
        Ok(((self.word()? >> 11) + 1) as f64 * TWO_POW_M53)
    }

    /// N(0, 1) by Box–Muller (one value per two words).
    pub(crate) fn normal(&mut self) -> Result<f64> {
        let u1 = self.uniform_open()?;
        let u2 = self.uniform_open()?;
        Ok((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
    }

    /// Gamma(shape, 1) by Marsaglia–Tsang (shape < 1 boosted by `U^(1/shape)`).
    pub(crate) fn gamma(&mut self, shape: f64) -> Result<f64> {
        if shape < 1.0 {
            let boost = self.uniform_open()?.powf(1.0 / shape);
            return Ok(self.gamma(shape + 1.0)? * boost);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal()?;
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform_open()?;
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return Ok(d * v);
            }
        }
    }

    /// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
    pub(crate) fn beta(&mut self, a: f64, b: f64) -> Result<f64> {
        let x = self.gamma(a)?;
        let y = self.gamma(b)?;
        Ok(x / (x + y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaekit_core::SeededNoise;
    use vaekit_core::testing::MomentCheck;

    #[test]
    fn gamma_and_beta_moments() -> Result<()> {
        let mut noise = SeededNoise::new(17);
        let mut rng = HostRng::new(&mut noise);
        for shape in [0.3, 1.0, 4.5] {
            let xs: Vec<f64> = (0..100_000)
                .map(|_| rng.gamma(shape))
                .collect::<Result<_>>()?;
            // Gamma(k): mean k, variance k, skewness 2/sqrt(k), excess kurtosis 6/k.
            MomentCheck::new(&xs).assert_moments(
                shape,
                shape,
                2.0 / shape.sqrt(),
                6.0 / shape,
                6.0,
            );
        }
        let (a, b) = (2.5f64, 2.5f64);
        let xs: Vec<f64> = (0..100_000)
            .map(|_| rng.beta(a, b))
            .collect::<Result<_>>()?;
        let var = a * b / ((a + b).powi(2) * (a + b + 1.0));
        // Symmetric Beta: skewness 0, excess kurtosis -6/(2a+3).
        MomentCheck::new(&xs).assert_moments(0.5, var, 0.0, -6.0 / (2.0 * a + 3.0), 6.0);
        Ok(())
    }
}

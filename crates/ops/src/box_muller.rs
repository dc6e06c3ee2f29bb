//! Box–Muller normals from Philox words (see `vaekit_core::SeededNoise`'s stream layout):
//! element `2k` is `r cos(2π u2)`, element `2k + 1` is `r sin(2π u2)`, with
//! `r = sqrt(-2 ln u1)`, all in f64.
//!
//! The f64 draws call libm's `ln` and `sin_cos` per pair. For f32 draws, `sin_cos` (the
//! larger cost: 3 % of an IWAE-50 training step, more than the logarithm's 0.3 %) is
//! replaced by [`unit_circle`], f64 polynomials over `LANES` pairs at a time that vectorize;
//! they differ from libm's `sin_cos(2π·u2)` (whose angle is itself rounded) by less than
//! `1e-15`, far below the f32 rounding that follows, so the f32 draws
//! are libm's f64 values rounded, except where an f64 value lies within about `1e-16` of
//! the midpoint between two f32 numbers (tested on 2^20 draws: none).

use crate::philox::{LANES, words64};
use std::f64::consts::{FRAC_PI_2, TAU};

/// `2^-53`.
pub const TWO_POW_M53: f64 = 1.0 / (1u64 << 53) as f64;

/// `u1 ∈ (0, 1]` (never `ln 0`) and `u2 ∈ [0, 1)` of one block's two words.
#[inline]
fn uniforms([w0, w1]: [u64; 2]) -> (f64, f64) {
    (
        ((w0 >> 11) + 1) as f64 * TWO_POW_M53,
        (w1 >> 11) as f64 * TWO_POW_M53,
    )
}

/// Box–Muller on the two words of one block, in f64, libm's `ln` and `sin_cos`.
#[inline]
pub fn box_muller(words: [u64; 2]) -> [f64; 2] {
    let (u1, u2) = uniforms(words);
    let r = (-2.0 * u1.ln()).sqrt();
    let (sin, cos) = (TAU * u2).sin_cos();
    [r * cos, r * sin]
}

/// Box–Muller in f32 for up to `LANES` blocks: `out[2i], out[2i + 1]` from block `i`
/// (`out` may end on an odd element). See the module docs for how they relate to
/// [`box_muller`]'s values.
pub fn box_muller_f32(words: &[[u32; 4]; LANES], out: &mut [f32]) {
    let mut r = [0f64; LANES];
    let mut u2 = [0f64; LANES];
    for ((r, u2), w) in r.iter_mut().zip(&mut u2).zip(words) {
        let (u1, u) = uniforms(words64(w));
        *r = (-2.0 * u1.ln()).sqrt();
        *u2 = u;
    }
    let mut cs = [[0f64; 2]; LANES];
    unit_circle(&u2, &mut cs);
    for ((pair, &r), [c, s]) in out.chunks_mut(2).zip(&r).zip(cs) {
        let v = [(r * c) as f32, (r * s) as f32];
        pair.copy_from_slice(&v[..pair.len()]);
    }
}

/// `sin y` on `|y| <= π/4`: `y + y³ P(y²)`, Cephes' coefficients (relative error about
/// `2e-16`).
#[inline(always)]
#[allow(clippy::excessive_precision)] // the published digits; the nearest f64 is used
fn sin_quarter(y: f64) -> f64 {
    let z = y * y;
    let p = ((((1.589_623_015_765_465_7e-10 * z - 2.505_074_776_285_780_7e-8) * z
        + 2.755_731_362_138_572_5e-6)
        * z
        - 1.984_126_982_958_953_9e-4)
        * z
        + 8.333_333_333_322_118_6e-3)
        * z
        - 1.666_666_666_666_663_1e-1;
    y + y * z * p
}

/// `cos y` on `|y| <= π/4`: `1 - y²/2 + y⁴ Q(y²)`, Cephes' coefficients.
#[inline(always)]
#[allow(clippy::excessive_precision)] // as in `sin_quarter`
fn cos_quarter(y: f64) -> f64 {
    let z = y * y;
    let q = ((((-1.135_853_652_138_768_2e-11 * z + 2.087_570_084_197_473_2e-9) * z
        - 2.755_731_417_929_673_9e-7)
        * z
        + 2.480_158_728_885_170_5e-5)
        * z
        - 1.388_888_888_887_305_6e-3)
        * z
        + 4.166_666_666_666_659_3e-2;
    1.0 - 0.5 * z + z * z * q
}

crate::avx2_dispatch! {
/// `[cos 2πu, sin 2πu]` for `u ∈ [0, 1)`: the nearest quarter turn `q = round(4u)` (exact,
/// as is `4u - q`), then [`sin_quarter`] and [`cos_quarter`] of `y = (4u - q) π/2` and the
/// quadrant's swap and signs, by selects (no branches, so the loop vectorizes).
fn unit_circle(u: &[f64; LANES], out: &mut [[f64; 2]; LANES]) -> () {
    for (o, &u) in out.iter_mut().zip(u) {
        let t = 4.0 * u;
        let q = (t + 0.5).floor();
        let y = (t - q) * FRAC_PI_2;
        let (s, c) = (sin_quarter(y), cos_quarter(y));
        // q mod 4, as a float: 0, 1, 2 or 3.
        let m = q - 4.0 * (0.25 * q).floor();
        let odd = m == 1.0 || m == 3.0;
        let (a, b) = if odd { (s, c) } else { (c, s) };
        let cos = if m == 1.0 || m == 2.0 { -a } else { a };
        let sin = if m >= 2.0 { -b } else { b };
        *o = [cos, sin];
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::philox::philox_blocks;

    /// Every quarter of the circle, its boundaries and the ends of `[0, 1)`, against libm of
    /// the rounded angle `2π·u` (half an ulp of an angle near 2π is `4.4e-16`).
    #[test]
    fn unit_circle_matches_libm() {
        let mut worst = 0f64;
        for start in 0..64 {
            let mut u = [0f64; LANES];
            for (i, u) in u.iter_mut().enumerate() {
                let k = start * LANES + i;
                *u = match k % 5 {
                    0 => (k / 5) as f64 / 256.0,
                    1 => (k as f64 * 0.618_033_988_749_895).fract(),
                    2 => 1.0 - TWO_POW_M53 * (k + 1) as f64,
                    3 => 0.125 * (k % 8) as f64 + TWO_POW_M53,
                    _ => 0.25 * (k % 4) as f64,
                };
            }
            let mut out = [[0f64; 2]; LANES];
            unit_circle(&u, &mut out);
            for (&u, [c, s]) in u.iter().zip(out) {
                let (ws, wc) = (TAU * u).sin_cos();
                worst = worst.max((c - wc).abs()).max((s - ws).abs());
            }
        }
        assert!(worst < 1e-15, "largest difference {worst:e}");
    }

    /// 2^20 f32 draws are libm's f64 Box–Muller values rounded to f32, every one.
    #[test]
    fn f32_draws_are_the_f64_draws_rounded() {
        let key = [0x1234_5678, 0x9abc_def0];
        let mut words = [[0u32; 4]; LANES];
        let mut out = [0f32; 2 * LANES];
        let mut differ = 0usize;
        for g in 0..(1u64 << 19) / LANES as u64 {
            philox_blocks(g * LANES as u64, key, &mut words);
            box_muller_f32(&words, &mut out);
            for (pair, w) in out.chunks(2).zip(&words) {
                let want = box_muller(words64(w)).map(|v| v as f32);
                differ += usize::from(pair != want);
            }
        }
        assert_eq!(differ, 0, "{differ} draws differ from libm's rounded");
    }

    /// An odd-length output takes the first element of the last pair.
    #[test]
    fn odd_lengths_end_mid_pair() {
        let mut words = [[0u32; 4]; LANES];
        philox_blocks(0, [1, 2], &mut words);
        let mut full = [0f32; 2 * LANES];
        let mut odd = [0f32; 2 * LANES - 1];
        box_muller_f32(&words, &mut full);
        box_muller_f32(&words, &mut odd);
        assert_eq!(&full[..odd.len()], &odd[..]);
    }
}

//! The machine's single-precision FMA peak, measured with a register-only loop of the widest
//! FMAs the kernels may use (AVX-512 where present, else AVX2; capped like them by
//! `VAEKIT_ISA`) on every benchmark thread: the denominator of "fraction of peak".
//!
//! gemm (candle's and vaekit's GEMM) picks its AVX-512 kernels at run time on such a CPU
//! (this crate's default feature `avx512` enables its `x86-v4`), so an AVX2-only peak would
//! overstate every fraction about twofold on a Zen 5. `VAEKIT_ISA` does not cap the GEMM:
//! under it, build without that feature too, or the fraction compares an AVX-512 GEMM with
//! a narrower peak.

use std::time::Instant;

/// Independent accumulator chains: more than FMA latency × FMA ports (4 × 2 on Zen 3/5).
const CHAINS: usize = 12;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::{
        _mm256_fmadd_ps, _mm256_set1_ps, _mm256_storeu_ps, _mm512_fmadd_ps, _mm512_reduce_add_ps,
        _mm512_set1_ps,
    };

    /// `iters` rounds of `CHAINS` 8-lane FMAs; returns a value that depends on all of them.
    #[target_feature(enable = "avx2,fma")]
    fn fma_loop_avx2(iters: u64) -> f32 {
        let a = _mm256_set1_ps(0.999_999);
        let b = _mm256_set1_ps(1e-7);
        let mut acc = [_mm256_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut out = [0f32; 8];
        let mut total = 0.0;
        for x in acc {
            // SAFETY: `out` holds exactly the 8 lanes of one __m256.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), x) };
            total += out.iter().sum::<f32>();
        }
        total
    }

    /// `iters` rounds of `CHAINS` 16-lane FMAs; returns a value that depends on all of them.
    #[target_feature(enable = "avx512f")]
    fn fma_loop_avx512(iters: u64) -> f32 {
        let a = _mm512_set1_ps(0.999_999);
        let b = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..iters {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }

    /// f32 lanes per FMA of the widest loop the kernels' level ([`crate::isa`]) allows, or
    /// `None` below AVX2+FMA.
    pub fn lanes() -> Option<usize> {
        match crate::isa() {
            crate::Isa::Avx512 => Some(16),
            crate::Isa::Avx2 => Some(8),
            crate::Isa::Baseline => None,
        }
    }

    /// Runs the widest loop (see [`lanes`]).
    pub fn run(iters: u64) -> Option<f32> {
        match lanes()? {
            // SAFETY: `lanes` says 16 only when `isa` is AVX-512, which it is only when the CPU
            // has AVX-512F (detected at run time).
            16 => Some(unsafe { fma_loop_avx512(iters) }),
            // SAFETY: likewise, AVX2 and FMA.
            _ => Some(unsafe { fma_loop_avx2(iters) }),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    pub fn lanes() -> Option<usize> {
        None
    }

    pub fn run(_iters: u64) -> Option<f32> {
        None
    }
}

/// The instruction set the peak is measured with: "AVX-512", "AVX2" or `None`.
pub fn fma_isa() -> Option<&'static str> {
    x86::lanes().map(|l| if l == 16 { "AVX-512" } else { "AVX2" })
}

/// GFLOP/s of `threads` threads running the FMA loop at once (the best of three), or `None`
/// on a CPU without AVX2+FMA.
pub fn fma_peak_gflops(threads: usize) -> Option<f64> {
    let iters: u64 = 50_000_000;
    let lanes = x86::lanes()?;
    x86::run(1000)?;
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads.max(1) {
                s.spawn(|| std::hint::black_box(x86::run(std::hint::black_box(iters))));
            }
        });
        let secs = t.elapsed().as_secs_f64();
        let flops = iters as f64 * CHAINS as f64 * lanes as f64 * 2.0 * threads.max(1) as f64;
        best = best.max(flops / secs / 1e9);
    }
    Some(best)
}

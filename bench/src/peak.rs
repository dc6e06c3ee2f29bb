//! The machine's single-precision FMA peak, measured with a register-only loop of AVX2 FMAs
//! on every benchmark thread: the denominator of "fraction of peak".

use std::time::Instant;

/// Independent accumulator chains: more than FMA latency × FMA ports (4 × 2 on Zen 3).
const CHAINS: usize = 12;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_set1_ps, _mm256_storeu_ps};

    /// `iters` rounds of `CHAINS` 8-lane FMAs; returns a value that depends on all of them.
    #[target_feature(enable = "avx2,fma")]
    fn fma_loop(iters: u64) -> f32 {
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

    /// Runs the loop when the CPU has AVX2 and FMA.
    pub fn run(iters: u64) -> Option<f32> {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the features the function is compiled for were detected at run time.
            Some(unsafe { fma_loop(iters) })
        } else {
            None
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    pub fn run(_iters: u64) -> Option<f32> {
        None
    }
}

/// GFLOP/s of `threads` threads running the FMA loop at once (the best of three), or `None`
/// on a CPU without AVX2+FMA.
pub fn fma_peak_gflops(threads: usize) -> Option<f64> {
    let iters: u64 = 50_000_000;
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
        let flops = iters as f64 * CHAINS as f64 * 8.0 * 2.0 * threads.max(1) as f64;
        best = best.max(flops / secs / 1e9);
    }
    Some(best)
}

//! Run-time dispatch of the f32 kernels to AVX-512 and AVX2+FMA builds.
//!
//! The crate is compiled for the baseline x86-64 target (SSE2), so the branch-free kernels
//! of `fast_f32` vectorize 4 lanes wide. [`avx2_dispatch!`] compiles a kernel twice more,
//! with AVX-512 (F, BW, DQ, VL; 16 lanes) and with AVX2 and FMA (8 lanes), and picks the
//! widest build the CPU reports; the arithmetic is the same in every build (no contraction
//! into FMA happens without fast-math, and the reductions keep explicit lane-shaped
//! accumulators), so the results are bit-identical.

/// Defines `[vis] fn $name(args) -> ret` from a body, calling an AVX-512 build of the body
/// when [`crate::isa`] is AVX-512 (F/BW/DQ/VL), an AVX2+FMA build when it is AVX2, else the
/// baseline build. For element-wise loops over slices that should vectorize 16 or 8 lanes
/// wide on x86-64 without a `target-cpu` flag; the body must be safe code (it runs either
/// way).
///
/// ```
/// vaekit_ops::avx2_dispatch! {
///     /// `out[i] = 2 x[i]`.
///     fn double(out: &mut [f32], x: &[f32]) -> () {
///         for (o, &x) in out.iter_mut().zip(x) {
///             *o = 2.0 * x;
///         }
///     }
/// }
/// let mut out = [0.0; 3];
/// double(&mut out, &[1.0, 2.0, 3.0]);
/// assert_eq!(out, [2.0, 4.0, 6.0]);
/// ```
#[macro_export]
macro_rules! avx2_dispatch {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn generic($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) -> $ret {
                    generic($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    generic($($arg),*)
                }
                match $crate::isa() {
                    // SAFETY: `isa` never names a level above the one detected at run time,
                    // and `avx512` is compiled for exactly that level's features.
                    #[allow(unsafe_code)]
                    $crate::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above, for `avx2`'s features.
                    #[allow(unsafe_code)]
                    $crate::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::Isa::Baseline => {}
                }
            }
            generic($($arg),*)
        }
    };
}

pub(crate) use crate::avx2_dispatch;

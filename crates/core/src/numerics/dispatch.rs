//! Run-time dispatch of the f32 kernels to an AVX2+FMA build.
//!
//! The crate is compiled for the baseline x86-64 target (SSE2), so the branch-free kernels
//! of `fast_f32` vectorize 4 lanes wide. [`avx2_dispatch!`] compiles a kernel a second time
//! with AVX2 and FMA enabled (8 lanes) and picks that build when the CPU reports both
//! features; the arithmetic is the same in both builds (no contraction into FMA happens
//! without fast-math), so the results are bit-identical.

/// Defines `fn $name(args) -> ret` from a body, calling an AVX2+FMA build of the body when
/// the CPU has those features and the baseline build otherwise. For element-wise loops over
/// slices that should vectorize 8 lanes wide on x86-64 without a `target-cpu` flag; the
/// body must be safe code (it runs either way).
///
/// ```
/// vaekit_core::avx2_dispatch! {
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
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$meta])*
        fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn generic($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) -> $ret {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the features `avx2` is compiled for were detected at run time.
                    #[allow(unsafe_code)]
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

pub(crate) use crate::avx2_dispatch;

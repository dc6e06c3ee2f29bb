//! Which vector instructions the kernels use: the widest this CPU has, capped by the
//! environment variable `VAEKIT_ISA` or by [`set_isa_cap`].
//!
//! Every SIMD path of this crate (the [`crate::avx2_dispatch!`] kernels, the direct AVX-512
//! convolution, the FMA-peak loop) asks [`isa`], so that an AVX2-only or a baseline CPU's
//! behaviour can be reproduced, tested and timed on an AVX-512 machine. The GEMM (the `gemm`
//! crate, which candle also uses) detects the CPU itself and is not capped; its AVX-512
//! kernels come with this crate's default feature `avx512` ([`gemm_isa`]).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level, ordered from the narrowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The compilation target's baseline (SSE2 on x86-64; NEON on aarch64): the portable
    /// code, which the compiler vectorizes for that target.
    Baseline,
    /// x86-64 with AVX2 and FMA (8 f32 lanes).
    Avx2,
    /// x86-64 with AVX-512 F, BW, DQ and VL, besides AVX2 and FMA (16 f32 lanes).
    Avx512,
}

impl Isa {
    /// The name `VAEKIT_ISA` takes: `baseline`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// Parses a `VAEKIT_ISA` value.
    ///
    /// # Errors
    /// Anything but `baseline`, `avx2` or `avx512`, with the rule.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "baseline" => Ok(Isa::Baseline),
            "avx2" => Ok(Isa::Avx2),
            "avx512" => Ok(Isa::Avx512),
            other => Err(format!(
                "VAEKIT_ISA={other:?}: expected baseline, avx2 or avx512"
            )),
        }
    }
}

/// The widest level this CPU runs (detected once).
pub fn detected_isa() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma");
            if avx2 && has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
                return Isa::Avx512;
            }
            if avx2 {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    })
}

/// The cap from `VAEKIT_ISA`, read once; an unreadable value is reported on stderr once and
/// ignored.
fn env_cap() -> Option<Isa> {
    static CAP: OnceLock<Option<Isa>> = OnceLock::new();
    *CAP.get_or_init(|| {
        let value = std::env::var("VAEKIT_ISA").ok()?;
        match Isa::parse(value.trim()) {
            Ok(isa) => Some(isa),
            Err(e) => {
                eprintln!("warning: {e}; using the CPU's widest");
                None
            }
        }
    })
}

/// 0: no cap set by [`set_isa_cap`]; otherwise 1 + the level.
static PROGRAM_CAP: AtomicU8 = AtomicU8::new(0);

/// Caps the level every kernel uses from now on, for the whole process (`None` lifts the
/// cap; `VAEKIT_ISA` still applies). For tests and benchmarks that compare the paths: a
/// kernel running on another thread at that moment may finish on either path, whose results
/// are the same.
pub fn set_isa_cap(cap: Option<Isa>) {
    PROGRAM_CAP.store(cap.map_or(0, |c| c as u8 + 1), Ordering::Relaxed);
}

/// The level the kernels use: the CPU's widest, capped by `VAEKIT_ISA` and [`set_isa_cap`].
/// Never above [`detected_isa`], so a kernel compiled for it may run.
pub fn isa() -> Isa {
    let mut level = detected_isa();
    if let Some(cap) = env_cap() {
        level = level.min(cap);
    }
    let program = match PROGRAM_CAP.load(Ordering::Relaxed) {
        0 => None,
        1 => Some(Isa::Baseline),
        2 => Some(Isa::Avx2),
        _ => Some(Isa::Avx512),
    };
    match program {
        Some(cap) => level.min(cap),
        None => level,
    }
}

/// The widest kernels the GEMM (the `gemm` crate, candle's too) runs on this CPU: `AVX-512`
/// when built with this crate's feature `avx512` (a default) on a CPU with AVX-512F, `AVX2`
/// with FMA, else `scalar`. Not capped by `VAEKIT_ISA`: build without the feature to time an
/// AVX2 machine's GEMM.
pub fn gemm_isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if cfg!(feature = "avx512") && has!("avx512f") {
            return "AVX-512";
        }
        if has!("fma") {
            return "AVX2";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        return "NEON";
    }
    #[allow(unreachable_code)]
    "scalar"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_values_state_the_rule() {
        for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            assert_eq!(Isa::parse(isa.name()), Ok(isa));
        }
        let e = Isa::parse("sse4").err().unwrap_or_default();
        assert!(e.contains("baseline, avx2 or avx512"), "{e}");
        assert!(Isa::Baseline < Isa::Avx2 && Isa::Avx2 < Isa::Avx512);
    }
}

//! The register tiles of the direct convolution, the one place with raw-pointer loads.
#![allow(unsafe_code)]

use super::{LANES, MR, WG_MR};

/// Whether new convolutions take the direct kernels: the kernels' level ([`crate::isa`]) is
/// AVX-512.
pub(crate) fn available() -> bool {
    crate::isa() == crate::Isa::Avx512
}

/// Whether this CPU runs [`tile`] (AVX-512F detected): what the kernels check before their
/// loads, whatever the level is now (a convolution planned before a cap was lowered still
/// finishes on them).
fn supported() -> bool {
    crate::detected_isa() == crate::Isa::Avx512
}

/// `c[r·ldc + j] = Σ_t Σ_i a[(t·c_in + i)·MR + r] · b[offs[t] + i·plane + j]` for rows
/// `r < MR` and columns `j < NV·16`.
///
/// # Panics
/// On a CPU without AVX-512F, or slices too short for those reads and writes.
pub(crate) fn tile<const NV: usize>(
    a: &[f32],
    b: &[f32],
    offs: &[usize],
    c_in: usize,
    plane: usize,
    c: &mut [f32],
    ldc: usize,
) {
    let reach = offs
        .iter()
        .max()
        .map_or(0, |&o| o + (c_in.max(1) - 1) * plane);
    assert!(supported(), "conv_direct: AVX-512F is not available");
    assert!(
        a.len() >= offs.len() * c_in * MR,
        "conv_direct: short kernel panel"
    );
    assert!(b.len() >= reach + NV * LANES, "conv_direct: short input");
    assert!(
        c.len() >= (MR - 1) * ldc + NV * LANES,
        "conv_direct: short output"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is available (checked above); every read of `a` and `b` and
    // every write of `c` stays within the lengths asserted above (pointers between uses
    // move with `wrapping_add`, dereferenced only in bounds).
    unsafe {
        tile_avx512::<NV>(
            a.as_ptr(),
            b.as_ptr(),
            offs,
            c_in,
            plane,
            c.as_mut_ptr(),
            ldc,
        );
    }
}

/// The geometry of a weight-gradient tile's reads: bordered planes of `plane`
/// elements and width `wp` holding `h × w` images, transposed `dy` rows `ld` apart.
pub(crate) struct WgShape {
    pub plane: usize,
    pub wp: usize,
    pub h: usize,
    pub w: usize,
    pub ld: usize,
}

/// `c[r·ldc + j] += Σ_{y < h, x < w} a[r·plane + y·wp + x] · b[(y·w + x)·ld + j]` for
/// rows `r < WG_MR` and columns `j < NV·16`: one tap's weight gradient for
/// [`WG_MR`] input channels (`a`: bordered planes from the tap's offset) and
/// `NV·16` output channels (`b`: transposed `dy` from the first of them).
///
/// # Panics
/// On a CPU without AVX-512F, or slices too short for those reads and writes.
pub(crate) fn wg_tile<const NV: usize>(
    a: &[f32],
    b: &[f32],
    s: &WgShape,
    c: &mut [f32],
    ldc: usize,
) {
    let pixels = s.h * s.w;
    assert!(supported(), "conv_direct: AVX-512F is not available");
    assert!(
        s.w <= s.wp && pixels > 0,
        "conv_direct: bad weight-gradient shape"
    );
    let a_reach = (WG_MR - 1) * s.plane + (s.h - 1) * s.wp + s.w;
    assert!(a.len() >= a_reach, "conv_direct: short input planes");
    assert!(
        b.len() >= (pixels - 1) * s.ld + NV * LANES,
        "conv_direct: short dy"
    );
    assert!(
        c.len() >= (WG_MR - 1) * ldc + NV * LANES,
        "conv_direct: short output"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is available (checked above); every read of `a` and `b` and
    // every read and write of `c` stays within the lengths asserted above (pointers between
    // uses move with `wrapping_add`, dereferenced only in bounds).
    unsafe {
        wg_avx512::<NV>(a.as_ptr(), b.as_ptr(), s, c.as_mut_ptr(), ldc);
    }
}

/// [`wg_tile`] on raw pointers.
///
/// # Safety
/// AVX-512F available; `a`, `b` and `c` valid for the accesses [`wg_tile`] checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn wg_avx512<const NV: usize>(
    a: *const f32,
    b: *const f32,
    s: &WgShape,
    c: *mut f32,
    ldc: usize,
) {
    use std::arch::x86_64::{
        _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };
    let mut acc = [[_mm512_setzero_ps(); NV]; WG_MR];
    // SAFETY (every block below): within the bounds `wg_tile` checked.
    for (r, row) in acc.iter_mut().enumerate() {
        for (v, sum) in row.iter_mut().enumerate() {
            *sum = unsafe { _mm512_loadu_ps(c.add(r * ldc + v * LANES)) };
        }
    }
    let mut bp = b;
    for y in 0..s.h {
        let line = a.wrapping_add(y * s.wp);
        for x in 0..s.w {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, reg) in bv.iter_mut().enumerate() {
                *reg = unsafe { _mm512_loadu_ps(bp.add(v * LANES)) };
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(unsafe { *line.add(r * s.plane + x) });
                for (sum, &bx) in row.iter_mut().zip(&bv) {
                    *sum = _mm512_fmadd_ps(av, bx, *sum);
                }
            }
            // Stepping pointers wrap (past the last use they may leave the allocation).
            bp = bp.wrapping_add(s.ld);
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, &sum) in row.iter().enumerate() {
            unsafe { _mm512_storeu_ps(c.add(r * ldc + v * LANES), sum) };
        }
    }
}

/// [`tile`] on raw pointers.
///
/// # Safety
/// AVX-512F available; `a`, `b` and `c` valid for the reads and writes [`tile`] checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const NV: usize>(
    a: *const f32,
    b: *const f32,
    offs: &[usize],
    c_in: usize,
    plane: usize,
    c: *mut f32,
    ldc: usize,
) {
    use std::arch::x86_64::{
        _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    let mut ap = a;
    for &off in offs {
        // SAFETY (this block and the stores): within the bounds `tile` checked.
        unsafe {
            let mut bp = b.wrapping_add(off);
            for _ in 0..c_in {
                let mut bv = [_mm512_setzero_ps(); NV];
                for (v, reg) in bv.iter_mut().enumerate() {
                    *reg = _mm512_loadu_ps(bp.add(v * LANES));
                }
                for (r, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*ap.add(r));
                    for (sum, &bx) in row.iter_mut().zip(&bv) {
                        *sum = _mm512_fmadd_ps(av, bx, *sum);
                    }
                }
                // Stepping pointers wrap (past the last use they may leave the allocation).
                ap = ap.wrapping_add(MR);
                bp = bp.wrapping_add(plane);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, &sum) in row.iter().enumerate() {
            // SAFETY: see above.
            unsafe { _mm512_storeu_ps(c.add(r * ldc + v * LANES), sum) };
        }
    }
}

/// Pixels per pixel tile of [`px_tile`].
pub(crate) const PX: usize = 6;

/// The positions of one pixel tile: where each pixel reads the source (`src`) and where
/// its outputs go within an output channel plane (`out`).
pub(crate) struct Pixels {
    pub src: [usize; PX],
    pub out: [usize; PX],
}

/// `out[(j)·ld + px.out[r]] = Σ_t Σ_i w[(t·c_in + i)·ldw + j] · src[offs[t] + i·plane +
/// px.src[r]]` for the pixels `r < PX` and output channels `j < c_valid ≤ NV·16`: output
/// channels in vectors, each pixel's input broadcast, the results scattered into the
/// channel planes (`ld` apart). No grid, so no columns computed only to be dropped.
///
/// # Panics
/// On a CPU without AVX-512F, `c_valid > NV·16`, or slices too short for those reads
/// and writes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn px_tile<const NV: usize>(
    w: &[f32],
    ldw: usize,
    src: &[f32],
    offs: &[usize],
    (c_in, plane): (usize, usize),
    px: &Pixels,
    out: &mut [f32],
    (ld, c_valid): (usize, usize),
) {
    let steps = offs.len() * c_in;
    let src_reach = offs.iter().max().copied().unwrap_or(0)
        + (c_in.max(1) - 1) * plane
        + px.src.iter().max().copied().unwrap_or(0);
    let out_reach = (c_valid.max(1) - 1) * ld + px.out.iter().max().copied().unwrap_or(0);
    assert!(supported(), "conv_direct: AVX-512F is not available");
    assert!(
        c_valid > 0 && c_valid <= NV * LANES,
        "conv_direct: bad channel count"
    );
    assert!(
        steps == 0 || w.len() >= (steps - 1) * ldw + NV * LANES,
        "conv_direct: short kernel"
    );
    assert!(src.len() > src_reach, "conv_direct: short source");
    assert!(out.len() > out_reach, "conv_direct: short output");
    assert!(
        NV * LANES * ld + out_reach < i32::MAX as usize,
        "conv_direct: output too large"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is available; every read of `w` and `src` and every (masked) write
    // of `out` stays within the lengths asserted above (pointers between uses move with
    // `wrapping_add`, dereferenced only in bounds), and the scatter offsets fit i32.
    unsafe {
        px_avx512::<NV>(
            w.as_ptr(),
            ldw,
            src.as_ptr(),
            offs,
            (c_in, plane),
            px,
            out.as_mut_ptr(),
            (ld, c_valid),
        );
    }
}

/// [`px_tile`] on raw pointers.
///
/// # Safety
/// AVX-512F available; the pointers valid for the accesses [`px_tile`] checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn px_avx512<const NV: usize>(
    w: *const f32,
    ldw: usize,
    src: *const f32,
    offs: &[usize],
    (c_in, plane): (usize, usize),
    px: &Pixels,
    out: *mut f32,
    (ld, c_valid): (usize, usize),
) {
    use std::arch::x86_64::{
        _mm512_add_epi32, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_i32scatter_ps,
        _mm512_mullo_epi32, _mm512_set1_epi32, _mm512_set1_ps, _mm512_setr_epi32,
        _mm512_setzero_ps,
    };
    let mut acc = [[_mm512_setzero_ps(); NV]; PX];
    let mut wp = w;
    for &off in offs {
        // SAFETY (this block, the scatter below): within the bounds `px_tile` checked.
        unsafe {
            let base = px.src.map(|p| src.wrapping_add(p + off));
            let mut at = 0;
            for _ in 0..c_in {
                let mut wv = [_mm512_setzero_ps(); NV];
                for (v, reg) in wv.iter_mut().enumerate() {
                    *reg = _mm512_loadu_ps(wp.add(v * LANES));
                }
                for (row, b) in acc.iter_mut().zip(&base) {
                    let a = _mm512_set1_ps(*b.add(at));
                    for (sum, &wx) in row.iter_mut().zip(&wv) {
                        *sum = _mm512_fmadd_ps(a, wx, *sum);
                    }
                }
                // Stepping pointers wrap (past the last use they may leave the allocation).
                wp = wp.wrapping_add(ldw);
                at += plane;
            }
        }
    }
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let lanes = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(ld as i32));
    for v in 0..NV {
        let idx = _mm512_add_epi32(lanes, _mm512_set1_epi32((v * LANES * ld) as i32));
        let valid = c_valid.saturating_sub(v * LANES).min(LANES);
        let mask = ((1u32 << valid) - 1) as u16;
        if mask == 0 {
            continue;
        }
        for (row, &o) in acc.iter().zip(&px.out) {
            // SAFETY: see above.
            unsafe { _mm512_mask_i32scatter_ps::<4>(out.add(o), mask, idx, row[v]) };
        }
    }
}

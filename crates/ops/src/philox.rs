//! The Philox4x32-10 counter-based block function.
//!
//! A counter-based generator maps `(key, counter)` to 128 random bits with no hidden state, so a
//! stream position is just a number: it is saved in a checkpoint as two integers, it can be
//! skipped ahead in O(1), and element `i` of a tensor can be produced independently of element
//! `i - 1` (which is what a GPU kernel needs to reproduce the CPU stream).
//!
//! # References
//! J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as
//! 1, 2, 3", SC 2011. The known-answer vectors in the tests are the Random123 `kat_vectors`
//! for `philox4x32 10`.

const MUL_0: u32 = 0xD251_1F53;
const MUL_1: u32 = 0xCD9E_8D57;
const WEYL_0: u32 = 0x9E37_79B9;
const WEYL_1: u32 = 0xBB67_AE85;

#[inline(always)]
fn mul_hi_lo(a: u32, b: u32) -> (u32, u32) {
    let product = u64::from(a) * u64::from(b);
    ((product >> 32) as u32, product as u32)
}

#[inline(always)]
fn round(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (hi0, lo0) = mul_hi_lo(MUL_0, ctr[0]);
    let (hi1, lo1) = mul_hi_lo(MUL_1, ctr[2]);
    [hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0]
}

/// Philox4x32 with 10 rounds: 128 pseudo-random bits for a 128-bit counter and a 64-bit key.
///
/// The function is a bijection of the counter for a fixed key; distinct counters give
/// statistically independent outputs (it passes BigCrush, see the reference).
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut ctr = counter;
    let mut key = key;
    for r in 0..10 {
        if r > 0 {
            key = [key[0].wrapping_add(WEYL_0), key[1].wrapping_add(WEYL_1)];
        }
        ctr = round(ctr, key);
    }
    ctr
}

/// Blocks per call of [`philox_blocks`].
pub const LANES: usize = 16;

/// A block's four 32-bit words as two 64-bit words, low word first.
#[inline]
pub fn words64(w: &[u32; 4]) -> [u64; 2] {
    [
        u64::from(w[0]) | (u64::from(w[1]) << 32),
        u64::from(w[2]) | (u64::from(w[3]) << 32),
    ]
}

crate::avx2_dispatch! {
/// [`philox4x32_10`] of the counters `[lo(first + i), hi(first + i), 0, 0]` for
/// `i < LANES`, one key: the same values, computed lane-parallel (structure of arrays, so
/// that the 32 × 32 → 64-bit products of each round run 8 or 16 at once).
pub fn philox_blocks(first: u64, key: [u32; 2], out: &mut [[u32; 4]; LANES]) -> () {
    let mut c = [[0u32; LANES]; 4];
    let [lo, hi, _, _] = &mut c;
    for (i, (lo, hi)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
        let n = first.wrapping_add(i as u64);
        *lo = n as u32;
        *hi = (n >> 32) as u32;
    }
    let mut k = key;
    for r in 0..10 {
        if r > 0 {
            k = [k[0].wrapping_add(WEYL_0), k[1].wrapping_add(WEYL_1)];
        }
        let mut next = [[0u32; LANES]; 4];
        for i in 0..LANES {
            let p0 = u64::from(MUL_0) * u64::from(c[0][i]);
            let p1 = u64::from(MUL_1) * u64::from(c[2][i]);
            next[0][i] = (p1 >> 32) as u32 ^ c[1][i] ^ k[0];
            next[1][i] = p1 as u32;
            next[2][i] = (p0 >> 32) as u32 ^ c[3][i] ^ k[1];
            next[3][i] = p0 as u32;
        }
        c = next;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = [c[0][i], c[1][i], c[2][i], c[3][i]];
    }
}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lane-parallel blocks are the scalar function's, also where the counter's low
    /// word carries into the high one and where it wraps at 2^64.
    #[test]
    fn lanes_match_the_scalar_function() {
        let key = [0xa409_3822, 0x299f_31d0];
        for first in [0, 12_345, (1u64 << 32) - 5, u64::MAX - 3] {
            let mut out = [[0u32; 4]; LANES];
            philox_blocks(first, key, &mut out);
            for (i, o) in out.iter().enumerate() {
                let n = first.wrapping_add(i as u64);
                assert_eq!(
                    *o,
                    philox4x32_10([n as u32, (n >> 32) as u32, 0, 0], key),
                    "{first} + {i}"
                );
            }
        }
    }

    // Random123 kat_vectors, lines "philox4x32 10 <ctr0..3> <key0..1> <out0..3>".
    #[test]
    fn known_answer_vectors() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }
}

//! A bounds-checked call into the `gemm` crate, the GEMM candle's CPU backend runs on.
//!
//! candle's `matmul` always writes a zeroed output (`dst = A·B`), so a layer's bias is one
//! more pass over the output, and the zeroing another. Calling `gemm` directly lets the
//! output start as the broadcast bias and the product accumulate into it
//! (`dst = dst + A·B`): one write pass instead of three passes.

use candle::Result;
use rayon::prelude::*;

/// A strided, read-only matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatRef<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    /// Row stride, in elements.
    pub rs: usize,
    /// Column stride, in elements.
    pub cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A contiguous row-major `[rows, cols]` matrix.
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose, without moving data.
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.rs)
            .and_then(|a| (self.cols - 1).checked_mul(self.cs).map(|b| (a, b)))
            .and_then(|(a, b)| a.checked_add(b));
        last.is_some_and(|l| l < self.data.len())
            && isize::try_from(self.rs).is_ok()
            && isize::try_from(self.cs).is_ok()
    }
}

/// `dst ← dst + a · b` for a contiguous row-major `dst: [m, n]`, `a: [m, k]`, `b: [k, n]`,
/// f32 or f64, on `rayon::current_num_threads()` threads of the pool it runs on (gemm keeps
/// small products on one).
///
/// # Errors
/// Mismatched sizes, a view reaching outside its slice, or a type other than f32 / f64.
pub(crate) fn gemm_acc<T: candle::WithDType>(
    dst: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
) -> Result<()> {
    gemm_into(dst, a, b, Accumulate::Yes, true)
}

/// Whether [`gemm_into`] adds to `dst` or overwrites it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accumulate {
    /// `dst ← dst + a · b`.
    Yes,
    /// `dst ← a · b` (the old contents are never read).
    No,
}

/// `dst ← a · b` or `dst ← dst + a · b` (shapes as [`gemm_acc`]); `threaded` lets gemm use
/// `rayon::current_num_threads()` threads of the pool it runs on, otherwise it runs on the
/// calling thread (for callers that are themselves parallel, one product per task).
///
/// # Errors
/// As [`gemm_acc`].
pub(crate) fn gemm_into<T: candle::WithDType>(
    dst: &mut [T],
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    accumulate: Accumulate,
    threaded: bool,
) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || dst.len() != m * n {
        candle::bail!(
            "gemm: [{m}, {k}] x [{}, {n}] into {} elements",
            b.rows,
            dst.len()
        );
    }
    if !a.in_bounds() || !b.in_bounds() {
        candle::bail!("gemm: an operand view reaches outside its storage");
    }
    if !matches!(T::DTYPE, candle::DType::F32 | candle::DType::F64) {
        candle::bail!("gemm: f32 or f64 expected, got {:?}", T::DTYPE);
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if accumulate == Accumulate::No {
            dst.fill(T::zero());
        }
        return Ok(());
    }
    // The pool this runs on (vaekit's, inside `on_pool`). Not `candle::utils::get_num_threads`:
    // without `RAYON_NUM_THREADS` set, that counts the physical cores by parsing
    // `/proc/cpuinfo` on every call (about 14,000 times in one epoch of `train-iaf`).
    let threads = rayon::current_num_threads();
    if let Some(block) = split_block(m, n) {
        // Column blocks of `dst`, each one single-threaded product (see `SPLIT_MAX_ROWS`),
        // on rayon's threads when threaded. The blocks depend on the shape alone, so the
        // rounding does not depend on the thread count or on `threaded`.
        let base = SendPtr(dst.as_mut_ptr());
        let parts = n.div_ceil(block);
        let run = |p: usize| {
            let (j0, cols) = (p * block, block.min(n - p * block));
            // SAFETY: the blocks' columns `j0..j0 + cols` are disjoint, so no element of
            // `dst` is written by two tasks; each lies in `dst` (row i, column j at
            // i * n + j < m * n); `b`'s columns `j0..j0 + cols` lie inside its slice
            // (`in_bounds` of the whole view).
            #[allow(unsafe_code)]
            unsafe {
                call(
                    (m, cols, k),
                    (base.get().add(j0), n),
                    accumulate,
                    (a.data.as_ptr(), a.rs, a.cs),
                    (b.data.as_ptr().add(j0 * b.cs), b.rs, b.cs),
                    gemm::Parallelism::None,
                );
            }
        };
        if !(threaded && threads > 1) {
            (0..parts).for_each(run);
            return Ok(());
        }
        (0..parts).into_par_iter().for_each(run);
        return Ok(());
    }
    let parallelism = if threaded && threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `dst` holds m * n elements addressed as (i, j) -> i * n + j; every element
    // (i, l) of `a` and (l, j) of `b` lies inside its slice (`in_bounds`); `dst` is a unique
    // borrow, so it overlaps neither operand.
    #[allow(unsafe_code)]
    unsafe {
        call(
            (m, n, k),
            (dst.as_mut_ptr(), n),
            accumulate,
            (a.data.as_ptr(), a.rs, a.cs),
            (b.data.as_ptr(), b.rs, b.cs),
            parallelism,
        );
    }
    Ok(())
}

/// Products of at most this many rows (a batch of up to 512 through a dense layer) and at
/// least `2 · SPLIT_COLS` columns run as single-threaded products on column blocks (`n`
/// split into `n / SPLIT_COLS` blocks, at most [`SPLIT_MAX_PARTS`], each rounded up to 16
/// columns, so the last one can be as narrow as 16), the blocks on rayon's threads when the
/// product is threaded and one after another when it is not (the per-image products of the
/// GEMM convolution path and `matmul_grads`' side-by-side products), instead of gemm's own
/// threading. gemm packs the weight of
/// `x · Wᵀ` (its left operand after it transposes the problem) on the calling thread before
/// it forks, and splits the rest statically; for a dense VAE's layers at batch 100 the other
/// thread waited through the packing and the uneven tail (about a quarter of a training
/// step's idle time). Per block, each task packs its own part. The blocks are a function of
/// the shape only (gemm picks its inner-dimension chunks from the shape it is given, so a
/// block's rounding depends on its width): the same shape rounds the same way on any
/// number of threads, threaded or not.
const SPLIT_MAX_ROWS: usize = 512;

/// The target width of [`SPLIT_MAX_ROWS`]' column blocks.
const SPLIT_COLS: usize = 96;

/// At most this many column blocks: wider products get wider blocks (the IAF step's
/// 1920-wide cMADE layers ran 3 % slower in 20 blocks than with gemm's own threading).
const SPLIT_MAX_PARTS: usize = 8;

/// The column block width for an `m × n` product, when it is split (see
/// [`SPLIT_MAX_ROWS`]): `n` in `n / SPLIT_COLS` blocks (at most [`SPLIT_MAX_PARTS`]),
/// rounded up to 16 columns.
fn split_block(m: usize, n: usize) -> Option<usize> {
    let parts = (n / SPLIT_COLS).min(SPLIT_MAX_PARTS);
    (m <= SPLIT_MAX_ROWS && parts >= 2).then(|| n.div_ceil(parts).next_multiple_of(16))
}

/// A pointer the column blocks of [`gemm_into`] share across rayon tasks.
#[derive(Clone, Copy)]
struct SendPtr<T>(*mut T);

impl<T> SendPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

// SAFETY: the tasks holding copies write disjoint elements (see `gemm_into`).
#[allow(unsafe_code)]
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as for `Send`.
#[allow(unsafe_code)]
unsafe impl<T> Sync for SendPtr<T> {}

/// `gemm::gemm` on a row-major `dst` of row stride `ld`, for `(m, n, k)`, operands as
/// `(pointer, row stride, column stride)`, `alpha = beta = 1`.
///
/// # Safety
/// Every element the shapes and strides address lies inside its allocation, `dst`'s are
/// written by no one else during the call, and `T` is f32 or f64.
#[allow(unsafe_code)]
unsafe fn call<T: candle::WithDType>(
    (m, n, k): (usize, usize, usize),
    (dst, ld): (*mut T, usize),
    accumulate: Accumulate,
    (a, a_rs, a_cs): (*const T, usize, usize),
    (b, b_rs, b_cs): (*const T, usize, usize),
    parallelism: gemm::Parallelism,
) {
    // Strides fit in isize: `in_bounds` checked the operands', `ld` is at most the length
    // of `dst`, a slice.
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            ld as isize,
            accumulate == Accumulate::Yes,
            a,
            a_cs as isize,
            a_rs as isize,
            b,
            b_cs as isize,
            b_rs as isize,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a triple loop in f64, with a transposed and a strided operand, accumulating
    /// into a non-zero `dst`, sizes above gemm's threading threshold included.
    #[test]
    fn matches_a_triple_loop() -> Result<()> {
        for (m, k, n) in [(3, 4, 5), (1, 7, 1), (130, 200, 90)] {
            let a: Vec<f64> = (0..m * k).map(|i| ((i * 7) % 13) as f64 - 6.0).collect();
            // b stored transposed: [n, k] row-major, read as [k, n].
            let bt: Vec<f64> = (0..n * k).map(|i| ((i * 5) % 11) as f64 * 0.5).collect();
            let mut dst: Vec<f64> = (0..m * n).map(|i| i as f64 * 0.25).collect();
            let mut want = dst.clone();
            for i in 0..m {
                for j in 0..n {
                    want[i * n + j] += (0..k).map(|l| a[i * k + l] * bt[j * k + l]).sum::<f64>();
                }
            }
            gemm_acc(
                &mut dst,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&bt, n, k).t(),
            )?;
            assert_eq!(dst, want, "{m}x{k}x{n}");
            // f32, within rounding.
            let (a32, b32): (Vec<f32>, Vec<f32>) = (
                a.iter().map(|&v| v as f32).collect(),
                bt.iter().map(|&v| v as f32).collect(),
            );
            let mut d32 = vec![0f32; m * n];
            gemm_acc(
                &mut d32,
                MatRef::row_major(&a32, m, k),
                MatRef::row_major(&b32, n, k).t(),
            )?;
            for (i, (&g, &w)) in d32.iter().zip(&want).enumerate() {
                let w = w - (i as f64 * 0.25);
                assert!(
                    (f64::from(g) - w).abs() <= 1e-5 * w.abs().max(1.0),
                    "{g} vs {w}"
                );
            }
        }
        Ok(())
    }

    /// The column-block split (few rows, many columns): against a triple loop in f64 on
    /// pools of 1, 2 and 3 threads (blocks of 16-column multiples with a short last one),
    /// with `b` transposed and row-major, accumulating and overwriting.
    #[test]
    fn column_blocks_match_a_triple_loop() -> Result<()> {
        let (m, k, n) = (100, 37, 333);
        assert!(split_block(m, n).is_some(), "the test misses the split");
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 7) % 13) as f64 - 6.0).collect();
        let bt: Vec<f64> = (0..n * k).map(|i| ((i * 5) % 11) as f64 * 0.5).collect();
        let mut want = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] = (0..k).map(|l| a[i * k + l] * bt[j * k + l]).sum::<f64>();
            }
        }
        let b: Vec<f64> = (0..k * n).map(|i| bt[(i % n) * k + i / n]).collect();
        for threads in [1, 2, 3] {
            let pool = crate::testing::thread_pool(threads)?;
            for transposed in [true, false] {
                let bm = match transposed {
                    true => MatRef::row_major(&bt, n, k).t(),
                    false => MatRef::row_major(&b, k, n),
                };
                let mut dst = vec![f64::NAN; m * n];
                pool.install(|| {
                    gemm_into(
                        &mut dst,
                        MatRef::row_major(&a, m, k),
                        bm,
                        Accumulate::No,
                        true,
                    )
                })?;
                assert_eq!(dst, want, "{threads} threads, transposed {transposed}");
                pool.install(|| gemm_acc(&mut dst, MatRef::row_major(&a, m, k), bm))?;
                let twice: Vec<f64> = want.iter().map(|v| 2.0 * v).collect();
                assert_eq!(dst, twice);
            }
        }
        Ok(())
    }

    /// f32 products whose rounding depends on the summation order (random data, an inner
    /// dimension above gemm's 512-element chunk): bit-identical on 1, 2 and 3 threads,
    /// threaded or not, split or not (the dense encoder's first layer at batch 20 and 100,
    /// a batch above the split, an odd width).
    #[test]
    fn f32_results_do_not_depend_on_threads() -> Result<()> {
        use vaekit_core::NoiseSource;
        let mut noise = vaekit_core::SeededNoise::new(3);
        for (m, k, n) in [
            (20, 784, 200),
            (100, 784, 200),
            (600, 784, 200),
            (64, 600, 321),
        ] {
            let dev = candle::Device::Cpu;
            let a = noise
                .standard_normal(&(m * k).into(), candle::DType::F32, &dev)?
                .to_vec1::<f32>()?;
            let w = noise
                .standard_normal(&(n * k).into(), candle::DType::F32, &dev)?
                .to_vec1::<f32>()?;
            let mut results = Vec::new();
            for threads in [1, 2, 3] {
                let pool = crate::testing::thread_pool(threads)?;
                for threaded in [true, false] {
                    let mut dst = vec![0f32; m * n];
                    pool.install(|| {
                        gemm_into(
                            &mut dst,
                            MatRef::row_major(&a, m, k),
                            MatRef::row_major(&w, n, k).t(),
                            Accumulate::No,
                            threaded,
                        )
                    })?;
                    results.push(dst);
                }
            }
            assert!(results.windows(2).all(|r| r[0] == r[1]), "{m}x{k}x{n}");
        }
        Ok(())
    }

    /// `Accumulate::No` never reads `dst` (NaN garbage there is overwritten), on one
    /// thread or several, and an empty inner dimension gives zeros.
    #[test]
    fn overwrite_ignores_the_old_contents() -> Result<()> {
        let (m, k, n) = (70, 50, 90);
        let a: Vec<f64> = (0..m * k).map(|i| ((i * 3) % 7) as f64 - 3.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| ((i * 5) % 9) as f64 - 4.0).collect();
        let mut want = vec![0.0; m * n];
        gemm_acc(
            &mut want,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
        )?;
        for threaded in [false, true] {
            let mut dst = vec![f64::NAN; m * n];
            gemm_into(
                &mut dst,
                MatRef::row_major(&a, m, k),
                MatRef::row_major(&b, k, n),
                Accumulate::No,
                threaded,
            )?;
            assert_eq!(dst, want);
        }
        let mut dst = vec![f64::NAN; 6];
        gemm_into(
            &mut dst,
            MatRef::row_major(&[], 2, 0),
            MatRef::row_major(&[], 0, 3),
            Accumulate::No,
            false,
        )?;
        assert_eq!(dst, vec![0.0; 6]);
        Ok(())
    }

    #[test]
    fn rejects_bad_sizes_and_views() {
        let a = [1f32; 6];
        let mut dst = [0f32; 4];
        assert!(
            gemm_acc(
                &mut dst,
                MatRef::row_major(&a, 2, 3),
                MatRef::row_major(&a, 2, 3)
            )
            .is_err()
        );
        let short = MatRef {
            data: &a[..5],
            rows: 3,
            cols: 2,
            rs: 2,
            cs: 1,
        };
        assert!(gemm_acc(&mut dst, MatRef::row_major(&a, 2, 3), short).is_err());
    }
}

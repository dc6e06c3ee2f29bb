//! Where vaekit's CPU work runs: on a worker of vaekit's rayon pool ([`pool`]), so that the
//! parallel parts of candle's GEMM and of vaekit's own ops fork and join inside the pool.
//!
//! Called from a thread outside the pool (a binary's `main`), every parallel op hands its
//! work to the pool and puts the caller to sleep until the pool is done: two cross-thread
//! wake-ups per op, tens of microseconds each on a virtual machine, hundreds of times per
//! training step. Run from a pool worker, the same op pushes half its work onto the worker's
//! own deque, where an idle worker steals it, and joins without sleeping.
//!
//! The library's long-running entry points (training epochs, evaluation, IS, AIS, BDMC) call
//! [`on_pool`] themselves; the measured effect is in CHANGELOG.md's history of measurements.

use rayon::prelude::*;
use std::sync::OnceLock;

/// Outputs of at least this many elements are split across rayon's threads by
/// [`for_chunks`]; below it the split costs more than it saves.
pub const PAR_MIN_ELEMS: usize = 1 << 15;

/// `f(offset, block)` over `out`: on rayon's threads in consecutive blocks of `chunk`
/// elements (the last may be shorter) when `out` has at least [`PAR_MIN_ELEMS`], else once
/// over the whole of `out` with offset 0. `offset` is the block's first index, so `f` can
/// read matching inputs at `offset..offset + block.len()`. For work whose every element
/// (or every row, with `chunk` a multiple of the row length) is computed independently, the
/// result does not depend on the split or the thread count.
pub fn for_chunks<T: Send>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    for_chunks_above(out, chunk, PAR_MIN_ELEMS, f);
}

/// [`for_chunks`] with its own threshold: split across rayon's threads when `out` has at
/// least `min_elems` elements. For work that costs far more per element than a memory
/// pass (a transcendental function per element), where a shorter output already pays for
/// the split.
pub fn for_chunks_above<T: Send>(
    out: &mut [T],
    chunk: usize,
    min_elems: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let chunk = chunk.max(1);
    if out.len() >= min_elems.max(2) {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, block)| f(i * chunk, block));
    } else {
        f(0, out);
    }
}

/// Stack of the pool's worker threads: candle's backward pass walks the graph recursively,
/// and a long HAIS or IAF graph needs more than the 2 MiB a spawned thread gets by default
/// (only the pages touched are ever committed).
pub const POOL_STACK_BYTES: usize = 256 << 20;

static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();

/// vaekit's rayon pool: `candle::utils::get_num_threads()` workers (`RAYON_NUM_THREADS`, else
/// every physical core: the count candle's GEMM splits its work for) with
/// [`POOL_STACK_BYTES`] of stack each, built on first use.
///
/// # Panics
/// When the operating system refuses to start the threads.
pub fn pool() -> &'static rayon::ThreadPool {
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(candle::utils::get_num_threads())
            .stack_size(POOL_STACK_BYTES)
            .thread_name(|i| format!("vaekit-{i}"))
            .start_handler(|_| crate::awake::mark_pool_worker())
            .build()
            .unwrap_or_else(|e| panic!("cannot start vaekit's thread pool: {e}"))
    })
}

/// Runs `f` on a worker of [`pool`] and returns its result; in place when the caller is a
/// worker of a rayon pool already.
///
/// Call it once around a binary's work (a training loop, an evaluation, a benchmark): the
/// parallel ops inside then fork and join within the pool. Results are the same as running
/// `f` in place; only where the work runs changes. A panic in `f` reaches the caller.
pub fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    pool().install(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_on_a_pool_worker_and_returns_the_result() {
        assert_eq!(rayon::current_thread_index(), None);
        let (idx, name, v) = on_pool(|| {
            let name = std::thread::current().name().map(str::to_owned);
            (rayon::current_thread_index(), name, 6 * 7)
        });
        assert!(idx.is_some(), "f ran outside the pool");
        assert!(
            name.is_some_and(|n| n.starts_with("vaekit-")),
            "f ran outside vaekit's pool"
        );
        assert_eq!(v, 42);
        // Nested: runs in place on the same worker.
        let (outer, inner) = on_pool(|| {
            let outer = rayon::current_thread_index();
            (outer, on_pool(rayon::current_thread_index))
        });
        assert_eq!(outer, inner);
    }

    #[test]
    fn deep_recursion_fits_the_worker_stack() {
        // About 8 MiB of frames: more than a default 2 MiB thread stack holds.
        fn depth(n: usize) -> usize {
            let pad = std::hint::black_box([0u8; 1024]);
            if n == 0 {
                pad[0] as usize
            } else {
                1 + depth(n - 1) + pad[n % 1024] as usize
            }
        }
        assert_eq!(on_pool(|| depth(8000)), 8000);
    }

    /// Every index is visited once with its own offset, split or not, and a long output is
    /// split into blocks of the given size.
    #[test]
    fn for_chunks_covers_every_index_once() {
        for n in [0, 5, PAR_MIN_ELEMS + 7] {
            let mut out = vec![usize::MAX; n];
            let blocks = std::sync::Mutex::new(Vec::new());
            for_chunks(&mut out, 1000, |off, block| {
                blocks.lock().map(|mut b| b.push(block.len())).ok();
                for (i, o) in block.iter_mut().enumerate() {
                    *o = off + i;
                }
            });
            assert!(out.iter().enumerate().all(|(i, &v)| v == i), "n = {n}");
            let blocks = blocks.into_inner().unwrap_or_default();
            if n >= PAR_MIN_ELEMS {
                assert_eq!(blocks.len(), n.div_ceil(1000));
                assert!(blocks.iter().all(|&l| l <= 1000));
            } else {
                assert_eq!(blocks, vec![n]);
            }
        }
    }

    #[test]
    fn panics_reach_the_caller() {
        let r = std::panic::catch_unwind(|| on_pool(|| panic!("boom")));
        assert!(r.is_err());
    }
}

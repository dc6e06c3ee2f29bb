//! Where vaekit's CPU work runs: on a worker of vaekit's rayon pool ([`pool`]), so that the
//! parallel parts of candle's GEMM and of vaekit's own ops fork and join inside the pool.
//!
//! Called from a thread outside the pool (a binary's `main`), every parallel op hands its
//! work to the pool and puts the caller to sleep until the pool is done: two cross-thread
//! wake-ups per op, tens of microseconds each on a virtual machine, hundreds of times per
//! training step. Run from a pool worker, the same op pushes half its work onto the worker's
//! own deque, where an idle worker steals it, and joins without sleeping.
//!
//! Measured with `vaekit-bench --threads 2` on the project's 2-core AMD EPYC (2026-11-21):
//! the dense VAE step went from 3.43 ms (run from `main`) to 2.66 ms (run by [`on_pool`],
//! with candle's own element-wise pool off, see `vaekit_alloc::configure`), importance
//! sampling from 54 to 44 ms.

use std::sync::OnceLock;

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

    #[test]
    fn panics_reach_the_caller() {
        let r = std::panic::catch_unwind(|| on_pool(|| panic!("boom")));
        assert!(r.is_err());
    }
}

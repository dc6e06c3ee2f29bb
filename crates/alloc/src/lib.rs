//! # vaekit-alloc
//!
//! mimalloc as the global allocator of any binary that links this crate, and
//! [`configure`], to be called first thing in `main`: mimalloc's options, candle's
//! element-wise thread pool turned off ([`CANDLE_THREADS`]), and the thread count candle
//! reads on every matrix product fixed once ([`RAYON_THREADS`]).
//!
//! Measured with `vaekit-bench` on the 2-core AMD EPYC (one thread, 2026-11-21): with
//! mimalloc's default purge delay (10 ms), one IAF step (cMADE 1920) took 90 ms and 231,415
//! page faults over the run, the kernel zeroing fresh transparent huge pages
//! (`clear_page_erms`, 25 % of the profile); after [`configure`], 68 ms and 419 faults. An
//! IWAE-50 step went from 122 to 99 ms.

// glibc malloc alone costs about 2x on candle's many small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc v2's `mi_option_t`.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// `mi_option_purge_delay` in mimalloc v2's `mi_option_t`.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory committed instead of returning it to the OS (mimalloc purges after a
/// delay by default): candle frees and re-allocates buffers of megabytes on every op, and
/// each purged page is faulted in and zeroed by the kernel again (`clear_page_erms` was 45 %
/// of an importance-sampling profile). The environment variables `MIMALLOC_PURGE_DELAY`
/// and `MIMALLOC_ARENA_EAGER_COMMIT` still take precedence. The option indices are the same
/// in mimalloc v2 and v3.
#[allow(unsafe_code)]
pub fn configure() {
    let set = |name: &str, option, value| {
        if std::env::var_os(name).is_none() {
            // SAFETY: called at the start of `main`, before any other thread exists.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    };
    set("MIMALLOC_PURGE_DELAY", PURGE_DELAY, -1);
    set("MIMALLOC_ARENA_EAGER_COMMIT", ARENA_EAGER_COMMIT, 1);
    if std::env::var_os(CANDLE_THREADS).is_none() {
        // SAFETY: as above; nothing has read the environment from another thread yet.
        unsafe { std::env::set_var(CANDLE_THREADS, "1") };
    }
    let valid = std::env::var(RAYON_THREADS)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .is_some_and(|n| n > 0);
    if !valid {
        // candle's own default (the physical cores), counted once; candle and rayon treat an
        // unparsable or zero value as unset.
        let n = candle::utils::get_num_threads();
        // SAFETY: as above.
        unsafe { std::env::set_var(RAYON_THREADS, n.to_string()) };
    }
}

/// The variable candle 0.11 reads for its thread count on every matrix product. Unset, it
/// counts the physical cores instead, by opening and parsing `/proc/cpuinfo` each time:
/// 13,658 times in one 10,000-image epoch of `train-iaf --preset iwae-dense`, whose epochs
/// took 4.6 s instead of 2.6–2.8 s with the variable set (2-core AMD EPYC, 2026-11-22).
/// [`configure`] sets it, unless it holds a positive number, to the number candle would
/// count, counted once. The variable also sizes rayon's global pool (to the physical cores,
/// where rayon's own default is the logical ones), and child processes inherit it.
pub const RAYON_THREADS: &str = "RAYON_NUM_THREADS";

/// The variable that sizes candle 0.11's own pool for large element-wise ops (a second
/// pool beside rayon's, whose idle workers spin for 25,000 rounds after every op).
/// [`configure`] sets it to 1 (no extra threads) unless it is set: vaekit's hot element-wise
/// work runs in its own ops on rayon's pool, and on a 2-core machine candle's spinning
/// workers took the cores from rayon's (the measured effect is in docs/performance.md).
/// GEMM threading (rayon) is not affected.
pub const CANDLE_THREADS: &str = "CANDLE_NUM_THREADS";

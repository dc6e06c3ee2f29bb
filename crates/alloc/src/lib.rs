//! # vaekit-alloc
//!
//! mimalloc as the global allocator of any binary that links this crate, and
//! [`configure`], to be called first thing in `main`: mimalloc's options, and candle's
//! element-wise thread pool kept from spinning ([`CANDLE_SPIN_LIMIT`]).
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
    if std::env::var_os(CANDLE_SPIN_LIMIT).is_none() {
        // SAFETY: as above; nothing has read the environment from another thread yet.
        unsafe { std::env::set_var(CANDLE_SPIN_LIMIT, SPIN_LIMIT) };
    }
}

/// The variable that bounds how long candle 0.11's own pool for large element-wise ops (a
/// second pool beside rayon's, sized by `CANDLE_NUM_THREADS`, default rayon's count) spins
/// before its idle workers park: 25,000 rounds by default, after every op, which on a
/// 2-core machine took the cores from rayon's workers. [`configure`] sets it to
/// [`SPIN_LIMIT`] unless it is set, so candle's large element-wise ops (the backward's
/// gradient accumulation above all) still run on every core.
///
/// Measured with `vaekit-bench --threads 2` (2-core AMD EPYC, 2026-11-21): with the pool
/// spinning, dense VAE step 3.63 ms and conv 3x3 13.2 ms; with it off
/// (`CANDLE_NUM_THREADS=1`, session 6) 2.66 and 12.0 ms. In session 7, three interleaved
/// runs each, pool off against a 200-round limit (medians): IWAE-50 36.6 → 35.5 ms, HAIS
/// 6.45 → 6.22 ms, dense 1.62 → 1.55 ms; IS and the convolutions unchanged.
pub const CANDLE_SPIN_LIMIT: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// The spin rounds [`configure`] allows candle's pool (see [`CANDLE_SPIN_LIMIT`]).
pub const SPIN_LIMIT: &str = "200";

//! # vaekit-alloc
//!
//! mimalloc as the global allocator of any program that links this crate, and
//! [`configure`]: mimalloc's options, candle's element-wise thread pool turned off
//! ([`CANDLE_THREADS`]), and the thread count candle reads on every matrix product fixed
//! once ([`RAYON_THREADS`]).
//!
//! **Nothing to call.** On ELF platforms (Linux, Android, FreeBSD) and Apple's, the settings
//! are applied when the program is loaded, before `main`: mimalloc's options always, and the
//! environment variables when the process has a single thread then, which `/proc/self/task`
//! tells on Linux and Android (a Rust executable's constructors run on its only thread; a
//! library opened by `dlopen` into a running process leaves the environment alone).
//! Every vaekit crate links this one through its default `fast-alloc` feature
//! (`vaekit-core/fast-alloc`), so a program that depends on the crates runs at the binary's
//! speed without ceremony. A program with its own `#[global_allocator]` turns the feature off
//! (`default-features = false` on each vaekit crate it names) and loses the thread settings
//! too: it can set the two variables below itself. Elsewhere (and in vaekit's own binaries,
//! for every platform), [`configure`] is called first thing in `main`; it is idempotent.
//!
//! Why: candle allocates and frees buffers of megabytes on every op. With mimalloc's default
//! purge delay the kernel zeroes fresh pages on every reuse, and without the thread variables
//! candle re-reads `/proc/cpuinfo` on every matrix product; docs/performance.md has the
//! measured effect.

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
///
/// Call it first thing in `main`, before any other thread exists (it writes the process
/// environment); the load-time constructor calls it for you where it can (see the crate
/// docs). Idempotent.
pub fn configure() {
    configure_allocator();
    // SAFETY: the caller runs it before any other thread exists (see above).
    #[allow(unsafe_code)]
    unsafe {
        configure_environment()
    };
}

/// mimalloc's options, unless their environment variables are set.
#[allow(unsafe_code)]
fn configure_allocator() {
    let set = |name: &str, option, value| {
        if std::env::var_os(name).is_none() {
            // SAFETY: `mi_option_set` stores one word in mimalloc's option table, which
            // mimalloc reads at its next purge or arena allocation; no other precondition.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    };
    set("MIMALLOC_PURGE_DELAY", PURGE_DELAY, -1);
    set("MIMALLOC_ARENA_EAGER_COMMIT", ARENA_EAGER_COMMIT, 1);
}

/// [`CANDLE_THREADS`] and [`RAYON_THREADS`], unless they are set.
///
/// # Safety
/// No other thread may exist: `std::env::set_var` races any concurrent read of the
/// environment.
#[allow(unsafe_code)]
unsafe fn configure_environment() {
    if std::env::var_os(CANDLE_THREADS).is_none() {
        // SAFETY: the caller guarantees a single thread.
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
/// counts the physical cores instead, by opening and parsing `/proc/cpuinfo` each time
/// (thousands of times per epoch). [`configure`] sets it, unless it holds a positive number,
/// to the number candle would count, counted once. The variable also sizes rayon's global
/// pool (to the physical cores, where rayon's own default is the logical ones), and child
/// processes inherit it.
pub const RAYON_THREADS: &str = "RAYON_NUM_THREADS";

/// The variable that sizes candle 0.11's own pool for large element-wise ops (a second
/// pool beside rayon's, whose idle workers spin for 25,000 rounds after every op).
/// [`configure`] sets it to 1 (no extra threads) unless it is set: vaekit's hot element-wise
/// work runs in its own ops on rayon's pool, and on a 2-core machine candle's spinning
/// workers took the cores from rayon's (the measured effect is in docs/performance.md).
/// GEMM threading (rayon) is not affected.
pub const CANDLE_THREADS: &str = "CANDLE_NUM_THREADS";

/// Runs [`configure`] when the program is loaded, from the platform's constructor table, so
/// that a library user gets the binary's settings without calling anything. The loader runs
/// it on the main thread before `main`, when no other thread exists yet, which is what
/// [`configure`]'s environment writes need. `#[used]` keeps the entry (rustc hands every
/// linked crate's `#[used]` statics to the linker); the crate itself is always linked, as it
/// provides the global allocator.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
#[used]
#[allow(unsafe_code)]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_AT_LOAD: extern "C" fn() = configure_at_load;

/// [`CONFIGURE_AT_LOAD`] for Mach-O.
#[cfg(target_vendor = "apple")]
#[used]
#[allow(unsafe_code)]
#[unsafe(link_section = "__DATA,__mod_init_func")]
static CONFIGURE_AT_LOAD: extern "C" fn() = configure_at_load;

#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_vendor = "apple"
))]
extern "C" fn configure_at_load() {
    // A panic must not unwind out of the loader's call.
    let _ = std::panic::catch_unwind(|| {
        configure_allocator();
        // A Rust executable's constructors run before `main`, on the only thread. A library
        // opened later (`dlopen`, a Python extension) or constructors of libraries that start
        // threads break that: the environment is then left alone.
        if single_threaded() {
            // SAFETY: exactly one thread exists.
            #[allow(unsafe_code)]
            unsafe {
                configure_environment()
            };
        }
    });
}

/// Whether the process has exactly one thread (`/proc/self/task`); `false` where that
/// cannot be told.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_vendor = "apple"
))]
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test harness's `main` never calls [`configure`]: the variables it sets can only
    /// come from the load-time constructor (or from the environment the test ran in).
    #[test]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn configure_ran_before_main() {
        assert!(std::env::var_os(CANDLE_THREADS).is_some());
        let n = std::env::var(RAYON_THREADS).expect("RAYON_NUM_THREADS set at load");
        assert!(n.parse::<usize>().is_ok_and(|n| n > 0), "{n}");
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reading an option has no precondition.
            #[allow(unsafe_code)]
            let delay = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
            assert_eq!(delay, -1, "mimalloc's purge delay is still its default");
        }
    }
}

//! [`keep_awake`]: the pool's other workers poll for work through a stretch of forking
//! work instead of being parked and woken through the kernel at every fork.
//!
//! rayon parks an idle worker after 33 rounds of `sched_yield` (a few microseconds); the
//! next fork then wakes it through a futex, tens of microseconds on a virtual machine before
//! the worker takes its half. A dense VAE training step forks a few dozen times with serial
//! work in between (the backward's bookkeeping, small element-wise ops), and without this its
//! worker is parked and woken about ten times per step. OpenMP does the same for PyTorch: its workers spin for a while
//! after each parallel region before they sleep.
//!
//! # How
//! A poller is a rayon job, broadcast to the pool's other workers, that calls
//! `rayon::yield_now` (find a job, run it) until no region is active. A job can be taken up
//! wherever its worker looks for work, also inside a join that waits for a stolen half; a
//! poller that ran there would hold up that join until the region ends, and if the join
//! belongs to the region, the region never ends. Four rules keep pollers at the top of
//! their worker's stack:
//! - a region forks nothing before every other worker polls: [`keep_awake`] waits (up to
//!   [`START_LIMIT`]) for the pollers to start, and a worker that is idle takes the
//!   broadcast up at its top level, since the region has no jobs yet to be inside of; when
//!   the wait gives up (a worker descheduled), the broadcast's late copies return at once;
//! - only a region that starts while no other region runs broadcasts: a region inside a
//!   region, on whichever thread, is served by the pollers already there;
//! - one poller per worker: a poller taken up while another runs lower on the same stack
//!   returns at once (the lower one serves every region), and so does one taken up by a
//!   thread that is running a region itself (it would be inside that region's `f`);
//! - the last resort, for work outside that discipline (jobs that outlive the region that
//!   forked them, say): a poller that finds no work for [`IDLE_LIMIT`] returns. A join it
//!   interrupted waits until then, or, while other work keeps coming, until no region runs.
//!
//! A poller that left after [`IDLE_LIMIT`] (a serial stretch longer than that inside the
//! region) is not replaced before the next region that starts alone.
//!
//! Only vaekit's own pool ([`crate::pool`]) is kept awake; elsewhere [`keep_awake`] only
//! runs `f`.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Regions now running ([`keep_awake`] calls that have not returned).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);

/// Workers now polling.
static POLLERS: AtomicUsize = AtomicUsize::new(0);

/// How long a region waits for the pollers to start before it runs without them (a parked
/// worker wakes within microseconds; a pool's first region also waits for its threads to
/// start).
pub const START_LIMIT: Duration = Duration::from_millis(50);

/// How long a poller that finds no work keeps polling (OpenMP's default block time). Long
/// enough not to drop out over a region's slow serial stretches: a training step's first
/// touch of fresh memory stalled the first steps' owner for milliseconds, and a 5 ms limit
/// left the dense VAE benchmark without its poller for the rest of the run.
pub const IDLE_LIMIT: Duration = Duration::from_millis(200);

thread_local! {
    /// Whether this thread is a worker of vaekit's pool.
    static POOL_WORKER: Cell<bool> = const { Cell::new(false) };
    /// Whether a poller runs on this thread (lower on its stack, when asked from a poller).
    static POLLING: Cell<bool> = const { Cell::new(false) };
    /// Regions this thread is running (its `f`s not returned yet).
    static OWNING: Cell<usize> = const { Cell::new(0) };
}

/// Marks the calling thread as a worker of vaekit's pool (its start handler).
pub(crate) fn mark_pool_worker() {
    POOL_WORKER.set(true);
}

/// Runs `f` on the calling worker of vaekit's pool while the pool's other workers poll for
/// work, from before `f` forks anything until `f` returns (or unwinds). Elsewhere (outside
/// the pool, on a pool of one thread) it only runs `f`. Results are those of `f` alone.
///
/// Wrap stretches of forking work (a training epoch, an annealing run): the other workers
/// use their cores fully for the duration of `f`.
pub fn keep_awake<R>(f: impl FnOnce() -> R) -> R {
    let (Some(me), true) = (rayon::current_thread_index(), POOL_WORKER.get()) else {
        return f();
    };
    let others = rayon::current_num_threads().saturating_sub(1);
    if others == 0 {
        return f();
    }
    /// Ends the region when dropped, also on unwinding.
    struct Region;
    impl Drop for Region {
        fn drop(&mut self) {
            ACTIVE.fetch_sub(1, Ordering::SeqCst);
            OWNING.set(OWNING.get() - 1);
        }
    }
    // A region inside a region (on any thread), or inside a job a poller runs, is served
    // by the pollers that are there already: only a region that starts alone broadcasts.
    let inside = OWNING.get() > 0 || POLLING.get();
    OWNING.set(OWNING.get() + 1);
    let others_active = ACTIVE.fetch_add(1, Ordering::SeqCst) > 0;
    let _region = Region;
    if !inside && !others_active && POLLERS.load(Ordering::SeqCst) < others {
        // Cleared when the wait below gives up: a copy taken up after that might be inside
        // one of this region's jobs, so it returns at once.
        let timely = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&timely);
        rayon::spawn_broadcast(move |ctx| {
            // The caller's own copy runs when it next looks for work: it returns at once.
            if ctx.index() != me && flag.load(Ordering::SeqCst) {
                poll();
            }
        });
        let t = Instant::now();
        while POLLERS.load(Ordering::SeqCst) < others {
            if t.elapsed() >= START_LIMIT {
                timely.store(false, Ordering::SeqCst);
                break;
            }
            std::hint::spin_loop();
        }
    }
    f()
}

/// Runs jobs as they come while a region is active (see the module's rules).
fn poll() {
    if POLLING.get() || OWNING.get() > 0 {
        return;
    }
    /// Uncounts the poller (when counted) and unmarks the thread when dropped, also on
    /// unwinding.
    struct Mark {
        counted: bool,
    }
    impl Drop for Mark {
        fn drop(&mut self) {
            if self.counted {
                POLLERS.fetch_sub(1, Ordering::SeqCst);
            }
            POLLING.set(false);
        }
    }
    POLLING.set(true);
    POLLERS.fetch_add(1, Ordering::SeqCst);
    let mut mark = Mark { counted: true };
    // Idle polls since the last job, and when the idle stretch began (read off the clock
    // every 64 idle polls only: a clock read costs about as much as a poll).
    let (mut idle, mut idle_since) = (0u32, Instant::now());
    loop {
        while ACTIVE.load(Ordering::SeqCst) > 0 {
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                idle = 0;
                continue;
            }
            if idle == 0 {
                idle_since = Instant::now();
            }
            idle = idle.wrapping_add(1);
            if idle.is_multiple_of(64) && idle_since.elapsed() > IDLE_LIMIT {
                return;
            }
            std::hint::spin_loop();
        }
        // No region: leave, unless one began in between. A region counts itself before it
        // reads the pollers, and a poller uncounts itself before it reads the regions, so
        // either the new region sees this poller gone (and broadcasts a new one) or this
        // poller sees the region (and stays).
        POLLERS.fetch_sub(1, Ordering::SeqCst);
        mark.counted = false;
        if ACTIVE.load(Ordering::SeqCst) == 0 {
            return;
        }
        POLLERS.fetch_add(1, Ordering::SeqCst);
        mark.counted = true;
    }
}

/// Workers now polling, for tests.
#[cfg(test)]
pub(crate) fn pollers() -> usize {
    POLLERS.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::on_pool;
    use rayon::prelude::*;

    /// Waits up to ten seconds for `cond`.
    fn eventually(cond: impl Fn() -> bool) -> bool {
        within(Duration::from_secs(10), cond)
    }

    /// Waits up to `limit` for `cond`.
    fn within(limit: Duration, cond: impl Fn() -> bool) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            if cond() {
                return true;
            }
            std::thread::yield_now();
        }
        false
    }

    /// About a microsecond of work; a small result.
    fn work(x: usize) -> usize {
        (0..200).fold(x, |a, i| {
            std::hint::black_box(a.wrapping_mul(31).wrapping_add(i))
        }) % 997
    }

    /// Nested forks, inside regions nested in both workers.
    fn forks(k: usize, depth: usize) -> usize {
        let inner = |i: usize| -> usize {
            if depth > 0 && i.is_multiple_of(5) {
                keep_awake(|| forks(k + i, depth - 1))
            } else {
                (0..8usize).into_par_iter().map(|j| work(i * j + k)).sum()
            }
        };
        (0..16usize).into_par_iter().map(inner).sum()
    }

    fn forks_serial(k: usize, depth: usize) -> usize {
        (0..16usize)
            .map(|i| {
                if depth > 0 && i.is_multiple_of(5) {
                    forks_serial(k + i, depth - 1)
                } else {
                    (0..8).map(|j| work(i * j + k)).sum()
                }
            })
            .sum()
    }

    /// One test, so that no other region runs in this process meanwhile: outside the pool
    /// `keep_awake` only runs `f`; inside, the other workers poll while `f` runs and stop
    /// after it returns or panics; back-to-back regions, and regions nested on either
    /// worker, full of nested forks, finish with the serial result (a poller once held up a
    /// join it interrupted, and the region waiting for that join never ended).
    #[test]
    fn keep_awake_polls_during_regions_and_never_holds_up_a_join() {
        assert_eq!(keep_awake(|| 7), 7);
        assert_eq!(pollers(), 0);
        let others = crate::pool().current_num_threads() - 1;
        // Computed first: a busy third thread would take turns with the pool's two.
        let want: usize = (0..2000).map(|k| forks_serial(k, 2)).sum();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let total = on_pool(|| {
                // A region whose workers did not start polling within `START_LIMIT` (a loaded
                // machine) runs without them; one of a few regions gets them.
                let started = (0..20)
                    .any(|_| keep_awake(|| within(Duration::from_secs(1), || pollers() == others)));
                assert!(started, "pollers started");
                (0..2000usize)
                    .map(|k| keep_awake(|| forks(k, 2)))
                    .sum::<usize>()
            });
            tx.send(total).ok();
        });
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(total) => assert_eq!(total, want),
            Err(_) => panic!("keep_awake regions did not finish"),
        }
        assert!(eventually(|| pollers() == 0), "pollers stopped");
        let r = std::panic::catch_unwind(|| on_pool(|| keep_awake(|| panic!("boom"))));
        assert!(r.is_err());
        assert!(
            eventually(|| pollers() == 0),
            "pollers stopped after a panic"
        );
        assert_eq!(ACTIVE.load(Ordering::SeqCst), 0);
    }
}

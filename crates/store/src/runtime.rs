//! [`RaftRuntime`]: openraft's async runtime for Switchyard: tokio, with a random source that
//! can be seeded.
//!
//! openraft draws random numbers in two places: every election timeout (uniform in
//! `election_timeout_min..election_timeout_max`, resampled at each timer reset) and the phase
//! of its tick loop (the first tick waits a random time in `[period, 2 * period)`). With
//! openraft's own `TokioRuntime` both come from `rand::rng()`, which the operating system
//! seeds, so two runs of one simulation seed drifted apart a few milliseconds into the run.
//!
//! This runtime is `TokioRuntime` in every respect but one: where openraft asks for a
//! random number generator, it gets one seeded from a *seed scope* when there is one.
//!
//! ```text
//!   RaftRuntime::scope(seed, Raft::new(..))         no scope (production)
//!     thread_rng(): SmallRng(seed), seed := g(seed)   thread_rng(): seeded from rand::rng()
//!     spawn(task):  task runs in scope(f(seed)),      spawn(task): plain tokio::spawn
//!                   seed := g(seed)
//! ```
//!
//! Every task openraft spawns from inside a scope (its core, tick loop, state-machine worker,
//! and, from the core, every replication, heartbeat and snapshot task) runs in a scope of its
//! own whose seed is derived from its parent's, so the whole Raft instance draws one fixed
//! sequence per task as long as its tasks run in a fixed order, which the simulation
//! guarantees. The seed lives in a tokio task-local, so two Raft instances on one thread
//! (the simulation runs a whole cluster on one thread) never share a sequence.
//!
//! Why fall back to the OS rather than panic outside a scope (as openraft-rt's
//! `DeterministicRng` does): a production node must never stop because some code path
//! reached openraft from a task without a seed. Randomized election timeouts exist to break
//! symmetry between nodes, and the OS source is the right one for that. The simulation
//! instead checks [`RaftRuntime::unseeded_draws`] on its thread, so an unseeded draw there is
//! a bug it reports, not drift it silently lives with.

use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::io;
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend, TokioRuntime};
use rand::SeedableRng;
use rand::rngs::SmallRng;

tokio::task_local! {
    /// The seed of the current task's random sequence, advanced at every draw and spawn.
    static SEED: Cell<u64>;
}

thread_local! {
    /// Draws made on this thread outside any seed scope.
    static UNSEEDED_DRAWS: Cell<u64> = const { Cell::new(0) };
}

/// Weyl increment for the seed a spawned task starts from.
const CHILD_GAMMA: u64 = switchyard_core::hash::SPLITMIX64_GAMMA;
/// Weyl increment for the next seed of the task that drew or spawned.
const NEXT_GAMMA: u64 = 0xD1B5_4A32_D192_ED03;

/// SplitMix64's finalizer applied to `seed + gamma`: a bijection on `u64` that mixes every
/// input bit into the output; two gammas give two unrelated successors of one seed.
fn mix(seed: u64, gamma: u64) -> u64 {
    switchyard_core::hash::splitmix64_mix(seed.wrapping_add(gamma))
}

/// The current task's seed, advanced past this use; `None` outside a scope.
fn take_seed() -> Option<u64> {
    SEED.try_with(|cell| {
        let seed = cell.get();
        cell.set(mix(seed, NEXT_GAMMA));
        seed
    })
    .ok()
}

/// openraft's async runtime: [`TokioRuntime`] with a random source that a seed scope fixes.
pub struct RaftRuntime {
    inner: TokioRuntime,
}

impl fmt::Debug for RaftRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftRuntime").finish_non_exhaustive()
    }
}

impl RaftRuntime {
    /// Runs `future` with `seed` fixing every random draw openraft makes in it and in every
    /// task it spawns through this runtime, transitively. Wrap `Raft::new` (or whatever
    /// awaits it) to make a Raft instance replay.
    pub fn scope<F: Future>(seed: u64, future: F) -> impl Future<Output = F::Output> {
        SEED.scope(Cell::new(seed), future)
    }

    /// Random generators handed out on this thread outside any seed scope, since it started.
    /// Always zero on a simulation thread whose Raft instances were all started in a scope.
    pub fn unseeded_draws() -> u64 {
        UNSEEDED_DRAWS.with(Cell::get)
    }
}

impl AsyncRuntime for RaftRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = <TokioRuntime as AsyncRuntime>::Instant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = SmallRng;
    type Mpsc = <TokioRuntime as AsyncRuntime>::Mpsc;
    type Watch = <TokioRuntime as AsyncRuntime>::Watch;
    type Oneshot = <TokioRuntime as AsyncRuntime>::Oneshot;
    type Mutex<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::Mutex<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        match take_seed() {
            Some(seed) => {
                TokioRuntime::spawn(SEED.scope(Cell::new(mix(seed, CHILD_GAMMA)), future))
            }
            None => TokioRuntime::spawn(future),
        }
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        match take_seed() {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => {
                UNSEEDED_DRAWS.with(|n| n.set(n.get() + 1));
                SmallRng::from_rng(&mut rand::rng())
            }
        }
    }

    fn new(threads: usize) -> Self {
        Self {
            inner: TokioRuntime::new(threads),
        }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.inner.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        TokioRuntime::spawn_blocking(f)
    }
}

#[cfg(test)]
mod tests {
    use rand::RngExt;

    use super::*;

    fn draws(n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| RaftRuntime::thread_rng().random_range(0..1_000_000))
            .collect()
    }

    #[tokio::test]
    async fn a_scope_fixes_every_draw_and_every_spawned_task() {
        // Goal: one seed, one sequence, in the scoped task and in the tasks it spawns.
        let run = |seed| {
            RaftRuntime::scope(seed, async {
                let mine = draws(4);
                let child = RaftRuntime::spawn(async { draws(4) }).await.expect("child");
                let grandchild =
                    RaftRuntime::spawn(async { RaftRuntime::spawn(async { draws(4) }).await })
                        .await
                        .expect("child")
                        .expect("grandchild");
                (mine, child, grandchild)
            })
        };
        let before = RaftRuntime::unseeded_draws();
        let first = run(7).await;
        let second = run(7).await;
        let other = run(8).await;
        assert_eq!(first, second);
        assert_ne!(first, other);
        assert_ne!(
            first.0, first.1,
            "a child must not replay its parent's draws"
        );
        assert_ne!(
            first.1, first.2,
            "a grandchild must not replay its parent's draws"
        );
        assert_eq!(RaftRuntime::unseeded_draws(), before);
    }

    #[tokio::test]
    async fn outside_a_scope_draws_come_from_the_os_and_are_counted() {
        // Goal: production (no scope) keeps working, and the simulation can tell.
        let before = RaftRuntime::unseeded_draws();
        let _ = draws(3);
        let spawned = RaftRuntime::spawn(async { draws(1).len() }).await;
        assert_eq!(spawned.expect("task"), 1);
        assert_eq!(RaftRuntime::unseeded_draws(), before + 3 + 1);
    }
}

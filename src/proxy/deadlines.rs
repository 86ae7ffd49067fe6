//! Coarse deadlines for the time limits armed on every keep-alive request: the client's header
//! read timeout (see [`super::header_timeout`]) and the upstream timeout. Nearly all of them are
//! cancelled or moved long before they are due, so arming one must cost next to nothing. A tokio
//! timer links an entry into the driver's wheel under its lock and unlinks it again; here a
//! deadline is a slot in a table of the worker's own, which costs fewer instructions per request
//! (docs/PERFORMANCE.md).
//!
//! One task per worker looks at the table every [`TICK`] and wakes what is due, so a deadline
//! fires up to one tick late. [`Deadlines::now`] is the time of the last tick (no clock read),
//! so a deadline reckoned from it may fire up to one tick early. Both are noise against limits
//! counted in seconds.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often due deadlines are looked for.
pub const TICK: Duration = Duration::from_millis(50);

/// One worker's deadlines. Cloning shares the table.
#[derive(Clone)]
pub struct Deadlines {
    table: Arc<Mutex<Table>>,
}

struct Table {
    /// The time of the last tick.
    now: Instant,
    slots: Vec<Slot>,
    /// Indices of free slots.
    free: Vec<usize>,
}

struct Slot {
    /// Counts the deadlines that held this slot, so a [`Mover`] of an earlier one moves nothing.
    generation: u64,
    state: State,
}

enum State {
    Free,
    /// Due at `at`; never while `at` is `None` (parked).
    Armed {
        at: Option<Instant>,
        waker: Option<Waker>,
    },
    Due,
}

impl Deadlines {
    /// A table for the calling worker, and the task on the current runtime that wakes what is
    /// due; the task ends with the last handle to the table.
    pub fn start() -> Self {
        let table = Arc::new(Mutex::new(Table { now: Instant::now(), slots: Vec::new(), free: Vec::new() }));
        let watched = Arc::downgrade(&table);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(TICK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(table) = watched.upgrade() else { return };
                lock(&table).tick(Instant::now());
            }
        });
        Self { table }
    }

    /// The time of the last tick.
    pub fn now(&self) -> Instant {
        lock(&self.table).now
    }

    /// A future that completes once `at` has passed (seen at a tick).
    pub fn at(&self, at: Instant) -> Deadline {
        let mut table = lock(&self.table);
        let state = State::Armed { at: Some(at), waker: None };
        let index = match table.free.pop() {
            Some(index) => {
                table.slots[index].state = state;
                index
            }
            None => {
                table.slots.push(Slot { generation: 0, state });
                table.slots.len() - 1
            }
        };
        let generation = table.slots[index].generation;
        Deadline { table: self.table.clone(), index, generation }
    }
}

impl Table {
    fn tick(&mut self, now: Instant) {
        self.now = now;
        for slot in &mut self.slots {
            if let State::Armed { at: Some(at), waker } = &mut slot.state {
                if *at <= now {
                    let waker = waker.take();
                    slot.state = State::Due;
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
            }
        }
    }
}

fn lock(table: &Mutex<Table>) -> MutexGuard<'_, Table> {
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One armed deadline; dropping it frees its slot.
pub struct Deadline {
    table: Arc<Mutex<Table>>,
    index: usize,
    generation: u64,
}

impl Deadline {
    /// A handle that moves this deadline from elsewhere; it moves nothing once the deadline is
    /// dropped.
    pub fn mover(&self) -> Mover {
        Mover { table: self.table.clone(), index: self.index, generation: self.generation }
    }
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut table = lock(&self.table);
        match &mut table.slots[self.index].state {
            State::Armed { waker: Some(waker), .. } if waker.will_wake(cx.waker()) => Poll::Pending,
            State::Armed { waker, .. } => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
            State::Due | State::Free => Poll::Ready(()),
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        let slot = &mut table.slots[self.index];
        slot.state = State::Free;
        slot.generation += 1;
        table.free.push(self.index);
    }
}

/// Moves a [`Deadline`] it does not own: parks it (never due) or sets it again.
#[derive(Clone)]
pub struct Mover {
    table: Arc<Mutex<Table>>,
    index: usize,
    generation: u64,
}

impl Mover {
    /// Never due, until set again.
    pub fn park(&self) {
        self.set(|_| None);
    }

    /// Due `after` the last tick.
    pub fn set_after(&self, after: Duration) {
        self.set(|now| Some(now + after));
    }

    fn set(&self, at: impl FnOnce(Instant) -> Option<Instant>) {
        let mut table = lock(&self.table);
        let at = at(table.now);
        let slot = &mut table.slots[self.index];
        if slot.generation != self.generation {
            return;
        }
        slot.state = match std::mem::replace(&mut slot.state, State::Free) {
            State::Armed { waker, .. } => State::Armed { at, waker },
            State::Due => State::Armed { at, waker: None },
            State::Free => State::Free,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deadline_fires_once_its_time_has_passed() {
        let deadlines = Deadlines::start();
        let started = Instant::now();
        deadlines.at(started + Duration::from_millis(120)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(120), "fired early: {waited:?}");
    }

    fn pending(deadline: &mut Deadline) -> bool {
        Pin::new(deadline).poll(&mut Context::from_waker(Waker::noop())).is_pending()
    }

    #[tokio::test]
    async fn cancelled_deadlines_free_their_slots_and_fire_no_more() {
        let deadlines = Deadlines::start();
        let far = Instant::now() + Duration::from_secs(3600);
        for _ in 0..100 {
            assert!(pending(&mut deadlines.at(far)));
        }
        // Each was dropped before the next was armed: one slot served them all.
        assert_eq!(lock(&deadlines.table).slots.len(), 1);
        let mut later = deadlines.at(far);
        deadlines.at(Instant::now()).await;
        assert!(pending(&mut later), "a deadline an hour away fired");
        assert_eq!(lock(&deadlines.table).slots.len(), 2);
    }

    #[tokio::test]
    async fn a_mover_parks_and_sets_its_own_deadline_only() {
        let deadlines = Deadlines::start();
        let mut deadline = deadlines.at(Instant::now());
        let mover = deadline.mover();
        mover.park();
        tokio::time::sleep(TICK * 3).await;
        assert!(pending(&mut deadline), "a parked deadline fired");
        mover.set_after(Duration::ZERO);
        deadline.await;
        // The slot now holds another deadline: the old mover must leave it alone.
        let mut other = deadlines.at(Instant::now() + Duration::from_secs(3600));
        mover.set_after(Duration::ZERO);
        tokio::time::sleep(TICK * 3).await;
        assert!(pending(&mut other), "a stale mover moved another deadline");
    }

    #[tokio::test]
    async fn the_ticker_keeps_no_table_alive() {
        let deadlines = Deadlines::start();
        let watched = Arc::downgrade(&deadlines.table);
        drop(deadlines);
        tokio::time::sleep(TICK * 3).await;
        assert!(watched.upgrade().is_none());
    }
}

//! Coarse deadlines for the time limits armed on every keep-alive request: the client's header
//! read timeout (hyper's HTTP/1.1 timer) and the upstream timeout. Nearly all of them are
//! cancelled long before they are due, so arming one must cost next to nothing. A tokio timer
//! links an entry into the driver's wheel under its lock and unlinks it again, and hyper boxes a
//! new one for every request: about 3,000 instructions per keep-alive request for the two
//! (callgrind). Here a deadline is a slot in a table of the worker's own.
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

enum Slot {
    Free,
    Armed { at: Instant, waker: Option<Waker> },
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
        let slot = Slot::Armed { at, waker: None };
        let index = match table.free.pop() {
            Some(index) => {
                table.slots[index] = slot;
                index
            }
            None => {
                table.slots.push(slot);
                table.slots.len() - 1
            }
        };
        Deadline { table: self.table.clone(), index }
    }
}

impl Table {
    fn tick(&mut self, now: Instant) {
        self.now = now;
        for slot in &mut self.slots {
            if let Slot::Armed { at, waker } = slot {
                if *at <= now {
                    let waker = waker.take();
                    *slot = Slot::Due;
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
}

impl Future for Deadline {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut table = lock(&self.table);
        match &mut table.slots[self.index] {
            Slot::Armed { waker: Some(waker), .. } if waker.will_wake(cx.waker()) => Poll::Pending,
            Slot::Armed { waker, .. } => {
                *waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Slot::Due | Slot::Free => Poll::Ready(()),
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        table.slots[self.index] = Slot::Free;
        table.free.push(self.index);
    }
}

impl hyper::rt::Sleep for Deadline {}

impl hyper::rt::Timer for Deadlines {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.at(self.now() + duration))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(self.at(deadline))
    }

    fn now(&self) -> Instant {
        Deadlines::now(self)
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
    async fn the_ticker_keeps_no_table_alive() {
        let deadlines = Deadlines::start();
        let watched = Arc::downgrade(&deadlines.table);
        drop(deadlines);
        tokio::time::sleep(TICK * 3).await;
        assert!(watched.upgrade().is_none());
    }
}

//! Memory upkeep on each worker: a hook the binary installs (the allocator's own collection) that
//! every worker runs once a second. The allocator returns freed memory to the system some
//! milliseconds after it is freed, but only from within a later allocator call on the same
//! thread: a worker that goes quiet after a burst of connections (a thousand trickling clients
//! that then left) would otherwise keep their memory resident indefinitely.
//!
//! The library installs nothing itself (it has no unsafe code and does not choose the allocator);
//! without a hook no task runs.

use std::sync::OnceLock;
use std::time::Duration;

/// How often each worker runs the hook: rare enough to cost nothing, soon enough that memory comes
/// back within seconds of a burst.
const EVERY: Duration = Duration::from_secs(1);

static HOOK: OnceLock<fn()> = OnceLock::new();

/// Install the hook every worker runs (the first one installed stays).
pub fn install(hook: fn()) {
    let _ = HOOK.set(hook);
}

/// Start the calling worker's upkeep task, when a hook is installed; it ends when `stop` fires.
pub fn start(mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(&hook) = HOOK.get() else { return };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => hook(),
                _ = stop.changed() => return,
            }
        }
    });
}

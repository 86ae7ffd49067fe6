//! What the binding layer counts, lock-free; the proxy's `/metrics` renders it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::engine::{Mode, Verdict};

#[derive(Default)]
pub struct Counters {
    /// `[verdict][mode]`, in the order of `Verdict::ALL` × `Mode::ALL`.
    decisions: [[AtomicU64; 3]; 4],
    pub metadata_write_failures: AtomicU64,
    pub revoked_uses: AtomicU64,
    pub store_errors: AtomicU64,
    /// Logout-route requests whose session could not be ended.
    pub logout_end_failures: AtomicU64,
    /// Action invocations that threw, rejected, ran out of time or memory, or asked for something
    /// invalid.
    pub action_errors: AtomicU64,
}

impl Counters {
    pub fn decided(&self, verdict: Verdict, mode: Mode) {
        let row = Verdict::ALL.iter().position(|&v| v == verdict);
        let column = Mode::ALL.iter().position(|&m| m == mode);
        if let Some(cell) = row.zip(column).and_then(|(r, c)| self.decisions.get(r)?.get(c)) {
            cell.fetch_add(1, Relaxed);
        }
    }

    /// Decisions so far, by verdict and mode.
    pub fn decisions(&self) -> impl Iterator<Item = (Verdict, Mode, u64)> + '_ {
        Verdict::ALL.iter().zip(&self.decisions).flat_map(|(&verdict, row)| {
            Mode::ALL.iter().zip(row).map(move |(&mode, cell)| (verdict, mode, cell.load(Relaxed)))
        })
    }
}

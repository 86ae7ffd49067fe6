//! Where audit lines go: [`Writer`], a bounded queue to a thread of its own that writes them (the
//! sink `serve` uses), and [`JsonLines`], which writes on the caller's thread (for tests and
//! tools). A slow reader (a stdout pipe nobody drains, a stalled disk) never stalls a request: when
//! the queue is full, a line is dropped and counted instead.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{erased, AuditSink};

/// JSON lines to any writer (stdout, a file, a buffer in tests).
pub struct JsonLines<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonLines<W> {
    pub fn new(out: W) -> Self {
        Self { out: Mutex::new(out) }
    }

    /// The writer back (tests read what was written).
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

impl<W: Write + Send> AuditSink for JsonLines<W> {
    fn record(&self, event: &dyn erased::Event) {
        // The line and its newline in one write: one system call on an unbuffered file (where
        // `writeln!` makes two), and whole lines for other appenders to the same file.
        let Some(line) = line_of(event) else { return };
        // A writer that panicked mid-line leaves at worst a torn line; keep auditing.
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::error!(error = %e, "audit line not written");
        }
    }
}

/// What the writer thread is sent.
enum Message {
    Line(String),
    /// Flush what came before, then answer.
    Flush(mpsc::Sender<()>),
}

/// Audit lines written by a thread of their own, through a queue of bounded length.
pub struct Writer {
    queue: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
}

impl Writer {
    /// Lines queued at most by default (about 600 bytes each).
    pub const DEFAULT_QUEUE: usize = 8192;

    /// Starts the thread writing to `out`; at most `queue` lines wait for it.
    pub fn spawn<W: Write + Send + 'static>(out: W, queue: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(queue.max(1));
        std::thread::Builder::new().name("helloguard-audit".into()).spawn(move || write_lines(out, receiver))?;
        Ok(Self { queue: sender, dropped: Arc::default() })
    }

    /// Waits up to `limit` until every line queued so far is written and flushed.
    pub fn flush(&self, limit: Duration) -> bool {
        let (done, finished) = mpsc::channel();
        let deadline = std::time::Instant::now() + limit;
        let mut message = Message::Flush(done);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                    message = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return false,
            }
        }
        finished.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())).is_ok()
    }
}

impl AuditSink for Writer {
    fn record(&self, event: &dyn erased::Event) {
        let Some(line) = line_of(event) else { return };
        if self.queue.try_send(Message::Line(line)).is_err() {
            self.dropped.fetch_add(1, Relaxed);
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

/// How long the writer lets lines gather after it wrote what was queued. Waking the thread costs
/// both sides more than writing a line does; while it lingers no sender has to wake it, so under
/// load it wakes once per batch, not once per line. A line waits at most about this long.
const LINGER: Duration = Duration::from_millis(10);

/// The writer thread: what is queued, written and flushed, then a pause of [`LINGER`]. A write
/// error is logged once per run of errors and the line lost; the thread keeps going.
fn write_lines<W: Write>(out: W, queue: Receiver<Message>) {
    let mut out = std::io::BufWriter::new(out);
    let mut failing = false;
    let report = |result: std::io::Result<()>, failing: &mut bool| match result {
        Ok(()) => *failing = false,
        Err(error) if !*failing => {
            *failing = true;
            tracing::error!(%error, "audit lines not written");
        }
        Err(_) => {}
    };
    while let Ok(message) = queue.recv() {
        let mut next = Some(message);
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => report(out.write_all(line.as_bytes()), &mut failing),
                Message::Flush(done) => {
                    report(out.flush(), &mut failing);
                    let _ = done.send(());
                }
            }
            next = queue.try_recv().ok();
        }
        report(out.flush(), &mut failing);
        std::thread::sleep(LINGER);
    }
}

/// The event as one line, newline included; `None` (logged) if it does not serialize.
fn line_of(event: &dyn erased::Event) -> Option<String> {
    match event.to_json_line() {
        Ok(mut line) => {
            line.push('\n');
            Some(line)
        }
        Err(e) => {
            tracing::error!(error = %e, "audit event did not serialize");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that keeps each `write` call apart, as a file's system calls are.
    #[derive(Default)]
    struct Calls(Vec<Vec<u8>>);

    impl Write for Calls {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.push(bytes.to_vec());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_event_is_one_whole_line_in_one_write() {
        let sink = JsonLines::new(Calls::default());
        sink.record(&serde_json::json!({"event": "first"}));
        sink.record(&serde_json::json!({"event": "second", "n": 2}));
        let calls = sink.into_inner().0;
        assert_eq!(calls.len(), 2, "one write per event");
        for (call, event) in calls.iter().zip(["first", "second"]) {
            let text = std::str::from_utf8(call).unwrap();
            assert!(text.ends_with('\n') && text.matches('\n').count() == 1, "{text:?}");
            let line: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(line["event"], event);
        }
    }

    /// A reader that stops reading (a pipe nobody drains): the writer thread blocks, the queue
    /// fills, and further lines are dropped and counted; `record` never waits.
    #[test]
    fn a_stalled_reader_costs_lines_not_callers() {
        struct Stalled(std::sync::mpsc::Receiver<()>);
        impl Write for Stalled {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                let _ = self.0.recv(); // blocks until the test ends
                Err(std::io::Error::other("gone"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (_hold, stalled) = std::sync::mpsc::channel();
        let writer = Writer::spawn(Stalled(stalled), 4).unwrap();
        let started = std::time::Instant::now();
        for i in 0..100 {
            writer.record(&serde_json::json!({"event": "x", "i": i}));
        }
        assert!(started.elapsed() < Duration::from_secs(2), "record never blocks");
        // One line in the thread's hands, four queued: the rest were dropped.
        assert!(writer.dropped() >= 95, "{}", writer.dropped());
        assert!(!writer.flush(Duration::from_millis(100)), "a stalled writer cannot flush");
    }

    #[test]
    fn lines_are_written_in_order_and_flushed_on_request() {
        #[derive(Clone, Default)]
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Shared::default();
        let writer = Writer::spawn(out.clone(), 16).unwrap();
        for i in 0..10 {
            writer.record(&serde_json::json!({"i": i}));
        }
        assert!(writer.flush(Duration::from_secs(5)));
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let numbers: Vec<i64> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["i"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, (0..10).collect::<Vec<_>>());
        assert_eq!(writer.dropped(), 0);
    }
}

//! The cost of Actions on a login decision (CONTRACT §11), side by side in one run: the built-in
//! decision alone, then the built-in decision plus a 20-line Action (building `event`, running it
//! on the worker's QuickJS runtime, applying its requests: one metadata write and two claims),
//! through `Binder::on_login` on the memory store, as the proxy calls it. Target: ≤ 50 µs median
//! with the Action.
//!
//! Each round times `BATCH` decisions of each kind, alternating, and takes each kind's median;
//! the figures printed are the medians over `ROUNDS` rounds, and their ratio. Also printed: the
//! memory the Actions runtime holds after the runs (QuickJS's own count) and the process's
//! resident memory before the first Action ran and after the last (target: ≤ 16 MiB per worker).
//!
//! Run: `cargo bench --bench actions`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use helloguard::actions::{Actions, ActionsConfig};
use helloguard::audit::JsonLines;
use helloguard::binding::{Binder, Counters, Facts, RequestInfo};
use helloguard::engine::{Observed, Policy};
use helloguard::logout::plan::ClientPlanner;
use helloguard::logout::SessionEnder;
use helloguard::session::memory::MemoryStore;
use helloguard::session::{Device, Lifetimes, Metadata, Session, Store, Timestamp};

/// The allocator the `helloguard` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;
const BATCH: usize = 2_000;

/// Real values from `latest.pcapng` (FINGERPRINTS.md §5).
const JA3: &str = "8883b2acda8ceb1a4f416c16d9b6c42f";
const JA4: &str = "t13d1516h2_8daaf6152771_e5627efa2ab1";
const JA4_STABLE: &str = "t13d1515h2_8daaf6152771_f37e75b10bcc";

/// Twenty lines in the reference's style: read the request and the session, compare, write,
/// claim (shared with `js_engines`, which runs the same file in QuickJS and boa).
const ACTION: &str = include_str!("support/login_action.js");

fn binder(store: Arc<dyn Store>, actions: Option<Arc<Actions>>) -> Binder {
    let audit = Arc::new(JsonLines::new(std::io::sink()));
    let sessions = Arc::new(SessionEnder::new(store.clone(), audit.clone(), Arc::new(ClientPlanner::new(&[]))));
    let lifetimes = (Lifetimes::default(), Lifetimes::default());
    Binder::new(store, Policy::default(), audit, sessions, Arc::new(Counters::default()), lifetimes)
        .with_actions(actions)
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("twenty_lines.js");
    std::fs::write(&file, ACTION).expect("write the Action");
    assert_eq!(ACTION.trim().lines().count(), 20, "the Action is twenty lines");
    let config = ActionsConfig { post_login: vec![file], ..Default::default() };
    let actions = Actions::load(&config).expect("the Action compiles").map(Arc::new);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(Duration::from_secs(3600)));
    let now = Timestamp::now();
    let mut session =
        Session::new("ses_0123456789abcdefghijklmnopqrstuv".into(), now, Lifetimes::default(), Device::default());
    session.user_id = Some("auth0|alice".into());
    session.session_metadata =
        Metadata::from_pairs([("ja3", JA3), ("ja4", JA4), ("ja4_stable", JA4_STABLE), ("aa_ja4_stable", JA4_STABLE)])
            .expect("metadata");
    runtime.block_on(store.create_session(&session)).expect("create the session");

    let builtin = binder(store.clone(), None);
    let with_action = binder(store.clone(), actions);
    let observed = Observed { ja3: JA3, ja3n: "", ja4: JA4, ja4_stable: JA4_STABLE, ja4_stable_v1: "" };
    let mut query = serde_json::Map::new();
    query.insert("ext-tenantId".into(), "acme".into());
    let request = RequestInfo {
        method: "POST".into(),
        hostname: Some("login.example".into()),
        query,
        body: serde_json::json!({"username": "alice"}),
        language: Some("en-GB".into()),
        client_id: Some("web".into()),
        grant_type: None,
    };
    let facts = Facts {
        observed: Some(observed),
        client_ip: "203.0.113.7",
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0"),
        now,
        request: Some(&request),
    };

    let time = |binder: &Binder| -> Duration {
        let mut each = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let started = Instant::now();
            runtime.block_on(async {
                let current = store.get_session(&session.id).await.ok().flatten();
                let decided = binder.on_login(&facts, current.as_ref()).await;
                std::hint::black_box(decided);
            });
            each.push(started.elapsed());
        }
        median(each)
    };

    let before = resident_kib();
    let _ = time(&with_action);
    let after_first = resident_kib();
    let mut builtins = Vec::new();
    let mut actions = Vec::new();
    for round in 0..ROUNDS {
        let b = time(&builtin);
        let a = time(&with_action);
        println!("round {round}: built-in {:>8.2} µs   with the Action {:>8.2} µs", micros(b), micros(a));
        builtins.push(b);
        actions.push(a);
    }
    let (b, a) = (median(builtins), median(actions));
    println!("login decision, median of {ROUNDS} rounds × {BATCH}:");
    println!("  built-in only          {:>8.2} µs", micros(b));
    println!("  built-in + 20-line Action {:>5.2} µs   (target ≤ 50 µs)", micros(a));
    println!("  ratio                  {:>8.2}", a.as_secs_f64() / b.as_secs_f64());
    println!(
        "resident memory: {before} KiB before the first Action, {after_first} KiB after it, {} KiB at the end (+{} KiB for this worker's Actions runtime)",
        resident_kib(),
        resident_kib().saturating_sub(before)
    );
    let worker = helloguard::actions::js::Worker::current().expect("worker");
    let in_place = helloguard::actions::js::Worker::memory_used_in_place();
    let thread = runtime.block_on(worker.memory_used());
    println!(
        "QuickJS runtimes of this worker: {} KiB in place, {} KiB on its Actions thread (limit {} KiB each)",
        in_place / 1024,
        thread / 1024,
        config.memory_limit.0 / 1024
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

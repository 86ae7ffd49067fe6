//! Crash safety of the embedded store: a child process (this test binary re-run with
//! `HELLOGUARD_CRASH_CHILD_DIR` set, executing only `crash_child`) writes bindings with several
//! concurrent tasks and prints each acknowledged write; the parent SIGKILLs it at a random moment,
//! several times over the same file. After each kill the file must pass redb's integrity check and
//! reopen, and every acknowledged write must be there.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use helloguard::session::embedded::{EmbeddedStore, FILE_NAME};
use helloguard::session::{Device, Lifetimes, MetadataChange, Session, Store, Timestamp};

const CHILD_DIR: &str = "HELLOGUARD_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "HELLOGUARD_CRASH_CHILD_ROUND";
const TASKS: usize = 8;
const ROUNDS: usize = 6;
const SHARED: &str = "ses_shared";

/// The child's work, run only by the parent (with `--ignored`): ignored in a normal run rather
/// than passing without doing anything.
#[test]
#[ignore = "the crash test's child process; the parent runs it"]
fn crash_child() {
    let dir = std::env::var(CHILD_DIR).expect("run by crash_safety's parent, which sets the data directory");
    let round: usize = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let store = Arc::new(EmbeddedStore::open(Path::new(&dir), Duration::from_secs(60)).unwrap());
        let now = Timestamp::now();
        // Round 0 creates the shared session; later rounds find it.
        let _ = store.create_session(&Session::new(SHARED.into(), now, Lifetimes::default(), Device::default())).await;
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("ses_r{round}_t{task}_{i}");
                    let mut s = Session::new(id.clone(), now, Lifetimes::default(), Device::default());
                    s.session_metadata.set("ja4_stable", &format!("fp{i}")).unwrap();
                    store.create_session(&s).await.unwrap();
                    println!("ACK create {id}");
                    let key = format!("t{task}");
                    let change = MetadataChange::Merge(vec![(key.clone(), (round * 1_000_000 + i).to_string())]);
                    store.update_session_metadata(SHARED, &change, now).await.unwrap();
                    println!("ACK merge {key} {}", round * 1_000_000 + i);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// xorshift64: enough randomness for kill points, and the seed is printed to reproduce a run.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[derive(Default)]
struct Acked {
    created: Vec<String>,
    /// Highest acknowledged value per shared-session key.
    merged: HashMap<String, u64>,
}

fn run_child_and_kill(dir: &Path, round: usize, after: Duration) -> Acked {
    let exe = std::env::current_exe().unwrap();
    // The harness names a test by its module path without the crate: `store_crash::crash_child`.
    let (_crate, module) = module_path!().split_once("::").unwrap();
    let child_test = format!("{module}::crash_child");
    let mut child = Command::new(exe)
        .args([child_test.as_str(), "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut acked = Acked::default();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["ACK", "create", id] => acked.created.push((*id).to_owned()),
                ["ACK", "merge", key, value] => {
                    let value: u64 = value.parse().unwrap();
                    let slot = acked.merged.entry((*key).to_owned()).or_default();
                    *slot = (*slot).max(value);
                }
                _ => {}
            }
        }
        acked
    });
    std::thread::sleep(after);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_DIR).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("kill-point seed {seed}");
    let mut highest: HashMap<String, u64> = HashMap::new();
    let mut all_created = Vec::new();
    for round in 0..ROUNDS {
        let after = Duration::from_millis(150 + next_random(&mut seed) % 600);
        let acked = run_child_and_kill(dir.path(), round, after);
        assert!(!acked.created.is_empty(), "round {round}: the child acknowledged nothing in {after:?}");
        eprintln!("round {round}: killed after {after:?}, {} creates acknowledged", acked.created.len());
        all_created.extend(acked.created);
        for (key, value) in acked.merged {
            let slot = highest.entry(key).or_default();
            *slot = (*slot).max(value);
        }

        // The file opens cleanly and passes redb's own integrity check.
        {
            let mut db = redb::Database::open(dir.path().join(FILE_NAME)).unwrap();
            assert!(db.check_integrity().unwrap(), "round {round}: integrity check repaired the file");
        }
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = EmbeddedStore::open(dir.path(), Duration::from_secs(60)).unwrap();
            for id in &all_created {
                let s = store.get_session(id).await.unwrap();
                assert!(s.is_some(), "round {round}: acknowledged {id} is missing");
            }
            let shared = store.get_session(SHARED).await.unwrap().unwrap().record.session_metadata;
            for (key, acked_value) in &highest {
                let stored: u64 = shared.get(key).unwrap().parse().unwrap();
                assert!(stored >= *acked_value, "round {round}: {key} = {stored} < acknowledged {acked_value}");
            }
        });
    }
}

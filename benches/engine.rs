//! Performance of the decision path: `decide()` (target ≤ 200 ns median) and, per store
//! backend, reads and durable writes in ops/s (embedded targets: ≥ 200k reads/s, ≥ 5k durable
//! writes/s). Redis is measured on loopback when `HELLOGUARD_REDIS_URL` (default
//! `redis://127.0.0.1:6379`) answers, and skipped with a printed reason otherwise.
//!
//! Run: `cargo bench --bench engine`. Criterion prints time per iteration and, for the store
//! groups, elements/s = ops/s.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use helloguard::config::StoreConfig;
use helloguard::engine::{decide, Event, Observed, Policy, Route};
use helloguard::session::embedded::EmbeddedStore;
use helloguard::session::memory::MemoryStore;
use helloguard::session::redis::RedisStore;
use helloguard::session::{Device, Lifetimes, Metadata, Session, Store, Timestamp};

/// Real values from `latest.pcapng` (FINGERPRINTS.md §5).
const JA3: &str = "8883b2acda8ceb1a4f416c16d9b6c42f";
const JA4: &str = "t13d1516h2_8daaf6152771_e5627efa2ab1";
const JA4_STABLE: &str = "t13d1515h2_8daaf6152771_f37e75b10bcc";

fn bench_decide(c: &mut Criterion) {
    let policy = Policy::default();
    // A realistic stored map: the engine's three keys plus a few of the operator's.
    let stored = Metadata::from_pairs([
        ("ja3", JA3),
        ("ja4", JA4),
        ("ja4_stable", JA4_STABLE),
        ("tenant", "acme"),
        ("plan", "enterprise"),
        ("region", "eu-west-1"),
    ])
    .unwrap_or_default();
    let same = Observed {
        ja3: "2adc50eda4c71832c5aa9062850e0180",
        ja3n: "",
        ja4: JA4,
        ja4_stable: JA4_STABLE,
        ja4_stable_v1: "",
    };
    let other = Observed { ja4_stable: "t12d190800_d83cc789557e_7af1ed941c26", ..same };
    let empty = Metadata::new();
    let mut group = c.benchmark_group("decide");
    for (name, stored, observed) in
        [("match_allow", &stored, same), ("mismatch_challenge", &stored, other), ("first_bind", &empty, same)]
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                let event = Event {
                    route: Route::Login,
                    session_id: Some("ses_0123456789abcdefghijklmnopqrstuv"),
                    refresh_token_id: None,
                    stored: Some(black_box(stored)),
                    observed: Some(black_box(observed)),
                };
                black_box(decide(&event, &policy))
            })
        });
    }
    group.finish();
}

const READS_PER_ITER: u64 = 1000;
const WRITES_PER_ITER: u64 = 256;
/// Writers in flight for the concurrent durable-put case (what a busy proxy produces).
const CONCURRENT_WRITERS: u64 = 64;

fn session(id: String, now: Timestamp) -> Session {
    let mut s = Session::new(id, now, Lifetimes::default(), Device::default());
    s.user_id = Some("auth0|bench".into());
    let _ = s.session_metadata.merge([("ja3", JA3), ("ja4", JA4), ("ja4_stable", JA4_STABLE)]);
    s
}

fn bench_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: Arc<dyn Store>) {
    let now = Timestamp::now();
    let ids: Vec<String> = (0..1000).map(|i| format!("ses_bench_read_{i:04}")).collect();
    for id in &ids {
        if let Err(e) = rt.block_on(store.create_session(&session(id.clone(), now))) {
            eprintln!("{name}: cannot seed ({e}); skipped");
            return;
        }
    }
    let counter = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group(format!("store_{name}"));
    group.sample_size(10).measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));

    group.throughput(Throughput::Elements(READS_PER_ITER));
    group.bench_function("get", |b| {
        b.iter(|| {
            rt.block_on(async {
                for i in 0..READS_PER_ITER as usize {
                    let id = &ids[i % ids.len()];
                    black_box(store.get_session(id).await.ok());
                }
            })
        })
    });

    group.throughput(Throughput::Elements(WRITES_PER_ITER));
    group.bench_function("durable_put_sequential", |b| {
        b.iter(|| {
            rt.block_on(async {
                for _ in 0..WRITES_PER_ITER {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    black_box(store.create_session(&session(format!("ses_bench_w{n}"), now)).await.ok());
                }
            })
        })
    });
    group.bench_function("durable_put_64_in_flight", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..CONCURRENT_WRITERS {
                    let store = Arc::clone(&store);
                    let counter = Arc::clone(&counter);
                    tasks.spawn(async move {
                        for _ in 0..WRITES_PER_ITER / CONCURRENT_WRITERS {
                            let n = counter.fetch_add(1, Ordering::Relaxed);
                            black_box(store.create_session(&session(format!("ses_bench_w{n}"), now)).await.ok());
                        }
                    });
                }
                while tasks.join_next().await.is_some() {}
            })
        })
    });
    group.finish();
}

/// Removes what the Redis bench wrote.
async fn drop_keys(url: &str, prefix: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut conn).await?;
    for chunk in keys.chunks(1000) {
        let _: i64 = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await?;
    }
    Ok(())
}

fn bench_stores(c: &mut Criterion) {
    let Ok(rt) = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() else {
        eprintln!("no tokio runtime; store benches skipped");
        return;
    };
    let ttl = Duration::from_secs(3600);
    bench_backend(c, &rt, "memory", Arc::new(MemoryStore::new(ttl)));

    match tempfile::tempdir() {
        Ok(dir) => match EmbeddedStore::open(dir.path(), ttl) {
            Ok(store) => bench_backend(c, &rt, "embedded", Arc::new(store)),
            Err(e) => eprintln!("embedded: cannot open ({e}); skipped"),
        },
        Err(e) => eprintln!("embedded: no temp dir ({e}); skipped"),
    }

    let url = std::env::var("HELLOGUARD_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("hgbench:{}", std::process::id());
    match rt.block_on(RedisStore::connect(&url, &prefix, ttl, StoreConfig::default().redis_timeout.0)) {
        Ok(store) => {
            bench_backend(c, &rt, "redis", Arc::new(store));
            if let Err(e) = rt.block_on(drop_keys(&url, &prefix)) {
                eprintln!("redis: bench keys under {prefix}:* not removed: {e}");
            }
        }
        Err(e) => eprintln!("redis: {url} unreachable ({e}); skipped"),
    }
}

criterion_group!(benches, bench_decide, bench_stores);
criterion_main!(benches);

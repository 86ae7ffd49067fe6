//! One post-login Action invocation, QuickJS against boa, in one run: each engine gets one context,
//! created once, the Action compiled once, then per invocation the event is parsed from JSON, the
//! handler called with a fresh `api` that records its requests, its promise settled and the requests
//! read back as JSON: the engine's share of a login decision in helloguard. Both engines run the
//! same JavaScript text. Each round times `BATCH` invocations per engine, alternating; the figures
//! printed are the medians over `ROUNDS` rounds, and their ratio. Context creation and compilation
//! are timed once each (they happen once per worker and per file version).

use std::time::{Duration, Instant};

/// The allocator the `helloguard` binary runs with (QuickJS allocates through it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROUNDS: usize = 7;
const BATCH: usize = 2_000;

/// The 20-line Action of `benches/actions.rs`.
const ACTION: &str = include_str!("../../support/login_action.js");

/// What both engines evaluate around the Action: `exports`, a silent `console`, and `run(text)`,
/// which parses the event, calls the handler and resolves to the requests as JSON.
fn script() -> String {
    format!(
        r#"
var exports = {{}};
var console = {{ log() {{}}, warn() {{}}, error() {{}} }};
{ACTION}
function run(text) {{
  const requests = [];
  const metadata = (record) => ({{
    setMetadata(k, v) {{ requests.push([record, "set", k, v]); }},
    deleteMetadata(k) {{ requests.push([record, "delete", k]); }},
  }});
  const claims = (token) => ({{ setCustomClaim(n, v) {{ requests.push([token, n, v]); }} }});
  const api = {{
    session: metadata("session"),
    refreshToken: metadata("refresh_token"),
    authentication: {{ challengeWith(f, o) {{ requests.push(["challenge", f, o]); }} }},
    access: {{ deny(r) {{ requests.push(["deny", r]); }} }},
    idToken: claims("id_token"),
    accessToken: claims("access_token"),
  }};
  return exports.onExecutePostLogin(JSON.parse(text), api).then(() => JSON.stringify(requests));
}}
"#
    )
}

const EVENT: &str = r#"{"request":{"ip":"192.0.2.7","method":"POST","hostname":"login.example.com","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","language":"en-US","query":{"ext-tenantId":"acme"},"body":{"username":"alice"}},"security_context":{"ja3":"8883b2acda8ceb1a4f416c16d9b6c42f","ja4":"t13d1516h2_8daaf6152771_e5627efa2ab1","ja4_stable":"t13d1515h2_8daaf6152771_f37e75b10bcc","ja3n":"8883b2acda8ceb1a4f416c16d9b6c42f"},"session":{"id":"s-1","metadata":{"aa_ja4_stable":"t13d1515h2_8daaf6152771_f37e75b10bcc","tenant_id":"acme","logins":"3"},"created_at":"2026-12-07T10:00:00.000Z","updated_at":"2026-12-07T10:00:00.000Z"},"user":{},"client":{},"transaction":{"requested_scopes":[],"protocol":"oidc-basic-profile"},"helloguard":{"decision":"allow","reason":"fingerprint_match","stored":"t13d1515h2_8daaf6152771_f37e75b10bcc"},"secrets":{}}"#;

/// What each run must answer: the handler's requests for `EVENT`.
const EXPECTED: &str = r#"[["session","set","logins","4"],["id_token","https://example.com/tenant","acme"],["access_token","https://example.com/logins",4]]"#;

trait Engine {
    fn run(&mut self, event: &str) -> String;
}

/// Fields drop in this order: the function before its context, the context before its runtime.
struct QuickJs {
    run: rquickjs::Persistent<rquickjs::Function<'static>>,
    context: rquickjs::Context,
    _runtime: rquickjs::Runtime,
}

impl QuickJs {
    fn new(script: &str) -> Self {
        let runtime = rquickjs::Runtime::new().unwrap();
        runtime.set_memory_limit(16 << 20);
        let context = rquickjs::Context::full(&runtime).unwrap();
        let run = context.with(|ctx| {
            ctx.eval::<(), _>(script).unwrap();
            let run: rquickjs::Function = ctx.globals().get("run").unwrap();
            rquickjs::Persistent::save(&ctx, run)
        });
        Self { run, context, _runtime: runtime }
    }
}

impl Engine for QuickJs {
    fn run(&mut self, event: &str) -> String {
        self.context.with(|ctx| {
            let run = self.run.clone().restore(&ctx).unwrap();
            let promise: rquickjs::Promise = run.call((event,)).unwrap();
            while promise.state() == rquickjs::promise::PromiseState::Pending {
                assert!(ctx.execute_pending_job(), "the promise never settled");
            }
            promise.result::<String>().unwrap().unwrap()
        })
    }
}

struct Boa {
    context: boa_engine::Context,
    run: boa_engine::JsObject,
}

impl Boa {
    fn new(script: &str) -> Self {
        let mut context = boa_engine::Context::default();
        context.eval(boa_engine::Source::from_bytes(script)).unwrap();
        let run = context.global_object().get(boa_engine::js_string!("run"), &mut context).unwrap();
        let run = run.as_object().expect("run is a function").clone();
        Self { context, run }
    }
}

impl Engine for Boa {
    fn run(&mut self, event: &str) -> String {
        let argument = boa_engine::JsValue::from(boa_engine::JsString::from(event));
        let returned = self.run.call(&boa_engine::JsValue::undefined(), &[argument], &mut self.context).unwrap();
        let promise = boa_engine::object::builtins::JsPromise::from_object(returned.as_object().unwrap().clone())
            .expect("run returns a promise");
        self.context.run_jobs().unwrap();
        match promise.state() {
            boa_engine::builtins::promise::PromiseState::Fulfilled(value) => {
                value.to_string(&mut self.context).unwrap().to_std_string_escaped()
            }
            other => panic!("the promise did not resolve: {other:?}"),
        }
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed())
}

fn batch(engine: &mut dyn Engine) -> Duration {
    let started = Instant::now();
    for _ in 0..BATCH {
        std::hint::black_box(engine.run(std::hint::black_box(EVENT)));
    }
    started.elapsed() / BATCH as u32
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn main() {
    let script = script();
    let (mut quickjs, quickjs_start) = timed(|| QuickJs::new(&script));
    let (mut boa, boa_start) = timed(|| Boa::new(&script));
    for engine in [&mut quickjs as &mut dyn Engine, &mut boa] {
        let answer = engine.run(EVENT);
        assert_eq!(answer, EXPECTED, "both engines must compute the same requests");
    }
    let (mut quick_rounds, mut boa_rounds) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        quick_rounds.push(batch(&mut quickjs));
        boa_rounds.push(batch(&mut boa));
    }
    let (quick, boa) = (median(quick_rounds), median(boa_rounds));
    println!("context created and the Action compiled: QuickJS {quickjs_start:.2?}, boa {boa_start:.2?}");
    println!("one invocation (parse event, call, settle, requests to JSON), median of {ROUNDS} rounds x {BATCH}:");
    println!("  QuickJS {quick:.2?}   boa {boa:.2?}   boa/QuickJS {:.2}", boa.as_secs_f64() / quick.as_secs_f64());
}

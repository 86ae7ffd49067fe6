//! The JavaScript engine (QuickJS, through `rquickjs`): per event-loop worker, a runtime on the
//! worker's own thread and one on an Actions thread of its own, each created once (on first use)
//! and reused; each Action file compiled once per version in each.
//!
//! An Action runs in place for at most a millisecond ([`IN_PLACE`]); one that takes longer runs
//! on the Actions thread, where a loop runs out its time (`[actions] timeout`, enforced by
//! QuickJS's interrupt handler) while the worker keeps serving its other connections. A runtime
//! that ran out of time or memory is replaced by a fresh one before the next invocation, so no
//! half-run state survives.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rquickjs::context::EvalOptions;
use rquickjs::promise::PromiseState;
use rquickjs::{CatchResultExt, CaughtError, Context, Ctx, Function, Object, Persistent, Runtime, Value};

/// The sandbox set up in every runtime.
const PRELUDE: &str = include_str!("prelude.js");

/// QuickJS's own stack limit for Action code (a runaway recursion fails, it does not crash).
const STACK: usize = 512 * 1024;

/// One Action file, at one version of its source.
#[derive(Debug)]
pub struct Source {
    /// The file as configured (shown in errors, logs and audit lines).
    pub name: String,
    pub version: u64,
    pub text: String,
}

/// Per-invocation bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    pub memory: usize,
}

/// What one file's invocation gave.
#[derive(Debug, Clone)]
pub struct Ran {
    pub file: String,
    /// The requests the Action made through `api` (JSON), or why it failed.
    pub requests: Result<String, String>,
    /// `console` lines, with their level.
    pub logs: Vec<(String, String)>,
}

/// Whether an invocation left its runtime unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fatal {
    No,
    /// Stopped by the time limit.
    Time,
    /// Stopped by the memory limit.
    Memory,
}

/// A compile error at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SyntaxError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

/// The head of the wrapper an Action's source is loaded in, on the source's first line so that
/// its line numbers stay as written (only first-line columns shift, by this length).
const WRAPPER_HEAD: &str = "(function (exports, module) {";

/// A runtime with the sandbox and the handlers it has compiled. Fields drop in order: the
/// handlers before the context, the context before the runtime (QuickJS refuses to free a runtime
/// that still holds objects).
pub struct Engine {
    /// `onExecutePostLogin` of each file, by name and version.
    handlers: HashMap<(String, u64), Persistent<Function<'static>>>,
    context: Context,
    runtime: Runtime,
    deadline: Rc<Cell<Instant>>,
    logs: Rc<RefCell<Vec<(String, String)>>>,
    limits: Limits,
}

impl Engine {
    pub fn new(limits: Limits) -> Result<Self, String> {
        let runtime = Runtime::new().map_err(|e| e.to_string())?;
        runtime.set_memory_limit(limits.memory);
        runtime.set_max_stack_size(STACK);
        let deadline = Rc::new(Cell::new(Instant::now() + limits.timeout));
        let watched = deadline.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || Instant::now() > watched.get())));
        let context = Context::full(&runtime).map_err(|e| e.to_string())?;
        let logs: Rc<RefCell<Vec<(String, String)>>> = Rc::default();
        let sink = logs.clone();
        context
            .with(|ctx| -> rquickjs::Result<()> {
                let globals = ctx.globals();
                globals.set("__hg_uuid", Function::new(ctx.clone(), || uuid::Uuid::new_v4().to_string())?)?;
                let log = move |level: String, text: String| sink.borrow_mut().push((level, text));
                globals.set("__hg_log", Function::new(ctx.clone(), log)?)?;
                ctx.eval::<(), _>(PRELUDE)
            })
            .map_err(|e| format!("the Actions sandbox did not start: {e}"))?;
        Ok(Self { runtime, context, deadline, logs, handlers: HashMap::new(), limits })
    }

    /// Compiles `source` (once per name and version) and returns nothing but errors.
    pub fn compile(&mut self, source: &Source) -> Result<(), SyntaxError> {
        let key = (source.name.clone(), source.version);
        if self.handlers.contains_key(&key) {
            return Ok(());
        }
        self.deadline.set(Instant::now() + self.limits.timeout.max(Duration::from_secs(1)));
        let handler = self.context.with(|ctx| -> Result<Persistent<Function<'static>>, SyntaxError> {
            let wrapped = format!("{WRAPPER_HEAD}{}\n}})", source.text);
            let mut options = EvalOptions::default();
            options.filename = Some(source.name.clone());
            options.strict = false;
            let factory: Function =
                ctx.eval_with_options(wrapped, options).catch(&ctx).map_err(|e| located(source, &e))?;
            let exports = Object::new(ctx.clone()).map_err(|e| plain(&source.name, &e))?;
            let module = Object::new(ctx.clone()).map_err(|e| plain(&source.name, &e))?;
            module.set("exports", exports.clone()).map_err(|e| plain(&source.name, &e))?;
            factory.call::<_, ()>((exports, module.clone())).catch(&ctx).map_err(|e| located(source, &e))?;
            let exports: Object = module.get("exports").map_err(|e| plain(&source.name, &e))?;
            let handler: Option<Function> = exports.get("onExecutePostLogin").ok().flatten();
            let handler = handler.ok_or_else(|| SyntaxError {
                file: source.name.clone(),
                line: 1,
                column: 1,
                message: "exports.onExecutePostLogin is not a function".into(),
            })?;
            Ok(Persistent::save(&ctx, handler))
        })?;
        // Older versions of this file are not needed any more.
        self.handlers.retain(|(name, _), _| name != &source.name);
        self.handlers.insert(key, handler);
        Ok(())
    }

    /// Runs one file's `onExecutePostLogin(event, api)` on `event` (JSON) to completion: the
    /// requests it made, as JSON, and whether it ran out of time or memory (then the engine must
    /// be replaced).
    pub fn invoke(&mut self, source: &Source, event: &str) -> (Ran, Fatal) {
        self.logs.borrow_mut().clear();
        let outcome = match self.compile(source) {
            Err(error) => (Err(error.to_string()), Fatal::No),
            Ok(()) => self.call(source, event),
        };
        let logs = std::mem::take(&mut *self.logs.borrow_mut());
        let (requests, fatal) = outcome;
        (Ran { file: source.name.clone(), requests, logs }, fatal)
    }

    fn call(&mut self, source: &Source, event: &str) -> (Result<String, String>, Fatal) {
        let Some(handler) = self.handlers.get(&(source.name.clone(), source.version)).cloned() else {
            return (Err("not compiled".into()), Fatal::No);
        };
        self.deadline.set(Instant::now() + self.limits.timeout);
        let started = Instant::now();
        let result = self.context.with(|ctx| -> Result<String, String> {
            let handler = handler.restore(&ctx).map_err(|e| e.to_string())?;
            let event = ctx.json_parse(event).map_err(|e| e.to_string())?;
            let factory: Function = ctx.globals().get("__hg_api").map_err(|e| e.to_string())?;
            let pair: rquickjs::Array = factory.call(()).map_err(|e| e.to_string())?;
            let api: Value = pair.get(0).map_err(|e| e.to_string())?;
            let requests: Value = pair.get(1).map_err(|e| e.to_string())?;
            let returned: Value = handler.call((event, api)).catch(&ctx).map_err(|e| message(&e))?;
            if let Some(promise) = returned.as_promise() {
                loop {
                    match promise.state() {
                        PromiseState::Resolved => break,
                        PromiseState::Rejected => {
                            let reason = promise.result::<Value>().and_then(Result::err);
                            let text = reason.map(|_| ctx.catch()).map(|v| rejection(&ctx, v));
                            return Err(text.unwrap_or_else(|| "the Action's promise was rejected".into()));
                        }
                        PromiseState::Pending => {
                            if !ctx.execute_pending_job() {
                                return Err(
                                    "the Action's promise never settled (it awaits something that never comes)".into(),
                                );
                            }
                        }
                    }
                }
            }
            match ctx.json_stringify(requests) {
                Ok(Some(text)) => text.to_string().map_err(|e| e.to_string()),
                Ok(None) => Err("no requests".into()),
                Err(e) => Err(e.to_string()),
            }
        });
        let timed_out = started.elapsed() >= self.limits.timeout && Instant::now() > self.deadline.get();
        match result {
            Err(_) if timed_out => {
                (Err(format!("the Action ran out of time ({:?})", self.limits.timeout)), Fatal::Time)
            }
            Err(error) if error.contains("out of memory") => {
                (Err(format!("the Action ran out of memory ({} bytes): {error}", self.limits.memory)), Fatal::Memory)
            }
            other => (other, Fatal::No),
        }
    }

    /// Bytes the runtime holds now (QuickJS's own accounting).
    pub fn memory_used(&self) -> i64 {
        self.runtime.memory_usage().memory_used_size
    }
}

/// The text of a thrown value.
fn message(error: &CaughtError<'_>) -> String {
    match error {
        CaughtError::Exception(exception) => {
            let name: Option<String> = exception.get("name").ok();
            let message = exception.message().unwrap_or_default();
            match name {
                Some(name) if !name.is_empty() => format!("{name}: {message}"),
                _ => message,
            }
        }
        CaughtError::Value(value) => value_text(value),
        CaughtError::Error(error) => error.to_string(),
    }
}

/// A rejected promise's reason as text.
fn rejection<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> String {
    let _ = ctx;
    match value.as_exception() {
        Some(exception) => {
            let name: Option<String> = exception.get("name").ok();
            let message = exception.message().unwrap_or_default();
            match name {
                Some(name) if !name.is_empty() => format!("{name}: {message}"),
                _ => message,
            }
        }
        None => value_text(&value),
    }
}

fn value_text(value: &Value<'_>) -> String {
    if let Some(text) = value.as_string().and_then(|s| s.to_string().ok()) {
        return text;
    }
    value
        .ctx()
        .json_stringify(value.clone())
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// A compile or load error at its `file:line:column` (QuickJS names it in the stack).
fn located(source: &Source, error: &CaughtError<'_>) -> SyntaxError {
    let file = &source.name;
    let text = message(error);
    let stack = match error {
        CaughtError::Exception(exception) => exception.stack().unwrap_or_default(),
        _ => String::new(),
    };
    let (line, column) = place_in(&stack, file).unwrap_or((1, 1));
    let lines = js_lines(&source.text);
    if line as usize > lines.len() {
        // On the wrapper's closing line: the file ended inside a construct it never closed.
        let column = lines.last().map_or(0, |last| last.chars().count()) as u32 + 1;
        let message = format!("unexpected end of the file ({text})");
        return SyntaxError { file: file.clone(), line: lines.len() as u32, column, message };
    }
    // Columns on the first line count the wrapper's head.
    let column = if line == 1 { column.saturating_sub(WRAPPER_HEAD.len() as u32).max(1) } else { column };
    let column = token_column(lines[line.saturating_sub(1) as usize], column, &text);
    SyntaxError { file: file.clone(), line, column, message: text }
}

/// The lines of `text` as JavaScript counts them: CR LF, LF, CR, U+2028 and U+2029 each end one.
/// Never empty (an empty file is one empty line).
pub fn js_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
            lines.push(&text[start..at]);
            if c == '\r' && chars.peek().is_some_and(|&(_, next)| next == '\n') {
                chars.next();
            }
            start = chars.peek().map_or(text.len(), |&(next, _)| next);
        }
    }
    lines.push(&text[start..]);
    lines
}

/// The column of the token a syntax error names. QuickJS's line is right, but inside a function
/// its column can be off (it counts on from an earlier token); when that column does not point at
/// the named token, the token's first place on the line is used (else QuickJS's column, or the
/// line's first non-blank character).
fn token_column(line: &str, column: u32, message: &str) -> u32 {
    let token = message.rsplit_once(" '").and_then(|(_, rest)| rest.strip_suffix('\''));
    let at = |column: u32| line.chars().skip(column.saturating_sub(1) as usize).collect::<String>();
    match token {
        Some(token) if at(column).starts_with(token) => column,
        Some(token) if line.contains(token) => line[..line.find(token).unwrap_or(0)].chars().count() as u32 + 1,
        _ if (column as usize) <= line.chars().count() => column,
        _ => line.chars().take_while(|c| c.is_whitespace()).count() as u32 + 1,
    }
}

fn plain(file: &str, error: &rquickjs::Error) -> SyntaxError {
    SyntaxError { file: file.to_owned(), line: 1, column: 1, message: error.to_string() }
}

/// `line:column` after the first `file:` in a QuickJS stack (`    at a.js:3:7`).
fn place_in(stack: &str, file: &str) -> Option<(u32, u32)> {
    let rest = &stack[stack.find(&format!("{file}:"))? + file.len() + 1..];
    let mut numbers = rest.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty());
    let line = numbers.next()?.parse().ok()?;
    let column = numbers.next().and_then(|c| c.parse().ok()).unwrap_or(1);
    Some((line, column))
}

/// How long an Action may run on the worker's own thread. Nearly every Action finishes in tens of
/// microseconds, and running it in place saves two thread wake-ups; one that takes longer is
/// stopped and run again, from the start, on the worker's Actions thread with the whole
/// `[actions] timeout`, and that file version runs there from then on. A looping Action so holds
/// its worker for this long once, never for its whole time limit.
const IN_PLACE: Duration = Duration::from_millis(1);

/// A job for a worker's Actions thread.
enum Job {
    Run {
        sources: Arc<Vec<Arc<Source>>>,
        event: String,
        limits: Limits,
        reply: tokio::sync::oneshot::Sender<Vec<Ran>>,
    },
    /// The bytes its runtime holds (0 before the first run).
    Memory(tokio::sync::oneshot::Sender<i64>),
}

/// The calling worker's Actions thread (started on first use).
pub struct Worker {
    jobs: std::sync::mpsc::Sender<Job>,
}

/// The runtime Actions run in on the worker's own thread, and the file versions that took too long
/// there.
#[derive(Default)]
struct InPlace {
    engine: Option<Engine>,
    slow: std::collections::HashSet<(String, u64)>,
}

thread_local! {
    static WORKER: RefCell<Option<Arc<Worker>>> = const { RefCell::new(None) };
    static IN_PLACE_ENGINE: RefCell<InPlace> = RefCell::default();
}

impl Worker {
    /// This thread's (the calling event loop's) Actions thread.
    pub fn current() -> Result<Arc<Worker>, String> {
        WORKER.with(|slot| {
            if let Some(worker) = slot.borrow().as_ref() {
                return Ok(worker.clone());
            }
            let (jobs, queue) = std::sync::mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("helloguard-actions".into())
                .spawn(move || serve_jobs(queue))
                .map_err(|e| format!("cannot start the Actions thread: {e}"))?;
            let worker = Arc::new(Worker { jobs });
            *slot.borrow_mut() = Some(worker.clone());
            Ok(worker)
        })
    }

    /// Runs `sources` in order on `event`: in place when they finish within [`IN_PLACE`], else
    /// on the Actions thread while this worker serves its other connections.
    pub async fn run(&self, sources: Arc<Vec<Arc<Source>>>, event: String, limits: Limits) -> Result<Vec<Ran>, String> {
        if let Some(ran) = run_in_place(&sources, &event, limits) {
            return Ok(ran);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Job::Run { sources, event, limits, reply })
            .map_err(|_| "the Actions thread stopped".to_owned())?;
        answer.await.map_err(|_| "the Actions thread stopped".to_owned())
    }

    /// The bytes this worker's Actions-thread runtime holds (QuickJS's own count).
    pub async fn memory_used(&self) -> i64 {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.jobs.send(Job::Memory(reply)).is_err() {
            return 0;
        }
        answer.await.unwrap_or(0)
    }

    /// The bytes this thread's in-place runtime holds.
    pub fn memory_used_in_place() -> i64 {
        IN_PLACE_ENGINE.with(|cell| cell.borrow().engine.as_ref().map_or(0, Engine::memory_used))
    }
}

/// `None`: a file is known to take longer than [`IN_PLACE`], or took longer now (what it did is
/// discarded, its `console` lines too, and it is marked).
fn run_in_place(sources: &[Arc<Source>], event: &str, limits: Limits) -> Option<Vec<Ran>> {
    IN_PLACE_ENGINE.with(|cell| {
        let mut in_place = cell.borrow_mut();
        if sources.iter().any(|s| in_place.slow.contains(&(s.name.clone(), s.version))) {
            return None;
        }
        let bounded = Limits { timeout: limits.timeout.min(IN_PLACE), memory: limits.memory };
        let (ran, out_of_time) = run_each(&mut in_place.engine, sources, event, bounded);
        match out_of_time {
            Some(file) if bounded.timeout < limits.timeout => {
                in_place
                    .slow
                    .retain(|(name, version)| sources.iter().any(|s| &s.name == name && s.version == *version));
                let key = sources.iter().find(|s| s.name == file).map(|s| (s.name.clone(), s.version));
                in_place.slow.extend(key);
                None
            }
            _ => Some(ran),
        }
    })
}

/// The Actions thread: one engine, replaced after a run that ran out of time or memory.
fn serve_jobs(queue: std::sync::mpsc::Receiver<Job>) {
    let mut engine: Option<Engine> = None;
    for job in queue {
        match job {
            Job::Run { sources, event, limits, reply } => {
                let _ = reply.send(run_all(&mut engine, &sources, &event, limits));
            }
            Job::Memory(reply) => {
                let _ = reply.send(engine.as_ref().map_or(0, Engine::memory_used));
            }
        }
    }
}

/// Runs every source on `event` in `engine` (created if needed, dropped after a fatal run).
pub fn run_all(engine: &mut Option<Engine>, sources: &[Arc<Source>], event: &str, limits: Limits) -> Vec<Ran> {
    run_each(engine, sources, event, limits).0
}

/// [`run_all`], and the file that ran out of time, if one did.
fn run_each(
    engine: &mut Option<Engine>,
    sources: &[Arc<Source>],
    event: &str,
    limits: Limits,
) -> (Vec<Ran>, Option<String>) {
    let mut ran = Vec::with_capacity(sources.len());
    let mut out_of_time = None;
    for source in sources {
        if engine.as_ref().is_none_or(|e| e.limits.timeout != limits.timeout || e.limits.memory != limits.memory) {
            match Engine::new(limits) {
                Ok(fresh) => *engine = Some(fresh),
                Err(error) => {
                    ran.push(Ran { file: source.name.clone(), requests: Err(error), logs: Vec::new() });
                    continue;
                }
            }
        }
        let Some(current) = engine.as_mut() else { continue };
        let (outcome, fatal) = current.invoke(source, event);
        match fatal {
            Fatal::No => {}
            Fatal::Time => {
                *engine = None;
                out_of_time.get_or_insert_with(|| source.name.clone());
            }
            Fatal::Memory => *engine = None,
        }
        ran.push(outcome);
    }
    (ran, out_of_time)
}

/// Compiles `source` in a scratch engine: what `serve` at start, reloads and `check-config` use.
pub fn check(source: &Source, limits: Limits) -> Result<(), SyntaxError> {
    let mut engine = Engine::new(limits).map_err(|message| SyntaxError {
        file: source.name.clone(),
        line: 1,
        column: 1,
        message,
    })?;
    engine.compile(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(text: &str) -> Result<(), SyntaxError> {
        let source = Source { name: "a.js".into(), version: 1, text: text.into() };
        check(&source, Limits { timeout: Duration::from_millis(20), memory: 16 << 20 })
    }

    #[test]
    fn syntax_errors_name_their_place() {
        let unclosed = "exports.onExecutePostLogin = async (event, api) => {\n  api.session.setMetadata('v', '2'\n};\n";
        let error = compiled(unclosed).unwrap_err();
        assert_eq!((error.line, error.column), (3, 1), "{error}");
        let first_line = compiled("exports.onExecutePostLogin = async () => { let 1x = 2; };").unwrap_err();
        assert_eq!(first_line.line, 1, "{first_line}");
        let deep = compiled(
            "const a = 1;\n\nexports.onExecutePostLogin = async () => {\n  if (a) {\n    return a +;\n  }\n};",
        )
        .unwrap_err();
        assert_eq!((deep.line, deep.column), (5, 15), "{deep}");
        assert!(compiled("exports.onExecutePostLogin = async (event, api) => {};").is_ok());
    }

    #[test]
    fn a_file_that_ends_inside_a_construct_is_reported_at_its_end() {
        // CR, CR LF and U+2028 end lines as LF does; the file's last line is the empty one after
        // its final LF.
        for (text, line) in [("\n\n~\rg\ng?D\n", 6), ("let a = {\r\n  b: 1,\r\n", 3), ("x\u{2028}if (x) {", 2)] {
            let error = compiled(text).unwrap_err();
            let last = text.rsplit(['\n', '\r', '\u{2028}']).next().unwrap().chars().count() as u32;
            assert_eq!((error.line, error.column), (line, last + 1), "{text:?}: {error}");
            assert!(error.message.starts_with("unexpected end of the file"), "{error}");
        }
    }

    #[test]
    fn lines_are_counted_as_javascript_counts_them() {
        assert_eq!(js_lines(""), [""]);
        assert_eq!(js_lines("a\r\nb\rc\nd\u{2029}e\n"), ["a", "b", "c", "d", "e", ""]);
        let error = compiled("exports.x = 1;\u{2028}\r\n  let 1x = 2;").unwrap_err();
        assert_eq!(error.line, 3, "{error}");
    }

    #[test]
    fn an_action_longer_than_the_in_place_slice_finishes_on_the_actions_thread() {
        let text = "exports.onExecutePostLogin = async (e, api) => { const end = Date.now() + 5; while (Date.now() < end) {} api.session.setMetadata('done', 'yes'); };";
        let sources = Arc::new(vec![Arc::new(Source { name: "slow.js".into(), version: 1, text: text.into() })]);
        let limits = Limits { timeout: Duration::from_millis(200), memory: 16 << 20 };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let worker = Worker::current().unwrap();
        for _ in 0..2 {
            let ran = runtime.block_on(worker.run(sources.clone(), "{}".into(), limits)).unwrap();
            assert!(ran[0].requests.as_ref().unwrap().contains("done"), "{:?}", ran[0].requests);
        }
        assert!(
            IN_PLACE_ENGINE.with(|c| c.borrow().slow.contains(&("slow.js".to_owned(), 1))),
            "marked to run off this thread"
        );
    }
}

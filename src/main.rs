//! The `helloguard` command line: a thin layer over the library.
//!
//! Each subcommand parses its arguments and calls one library entry point; input errors print one
//! line on stderr and exit with status 2.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use helloguard::config::Config;
use helloguard::engine::CompareKey;
use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::Transport;
use helloguard::pcap::{DecideOptions, Options as ReplayOptions, SessionKey};

/// mimalloc: cheaper per-request allocations than glibc malloc under keep-alive load
/// (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Each proxy worker runs the allocator's collection now and then (see `proxy::upkeep`): it
/// performs the delayed returns of freed memory to the system, which mimalloc otherwise performs
/// only inside later allocations on that thread, so a worker that went quiet kept a burst's memory.
fn collect_freed_memory() {
    // SAFETY: mi_collect takes a flag and only walks mimalloc's own structures of this thread.
    unsafe { libmimalloc_sys::mi_collect(false) };
}

/// The replay keeps its memory bounded, so it gives up transparent huge pages: mimalloc asks for
/// them on its arenas, and where the kernel grants them on request
/// (`transparent_hugepage/enabled = madvise`) a touched 4 KiB page can make 2 MiB resident
/// (docs/PERFORMANCE.md has the peak figures with and without). `serve` keeps them. Failure (a
/// kernel without the option) changes nothing but memory.
fn without_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integers only and sets a flag of this process's memory.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

#[derive(Parser)]
#[command(name = "helloguard", version, about = "TLS-fingerprinting reverse proxy that binds sessions to JA4")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the TLS-terminating proxy. With no arguments: https://127.0.0.1:8443, a self-signed
    /// certificate generated into ./data, the embedded store, the built-in demo upstream, and the
    /// admin listener (/metrics, /healthz, /readyz) on 127.0.0.1:9090. Decisions are audited as
    /// JSON lines on standard output; logs go to standard error (RUST_LOG=debug for more).
    Serve {
        /// TOML configuration file (docs/CONFIGURATION.md lists every key); flags below override it.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address of the TLS listener, e.g. 0.0.0.0:443.
        #[arg(long)]
        listen: Option<String>,
        /// `builtin:demo` or an http:// origin such as http://127.0.0.1:3000.
        #[arg(long)]
        upstream: Option<String>,
        /// Data directory: embedded store, generated certificate and keys.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print a bearer token for the Management API, signed with the local ES256 management key
    /// (`<data>/keys/management-es256.pem`, created on first use; the proxy trusts it). Claims:
    /// `iss` (`[api] issuer`, else `helloguard`), `sub`, `aud` (`[api] audience`), `iat`, `exp`,
    /// `jti`, `scope`. Exit status 2 on an unknown scope name.
    Token {
        /// Scopes, separated by commas or spaces: read:sessions, update:sessions, delete:sessions,
        /// read:refresh_tokens, update:refresh_tokens, delete:refresh_tokens (update:session is
        /// accepted for PATCH sessions only).
        #[arg(long)]
        scopes: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// The token's subject, recorded in `api_write` audit events.
        #[arg(long, default_value = "helloguard-cli")]
        sub: String,
        /// TOML configuration file (for `[api]` and `[store] path`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory holding the management key (default: `[store] path`, i.e. ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate a configuration file (and the key and CA files it names) and explain each error by
    /// its key path; deprecated settings print a warning on stderr. Exit status 2 if invalid.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Work with post-login Actions (CONTRACT §11) without a proxy.
    Actions {
        #[command(subcommand)]
        command: ActionsCommand,
    },
    /// Fingerprint one ClientHello and print a JSON object with ja3, ja3_full, ja3n, ja4, ja4_r,
    /// ja4_o, ja4_ro, ja4_stable, sni, alpn and tls_version.
    ///
    /// The input is a TLS record stream as a client sends it (first byte 0x16), or a bare handshake
    /// message (first byte 0x01; for DTLS with its 12-byte header). Exit status 2 on bad input.
    Fingerprint {
        /// File to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// The input is hex text (whitespace ignored) rather than raw bytes.
        #[arg(long)]
        hex: bool,
        /// Transport the hello arrived on: JA4's first character (t, q, d).
        #[arg(long, default_value = "tcp", value_parser = ["tcp", "quic", "dtls"])]
        transport: String,
        /// Reproduce the reference tools' `99` ALPN code for non-ASCII ALPN values.
        #[arg(long)]
        alpn_compat: bool,
    },
    /// Fingerprint every ClientHello (TLS over TCP, QUIC, DTLS) in pcap/pcapng captures: one
    /// record per hello on stdout, a summary on stderr. Exit status 1 when a file could not be
    /// read at all.
    Replay {
        /// Capture files (pcap or pcapng).
        #[arg(required = true)]
        pcaps: Vec<PathBuf>,
        /// Output format: jsonl, json or table.
        #[arg(long, default_value = "jsonl")]
        format: helloguard::pcap::Format,
        /// Also report the second ClientHello of a connection (the retry after HelloRetryRequest).
        #[arg(long)]
        all_hellos: bool,
        /// Reproduce the reference tools' `99` ALPN code for non-ASCII ALPN values.
        #[arg(long)]
        alpn_compat: bool,
        /// Show what the proxy's engine would decide: each connection's first ClientHello is a
        /// login of the session named by --session-key. A key's first hello binds (`bind`,
        /// `first_binding`); later ones are compared with what was bound (`allow` or `challenge`).
        /// Adds `decision`, `reason`, `session_key` and `stored` (the compared key's stored value
        /// before the decision) to each record, and counts per decision to the summary. QUIC and
        /// DTLS hellos are `skipped` (`not_tcp`): the proxy terminates TLS over TCP only; so is a
        /// connection's second hello with --all-hellos (`retry_hello`). Sessions
        /// are kept in memory, at most --max-sessions keys; the least recently seen is forgotten
        /// first, and its next hello binds afresh.
        #[arg(long)]
        decide: bool,
        /// What names a session with --decide: `client-ip` (the source address), `sni` (the server
        /// name; hellos without SNI are `skipped`, `no_sni`) or `flow` (source ip:port -> destination
        /// ip:port, so each connection is its own session).
        #[arg(long, default_value = "client-ip", requires = "decide")]
        session_key: SessionKey,
        /// The fingerprint compared with --decide, as `[policy] compare`: ja4_stable (resumption- and
        /// permutation-proof), ja4, ja3n or ja3 (to see what a less stable key would challenge).
        #[arg(long, default_value = "ja4_stable", requires = "decide")]
        compare: CompareKey,
        /// Sessions (keys) kept in memory at once with --decide; beyond it the least recently seen
        /// key is forgotten.
        #[arg(long, default_value_t = DecideOptions::default().max_sessions, requires = "decide")]
        max_sessions: usize,
        /// With --decide: post-login Action files run on each decided hello after the engine, as
        /// the proxy runs them on a login, with the event fields a capture can fill (request.ip,
        /// request.hostname from SNI, security_context, session: the key and its metadata); their
        /// decision folds into the engine's (`deny`, `action_challenge`, `action_error`). Default
        /// limits (20ms, 16MiB, on_error challenge).
        /// Several: `--actions a.js,b.js` or `--actions a.js --actions b.js`, run in that order.
        #[arg(long, value_delimiter = ',', requires = "decide")]
        actions: Vec<PathBuf>,
        /// Connections tracked at once; packets of new connections beyond it are skipped
        /// (`flow_table_full`) until finished or idle (300 s of capture time) ones are dropped.
        #[arg(long, default_value_t = ReplayOptions::default().max_flows)]
        max_flows: usize,
        /// ClientHellos in progress (holding reassembly buffers) at once; a new one beyond it is
        /// skipped (`too_many_open_hellos`). With --max-flows this bounds the memory used.
        #[arg(long, default_value_t = ReplayOptions::default().max_open_hellos)]
        max_open_hellos: usize,
    },
}

#[derive(Subcommand)]
enum ActionsCommand {
    /// Run Action files, in order, on one `event` (a JSON file in the shape the proxy builds, see
    /// docs/ACTIONS.md) and print what they decided, wrote and claimed as one JSON object:
    /// `decision`, `reason`, `challenge`, `additional_factors`, `deny`, `session_metadata` and
    /// `refresh_token_metadata` (each record's metadata after the writes, only when written),
    /// `claims` and `error`. `console` output goes to stderr. Exit status 1 when an Action failed
    /// or wrote invalid metadata (`error` says why), 2 when a file does not compile (file:line:column)
    /// or the event cannot be read.
    Test {
        /// Action files (`exports.onExecutePostLogin = async (event, api) => {…}`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The `event` as JSON.
        #[arg(long)]
        event: PathBuf,
        /// A configuration file whose `[actions]` limits, `on_error` and secrets apply (its
        /// `post_login` list is ignored: the files named here run).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fingerprint { file, hex, transport, alpn_compat } => {
            fingerprint_command(file, hex, &transport, alpn_compat)
        }
        Command::Serve { config, listen, upstream, data_dir } => serve_command(config, listen, upstream, data_dir),
        Command::Token { scopes, ttl, sub, config, data_dir } => token_command(&scopes, ttl, &sub, config, data_dir),
        Command::CheckConfig { file } => check_config_command(&file),
        Command::Actions { command: ActionsCommand::Test { files, event, config } } => {
            match actions_test_command(files, &event, config) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(error) => Err(error),
            }
        }
        Command::Replay {
            pcaps,
            format,
            all_hellos,
            alpn_compat,
            decide,
            session_key,
            compare,
            max_sessions,
            actions,
            max_flows,
            max_open_hellos,
        } => {
            let decide = decide.then_some(DecideOptions { session_key, compare, max_sessions });
            let alpn = if alpn_compat { AlpnMode::Compat } else { AlpnMode::Spec };
            let options = ReplayOptions { all_hellos, alpn, decide, max_flows, max_open_hellos, ..Default::default() };
            without_huge_pages();
            match replay_command(&pcaps, format, &options, actions) {
                Ok(true) => Ok(()),
                Ok(false) => return ExitCode::FAILURE,
                Err(error) => Err(error),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("helloguard: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn check_config_command(file: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(file)?;
    helloguard::logout::check_files(&config.logout)?;
    helloguard::actions::Actions::check(&config.actions)?;
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    println!("{}: ok", file.display());
    Ok(())
}

/// `Ok(false)`: an Action failed or wrote invalid metadata.
fn actions_test_command(files: Vec<PathBuf>, event: &std::path::Path, config: Option<PathBuf>) -> anyhow::Result<bool> {
    let mut actions = match config {
        Some(path) => Config::load(&path)?.actions,
        None => helloguard::config::ActionsConfig::default(),
    };
    actions.post_login = files;
    actions.base_dir = None;
    let text = std::fs::read_to_string(event).with_context(|| format!("reading {}", event.display()))?;
    let event: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", event.display()))?;
    let (report, logs) = helloguard::actions::offline::run(&actions, &event)?;
    for (file, level, line) in logs {
        eprintln!("{file}: console.{level}: {line}");
    }
    println!("{report}");
    Ok(report["error"].is_null())
}

fn fingerprint_command(file: Option<PathBuf>, hex: bool, transport: &str, alpn_compat: bool) -> anyhow::Result<()> {
    let transport: Transport = transport.parse().map_err(anyhow::Error::msg)?;
    let mut input = Vec::new();
    match file.as_deref() {
        None => std::io::stdin().read_to_end(&mut input).context("reading standard input")?,
        Some(path) if path.as_os_str() == "-" => {
            std::io::stdin().read_to_end(&mut input).context("reading standard input")?
        }
        Some(path) => {
            input = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            input.len()
        }
    };
    if hex {
        let text: String = String::from_utf8_lossy(&input).split_whitespace().collect();
        input = ::hex::decode(&text).context("input is not hex text")?;
    }
    let alpn = if alpn_compat { AlpnMode::Compat } else { AlpnMode::Spec };
    let report = fingerprint::report(&input, transport, alpn)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn replay_command(
    pcaps: &[PathBuf],
    format: helloguard::pcap::Format,
    options: &ReplayOptions,
    actions: Vec<PathBuf>,
) -> anyhow::Result<bool> {
    let config = helloguard::config::ActionsConfig { post_login: actions, ..Default::default() };
    let actions = helloguard::actions::Actions::load(&config)?;
    let stdout = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    Ok(helloguard::pcap::run(pcaps, (options, actions), format, stdout, &mut std::io::stderr())?)
}

fn serve_command(
    config_file: Option<PathBuf>,
    listen: Option<String>,
    upstream: Option<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "helloguard=info".into()),
        )
        .init();
    let mut config = match &config_file {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(listen) = listen {
        config.server.listen = listen.parse().with_context(|| format!("--listen {listen:?}"))?;
    }
    if let Some(upstream) = upstream {
        config.server.upstream = upstream.parse().map_err(|e: String| anyhow::anyhow!("--upstream: {e}"))?;
    }
    if let Some(dir) = data_dir {
        config.store.path = dir;
    }
    config.validate()?;
    // Every connection is a file descriptor: take the hard limit, not the (often 1024) soft one.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < config.server.max_connections as u64 + 64 => tracing::warn!(
            limit,
            max_connections = config.server.max_connections,
            "open-file limit is below server.max_connections"
        ),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the open-file limit"),
    }
    // The first of `[server] workers` event loops; the proxy starts the others (see `proxy::listener`).
    helloguard::proxy::upkeep::install(collect_freed_memory);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(helloguard::proxy::serve(config))
}

fn token_command(
    scopes: &str,
    ttl: u64,
    subject: &str,
    config_file: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let scopes = helloguard::api::scopes::parse_list(scopes).map_err(anyhow::Error::msg)?;
    let config = match &config_file {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let data_dir = data_dir.unwrap_or(config.store.path.clone());
    let key = helloguard::api::management_key::ManagementKey::load_or_create(&data_dir)?;
    let issued_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let token = key.mint(&helloguard::api::management_key::TokenRequest {
        issuer: config.api.issuer.as_deref().unwrap_or("helloguard"),
        audience: &config.api.audience,
        subject,
        scopes: &scopes,
        ttl_seconds: ttl,
        issued_at,
    })?;
    println!("{token}");
    Ok(())
}

//! helloguard: a TLS-terminating reverse proxy and decision engine that binds login sessions and
//! refresh tokens to the TLS fingerprint (JA3/JA4) of the client that created them.
//!
//! The crate is organised along the one data path (see `../shared/DESIGN.md`). Each module may use
//! only the modules below it in this table, never one above (`tests/integration/architecture.rs`
//! checks it, and that the table matches the tree):
//!
//! | module | owns |
//! |---|---|
//! | [`proxy`] | the TLS-terminating reverse proxy: listener and limits, capture before rustls, the request phases in order, the response phase, answers, upstream and demo upstream, admin listener |
//! | [`config`] | the TOML file: each module's option types assembled, the proxy's own sections, defaults, errors naming the key path |
//! | [`api`] | the Management API: `/api/v2/` routes, bearer JWTs with scopes, rate limit, Auth0-shaped errors, the OpenAPI document |
//! | [`pcap`] | offline replay of pcap/pcapng: link/IP/TCP/UDP decoding, flow reassembly, QUIC Initial decryption, DTLS |
//! | [`binding`] | one method per event (login, refresh, new session, token issued, MFA confirmed, user reported, activity, logout, sweep): facts in, decision, writes and audit out; no HTTP type |
//! | [`actions`] | the Actions runtime (CONTRACT §11): compiled files, the sandbox, time and memory limits, what `api` calls asked for |
//! | [`logout`] | how sessions end: initiators, OIDC back-channel logout (`[[clients]]` config, planning into the store's outbox, signed logout tokens, JWKS, durable delivery workers with retries) |
//! | [`audit`] | the typed audit events and where their lines go (a writer thread behind a bounded queue) |
//! | [`engine`] | the binding decision: a pure function from event + observed + stored fingerprints to allow/bind/challenge and the writes; `[policy]` |
//! | [`session`] | validated metadata, `Session`/`RefreshToken` records, the `Store` trait and its memory, embedded (redb) and Redis backends, the logout outbox; `[store]`, `[session]`, `[refresh_tokens]` |
//! | [`http`] | what is HTTP but not proxying: bodies with limits, the session cookie's one reading, the canonical token request, path normalisation, hop-by-hop headers (CONTRACT §1.1) |
//! | [`fingerprint`] | JA3, JA3N, JA4, JA4_r, JA4_o, JA4_ro, the resumption-stable `ja4_stable` and its earlier rule |
//! | [`hello`] | sans-I/O incremental ClientHello reader and the zero-copy [`hello::ClientHello`] view |
//! | [`net`] | address blocks (trusted PROXY-protocol peers) |
//! | [`datadir`] | private files in the data directory, written one way |
//! | [`options`] | what every module's options are made of: durations, key-path errors, wire names |
//!
//! Where this differs from DESIGN.md's order: `audit` sits above `engine` (the decision event
//! carries the engine's decision object), `http` below `session` (it knows nothing of sessions, and
//! user ids use its percent decoding), and `config` below `proxy` (the proxy starts every part
//! and takes the whole file, so the proxy's own sections live in `config`).
//!
//! `main.rs` is a thin CLI over these modules: everything it can do, a test can do too.
#![forbid(unsafe_code)]

pub mod actions;
pub mod api;
pub mod audit;
pub mod binding;
pub mod config;
pub mod datadir;
pub mod engine;
pub mod fingerprint;
pub mod hello;
pub mod http;
pub mod logout;
pub mod net;
pub mod options;
pub mod pcap;
pub mod proxy;
pub mod session;

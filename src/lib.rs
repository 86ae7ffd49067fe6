//! helloguard: a TLS-terminating reverse proxy and decision engine that binds login sessions and
//! refresh tokens to the TLS fingerprint (JA3/JA4) of the client that created them.
//!
//! The crate is organised along the one data path (see `../shared/DESIGN.md`):
//!
//! | module | owns |
//! |---|---|
//! | [`hello`] | sans-I/O incremental ClientHello reader and the zero-copy [`hello::ClientHello`] view |
//! | [`fingerprint`] | JA3, JA3N, JA4, JA4_r, JA4_o, JA4_ro and the resumption-stable `ja4_stable` |
//! | [`session`] | validated metadata, `Session`/`RefreshToken` records, the `Store` trait and its memory, embedded (redb) and Redis backends, the logout outbox |
//! | [`engine`] | the binding decision: a pure function from event + observed + stored fingerprints to allow/bind/challenge and audit events |
//! | [`http`] | what is HTTP but not proxying: bodies with limits, the session cookie's one reading, the canonical token request, path normalisation (CONTRACT §1.1) |
//! | [`api`] | the Management API: `/api/v2/` routes, bearer JWTs with scopes, rate limit, Auth0-shaped errors, the OpenAPI document |
//! | [`logout`] | how sessions end: initiators, `session_ended` audit, OIDC back-channel logout (`[[clients]]` config, planning into the store's outbox, signed logout tokens, JWKS, durable delivery workers with retries) |
//! | [`config`] | the TOML file (`[store]`, `[session]`, `[refresh_tokens]`, `[policy]`, `[server]`, `[tls]`, `[admin]`, `[headers]`, `[[routes]]`; `[logout]`/`[[clients]]` in `logout::config`), defaults, errors naming the key path |
//! | [`proxy`] | the TLS-terminating reverse proxy: capture before rustls, HTTP service, upstream, demo upstream, admin listener |
//! | [`pcap`] | offline replay of pcap/pcapng: link/IP/TCP/UDP decoding, flow reassembly, QUIC Initial decryption, DTLS |
//!
//! `main.rs` is a thin CLI over these modules: everything it can do, a test can do too.
#![forbid(unsafe_code)]

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

//! The integration tests, one binary: each module is one area, driven through real sockets, real
//! clients and the real `helloguard` binary where it matters. One binary rather than one per file:
//! the shared support in `tests/common/` and the dependencies' generic code are compiled and linked once.
//! Run one area with its module name as the filter, e.g.
//! `cargo test --release --test integration proxy_drain`.

#[path = "../common/mod.rs"]
mod common;

mod actions;
mod actions_cli;
mod api_auth;
mod api_cli;
mod api_idp_tokens;
mod api_listener;
mod api_refresh_token_revocation;
mod api_refresh_tokens;
mod api_revocation;
mod api_schemathesis;
mod api_sdks;
mod api_sessions;
mod api_user_ids;
mod architecture;
mod attack;
mod audit_sink;
mod cli_fingerprint;
mod engine;
mod logout_check_config;
mod logout_crash;
mod logout_delivery;
mod logout_e2e;
mod metadata;
mod proxy_activity;
mod proxy_certificates;
mod proxy_chromium;
mod proxy_clients;
mod proxy_drain;
mod proxy_e2e;
mod proxy_edges;
mod proxy_firefox;
mod proxy_idle_connections;
mod proxy_protocol;
mod proxy_store_failure;
mod proxy_streams;
mod reader_chunks;
mod replay_cli;
mod replay_decide;
mod replay_memory;
mod replay_pcaps;
mod replay_vectors;
mod store_conformance;
mod store_crash;
mod vectors;

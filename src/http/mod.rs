//! What is HTTP but not proxying: the canonical-request rules of CONTRACT §1.1 and bodies read
//! with limits. Each reader is a pure function of the request's parts (sans-I/O, like
//! [`crate::hello`]), so a fuzz target drives exactly what the proxy runs.
//!
//! | file | owns |
//! |---|---|
//! | [`body`] | the one body type; bounded, copying, time-limited reading |
//! | [`cookies`] | the session cookie's one reading, and the single `Cookie` header forwarded |
//! | [`token_request`] | a token-route request's one reading (media type, encoding, parameters) or its refusal |
//! | [`parameters`] | a login or token request's query and body parameters as Actions read them, or their refusal |
//! | [`path`] | the normal form routes and reserved paths are matched on |
//! | [`header_names`] | header names that read as helloguard's own under case folding and `_` |
//! | [`hop_by_hop`] | the headers never forwarded in either direction |
//! | [`origin`] | an upstream origin's authority and base path |
//!
//! Nothing here knows about sessions or stores.

pub mod body;
pub mod cookies;
pub mod header_names;
pub mod hop_by_hop;
pub mod origin;
pub mod parameters;
pub mod path;
pub mod token_request;

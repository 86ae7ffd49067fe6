//! One ClientHello from a file or a pipe, fingerprinted: what `helloguard fingerprint` prints.
//!
//! The input is a TLS record stream or a bare handshake message (DTLS: with its 12-byte header).
//! Errors say in one line what is wrong with the bytes.

use super::{all, All, AlpnMode};
use crate::hello::{ClientHello, HelloReader, ParseError, Progress, ReadError, Transport};

/// The JSON object printed for one ClientHello.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub transport: Transport,
    /// The first server name, when present and UTF-8.
    pub sni: Option<String>,
    /// The first ALPN protocol name (lossy UTF-8).
    pub alpn: Option<String>,
    /// The highest offered version by JA4's rule (e.g. `TLS 1.3`), or its hex code when unknown.
    pub tls_version: Option<String>,
    #[serde(flatten)]
    pub fingerprints: All,
}

/// Why an input gave no report.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("empty input")]
    Empty,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("input ends after {0} bytes, before the ClientHello is complete")]
    Incomplete(usize),
    #[error("malformed ClientHello: {0}")]
    Parse(#[from] ParseError),
}

/// Read one ClientHello from `input` and fingerprint it.
pub fn report(input: &[u8], transport: Transport, alpn: AlpnMode) -> Result<Report, InputError> {
    if input.is_empty() {
        return Err(InputError::Empty);
    }
    let mut reader = HelloReader::new(input.len().max(crate::hello::DEFAULT_MAX_LEN));
    let message = if transport == Transport::Dtls {
        // A DTLS handshake header is 12 bytes: the reader's TLS framing does not apply.
        input
    } else {
        match reader.feed(input)? {
            Progress::Complete { .. } => reader.message().unwrap_or_default(),
            Progress::NeedMore => return Err(InputError::Incomplete(input.len())),
        }
    };
    let hello = ClientHello::parse(message, transport)?;
    Ok(Report {
        transport,
        sni: hello.sni_str().map(str::to_owned),
        alpn: hello.alpn.map(|v| String::from_utf8_lossy(v).into_owned()),
        tls_version: hello.offered_version().map(version_name),
        fingerprints: all(&hello, transport, alpn),
    })
}

fn version_name(version: u16) -> String {
    match version {
        0x0304 => "TLS 1.3".into(),
        0x0303 => "TLS 1.2".into(),
        0x0302 => "TLS 1.1".into(),
        0x0301 => "TLS 1.0".into(),
        0x0300 => "SSL 3.0".into(),
        0x0002 => "SSL 2.0".into(),
        0xfeff => "DTLS 1.0".into(),
        0xfefd => "DTLS 1.2".into(),
        0xfefc => "DTLS 1.3".into(),
        other => format!("0x{other:04x}"),
    }
}

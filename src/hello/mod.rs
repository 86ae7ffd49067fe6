//! The ClientHello: reading it off a byte stream and viewing its fields, sans I/O.
//!
//! [`HelloReader`] is fed bytes in chunks of any size (TCP reads, pcap segments) and answers
//! need-more / complete / an error that says why no fingerprint can be taken. It reassembles the
//! handshake message across TLS records and chunks, and accepts a bare handshake message as well.
//! [`ClientHello::parse`] then gives a zero-copy view of the message: nothing here allocates per
//! field or per extension, and no input can make it panic.

mod client_hello;
mod reader;

pub use client_hello::{ClientHello, Extension, Extensions, ParseError, U16List};
pub use reader::{HelloReader, Progress, ReadError, DEFAULT_MAX_LEN};

/// GREASE (RFC 8701): `0x0a0a`, `0x1a1a`, … `0xfafa`. Fingerprints drop these values.
#[inline]
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// The transport a ClientHello arrived on. It decides JA4's first character and, for DTLS, the
/// layout of the handshake header. It is an input: it is never guessed from the hello's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TLS over TCP (JA4 `t`).
    Tcp,
    /// QUIC, from the CRYPTO stream of the client's Initial packets (JA4 `q`).
    Quic,
    /// DTLS (JA4 `d`): 12-byte handshake header and a cookie after the session id.
    Dtls,
}

impl Transport {
    /// The JA4 protocol character.
    pub fn ja4_letter(self) -> u8 {
        match self {
            Transport::Tcp => b't',
            Transport::Quic => b'q',
            Transport::Dtls => b'd',
        }
    }
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "quic" => Ok(Transport::Quic),
            "dtls" => Ok(Transport::Dtls),
            other => Err(format!("unknown transport {other:?}, expected tcp, quic or dtls")),
        }
    }
}

//! The zero-copy ClientHello view: every field is a slice of the handshake message.
//!
//! Parsing validates every length once (message, cipher suites, extension block, and the inner
//! lists fingerprints read: ALPN 0x0010, supported_versions 0x002b, signature_algorithms 0x000d,
//! supported_groups 0x000a, ec_point_formats 0x000b), so the iterators handed out afterwards cannot
//! fail. Only the first occurrence of those five extensions is read; later duplicates are still
//! listed as extension entries (FINGERPRINTS.md §1.1).

use super::{is_grease, Transport};

/// Why a handshake message is not a well-formed ClientHello.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("handshake message type {0} is not a ClientHello (1)")]
    NotClientHello(u8),
    #[error("{0} is truncated")]
    Truncated(&'static str),
    #[error("handshake length {declared} does not match the {actual} bytes present")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("DTLS ClientHello is fragmented (offset {offset}, fragment {fragment} of {length} bytes)")]
    DtlsFragment { offset: usize, fragment: usize, length: usize },
    #[error("cipher_suites length {0} is odd")]
    OddCipherSuites(usize),
    #[error("{0} bytes after the extension block")]
    TrailingBytes(usize),
    #[error("extension 0x{0:04x}: {1}")]
    BadExtension(u16, &'static str),
}

/// A list of big-endian u16 values, validated to have an even length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct U16List<'a>(&'a [u8]);

impl<'a> U16List<'a> {
    fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() % 2 == 0).then_some(Self(bytes))
    }

    /// The values in wire order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + Clone + 'a {
        self.0.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]]))
    }

    pub fn len(&self) -> usize {
        self.0.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One extension entry: its type and its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extension<'a> {
    pub kind: u16,
    pub data: &'a [u8],
}

/// The extension block, validated; iterates entries in wire order, duplicates included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions<'a>(&'a [u8]);

impl<'a> Extensions<'a> {
    pub fn iter(&self) -> ExtensionIter<'a> {
        ExtensionIter(self.0)
    }

    /// The extension types in wire order.
    pub fn kinds(&self) -> impl Iterator<Item = u16> + Clone + 'a {
        self.iter().map(|e| e.kind)
    }
}

/// Iterator over a validated extension block.
#[derive(Clone, Debug)]
pub struct ExtensionIter<'a>(&'a [u8]);

impl<'a> Iterator for ExtensionIter<'a> {
    type Item = Extension<'a>;
    fn next(&mut self) -> Option<Extension<'a>> {
        let (kind, rest) = read_u16(self.0)?;
        let (data, rest) = read_vec16(rest)?;
        self.0 = rest;
        Some(Extension { kind, data })
    }
}

/// A parsed ClientHello. Fields borrow from the message; see the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientHello<'a> {
    pub legacy_version: u16,
    pub random: &'a [u8],
    pub session_id: &'a [u8],
    /// DTLS only.
    pub cookie: Option<&'a [u8]>,
    pub cipher_suites: U16List<'a>,
    pub compression_methods: &'a [u8],
    pub extensions: Extensions<'a>,
    /// Whether an extension of type 0x0000 is present, whatever its content.
    pub has_sni: bool,
    /// The first host name of the first server_name extension, when it is well formed.
    pub sni: Option<&'a [u8]>,
    /// The first ALPN extension's protocol list is present (possibly empty).
    pub has_alpn: bool,
    /// The first ProtocolName of the first ALPN extension (possibly empty).
    pub alpn: Option<&'a [u8]>,
    /// The first supported_versions extension's values, when present.
    pub supported_versions: Option<U16List<'a>>,
    pub supported_groups: Option<U16List<'a>>,
    pub point_formats: Option<&'a [u8]>,
    pub signature_algorithms: Option<U16List<'a>>,
}

const EXT_SNI: u16 = 0x0000;
const EXT_GROUPS: u16 = 0x000a;
const EXT_POINT_FORMATS: u16 = 0x000b;
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
const EXT_ALPN: u16 = 0x0010;
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

impl<'a> ClientHello<'a> {
    /// Parse a complete handshake message (4-byte header; 12-byte header for DTLS).
    pub fn parse(message: &'a [u8], transport: Transport) -> Result<Self, ParseError> {
        let header_len = if transport == Transport::Dtls { 12 } else { 4 };
        let header = message.get(..header_len).ok_or(ParseError::Truncated("handshake header"))?;
        if header[0] != 1 {
            return Err(ParseError::NotClientHello(header[0]));
        }
        let declared = u24(&header[1..4]);
        if transport == Transport::Dtls {
            let (offset, fragment) = (u24(&header[6..9]), u24(&header[9..12]));
            if offset != 0 || fragment != declared {
                return Err(ParseError::DtlsFragment { offset, fragment, length: declared });
            }
        }
        let body = &message[header_len..];
        if body.len() != declared {
            return Err(ParseError::LengthMismatch { declared, actual: body.len() });
        }
        Self::parse_body(body, transport)
    }

    fn parse_body(body: &'a [u8], transport: Transport) -> Result<Self, ParseError> {
        let (legacy_version, rest) = read_u16(body).ok_or(ParseError::Truncated("legacy_version"))?;
        let random = rest.get(..32).ok_or(ParseError::Truncated("random"))?;
        let (session_id, rest) = read_vec8(&rest[32..]).ok_or(ParseError::Truncated("session_id"))?;
        let (cookie, rest) = if transport == Transport::Dtls {
            let (cookie, rest) = read_vec8(rest).ok_or(ParseError::Truncated("cookie"))?;
            (Some(cookie), rest)
        } else {
            (None, rest)
        };
        let (ciphers, rest) = read_vec16(rest).ok_or(ParseError::Truncated("cipher_suites"))?;
        let cipher_suites = U16List::new(ciphers).ok_or(ParseError::OddCipherSuites(ciphers.len()))?;
        let (compression_methods, rest) = read_vec8(rest).ok_or(ParseError::Truncated("compression_methods"))?;
        let mut hello = ClientHello {
            legacy_version,
            random,
            session_id,
            cookie,
            cipher_suites,
            compression_methods,
            ..ClientHello::default()
        };
        if rest.is_empty() {
            return Ok(hello);
        }
        let (block, trailing) = read_vec16(rest).ok_or(ParseError::Truncated("extension block"))?;
        if !trailing.is_empty() {
            return Err(ParseError::TrailingBytes(trailing.len()));
        }
        hello.read_extensions(block)?;
        hello.extensions = Extensions(block);
        Ok(hello)
    }

    /// Validate the block and pick out the first occurrence of each extension fingerprints read.
    fn read_extensions(&mut self, mut block: &'a [u8]) -> Result<(), ParseError> {
        while !block.is_empty() {
            let (kind, rest) = read_u16(block).ok_or(ParseError::Truncated("extension header"))?;
            let (data, rest) = read_vec16(rest).ok_or(ParseError::BadExtension(kind, "data overruns the block"))?;
            block = rest;
            match kind {
                EXT_SNI if !self.has_sni => {
                    self.has_sni = true;
                    self.sni = first_host_name(data);
                }
                EXT_ALPN if !self.has_alpn => {
                    self.alpn =
                        first_protocol(data).ok_or(ParseError::BadExtension(kind, "malformed protocol list"))?;
                    self.has_alpn = true;
                }
                EXT_SUPPORTED_VERSIONS if self.supported_versions.is_none() => {
                    self.supported_versions = Some(list8_of_u16(kind, data)?);
                }
                EXT_GROUPS if self.supported_groups.is_none() => {
                    self.supported_groups = Some(list16_of_u16(kind, data)?);
                }
                EXT_SIGNATURE_ALGORITHMS if self.signature_algorithms.is_none() => {
                    self.signature_algorithms = Some(list16_of_u16(kind, data)?);
                }
                EXT_POINT_FORMATS if self.point_formats.is_none() => {
                    let (formats, _) =
                        read_vec8(data).ok_or(ParseError::BadExtension(kind, "list overruns the extension"))?;
                    self.point_formats = Some(formats);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The highest version offered: the largest non-GREASE value of supported_versions when that
    /// extension is present (`None` if it holds nothing else), otherwise legacy_version.
    pub fn offered_version(&self) -> Option<u16> {
        match self.supported_versions {
            Some(list) => list.iter().filter(|&v| !is_grease(v)).max(),
            None => Some(self.legacy_version),
        }
    }

    /// The first host name as text, when it is valid UTF-8.
    pub fn sni_str(&self) -> Option<&'a str> {
        self.sni.and_then(|s| std::str::from_utf8(s).ok())
    }
}

fn u24(b: &[u8]) -> usize {
    b.iter().take(3).fold(0, |n, &x| n << 8 | usize::from(x))
}

fn read_u16(b: &[u8]) -> Option<(u16, &[u8])> {
    let (head, rest) = b.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*head), rest))
}

fn read_vec8(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = b.split_first()?;
    let len = usize::from(len);
    (rest.len() >= len).then(|| rest.split_at(len))
}

fn read_vec16(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = read_u16(b)?;
    let len = usize::from(len);
    (rest.len() >= len).then(|| rest.split_at(len))
}

fn list16_of_u16(kind: u16, data: &[u8]) -> Result<U16List<'_>, ParseError> {
    let (list, _) = read_vec16(data).ok_or(ParseError::BadExtension(kind, "list overruns the extension"))?;
    U16List::new(list).ok_or(ParseError::BadExtension(kind, "odd list length"))
}

fn list8_of_u16(kind: u16, data: &[u8]) -> Result<U16List<'_>, ParseError> {
    let (list, _) = read_vec8(data).ok_or(ParseError::BadExtension(kind, "list overruns the extension"))?;
    U16List::new(list).ok_or(ParseError::BadExtension(kind, "odd list length"))
}

/// ALPN (RFC 7301): u16 list length, then u8-length protocol names. `Some(None)` is an empty list.
fn first_protocol(data: &[u8]) -> Option<Option<&[u8]>> {
    let (mut list, _) = read_vec16(data)?;
    let mut first = None;
    while !list.is_empty() {
        let (name, rest) = read_vec8(list)?;
        first.get_or_insert(name);
        list = rest;
    }
    Some(first)
}

/// server_name (RFC 6066): u16 list length, then (u8 type, u16 length, name) entries. Lenient: the
/// SNI content never makes a hello malformed, it only decides what `sni` shows.
fn first_host_name(data: &[u8]) -> Option<&[u8]> {
    let (list, _) = read_vec16(data)?;
    let (&name_type, rest) = list.split_first()?;
    let (name, _) = read_vec16(rest)?;
    (name_type == 0).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a TLS ClientHello message from its parts.
    fn hello(ciphers: &[u16], extensions: Option<&[(u16, &[u8])]>) -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([0x22; 32]);
        body.push(0);
        body.extend(((ciphers.len() * 2) as u16).to_be_bytes());
        ciphers.iter().for_each(|c| body.extend(c.to_be_bytes()));
        body.extend([1, 0]);
        if let Some(exts) = extensions {
            let mut block = Vec::new();
            for (kind, data) in exts {
                block.extend(kind.to_be_bytes());
                block.extend((data.len() as u16).to_be_bytes());
                block.extend_from_slice(data);
            }
            body.extend((block.len() as u16).to_be_bytes());
            body.extend(block);
        }
        let mut m = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        m.extend(body);
        m
    }

    #[test]
    fn fields_are_read() {
        let m = hello(
            &[0x1301, 0x002f],
            Some(&[
                (0x0000, b"\x00\x0e\x00\x00\x0bexample.com"),
                (0x0010, b"\x00\x0c\x02h2\x08http/1.1"),
                (0x002b, b"\x04\x03\x04\x03\x03"),
                (0x000d, b"\x00\x04\x04\x03\x08\x04"),
                (0x000a, b"\x00\x02\x00\x1d"),
                (0x000b, b"\x01\x00"),
                (0x000d, b"\xff"), // a duplicate is listed, never parsed
            ]),
        );
        let ch = ClientHello::parse(&m, Transport::Tcp).unwrap();
        assert_eq!(ch.legacy_version, 0x0303);
        assert_eq!(ch.cipher_suites.iter().collect::<Vec<_>>(), [0x1301, 0x002f]);
        assert_eq!(ch.sni_str(), Some("example.com"));
        assert_eq!(ch.alpn, Some(&b"h2"[..]));
        assert_eq!(ch.supported_versions.unwrap().iter().collect::<Vec<_>>(), [0x0304, 0x0303]);
        assert_eq!(ch.signature_algorithms.unwrap().iter().collect::<Vec<_>>(), [0x0403, 0x0804]);
        assert_eq!(ch.supported_groups.unwrap().iter().collect::<Vec<_>>(), [0x001d]);
        assert_eq!(ch.point_formats, Some(&[0u8][..]));
        assert_eq!(ch.extensions.kinds().collect::<Vec<_>>(), [0, 0x10, 0x2b, 0x0d, 0x0a, 0x0b, 0x0d]);
    }

    #[test]
    fn no_extension_block_is_valid() {
        let m = hello(&[0x2f], None);
        let ch = ClientHello::parse(&m, Transport::Tcp).unwrap();
        assert_eq!(ch.extensions.iter().count(), 0);
        assert!(!ch.has_sni && !ch.has_alpn);
    }

    #[test]
    fn sni_content_never_matters() {
        let m = hello(&[0x2f], Some(&[(0x0000, b"")]));
        let ch = ClientHello::parse(&m, Transport::Tcp).unwrap();
        assert!(ch.has_sni);
        assert_eq!(ch.sni, None);
    }

    #[test]
    fn empty_alpn_list_and_empty_name() {
        let ch_m = hello(&[0x2f], Some(&[(0x0010, b"\x00\x00")]));
        let ch = ClientHello::parse(&ch_m, Transport::Tcp).unwrap();
        assert!(ch.has_alpn);
        assert_eq!(ch.alpn, None);
        let m = hello(&[0x2f], Some(&[(0x0010, b"\x00\x03\x00\x01q")]));
        assert_eq!(ClientHello::parse(&m, Transport::Tcp).unwrap().alpn, Some(&b""[..]));
    }

    #[test]
    fn malformed_inputs_give_typed_errors() {
        let cases: Vec<(Vec<u8>, ParseError)> = vec![
            (vec![], ParseError::Truncated("handshake header")),
            (vec![2, 0, 0, 0], ParseError::NotClientHello(2)),
            (vec![1, 0, 0, 5, 3, 3], ParseError::LengthMismatch { declared: 5, actual: 2 }),
            (vec![1, 0, 0, 2, 3, 3], ParseError::Truncated("random")),
            (
                hello(&[0x2f], Some(&[(0x0010, b"\x00\x05\x02h2")])),
                ParseError::BadExtension(0x10, "malformed protocol list"),
            ),
            (
                hello(&[0x2f], Some(&[(0x002b, b"\x05\x03\x04")])),
                ParseError::BadExtension(0x2b, "list overruns the extension"),
            ),
            (hello(&[0x2f], Some(&[(0x002b, b"\x03\x03\x04\x03")])), ParseError::BadExtension(0x2b, "odd list length")),
            (
                hello(&[0x2f], Some(&[(0x000d, b"\xff\xff")])),
                ParseError::BadExtension(0x0d, "list overruns the extension"),
            ),
            (hello(&[0x2f], Some(&[(0x000a, b"\x00")])), ParseError::BadExtension(0x0a, "list overruns the extension")),
            (
                hello(&[0x2f], Some(&[(0x000b, b"\x02\x00")])),
                ParseError::BadExtension(0x0b, "list overruns the extension"),
            ),
        ];
        for (m, error) in cases {
            assert_eq!(ClientHello::parse(&m, Transport::Tcp), Err(error));
        }
    }

    #[test]
    fn extension_block_overrun_and_trailing_bytes() {
        let mut m = hello(&[0x2f], Some(&[(0x0017, b"")]));
        // Declare one more byte in the extension block than there is.
        let at = m.len() - 6;
        m[at + 1] += 1;
        assert_eq!(ClientHello::parse(&m, Transport::Tcp), Err(ParseError::Truncated("extension block")));
        let mut m = hello(&[0x2f], Some(&[(0x0017, b"")]));
        m.push(0);
        m[3] += 1;
        assert_eq!(ClientHello::parse(&m, Transport::Tcp), Err(ParseError::TrailingBytes(1)));
        let mut m = hello(&[0x2f], Some(&[(0x0017, b"ab")]));
        let at = m.len() - 4;
        m[at] = 0xff; // the entry's data length overruns the block
        assert_eq!(
            ClientHello::parse(&m, Transport::Tcp),
            Err(ParseError::BadExtension(0x17, "data overruns the block"))
        );
    }

    #[test]
    fn odd_cipher_list() {
        let mut body = vec![3, 3];
        body.extend([0; 32]);
        body.extend([0, 0, 3, 0, 0x2f, 0, 1, 0]);
        let mut m = vec![1, 0, 0, body.len() as u8];
        m.extend(body);
        assert_eq!(ClientHello::parse(&m, Transport::Tcp), Err(ParseError::OddCipherSuites(3)));
    }
}

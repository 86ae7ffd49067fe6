//! The PROXY protocol header (HAProxy's spec, versions 1 and 2), sans I/O: a load balancer in
//! front of helloguard prepends it to tell the real client address. Also the trusted-CIDR list.
//!
//! [`parse`] takes the bytes read so far and says: need more, complete (with the source address and
//! how many bytes the header took), or not a valid header. It never panics and never reads past
//! [`MAX_HEADER`] bytes. Version 2 TLVs are skipped; `LOCAL` (health checks) and `UNKNOWN` / non-IP
//! families carry no source address: the TCP peer is then the client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 1 headers are at most 107 bytes; version 2 headers are capped here (addresses and TLVs).
pub const MAX_HEADER: usize = 16 + 2048;
const V1_MAX: usize = 107;
const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: Version,
    /// The original client; `None` for `LOCAL`, `UNKNOWN` and non-IP families.
    pub source: Option<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    NeedMore,
    Complete { header: Header, consumed: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("not a PROXY protocol header")]
    NotProxy,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
}

/// Parse the header at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    if starts_like(bytes, V1_PREFIX) {
        return if bytes.len() < V1_PREFIX.len() { Ok(Parsed::NeedMore) } else { parse_v1(bytes) };
    }
    if starts_like(bytes, V2_SIGNATURE) {
        return if bytes.len() < 16 { Ok(Parsed::NeedMore) } else { parse_v2(bytes) };
    }
    Err(HeaderError::NotProxy)
}

/// Whether `bytes` begin (or could begin) a header of either version.
pub fn looks_like_header(bytes: &[u8]) -> bool {
    !bytes.is_empty() && (starts_like(bytes, V1_PREFIX) || starts_like(bytes, V2_SIGNATURE))
}

/// `bytes` and `prefix` agree on their common length.
fn starts_like(bytes: &[u8], prefix: &[u8]) -> bool {
    let n = bytes.len().min(prefix.len());
    bytes[..n] == prefix[..n]
}

fn parse_v1(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    let window = &bytes[..bytes.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if bytes.len() >= V1_MAX {
            Err(HeaderError::Malformed("v1 line too long"))
        } else {
            Ok(Parsed::NeedMore)
        };
    };
    let line = std::str::from_utf8(&bytes[V1_PREFIX.len()..end]).map_err(|_| HeaderError::Malformed("v1 not ASCII"))?;
    let mut fields = line.split(' ');
    let source = match fields.next() {
        Some("UNKNOWN") => None,
        Some(family @ ("TCP4" | "TCP6")) => {
            let mut next = || fields.next().ok_or(HeaderError::Malformed("v1 missing field"));
            let (source, _destination) = (next()?, next()?);
            let (source_port, _destination_port) = (next()?, next()?);
            let ip: IpAddr = source.parse().map_err(|_| HeaderError::Malformed("v1 bad source address"))?;
            if ip.is_ipv4() != (family == "TCP4") {
                return Err(HeaderError::Malformed("v1 address does not match its family"));
            }
            let port = parse_port(source_port)?;
            if fields.next().is_some() {
                return Err(HeaderError::Malformed("v1 trailing fields"));
            }
            Some(SocketAddr::new(ip, port))
        }
        _ => return Err(HeaderError::Malformed("v1 unknown protocol")),
    };
    Ok(Parsed::Complete { header: Header { version: Version::V1, source }, consumed: end + 2 })
}

/// Decimal 0–65535 without a sign or leading zeros (as the spec writes them).
fn parse_port(text: &str) -> Result<u16, HeaderError> {
    let valid = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    text.parse().ok().filter(|_| valid).ok_or(HeaderError::Malformed("v1 bad port"))
}

fn parse_v2(bytes: &[u8]) -> Result<Parsed, HeaderError> {
    let version_command = bytes[12];
    if version_command >> 4 != 2 {
        return Err(HeaderError::Malformed("v2 unknown version"));
    }
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(HeaderError::Malformed("v2 unknown command")),
    };
    let family = bytes[13];
    let length = usize::from(u16::from_be_bytes([bytes[14], bytes[15]]));
    let total = 16 + length;
    if total > MAX_HEADER {
        return Err(HeaderError::Malformed("v2 header too long"));
    }
    if bytes.len() < total {
        return Ok(Parsed::NeedMore);
    }
    let addresses = &bytes[16..total];
    let source = match family >> 4 {
        _ if local => None,
        1 => {
            let a = addresses.get(..12).ok_or(HeaderError::Malformed("v2 short IPv4 addresses"))?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be_bytes([a[8], a[9]])))
        }
        2 => {
            let a = addresses.get(..36).ok_or(HeaderError::Malformed("v2 short IPv6 addresses"))?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), u16::from_be_bytes([a[32], a[33]])))
        }
        // UNSPEC and AF_UNIX: no IP address to report.
        0 | 3 => None,
        _ => return Err(HeaderError::Malformed("v2 unknown address family")),
    };
    Ok(Parsed::Complete { header: Header { version: Version::V2, source }, consumed: total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> (Header, usize) {
        match parse(bytes) {
            Ok(Parsed::Complete { header, consumed }) => (header, consumed),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn version_1() {
        let line = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\nrest";
        assert_eq!(
            complete(line),
            (Header { version: Version::V1, source: Some("203.0.113.7:51000".parse().unwrap()) }, 44)
        );
        let (header, _) = complete(b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 443\r\n");
        assert_eq!(header.source, Some("[2001:db8::7]:65535".parse().unwrap()));
        assert_eq!(complete(b"PROXY UNKNOWN\r\n").0.source, None);
        assert_eq!(parse(b"PROX"), Ok(Parsed::NeedMore));
        assert_eq!(parse(b"PROXY TCP4 1.2.3.4"), Ok(Parsed::NeedMore));
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"[..],
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4\r\n",
        ] {
            assert!(matches!(parse(bad), Err(HeaderError::Malformed(_))), "{}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(
            parse(&[b'P', b'R', b'O', b'X', b'Y', b' ', b'x'].repeat(20)),
            Err(HeaderError::Malformed(_))
        ));
        assert_eq!(parse(&[22, 3, 1]), Err(HeaderError::NotProxy));
    }

    #[test]
    fn version_2() {
        let mut v4 = V2_SIGNATURE.to_vec();
        v4.extend([0x21, 0x11, 0, 12, 198, 51, 100, 9, 10, 0, 0, 1, 0x1f, 0x90, 1, 187]);
        let (header, consumed) = complete(&v4);
        assert_eq!(
            (header.version, header.source, consumed),
            (Version::V2, Some("198.51.100.9:8080".parse().unwrap()), 28)
        );
        assert_eq!(parse(&v4[..20]), Ok(Parsed::NeedMore));
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(complete(&local), (Header { version: Version::V2, source: None }, 16));
        let mut bad_command = local.clone();
        bad_command[12] = 0x22;
        assert!(matches!(parse(&bad_command), Err(HeaderError::Malformed(_))));
        let mut short = V2_SIGNATURE.to_vec();
        short.extend([0x21, 0x21, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(parse(&short), Err(HeaderError::Malformed(_))));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend([0x21, 0x11, 0xff, 0xff]);
        assert!(matches!(parse(&huge), Err(HeaderError::Malformed(_))));
    }
}

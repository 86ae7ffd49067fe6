//! Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded in either direction, nor the headers a
//! `Connection` header names.

use hyper::header::{self, HeaderMap, HeaderName};

use super::header_names::remove_where;

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded in either direction; see
/// [`hop_by_hop_index`].
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// `name`'s index in [`HOP_BY_HOP`]. A match on the text: most names differ in length from all
/// of these and are passed over at once.
fn hop_by_hop_index(name: &str) -> Option<usize> {
    Some(match name {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "proxy-authenticate" => 3,
        "proxy-authorization" => 4,
        "te" => 5,
        "trailer" => 6,
        "transfer-encoding" => 7,
        "upgrade" => 8,
        _ => return None,
    })
}
/// Remove the hop-by-hop headers and those the `Connection` header lists. One pass over the
/// headers finds both; a message with none (most requests) costs nothing more, and one whose
/// `Connection` lists only the usual tokens (`keep-alive`, as most HTTP/1.1 origins answer) one
/// removal per hop-by-hop name present, with no allocation.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // The usual `Connection` tokens name nothing beyond the fixed set: no name to parse.
    let usual = |token: &str| ["keep-alive", "close", "upgrade"].iter().any(|t| token.eq_ignore_ascii_case(t));
    let mut present = 0u16; // bit `i`: `HOP_BY_HOP[i]` is present
    let mut listed: Vec<HeaderName> = Vec::new();
    for (name, value) in headers.iter() {
        let Some(index) = hop_by_hop_index(name.as_str()) else { continue };
        present |= 1 << index;
        if index == 0 {
            let tokens = value.to_str().unwrap_or_default().split(',').map(str::trim);
            let names = tokens.filter(|token| !usual(token)).filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok());
            listed.extend(names);
        }
    }
    for (index, name) in HOP_BY_HOP.iter().enumerate() {
        if present & 1 << index != 0 {
            headers.remove(name);
        }
    }
    if !listed.is_empty() {
        remove_where(headers, |name| listed.contains(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_go() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, "Keep-Alive, X-Private,close".parse().unwrap());
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert("te", "trailers".parse().unwrap());
        headers.insert("accept", "*/*".parse().unwrap());
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);

        let fixed = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization"];
        let mut headers = HeaderMap::new();
        for name in fixed.into_iter().chain(["te", "trailer", "transfer-encoding", "upgrade", "user-agent"]) {
            headers.insert(HeaderName::from_static(name), "x".parse().unwrap());
        }
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["user-agent"]);
    }

    #[test]
    fn every_hop_by_hop_name_is_found_at_its_index() {
        for (index, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name.as_str()), Some(index), "{name}");
        }
        assert_eq!(hop_by_hop_index("accept"), None);
    }

    #[test]
    fn names_listed_without_a_connection_header_stay() {
        let mut headers = HeaderMap::new();
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert(header::USER_AGENT, "curl".parse().unwrap());
        remove_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 2);
    }
}

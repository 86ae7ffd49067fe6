//! A login or token request's parameters (query string and body) as Actions read them
//! (`event.request.query`, `event.request.body`, CONTRACT §11), in one reading the upstream
//! cannot read differently: a name given twice, or two names that frameworks fold together
//! (`Tenant` and `tenant`, `tenant[]`), make the request ambiguous and it is refused; a body in an
//! encoding helloguard does not decode is refused rather than read as empty.

use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE};
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Why the parameters cannot be read one way only (the `error_description` of a `400`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ambiguity {
    #[error("Ambiguous request: parameter {0:?} is given more than once.")]
    Repeated(String),
    #[error("Unsupported content encoding.")]
    Encoded,
}

/// The query string's parameters.
pub fn query(query: Option<&str>) -> Result<Map<String, Value>, Ambiguity> {
    unique(
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))),
    )
}

/// The body's parameters: a form or a JSON object (a UTF-8 BOM allowed). Another media type, or a
/// body that does not parse, has none (the upstream cannot read parameters from it either).
pub fn body(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Ambiguity> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    let identity = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .all(|e| e.to_str().is_ok_and(|e| e.trim().eq_ignore_ascii_case("identity")));
    if !identity {
        return Err(Ambiguity::Encoded);
    }
    let essence = headers
        .get(CONTENT_TYPE)
        .and_then(|t| t.to_str().ok())
        .map(|t| t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    match essence.as_deref() {
        Some("application/x-www-form-urlencoded") => {
            unique(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))))
        }
        Some("application/json") => {
            let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
            let mut deserializer = serde_json::Deserializer::from_slice(body);
            match deserializer.deserialize_any(Members).and_then(|m| deserializer.end().map(|()| m)) {
                Ok(members) => unique(members.into_iter()),
                Err(_) => Ok(Map::new()),
            }
        }
        _ => Ok(Map::new()),
    }
}

/// The pairs as an object, or the first name that another one repeats under folding.
fn unique(pairs: impl Iterator<Item = (String, Value)>) -> Result<Map<String, Value>, Ambiguity> {
    let mut map = Map::new();
    let mut folded = std::collections::HashSet::new();
    for (name, value) in pairs {
        if !folded.insert(fold(&name)) {
            return Err(Ambiguity::Repeated(name));
        }
        map.insert(name, value);
    }
    Ok(map)
}

/// A name as the most lenient framework reads it: ASCII case ignored, a `[…]` suffix dropped.
fn fold(name: &str) -> String {
    name.split('[').next().unwrap_or_default().to_ascii_lowercase()
}

/// A JSON value's top-level members, duplicates kept (a map would keep only one of them).
struct Members;

impl<'de> Visitor<'de> for Members {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some(member) = map.next_entry::<String, Value>()? {
            members.push(member);
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn one_reading_or_a_refusal() {
        assert_eq!(query(Some("ext-tenantId=acme&x=1")).unwrap()["ext-tenantId"], "acme");
        for twice in ["t=a&t=b", "t=a&T=b", "t=a&t[]=b", "t[x]=a&t[y]=b"] {
            assert!(matches!(query(Some(twice)), Err(Ambiguity::Repeated(_))), "{twice}");
        }
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(body(&form, b"username=alice").unwrap()["username"], "alice");
        assert!(body(&form, b"username=alice&username=mallory").is_err());
        let json = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert_eq!(body(&json, br#"{"a":{"b":1}}"#).unwrap()["a"]["b"], 1);
        assert!(body(&json, br#"{"a":1,"a":2}"#).is_err());
        assert!(body(&json, b"not json").unwrap().is_empty());
        assert!(body(&json, b"[1,2]").unwrap().is_empty());
        let gzip = headers(&[("content-type", "application/json"), ("content-encoding", "gzip")]);
        assert_eq!(body(&gzip, b"\x1f\x8b"), Err(Ambiguity::Encoded));
        assert!(body(&headers(&[("content-type", "text/plain")]), b"a=b").unwrap().is_empty());
    }
}

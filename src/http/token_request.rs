//! The canonical reading of a token-route request (CONTRACT §1.1): the one reading helloguard
//! decides on, or a refusal when the request has more than one.
//!
//! Frameworks find a refresh token in different places: the last of two `refresh_token`
//! parameters or the first, the query string as well as the body, multipart and JSON bodies,
//! names in another case (`Refresh_Token`) or with brackets (`refresh_token[]`, which PHP and `qs`
//! read as an array), a body whose media type merely contains "json", a gzip-encoded body. Any of
//! these would let a thief present a stolen token that the upstream exchanges while helloguard
//! sees another one, or none. So a token request is read only in the unambiguous forms: a form or
//! JSON body (media types compared as media types), identity encoding, `grant_type` and
//! `refresh_token` once each, as strings, from the body only. Everything else is refused before
//! the upstream sees it, and the body the upstream gets is the very bytes that were read.

use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE};
use serde::de::{Deserializer, MapAccess, Visitor};

/// Largest token-route body read (`413` above).
pub const MAX_BODY: usize = 64 * 1024;

/// The parameters that decide whether a token request is a refresh exchange, and which token.
const DECIDING: [&str; 2] = ["grant_type", "refresh_token"];

/// A token request's parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    /// Present only for a refresh exchange (`grant_type=refresh_token`).
    pub refresh_token: Option<String>,
    pub client_id: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
}

/// Why a token request is refused (`400`, or `413` for [`Refusal::TooLarge`]); the display text is
/// the answer's `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Unsupported content type.")]
    UnsupportedContentType,
    #[error("Unsupported content encoding.")]
    UnsupportedContentEncoding,
    #[error("Request body too large.")]
    TooLarge,
    #[error("Ambiguous token request.")]
    Ambiguous,
    #[error("Malformed request body.")]
    Malformed,
}

/// The two body encodings a token request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaType {
    Form,
    Json,
}

/// Read a token request: its headers, its query string and its whole body (at most [`MAX_BODY`]).
pub fn read(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Result<TokenRequest, Refusal> {
    for encoding in headers.get_all(CONTENT_ENCODING) {
        let identity = encoding.to_str().is_ok_and(|e| e.trim().eq_ignore_ascii_case("identity"));
        if !identity {
            return Err(Refusal::UnsupportedContentEncoding);
        }
    }
    if body.len() > MAX_BODY {
        return Err(Refusal::TooLarge);
    }
    if let Some(query) = query {
        if form_urlencoded::parse(query.as_bytes()).any(|(name, _)| deciding_spelling(&name).is_some()) {
            return Err(Refusal::Ambiguous);
        }
    }
    let media_type = media_type(headers)?;
    let pairs = match media_type {
        None if body.is_empty() => Vec::new(),
        None => return Err(Refusal::UnsupportedContentType),
        Some(MediaType::Form) => {
            form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Some(v.into_owned()))).collect()
        }
        Some(MediaType::Json) => json_pairs(body)?,
    };
    from_pairs(pairs)
}

/// The body's media type: none (no `Content-Type`), form or JSON; one field only.
fn media_type(headers: &HeaderMap) -> Result<Option<MediaType>, Refusal> {
    let mut fields = headers.get_all(CONTENT_TYPE).iter();
    let Some(field) = fields.next() else { return Ok(None) };
    if fields.next().is_some() {
        return Err(Refusal::UnsupportedContentType);
    }
    let text = field.to_str().map_err(|_| Refusal::UnsupportedContentType)?;
    let essence = text.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(Some(MediaType::Form))
    } else if essence.eq_ignore_ascii_case("application/json") {
        Ok(Some(MediaType::Json))
    } else {
        Err(Refusal::UnsupportedContentType)
    }
}

/// Which deciding parameter `name` spells, if any: itself, or another case or a bracketed form of
/// it (`Refresh_Token`, `refresh_token[]`). `Some(true)` means exactly.
fn deciding_spelling(name: &str) -> Option<bool> {
    let base = name.split('[').next().unwrap_or_default();
    DECIDING.iter().find(|d| base.eq_ignore_ascii_case(d)).map(|d| name == *d)
}

/// Parameters in order, each value a string, or `None` when JSON gave another type.
fn from_pairs(pairs: Vec<(String, Option<String>)>) -> Result<TokenRequest, Refusal> {
    let mut request = TokenRequest::default();
    let mut refresh_token = None;
    for (name, value) in pairs {
        match deciding_spelling(&name) {
            Some(true) => {
                let value = value.ok_or(Refusal::Ambiguous)?;
                let slot = if name == "grant_type" { &mut request.grant_type } else { &mut refresh_token };
                if slot.replace(value).is_some() {
                    return Err(Refusal::Ambiguous);
                }
            }
            Some(false) => return Err(Refusal::Ambiguous),
            None => {
                let slot = match name.as_str() {
                    "client_id" => &mut request.client_id,
                    "audience" => &mut request.audience,
                    "scope" => &mut request.scope,
                    _ => continue,
                };
                // Informational parameters: the first string wins, nothing is decided on them.
                if slot.is_none() {
                    *slot = value;
                }
            }
        }
    }
    let grant_type = request.grant_type.as_deref();
    // `REFRESH_TOKEN` or ` refresh_token`: some upstream may accept what helloguard would not.
    if grant_type.is_some_and(|g| g != "refresh_token" && g.trim().eq_ignore_ascii_case("refresh_token")) {
        return Err(Refusal::Ambiguous);
    }
    if grant_type == Some("refresh_token") {
        request.refresh_token = refresh_token;
    }
    Ok(request)
}

/// The top-level members of a JSON object body (a UTF-8 BOM allowed), in order, duplicates kept;
/// a non-object body has no parameters.
fn json_pairs(body: &[u8]) -> Result<Vec<(String, Option<String>)>, Refusal> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let members = deserializer.deserialize_any(Members).map_err(|_| Refusal::Malformed)?;
    deserializer.end().map_err(|_| Refusal::Malformed)?;
    Ok(members)
}

/// Collects an object's members without merging duplicate names (a map would keep only one).
struct Members;

impl<'de> Visitor<'de> for Members {
    type Value = Vec<(String, Option<String>)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, serde_json::Value>()? {
            let value = match value {
                serde_json::Value::String(text) => Some(text),
                _ => None,
            };
            members.push((name, value));
        }
        Ok(members)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
    /// Header fields, query string, body, and the refusal expected.
    type Case = (&'static [(&'static str, &'static str)], Option<&'static str>, &'static [u8], Refusal);
    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn form_and_json_exchanges_are_read() {
        let form = read(&headers(&[FORM]), None, b"grant_type=refresh_token&refresh_token=r1&client_id=web").unwrap();
        assert_eq!(form.refresh_token.as_deref(), Some("r1"));
        assert_eq!(form.client_id.as_deref(), Some("web"));
        let charset = headers(&[("content-type", "Application/X-WWW-Form-Urlencoded; charset=json")]);
        assert_eq!(
            read(&charset, None, b"grant_type=refresh_token&refresh_token=r1").unwrap().refresh_token.unwrap(),
            "r1"
        );
        let json =
            read(&headers(&[JSON]), None, br#"{"grant_type":"password","refresh_token":"x","scope":"a b"}"#).unwrap();
        assert_eq!(json.refresh_token, None, "only refresh_token grants are exchanges");
        assert_eq!(json.grant_type.as_deref(), Some("password"));
        assert_eq!(json.scope.as_deref(), Some("a b"));
        let bom =
            read(&headers(&[JSON]), None, b"\xEF\xBB\xBF{\"grant_type\":\"refresh_token\",\"refresh_token\":\"r\"}");
        assert_eq!(bom.unwrap().refresh_token.as_deref(), Some("r"));
        assert_eq!(read(&HeaderMap::new(), None, b"").unwrap(), TokenRequest::default());
    }

    #[test]
    fn every_second_reading_is_refused() {
        use Refusal::*;
        let cases: [Case; 15] = [
            (&[FORM], None, b"grant_type=refresh_token&refresh_token=junk&refresh_token=STOLEN", Ambiguous),
            (&[FORM], None, b"grant_type=refresh_token&grant_type=refresh_token&refresh_token=r", Ambiguous),
            (&[FORM], None, b"grant_type=refresh_token&Refresh_Token=STOLEN", Ambiguous),
            (&[FORM], None, b"grant_type=refresh_token&refresh_token[]=STOLEN", Ambiguous),
            (&[FORM], None, b"grant_type=REFRESH_TOKEN&refresh_token=r", Ambiguous),
            (&[FORM], Some("refresh_token=STOLEN"), b"grant_type=refresh_token&refresh_token=junk", Ambiguous),
            (&[FORM], Some("GRANT_TYPE=refresh_token"), b"", Ambiguous),
            (&[JSON], None, br#"{"grant_type":"refresh_token","refresh_token":"a","refresh_token":"b"}"#, Ambiguous),
            (&[JSON], None, br#"{"grant_type":"refresh_token","refresh_token":["STOLEN"]}"#, Ambiguous),
            (&[JSON], None, br#"{"grant_type":"refresh_token","refresh_token":"a",}"#, Malformed),
            (&[("content-type", "multipart/form-data; boundary=x")], None, b"--x\r\n", UnsupportedContentType),
            (&[], None, b"grant_type=refresh_token&refresh_token=r", UnsupportedContentType),
            (&[FORM, JSON], None, b"grant_type=refresh_token&refresh_token=r", UnsupportedContentType),
            (&[FORM, ("content-encoding", "gzip")], None, b"\x1f\x8b", UnsupportedContentEncoding),
            (&[("content-type", "text/json")], None, b"{}", UnsupportedContentType),
        ];
        for (fields, query, body, refusal) in cases {
            assert_eq!(
                read(&headers(fields), query, body),
                Err(refusal),
                "{fields:?} {query:?} {:?}",
                String::from_utf8_lossy(body)
            );
        }
        let big = vec![b'a'; MAX_BODY + 1];
        assert_eq!(read(&headers(&[FORM]), None, &big), Err(TooLarge));
        let identity = headers(&[FORM, ("content-encoding", "Identity")]);
        assert!(read(&identity, Some("a=1"), b"grant_type=password").is_ok());
    }

    #[test]
    fn refusals_say_what_the_contract_says() {
        assert_eq!(Refusal::UnsupportedContentType.to_string(), "Unsupported content type.");
        assert_eq!(Refusal::UnsupportedContentEncoding.to_string(), "Unsupported content encoding.");
        assert_eq!(Refusal::TooLarge.to_string(), "Request body too large.");
        assert_eq!(Refusal::Ambiguous.to_string(), "Ambiguous token request.");
    }
}

//! PATCH bodies (CONTRACT §6.3): at most 64 KiB of `application/json` holding an object with
//! exactly one property, `session_metadata` or `refresh_token_metadata`, whose value replaces the
//! whole map (`null` or `{}` clear it). Duplicate keys anywhere make the document invalid JSON.
//!
//! [`metadata_patch`] is a pure function of the content type and the bytes, so the fuzz target
//! `management_body` drives exactly what the server runs.

use std::collections::btree_map::Entry;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::errors::{payload_error, ApiError};
use crate::http::body::{discard_up_to, read_whole, Body, ReadError};
use crate::session::Metadata;

/// Largest PATCH body accepted (`413` above).
pub const MAX_BODY: usize = 64 * 1024;

/// A refused body is still read, up to this much more and for at most [`DISCARD_TIME`], so the
/// client gets its `413` (see [`discard_up_to`]).
const DISCARD_LIMIT: usize = 1024 * 1024;
const DISCARD_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a client has to send its (bounded) body.
const BODY_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// A request body as received, before the checks that decide whether it is needed.
pub enum Received {
    Complete(bytes::Bytes),
    /// Over [`MAX_BODY`]: the rest, read and discarded only if the answer is `413`.
    TooLarge(Body),
    /// Failed or too slow.
    Unreadable,
}

/// Reads a request body of at most [`MAX_BODY`] bytes.
pub async fn receive(body: Body) -> Received {
    match read_whole(body, MAX_BODY, BODY_TIME).await {
        Ok(bytes) => Received::Complete(bytes),
        Err(ReadError::TooLarge(rest)) => Received::TooLarge(rest),
        Err(ReadError::Timeout | ReadError::Failed(_)) => Received::Unreadable,
    }
}

impl Received {
    /// The body of an endpoint that takes one: `413` when too large (after reading on a little, so
    /// the client sees the answer), `400` when unreadable.
    pub async fn bytes(self) -> Result<bytes::Bytes, ApiError> {
        match self {
            Received::Complete(bytes) => Ok(bytes),
            Received::TooLarge(rest) => {
                discard_up_to(rest, DISCARD_LIMIT, DISCARD_TIME).await;
                Err(ApiError::PayloadTooLarge)
            }
            Received::Unreadable => Err(payload_error("Invalid JSON")),
        }
    }
}

/// The replacement map a PATCH body asks for. `field` is the one property allowed.
pub fn metadata_patch(content_type: Option<&str>, bytes: &[u8], field: &str) -> Result<Metadata, ApiError> {
    let object = json_object(content_type, bytes)?;
    if object.is_empty() {
        return Err(payload_error("Too few properties defined (0), minimum 1"));
    }
    // The map iterates in key order, so the first extra key reported is the smallest.
    if let Some(extra) = object.keys().find(|key| *key != field) {
        return Err(payload_error(&format!("Additional properties not allowed: {extra}")));
    }
    match object.get(field) {
        None | Some(Value::Null) => Ok(Metadata::new()),
        Some(value) => Metadata::from_json(value).map_err(|e| ApiError::InvalidBody(e.api_message())),
    }
}

/// Most ids one revoke names.
pub const MAX_REVOKE_IDS: usize = 100;

/// Which refresh tokens `POST /api/v2/refresh-tokens/revoke` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeRequest {
    /// These ids (unknown and already ended ones are skipped).
    Ids(Vec<String>),
    /// Every live token of the user, or only those of one client. The reference's `audience`
    /// is accepted and ignored: helloguard records a token's audience only when the token request
    /// named one, so it cannot select by it.
    User { user_id: String, client_id: Option<String> },
}

/// A revoke body, in one of the reference's shapes: `{"ids": [...]}` (1 to 100 ids), or
/// `{"user_id": ...}`, optionally with `client_id`, and then optionally `audience`.
pub fn revoke_request(content_type: Option<&str>, bytes: &[u8]) -> Result<RevokeRequest, ApiError> {
    let object = json_object(content_type, bytes)?;
    if let Some(extra) = object.keys().find(|key| !["ids", "user_id", "client_id", "audience"].contains(&key.as_str()))
    {
        return Err(payload_error(&format!("Additional properties not allowed: {extra}")));
    }
    let string = |name: &str| -> Result<Option<String>, ApiError> {
        match object.get(name) {
            None => Ok(None),
            Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
            Some(Value::String(_)) => Err(property_error(name, "String is too short (0 chars), minimum 1")),
            Some(other) => {
                Err(property_error(name, &format!("Expected type string but found type {}", type_name(other))))
            }
        }
    };
    let (user_id, client_id) = (string("user_id")?, string("client_id")?);
    if string("audience")?.is_some() && (user_id.is_none() || client_id.is_none()) {
        return Err(payload_error("audience is allowed only with user_id and client_id"));
    }
    match (object.get("ids"), user_id) {
        (Some(_), Some(_)) => Err(payload_error("Only one of ids or user_id may be given")),
        (None, None) => Err(payload_error("Missing required property: ids or user_id")),
        (None, Some(user_id)) => Ok(RevokeRequest::User { user_id, client_id }),
        (Some(_), None) if client_id.is_some() => Err(payload_error("client_id is allowed only with user_id")),
        (Some(ids), None) => {
            let Value::Array(items) = ids else {
                return Err(property_error("ids", &format!("Expected type array but found type {}", type_name(ids))));
            };
            if items.is_empty() {
                return Err(property_error("ids", "Array is too short (0), minimum 1"));
            }
            if items.len() > MAX_REVOKE_IDS {
                return Err(property_error(
                    "ids",
                    &format!("Array is too long ({}), maximum {MAX_REVOKE_IDS}", items.len()),
                ));
            }
            let ids = items.iter().map(|item| match item {
                Value::String(id) => Ok(id.clone()),
                other => {
                    Err(property_error("ids", &format!("Expected type string but found type {}", type_name(other))))
                }
            });
            Ok(RevokeRequest::Ids(ids.collect::<Result<_, _>>()?))
        }
    }
}

/// `Payload validation error: '<detail>' on property <name>.`
fn property_error(name: &str, detail: &str) -> ApiError {
    ApiError::InvalidBody(format!("Payload validation error: '{detail}' on property {name}."))
}

/// A JSON body that must be an object (`application/json`, no duplicate keys at any depth).
fn json_object(content_type: Option<&str>, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if !content_type.is_some_and(is_json_media_type) {
        return Err(payload_error("Invalid JSON"));
    }
    let Strict(document) = serde_json::from_slice(bytes).map_err(|_| payload_error("Invalid JSON"))?;
    match document {
        Value::Object(object) => Ok(object),
        other => Err(payload_error(&format!("Expected type object but found type {}", type_name(&other)))),
    }
}

/// `application/json`, any case, parameters (`; charset=utf-8`) allowed.
fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// JSON Schema's name for a value's type.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON value that refuses duplicate object keys at any depth (serde_json keeps the last).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = std::collections::BTreeMap::new();
        while let Some((key, Strict(value))) = map.next_entry::<String, Strict>()? {
            match object.entry(key) {
                Entry::Occupied(_) => return Err(de::Error::custom("duplicate key")),
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
            }
        }
        Ok(Value::Object(object.into_iter().collect::<Map<String, Value>>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    fn message(content_type: Option<&str>, body: &str) -> String {
        match metadata_patch(content_type, body.as_bytes(), "session_metadata") {
            Ok(m) => panic!("accepted: {m:?}"),
            Err(e) => e.message(),
        }
    }

    #[test]
    fn replacement_maps() {
        let patch = |body: &str| metadata_patch(JSON, body.as_bytes(), "session_metadata").unwrap();
        assert_eq!(
            patch(r#"{"session_metadata": {"a": "1", "b": null}}"#),
            Metadata::from_pairs([("a", "1")]).unwrap()
        );
        assert!(patch(r#"{"session_metadata": {}}"#).is_empty());
        assert!(patch(r#"{"session_metadata": null}"#).is_empty());
        let charset =
            metadata_patch(Some("Application/JSON; charset=utf-8"), br#"{"session_metadata":{}}"#, "session_metadata");
        assert!(charset.is_ok());
    }

    #[test]
    fn payload_errors_have_the_contract_messages() {
        assert_eq!(message(JSON, "{"), "Payload validation error: 'Invalid JSON'.");
        assert_eq!(message(JSON, ""), "Payload validation error: 'Invalid JSON'.");
        assert_eq!(message(Some("text/plain"), "{}"), "Payload validation error: 'Invalid JSON'.");
        assert_eq!(message(None, "{}"), "Payload validation error: 'Invalid JSON'.");
        assert_eq!(message(Some("application/jsonx"), "{}"), "Payload validation error: 'Invalid JSON'.");
        assert_eq!(
            message(JSON, r#"{"session_metadata": {"a": "1", "a": "2"}}"#),
            "Payload validation error: 'Invalid JSON'."
        );
        assert_eq!(
            message(JSON, r#"{"session_metadata": {}, "session_metadata": {}}"#),
            "Payload validation error: 'Invalid JSON'."
        );
        assert_eq!(message(JSON, "[]"), "Payload validation error: 'Expected type object but found type array'.");
        assert_eq!(message(JSON, "3"), "Payload validation error: 'Expected type object but found type integer'.");
        assert_eq!(message(JSON, "3.5"), "Payload validation error: 'Expected type object but found type number'.");
        assert_eq!(message(JSON, "null"), "Payload validation error: 'Expected type object but found type null'.");
        assert_eq!(message(JSON, "\"x\""), "Payload validation error: 'Expected type object but found type string'.");
        assert_eq!(message(JSON, "true"), "Payload validation error: 'Expected type object but found type boolean'.");
        assert_eq!(message(JSON, "{}"), "Payload validation error: 'Too few properties defined (0), minimum 1'.");
        assert_eq!(
            message(JSON, r#"{"session_metadata": {}, "metadata": {}}"#),
            "Payload validation error: 'Additional properties not allowed: metadata'."
        );
        assert_eq!(
            message(JSON, r#"{"refresh_token_metadata": {}}"#),
            "Payload validation error: 'Additional properties not allowed: refresh_token_metadata'."
        );
        assert_eq!(message(JSON, r#"{"session_metadata": "x"}"#), "Invalid metadata: Metadata must be an object");
        assert_eq!(
            message(JSON, r#"{"session_metadata": {"a": 1}}"#),
            "Invalid metadata: Metadata value must be a string"
        );
    }
}

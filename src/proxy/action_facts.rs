//! What the Actions read of a login or token request (`event.request`, CONTRACT §11), taken from
//! the request as helloguard read it: plain values for the binding layer.

use hyper::header::{ACCEPT_LANGUAGE, HOST};
use serde_json::Value;

use crate::binding::RequestInfo;
use crate::config::RouteConfig;
use crate::http::parameters::{self, Ambiguity};
use crate::http::token_request::TokenRequest;

/// The request as Actions read it, or why it cannot be read one way only.
pub fn request_info(
    parts: &hyper::http::request::Parts,
    route: Option<&RouteConfig>,
    body: Option<&[u8]>,
    token_request: Option<&TokenRequest>,
) -> Result<RequestInfo, Ambiguity> {
    let header = |name| parts.headers.get(name).and_then(|v: &hyper::header::HeaderValue| v.to_str().ok());
    let hostname = header(HOST)
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .map(|host| {
            host.rsplit_once(':')
                .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                .map_or(host, |(name, _)| name)
        })
        .map(str::to_owned);
    let language = header(ACCEPT_LANGUAGE)
        .and_then(|list| list.split(',').next())
        .map(|tag| tag.split(';').next().unwrap_or_default().trim().to_owned())
        .filter(|tag| !tag.is_empty());
    let body = parameters::body(&parts.headers, body.unwrap_or_default())?;
    Ok(RequestInfo {
        method: parts.method.as_str().to_owned(),
        hostname,
        query: parameters::query(parts.uri.query())?,
        body: Value::Object(body),
        language,
        client_id: route.and_then(|r| r.client_id.clone()).or_else(|| token_request.and_then(|t| t.client_id.clone())),
        grant_type: token_request.and_then(|t| t.grant_type.clone()),
    })
}

//! Header names the proxy sends upstream (CONTRACT §5) and reads back from its responses, and the
//! hygiene that comes first: every name of both presets, every override and the two response
//! headers helloguard consumes (and their `_`/case twins) are removed from the client's request
//! before anything else, so a client can never forge a fingerprint, a decision, a user id or an
//! MFA confirmation.

use hyper::header::{HeaderMap, HeaderName};

use crate::config::{Config, HeaderPreset};
use crate::http::header_names::NameSet;

/// The resolved names for one configuration.
#[derive(Debug, Clone)]
pub struct HeaderNames {
    pub ja3: HeaderName,
    pub ja4: HeaderName,
    pub ja4_stable: HeaderName,
    pub session_id: HeaderName,
    pub decision: HeaderName,
    pub reason: HeaderName,
    pub challenge: HeaderName,
    /// The upstream's user id and MFA confirmation response headers, removed before the client
    /// sees the response.
    pub user_id: HeaderName,
    pub mfa_confirmed: HeaderName,
    /// Actions' claims, and the metadata forwarded with every request (CONTRACT §11).
    pub claims: HeaderName,
    pub session_metadata: HeaderName,
    pub refresh_token_metadata: HeaderName,
    /// Everything removed from client requests: both presets and the configured names.
    forbidden: NameSet,
}

const HELLOGUARD: [&str; 10] = [
    "helloguard-ja3",
    "helloguard-ja4",
    "helloguard-ja4-stable",
    "helloguard-session-id",
    "helloguard-decision",
    "helloguard-decision-reason",
    "helloguard-challenge",
    "helloguard-claims",
    "helloguard-session-metadata",
    "helloguard-refresh-token-metadata",
];
const CLOUDFRONT_JA3: &str = "cloudfront-viewer-ja3-fingerprint";
const CLOUDFRONT_JA4: &str = "cloudfront-viewer-ja4-fingerprint";

impl HeaderNames {
    /// Names from the config. Invalid names were rejected by config validation; should one slip
    /// through, the preset name is used.
    pub fn new(whole: &Config) -> Self {
        let config = &whole.headers;
        let preset = |i: usize| HeaderName::from_static(HELLOGUARD[i]);
        let pick = |value: Option<&str>, default: HeaderName| {
            value.and_then(|v| HeaderName::from_bytes(v.as_bytes()).ok()).unwrap_or(default)
        };
        let (ja3_default, ja4_default) = match config.preset {
            HeaderPreset::Helloguard => (preset(0), preset(1)),
            HeaderPreset::Cloudfront => {
                (HeaderName::from_static(CLOUDFRONT_JA3), HeaderName::from_static(CLOUDFRONT_JA4))
            }
        };
        let names = Self {
            ja3: pick(config.ja3.as_deref(), ja3_default),
            ja4: pick(config.ja4.as_deref(), ja4_default),
            ja4_stable: pick(config.ja4_stable.as_deref(), preset(2)),
            session_id: pick(config.session_id.as_deref(), preset(3)),
            decision: pick(config.decision.as_deref(), preset(4)),
            reason: pick(config.reason.as_deref(), preset(5)),
            challenge: pick(config.challenge.as_deref(), preset(6)),
            user_id: pick(Some(&whole.session.user_id_header), HeaderName::from_static("helloguard-user-id")),
            mfa_confirmed: pick(
                Some(&whole.policy.confirm_header),
                HeaderName::from_static("helloguard-mfa-confirmed"),
            ),
            claims: preset(7),
            session_metadata: preset(8),
            refresh_token_metadata: preset(9),
            forbidden: NameSet::default(),
        };
        let configured = [
            &names.ja3,
            &names.ja4,
            &names.ja4_stable,
            &names.session_id,
            &names.decision,
            &names.reason,
            &names.challenge,
            &names.user_id,
            &names.mfa_confirmed,
        ];
        let all = HELLOGUARD.iter().copied().chain([CLOUDFRONT_JA3, CLOUDFRONT_JA4]);
        let forbidden = NameSet::new(all.chain(configured.into_iter().map(HeaderName::as_str)));
        Self { forbidden, ..names }
    }

    /// Remove every header a client may not send: helloguard's own names and their twins.
    pub fn strip_client_headers(&self, headers: &mut HeaderMap) {
        self.forbidden.strip(headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HeadersConfig;

    #[test]
    fn both_presets_and_overrides_are_stripped() {
        let config = HeadersConfig { ja4: Some("x-client-ja4".into()), ..HeadersConfig::default() };
        let names = HeaderNames::new(&Config { headers: config, ..Config::default() });
        assert_eq!(names.ja4, "x-client-ja4");
        let mut headers = HeaderMap::new();
        for name in
            ["helloguard-ja4", "CloudFront-Viewer-JA4-Fingerprint", "x-client-ja4", "helloguard-decision", "accept"]
        {
            headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), "forged".parse().unwrap());
        }
        names.strip_client_headers(&mut headers);
        assert_eq!(headers.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
    }

    #[test]
    fn cloudfront_preset_names() {
        let headers = HeadersConfig { preset: HeaderPreset::Cloudfront, ..HeadersConfig::default() };
        let names = HeaderNames::new(&Config { headers, ..Config::default() });
        assert_eq!(names.ja3, "cloudfront-viewer-ja3-fingerprint");
        assert_eq!(names.ja4_stable, "helloguard-ja4-stable");
    }
}

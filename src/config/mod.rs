//! The TOML configuration file: each module's own option types assembled into one file, defaults
//! that work with no file at all, and errors that name the key path
//! (`policy.compare: unknown value "ja5", expected one of ja4_stable, ja4, ja3n, ja3`).
//!
//! The modules own their sections (`session::options`, `engine::options`, `api::options`,
//! `audit::options`, `logout::config`) and the values they are made of ([`crate::options`]); this
//! module depends on them, never the reverse. The proxy's own sections are here ([`proxy`]): the
//! proxy starts every part and takes the whole file. To add a section: add a
//! `#[serde(default)]` field of a type with a `Default` to [`Config`]; checks that span several
//! sections go into [`Config::validate`]. Unknown keys are errors, to catch typos.

use std::path::Path;

use serde::Deserialize;

pub use crate::actions::ActionsConfig;
pub use crate::api::options::{ApiConfig, ApiKeyConfig, ApiKeyKind, PerSecond};
pub use crate::audit::options::AuditConfig;
pub use crate::engine::options::{FactorName, PolicyConfig};
use crate::logout::config::{ClientConfig, LogoutConfig};
pub use crate::net::Cidr;
pub use crate::options::{from_str_value, ConfigDuration, ConfigError, FailurePolicy};
pub mod proxy;

pub use crate::session::options::{Backend, RefreshTokensConfig, SessionConfig, StoreConfig};
pub use proxy::{
    AdminConfig, CertificateConfig, HeaderPreset, HeadersConfig, ProxyProtocol, RouteConfig, RouteKind, ServerConfig,
    TlsConfig, Upstream,
};

/// The whole file. Every section is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub store: StoreConfig,
    pub session: SessionConfig,
    pub refresh_tokens: RefreshTokensConfig,
    pub policy: PolicyConfig,
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub admin: AdminConfig,
    pub headers: HeadersConfig,
    pub audit: AuditConfig,
    pub api: ApiConfig,
    #[serde(default = "proxy::default_routes")]
    pub routes: Vec<RouteConfig>,
    pub logout: LogoutConfig,
    pub clients: Vec<ClientConfig>,
    pub actions: ActionsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            store: StoreConfig::default(),
            session: SessionConfig::default(),
            refresh_tokens: RefreshTokensConfig::default(),
            policy: PolicyConfig::default(),
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            admin: AdminConfig::default(),
            headers: HeadersConfig::default(),
            audit: AuditConfig::default(),
            api: ApiConfig::default(),
            routes: proxy::default_routes(),
            logout: LogoutConfig::default(),
            clients: Vec::new(),
            actions: ActionsConfig::default(),
        }
    }
}

impl Config {
    /// Parses TOML text, then checks rules that span keys.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let config: Self = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().message().to_owned();
            if path == "." {
                ConfigError::Syntax(message)
            } else {
                ConfigError::Key { path, message }
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read { path: path.display().to_string(), message: e.to_string() })?;
        let mut config = Self::from_toml(&text)?;
        // Action files are named relative to the file that names them.
        config.actions.base_dir = path.parent().map(std::path::Path::to_path_buf);
        Ok(config)
    }

    /// Accepted but discouraged settings, one line each (`check-config` prints them).
    pub fn warnings(&self) -> Vec<String> {
        crate::logout::config::warnings(&self.clients)
    }

    /// Rules that no single value's parser can see.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.policy()?;
        if self.store.backend == Backend::Redis && self.store.redis_url.is_none() {
            return Err(ConfigError::key("store.redis_url", "required when store.backend = \"redis\""));
        }
        if self.session.idle_timeout.0 > self.session.absolute_timeout.0 {
            return Err(ConfigError::key("session.idle_timeout", "must not be longer than session.absolute_timeout"));
        }
        self.validate_proxy()?;
        crate::logout::config::validate(&self.logout, &self.clients)?;
        self.api.validate()?;
        for (path, value) in [
            ("session.cookie_name", &self.session.cookie_name),
            ("session.user_id_header", &self.session.user_id_header),
            ("policy.confirm_header", &self.policy.confirm_header),
        ] {
            if value.is_empty() {
                return Err(ConfigError::key(path, "must not be empty"));
            }
        }
        Ok(())
    }
}

impl Config {
    /// The proxy sections' cross-key rules.
    fn validate_proxy(&self) -> Result<(), ConfigError> {
        if self.server.hello_timeout.0 > self.server.handshake_timeout.0 {
            return Err(ConfigError::key("server.hello_timeout", "must not be longer than server.handshake_timeout"));
        }
        if self.server.max_connections == 0 {
            return Err(ConfigError::key("server.max_connections", "must be at least 1"));
        }
        if self.server.workers > proxy::MAX_WORKERS {
            return Err(ConfigError::key(
                "server.workers",
                format!("must be at most {} (0: one per core)", proxy::MAX_WORKERS),
            ));
        }
        if !(512..=1 << 20).contains(&self.server.max_hello_size) {
            return Err(ConfigError::key("server.max_hello_size", "must be between 512 and 1048576 bytes"));
        }
        if self.server.proxy_protocol != ProxyProtocol::Off && self.server.trusted_proxies.is_empty() {
            return Err(ConfigError::key("server.trusted_proxies", "required when server.proxy_protocol is on"));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::key("tls.key", "tls.cert and tls.key go together"));
        }
        for (i, pair) in self.tls.certificates.iter().enumerate() {
            if pair.server_names.is_empty() || pair.server_names.iter().any(|n| n.is_empty()) {
                return Err(ConfigError::key(
                    &format!("tls.certificates[{i}].server_names"),
                    "must list at least one non-empty server name",
                ));
            }
        }
        self.admin.address()?;
        for (i, route) in self.routes.iter().enumerate() {
            if !route.path.starts_with('/') {
                return Err(ConfigError::key(&format!("routes[{i}].path"), "must start with /"));
            }
            for method in &route.methods {
                if hyper::Method::from_bytes(method.as_bytes()).is_err() {
                    return Err(ConfigError::key(
                        &format!("routes[{i}].methods"),
                        format!("{method:?} is not a method"),
                    ));
                }
            }
        }
        if let Some(url) = &self.policy.challenge_url {
            let path = url.split(['?', '#']).next().unwrap_or_default();
            let path =
                path.find("://").map_or(path, |at| path[at + 3..].find('/').map_or("/", |p| &path[at + 3 + p..]));
            let path = crate::http::path::normalise(path);
            let login = |r: &RouteConfig| crate::http::path::PathPattern::new(&r.path, r.case_sensitive).matches(&path);
            if self.routes.iter().any(|r| r.kind == RouteKind::Login && login(r)) {
                return Err(ConfigError::key("policy.challenge_url", "must not be a login route (it would loop)"));
            }
        }
        for (path, value) in [
            ("headers.ja3", &self.headers.ja3),
            ("headers.ja4", &self.headers.ja4),
            ("headers.ja4_stable", &self.headers.ja4_stable),
            ("headers.session_id", &self.headers.session_id),
            ("headers.decision", &self.headers.decision),
            ("headers.reason", &self.headers.reason),
            ("headers.challenge", &self.headers.challenge),
        ] {
            if let Some(name) = value {
                if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(ConfigError::key(path, format!("{name:?} is not a valid header name")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CompareKey, Factor, Mode};
    use crate::session::Lifetimes;
    use std::path::PathBuf;
    use std::time::Duration;

    fn error(text: &str) -> String {
        match Config::from_toml(text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn no_file_means_working_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.store.backend, Backend::Embedded);
        assert_eq!(c.store.path, PathBuf::from("./data"));
        assert_eq!(c.store.tombstone_ttl.0, Duration::from_secs(30 * 86400));
        assert_eq!(c.session.cookie_name, "session");
        assert_eq!(c.session.user_id_header, "helloguard-user-id");
        assert_eq!(c.session.lifetimes(), Lifetimes::default());
        assert_eq!(c.session.sweep_interval.0, Duration::from_secs(60));
        assert_eq!(c.refresh_tokens.lifetimes(), Lifetimes::default());
        let p = c.policy.policy().unwrap();
        assert_eq!((p.mode, p.compare), (Mode::Enforce, CompareKey::Ja4Stable));
        assert_eq!(p.factors.all(), [Factor::Otp, Factor::PushNotification, Factor::Phone]);
        assert_eq!(c.policy.confirm_header, "helloguard-mfa-confirmed");
        assert!(!p.has_challenge_url);
    }

    #[test]
    fn values_parse() {
        let c = Config::from_toml(
            r#"
            [store]
            backend = "redis"
            redis_url = "redis://127.0.0.1:6379"
            tombstone_ttl = "7d"
            redis_timeout = "750ms"
            on_error = "closed"
            [session]
            idle_timeout = "1h 30m"
            absolute_timeout = "2days"
            sweep_interval = "15s"
            [refresh_tokens]
            idle_timeout = "10d"
            absolute_timeout = "90d"
            [policy]
            mode = "monitor"
            compare = "ja3n"
            challenge = "webauthn-platform"
            additional_factors = ["push", "recovery-code"]
            challenge_url = "https://idp.example/mfa"
            "#,
        )
        .unwrap();
        assert_eq!(c.store.backend, Backend::Redis);
        assert_eq!(c.store.tombstone_ttl.0, Duration::from_secs(7 * 86400));
        assert_eq!(c.store.redis_timeout.0, Duration::from_millis(750));
        assert_eq!(c.store.on_error, FailurePolicy::Closed);
        assert_eq!(c.session.idle_timeout.0, Duration::from_secs(5400));
        assert_eq!(c.session.sweep_interval.0, Duration::from_secs(15));
        let p = c.policy.policy().unwrap();
        assert_eq!((p.mode, p.compare, p.has_challenge_url), (Mode::Monitor, CompareKey::Ja3n, true));
        assert_eq!(p.factors.all(), [Factor::WebauthnPlatform, Factor::PushNotification, Factor::RecoveryCode]);
    }

    #[test]
    fn errors_name_the_key_path() {
        assert_eq!(
            error("[policy]\ncompare = \"ja5\""),
            r#"policy.compare: unknown value "ja5", expected one of ja4_stable, ja4, ja3n, ja3"#
        );
        assert_eq!(
            error("[policy]\nmode = \"block\""),
            r#"policy.mode: unknown value "block", expected one of enforce, annotate, monitor"#
        );
        assert_eq!(
            error("[store]\nbackend = \"sqlite\""),
            r#"store.backend: unknown value "sqlite", expected one of embedded, memory, redis"#
        );
        assert!(error("[policy]\nadditional_factors = [\"otp2\"]")
            .starts_with(r#"policy.additional_factors[0]: unknown value "otp2", expected one of otp, email,"#));
        assert!(
            error("[session]\nidle_timeout = \"soon\"").starts_with("session.idle_timeout: invalid duration \"soon\"")
        );
        assert!(error("[session]\nidle_timeout = \"0s\"").starts_with("session.idle_timeout: "));
        assert!(error("[session]\nidle_timeout = 60").starts_with("session.idle_timeout: invalid type"));
        assert!(error("[store]\ntombstone = \"1d\"").starts_with("store.tombstone: unknown field `tombstone`"));
        assert!(error("[polciy]\nmode = \"x\"").starts_with("polciy: unknown field `polciy`"));
        assert_eq!(error("[store]\nbackend = \"redis\""), r#"store.redis_url: required when store.backend = "redis""#);
        assert_eq!(
            error("[session]\nidle_timeout = \"40d\""),
            "session.idle_timeout: must not be longer than session.absolute_timeout"
        );
        assert!(error("[policy\n").contains("TOML parse error"));
        assert_eq!(
            error("[[tls.certificates]]\nserver_names = []\ncert = \"a.pem\"\nkey = \"a.key\""),
            "tls.certificates[0].server_names: must list at least one non-empty server name"
        );
        assert_eq!(
            error("[server]\nproxy_protocol = \"v2\""),
            "server.trusted_proxies: required when server.proxy_protocol is on"
        );
        assert_eq!(
            error("[server]\nproxy_protocol = \"v3\""),
            r#"server.proxy_protocol: unknown value "v3", expected one of off, v1, v2, any"#
        );
        assert_eq!(
            error("[server]\nproxy_protocol = \"any\"\ntrusted_proxies = [\"10.0.0.0/8\", \"10.1.0.0/40\"]"),
            r#"server.trusted_proxies[1]: "10.1.0.0/40": prefix must be 0-32"#
        );
        assert_eq!(
            error("[store]\non_error = \"retry\""),
            r#"store.on_error: unknown value "retry", expected one of open, closed"#
        );
    }

    #[test]
    fn repeated_factors_are_errors() {
        assert_eq!(
            error("[policy]\nadditional_factors = [\"phone\", \"phone\"]"),
            r#"policy.additional_factors: "phone" is listed twice"#
        );
        assert_eq!(
            error("[policy]\nadditional_factors = [\"push-notification\", \"push\"]"),
            r#"policy.additional_factors: "push-notification" is listed twice"#
        );
        assert_eq!(
            error("[policy]\nadditional_factors = [\"otp\"]"),
            r#"policy.additional_factors: "otp" repeats the primary factor (policy.challenge)"#
        );
        let c = Config::from_toml("[policy]\nadditional_factors = []").unwrap();
        assert_eq!(c.policy.policy().unwrap().factors.additional(), []);
    }

    #[test]
    fn api_section() {
        let c = Config::from_toml("").unwrap();
        assert_eq!((c.api.audience.as_str(), c.api.rate_limit_burst), ("helloguard-management", 50));
        assert_eq!((c.api.rate_limit_per_second, c.api.address()), (PerSecond(10.0), Ok(None)));
        let c = Config::from_toml(
            r#"
            [api]
            listen = "127.0.0.1:9443"
            plain_http = true
            issuer = "https://login.example/"
            rate_limit_per_second = 0.5
            [[api.keys]]
            kind = "jwks"
            path = "/etc/helloguard/idp.jwks"
            [[api.keys]]
            kind = "hs256"
            path = "/etc/helloguard/secret"
            kid = "shared"
            "#,
        )
        .unwrap();
        assert_eq!(c.api.rate_limit_per_second, PerSecond(0.5));
        assert_eq!(c.api.keys[1].kind, ApiKeyKind::Hs256);
        assert_eq!(c.api.keys[1].kid.as_deref(), Some("shared"));
        assert_eq!(
            error("[api]\nlisten = \"0.0.0.0:9443\"\nplain_http = true"),
            "api.plain_http: only allowed when api.listen is a loopback address"
        );
        assert_eq!(
            error("[api]\nplain_http = true"),
            "api.plain_http: only allowed when api.listen is a loopback address"
        );
        assert!(error("[api]\nlisten = \"nowhere\"").starts_with("api.listen: \"nowhere\": "));
        assert_eq!(error("[api]\naudience = \"\""), "api.audience: must not be empty");
        assert_eq!(error("[api]\nrate_limit_burst = 0"), "api.rate_limit_burst: must be at least 1");
        assert!(error("[api]\nrate_limit_per_second = 0").starts_with("api.rate_limit_per_second: 0 is not a rate"));
        assert!(
            error("[api]\nrate_limit_per_second = -1.5").starts_with("api.rate_limit_per_second: -1.5 is not a rate")
        );
        assert_eq!(
            error("[[api.keys]]\nkind = \"x509\"\npath = \"k\""),
            r#"api.keys[0].kind: unknown value "x509", expected one of pem, jwks, hs256"#
        );
        assert!(error("[[api.keys]]\nkind = \"pem\"").starts_with("api.keys[0]: missing field `path`"));
        assert_eq!(
            error("[[api.keys]]\nkind = \"jwks\"\npath = \"k\"\nkid = \"a\""),
            r#"api.keys[0].kid: not used with kind = "jwks" (the file names its keys)"#
        );
    }
}

#[cfg(test)]
mod logout_sections {
    //! `[logout]` and `[[clients]]` as the file reads them, with their key paths.
    use super::Config;
    use crate::logout::config::{LogoutConfig, TokenTyp};

    const CLIENT: &str = "[logout]\nissuer = \"https://idp.example/\"\n[[clients]]\nclient_id = \"web\"\n";

    fn error(text: &str) -> String {
        match Config::from_toml(text) {
            Ok(c) => panic!("accepted: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_and_a_full_client() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.logout, LogoutConfig::default());
        assert_eq!(
            (c.logout.jwks_path.as_str(), c.logout.max_attempts, c.logout.workers),
            ("/.well-known/jwks.json", 8, 16)
        );
        assert_eq!(c.logout.timeout.0, std::time::Duration::from_secs(5));
        let c = Config::from_toml(&format!(
            "{CLIENT}logout_token_typ = \"JWT\"\n[clients.oidc_logout]\nbackchannel_logout_urls = [\"https://rp.example/bcl?x=1\"]\n\
             backchannel_logout_initiators = {{ mode = \"custom\", selected_initiators = [\"account-deactivated\", \"session-revoked\"] }}\n\
             backchannel_logout_session_metadata = {{ include = true }}\n"
        ))
        .unwrap();
        let client = &c.clients[0];
        assert_eq!(client.logout_token_typ, TokenTyp::Jwt);
        let settings = client.logout().unwrap();
        assert!(settings.backchannel_logout_initiators.enables("session-revoked"));
        assert!(!settings.backchannel_logout_initiators.enables("rp-logout"));
        assert!(settings.backchannel_logout_session_metadata.include);
        assert!(c.warnings().is_empty());
    }

    #[test]
    fn absent_initiators_mean_rp_and_idp_logout() {
        let c = Config::from_toml(&format!(
            "{CLIENT}[clients.oidc_logout]\nbackchannel_logout_urls = [\"https://rp.example/bcl\"]\n"
        ))
        .unwrap();
        let settings = c.clients[0].logout().unwrap();
        assert!(settings.backchannel_logout_initiators.enables("rp-logout"));
        assert!(!settings.backchannel_logout_initiators.enables("session-expired"));
        assert!(!settings.backchannel_logout_session_metadata.include);
    }

    #[test]
    fn errors_name_the_key_path() {
        let urls = |list: &str| format!("{CLIENT}[clients.oidc_logout]\nbackchannel_logout_urls = {list}\n");
        assert_eq!(
            error("[[clients]]\nclient_id = \"web\"\n[clients.oidc_logout]\nbackchannel_logout_urls = [\"https://rp.example/bcl\"]\n"),
            "logout.issuer: required when a client has oidc_logout (clients[0].oidc_logout)"
        );
        assert!(error(&urls("[\"/bcl\"]"))
            .starts_with("clients[0].oidc_logout.backchannel_logout_urls[0]: \"/bcl\" is not an absolute URL"));
        assert_eq!(
            error(&urls("[\"https://rp.example/bcl\", \"http://rp.example/bcl\"]")),
            "clients[0].oidc_logout.backchannel_logout_urls[1]: \"http://rp.example/bcl\": http URLs need logout.allow_insecure_urls = true"
        );
        assert!(Config::from_toml(
            &urls("[\"http://127.0.0.1:9/bcl\"]").replace("[logout]\n", "[logout]\nallow_insecure_urls = true\n")
        )
        .is_ok());
        assert_eq!(
            error(&urls("[\"https://rp.example/bcl#top\"]")),
            "clients[0].oidc_logout.backchannel_logout_urls[0]: \"https://rp.example/bcl#top\" must not have a fragment"
        );
        assert!(error(&urls("[\"ftp://rp.example/bcl\"]")).contains("scheme \"ftp\" is not https"));
        assert!(error(&urls("[\" https://rp.example/bcl\"]")).ends_with("must not have surrounding spaces"));
        assert!(error(&urls("[\"https://user:pw@rp.example/bcl\"]")).ends_with("must not carry credentials"));
        assert_eq!(error(&urls("[]")), "clients[0].oidc_logout.backchannel_logout_urls: must list at least one URL");
        let initiators =
            |value: &str| format!("{}backchannel_logout_initiators = {value}\n", urls("[\"https://rp.example/b\"]"));
        assert_eq!(
            error(&initiators("{ mode = \"custom\" }")),
            "clients[0].oidc_logout.backchannel_logout_initiators.selected_initiators: required when mode = \"custom\""
        );
        assert!(error(&initiators("{ mode = \"custom\", selected_initiators = [\"rp-logout\", \"session-deleted\"] }"))
            .starts_with("clients[0].oidc_logout.backchannel_logout_initiators.selected_initiators[1]: unknown value \"session-deleted\", expected one of rp-logout, idp-logout,"));
        assert!(error(&initiators("{ mode = \"some\" }"))
            .starts_with("clients[0].oidc_logout.backchannel_logout_initiators.mode: unknown value \"some\""));
        assert!(error("[logout]\nalg = \"HS256\"")
            .starts_with("logout.alg: unknown value \"HS256\", expected one of ES256, RS256"));
        assert!(error("[logout]\nalg = \"none\"").starts_with("logout.alg: "));
        assert!(error(&format!("{CLIENT}logout_token_typ = \"jwt\""))
            .starts_with("clients[0].logout_token_typ: unknown value"));
        assert_eq!(error("[logout]\nmax_attempts = 0"), "logout.max_attempts: must be at least 1");
        assert_eq!(error("[logout]\njwks_path = \"jwks\""), "logout.jwks_path: must start with /");
        assert_eq!(
            error(&format!("{CLIENT}[[clients]]\nclient_id = \"web\"\n")),
            "clients[1].client_id: \"web\" is configured twice"
        );
        assert!(error(&format!("{CLIENT}oidc_logut = {{}}\n")).starts_with("clients[0].oidc_logut: unknown field"));
    }

    #[test]
    fn the_deprecated_alias_works_and_warns() {
        let text = format!(
            "{CLIENT}[clients.oidc_backchannel_logout]\nbackchannel_logout_urls = [\"https://rp.example/bcl\"]\n"
        );
        let c = Config::from_toml(&text).unwrap();
        assert_eq!(c.clients[0].logout().unwrap().backchannel_logout_urls, ["https://rp.example/bcl"]);
        assert_eq!(
            c.warnings(),
            ["clients[0].oidc_backchannel_logout is deprecated; rename it to clients[0].oidc_logout"]
        );
        let both = format!("{text}[clients.oidc_logout]\nbackchannel_logout_urls = [\"https://rp.example/bcl\"]\n");
        assert!(error(&both).starts_with("clients[0].oidc_backchannel_logout: is the deprecated name of oidc_logout"));
        assert!(error(&text.replace("https://rp.example/bcl", "http://rp.example/bcl"))
            .starts_with("clients[0].oidc_backchannel_logout.backchannel_logout_urls[0]: "));
    }
}

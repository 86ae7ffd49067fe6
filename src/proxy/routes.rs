//! Route classification: which requests are logins, token requests and logouts (CONTRACT §1), and
//! which paths are helloguard's own (the JWKS). Both are matched on the normal form of the path
//! ([`crate::http::path`]), so no spelling of a login route passes as an ordinary page.

use hyper::Method;

use crate::config::RouteConfig;
use crate::http::path::PathPattern;

/// The configured routes, in file order (the first match wins).
#[derive(Debug, Clone)]
pub struct Routes {
    routes: Vec<(PathPattern, RouteConfig)>,
    jwks: PathPattern,
}

impl Routes {
    pub fn new(routes: &[RouteConfig], jwks_path: &str) -> Self {
        let routes = routes.iter().map(|r| (PathPattern::new(&r.path, r.case_sensitive), r.clone())).collect();
        Self { routes, jwks: PathPattern::new(jwks_path, false) }
    }

    /// The first route matching this method and (normalised) path.
    pub fn classify(&self, method: &Method, normal_path: &str) -> Option<&RouteConfig> {
        self.routes.iter().find_map(|(pattern, route)| {
            let method_fits =
                route.methods.is_empty() || route.methods.iter().any(|m| m.eq_ignore_ascii_case(method.as_str()));
            (method_fits && pattern.matches(normal_path)).then_some(route)
        })
    }

    /// Whether a (normalised) path is the JWKS path, answered here and never forwarded.
    pub fn is_jwks(&self, normal_path: &str) -> bool {
        self.jwks.matches(normal_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteKind;
    use crate::http::path::normalise;

    fn route(kind: RouteKind, path: &str, methods: &[&str]) -> RouteConfig {
        RouteConfig {
            kind,
            path: path.into(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            client_id: None,
            case_sensitive: false,
        }
    }

    #[test]
    fn method_and_path_and_prefix() {
        let routes = Routes::new(
            &[route(RouteKind::Login, "/login", &["POST"]), route(RouteKind::Token, "/oauth/*", &[])],
            "/.well-known/jwks.json",
        );
        assert_eq!(routes.classify(&Method::POST, "/login").map(|r| r.kind), Some(RouteKind::Login));
        assert!(routes.classify(&Method::GET, "/login").is_none());
        assert!(routes.classify(&Method::POST, "/login/x").is_none());
        assert_eq!(routes.classify(&Method::GET, "/oauth/token").map(|r| r.kind), Some(RouteKind::Token));
    }

    #[test]
    fn every_spelling_of_a_route_is_that_route() {
        let routes = Routes::new(
            &[route(RouteKind::Login, "/login", &["POST"]), route(RouteKind::Token, "/oauth/token", &["POST"])],
            "/.well-known/jwks.json",
        );
        for path in ["/login/", "/LOGIN", "/%6Cogin", "//login", "/x/../login"] {
            assert_eq!(
                routes.classify(&Method::POST, &normalise(path)).map(|r| r.kind),
                Some(RouteKind::Login),
                "{path}"
            );
        }
        for path in ["/oauth/token/", "/OAUTH/TOKEN", "/oauth/%74oken"] {
            assert_eq!(
                routes.classify(&Method::POST, &normalise(path)).map(|r| r.kind),
                Some(RouteKind::Token),
                "{path}"
            );
        }
        assert!(routes.is_jwks(&normalise("/.WELL-KNOWN/jwks.json/")));
        let strict =
            Routes::new(&[RouteConfig { case_sensitive: true, ..route(RouteKind::Login, "/Login", &[]) }], "/j");
        assert!(strict.classify(&Method::POST, &normalise("/Login/")).is_some());
        assert!(strict.classify(&Method::POST, &normalise("/login")).is_none());
    }
}

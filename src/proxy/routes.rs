//! Route classification: which requests are logins, token requests and logouts (CONTRACT §1).

use hyper::Method;

use crate::config::{route_matches, RouteConfig};

/// The configured routes, in file order (the first match wins).
#[derive(Debug, Clone)]
pub struct Routes(Vec<RouteConfig>);

impl Routes {
    pub fn new(routes: &[RouteConfig]) -> Self {
        Self(routes.to_vec())
    }

    /// The first route matching this method and path.
    pub fn classify(&self, method: &Method, path: &str) -> Option<&RouteConfig> {
        self.0.iter().find(|r| {
            route_matches(&r.path, path)
                && (r.methods.is_empty() || r.methods.iter().any(|m| m.eq_ignore_ascii_case(method.as_str())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteKind;

    #[test]
    fn method_and_path_and_prefix() {
        let route = |kind, path: &str, methods: &[&str]| RouteConfig {
            kind,
            path: path.into(),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            client_id: None,
        };
        let routes =
            Routes::new(&[route(RouteKind::Login, "/login", &["POST"]), route(RouteKind::Token, "/oauth/*", &[])]);
        assert_eq!(routes.classify(&Method::POST, "/login").map(|r| r.kind), Some(RouteKind::Login));
        assert!(routes.classify(&Method::GET, "/login").is_none());
        assert!(routes.classify(&Method::POST, "/login/x").is_none());
        assert_eq!(routes.classify(&Method::GET, "/oauth/token").map(|r| r.kind), Some(RouteKind::Token));
    }
}

//! An upstream origin as configured: `http://host[:port][/base]`.

use hyper::http::uri::{Authority, PathAndQuery};

/// `http://host[:port][/base]` as its authority and base path (without a trailing `/`).
pub fn split_origin(origin: &str) -> Result<(Authority, &str), String> {
    let rest = origin.strip_prefix("http://").ok_or_else(|| format!("{origin:?}: not an http:// URL"))?;
    let (authority, base) = rest.find('/').map_or((rest, ""), |slash| rest.split_at(slash));
    let authority = Authority::try_from(authority).map_err(|e| format!("{origin:?}: {e}"))?;
    let base = base.trim_end_matches('/');
    if !base.is_empty() {
        PathAndQuery::try_from(base).map_err(|e| format!("{origin:?}: {e}"))?;
    }
    Ok((authority, base))
}

#[cfg(test)]
mod tests {
    use super::split_origin;

    #[test]
    fn origins_split_into_authority_and_base() {
        let (authority, base) = split_origin("http://127.0.0.1:3000").unwrap();
        assert_eq!((authority.as_str(), base), ("127.0.0.1:3000", ""));
        let (authority, base) = split_origin("http://login.internal/base/").unwrap();
        assert_eq!((authority.as_str(), base), ("login.internal", "/base"));
        assert!(split_origin("http://bad host").is_err());
        assert!(split_origin("https://login.internal").is_err());
    }
}

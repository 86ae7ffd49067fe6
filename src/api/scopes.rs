//! Scope names (CONTRACT §6.2) and the set a bearer token grants: the words of its `scope` claim
//! together with the strings of its `permissions` array.

use std::collections::BTreeSet;

/// The scopes helloguard knows, canonical names first.
pub const KNOWN: [&str; 7] = [
    READ_SESSIONS,
    UPDATE_SESSIONS,
    DELETE_SESSIONS,
    READ_REFRESH_TOKENS,
    UPDATE_REFRESH_TOKENS,
    DELETE_REFRESH_TOKENS,
    UPDATE_SESSION_ALIAS,
];

pub const READ_SESSIONS: &str = "read:sessions";
pub const UPDATE_SESSIONS: &str = "update:sessions";
pub const DELETE_SESSIONS: &str = "delete:sessions";
pub const READ_REFRESH_TOKENS: &str = "read:refresh_tokens";
pub const UPDATE_REFRESH_TOKENS: &str = "update:refresh_tokens";
pub const DELETE_REFRESH_TOKENS: &str = "delete:refresh_tokens";
/// Accepted in place of `update:sessions` for `PATCH /api/v2/sessions/{id}` only (CONTRACT §10.6).
pub const UPDATE_SESSION_ALIAS: &str = "update:session";

/// The scopes one token grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Granted(BTreeSet<String>);

impl Granted {
    /// `scope` (space-separated) ∪ `permissions`.
    pub fn new(scope: Option<&str>, permissions: &[String]) -> Self {
        let words = scope.unwrap_or_default().split_whitespace().map(str::to_owned);
        Self(words.chain(permissions.iter().cloned()).collect())
    }

    pub fn has(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }
}

/// Parses a `helloguard token --scopes` list (commas or spaces). Unknown names are an error that
/// lists the known ones.
pub fn parse_list(text: &str) -> Result<Vec<&'static str>, String> {
    let mut scopes = Vec::new();
    for word in text.split([',', ' ', '\t', '\n']).filter(|w| !w.is_empty()) {
        let known = KNOWN
            .iter()
            .find(|k| **k == word)
            .ok_or_else(|| format!("unknown scope {word:?}; known scopes: {}", KNOWN.join(", ")))?;
        if !scopes.contains(known) {
            scopes.push(*known);
        }
    }
    if scopes.is_empty() {
        return Err(format!("no scopes given; known scopes: {}", KNOWN.join(", ")));
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_claim_and_permissions_combine() {
        let granted = Granted::new(Some(" read:sessions  update:sessions "), &["delete:sessions".to_owned()]);
        assert!(granted.has("read:sessions") && granted.has("update:sessions") && granted.has("delete:sessions"));
        assert!(!granted.has("read:refresh_tokens"));
        assert!(!Granted::new(None, &[]).has(""));
    }

    #[test]
    fn cli_lists_take_commas_or_spaces_and_refuse_unknown_names() {
        assert_eq!(
            parse_list("read:sessions,update:sessions read:sessions"),
            Ok(vec!["read:sessions", "update:sessions"])
        );
        assert!(parse_list("read:session").unwrap_err().starts_with("unknown scope \"read:session\""));
        assert!(parse_list(" , ").is_err());
    }
}

//! Fuzz target `action_event`: any bytes as the `event` a fixed Action reads (CONTRACT §11),
//! run in a QuickJS runtime with the proxy's limits, its requests read back and combined, and its
//! metadata writes validated as the binding layer validates them. Nothing panics or aborts; a
//! failing run is an error of the file, never a decision it did not ask for.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use helloguard::actions::js::{run_all, Engine, Limits, Source};
use helloguard::actions::{OnError, Requests};
use helloguard::engine::Verdict;
use helloguard::session::Metadata;
use libfuzzer_sys::fuzz_target;

/// Reads most of what `event` carries and calls every part of `api`.
const ACTION: &str = r#"
exports.onExecutePostLogin = async (event, api) => {
  const stored = event.session?.metadata ?? event.refresh_token?.metadata ?? {};
  const seen = event.security_context ?? {};
  for (const [key, value] of Object.entries(stored)) {
    if (key.startsWith("set_")) api.session.setMetadata(key.slice(4), value);
    if (key.startsWith("del_")) api.refreshToken.deleteMetadata(key.slice(4));
  }
  if (stored.evict) api.session.evictMetadata();
  if (stored.ja4_stable && stored.ja4_stable !== seen.ja4_stable) {
    api.authentication.challengeWith({ type: event.request?.query?.factor ?? "otp" }, {
      additionalFactors: (event.request?.body?.more ?? []).map((type) => ({ type })),
    });
  }
  if (event.request?.query?.deny) api.access.deny(event.request.query.deny);
  api.idToken.setCustomClaim("https://example.com/user", event.user?.user_id);
  api.accessToken.setCustomClaim("https://example.com/scopes", event.transaction?.requested_scopes);
};
"#;

thread_local! {
    static ENGINE: std::cell::RefCell<Option<Engine>> = const { std::cell::RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = std::str::from_utf8(data) else { return };
    let source = Arc::new(Source { name: "fixed.js".into(), version: 1, text: ACTION.into() });
    let limits = Limits { timeout: Duration::from_millis(20), memory: 16 << 20 };
    let ran = ENGINE.with(|engine| run_all(&mut engine.borrow_mut(), &[source], event, limits));
    assert_eq!(ran.len(), 1);
    let requests = Requests::combine(&ran);
    if let Some(decided) = requests.verdict(OnError::Allow) {
        assert!(matches!(decided.verdict, Verdict::Challenge | Verdict::Deny));
        assert_eq!(decided.deny.is_some(), decided.verdict == Verdict::Deny);
    }
    // Valid or not, the writes are judged as a whole, without panicking.
    let _ = Metadata::new().edited(&requests.session);
    let _ = Metadata::new().edited(&requests.refresh_token);
});

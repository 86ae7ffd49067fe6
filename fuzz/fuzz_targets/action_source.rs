//! Fuzz target `action_source`: any bytes as an Action file, through the compiler (a syntax
//! error is reported at a line of the file, as JavaScript counts lines) and, when it compiles, run once on a fixed event
//! within the proxy's time and memory limits. Nothing panics or aborts, and no run outlives its
//! time limit by much.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use helloguard::actions::js::{check, js_lines, run_all, Limits, Source};
use libfuzzer_sys::fuzz_target;

const EVENT: &str = r#"{"request":{"ip":"203.0.113.7","method":"POST","query":{"ext-tenantId":"acme"},"body":{"username":"alice"}},
"security_context":{"ja3":"8883b2acda8ceb1a4f416c16d9b6c42f","ja4":"t13d1516h2_8daaf6152771_e5627efa2ab1","ja4_stable":"t13d1515h2_8daaf6152771_f37e75b10bcc"},
"session":{"id":"ses_1","metadata":{"tenant_id":"acme"}},"user":{"user_id":"auth0|alice"},"client":{"client_id":"web"},
"transaction":{"requested_scopes":["openid"],"protocol":"oidc-basic-profile"},"secrets":{}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let source = Source { name: "fuzzed.js".into(), version: 1, text: text.into() };
    let limits = Limits { timeout: Duration::from_millis(20), memory: 16 << 20 };
    if let Err(error) = check(&source, limits) {
        assert!(error.line >= 1 && error.column >= 1, "{error}");
        assert!(error.line as usize <= js_lines(text).len(), "{error}");
        return;
    }
    let started = Instant::now();
    let ran = run_all(&mut None, &[Arc::new(source)], EVENT, limits);
    assert_eq!(ran.len(), 1);
    // Compiling runs the file's top level (bounded by a second); the handler by the 20 ms limit.
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
});

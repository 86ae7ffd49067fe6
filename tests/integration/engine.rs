//! The decision engine (CONTRACT §3) on real ClientHellos: the `latest.pcapng` rows of
//! `../shared/vectors/clienthellos.jsonl` (one host: Chrome, a TLS 1.2 client, Chrome resuming
//! TLS 1.3, Chrome, Chrome). Fingerprints are computed from each row's `handshake_hex` by
//! `helloguard::fingerprint`, checked against the row's `ja3`/`ja4`, against an independent
//! derivation of `ja4_stable` from the row's `ja4_r` (FINGERPRINTS.md §5 rule), and against the
//! values §5 documents.
//!
//! The vectors are skipped with a printed reason when `../shared/vectors` is absent, and required
//! when `HELLOGUARD_REQUIRE_VECTORS=1`.

use std::path::PathBuf;

use helloguard::audit::{AuditSink, DecisionEvent, JsonLines};
use helloguard::engine::{
    bind_on_response, decide, CompareKey, Decision, Event, Factor, Factors, Mode, Observed, Outcome, Policy, Reason,
    Route, Verdict,
};
use helloguard::fingerprint::{self, AlpnMode};
use helloguard::hello::{ClientHello, Transport};
use helloguard::session::memory::MemoryStore;
use helloguard::session::{Device, Lifetimes, Metadata, RecordKind, RefreshToken, Store, Timestamp};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// FINGERPRINTS.md §5.
const CHROME_JA4: &str = "t13d1516h2_8daaf6152771_e5627efa2ab1";
const RESUMED_JA4: &str = "t13d1516h2_8daaf6152771_9b887d9acb53";
const CHROME_JA4_STABLE: &str = "t13d1514h2_8daaf6152771_59204b37da4c";

/// One captured hello with its fingerprints.
#[derive(Debug, Clone)]
struct Hello {
    port: u16,
    ja3: String,
    ja3n: String,
    ja4: String,
    ja4_stable: String,
}

impl Hello {
    fn observed(&self) -> Observed<'_> {
        Observed { ja3: &self.ja3, ja3n: &self.ja3n, ja4: &self.ja4, ja4_stable: &self.ja4_stable, ja4_stable_v1: "" }
    }
}

/// `ja4_stable` from `ja4` and `ja4_r`: drop padding, session_ticket, pre_shared_key and
/// early_data from the extension count (part a) and from the hashed extension list (part c).
fn ja4_stable(ja4: &str, ja4_r: &str) -> String {
    const DROPPED: [&str; 4] = ["0015", "0023", "0029", "002a"];
    let parts: Vec<&str> = ja4_r.split('_').collect();
    let (a, exts, sigalgs) = (parts[0], parts[2], parts.get(3).copied().unwrap_or(""));
    let kept: Vec<&str> = exts.split(',').filter(|e| !DROPPED.contains(e)).collect();
    let removed = exts.split(',').count() - kept.len();
    let count: usize = a[6..8].parse().unwrap();
    let a = format!("{}{:02}{}", &a[..6], count - removed, &a[8..]);
    let hashed = if sigalgs.is_empty() { kept.join(",") } else { format!("{}_{sigalgs}", kept.join(",")) };
    let c = &hex::encode(Sha256::digest(hashed.as_bytes()))[..12];
    let b = ja4.split('_').nth(1).unwrap();
    format!("{a}_{b}_{c}")
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors")
}

/// The five `latest.pcapng` hellos in capture order, or `None` (test skipped) without vectors.
fn latest_hellos() -> Option<Vec<Hello>> {
    let path = vectors_dir().join("clienthellos.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        assert!(
            std::env::var("HELLOGUARD_REQUIRE_VECTORS").as_deref() != Ok("1"),
            "{} is required (HELLOGUARD_REQUIRE_VECTORS=1)",
            path.display()
        );
        eprintln!("skipped: {} not found", path.display());
        return None;
    };
    let mut hellos = Vec::new();
    for line in text.lines() {
        let row: Value = serde_json::from_str(line).unwrap();
        for seen in row["seen_in"].as_array().unwrap() {
            let seen = seen.as_str().unwrap();
            let Some(rest) = seen.strip_prefix("latest.pcapng:172.16.225.48:") else {
                continue;
            };
            let port: u16 = rest.split('#').next().unwrap().parse().unwrap();
            let bytes = hex::decode(row["handshake_hex"].as_str().unwrap()).unwrap();
            let hello = ClientHello::parse(&bytes, Transport::Tcp).unwrap();
            let all = fingerprint::all(&hello, Transport::Tcp, AlpnMode::Spec);
            assert_eq!(all.ja3.as_str(), row["ja3"].as_str().unwrap(), "port {port}");
            assert_eq!(all.ja4.as_str(), row["ja4"].as_str().unwrap(), "port {port}");
            let derived = ja4_stable(all.ja4.as_str(), row["ja4_r"].as_str().unwrap());
            assert_eq!(all.ja4_stable.as_str(), derived, "port {port}: library and §5 rule agree");
            hellos.push(Hello {
                port,
                ja3: all.ja3.as_str().to_owned(),
                ja3n: all.ja3n.as_str().to_owned(),
                ja4: all.ja4.as_str().to_owned(),
                ja4_stable: derived,
            });
        }
    }
    hellos.sort_by_key(|h| h.port);
    assert_eq!(hellos.iter().map(|h| h.port).collect::<Vec<_>>(), [52936, 52937, 52938, 52940, 52941]);
    Some(hellos)
}

/// Parses JSON text the code under test wrote (so a malformed line fails the test).
fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The ja4_stable derivation reproduces the JA4s of the vectors and the §5 values.
#[test]
fn ja4_stable_matches_fingerprints_md() {
    let Some(h) = latest_hellos() else { return };
    for hello in &h {
        assert_eq!(hello.ja4_stable.len(), hello.ja4.len(), "{hello:?}");
    }
    let chrome: Vec<&Hello> = h.iter().filter(|x| [52936, 52940, 52941].contains(&x.port)).collect();
    for c in &chrome {
        assert_eq!(c.ja4, CHROME_JA4);
        assert_eq!(c.ja4_stable, CHROME_JA4_STABLE);
    }
    assert_eq!(h[2].ja4, RESUMED_JA4);
    assert_eq!(h[2].ja4_stable, CHROME_JA4_STABLE);
    // The TLS 1.2 client's only unstable extension is session_ticket: one extension fewer, the
    // same ciphers.
    let (ja4, stable) = (&h[1].ja4, &h[1].ja4_stable);
    assert_eq!(&ja4[..6], &stable[..6]);
    assert_eq!(ja4[6..8].parse::<u8>().unwrap(), stable[6..8].parse::<u8>().unwrap() + 1, "{ja4} {stable}");
    assert_eq!(ja4.split('_').nth(1), stable.split('_').nth(1));
}

fn login<'a, 's>(stored: Option<&'s Metadata>, observed: Option<Observed<'a>>) -> Event<'a, 's> {
    Event { route: Route::Login, session_id: Some("ses_test"), refresh_token_id: None, stored, observed }
}

fn refresh<'a, 's>(stored: Option<&'s Metadata>, observed: Option<Observed<'a>>) -> Event<'a, 's> {
    Event { route: Route::Refresh, session_id: None, refresh_token_id: Some("rt_test"), stored, observed }
}

/// Applies a `bind`'s writes, as the proxy does after a successful store write.
fn apply(stored: &mut Metadata, decision: &Decision<'_>) {
    stored.merge(decision.writes.iter()).unwrap();
}

#[test]
fn first_login_binds_then_same_client_allows() {
    let Some(h) = latest_hellos() else { return };
    let policy = Policy::default();
    let mut stored = Metadata::new();

    let first = decide(&login(Some(&stored), Some(h[0].observed())), &policy);
    assert_eq!((first.verdict, first.reason), (Verdict::Bind, Reason::FirstBinding));
    let writes: Vec<_> = first.writes.iter().collect();
    assert_eq!(writes, [("ja3", h[0].ja3.as_str()), ("ja4", CHROME_JA4), ("ja4_stable", CHROME_JA4_STABLE)]);
    apply(&mut stored, &first);

    let again = decide(&login(Some(&stored), Some(h[0].observed())), &policy);
    assert_eq!((again.verdict, again.reason), (Verdict::Allow, Reason::FingerprintMatch));
    assert!(again.writes.is_empty());
}

#[test]
fn another_client_is_challenged_with_all_factors() {
    let Some(h) = latest_hellos() else { return };
    let policy = Policy::default();
    let mut stored = Metadata::new();
    let bound = decide(&login(Some(&stored), Some(h[0].observed())), &policy);
    apply(&mut stored, &bound);

    let other = decide(&login(Some(&stored), Some(h[1].observed())), &policy);
    assert_eq!((other.verdict, other.reason), (Verdict::Challenge, Reason::FingerprintMismatch));
    assert!(other.writes.is_empty(), "a challenge never rebinds");
    assert_eq!(
        json_of(&other.to_json()),
        json!({"decision":"challenge","reason":"fingerprint_mismatch",
               "challenge":{"type":"otp"},"additional_factors":[{"type":"push-notification"},{"type":"phone"}],
               "route":"login","session_id":"ses_test","refresh_token_id":null})
    );
    assert_eq!(other.outcome(&policy), Outcome::Forwarded, "enforce without challenge_url forwards a login");
    let with_url = Policy { has_challenge_url: true, ..Policy::default() };
    assert_eq!(other.outcome(&with_url), Outcome::Redirected);
}

#[test]
fn chrome_extension_permutation_allows() {
    let Some(h) = latest_hellos() else { return };
    let policy = Policy::default();
    let mut stored = Metadata::new();
    let bound = decide(&login(Some(&stored), Some(h[0].observed())), &policy);
    apply(&mut stored, &bound);
    for later in [&h[3], &h[4]] {
        assert_ne!(later.ja3, h[0].ja3, "JA3 differs (extension order)");
        assert_eq!(later.ja4, h[0].ja4, "JA4 equal");
        let d = decide(&login(Some(&stored), Some(later.observed())), &policy);
        assert_eq!((d.verdict, d.reason), (Verdict::Allow, Reason::FingerprintMatch), "port {}", later.port);
    }
}

#[test]
fn tls13_resumption_allows() {
    let Some(h) = latest_hellos() else { return };
    let (fresh, resumed) = (&h[0], &h[2]);
    assert_ne!(resumed.ja4, fresh.ja4, "pre_shared_key added and padding dropped change JA4");
    let policy = Policy::default();
    let mut stored = Metadata::new();
    let bound = decide(&login(Some(&stored), Some(fresh.observed())), &policy);
    apply(&mut stored, &bound);
    let d = decide(&login(Some(&stored), Some(resumed.observed())), &policy);
    assert_eq!((d.verdict, d.reason), (Verdict::Allow, Reason::FingerprintMatch));

    // And the other way round: bound on the resumed hello, a fresh one matches.
    let mut stored = Metadata::new();
    let bound = decide(&login(Some(&stored), Some(resumed.observed())), &policy);
    apply(&mut stored, &bound);
    let d = decide(&login(Some(&stored), Some(fresh.observed())), &policy);
    assert_eq!(d.verdict, Verdict::Allow);
}

/// The replay of `latest.pcapng` as five logins of one session: exactly one challenge with
/// `ja4_stable`, two with `ja4`, four with `ja3` (issue 4).
#[test]
fn challenge_counts_per_compare_key() {
    let Some(h) = latest_hellos() else { return };
    for (compare, expected) in [
        (
            CompareKey::Ja4Stable,
            vec![Verdict::Bind, Verdict::Challenge, Verdict::Allow, Verdict::Allow, Verdict::Allow],
        ),
        (CompareKey::Ja4, vec![Verdict::Bind, Verdict::Challenge, Verdict::Challenge, Verdict::Allow, Verdict::Allow]),
        // JA3N sorts extensions (permutation-proof) but still sees pre_shared_key and padding.
        (CompareKey::Ja3n, vec![Verdict::Bind, Verdict::Challenge, Verdict::Challenge, Verdict::Allow, Verdict::Allow]),
        (
            CompareKey::Ja3,
            vec![Verdict::Bind, Verdict::Challenge, Verdict::Challenge, Verdict::Challenge, Verdict::Challenge],
        ),
    ] {
        let policy = Policy { compare, ..Policy::default() };
        let mut stored = Metadata::new();
        let mut verdicts = Vec::new();
        for hello in &h {
            let d = decide(&login(Some(&stored), Some(hello.observed())), &policy);
            apply(&mut stored, &d);
            verdicts.push(d.verdict);
        }
        assert_eq!(verdicts, expected, "compare = {compare}");
    }
}

#[tokio::test]
async fn refresh_same_client_allows_and_rotation_inherits() {
    let Some(h) = latest_hellos() else { return };
    let policy = Policy::default();
    let store = MemoryStore::new(std::time::Duration::from_secs(60));
    let now = Timestamp(1_700_000_000_000);
    let lifetimes = Lifetimes::default();

    // Token issued on Chrome's connection: bound in the response phase.
    let mut token = RefreshToken::new("rt_old".into(), now, lifetimes, Device::default());
    token.session_id = Some("ses_1".into());
    token.user_id = Some("auth0|u1".into());
    token.client_id = Some("web".into());
    let issued =
        bind_on_response(Reason::NewRefreshToken, Route::Refresh, None, Some("rt_old"), Some(h[0].observed()), &policy);
    apply(&mut token.refresh_token_metadata, &issued);
    store.create_refresh_token(&token).await.unwrap();

    // The refresh arrives on a later Chrome connection (permuted extensions): allowed.
    let current = store.get_refresh_token("rt_old").await.unwrap().unwrap();
    let d = decide(&refresh(Some(&current.record.refresh_token_metadata), Some(h[4].observed())), &policy);
    assert_eq!((d.verdict, d.reason), (Verdict::Allow, Reason::FingerprintMatch));

    // The upstream returned a new token: rotation.
    let successor = current.record.successor("rt_new".into(), now, lifetimes, Device::default());
    store.rotate_refresh_token("rt_old", current.version, now, &successor).await.unwrap();
    let new = store.get_refresh_token("rt_new").await.unwrap().unwrap().record;
    assert_eq!(new.refresh_token_metadata, token.refresh_token_metadata);
    assert_eq!(new.refresh_token_metadata.get("ja4_stable"), Some(CHROME_JA4_STABLE));
    assert_eq!(
        (new.session_id.as_deref(), new.user_id.as_deref(), new.client_id.as_deref()),
        (Some("ses_1"), Some("auth0|u1"), Some("web"))
    );
    assert!(new.rotating);
    let old = store.get_refresh_token("rt_old").await.unwrap().unwrap().record;
    assert!(old.is_retired(), "kept for comparison until its former expiry");
    assert_eq!(old.expires_at, token.expires_at);

    // The rotated token, presented from the same client, is allowed; a replayed old one is still compared.
    let d = decide(&refresh(Some(&new.refresh_token_metadata), Some(h[3].observed())), &policy);
    assert_eq!(d.verdict, Verdict::Allow);
    let d = decide(&refresh(Some(&old.refresh_token_metadata), Some(h[1].observed())), &policy);
    assert_eq!(d.verdict, Verdict::Challenge);
}

#[test]
fn refresh_from_another_client_is_challenged_and_rejected_in_enforce() {
    let Some(h) = latest_hellos() else { return };
    let policy = Policy::default();
    let mut stored = Metadata::new();
    apply(
        &mut stored,
        &bind_on_response(
            Reason::NewRefreshToken,
            Route::Refresh,
            None,
            Some("rt_test"),
            Some(h[0].observed()),
            &policy,
        ),
    );
    let d = decide(&refresh(Some(&stored), Some(h[1].observed())), &policy);
    assert_eq!((d.verdict, d.reason), (Verdict::Challenge, Reason::FingerprintMismatch));
    assert_eq!(d.outcome(&policy), Outcome::Rejected);
    for mode in [Mode::Annotate, Mode::Monitor] {
        assert_eq!(d.outcome(&Policy { mode, ..Policy::default() }), Outcome::Forwarded);
    }
    // A token with nothing bound yet binds to the refreshing client instead.
    let d = decide(&refresh(Some(&Metadata::new()), Some(h[1].observed())), &policy);
    assert_eq!(d.reason, Reason::FirstBinding);
}

#[test]
fn unknown_fingerprint_on_a_bound_record_is_challenged_and_audited() {
    let Some(h) = latest_hellos() else { return };
    let policy = Policy::default();
    let mut stored = Metadata::new();
    let bound = decide(&login(Some(&stored), Some(h[0].observed())), &policy);
    apply(&mut stored, &bound);

    // A client can make its own capture fail (an oversized or stalled hello): an unknown
    // fingerprint never passes a binding (CONTRACT §3).
    let d = decide(&login(Some(&stored), None), &policy);
    assert_eq!((d.verdict, d.reason), (Verdict::Challenge, Reason::FingerprintUnknown));
    assert!(d.writes.is_empty(), "an unknown fingerprint is never written");
    let d_refresh = decide(&refresh(Some(&stored), None), &policy);
    assert_eq!((d_refresh.verdict, d_refresh.reason), (Verdict::Challenge, Reason::FingerprintUnknown));
    assert_eq!(d_refresh.outcome(&policy), Outcome::Rejected);
    // Never binds either: a record with nothing bound is allowed, and stays unbound.
    let d_empty = decide(&login(Some(&Metadata::new()), None), &policy);
    assert_eq!((d_empty.verdict, d_empty.reason), (Verdict::Allow, Reason::FingerprintUnknown));
    assert!(d_empty.writes.is_empty());

    let sink = JsonLines::new(Vec::new());
    let event = DecisionEvent {
        time: Timestamp(1_736_933_400_000),
        decision: &d,
        mode: policy.mode,
        outcome: d.outcome(&policy),
        user_id: Some("auth0|u1"),
        observed: None,
        stored: Some(&stored),
        client_addr: Some("203.0.113.7"),
        error: None,
        actions: None,
        claims: None,
    };
    sink.record(&event);
    let text = String::from_utf8(sink.into_inner()).unwrap();
    assert_eq!(text.lines().count(), 1);
    let line: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(
        line,
        json!({"event":"decision","time":"2025-01-15T09:30:00.000Z","decision":"challenge","reason":"fingerprint_unknown",
               "challenge":{"type":"otp"},"additional_factors":[{"type":"push-notification"},{"type":"phone"}],
               "route":"login","session_id":"ses_test","refresh_token_id":null,"mode":"enforce","outcome":"forwarded",
               "user_id":"auth0|u1","observed":null,
               "stored":{"ja3":h[0].ja3,"ja4":CHROME_JA4,"ja4_stable":CHROME_JA4_STABLE},
               "client_addr":"203.0.113.7"})
    );
}

#[test]
fn rows_before_fingerprints() {
    let policy = Policy::default();
    let observed = Observed { ja3: "a", ja3n: "n", ja4: "b", ja4_stable: "c", ja4_stable_v1: "" };
    let d = decide(&login(None, Some(observed)), &policy);
    assert_eq!((d.verdict, d.reason), (Verdict::Allow, Reason::NoSession));
    let d = decide(&refresh(None, None), &policy);
    assert_eq!((d.verdict, d.reason), (Verdict::Allow, Reason::UnknownRefreshToken));
    // A PATCH that dropped the compared key makes the next request bind afresh.
    let cleared = Metadata::from_pairs([("ja3", "a"), ("ja4", "b"), ("team", "x")]).unwrap();
    let d = decide(&login(Some(&cleared), Some(observed)), &policy);
    assert_eq!(d.reason, Reason::FirstBinding);
}

#[test]
fn ja3n_compare_writes_ja3n_too() {
    let policy = Policy { compare: CompareKey::Ja3n, ..Policy::default() };
    let observed = Observed { ja3: "a", ja3n: "n", ja4: "b", ja4_stable: "c", ja4_stable_v1: "" };
    let d = decide(&login(Some(&Metadata::new()), Some(observed)), &policy);
    assert_eq!(d.writes.iter().collect::<Vec<_>>(), [("ja3", "a"), ("ja4", "b"), ("ja4_stable", "c"), ("ja3n", "n")]);
    let mut stored = Metadata::new();
    apply(&mut stored, &d);
    let other = Observed { ja3: "different", ..observed };
    assert_eq!(decide(&login(Some(&stored), Some(other)), &policy).verdict, Verdict::Allow);
    let other = Observed { ja3n: "m", ..observed };
    assert_eq!(decide(&login(Some(&stored), Some(other)), &policy).verdict, Verdict::Challenge);
    // A hello whose compared key was not computed is unknown: no bind of "", no challenge.
    let uncomputed = Observed { ja3n: "", ..observed };
    let d = decide(&login(Some(&Metadata::new()), Some(uncomputed)), &policy);
    assert_eq!((d.verdict, d.reason), (Verdict::Allow, Reason::FingerprintUnknown));
    assert!(d.writes.is_empty());
}

#[test]
fn failed_bind_becomes_allow_with_wrapped_error() {
    let policy = Policy::default();
    let observed = Observed { ja3: "a", ja3n: "", ja4: "b", ja4_stable: "c", ja4_stable_v1: "" };
    let full = Metadata::from_pairs((0..25).map(|i| (format!("k{i}"), "v".to_owned()))).unwrap();
    let d = decide(&login(Some(&full), Some(observed)), &policy);
    assert_eq!(d.verdict, Verdict::Bind);
    let mut target = full.clone();
    let err = target.merge(d.writes.iter()).unwrap_err();
    let wrapped = RecordKind::Session.wrap(&err);
    assert_eq!(
        wrapped,
        "Failed to set session metadata: Invalid metadata: Metadata must not contain more than 25 entries"
    );
    let failed = d.after_write_failure();
    assert_eq!((failed.verdict, failed.reason), (Verdict::Allow, Reason::MetadataWriteFailed));
    let files = ["risk.js".to_owned(), "tag.js".to_owned()];
    let claim_names = ["https://example.com/risk".to_owned()];
    let event = DecisionEvent {
        time: Timestamp(0),
        decision: &failed,
        mode: Mode::Monitor,
        outcome: failed.outcome(&policy),
        user_id: None,
        observed: Some(observed),
        stored: Some(&full),
        client_addr: None,
        error: Some(&wrapped),
        actions: Some(&files),
        claims: Some(&claim_names),
    };
    let line = json_of(&event.to_json());
    assert_eq!(line["actions"], json!(["risk.js", "tag.js"]));
    assert_eq!(line["claims"], json!(["https://example.com/risk"]));
    assert_eq!(line["reason"], "metadata_write_failed");
    assert_eq!(line["error"], wrapped);
    assert_eq!(line["observed"], json!({"ja3":"a","ja4":"b","ja4_stable":"c"}));
    assert_eq!(line["stored"], json!({"ja3":null,"ja4":null,"ja4_stable":null}));
}

#[test]
fn configured_factors_shape_the_challenge() {
    let factors = Factors::new(Factor::Email, &[Factor::Phone]).unwrap();
    let policy = Policy { factors, ..Policy::default() };
    let stored = Metadata::from_pairs([("ja4_stable", "x")]).unwrap();
    let observed = Observed { ja3: "a", ja3n: "", ja4: "b", ja4_stable: "y", ja4_stable_v1: "" };
    let d = decide(&login(Some(&stored), Some(observed)), &policy);
    let v = json_of(&d.to_json());
    assert_eq!(v["challenge"], json!({"type":"email"}));
    assert_eq!(v["additional_factors"], json!([{"type":"phone"}]));
    // Non-challenge decisions carry neither field.
    let d = decide(&login(Some(&stored), Some(Observed { ja4_stable: "x", ..observed })), &policy);
    let v = json_of(&d.to_json());
    assert!(v.get("challenge").is_none() && v.get("additional_factors").is_none());
}

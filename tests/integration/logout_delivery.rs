//! Delivery semantics (CONTRACT §8): what each RP answer leads to, retries with fresh tokens,
//! timeouts, the attempt bound, and one audit event per attempt (§9). The RP answers from a
//! script; retries are configured in milliseconds (`[logout] retry_base`).

use crate::common;

use std::time::Duration;

use common::logout::{attempts, client, login, logout, start_with_rp};
use common::rp::{Answer, Delivery};
use helloguard::config::ConfigDuration;
use helloguard::logout::config::TokenTyp;
use helloguard::session::Timestamp;

const WAIT: Duration = Duration::from_secs(15);

fn jti(delivery: &Delivery) -> String {
    delivery.claims.as_ref().unwrap()["jti"].as_str().unwrap().to_owned()
}

/// The outbox holds nothing, not even a leased entry.
async fn outbox_is_empty(running: &common::proxy::Running) -> bool {
    let far_future = Timestamp(i64::MAX / 2);
    running.store.lease_outbox(far_future, Duration::from_secs(1), 100).await.unwrap().is_empty()
}

#[tokio::test]
async fn a_5xx_is_retried_with_a_fresh_token_until_it_succeeds() {
    let (running, rp) = start_with_rp(|config, rp| {
        let mut web = client("demo", &[format!("{}?typ=JWT", rp.url("demo"))], None, true);
        web.logout_token_typ = TokenTyp::Jwt;
        config.clients = vec![web];
    })
    .await;
    rp.answer(&[Answer::Status(500), Answer::Status(503)], None);
    let (cookie, sid) = login(&running, "alice").await;
    logout(&running, &cookie).await;
    let received = rp.wait_for(WAIT, |r| r.iter().any(Delivery::accepted)).await;
    assert_eq!(received.iter().map(|d| d.answered).collect::<Vec<_>>(), [500, 503, 200]);
    assert!(received.iter().all(|d| d.claims.is_ok()), "every attempt's token validates with typ JWT");
    let jtis: std::collections::HashSet<String> = received.iter().map(jti).collect();
    assert_eq!(jtis.len(), 3, "a new jti per attempt");
    let audit = attempts(&running, &sid, 3).await;
    let summary: Vec<_> = audit
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap(),
                e["attempt"].as_u64().unwrap(),
                e["status"].as_u64().unwrap(),
                e["final"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("oidc_backchannel_logout_failed", 1, 500, false),
            ("oidc_backchannel_logout_failed", 2, 503, false),
            ("oidc_backchannel_logout_succeeded", 3, 200, true),
        ]
    );
    assert!(audit.iter().all(|e| e["trace_id"] == audit[0]["trace_id"]));
    let outcomes = [("delivered", 1.0), ("retry", 2.0), ("failed", 0.0)];
    for (outcome, count) in outcomes {
        let sample = format!("helloguard_logout_deliveries_total{{outcome=\"{outcome}\"}}");
        assert_eq!(running.metric(&sample).await, count, "{sample}");
    }
}

#[tokio::test]
async fn a_400_or_any_other_non_5xx_failure_is_final() {
    for status in [400, 302, 404] {
        let (running, rp) = start_with_rp(|_, _| {}).await;
        rp.answer(&[Answer::Status(status)], None);
        let (cookie, sid) = login(&running, "bob").await;
        logout(&running, &cookie).await;
        let audit = attempts(&running, &sid, 1).await;
        assert_eq!(audit[0]["event"], "oidc_backchannel_logout_failed");
        assert_eq!((audit[0]["status"].as_u64(), audit[0]["final"].as_bool()), (Some(u64::from(status)), Some(true)));
        assert_eq!(running.metric("helloguard_logout_deliveries_total{outcome=\"failed\"}").await, 1.0);
        // Acknowledged: nothing left to retry, and after many retry periods still one attempt.
        for _ in 0..100 {
            if outbox_is_empty(&running).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(outbox_is_empty(&running).await, "{status}: the entry is gone");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rp.received().len(), 1, "{status} is not retried");
    }
}

#[tokio::test]
async fn a_hanging_rp_times_out_and_is_retried() {
    let (running, rp) = start_with_rp(|config, _| {
        config.logout.timeout = ConfigDuration(Duration::from_millis(300));
    })
    .await;
    rp.answer(&[Answer::Hang], None);
    let (cookie, sid) = login(&running, "carol").await;
    logout(&running, &cookie).await;
    rp.wait_for(WAIT, |r| r.iter().any(Delivery::accepted)).await;
    let received = rp.received();
    assert_eq!(received[0].answered, 0, "the first attempt met the hang");
    let audit = attempts(&running, &sid, received.len()).await;
    assert_eq!(audit[0]["event"], "oidc_backchannel_logout_failed");
    assert_eq!(audit[0]["error"], "no answer within 300ms");
    assert_eq!(audit[0]["final"], false);
    assert!(audit[0].get("status").is_none());
    let last = audit.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["final"].as_bool()),
        (Some("oidc_backchannel_logout_succeeded"), Some(true))
    );
}

#[tokio::test]
async fn max_attempts_bounds_the_retries() {
    let (running, rp) = start_with_rp(|config, _| config.logout.max_attempts = 3).await;
    rp.answer(&[], Some(Answer::Status(503)));
    let (cookie, sid) = login(&running, "dave").await;
    logout(&running, &cookie).await;
    let audit = attempts(&running, &sid, 3).await;
    let finals: Vec<bool> = audit.iter().map(|e| e["final"].as_bool().unwrap()).collect();
    assert_eq!(finals, [false, false, true]);
    // Retry periods are 20, 40, 80 ms: far more than that later, still exactly three.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rp.received().len(), 3);
    assert_eq!(attempts(&running, &sid, 3).await.len(), 3);
    assert!(outbox_is_empty(&running).await);
}

#[tokio::test]
async fn an_unreachable_rp_is_a_retried_network_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://localhost:{}/bcl/demo", closed.local_addr().unwrap().port());
    drop(closed);
    let (running, _rp) = start_with_rp(|config, _| {
        config.logout.max_attempts = 2;
        config.clients = vec![client("demo", std::slice::from_ref(&url), None, true)];
    })
    .await;
    let (cookie, sid) = login(&running, "erin").await;
    logout(&running, &cookie).await;
    let audit = attempts(&running, &sid, 2).await;
    for (event, last) in audit.iter().zip([false, true]) {
        assert_eq!(event["event"], "oidc_backchannel_logout_failed");
        assert!(event["error"].as_str().unwrap().starts_with("connect failed"), "{event}");
        assert_eq!((event["url"].as_str(), event["final"].as_bool()), (Some(url.as_str()), Some(last)));
    }
}

#[tokio::test]
async fn an_untrusted_rp_certificate_is_a_retried_tls_error() {
    let (running, rp) = start_with_rp(|config, _| {
        config.logout.max_attempts = 1;
        config.logout.ca_file = None;
    })
    .await;
    let (cookie, sid) = login(&running, "frank").await;
    logout(&running, &cookie).await;
    let audit = attempts(&running, &sid, 1).await;
    assert!(audit[0]["error"].as_str().unwrap().starts_with("TLS handshake failed"), "{}", audit[0]);
    assert!(rp.received().is_empty());
}

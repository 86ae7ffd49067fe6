//! A logout the upstream accepts ends the session and delivers its back-channel logout token,
//! whatever changed since the session's last request: another user agent, another client address,
//! an activity note due (more than a minute idle), or other requests of the session in flight.
//! Each of these made a write that bumped the record's version between the read and the end.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::common;
use common::client::{build, connect_from, request_at, send, Client};
use common::logout::{ended, login, start_with_rp};
use common::proxy::Running;
use common::rp::RelyingParty;
use helloguard::session::Timestamp;

const WAIT: Duration = Duration::from_secs(15);

/// The session is gone from the store and the RP got exactly one valid token for it.
async fn assert_ended_and_delivered(running: &Running, rp: &RelyingParty, sid: &str, case: &str) {
    let event = ended(running, sid).await;
    assert_eq!(event["initiator"], "rp-logout", "{case}");
    assert!(running.store.get_session(sid).await.unwrap().is_none(), "{case}: the session is still live");
    let received = rp.wait_for(WAIT, |d| d.iter().any(|d| d.accepted() && d.sid() == Some(sid))).await;
    // Give a duplicate a moment to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let for_sid: Vec<_> = rp.received().into_iter().filter(|d| d.sid() == Some(sid)).collect();
    assert_eq!(for_sid.len(), 1, "{case}: {received:#?}");
}

async fn logout_with(running: &Running, cookie: &str, user_agent: &str) -> u16 {
    request_at(running.addr, &running.root, "POST", "/logout", &[("cookie", cookie), ("user-agent", user_agent)], "")
        .await
        .status
}

#[tokio::test]
async fn logout_from_another_user_agent_ends_the_session() {
    let (running, rp) = start_with_rp(|_, _| {}).await;
    let (cookie, sid) = login(&running, "alice").await;
    assert_eq!(logout_with(&running, &cookie, "other/1").await, 200);
    assert_ended_and_delivered(&running, &rp, &sid, "user agent changed").await;
}

#[tokio::test]
async fn logout_from_another_address_ends_the_session() {
    let (running, rp) = start_with_rp(|_, _| {}).await;
    let (cookie, sid) = login(&running, "alice").await;
    let connected =
        connect_from(&running.target(), Client::Default, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))).await.unwrap();
    let answer = send(connected, build("POST", "/logout", &[("cookie", &cookie)], "")).await;
    assert_eq!(answer.status, 200);
    assert_ended_and_delivered(&running, &rp, &sid, "address changed").await;
}

#[tokio::test]
async fn logout_after_a_minute_idle_ends_the_session() {
    let (running, rp) = start_with_rp(|_, _| {}).await;
    let (cookie, sid) = login(&running, "alice").await;
    // Two minutes since the last activity: the logout request's activity note is due.
    let current = running.store.get_session(&sid).await.unwrap().unwrap();
    let mut record = current.record.clone();
    record.last_interacted_at = Timestamp(Timestamp::now().millis() - 120_000);
    running.store.put_session(&record, current.version).await.unwrap();
    assert_eq!(logout_with(&running, &cookie, "").await, 200);
    assert_ended_and_delivered(&running, &rp, &sid, "idle for two minutes").await;
}

#[tokio::test]
async fn logout_with_the_sessions_other_requests_in_flight_ends_it() {
    let (running, rp) = start_with_rp(|_, _| {}).await;
    let (cookie, sid) = login(&running, "alice").await;
    let mut busy = Vec::new();
    for i in 0..12 {
        let (addr, root, cookie) = (running.addr, running.root.clone(), cookie.clone());
        busy.push(tokio::spawn(async move {
            let agent = format!("tab/{i}");
            request_at(addr, &root, "GET", "/whoami", &[("cookie", &cookie), ("user-agent", &agent)], "").await
        }));
    }
    assert_eq!(logout_with(&running, &cookie, "tab/logout").await, 200);
    for request in busy {
        request.await.unwrap();
    }
    assert_ended_and_delivered(&running, &rp, &sid, "concurrent activity").await;
}

//! Audit lines never stall the proxy: with standard output a pipe nobody reads (the audit default),
//! the real `helloguard serve` keeps answering logins, and the lines it cannot write are dropped
//! and counted (`helloguard_audit_lines_dropped_total`), not queued without end.

use std::time::Duration;

use crate::common;
use common::binary::Served;
use common::client::{build, connect, send, Client, Target, FORM};
use common::proxy::admin_get;

/// Logins made: each audits two decisions, about 1.2 KB, so together far more than the pipe's
/// 64 KiB and the 16-line queue.
const LOGINS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_audit_reader_costs_lines_not_requests() {
    let served = Served::start_with_unread_stdout("[audit]\nqueue = 16\n");
    let roots = [served.root()];
    let target = Target { addr: served.addr, roots: &roots, server_name: "localhost" };
    for i in 0..LOGINS {
        let login = build("POST", "/login", &[FORM], &format!("username=user{i}"));
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            send(connect(&target, Client::Default, None).await.unwrap(), login).await
        })
        .await
        .unwrap_or_else(|_| panic!("login {i} was not answered: the audit writer stalled the proxy"));
        assert_eq!(answer.status, 200, "login {i}");
    }
    let metrics = admin_get(served.admin, "/metrics").await;
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("helloguard_audit_lines_dropped_total "))
        .and_then(|v| v.parse().ok())
        .expect("the dropped-lines metric");
    println!("{LOGINS} logins, audit lines dropped: {dropped}");
    assert!(dropped > 0, "lines were dropped and counted");
}

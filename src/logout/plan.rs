//! Which relying parties hear of an ended session (CONTRACT §8 "Targets"): each client in the
//! session's `clients` that has `oidc_logout` and enables the initiator, once per URL. The
//! metadata snapshot rides along only when the client asked for it and the map is non-empty.

use super::config::{ClientConfig, OidcLogout};
use super::{Initiator, Planner};
use crate::session::{OutboxEntry, Session, Timestamp};

/// Plans deliveries from the configured `[[clients]]`.
pub struct ClientPlanner {
    /// Only the clients with back-channel settings, by id.
    clients: Vec<(String, OidcLogout)>,
}

impl ClientPlanner {
    pub fn new(clients: &[ClientConfig]) -> Self {
        let clients = clients.iter().filter_map(|c| Some((c.client_id.clone(), c.logout()?.clone()))).collect();
        Self { clients }
    }

    fn settings(&self, client_id: &str) -> Option<&OidcLogout> {
        self.clients.iter().find(|(id, _)| id == client_id).map(|(_, settings)| settings)
    }
}

impl Planner for ClientPlanner {
    fn plan(&self, session: &Session, initiator: Initiator, trace_id: &str, now: Timestamp) -> Vec<OutboxEntry> {
        let mut entries = Vec::new();
        for client in &session.clients {
            let Some(settings) = self.settings(&client.client_id) else {
                continue;
            };
            if !settings.backchannel_logout_initiators.enables(initiator.as_str()) {
                continue;
            }
            let include = settings.backchannel_logout_session_metadata.include;
            let snapshot = Some(&session.session_metadata).filter(|m| include && !m.is_empty());
            for url in &settings.backchannel_logout_urls {
                entries.push(OutboxEntry {
                    client_id: client.client_id.clone(),
                    url: url.clone(),
                    sid: session.id.clone(),
                    sub: session.user_id.clone(),
                    session_metadata: snapshot.cloned(),
                    initiator: initiator.as_str().to_owned(),
                    trace_id: trace_id.to_owned(),
                    attempts: 0,
                    due_at: now,
                });
            }
        }
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{ClientRef, Device, Lifetimes};

    /// The `[[clients]]` of a file.
    #[derive(serde::Deserialize)]
    struct File {
        clients: Vec<crate::logout::config::ClientConfig>,
    }

    fn planner() -> ClientPlanner {
        let config: File = toml::from_str(
            r#"
            [logout]
            issuer = "https://idp.example/"
            [[clients]]
            client_id = "web"
            [clients.oidc_logout]
            backchannel_logout_urls = ["https://a.example/bcl", "https://b.example/bcl"]
            backchannel_logout_initiators = { mode = "all" }
            backchannel_logout_session_metadata = { include = true }
            [[clients]]
            client_id = "mobile"
            [clients.oidc_logout]
            backchannel_logout_urls = ["https://m.example/bcl"]
            backchannel_logout_initiators = { mode = "custom", selected_initiators = ["session-revoked"] }
            [[clients]]
            client_id = "silent"
            "#,
        )
        .unwrap();
        ClientPlanner::new(&config.clients)
    }

    fn session(clients: &[&str], metadata: &[(&str, &str)]) -> Session {
        let mut s = Session::new("ses_x".into(), Timestamp(1000), Lifetimes::default(), Device::default());
        s.user_id = Some("auth0|u1".into());
        s.clients = clients.iter().map(|c| ClientRef { client_id: (*c).to_owned() }).collect();
        for (k, v) in metadata {
            s.session_metadata.set(k, v).unwrap();
        }
        s
    }

    fn targets(entries: &[OutboxEntry]) -> Vec<(&str, &str)> {
        entries.iter().map(|e| (e.client_id.as_str(), e.url.as_str())).collect()
    }

    #[test]
    fn one_entry_per_client_and_url_that_enables_the_initiator() {
        let s = session(&["web", "mobile", "silent", "unknown"], &[("ja4_stable", "t13")]);
        let revoked = planner().plan(&s, Initiator::SessionRevoked, "trace", Timestamp(5));
        assert_eq!(
            targets(&revoked),
            [("web", "https://a.example/bcl"), ("web", "https://b.example/bcl"), ("mobile", "https://m.example/bcl")]
        );
        let expired = planner().plan(&s, Initiator::SessionExpired, "trace", Timestamp(5));
        assert_eq!(targets(&expired), [("web", "https://a.example/bcl"), ("web", "https://b.example/bcl")]);
        let first = &revoked[0];
        assert_eq!((first.sid.as_str(), first.sub.as_deref()), ("ses_x", Some("auth0|u1")));
        assert_eq!((first.initiator.as_str(), first.trace_id.as_str()), ("session-revoked", "trace"));
        assert_eq!((first.attempts, first.due_at), (0, Timestamp(5)));
    }

    #[test]
    fn metadata_only_when_included_and_not_empty() {
        let with =
            planner().plan(&session(&["web", "mobile"], &[("k", "v")]), Initiator::SessionRevoked, "t", Timestamp(5));
        assert_eq!(with[0].session_metadata.as_ref().unwrap().get("k"), Some("v"));
        assert_eq!(with[2].client_id, "mobile");
        assert_eq!(with[2].session_metadata, None, "include is absent for mobile");
        let empty = planner().plan(&session(&["web"], &[]), Initiator::SessionRevoked, "t", Timestamp(5));
        assert_eq!(empty[0].session_metadata, None);
    }

    #[test]
    fn a_session_without_configured_clients_plans_nothing() {
        assert!(planner().plan(&session(&[], &[]), Initiator::RpLogout, "t", Timestamp(5)).is_empty());
        assert!(planner().plan(&session(&["silent"], &[]), Initiator::RpLogout, "t", Timestamp(5)).is_empty());
    }
}

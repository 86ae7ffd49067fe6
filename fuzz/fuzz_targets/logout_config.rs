//! Fuzz target `logout_config`: arbitrary text as the TOML config file, aimed at `[logout]` and
//! `[[clients]]` (a valid prefix is prepended half of the time so the fuzzer reaches them). It must
//! never panic; an accepted config must satisfy what delivery relies on: an issuer whenever a
//! client has back-channel settings, and only absolute http(s) URLs without fragments, http only
//! with `allow_insecure_urls`.
#![no_main]

use helloguard::config::Config;
use libfuzzer_sys::fuzz_target;

const PREFIX: &str = "[logout]\nissuer = \"https://idp.example/\"\n[[clients]]\nclient_id = \"web\"\n";

fn check(text: &str) {
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    for client in &config.clients {
        let Some(settings) = client.logout() else { continue };
        assert!(config.logout.issuer.as_deref().is_some_and(|i| !i.is_empty()));
        assert!(!settings.backchannel_logout_urls.is_empty());
        for url in &settings.backchannel_logout_urls {
            let lower = url.to_ascii_lowercase();
            let https = lower.starts_with("https://");
            assert!(https || (config.logout.allow_insecure_urls && lower.starts_with("http://")), "{url}");
            assert!(!url.contains('#'), "{url}");
        }
    }
    assert!(config.logout.max_attempts >= 1 && config.logout.workers >= 1);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check(text);
    check(&format!("{PREFIX}{text}"));
});

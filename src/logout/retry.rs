//! What a relying party's answer means for a delivery, and when to try again (CONTRACT §8):
//! `200`/`204` deliver; `400` and any other non-`5xx` status end the delivery; `5xx`, network
//! errors and timeouts are retried after min(base × 2^(n−1), 300 s) ± 20 % jitter, until
//! `[logout] max_attempts` attempts were made.

use std::time::Duration;

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// The jitter band: ± this fraction of the delay.
const JITTER: f64 = 0.2;

/// Where a delivery goes after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The RP accepted the token.
    Delivered,
    /// Final failure: no more attempts.
    GiveUp,
    /// Try again later.
    Retry,
}

/// The meaning of an answered attempt's status code.
pub fn after_status(status: u16) -> Next {
    match status {
        200 | 204 => Next::Delivered,
        500..=599 => Next::Retry,
        _ => Next::GiveUp,
    }
}

/// Turns `Retry` into `GiveUp` once `attempt` (1-based) reached `max_attempts`.
pub fn bounded(next: Next, attempt: u32, max_attempts: u32) -> Next {
    match next {
        Next::Retry if attempt >= max_attempts => Next::GiveUp,
        other => other,
    }
}

/// The wait after attempt `attempt` (1-based) failed: min(base × 2^(attempt−1), 300 s), scaled
/// by 1 + 0.2 × `jitter`, where `jitter` is in [−1, 1].
pub fn delay(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let exponential = base.saturating_mul(1u32 << doublings).min(MAX_DELAY);
    exponential.mul_f64(1.0 + JITTER * jitter.clamp(-1.0, 1.0))
}

/// A uniform value in [−1, 1] from the OS random source (0 if it has none).
pub fn random_jitter(random: &dyn ring::rand::SecureRandom) -> f64 {
    let mut bytes = [0u8; 4];
    if random.fill(&mut bytes).is_err() {
        return 0.0;
    }
    f64::from(u32::from_be_bytes(bytes)) / f64::from(u32::MAX) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(after_status(200), Next::Delivered);
        assert_eq!(after_status(204), Next::Delivered);
        for final_status in [201, 301, 302, 400, 401, 404, 429] {
            assert_eq!(after_status(final_status), Next::GiveUp, "{final_status}");
        }
        for retried in [500, 502, 503, 504, 599] {
            assert_eq!(after_status(retried), Next::Retry, "{retried}");
        }
    }

    #[test]
    fn retries_stop_at_max_attempts() {
        assert_eq!(bounded(Next::Retry, 7, 8), Next::Retry);
        assert_eq!(bounded(Next::Retry, 8, 8), Next::GiveUp);
        assert_eq!(bounded(Next::Delivered, 8, 8), Next::Delivered);
    }

    #[test]
    fn delays_double_from_one_second_up_to_five_minutes() {
        let base = Duration::from_secs(1);
        let expected = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300];
        for (n, secs) in expected.iter().enumerate() {
            assert_eq!(delay(base, n as u32 + 1, 0.0), Duration::from_secs(*secs), "attempt {}", n + 1);
        }
        assert_eq!(delay(base, u32::MAX, 0.0), Duration::from_secs(300));
        assert_eq!(delay(base, 3, 1.0), Duration::from_millis(4800));
        assert_eq!(delay(base, 3, -1.0), Duration::from_millis(3200));
        assert_eq!(delay(base, 10, 1.0), Duration::from_secs(360), "jitter applies to the cap too");
        assert_eq!(delay(Duration::from_millis(10), 2, 0.0), Duration::from_millis(20));
    }

    #[test]
    fn jitter_stays_in_band() {
        let random = ring::rand::SystemRandom::new();
        for _ in 0..1000 {
            let j = random_jitter(&random);
            assert!((-1.0..=1.0).contains(&j), "{j}");
        }
    }
}

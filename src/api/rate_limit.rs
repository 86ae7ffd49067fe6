//! The per-token rate limit (CONTRACT §6.1): a token bucket per bearer token, keyed by the token's
//! SHA-256, holding `burst` requests and refilled at `per_second`.
//!
//! Memory is bounded: at most `max_buckets` buckets are kept. When a new token arrives at the
//! bound, buckets that have refilled completely go first (forgetting them changes nothing: a new
//! bucket starts full), then, if still at the bound, the least recently used one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Buckets kept at most by default.
pub const DEFAULT_MAX_BUCKETS: usize = 10_000;

/// What one request may do, and the `X-RateLimit-*` values to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// `X-RateLimit-Limit`: the burst.
    pub limit: u32,
    /// `X-RateLimit-Remaining`: whole requests left after this one.
    pub remaining: u32,
    /// `X-RateLimit-Reset`: Unix seconds when the bucket is full again.
    pub reset: u64,
    /// `Some(seconds)` when this request is refused: `Retry-After`.
    pub retry_after: Option<u64>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    max_buckets: usize,
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
}

impl RateLimiter {
    pub fn new(burst: u32, per_second: f64, max_buckets: usize) -> Self {
        Self { burst: f64::from(burst), per_second, max_buckets: max_buckets.max(1), buckets: Mutex::default() }
    }

    /// Takes one request from `key`'s bucket at `now` (`wall` is the same moment on the Unix clock).
    pub fn check(&self, key: [u8; 32], now: Instant, wall: SystemTime) -> Allowance {
        // A panic while holding the lock leaves at worst one stale bucket.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(&key) && buckets.len() >= self.max_buckets {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: self.burst, updated: now });
        bucket.tokens = self.refilled(bucket, now);
        bucket.updated = now;
        let retry_after = if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            None
        } else {
            Some(self.seconds_until(1.0 - bucket.tokens).max(1))
        };
        let wall_seconds = wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64();
        let until_full = (self.burst - bucket.tokens) / self.per_second;
        Allowance {
            limit: self.burst as u32,
            remaining: bucket.tokens.floor() as u32,
            reset: (wall_seconds + until_full).ceil() as u64,
            retry_after,
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }

    fn seconds_until(&self, tokens: f64) -> u64 {
        (tokens / self.per_second).ceil() as u64
    }

    fn evict(&self, buckets: &mut HashMap<[u8; 32], Bucket>, now: Instant) {
        buckets.retain(|_, bucket| self.refilled(bucket, now) < self.burst);
        if buckets.len() >= self.max_buckets {
            if let Some(oldest) = buckets.iter().min_by_key(|(_, b)| b.updated).map(|(k, _)| *k) {
                buckets.remove(&oldest);
            }
        }
    }

    /// Buckets currently kept.
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000;

    fn at(start: Instant, seconds: f64) -> (Instant, SystemTime) {
        let d = Duration::from_secs_f64(seconds);
        (start + d, UNIX_EPOCH + Duration::from_secs(T0) + d)
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let limiter = RateLimiter::new(3, 1.0, 10);
        let start = Instant::now();
        let (now, wall) = at(start, 0.0);
        let answers: Vec<Allowance> = (0..4).map(|_| limiter.check([1; 32], now, wall)).collect();
        let remaining: Vec<u32> = answers.iter().map(|a| a.remaining).collect();
        assert_eq!(remaining, [2, 1, 0, 0]);
        assert_eq!(answers[..3].iter().filter(|a| a.retry_after.is_some()).count(), 0);
        assert_eq!(answers[3].retry_after, Some(1));
        assert_eq!(answers[3].limit, 3);
        assert_eq!(answers[3].reset, T0 + 3, "three tokens to refill at one per second");
        // Another token has its own bucket.
        assert_eq!(limiter.check([2; 32], now, wall).remaining, 2);
        // 1.5 s later one and a half tokens came back: one request passes.
        let (later, wall_later) = at(start, 1.5);
        let answer = limiter.check([1; 32], later, wall_later);
        assert_eq!((answer.remaining, answer.retry_after), (0, None));
        assert_eq!(limiter.check([1; 32], later, wall_later).retry_after, Some(1));
    }

    #[test]
    fn memory_is_bounded_and_full_buckets_go_first() {
        let limiter = RateLimiter::new(2, 1.0, 3);
        let start = Instant::now();
        let (now, wall) = at(start, 0.0);
        for key in 0..3u8 {
            limiter.check([key; 32], now, wall);
        }
        assert_eq!(limiter.len(), 3);
        // Key 0 is used again a bit later; then every bucket is still below full at 0.5 s.
        let (soon, wall_soon) = at(start, 0.5);
        limiter.check([0; 32], soon, wall_soon);
        limiter.check([9; 32], soon, wall_soon);
        assert_eq!(limiter.len(), 3, "the least recently used bucket made room");
        // Key 0 kept its state (it was not the oldest): two requests at 0.5 s left it empty.
        assert_eq!(limiter.check([0; 32], soon, wall_soon).retry_after, Some(1));
        // Much later every bucket is full again; a new key clears them all.
        let (late, wall_late) = at(start, 100.0);
        limiter.check([7; 32], late, wall_late);
        assert_eq!(limiter.len(), 1);
    }
}

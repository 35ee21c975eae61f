//! [`RateLimit`]: how many messages a spoke may send, and the per-connection
//! meter that enforces it.

use std::time::Instant;

/// A limit on the messages one spoke may send: `per_second` on average, with
/// bursts of up to `burst` at once (a token bucket).
///
/// A message over the limit is answered with `hub.error` `rate_limited` and
/// not delivered; a spoke that sends
/// [`strikes`](Self::strikes) messages over the limit in a row is closed with
/// 1008.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Messages per second, on average.
    pub per_second: f64,
    /// Messages that may arrive at once. Default: one second's worth.
    pub burst: u32,
    /// Messages over the limit in a row before the spoke is closed with
    /// 1008. Default: 32.
    pub strikes: u32,
}

impl RateLimit {
    /// `per_second` messages a second, a burst of one second's worth, and
    /// 32 strikes.
    pub fn per_second(per_second: u32) -> Self {
        Self { per_second: f64::from(per_second.max(1)), burst: per_second.max(1), strikes: 32 }
    }

    /// Sets [`burst`](Self::burst) (at least 1).
    #[must_use]
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// Sets [`strikes`](Self::strikes) (at least 1).
    #[must_use]
    pub fn strikes(mut self, strikes: u32) -> Self {
        self.strikes = strikes.max(1);
        self
    }
}

/// What the meter says of one message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// Over the limit: refuse it.
    Refuse,
    /// Over the limit once too often in a row: close the spoke.
    Close,
}

/// One spoke's token bucket.
#[derive(Debug)]
pub(crate) struct Meter {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
    strikes: u32,
}

impl Meter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self { limit, tokens: f64::from(limit.burst), refilled: Instant::now(), strikes: 0 }
    }

    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled);
        self.refilled = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.limit.per_second).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            Verdict::Allow
        } else {
            self.strikes += 1;
            if self.strikes >= self.limit.strikes { Verdict::Close } else { Verdict::Refuse }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// How long a bucket of this limit takes to refill one message.
    fn one_token(limit: &RateLimit) -> Duration {
        Duration::from_secs_f64(1.0 / limit.per_second)
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let limit = RateLimit::per_second(10).burst(3).strikes(5);
        let mut meter = Meter::new(limit);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(meter.check(t0), Verdict::Allow);
        }
        assert_eq!(meter.check(t0), Verdict::Refuse);
        assert_eq!(meter.check(t0 + one_token(&limit)), Verdict::Allow);
    }

    #[test]
    fn strikes_in_a_row_close_and_an_allowed_message_forgives_them() {
        let mut meter = Meter::new(RateLimit::per_second(1).burst(1).strikes(3));
        let t0 = Instant::now();
        assert_eq!(meter.check(t0), Verdict::Allow);
        assert_eq!(meter.check(t0), Verdict::Refuse);
        assert_eq!(meter.check(t0), Verdict::Refuse);
        assert_eq!(meter.check(t0 + Duration::from_secs(1)), Verdict::Allow);
        assert_eq!(meter.check(t0 + Duration::from_secs(1)), Verdict::Refuse);
        assert_eq!(meter.check(t0 + Duration::from_secs(1)), Verdict::Refuse);
        assert_eq!(meter.check(t0 + Duration::from_secs(1)), Verdict::Close);
    }
}

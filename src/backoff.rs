//! The wait before a reconnection attempt, shared by the client and the
//! Redis bridge: exponential, capped, and jittered so that many clients or
//! hubs that lost the same server do not retry in step.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

/// The wait before attempt `attempt` (1 for the first retry): doubling from
/// `initial`, at most `max`, drawn at random between half of that and all
/// of it.
pub(crate) fn backoff(initial: Duration, max: Duration, attempt: u32) -> Duration {
    jitter(initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(31)).min(max))
}

/// A wait drawn at random between half of `d` and all of it.
fn jitter(d: Duration) -> Duration {
    // A fresh `RandomState` is randomly keyed: enough randomness for jitter,
    // without a dependency.
    let random = RandomState::new().hash_one(Instant::now());
    let half = d / 2;
    half + half.mul_f64(random as f64 / u64::MAX as f64)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum_with_jitter() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_secs(2));
        for (attempt, full) in [(1, 100), (2, 200), (3, 400), (5, 1600), (6, 2000), (40, 2000), (u32::MAX, 2000)] {
            let wait = backoff(initial, max, attempt);
            let full = Duration::from_millis(full);
            assert!(wait >= full / 2 && wait <= full, "attempt {attempt}: {wait:?}");
        }
    }

    #[test]
    fn jitter_stays_between_half_and_all_and_varies() {
        let d = Duration::from_millis(1000);
        let waits: Vec<Duration> = (0..100).map(|_| jitter(d)).collect();
        assert!(waits.iter().all(|w| *w >= d / 2 && *w <= d), "{waits:?}");
        let distinct: HashSet<_> = waits.iter().collect();
        assert!(distinct.len() > 50, "jitter should vary: {distinct:?}");
    }
}

//! Reconnect delays: capped exponential backoff with full jitter. This module does no I/O
//! and takes its randomness from the caller, so tests are deterministic.

use std::time::Duration;

/// Delays between reconnect attempts to a broker.
///
/// Attempt `n` (counted from 0) waits a random time between half of
/// `min(max, initial × 2ⁿ)` and that value, so many hubs that lost the same broker do not
/// reconnect in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Upper bound of the first delay.
    pub initial: Duration,
    /// Upper bound of every delay.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 second at first, doubling up to 60 seconds.
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// Returns the upper bound of the delay before attempt `attempt` (0 for the first).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |delay| delay.min(self.max))
    }

    /// Returns the delay before attempt `attempt`, with `random` a uniformly distributed
    /// value in `0.0..=1.0` that places it between half the ceiling and the ceiling.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            1.0
        };
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * (0.5 + 0.5 * random)).unwrap_or(ceiling)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_max() {
        let backoff = Backoff::default();
        let ceilings: Vec<u64> = (0..8).map(|n| backoff.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn delay_stays_between_half_and_ceiling() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(3, 0.0), Duration::from_secs(4));
        assert_eq!(backoff.delay(3, 1.0), Duration::from_secs(8));
        assert_eq!(backoff.delay(3, 0.5), Duration::from_secs(6));
    }

    #[test]
    fn out_of_range_random_is_clamped() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(0, -3.0), Duration::from_millis(500));
        assert_eq!(backoff.delay(0, 7.0), Duration::from_secs(1));
        assert_eq!(backoff.delay(0, f64::NAN), Duration::from_secs(1));
    }

    #[test]
    fn huge_initial_is_capped() {
        let backoff = Backoff {
            initial: Duration::from_secs(u64::MAX / 2),
            max: Duration::from_secs(30),
        };
        assert_eq!(backoff.ceiling(5), Duration::from_secs(30));
        let unbounded = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
        };
        assert!(unbounded.delay(0, 1.0) > Duration::from_secs(1 << 62));
    }
}

//! Client reconnect policies.

use std::time::Duration;

/// When a client reconnects after losing (or failing to make) its connection.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use tasktonic_net::tcp::Reconnect;
///
/// let forever = Reconnect::fixed(Duration::from_secs(1)); // ninjaTCP: every second, forever
/// let backoff = Reconnect::exponential(Duration::from_millis(100), Duration::from_secs(30))
///     .max_attempts(10);
/// assert_eq!(forever.delay(0, 0), Duration::from_secs(1));
/// assert!(backoff.delay(3, 7) <= Duration::from_millis(960));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Reconnect {
    initial: Duration,
    max: Duration,
    exponential: bool,
    jitter: f64,
    max_attempts: Option<u32>,
}

impl Reconnect {
    /// Wait `delay` between attempts, forever.
    pub fn fixed(delay: Duration) -> Reconnect {
        Reconnect {
            initial: delay,
            max: delay,
            exponential: false,
            jitter: 0.0,
            max_attempts: None,
        }
    }

    /// Double the wait after every failed attempt, from `initial` up to `max`, with ±20 %
    /// jitter, forever.
    pub fn exponential(initial: Duration, max: Duration) -> Reconnect {
        Reconnect {
            initial,
            max: max.max(initial),
            exponential: true,
            jitter: 0.2,
            max_attempts: None,
        }
    }

    /// Give up when `n` retries in a row have failed: a failed connect (or a lost
    /// connection) is followed by at most `n` new attempts, so `max_attempts(2)` makes three
    /// connects in all against a peer that never answers. A successful connect resets the
    /// count.
    pub fn max_attempts(mut self, n: u32) -> Reconnect {
        self.max_attempts = Some(n);
        self
    }

    /// Jitter as a fraction of the delay (0.0 to 1.0).
    pub fn jitter(mut self, fraction: f64) -> Reconnect {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// True if attempt number `attempt` (0-based, counting failures in a row) may be made.
    pub fn allows(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|max| attempt < max)
    }

    /// The wait before attempt `attempt` (0-based); `seed` varies the jitter.
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        let base = if self.exponential {
            let factor = 2u32.saturating_pow(attempt.min(31));
            self.initial.saturating_mul(factor).min(self.max)
        } else {
            self.initial
        };
        if self.jitter == 0.0 {
            return base;
        }
        // splitmix64: a cheap, well-spread value in [0, 1) from the seed.
        let mut z = seed
            .wrapping_add(u64::from(attempt))
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        let scale = 1.0 + self.jitter * (2.0 * unit - 1.0);
        base.mul_f64(scale).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_up_to_the_max_within_jitter() {
        let r =
            Reconnect::exponential(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.0);
        let d: Vec<u128> = (0..6).map(|a| r.delay(a, 0).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 800, 1000, 1000]);
        let j = Reconnect::exponential(Duration::from_millis(100), Duration::from_secs(10));
        for seed in 0..100 {
            let ms = j.delay(2, seed).as_millis();
            assert!((320..=480).contains(&ms), "{ms}");
        }
    }

    #[test]
    fn attempts_are_limited_when_asked() {
        let r = Reconnect::fixed(Duration::from_secs(1)).max_attempts(3);
        assert!(r.allows(2));
        assert!(!r.allows(3));
        assert!(Reconnect::fixed(Duration::ZERO).allows(u32::MAX - 1));
    }
}

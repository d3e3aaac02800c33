//! Rate limits per key (an account, a client address, a customer): one
//! GCRA bucket per key on the injected clock, in a bounded table.
//!
//! GCRA (the "generic cell rate algorithm", what `governor` implements)
//! keeps one number per key, the theoretical arrival time `tat`: a request
//! at `now` is allowed when `tat - now` is within the burst's tolerance,
//! and then moves `tat` one emission interval on. Written here rather than
//! taken from `governor` because the limits must run on the clock port (the
//! simulator's time, a test's manual clock), and because the table needs a
//! hard bound: when it is full, keys whose bucket has refilled (they are
//! the same as absent) are forgotten; if every key is still limited, a new
//! key is refused too (fail closed, counted) rather than growing the table.
//!
//! Layer: shared types; imports `config` and the domain.

use crate::config::RateSettings;
use std::collections::BTreeMap;
use std::sync::Mutex;
use ticketing_domain::UnixMs;

/// A refusal: try again after this many milliseconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_ms: u64,
}

/// One limit over many keys.
#[derive(Debug)]
pub struct RateLimiter {
    /// Milliseconds between requests at the average rate (0: no limit).
    interval_ms: u64,
    /// How far ahead of `now` a key's `tat` may be and still pass.
    tolerance_ms: u64,
    keys_max: usize,
    tat_ms: Mutex<BTreeMap<String, UnixMs>>,
}

impl RateLimiter {
    pub fn new(rate: RateSettings, keys_max: usize) -> RateLimiter {
        let interval_ms = if rate.per_minute == 0 {
            0
        } else {
            (60_000 / u64::from(rate.per_minute)).max(1)
        };
        RateLimiter {
            interval_ms,
            tolerance_ms: interval_ms * u64::from(rate.burst.max(1) - 1),
            keys_max: keys_max.max(1),
            tat_ms: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts one request of `key` at `now_ms`, or refuses it (a refused
    /// request is not counted).
    pub fn check(&self, key: &str, now_ms: UnixMs) -> Result<(), Limited> {
        if self.interval_ms == 0 {
            return Ok(());
        }
        let mut table = crate::lock(&self.tat_ms);
        let tat = table.get(key).copied().unwrap_or(now_ms).max(now_ms);
        if tat - now_ms > self.tolerance_ms {
            return Err(Limited {
                retry_after_ms: (tat - now_ms - self.tolerance_ms).max(1),
            });
        }
        if !table.contains_key(key) && table.len() >= self.keys_max {
            // A key whose tat has passed is a full bucket: the same as absent.
            table.retain(|_, t| *t > now_ms);
            if table.len() >= self.keys_max {
                metrics::counter!(crate::metrics::RATE_LIMIT_TABLE_FULL).increment(1);
                return Err(Limited {
                    retry_after_ms: self.interval_ms,
                });
            }
        }
        table.insert(key.to_owned(), tat + self.interval_ms);
        Ok(())
    }

    /// Keys remembered now (for tests and metrics).
    pub fn keys(&self) -> usize {
        crate::lock(&self.tat_ms).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_average_rate() {
        // 60 per minute: one per 1,000 ms, 3 at once.
        let l = RateLimiter::new(RateSettings::new(60, 3), 10);
        for _ in 0..3 {
            assert_eq!(l.check("a", 0), Ok(()));
        }
        assert_eq!(
            l.check("a", 0),
            Err(Limited {
                retry_after_ms: 1_000
            })
        );
        assert_eq!(
            l.check("a", 400),
            Err(Limited {
                retry_after_ms: 600
            })
        );
        // Another key has its own bucket.
        assert_eq!(l.check("b", 400), Ok(()));
        assert_eq!(l.check("a", 1_000), Ok(()));
        assert!(l.check("a", 1_000).is_err());
        // Idle long enough, the whole burst is back.
        for _ in 0..3 {
            assert_eq!(l.check("a", 10_000), Ok(()));
        }
        assert!(l.check("a", 10_000).is_err());
    }

    #[test]
    fn zero_per_minute_is_no_limit() {
        let l = RateLimiter::new(RateSettings::new(0, 1), 1);
        for i in 0..1_000 {
            assert_eq!(l.check(&format!("k{i}"), 0), Ok(()));
        }
        assert_eq!(l.keys(), 0);
    }

    #[test]
    fn a_full_table_forgets_refilled_keys_and_refuses_when_none_has() {
        let l = RateLimiter::new(RateSettings::new(60, 1), 2);
        assert!(l.check("a", 0).is_ok());
        assert!(l.check("b", 0).is_ok());
        // Both still limited at 500 ms: a third key is refused, not stored.
        assert_eq!(
            l.check("c", 500),
            Err(Limited {
                retry_after_ms: 1_000
            })
        );
        assert_eq!(l.keys(), 2);
        // At 1,000 ms both buckets have refilled and are forgotten.
        assert!(l.check("c", 1_000).is_ok());
        assert_eq!(l.keys(), 1);
        assert!(l.check("c", 1_000).is_err(), "c keeps its own limit");
    }
}

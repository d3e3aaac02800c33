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
//! [`RequestLimits`] puts two of them (per customer, per client address)
//! in front of each limited route of reservation and order.
//!
//! Layer: shared types; imports `config`, `error` and the domain.

use crate::config::{LimitsSettings, RateSettings};
use crate::error::ApiError;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use ticketing_domain::UnixMs;

/// A refusal: try again after this many milliseconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_ms: u64,
}

impl Limited {
    /// The refusal as the client hears it (429 `RATE_LIMITED`), counted
    /// under `limit` in `rate_limited_total`.
    pub fn refused(self, limit: &'static str) -> ApiError {
        metrics::counter!(crate::metrics::RATE_LIMITED, "limit" => limit).increment(1);
        ApiError::RateLimited {
            retry_after_ms: self.retry_after_ms,
        }
    }
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

/// The limits of one kind of request: per customer and per client address.
#[derive(Debug)]
pub struct RequestLimit {
    /// The `limit` labels of its refusals (`hold_customer`, `hold_address`, …).
    names: [&'static str; 2],
    by_customer: RateLimiter,
    by_address: RateLimiter,
}

impl RequestLimit {
    fn new(names: [&'static str; 2], rates: [RateSettings; 2], keys: usize) -> Self {
        RequestLimit {
            names,
            by_customer: RateLimiter::new(rates[0], keys),
            by_address: RateLimiter::new(rates[1], keys),
        }
    }

    /// Counts one request of `customer` (if any) from `ip` (if known), or
    /// refuses it with 429 `RATE_LIMITED`.
    pub fn check(
        &self,
        customer: Option<&str>,
        ip: Option<IpAddr>,
        now_ms: UnixMs,
    ) -> Result<(), ApiError> {
        let [customer_name, address_name] = self.names;
        if let Some(ip) = ip {
            self.by_address
                .check(&ip.to_string(), now_ms)
                .map_err(|l| l.refused(address_name))?;
        }
        if let Some(c) = customer {
            self.by_customer
                .check(c, now_ms)
                .map_err(|l| l.refused(customer_name))?;
        }
        Ok(())
    }
}

/// The rate limits of the hold, extend and order routes (`limits.*`), and
/// whether a client's address is the gateway's `X-Forwarded-For` entry.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    pub hold: Arc<RequestLimit>,
    pub extend: Arc<RequestLimit>,
    pub order: Arc<RequestLimit>,
    pub trust_forwarded_for: bool,
}

impl RequestLimits {
    pub fn new(l: &LimitsSettings, trust_forwarded_for: bool) -> RequestLimits {
        let keys = l.limiter_keys_max;
        let limit = |names, rates| Arc::new(RequestLimit::new(names, rates, keys));
        RequestLimits {
            hold: limit(
                ["hold_customer", "hold_address"],
                [l.hold_per_customer, l.hold_per_address],
            ),
            extend: limit(
                ["extend_customer", "extend_address"],
                [l.extend_per_customer, l.extend_per_address],
            ),
            order: limit(
                ["order_customer", "order_address"],
                [l.order_per_customer, l.order_per_address],
            ),
            trust_forwarded_for,
        }
    }

    /// No limits (the simulator's anonymous users, tests).
    pub fn none() -> RequestLimits {
        let off = RateSettings::new(0, 1);
        RequestLimits::new(
            &LimitsSettings {
                hold_per_customer: off,
                extend_per_customer: off,
                order_per_customer: off,
                ..LimitsSettings::default()
            },
            false,
        )
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
    fn a_route_limits_each_customer_and_each_address_on_its_own() {
        let settings = LimitsSettings {
            hold_per_customer: RateSettings::new(60, 2),
            hold_per_address: RateSettings::new(60, 3),
            ..LimitsSettings::default()
        };
        let limits = RequestLimits::new(&settings, false);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let hold = &limits.hold;
        assert!(hold.check(Some("ann"), Some(a), 0).is_ok());
        assert!(hold.check(Some("ann"), Some(b), 0).is_ok());
        // Ann's burst of 2 is spent, whatever address she comes from.
        let e = hold.check(Some("ann"), Some(b), 0).unwrap_err();
        assert!(
            matches!(
                e,
                ApiError::RateLimited {
                    retry_after_ms: 1_000
                }
            ),
            "{e:?}"
        );
        // Address a: 1 so far (+ nothing for the refused one, which b took).
        assert!(hold.check(Some("bob"), Some(a), 0).is_ok());
        assert!(hold.check(None, Some(a), 0).is_ok());
        assert!(
            hold.check(Some("carol"), Some(a), 0).is_err(),
            "a's burst of 3"
        );
        // Other routes have their own buckets.
        assert!(limits.order.check(Some("ann"), Some(a), 0).is_ok());
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

use crate::model::{HoldId, MessageId, OrderId, TraceId};

/// The only source of randomness and ids for system code.
///
/// Contract: a deterministic function of its seed. In production it is a
/// CSPRNG (ChaCha20) seeded once from OS entropy; in the simulator it is
/// seeded from the run's seed, so a run replays exactly.
pub trait RandomSource: Send + Sync + std::fmt::Debug {
    /// Fills `dest` with random bytes.
    fn fill_bytes(&self, dest: &mut [u8]);
}

/// Id and number helpers over any [`RandomSource`].
pub trait RandomExt: RandomSource {
    fn next_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    /// Uniform in `[0, 1)`.
    fn unit_f64(&self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi]` (inclusive); `lo` when the range is empty.
    fn range_u64(&self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A hold id: `h_` and 128 random bits in hex — an unguessable capability.
    fn hold_id(&self) -> HoldId {
        let mut b = [0u8; 16];
        self.fill_bytes(&mut b);
        HoldId(format!("h_{}", hex::encode(b)))
    }

    /// A waiting-room ticket (128 random bits).
    fn queue_ticket(&self) -> crate::QueueTicket {
        let mut b = [0u8; 16];
        self.fill_bytes(&mut b);
        crate::QueueTicket(format!("q_{}", hex::encode(b)))
    }

    /// A waiting-room visitor id (64 random bits).
    fn visitor_id(&self) -> crate::VisitorId {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        crate::VisitorId(format!("v_{}", hex::encode(b)))
    }

    /// An order id: a version-4-shaped UUID built from this source's bytes.
    fn order_id(&self) -> OrderId {
        OrderId(self.uuid().to_string())
    }

    fn message_id(&self) -> MessageId {
        MessageId(self.uuid().to_string())
    }

    /// A W3C trace id: 32 lowercase hex digits, never all zero.
    fn trace_id(&self) -> TraceId {
        let mut b = [0u8; 16];
        self.fill_bytes(&mut b);
        b[15] |= 1;
        TraceId(hex::encode(b))
    }

    /// A W3C span id: 16 lowercase hex digits, never all zero.
    fn span_id(&self) -> String {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        b[7] |= 1;
        hex::encode(b)
    }

    fn uuid(&self) -> uuid::Uuid {
        let mut b = [0u8; 16];
        self.fill_bytes(&mut b);
        uuid::Builder::from_random_bytes(b).into_uuid()
    }
}

impl<T: RandomSource + ?Sized> RandomExt for T {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Hands out the bytes of `words` (little-endian), then zeros.
    #[derive(Debug)]
    struct Script(Mutex<std::collections::VecDeque<u8>>);

    fn script(words: &[u64]) -> Script {
        Script(Mutex::new(
            words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        ))
    }

    impl RandomSource for Script {
        fn fill_bytes(&self, dest: &mut [u8]) {
            let mut q = self.0.lock().expect("not poisoned");
            for b in dest {
                *b = q.pop_front().unwrap_or(0);
            }
        }
    }

    #[test]
    fn a_word_is_eight_bytes_little_endian() {
        assert_eq!(
            script(&[0x0807_0605_0403_0201]).next_u64(),
            0x0807_0605_0403_0201
        );
    }

    #[test]
    fn unit_takes_the_top_53_bits() {
        assert_eq!(script(&[1 << 63]).unit_f64(), 0.5);
        assert_eq!(script(&[0]).unit_f64(), 0.0);
        let top = script(&[u64::MAX]).unit_f64();
        assert!(top < 1.0 && top > 0.999_999, "{top}");
    }

    #[test]
    fn a_range_is_inclusive_and_an_empty_one_is_its_low_end() {
        // 18 % 5 = 3: the fourth of 100..=104.
        assert_eq!(script(&[18]).range_u64(100, 104), 103);
        assert_eq!(script(&[4]).range_u64(100, 104), 104, "hi is included");
        assert_eq!(script(&[5]).range_u64(100, 104), 100);
        assert_eq!(script(&[18]).range_u64(7, 7), 7);
        assert_eq!(script(&[18]).range_u64(9, 3), 9);
    }

    #[test]
    fn ids_have_their_documented_shapes() {
        let hex = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        };
        let zeros = script(&[]);
        let trace = zeros.trace_id();
        assert_eq!(trace.0.len(), 32);
        assert!(
            hex(&trace.0) && trace.0.ends_with("01"),
            "never all zero: {trace}"
        );
        let span = zeros.span_id();
        assert_eq!(span, "0000000000000001", "never all zero");
        let some = script(&[u64::MAX, u64::MAX]);
        let id = some.uuid();
        assert_eq!(id.get_version_num(), 4);
        assert!(!id.is_nil());
        let hold = script(&[1, 2]).hold_id();
        assert_eq!(hold.0, "h_01000000000000000200000000000000");
    }
}

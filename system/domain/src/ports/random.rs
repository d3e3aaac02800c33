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

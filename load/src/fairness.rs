//! Fairness of a waiting room's admissions, judged from what its visitors
//! saw: the order they joined in (each join's request and answer times on
//! the harness's clock, and whether the queue put it in the pre-queue) and
//! when the queue says it admitted them (`admittedAtMs`, the queue's clock).
//!
//! Pure functions over [`Joined`] records; the waiting-room scenario feeds
//! them, the summary carries what they return. Layer: imports nothing of
//! the harness.

/// One admitted visitor: join request sent and answered (µs on the
/// harness's clock), pre-queue or not, admitted at (ms, the queue's clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Joined {
    pub sent_us: u64,
    pub answered_us: u64,
    pub prequeue: bool,
    pub admitted_at_ms: u64,
}

/// How many visitors were admitted strictly before someone who was ahead
/// of them and still waiting: a FIFO visitor B is out of order when a
/// pre-queue visitor, or a FIFO visitor whose join was *answered before
/// B's was sent* (so the queue must have placed it first), was admitted
/// later than B. Joins that overlapped in time are not ordered (either
/// order is right), and admissions in the same millisecond are one step.
///
/// O(n log n): FIFO visitors by send time, a pointer over them by answer
/// time carrying the latest admission among those surely ahead.
pub fn admitted_out_of_order(visitors: &[Joined]) -> u64 {
    let prequeue_latest = visitors
        .iter()
        .filter(|v| v.prequeue)
        .map(|v| v.admitted_at_ms)
        .max();
    let mut by_sent: Vec<&Joined> = visitors.iter().filter(|v| !v.prequeue).collect();
    let mut by_answered = by_sent.clone();
    by_sent.sort_by_key(|v| v.sent_us);
    by_answered.sort_by_key(|v| v.answered_us);
    let (mut ahead_latest, mut next, mut out) = (prequeue_latest, 0usize, 0u64);
    for b in by_sent {
        while next < by_answered.len() && by_answered[next].answered_us < b.sent_us {
            let a = by_answered[next].admitted_at_ms;
            ahead_latest = Some(ahead_latest.map_or(a, |m| m.max(a)));
            next += 1;
        }
        if ahead_latest.is_some_and(|m| m > b.admitted_at_ms) {
            out += 1;
        }
    }
    out
}

/// The most pairs Kendall's tau is computed over: larger sets are sampled
/// evenly down to this many visitors (a bound on the O(n²) loop).
pub const TAU_VISITORS_MAX: usize = 4_000;

/// Kendall's tau-b between the join order and the admission order
/// (`admittedAtMs`): 1 = admitted exactly in join order, 0 = no relation
/// (a shuffled pre-queue), ties in either order counted as neither.
/// `None` for fewer than two visitors or no untied pair.
///
/// The queue placed each join somewhere between its request and its
/// answer; the join time taken is the midpoint. Joins that overlapped
/// may have been placed in either order, so under a stampede (many joins
/// in flight at once) tau stays below 1 even when every admission was
/// in the queue's order; and a second's admissions often leave in one
/// step (tied). [`admitted_out_of_order`] is the exact rule, tau the
/// picture.
pub fn kendall_tau_b(visitors: &[Joined]) -> Option<f64> {
    let step = visitors.len().div_ceil(TAU_VISITORS_MAX).max(1);
    let v: Vec<&Joined> = visitors.iter().step_by(step).collect();
    let (mut concordant, mut discordant, mut tied_x, mut tied_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..v.len() {
        for j in i + 1..v.len() {
            let dx = (v[i].sent_us + v[i].answered_us).cmp(&(v[j].sent_us + v[j].answered_us));
            let dy = v[i].admitted_at_ms.cmp(&v[j].admitted_at_ms);
            use std::cmp::Ordering::Equal;
            match (dx, dy) {
                (Equal, Equal) => {}
                (Equal, _) => tied_x += 1,
                (_, Equal) => tied_y += 1,
                (a, b) if a == b => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let n_x = (concordant + discordant + tied_y) as f64;
    let n_y = (concordant + discordant + tied_x) as f64;
    if n_x == 0.0 || n_y == 0.0 {
        return None;
    }
    Some((concordant - discordant) as f64 / (n_x * n_y).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(sent_us: u64, admitted_at_ms: u64) -> Joined {
        Joined {
            sent_us,
            answered_us: sent_us + 500,
            prequeue: false,
            admitted_at_ms,
        }
    }

    #[test]
    fn admissions_in_join_order_are_in_order_and_a_jump_is_caught() {
        let in_order: Vec<Joined> = (0..100).map(|i| fifo(i * 1_000, 10 + i / 10)).collect();
        assert_eq!(admitted_out_of_order(&in_order), 0);
        assert_eq!(kendall_tau_b(&in_order).map(|t| t > 0.9), Some(true));
        // Visitor 50 admitted before everyone: 50 people were ahead of it.
        let mut jumped = in_order.clone();
        jumped[50].admitted_at_ms = 1;
        assert_eq!(admitted_out_of_order(&jumped), 1);
        // Overlapping joins are not ordered: either admission order is right.
        let overlap = [
            Joined {
                sent_us: 0,
                answered_us: 2_000,
                prequeue: false,
                admitted_at_ms: 20,
            },
            Joined {
                sent_us: 1_000,
                answered_us: 1_500,
                prequeue: false,
                admitted_at_ms: 10,
            },
        ];
        assert_eq!(admitted_out_of_order(&overlap), 0);
        // Same millisecond: one admission step, not out of order.
        assert_eq!(admitted_out_of_order(&[fifo(0, 10), fifo(5_000, 10)]), 0);
    }

    #[test]
    fn the_pre_queue_is_ahead_of_every_fifo_visitor_but_unordered_inside() {
        let early = |sent_us, admitted_at_ms| Joined {
            sent_us,
            answered_us: sent_us + 10,
            prequeue: true,
            admitted_at_ms,
        };
        // Early visitors admitted in reverse join order (shuffled): fine.
        let mut v: Vec<Joined> = (0..20).map(|i| early(i * 100, 100 - i)).collect();
        v.push(fifo(50_000, 200));
        assert_eq!(admitted_out_of_order(&v), 0);
        let tau = kendall_tau_b(&v[..20]).unwrap();
        assert!((tau + 1.0).abs() < 1e-9, "reversed: {tau}");
        // A FIFO visitor admitted before an early one is out of order.
        v.push(fifo(60_000, 50));
        assert_eq!(admitted_out_of_order(&v), 1);
        assert_eq!(kendall_tau_b(&v[..1]), None);
    }

    #[test]
    fn tau_samples_large_sets_down_to_its_bound() {
        let many: Vec<Joined> = (0..10_000).map(|i| fifo(i, i)).collect();
        assert_eq!(kendall_tau_b(&many), Some(1.0));
    }
}

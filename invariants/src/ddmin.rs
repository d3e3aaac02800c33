//! Delta debugging (Zeller's ddmin, the complement-removal half): drops
//! chunks of a list — halves, quarters, … single items — while a property
//! still holds of what is left. Used for the history check's smallest
//! failing sub-history (`linearize::minimize`) and the simulator's
//! shrinking of fault plans.
//!
//! Layer: pure; imports nothing.

/// The items of `keep` left after dropping every chunk whose removal kept
/// `still` true, from chunks of half the list down to single items.
pub fn ddmin<T: Clone>(mut keep: Vec<T>, mut still: impl FnMut(&[T]) -> bool) -> Vec<T> {
    let mut chunk = keep.len().div_ceil(2).max(1);
    loop {
        let mut at = 0;
        while at < keep.len() {
            let end = (at + chunk).min(keep.len());
            let trial: Vec<T> = keep[..at].iter().chain(&keep[end..]).cloned().collect();
            if still(&trial) {
                keep = trial;
            } else {
                at = end;
            }
        }
        if chunk == 1 {
            return keep;
        }
        chunk = chunk.div_ceil(2);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_only_what_the_property_needs() {
        let kept = super::ddmin((1..=10).collect(), |t: &[u32]| {
            t.contains(&3) && t.contains(&8)
        });
        assert_eq!(kept, vec![3, 8]);
    }
}

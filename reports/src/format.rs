//! How the page writes numbers: shared by the tables (`render`) and the
//! chart axes (`charts`).
//!
//! Layer: bottom of the crate; imports nothing of it.

/// Milliseconds, with the precision the size deserves.
pub fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

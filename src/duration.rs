//! Human durations such as `30d`, `12h` or `2w`, as operators write them in flags and
//! manifests.

use crate::{Error, Result};

/// Parses `N[s|m|h|d|w]` (a bare number means days) into seconds.
pub fn parse_seconds(text: &str) -> Result<i64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| {
        Error::Usage(format!(
            "invalid duration '{text}': expected e.g. 30d, 12h, 2w"
        ))
    })?;
    let mult = match unit {
        "" | "d" => 86_400,
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => {
            return Err(Error::Usage(format!(
                "invalid duration '{text}': unit must be s, m, h, d, w or y"
            )))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| Error::Usage(format!("duration '{text}' is too large")))
}

/// When to renew: a fixed time before expiry, or a fraction of the lifetime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RenewWindow {
    /// Renew when fewer than this many seconds remain.
    Before(i64),
    /// Renew when less than this fraction of the lifetime remains (`1/3`).
    Fraction(f64),
}

impl RenewWindow {
    /// Parses `30d` or `1/3`.
    pub fn parse(text: &str) -> Result<Self> {
        if let Some((a, b)) = text.split_once('/') {
            let (a, b): (f64, f64) = match (a.trim().parse(), b.trim().parse()) {
                (Ok(a), Ok(b)) => (a, b),
                _ => {
                    return Err(Error::Usage(format!(
                        "invalid renew window '{text}': expected e.g. 30d or 1/3"
                    )))
                }
            };
            if !(b > 0.0 && a > 0.0 && a < b) {
                return Err(Error::Usage(format!(
                    "invalid renew window '{text}': the fraction must be between 0 and 1"
                )));
            }
            return Ok(RenewWindow::Fraction(a / b));
        }
        Ok(RenewWindow::Before(parse_seconds(text)?))
    }

    /// True when a certificate valid from `not_before` to `not_after` (Unix seconds) is
    /// due at `now`.
    pub fn is_due(&self, not_before: i64, not_after: i64, now: i64) -> bool {
        let left = not_after - now;
        match *self {
            RenewWindow::Before(s) => left < s,
            RenewWindow::Fraction(f) => (left as f64) < f * ((not_after - not_before) as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_seconds("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_seconds("30").unwrap(), 30 * 86_400);
        assert_eq!(parse_seconds("12h").unwrap(), 12 * 3_600);
        assert_eq!(parse_seconds("2w").unwrap(), 14 * 86_400);
        assert!(parse_seconds("d").is_err());
        assert!(parse_seconds("5x").is_err());
        assert!(parse_seconds("-5d").is_err());
    }

    #[test]
    fn renew_windows() {
        let w = RenewWindow::parse("30d").unwrap();
        assert!(w.is_due(0, 40 * 86_400, 11 * 86_400));
        assert!(!w.is_due(0, 40 * 86_400, 9 * 86_400));
        let f = RenewWindow::parse("1/3").unwrap();
        assert!(f.is_due(0, 300, 201));
        assert!(!f.is_due(0, 300, 199));
        assert!(RenewWindow::parse("3/2").is_err());
        assert!(RenewWindow::parse("x/2").is_err());
    }
}

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
}

//! Human-friendly durations (`"10s"`, `"250ms"`) and sizes (`"64MiB"`, `"1GB"`).

use std::time::Duration;

/// Parses a duration: a number (decimals allowed) followed by `ms`, `s`, `m` or `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| {
            format!("invalid duration {text:?}: add a unit, e.g. \"{text}s\" (units: ms, s, m, h)")
        })?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("invalid duration {text:?}: expected a number then a unit, e.g. \"10s\"")
    })?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "invalid duration {text:?}: unknown unit {other:?} (units: ms, s, m, h)"
            ))
        }
    };
    let seconds = value * seconds_per_unit;
    if !seconds.is_finite() || seconds > 86_400.0 * 365.0 {
        return Err(format!("invalid duration {text:?}: too long"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a byte size: an integer with an optional unit (`B`, `KB`, `KiB`, `MB`, `MiB`, `GB`, `GiB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number.parse().map_err(|_| {
        format!("invalid size {text:?}: expected an integer then a unit, e.g. \"64MiB\"")
    })?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        other => {
            return Err(format!(
            "invalid size {text:?}: unknown unit {other:?} (units: B, KB, KiB, MB, MiB, GB, GiB)"
        ))
        }
    };
    value
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn durations_without_a_known_unit_are_rejected() {
        assert!(parse_duration("10").unwrap_err().contains("add a unit"));
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_binary_and_decimal() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64 MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
    }

    #[test]
    fn bad_sizes_are_rejected() {
        assert!(parse_size("64 megs").unwrap_err().contains("unknown unit"));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB")
            .unwrap_err()
            .contains("too large"));
    }
}

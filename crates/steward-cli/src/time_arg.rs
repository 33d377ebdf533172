//! `--since` and `--until` values: an age (`90s`, `15m`, `1h`, `2d`, `1w`)
//! counted back from the store's clock, or an RFC 3339 time.

use std::time::Duration;

use steward::store::{MAX_AGO, TimeBound};

/// Parses `90s`, `15m`, `1h`, `2d`, `1w` (whole numbers) as an age, or an
/// RFC 3339 time such as `2026-01-02T03:04:05Z`.
pub fn parse_time_bound(text: &str) -> Result<TimeBound, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(TimeBound::At(at.to_utc()));
    }
    let shape = || {
        format!(
            "`{text}` is neither an age like 90s, 15m, 1h, 2d or 1w \
             nor an RFC 3339 time like 2026-01-02T03:04:05Z"
        )
    };
    if let Some(age) = text.strip_prefix('-') {
        return Err(format!(
            "`{text}`: an age counts back from now and is never negative (try `{age}`)"
        ));
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(shape)?;
    let (number, unit) = text.split_at(split);
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(shape()),
    };
    let too_old = || format!("`{text}` reaches back more than 100 years");
    let number: u64 = match number.parse() {
        Ok(n) => n,
        // Only digits, so the one way to fail is too many of them.
        Err(_) if !number.is_empty() => return Err(too_old()),
        Err(_) => return Err(shape()),
    };
    let age = number
        .checked_mul(unit_secs)
        .map(Duration::from_secs)
        .filter(|age| *age <= MAX_AGO)
        .ok_or_else(too_old)?;
    Ok(TimeBound::Ago(age))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_times_parse_and_nonsense_does_not() {
        let ago = |s| Ok(TimeBound::Ago(Duration::from_secs(s)));
        assert_eq!(parse_time_bound("90s"), ago(90));
        assert_eq!(parse_time_bound("15m"), ago(900));
        assert_eq!(parse_time_bound("1h"), ago(3600));
        assert_eq!(parse_time_bound("2d"), ago(2 * 86_400));
        assert_eq!(parse_time_bound("0s"), ago(0));
        assert!(matches!(
            parse_time_bound("2026-01-02T03:04:05+01:00"),
            Ok(TimeBound::At(_))
        ));
        for bad in [
            "",
            "1",
            "h",
            "1x",
            "-5m",
            "1.5h",
            "1 h",
            "40000d",
            "99999999999999999999s",
        ] {
            assert!(parse_time_bound(bad).is_err(), "{bad:?}");
        }
    }
}

//! Parsing and printing of what users type and read: durations (`10m`, `1h30m`,
//! `never`), sizes, instants, and aligned tables.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use httpcache_core::Expiry;

/// The units a duration may use, longest suffix first so `ms` wins over `m`.
const UNITS: [(&str, u64); 6] =
    [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)];

/// Parses a duration: `0`, or one or more `<number><unit>` with units `ms`, `s`,
/// `m`, `h`, `d`, `w` (`30s`, `10m`, `1h30m`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration (examples: 30s, 10m, 1h30m, 7d)".into());
    }
    let mut rest = text;
    let mut millis: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("'{text}' is not a duration (examples: 30s, 10m, 1h30m, 7d)"));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| format!("'{text}' is too long a duration"))?;
        rest = &rest[digits..];
        let Some((unit, scale)) = UNITS.iter().find(|(unit, _)| rest.starts_with(unit)) else {
            return Err(format!("'{text}' has a number without a unit (use ms, s, m, h, d or w)"));
        };
        rest = &rest[unit.len()..];
        millis = number
            .checked_mul(*scale)
            .and_then(|part| millis.checked_add(part))
            .ok_or_else(|| format!("'{text}' is too long a duration"))?;
    }
    Ok(Duration::from_millis(millis))
}

/// Parses an expiry for `--expire-after`: `never`, `0` (stale at once: revalidate on
/// every use), or a duration.
pub fn parse_expiry(text: &str) -> Result<Expiry, String> {
    if text.trim().eq_ignore_ascii_case("never") {
        return Ok(Expiry::Never);
    }
    let duration = parse_duration(text)?;
    Ok(if duration.is_zero() { Expiry::Immediately } else { Expiry::After(duration) })
}

/// A duration the way [`parse_duration`] reads it, to the second: `1h30m`, `9m58s`, `0s`.
pub fn duration(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if secs >= size {
            let _ = write!(out, "{}{unit}", secs / size);
            secs %= size;
        }
    }
    out
}

/// A short elapsed time for people: `312µs`, `4.1ms`, `1.24s`.
pub fn elapsed(elapsed: Duration) -> String {
    let micros = elapsed.as_micros();
    if micros < 1_000 {
        format!("{micros}µs")
    } else if micros < 1_000_000 {
        format!("{:.1}ms", micros as f64 / 1_000.0)
    } else {
        format!("{:.2}s", elapsed.as_secs_f64())
    }
}

/// A byte count for people: `512 B`, `1.2 KiB`, `3.4 MiB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = next;
    }
    format!("{value:.1} {unit}")
}

/// Seconds since the Unix epoch (negative before it).
fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |secs| -secs),
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01.
fn civil_date(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year; eras are
    // the 400-year Gregorian cycles of 146 097 days.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// Date and time in UTC, with `separator` between them.
fn utc(at: SystemTime, separator: char, suffix: &str) -> String {
    let secs = unix_seconds(at);
    let (year, month, day) = civil_date(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}{separator}{:02}:{:02}:{:02}{suffix}",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60
    )
}

/// An instant for people: `2026-11-21 19:40:12 UTC`.
pub fn instant(at: SystemTime) -> String {
    utc(at, ' ', " UTC")
}

/// An instant for scripts (RFC 3339): `2026-11-21T19:40:12Z`.
pub fn rfc3339(at: SystemTime) -> String {
    utc(at, 'T', "Z")
}

/// An instant relative to `now`: `in 9m58s`, `3m ago`, `now`.
pub fn relative(at: SystemTime, now: SystemTime) -> String {
    match at.duration_since(now) {
        Ok(ahead) if ahead.as_secs() == 0 => "now".into(),
        Ok(ahead) => format!("in {}", duration(ahead)),
        Err(behind) if behind.duration().as_secs() == 0 => "now".into(),
        Err(behind) => format!("{} ago", duration(behind.duration())),
    }
}

/// An instant with its distance from `now`: `2026-11-21 19:40:12 UTC (3m ago)`.
pub fn instant_and_relative(at: SystemTime, now: SystemTime) -> String {
    format!("{} ({})", instant(at), relative(at, now))
}

/// How a column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text.
    Left,
    /// Numbers.
    Right,
}

/// Renders rows under `headers`, columns separated by two spaces; the last column
/// is never padded (so long URLs there do not push anything).
pub fn table(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|(name, _)| name.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|(name, _)| (*name).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            let last = index + 1 == row.len();
            let width = widths.get(index).copied().unwrap_or(0);
            let align = headers.get(index).map_or(Align::Left, |(_, align)| *align);
            if index > 0 {
                line.push_str("  ");
            }
            let _ = match align {
                Align::Left if last => write!(line, "{cell}"),
                Align::Left => write!(line, "{cell:<width$}"),
                Align::Right => write!(line, "{cell:>width$}"),
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        let secs = Duration::from_secs;
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("30s"), Ok(secs(30)));
        assert_eq!(parse_duration("10m"), Ok(secs(600)));
        assert_eq!(parse_duration("1h30m"), Ok(secs(5_400)));
        assert_eq!(parse_duration("7d"), Ok(secs(7 * 86_400)));
        assert_eq!(parse_duration("2w"), Ok(secs(14 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        for bad in ["", "10", "m", "10x", "1h30", "-5m", "99999999999999999999d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn expiries_parse() {
        assert_eq!(parse_expiry("never"), Ok(Expiry::Never));
        assert_eq!(parse_expiry("0"), Ok(Expiry::Immediately));
        assert_eq!(parse_expiry("0s"), Ok(Expiry::Immediately));
        assert_eq!(parse_expiry("10m"), Ok(Expiry::After(Duration::from_secs(600))));
        assert!(parse_expiry("soon").is_err());
    }

    #[test]
    fn durations_print_as_they_parse() {
        for text in ["0s", "30s", "10m", "1h30m", "7d", "1d2h3m4s"] {
            assert_eq!(duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn sizes_and_elapsed() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 20), "5.0 MiB");
        assert_eq!(elapsed(Duration::from_micros(312)), "312µs");
        assert_eq!(elapsed(Duration::from_micros(4_150)), "4.2ms");
        assert_eq!(elapsed(Duration::from_millis(1_240)), "1.24s");
    }

    #[test]
    fn instants_in_utc() {
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(instant(at(1_700_000_000)), "2023-11-14 22:13:20 UTC");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH - Duration::from_secs(86_400)), "1969-12-31T00:00:00Z");
        assert_eq!(relative(at(100), at(40)), "in 1m");
        assert_eq!(relative(at(40), at(100)), "1m ago");
        assert_eq!(relative(at(40), at(40)), "now");
    }

    #[test]
    fn tables_align() {
        let rendered = table(
            &[("SIZE", Align::Right), ("STATE", Align::Left), ("URL", Align::Left)],
            &[
                vec!["5 B".into(), "fresh".into(), "http://a/".into()],
                vec!["1.5 KiB".into(), "stale".into(), "http://bb/".into()],
            ],
        );
        assert_eq!(rendered, "   SIZE  STATE  URL\n    5 B  fresh  http://a/\n1.5 KiB  stale  http://bb/\n");
    }
}

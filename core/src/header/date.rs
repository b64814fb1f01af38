//! HTTP dates (RFC 9110 §5.6.7): parse IMF-fixdate, obsolete RFC 850 and asctime
//! forms; always emit IMF-fixdate with `GMT`.
//!
//! Parsing choices (the parser is our own, not `httpdate`'s, so that it never panics
//! and so that formatting covers every `SystemTime`):
//! * leading and trailing OWS is trimmed; anything else outside the grammar is rejected;
//! * day and month names and `GMT` are matched ASCII case-insensitively; the day name
//!   must be a real one but is not checked against the date;
//! * fields are range-checked (day within its month, hour ≤ 23, minute ≤ 59,
//!   second ≤ 60; a leap second 60 rolls into the next minute, except on
//!   9999-12-31 where it stays at 23:59:59, the last instant the format can print);
//! * RFC 850's two-digit year uses a fixed pivot, as the `httpdate` crate does, since
//!   the core reads no clock: `00`–`69` are 2000–2069 and `70`–`99` are 1970–1999.
//!   §5.6.7's rule ("more than 50 years in the future" means the past century) needs
//!   "now"; the pivot agrees with it except for the few years just past `69` that the
//!   rule would now place in the 2070s (in 2026: `70`–`76`). No valid date precedes
//!   1970 here anyway (next point), and RFC 850 dates are obsolete;
//! * dates before 1970-01-01 are not valid here (`None`): [`date_header`] treats them
//!   as absent and [`expires`] as [`ExpiresValue::Invalid`] (already expired).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::header::{EXPIRES, HeaderName};

use super::trim_ows;

const DAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAY_NAMES: [&str; 7] =
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTH_NAMES: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Seconds from the epoch to 9999-12-31T23:59:59Z, the last instant IMF-fixdate's
/// four-digit year can print.
const MAX_FORMATTABLE_SECONDS: u64 = 253_402_300_799;

/// A broken-down UTC timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
}

impl Civil {
    /// Seconds since the epoch, `None` before 1970 or when a field is out of range.
    fn to_epoch_seconds(self) -> Option<u64> {
        if self.year < 1970
            || !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(self.year, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 60
        {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day)?;
        Some(days * 86_400 + self.hour * 3_600 + self.minute * 60 + self.second)
    }
}

fn is_leap_year(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian), for years from 1970.
fn days_from_civil(year: u64, month: u64, day: u64) -> Option<u64> {
    let years_before = year.checked_sub(1970)?;
    let leap_days = |y: u64| y / 4 - y / 100 + y / 400;
    // Leap days in [1970, year): those up to year-1 minus those up to 1969.
    let leaps = leap_days(year - 1) - leap_days(1969);
    // Days in the months before `month` of a common year (a table, not a loop: this
    // runs on every cache hit, for `Date`).
    const BEFORE_MONTH: [u64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let index = usize::try_from(month.checked_sub(1)?).ok().filter(|&i| i < 12)?;
    let leap_day = u64::from(month > 2 && is_leap_year(year));
    Some(years_before * 365 + leaps + BEFORE_MONTH[index] + leap_day + day - 1)
}

/// The date of day `days` after 1970-01-01: (year, month, day).
fn civil_from_days(mut days: u64) -> (u64, u64, u64) {
    // 400 Gregorian years are exactly 146 097 days; skip whole eras first.
    let mut year = 1970 + 400 * (days / 146_097);
    days %= 146_097;
    loop {
        let length = if is_leap_year(year) { 366 } else { 365 };
        if days < length {
            break;
        }
        days -= length;
        year += 1;
    }
    let mut month = 1;
    while days >= days_in_month(year, month) {
        days -= days_in_month(year, month);
        month += 1;
    }
    (year, month, days + 1)
}

/// Index (0-based) of `name` in `names`, ASCII case-insensitively.
fn lookup(names: &[&str], name: &[u8]) -> Option<usize> {
    names.iter().position(|candidate| candidate.as_bytes().eq_ignore_ascii_case(name))
}

/// A three-letter name folded to lower case and packed in one word, so that a
/// name matches with one comparison per candidate.
const fn packed(name: &[u8; 3]) -> u32 {
    ((name[0] | 0x20) as u32) << 16 | ((name[1] | 0x20) as u32) << 8 | (name[2] | 0x20) as u32
}

/// The packed [`DAY_NAMES`] and [`MONTH_NAMES`].
const PACKED_DAYS: [u32; 7] = [
    packed(b"Sun"),
    packed(b"Mon"),
    packed(b"Tue"),
    packed(b"Wed"),
    packed(b"Thu"),
    packed(b"Fri"),
    packed(b"Sat"),
];
const PACKED_MONTHS: [u32; 12] = [
    packed(b"Jan"),
    packed(b"Feb"),
    packed(b"Mar"),
    packed(b"Apr"),
    packed(b"May"),
    packed(b"Jun"),
    packed(b"Jul"),
    packed(b"Aug"),
    packed(b"Sep"),
    packed(b"Oct"),
    packed(b"Nov"),
    packed(b"Dec"),
];

/// Index (0-based) of the three-letter `name` among `packed` names, ASCII
/// case-insensitively. Setting bit 0x20 maps a byte to a lower-case letter only when it
/// is that letter in either case, so no other byte can pass for one.
fn lookup3(packed_names: &[u32], name: &[u8]) -> Option<usize> {
    let name: &[u8; 3] = name.try_into().ok()?;
    let wanted = packed(name);
    packed_names.iter().position(|&candidate| candidate == wanted)
}

/// The value of exactly `N` ASCII digits.
fn digits<const N: usize>(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != N || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0, |acc, &b| acc * 10 + u64::from(b - b'0')))
}

/// `hour ":" minute ":" second` (8 bytes).
fn time_of_day(bytes: &[u8]) -> Option<(u64, u64, u64)> {
    match bytes {
        [h1, h2, b':', m1, m2, b':', s1, s2] => {
            Some((digits::<2>(&[*h1, *h2])?, digits::<2>(&[*m1, *m2])?, digits::<2>(&[*s1, *s2])?))
        }
        _ => None,
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`
fn parse_imf_fixdate(s: &[u8]) -> Option<Civil> {
    if s.len() != 29 || s[3] != b',' || s[4] != b' ' || s[7] != b' ' || s[11] != b' ' {
        return None;
    }
    if s[16] != b' ' || s[25] != b' ' || !s[26..].eq_ignore_ascii_case(b"GMT") {
        return None;
    }
    lookup3(&PACKED_DAYS, &s[..3])?;
    let (hour, minute, second) = time_of_day(&s[17..25])?;
    Some(Civil {
        year: digits::<4>(&s[12..16])?,
        month: lookup3(&PACKED_MONTHS, &s[8..11])? as u64 + 1,
        day: digits::<2>(&s[5..7])?,
        hour,
        minute,
        second,
    })
}

/// `Sunday, 06-Nov-94 08:49:37 GMT`
fn parse_rfc850_date(s: &[u8]) -> Option<Civil> {
    let comma = s.iter().position(|&b| b == b',')?;
    lookup(&LONG_DAY_NAMES, &s[..comma])?;
    let rest = &s[comma..];
    // ", " date2 (9) " " time (8) " GMT"
    if rest.len() != 24 || rest[1] != b' ' || rest[4] != b'-' || rest[8] != b'-' {
        return None;
    }
    if rest[11] != b' ' || rest[20] != b' ' || !rest[21..].eq_ignore_ascii_case(b"GMT") {
        return None;
    }
    let two_digit_year = digits::<2>(&rest[9..11])?;
    let year = if two_digit_year < 70 { 2000 + two_digit_year } else { 1900 + two_digit_year };
    let (hour, minute, second) = time_of_day(&rest[12..20])?;
    Some(Civil {
        year,
        month: lookup3(&PACKED_MONTHS, &rest[5..8])? as u64 + 1,
        day: digits::<2>(&rest[2..4])?,
        hour,
        minute,
        second,
    })
}

/// `Sun Nov  6 08:49:37 1994`
fn parse_asctime(s: &[u8]) -> Option<Civil> {
    if s.len() != 24 || s[3] != b' ' || s[7] != b' ' || s[10] != b' ' || s[19] != b' ' {
        return None;
    }
    lookup3(&PACKED_DAYS, &s[..3])?;
    let day = match &s[8..10] {
        [b' ', d] => digits::<1>(&[*d])?,
        two => digits::<2>(two)?,
    };
    let (hour, minute, second) = time_of_day(&s[11..19])?;
    Some(Civil {
        year: digits::<4>(&s[20..24])?,
        month: lookup3(&PACKED_MONTHS, &s[4..7])? as u64 + 1,
        day,
        hour,
        minute,
        second,
    })
}

/// Parses an HTTP date in any of the three forms; `None` when it is not one.
///
/// Dates before 1970 are `None` too (see the module documentation for the other
/// choices: case, OWS, RFC 850 years).
pub fn parse_http_date(value: &[u8]) -> Option<SystemTime> {
    let value = trim_ows(value);
    let civil =
        parse_imf_fixdate(value).or_else(|| parse_rfc850_date(value)).or_else(|| parse_asctime(value))?;
    // A leap second on 9999-12-31 would land past what IMF-fixdate can print; cap it
    // so that every parsed date formats and parses back to itself.
    let seconds = civil.to_epoch_seconds()?.min(MAX_FORMATTABLE_SECONDS);
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Formats `time` as IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`
/// (sub-second parts dropped; times before 1970 print as the epoch; times after the
/// year 9999 print as `Fri, 31 Dec 9999 23:59:59 GMT`, the last one the format holds).
pub fn format_http_date(time: SystemTime) -> String {
    let seconds =
        time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()).min(MAX_FORMATTABLE_SECONDS);
    let days = seconds / 86_400;
    let (year, month, day) = civil_from_days(days);
    let in_day = seconds % 86_400;
    // 1970-01-01 was a Thursday (index 4 with Sunday = 0).
    let weekday = (days + 4) % 7;
    // Indexing cannot fail: weekday < 7 and civil_from_days yields 1 <= month <= 12.
    let (weekday, month_name) = (DAY_NAMES[weekday as usize], MONTH_NAMES[(month - 1) as usize]);
    format!(
        "{weekday}, {day:02} {month_name} {year:04} {:02}:{:02}:{:02} GMT",
        in_day / 3_600,
        in_day % 3_600 / 60,
        in_day % 60,
    )
}

/// The date in header `name` (e.g. `Date`, `Last-Modified`): `None` when absent,
/// invalid, or present more than once with different values.
pub fn date_header(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let mut found = None;
    for line in headers.get_all(name) {
        let time = parse_http_date(line.as_bytes())?;
        if found.is_some_and(|earlier| earlier != time) {
            return None;
        }
        found = Some(time);
    }
    found
}

/// What `Expires` says (RFC 9111 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiresValue {
    /// A valid date.
    At(SystemTime),
    /// Present but invalid (including `0`, or several lines that disagree):
    /// the response is already expired.
    Invalid,
}

/// The `Expires` header, `None` when absent.
pub fn expires(headers: &HeaderMap) -> Option<ExpiresValue> {
    if !headers.contains_key(EXPIRES) {
        return None;
    }
    Some(date_header(headers, &EXPIRES).map_or(ExpiresValue::Invalid, ExpiresValue::At))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http::header::{DATE, LAST_MODIFIED};
    use proptest::prelude::*;

    /// 1994-11-06T08:49:37Z, the RFC 9110 §5.6.7 example.
    fn example() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn map(name: &HeaderName, lines: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(name.clone(), HeaderValue::from_bytes(line).expect("test value"));
        }
        headers
    }

    // RFC 9110 §5.6.7: the three formats of the example all denote the same instant.
    #[test]
    fn parses_all_three_formats_rfc9110_5_6_7() {
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(example()));
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(example()));
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), Some(example()));
        assert_eq!(
            parse_http_date(b"Sun Nov 16 08:49:37 1994"),
            Some(example() + Duration::from_secs(10 * 86_400))
        );
    }

    // RFC 9110 §5.6.7: IMF-fixdate is what we emit, with GMT.
    #[test]
    fn formats_imf_fixdate_rfc9110_5_6_7() {
        assert_eq!(format_http_date(example()), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(format_http_date(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_http_date(at(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(format_http_date(at(4_107_542_399)), "Sun, 28 Feb 2100 23:59:59 GMT");
        assert_eq!(format_http_date(at(4_107_542_400)), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(format_http_date(example() + Duration::from_millis(999)), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    // RFC 9110 §5.6.7 (formatting limits): before 1970 prints the epoch; after 9999
    // prints the last instant the four-digit year holds.
    #[test]
    fn format_clamps_out_of_range_rfc9110_5_6_7() {
        assert_eq!(format_http_date(UNIX_EPOCH - Duration::from_secs(10)), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(format_http_date(at(MAX_FORMATTABLE_SECONDS)), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(format_http_date(at(MAX_FORMATTABLE_SECONDS * 4)), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(parse_http_date(b"Fri, 31 Dec 9999 23:59:59 GMT"), Some(at(MAX_FORMATTABLE_SECONDS)));
    }

    // Found by the http_date fuzz target: a leap second at the very end of year 9999
    // must not parse past what format_http_date can print (round trip, RFC 9110 §5.6.7).
    #[test]
    fn leap_second_at_year_9999_round_trips_rfc9110_5_6_7() {
        let parsed = parse_http_date(b"Sun, 31 Dec 9999 23:59:60 GMT");
        assert_eq!(parsed, Some(at(MAX_FORMATTABLE_SECONDS)));
        let printed = format_http_date(at(MAX_FORMATTABLE_SECONDS));
        assert_eq!(parse_http_date(printed.as_bytes()), parsed);
    }

    // RFC 9110 §5.6.7: two-digit years, with the documented fixed pivot at 70.
    #[test]
    fn rfc850_two_digit_year_pivot_rfc9110_5_6_7() {
        assert_eq!(parse_http_date(b"Thursday, 01-Jan-70 00:00:00 GMT"), Some(UNIX_EPOCH));
        assert_eq!(parse_http_date(b"Friday, 31-Dec-99 23:59:59 GMT"), Some(at(946_684_799)));
        assert_eq!(parse_http_date(b"Saturday, 01-Jan-00 00:00:00 GMT"), Some(at(946_684_800)));
        assert_eq!(
            parse_http_date(b"Sunday, 01-Jan-69 00:00:00 GMT"),
            parse_http_date(b"Tue, 01 Jan 2069 00:00:00 GMT")
        );
    }

    // RFC 9110 §5.6.7 says a recipient MUST read a two-digit year that "appears to be
    // more than 50 years in the future" as the past century's, and so, received in 2026,
    // `70`–`76` as 2070–2076. The fixed pivot reads them as 1970–1976 (module docs). A fix
    // needs the receipt time in the parser (the core reads no clock), and would read the
    // legacy "already expired" `Expires: Thursday, 01-Jan-70 00:00:00 GMT` as fresh until
    // 2070 (its weekday, a Thursday in 1970 and a Wednesday in 2070, could settle it).
    #[test]
    #[ignore = "documented deviation: RFC 850 years use a fixed pivot, not the 50-year rule against the receipt time"]
    fn rfc850_two_digit_year_follows_the_50_year_rule_rfc9110_5_6_7() {
        // 2026-11-23, when this was written: `76` is 50 years ahead, not more.
        assert_eq!(
            parse_http_date(b"Monday, 02-Mar-76 00:00:00 GMT"),
            parse_http_date(b"Mon, 02 Mar 2076 00:00:00 GMT")
        );
    }

    // RFC 9110 §5.6.7: surrounding whitespace (OWS, RFC 9110 §5.5) is not part of the value.
    #[test]
    fn trims_ows_rfc9110_5_5() {
        assert_eq!(parse_http_date(b"  Sun, 06 Nov 1994 08:49:37 GMT\t"), Some(example()));
        assert_eq!(parse_http_date(b" Sun Nov  6 08:49:37 1994 "), Some(example()));
    }

    // RFC 9110 §5.6.7: a leap second is allowed and rolls into the next minute.
    #[test]
    fn leap_second_rfc9110_5_6_7() {
        assert_eq!(
            parse_http_date(b"Sat, 31 Dec 2016 23:59:60 GMT"),
            parse_http_date(b"Sun, 01 Jan 2017 00:00:00 GMT")
        );
    }

    // Case-insensitive names (tolerance; RFC 9110 §5.6.7 says case-sensitive, we accept both).
    #[test]
    fn day_counts_across_months_and_leap_years_rfc9110_5_6_7() {
        let day = |text: &str| {
            parse_http_date(text.as_bytes())
                .map(|time| time.duration_since(UNIX_EPOCH).unwrap().as_secs() / 86_400)
        };
        // Day numbers since 1970-01-01, counted independently (31 + 28 = 59 in a common year).
        assert_eq!(day("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(day("Sun, 01 Mar 1970 00:00:00 GMT"), Some(59));
        assert_eq!(day("Tue, 31 Dec 1970 00:00:00 GMT"), Some(364));
        assert_eq!(day("Thu, 29 Feb 2024 00:00:00 GMT"), Some(19_782));
        assert_eq!(day("Fri, 01 Mar 2024 00:00:00 GMT"), Some(19_783));
        assert_eq!(day("Wed, 01 Mar 2023 00:00:00 GMT"), Some(19_417));
        assert_eq!(day("Wed, 29 Feb 2023 00:00:00 GMT"), None, "2023 is not a leap year");
        assert_eq!(day("Tue, 29 Feb 2000 00:00:00 GMT"), Some(11_016), "2000 is a leap year");
        assert_eq!(day("Thu, 29 Feb 2100 00:00:00 GMT"), None, "2100 is not");
        // Every day of a leap year and of a common year formats and parses back.
        for start in [19_358u64, 19_723] {
            for offset in 0..366 {
                let time = UNIX_EPOCH + Duration::from_secs((start + offset) * 86_400);
                assert_eq!(parse_http_date(format_http_date(time).as_bytes()), Some(time));
            }
        }
    }

    #[test]
    fn names_must_be_letters_rfc9110_5_6_7() {
        // Names are folded to lower case by setting bit 0x20: only the letter itself, in
        // either case, folds to a given lower-case letter; every other byte is refused.
        assert!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT").is_some());
        assert!(parse_http_date(b"sUN, 06 NOV 1994 08:49:37 GMT").is_some());
        for byte in (0u8..=255).filter(|b| !b"Oo".contains(b)) {
            let mut text = *b"Sun, 06 Nov 1994 08:49:37 GMT";
            text[9] = byte;
            assert!(parse_http_date(&text).is_none(), "month N{}v", byte.escape_ascii());
            let mut text = *b"Sun, 06 Nov 1994 08:49:37 GMT";
            text[1] = byte;
            if !b"Uu".contains(&byte) {
                assert!(parse_http_date(&text).is_none(), "day S{}n", byte.escape_ascii());
            }
        }
    }

    #[test]
    fn names_case_insensitive_rfc9110_5_6_7() {
        assert_eq!(parse_http_date(b"SUN, 06 NOV 1994 08:49:37 gmt"), Some(example()));
        assert_eq!(parse_http_date(b"sunday, 06-nov-94 08:49:37 GMT"), Some(example()));
    }

    // RFC 9110 §5.6.7: anything else is not an HTTP-date.
    #[test]
    fn rejects_garbage_rfc9110_5_6_7() {
        for bad in [
            &b""[..],
            b"   ",
            b"0",
            b"-1",
            b"garbage",
            b"Sun, 06 Nov 1994 08:49:37 UTC",
            b"Sun, 06 Nov 1994 08:49:37 +0000",
            b"Sun, 06 Nov 1994 08:49:37",
            b"Sun, 6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 94 08:49:37 GMT",
            b"Sun, 06 Nov 1994 8:49:37 GMT",
            b"Xyz, 06 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Foo 1994 08:49:37 GMT",
            b"Sun, 31 Nov 1994 08:49:37 GMT",
            b"Sun, 29 Feb 1900 08:49:37 GMT",
            b"Mon, 29 Feb 2100 00:00:00 GMT",
            b"Sun, 00 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov 1994 24:00:00 GMT",
            b"Sun, 06 Nov 1994 08:60:00 GMT",
            b"Sun, 06 Nov 1994 08:49:61 GMT",
            b"Sun, 06 Nov 1994 08:49:37 GMTx",
            b"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
            b"Sun, -6 Nov 1994 08:49:37 GMT",
            b"Sun, 06 Nov +994 08:49:37 GMT",
            b"Sunday, 06-Nov-1994 08:49:37 GMT",
            b"Sundae, 06-Nov-94 08:49:37 GMT",
            b"Sun Nov 6 08:49:37 1994",
            b"Sun Nov  6 08:49:37 94",
            b"Sun, 06 Nov 1994 08:49:37 G\xffT",
            b"\xff\xfe\xfd",
            b"Sun, \xd9\xa0\xd9\xa6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    // Documented choice: dates before 1970 are not valid.
    #[test]
    fn rejects_before_1970_rfc9110_5_6_7() {
        assert_eq!(parse_http_date(b"Wed, 31 Dec 1969 23:59:59 GMT"), None);
        assert_eq!(parse_http_date(b"Mon, 01 Jan 0001 00:00:00 GMT"), None);
        assert_eq!(parse_http_date(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(UNIX_EPOCH));
    }

    // RFC 9111 §4.2.3 (Date) / RFC 9110 §8.8.2 (Last-Modified): one agreed valid value.
    #[test]
    fn date_header_rfc9111_4_2_3() {
        let date = b"Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(date_header(&map(&DATE, &[date]), &DATE), Some(example()));
        assert_eq!(date_header(&map(&LAST_MODIFIED, &[date]), &LAST_MODIFIED), Some(example()));
        assert_eq!(date_header(&map(&LAST_MODIFIED, &[date]), &DATE), None);
        assert_eq!(date_header(&HeaderMap::new(), &DATE), None);
        // Repeats that agree (even in different formats) are fine; disagreeing ones are not.
        assert_eq!(date_header(&map(&DATE, &[date, b"Sun Nov  6 08:49:37 1994"]), &DATE), Some(example()));
        assert_eq!(date_header(&map(&DATE, &[date, b"Mon, 07 Nov 1994 08:49:37 GMT"]), &DATE), None);
        // Invalid, empty, pre-1970: absent.
        assert_eq!(date_header(&map(&DATE, &[b"yesterday"]), &DATE), None);
        assert_eq!(date_header(&map(&DATE, &[b""]), &DATE), None);
        assert_eq!(date_header(&map(&DATE, &[b"Wed, 31 Dec 1969 23:59:59 GMT"]), &DATE), None);
        assert_eq!(date_header(&map(&DATE, &[date, b"junk"]), &DATE), None);
    }

    // RFC 9111 §5.3: a valid Expires is a date; absent is None.
    #[test]
    fn expires_valid_rfc9111_5_3() {
        let headers = map(&EXPIRES, &[b"Sun, 06 Nov 1994 08:49:37 GMT"]);
        assert_eq!(expires(&headers), Some(ExpiresValue::At(example())));
        assert_eq!(expires(&HeaderMap::new()), None);
        assert_eq!(expires(&map(&DATE, &[b"Sun, 06 Nov 1994 08:49:37 GMT"])), None);
    }

    // RFC 9111 §5.3: an invalid Expires, especially "0", means already expired.
    #[test]
    fn expires_invalid_is_expired_rfc9111_5_3() {
        for bad in [&b"0"[..], b"-1", b"", b"never", b"Wed, 31 Dec 1969 23:59:59 GMT", b"\xff"] {
            assert_eq!(expires(&map(&EXPIRES, &[bad])), Some(ExpiresValue::Invalid), "{bad:?}");
        }
        let disagree = map(&EXPIRES, &[b"Sun, 06 Nov 1994 08:49:37 GMT", b"Mon, 07 Nov 1994 08:49:37 GMT"]);
        assert_eq!(expires(&disagree), Some(ExpiresValue::Invalid));
    }

    proptest! {
        // RFC 9110 §5.6.7: format then parse gives the same instant to the second.
        #[test]
        fn format_parse_round_trip_rfc9110_5_6_7(seconds in 0..=MAX_FORMATTABLE_SECONDS, nanos in 0u32..1_000_000_000) {
            let time = UNIX_EPOCH + Duration::new(seconds, nanos);
            let text = format_http_date(time);
            prop_assert_eq!(text.len(), 29);
            prop_assert_eq!(parse_http_date(text.as_bytes()), Some(at(seconds)));
        }

        // RFC 9110 §5.6.7: the three formats of one instant agree (RFC 850 within its
        // 1970-2069 window).
        #[test]
        fn three_formats_agree_rfc9110_5_6_7(seconds in 0u64..3_155_760_000) {
            let time = at(seconds);
            let imf = format_http_date(time);
            // "Sun, 06 Nov 1994 08:49:37 GMT" -> the other two forms of the same fields.
            let (weekday, day, month, year, clock) = (&imf[..3], &imf[5..7], &imf[8..11], &imf[12..16], &imf[17..25]);
            let long_day = LONG_DAY_NAMES[DAY_NAMES.iter().position(|d| *d == weekday).expect("weekday from formatter")];
            let rfc850 = format!("{long_day}, {day}-{month}-{} {clock} GMT", &year[2..]);
            let asctime = format!("{weekday} {month} {:>2} {clock} {year}", day.trim_start_matches('0'));
            prop_assert_eq!(parse_http_date(rfc850.as_bytes()), Some(time), "{}", rfc850);
            prop_assert_eq!(parse_http_date(asctime.as_bytes()), Some(time), "{}", asctime);
        }

        // Tolerance: arbitrary bytes never panic, and a parsed date re-formats to a
        // date that parses to the same instant.
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Some(time) = parse_http_date(&bytes) {
                prop_assert_eq!(parse_http_date(format_http_date(time).as_bytes()), Some(time));
            }
        }

        // Near-miss inputs (the right shape, random digits) never panic and any parsed
        // value lies in the representable range.
        #[test]
        fn never_panics_on_date_shaped_input(text in "(Sun|Mon|Sunday|Xyz), [0-9]{2}[ -](Nov|Feb|Foo)[ -][0-9]{2,4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT") {
            if let Some(time) = parse_http_date(text.as_bytes()) {
                let seconds = time.duration_since(UNIX_EPOCH).map_or(u64::MAX, |d| d.as_secs());
                prop_assert!(seconds <= MAX_FORMATTABLE_SECONDS + 1);
            }
        }
    }
}

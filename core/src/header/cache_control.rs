//! `Cache-Control` request and response directives (RFC 9111 §5.2), RFC 5861's
//! `stale-while-revalidate` / `stale-if-error`, and `Pragma: no-cache` (§5.4).
//!
//! All `Cache-Control` lines of a message are combined (each line is tokenised on its
//! own, so an unterminated quoted string cannot swallow the next line). Directive names
//! are case-insensitive; arguments may be tokens or quoted strings (§5.2: `max-age="60"`
//! is accepted); commas inside quoted strings do not split directives; unknown
//! directives are ignored.
//!
//! Invalid arguments and duplicates (RFC 9111 §4.2.1, §5.2):
//! * a delta-seconds directive (`max-age`, `s-maxage`, `min-fresh`, `max-stale=N`,
//!   `stale-while-revalidate`, `stale-if-error`) with an invalid argument (`1.5`, `-1`,
//!   empty, unterminated quote) counts as absent, except a response's `max-age` and
//!   `s-maxage`, which count as `Duration::ZERO` (stale: §4.2.1, invalid freshness
//!   information, where absent could let `Expires` or a heuristic make it fresh);
//! * `max-age` or `s-maxage` present more than once with different values counts as
//!   `Duration::ZERO` (stale), as §4.2.1 allows; equal repeats are harmless;
//! * any other repeated directive: the first valid occurrence wins;
//! * flag directives (`no-store`, `public`, `must-revalidate`, ...) count as present
//!   whatever argument they carry;
//! * `no-cache` / `private`: the bare form is [`FieldScope::All`]; field lists from
//!   several occurrences are merged; a bare occurrence anywhere wins; a field list
//!   with no valid field name (empty, malformed, unterminated) counts as
//!   [`FieldScope::All`], the most restrictive reading (§4.2.1);
//! * whitespace where a comma belongs (`no-store no-cache`, `max-age=60 no-store`)
//!   ends the element, and the next token is read as the next directive, so that a
//!   missing comma never hides a restriction; an argument ended that way is invalid.

use std::borrow::Cow;
use std::time::Duration;

use http::header::{CACHE_CONTROL, PRAGMA};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::{is_ows, is_tchar, parse_delta_seconds, pragma_no_cache, split_list};

/// The scope of `no-cache` and `private`: the whole response, or only some fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldScope {
    /// The directive without an argument: applies to the whole response.
    All,
    /// `no-cache="a, b"` / `private="a, b"`: applies to these fields only.
    Fields(Vec<HeaderName>),
}

/// Response directives (RFC 9111 §5.2.2, RFC 5861).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseDirectives {
    /// `max-age`.
    pub max_age: Option<Duration>,
    /// `s-maxage` (shared caches only).
    pub s_maxage: Option<Duration>,
    /// `no-cache` or `no-cache="fields"`.
    pub no_cache: Option<FieldScope>,
    /// `no-store`.
    pub no_store: bool,
    /// `private` or `private="fields"`.
    pub private: Option<FieldScope>,
    /// `public`.
    pub public: bool,
    /// `must-revalidate`.
    pub must_revalidate: bool,
    /// `proxy-revalidate` (shared caches only).
    pub proxy_revalidate: bool,
    /// `must-understand`.
    pub must_understand: bool,
    /// `no-transform`.
    pub no_transform: bool,
    /// `immutable` (RFC 8246).
    pub immutable: bool,
    /// `stale-while-revalidate` (RFC 5861 §3).
    pub stale_while_revalidate: Option<Duration>,
    /// `stale-if-error` (RFC 5861 §4).
    pub stale_if_error: Option<Duration>,
}

impl ResponseDirectives {
    /// [`ResponseDirectives::line_may_restrict_fresh_use`] over every `Cache-Control`
    /// line of `headers` (the reference the decision's one pass is tested against).
    #[cfg(test)]
    pub(crate) fn may_restrict_fresh_use(headers: &HeaderMap) -> bool {
        headers.get_all(CACHE_CONTROL).iter().any(Self::line_may_restrict_fresh_use)
    }

    /// Whether a `Cache-Control` line may hold `no-store`, `no-cache` or `immutable`,
    /// the only directives that the use of a *fresh* stored response depends on (RFC
    /// 9111 §5.2.2.4, §5.2.2.5; RFC 8246). A scan for `no-` and `imm` in any case,
    /// without tokenising: it may say yes when none of them is there (inside a quoted
    /// argument, say), never no when one is. A hit skips the full parse when no line
    /// says yes; the decision makes this scan in its one pass over the stored fields.
    pub(crate) fn line_may_restrict_fresh_use(line: &HeaderValue) -> bool {
        // Each byte is tested first on its own (most fail there), and only then with
        // the two before it. Setting bit 0x20 maps a byte to a lower-case letter only
        // when it is that letter in either case.
        let bytes = line.as_bytes();
        (2..bytes.len()).any(|i| {
            let (first, second, third) = (bytes[i - 2] | 0x20, bytes[i - 1] | 0x20, bytes[i]);
            (third == b'-' && first == b'n' && second == b'o')
                || (third | 0x20 == b'm' && first == b'i' && second == b'm')
        })
    }

    /// The directives of all `Cache-Control` lines in `headers`.
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut parsed = Self::default();
        for line in headers.get_all(CACHE_CONTROL) {
            for directive in directives(line.as_bytes()) {
                let name = directive.name;
                let argument = &directive.argument;
                // An invalid lifetime (`max-age=-1`, `max-age=1.5`, `max-age` alone) is
                // zero, not absent: RFC 9111 §4.2.1 encourages treating a response with
                // invalid freshness information as stale, where an absent one could let
                // `Expires` or a heuristic make it fresh.
                if name.eq_ignore_ascii_case(b"max-age") {
                    merge_conflict_is_stale(&mut parsed.max_age, Some(argument.lifetime()));
                } else if name.eq_ignore_ascii_case(b"s-maxage") {
                    merge_conflict_is_stale(&mut parsed.s_maxage, Some(argument.lifetime()));
                } else if name.eq_ignore_ascii_case(b"no-cache") {
                    merge_scope(&mut parsed.no_cache, argument.field_scope());
                } else if name.eq_ignore_ascii_case(b"no-store") {
                    parsed.no_store = true;
                } else if name.eq_ignore_ascii_case(b"private") {
                    merge_scope(&mut parsed.private, argument.field_scope());
                } else if name.eq_ignore_ascii_case(b"public") {
                    parsed.public = true;
                } else if name.eq_ignore_ascii_case(b"must-revalidate") {
                    parsed.must_revalidate = true;
                } else if name.eq_ignore_ascii_case(b"proxy-revalidate") {
                    parsed.proxy_revalidate = true;
                } else if name.eq_ignore_ascii_case(b"must-understand") {
                    parsed.must_understand = true;
                } else if name.eq_ignore_ascii_case(b"no-transform") {
                    parsed.no_transform = true;
                } else if name.eq_ignore_ascii_case(b"immutable") {
                    parsed.immutable = true;
                } else if name.eq_ignore_ascii_case(b"stale-while-revalidate") {
                    merge_first(&mut parsed.stale_while_revalidate, argument.delta_seconds());
                } else if name.eq_ignore_ascii_case(b"stale-if-error") {
                    merge_first(&mut parsed.stale_if_error, argument.delta_seconds());
                }
            }
        }
        parsed
    }
}

/// `max-stale` with or without a value (RFC 9111 §5.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: any staleness is acceptable.
    Any,
    /// `max-stale=N`.
    AtMost(Duration),
}

/// Request directives (RFC 9111 §5.2.1, RFC 5861 §4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestDirectives {
    /// `max-age`.
    pub max_age: Option<Duration>,
    /// `max-stale`.
    pub max_stale: Option<MaxStale>,
    /// `min-fresh`.
    pub min_fresh: Option<Duration>,
    /// `no-cache`, or `Pragma: no-cache` when there is no `Cache-Control` (§5.4).
    pub no_cache: bool,
    /// `no-store`.
    pub no_store: bool,
    /// `no-transform`.
    pub no_transform: bool,
    /// `only-if-cached`.
    pub only_if_cached: bool,
    /// `stale-if-error` (RFC 5861 §4).
    pub stale_if_error: Option<Duration>,
}

impl RequestDirectives {
    /// The directives of all `Cache-Control` lines in `headers`, plus `Pragma` (§5.4).
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut parsed = Self::default();
        if headers.is_empty() {
            // Most requests carry no header fields of their own: no lookups.
            return parsed;
        }
        for line in headers.get_all(CACHE_CONTROL) {
            for directive in directives(line.as_bytes()) {
                let name = directive.name;
                let argument = &directive.argument;
                if name.eq_ignore_ascii_case(b"max-age") {
                    merge_conflict_is_stale(&mut parsed.max_age, argument.delta_seconds());
                } else if name.eq_ignore_ascii_case(b"max-stale") {
                    let max_stale = match argument {
                        Argument::Absent => Some(MaxStale::Any),
                        _ => argument.delta_seconds().map(MaxStale::AtMost),
                    };
                    merge_first(&mut parsed.max_stale, max_stale);
                } else if name.eq_ignore_ascii_case(b"min-fresh") {
                    merge_first(&mut parsed.min_fresh, argument.delta_seconds());
                } else if name.eq_ignore_ascii_case(b"no-cache") {
                    parsed.no_cache = true;
                } else if name.eq_ignore_ascii_case(b"no-store") {
                    parsed.no_store = true;
                } else if name.eq_ignore_ascii_case(b"no-transform") {
                    parsed.no_transform = true;
                } else if name.eq_ignore_ascii_case(b"only-if-cached") {
                    parsed.only_if_cached = true;
                } else if name.eq_ignore_ascii_case(b"stale-if-error") {
                    merge_first(&mut parsed.stale_if_error, argument.delta_seconds());
                }
            }
        }
        // RFC 9111 §5.4: Pragma counts only when Cache-Control is absent altogether.
        if !headers.contains_key(CACHE_CONTROL) && headers.contains_key(PRAGMA) {
            parsed.no_cache |= pragma_no_cache(headers);
        }
        parsed
    }
}

/// Keeps the first valid value (RFC 9111 §4.2.1: "the first occurrence should be used").
fn merge_first<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// Keeps the value while repeats agree; a disagreeing repeat makes it
/// `Duration::ZERO`, i.e. stale (RFC 9111 §4.2.1).
fn merge_conflict_is_stale(slot: &mut Option<Duration>, value: Option<Duration>) {
    match (*slot, value) {
        (_, None) => {}
        (None, Some(new)) => *slot = Some(new),
        (Some(old), Some(new)) if old == new => {}
        (Some(_), Some(_)) => *slot = Some(Duration::ZERO),
    }
}

/// Merges `no-cache` / `private` occurrences: any bare one wins, field lists unite.
fn merge_scope(slot: &mut Option<FieldScope>, scope: FieldScope) {
    match (slot.as_mut(), scope) {
        (None, scope) => *slot = Some(scope),
        (Some(FieldScope::All), _) => {}
        (Some(existing), FieldScope::All) => *existing = FieldScope::All,
        (Some(FieldScope::Fields(existing)), FieldScope::Fields(new)) => {
            for name in new {
                if !existing.contains(&name) {
                    existing.push(name);
                }
            }
        }
    }
}

/// The argument of one directive (RFC 9111 §5.2: `token [ "=" ( token / quoted-string ) ]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Argument<'a> {
    /// No `=`.
    Absent,
    /// A token (possibly empty, e.g. `max-age=`) or an unescaped quoted string.
    Value(Cow<'a, [u8]>),
    /// Unterminated quoted string, or junk after the argument.
    Malformed,
}

impl Argument<'_> {
    /// The argument as delta-seconds (RFC 9111 §1.2.2), `None` when absent or invalid.
    fn delta_seconds(&self) -> Option<Duration> {
        match self {
            Argument::Value(value) => parse_delta_seconds(value),
            Argument::Absent | Argument::Malformed => None,
        }
    }

    /// A response's `max-age` / `s-maxage`: its delta-seconds, or zero when it has none
    /// that is valid (§4.2.1: invalid freshness information means stale).
    fn lifetime(&self) -> Duration {
        self.delta_seconds().unwrap_or(Duration::ZERO)
    }

    /// The scope of `no-cache` / `private` (RFC 9111 §5.2.2.4, §5.2.2.7): a list with
    /// no valid field name counts as the whole response.
    fn field_scope(&self) -> FieldScope {
        let Argument::Value(value) = self else {
            return FieldScope::All;
        };
        let mut fields: Vec<HeaderName> = Vec::new();
        for element in split_list(value) {
            if let Ok(name) = HeaderName::from_bytes(element)
                && !fields.contains(&name)
            {
                fields.push(name);
            }
        }
        if fields.is_empty() { FieldScope::All } else { FieldScope::Fields(fields) }
    }
}

/// One directive of a `Cache-Control` (or `Pragma`) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Directive<'a> {
    /// The name as sent (compare case-insensitively).
    pub(crate) name: &'a [u8],
    /// The argument.
    pub(crate) argument: Argument<'a>,
}

/// The directives of one field line, in order. Elements whose name is not a token are
/// skipped; commas inside quoted strings do not split.
pub(crate) fn directives(line: &[u8]) -> Directives<'_> {
    Directives { line, position: 0 }
}

/// Iterator returned by [`directives`].
pub(crate) struct Directives<'a> {
    line: &'a [u8],
    position: usize,
}

impl<'a> Directives<'a> {
    fn peek(&self) -> Option<u8> {
        self.line.get(self.position).copied()
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.position += 1;
        }
    }

    fn at_element_end(&self) -> bool {
        matches!(self.peek(), None | Some(b','))
    }

    /// Moves to the next comma that is not inside a quoted string (or the end).
    fn skip_to_next_element(&mut self) {
        let mut quoted = false;
        while let Some(byte) = self.peek() {
            match byte {
                b'"' => quoted = !quoted,
                b'\\' if quoted => self.position += 1,
                b',' if !quoted => return,
                _ => {}
            }
            self.position += 1;
        }
        self.position = self.position.min(self.line.len());
    }

    /// Reads a quoted string whose opening quote is at the current position (RFC 9110
    /// §5.6.4); `None` when it is not terminated (the rest of the line is consumed).
    fn quoted_string(&mut self) -> Option<Cow<'a, [u8]>> {
        let start = self.position + 1;
        let mut escaped: Option<Vec<u8>> = None;
        let mut index = start;
        while let Some(&byte) = self.line.get(index) {
            match byte {
                b'"' => {
                    self.position = index + 1;
                    return Some(match escaped {
                        Some(owned) => Cow::Owned(owned),
                        None => Cow::Borrowed(&self.line[start..index]),
                    });
                }
                b'\\' => {
                    let next = *self.line.get(index + 1)?;
                    escaped.get_or_insert_with(|| self.line[start..index].to_vec()).push(next);
                    index += 2;
                }
                _ => {
                    if let Some(owned) = escaped.as_mut() {
                        owned.push(byte);
                    }
                    index += 1;
                }
            }
        }
        self.position = self.line.len();
        None
    }
}

impl<'a> Iterator for Directives<'a> {
    type Item = Directive<'a>;

    fn next(&mut self) -> Option<Directive<'a>> {
        loop {
            while self.peek().is_some_and(|b| is_ows(b) || b == b',') {
                self.position += 1;
            }
            self.peek()?;
            let name_start = self.position;
            while self.peek().is_some_and(is_tchar) {
                self.position += 1;
            }
            let name = &self.line[name_start..self.position];
            let name_end = self.position;
            self.skip_ows();
            if name.is_empty() || !(self.at_element_end() || self.peek() == Some(b'=')) {
                // `no-store no-cache` (whitespace where a comma belongs): take the name
                // as a flag and go on with the next token, so a missing comma never hides
                // a restriction.
                if !name.is_empty() && self.position > name_end && self.peek().is_some_and(is_tchar) {
                    return Some(Directive { name, argument: Argument::Absent });
                }
                // Not `token [= ...]`: skip the element (its name is unknowable).
                self.skip_to_next_element();
                continue;
            }
            if self.at_element_end() {
                return Some(Directive { name, argument: Argument::Absent });
            }
            self.position += 1; // the `=`
            self.skip_ows();
            let value = if self.peek() == Some(b'"') {
                match self.quoted_string() {
                    Some(value) => value,
                    None => return Some(Directive { name, argument: Argument::Malformed }),
                }
            } else {
                let value_start = self.position;
                while self.peek().is_some_and(is_tchar) {
                    self.position += 1;
                }
                Cow::Borrowed(&self.line[value_start..self.position])
            };
            let value_end = self.position;
            self.skip_ows();
            if self.at_element_end() {
                return Some(Directive { name, argument: Argument::Value(value) });
            }
            if self.position > value_end && self.peek().is_some_and(is_tchar) {
                // `max-age=60 no-store` (whitespace where a comma belongs): the argument
                // is not valid, but the next token is the next directive, as after a
                // bare flag, so a missing comma never hides a restriction.
                return Some(Directive { name, argument: Argument::Malformed });
            }
            self.skip_to_next_element();
            return Some(Directive { name, argument: Argument::Malformed });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::MAX_DELTA_SECONDS;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn secs(seconds: u64) -> Option<Duration> {
        Some(Duration::from_secs(seconds))
    }

    fn headers(name: &str, lines: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
                HeaderValue::from_bytes(line).expect("test header value"),
            );
        }
        map
    }

    /// `Cache-Control` with those of `lines` that are valid field values.
    fn cache_control_lines(lines: &[Vec<u8>]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            if let Ok(value) = HeaderValue::from_bytes(line) {
                map.append(CACHE_CONTROL, value);
            }
        }
        map
    }

    fn response(lines: &[&[u8]]) -> ResponseDirectives {
        ResponseDirectives::parse(&headers("cache-control", lines))
    }

    fn request(lines: &[&[u8]]) -> RequestDirectives {
        RequestDirectives::parse(&headers("cache-control", lines))
    }

    fn fields(names: &[&'static str]) -> Option<FieldScope> {
        Some(FieldScope::Fields(names.iter().map(|n| HeaderName::from_static(n)).collect()))
    }

    // RFC 9111 §5.2: no Cache-Control at all gives the defaults.
    #[test]
    fn absent_is_default_rfc9111_5_2() {
        assert_eq!(response(&[]), ResponseDirectives::default());
        assert_eq!(request(&[]), RequestDirectives::default());
    }

    // RFC 9111 §5.2.2.1 max-age, §5.2.2.10 s-maxage.
    #[test]
    fn max_age_and_s_maxage_rfc9111_5_2_2_1_and_5_2_2_10() {
        let parsed = response(&[b"max-age=60, s-maxage=120"]);
        assert_eq!(parsed.max_age, secs(60));
        assert_eq!(parsed.s_maxage, secs(120));
        assert_eq!(response(&[b"max-age=0"]).max_age, secs(0));
    }

    // RFC 9111 §5.2: directive names are case-insensitive.
    #[test]
    fn names_are_case_insensitive_rfc9111_5_2() {
        let parsed = response(&[b"MAX-AGE=5, No-Store, PUBLIC, Must-Revalidate"]);
        assert_eq!(parsed.max_age, secs(5));
        assert!(parsed.no_store && parsed.public && parsed.must_revalidate);
        assert!(request(&[b"Only-If-Cached"]).only_if_cached);
    }

    // RFC 9111 §5.2: "recipients ought to accept" the quoted-string form.
    #[test]
    fn quoted_delta_seconds_accepted_rfc9111_5_2() {
        assert_eq!(response(&[b"max-age=\"60\""]).max_age, secs(60));
        assert_eq!(request(&[b"min-fresh=\"7\""]).min_fresh, secs(7));
        assert_eq!(response(&[b"max-age=\"6\\0\""]).max_age, secs(60), "quoted-pair unescaped");
    }

    // RFC 9111 §5.2 / RFC 9110 §5.6.4: commas inside quoted strings do not split.
    #[test]
    fn commas_in_quotes_do_not_split_rfc9111_5_2() {
        let parsed = response(&[b"ext=\"a, max-age=5, no-store\", public"]);
        assert_eq!(parsed.max_age, None);
        assert!(!parsed.no_store);
        assert!(parsed.public);
        let escaped = response(&[b"ext=\"a\\\", no-store\", max-age=3"]);
        assert!(!escaped.no_store, "an escaped quote does not end the string");
        assert_eq!(escaped.max_age, secs(3));
    }

    // RFC 9111 §5.2: all field lines are combined.
    #[test]
    fn lines_are_combined_rfc9111_5_2() {
        let parsed = response(&[b"max-age=10", b"no-transform", b"private=\"x-a\""]);
        assert_eq!(parsed.max_age, secs(10));
        assert!(parsed.no_transform);
        assert_eq!(parsed.private, fields(&["x-a"]));
    }

    // RFC 9111 §5.2.3: unknown directives are ignored.
    #[test]
    fn unknown_directives_ignored_rfc9111_5_2_3() {
        let parsed = response(&[b"community=\"UCI\", foo, bar=baz, max-age=9"]);
        assert_eq!(parsed, ResponseDirectives { max_age: secs(9), ..Default::default() });
    }

    // RFC 9111 §1.2.2 / §4.2.1: invalid delta-seconds make a request's directive absent,
    // and a response's lifetime zero (invalid freshness information: stale).
    #[test]
    fn invalid_delta_seconds_is_absent_rfc9111_1_2_2() {
        for bad in [
            &b"max-age=1.5"[..],
            b"max-age=-1",
            b"max-age=+1",
            b"max-age=",
            b"max-age=\"\"",
            b"max-age",
            b"max-age=abc",
            b"max-age=1 2",
            b"max-age=\"60",
            b"max-age=6\"0\"",
            b"max-age=\"60\"x",
            b"max-age=\xff",
            b"max-age=\"\xc3\xa9\"",
        ] {
            assert_eq!(response(&[bad]).max_age, Some(Duration::ZERO), "{:?}", String::from_utf8_lossy(bad));
            assert_eq!(request(&[bad]).max_age, None, "{:?}", String::from_utf8_lossy(bad));
            // A valid one beside it conflicts with it: stale too.
            let with_valid = [&b"max-age=60"[..], bad];
            assert_eq!(
                response(&with_valid).max_age,
                Some(Duration::ZERO),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    // RFC 9111 §1.2.2: delta-seconds beyond 2^31 are capped, not rejected.
    #[test]
    fn huge_delta_seconds_capped_rfc9111_1_2_2() {
        let parsed = response(&[b"max-age=99999999999999999999999999, s-maxage=2147483649"]);
        assert_eq!(parsed.max_age, secs(MAX_DELTA_SECONDS));
        assert_eq!(parsed.s_maxage, secs(MAX_DELTA_SECONDS));
    }

    // RFC 9111 §4.2.1: max-age repeated with different values counts as stale.
    #[test]
    fn conflicting_max_age_is_stale_rfc9111_4_2_1() {
        assert_eq!(response(&[b"max-age=60, max-age=120"]).max_age, secs(0));
        assert_eq!(response(&[b"max-age=60", b"max-age=30"]).max_age, secs(0));
        assert_eq!(response(&[b"s-maxage=1, s-maxage=2"]).s_maxage, secs(0));
        assert_eq!(request(&[b"max-age=5, max-age=6"]).max_age, secs(0));
        // A third value does not undo the conflict.
        assert_eq!(response(&[b"max-age=60, max-age=120, max-age=60"]).max_age, secs(0));
    }

    // RFC 9111 §4.2.1: identical repeats are not a conflict; an invalid repeat is invalid
    // freshness information, which makes the response stale (in a request, it is absent).
    #[test]
    fn agreeing_repeats_keep_value_invalid_ones_are_stale_rfc9111_4_2_1() {
        assert_eq!(response(&[b"max-age=60, MAX-AGE=\"60\""]).max_age, secs(60));
        assert_eq!(response(&[b"max-age=060, max-age=60"]).max_age, secs(60));
        assert_eq!(response(&[b"max-age=60, max-age=1.5"]).max_age, secs(0));
        assert_eq!(response(&[b"max-age=x, max-age=7"]).max_age, secs(0));
        assert_eq!(request(&[b"max-age=x, max-age=7"]).max_age, secs(7));
    }

    // RFC 9111 §4.2.1: other repeated directives take the first valid occurrence.
    #[test]
    fn other_repeats_take_first_rfc9111_4_2_1() {
        let parsed = response(&[
            b"stale-if-error=10, stale-if-error=20, stale-while-revalidate=3, stale-while-revalidate=4",
        ]);
        assert_eq!(parsed.stale_if_error, secs(10));
        assert_eq!(parsed.stale_while_revalidate, secs(3));
        let parsed = request(&[b"min-fresh=1, min-fresh=2, max-stale=5, max-stale"]);
        assert_eq!(parsed.min_fresh, secs(1));
        assert_eq!(parsed.max_stale, Some(MaxStale::AtMost(Duration::from_secs(5))));
        assert_eq!(
            request(&[b"max-stale=x, max-stale=9"]).max_stale,
            Some(MaxStale::AtMost(Duration::from_secs(9)))
        );
    }

    // RFC 9111 §5.2.2.4: no-cache bare applies to the whole response.
    #[test]
    fn no_cache_bare_rfc9111_5_2_2_4() {
        assert_eq!(response(&[b"no-cache"]).no_cache, Some(FieldScope::All));
        assert_eq!(response(&[b"max-age=1"]).no_cache, None);
    }

    // RFC 9111 §5.2.2.4: no-cache="fields", lower-cased, deduplicated; the token form
    // is accepted (§5.2).
    #[test]
    fn no_cache_field_list_rfc9111_5_2_2_4() {
        assert_eq!(
            response(&[b"no-cache=\"Set-Cookie, X-Foo ,set-cookie\""]).no_cache,
            fields(&["set-cookie", "x-foo"])
        );
        assert_eq!(response(&[b"no-cache=Set-Cookie"]).no_cache, fields(&["set-cookie"]));
        assert_eq!(response(&[b"no-cache=\"a\"", b"no-cache=\"b, a\""]).no_cache, fields(&["a", "b"]));
        assert_eq!(
            response(&[b"no-cache=\"a, bad name, @\""]).no_cache,
            fields(&["a"]),
            "invalid names in the list are ignored"
        );
    }

    // RFC 9111 §4.2.1 "most restrictive": bare and field-list forms together give All,
    // in either order; a list with no usable field name gives All.
    #[test]
    fn no_cache_bare_wins_rfc9111_4_2_1() {
        assert_eq!(response(&[b"no-cache=\"a\", no-cache"]).no_cache, Some(FieldScope::All));
        assert_eq!(response(&[b"no-cache", b"no-cache=\"a\""]).no_cache, Some(FieldScope::All));
        assert_eq!(response(&[b"no-cache=\"\""]).no_cache, Some(FieldScope::All));
        assert_eq!(response(&[b"no-cache=\"a"]).no_cache, Some(FieldScope::All));
        assert_eq!(response(&[b"no-cache=\"@@\""]).no_cache, Some(FieldScope::All));
    }

    // RFC 9111 §5.2.2.7: private bare and private="field".
    #[test]
    fn private_rfc9111_5_2_2_7() {
        assert_eq!(response(&[b"private"]).private, Some(FieldScope::All));
        assert_eq!(response(&[b"private=\"Authorization\""]).private, fields(&["authorization"]));
        assert_eq!(response(&[b"private=\"x\", private"]).private, Some(FieldScope::All));
        assert_eq!(response(&[b"public"]).private, None);
    }

    // RFC 9111 §5.2.2.2-3, .5-.9, RFC 8246 §2: flag directives.
    #[test]
    fn flags_rfc9111_5_2_2() {
        let parsed = response(&[
            b"no-store, public, must-revalidate, proxy-revalidate, must-understand, no-transform, immutable",
        ]);
        assert!(parsed.no_store);
        assert!(parsed.public);
        assert!(parsed.must_revalidate);
        assert!(parsed.proxy_revalidate);
        assert!(parsed.must_understand);
        assert!(parsed.no_transform);
        assert!(parsed.immutable);
        assert_eq!(response(&[b"max-age=1"]), ResponseDirectives { max_age: secs(1), ..Default::default() });
    }

    // RFC 9111 §4.2.1 (most restrictive reading), §5.2: whitespace where a comma belongs
    // after an argument (`max-age=60 no-store`) makes that argument invalid, but never
    // hides the directive after it, as it never does after a bare flag.
    #[test]
    fn a_missing_comma_after_an_argument_hides_nothing_rfc9111_5_2() {
        let parsed = response(&[b"max-age=60 no-store"]);
        assert!(parsed.no_store);
        assert_eq!(parsed.max_age, secs(0), "the argument itself is still invalid");
        assert!(response(&[b"max-age=\"60\"\tmust-revalidate"]).must_revalidate);
        let parsed = response(&[b"no-cache=\"set-cookie\" private, max-age=5"]);
        assert_eq!(parsed.private, Some(FieldScope::All));
        assert_eq!(parsed.no_cache, Some(FieldScope::All));
        assert_eq!(parsed.max_age, secs(5));
        assert!(request(&[b"max-stale=10 no-cache"]).no_cache);
        // Junk that is not a token still skips the rest of the element.
        assert!(!response(&[b"max-age=60 @no-store"]).no_store);
    }

    // RFC 9111 §5.2.2.5: a flag with a stray argument still counts (most restrictive
    // reading of no-store, §4.2.1).
    #[test]
    fn flag_with_argument_counts_rfc9111_5_2_2_5() {
        assert!(response(&[b"no-store=1"]).no_store);
        assert!(response(&[b"no-store=\"unterminated"]).no_store);
        assert!(request(&[b"no-cache=\"x\""]).no_cache);
    }

    // RFC 5861 §3, §4: stale-while-revalidate and stale-if-error.
    #[test]
    fn stale_extensions_rfc5861_3_and_4() {
        let parsed = response(&[b"max-age=1, stale-while-revalidate=30, stale-if-error=86400"]);
        assert_eq!(parsed.stale_while_revalidate, secs(30));
        assert_eq!(parsed.stale_if_error, secs(86400));
        assert_eq!(request(&[b"stale-if-error=5"]).stale_if_error, secs(5));
        assert_eq!(response(&[b"stale-while-revalidate"]).stale_while_revalidate, None);
    }

    // RFC 9111 §5.2.1.1-.7: request directives.
    #[test]
    fn request_directives_rfc9111_5_2_1() {
        let parsed =
            request(&[b"max-age=10, min-fresh=20, no-cache, no-store, no-transform, only-if-cached"]);
        assert_eq!(
            parsed,
            RequestDirectives {
                max_age: secs(10),
                max_stale: None,
                min_fresh: secs(20),
                no_cache: true,
                no_store: true,
                no_transform: true,
                only_if_cached: true,
                stale_if_error: None,
            }
        );
    }

    // RFC 9111 §5.2.1.2: max-stale with and without a value.
    #[test]
    fn max_stale_rfc9111_5_2_1_2() {
        assert_eq!(request(&[b"max-stale"]).max_stale, Some(MaxStale::Any));
        assert_eq!(request(&[b"max-stale=30"]).max_stale, Some(MaxStale::AtMost(Duration::from_secs(30))));
        assert_eq!(
            request(&[b"max-stale=\"30\""]).max_stale,
            Some(MaxStale::AtMost(Duration::from_secs(30)))
        );
        assert_eq!(request(&[b"max-stale=-1"]).max_stale, None);
        assert_eq!(request(&[b"max-stale="]).max_stale, None);
        assert_eq!(request(&[b"max-stale, max-stale=3"]).max_stale, Some(MaxStale::Any));
    }

    // RFC 9111 §5.2: response-only directives are not request directives and vice versa.
    #[test]
    fn directives_are_per_direction_rfc9111_5_2() {
        assert_eq!(request(&[b"s-maxage=5, public, private, must-revalidate"]), RequestDirectives::default());
        assert_eq!(response(&[b"min-fresh=5, max-stale, only-if-cached"]), ResponseDirectives::default());
    }

    // RFC 9111 §5.4: Pragma: no-cache counts only without any Cache-Control.
    #[test]
    fn pragma_only_without_cache_control_rfc9111_5_4() {
        let mut map = headers("pragma", &[b"no-cache"]);
        assert!(RequestDirectives::parse(&map).no_cache);
        map.append(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        let parsed = RequestDirectives::parse(&map);
        assert!(!parsed.no_cache);
        assert_eq!(parsed.max_age, secs(5));
        // Even an empty Cache-Control line disables the Pragma fallback.
        let mut map = headers("pragma", &[b"no-cache"]);
        map.append(CACHE_CONTROL, HeaderValue::from_static(""));
        assert!(!RequestDirectives::parse(&map).no_cache);
        assert!(!RequestDirectives::parse(&headers("pragma", &[b"foo"])).no_cache);
        // Pragma does not apply to responses.
        assert_eq!(ResponseDirectives::parse(&headers("pragma", &[b"no-cache"])).no_cache, None);
    }

    // RFC 9110 §5.6.1: empty list elements and surrounding whitespace are ignored.
    #[test]
    fn empty_elements_and_whitespace_rfc9110_5_6_1() {
        let parsed = response(&[b" , ,max-age=5 ,\t, no-store ,"]);
        assert_eq!(parsed.max_age, secs(5));
        assert!(parsed.no_store);
        assert_eq!(response(&[b""]), ResponseDirectives::default());
        assert_eq!(response(&[b"max-age = 5"]).max_age, secs(5), "BWS around = tolerated");
    }

    // RFC 9111 §5.2: malformed elements are skipped without hiding their neighbours.
    #[test]
    fn malformed_elements_skipped_rfc9111_5_2() {
        let parsed = response(&[b"=5, \"quoted\", max age=9, @x, no-store"]);
        assert_eq!(parsed.max_age, None);
        assert!(parsed.no_store);
        // An unterminated quote swallows the rest of its own line only.
        let parsed = response(&[b"x=\"open, no-store", b"max-age=4"]);
        assert!(!parsed.no_store);
        assert_eq!(parsed.max_age, secs(4));
        // Non-UTF-8 bytes (obs-text) inside and outside quotes.
        let parsed = response(&[b"x=\"\xff\xfe\", \xff, max-age=8"]);
        assert_eq!(parsed.max_age, secs(8));
    }

    #[test]
    fn tokenizer_yields_arguments() {
        let all: Vec<Directive<'_>> = directives(b"a, b=1, c=\"x\\\"y\", d=\"open").collect();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0], Directive { name: b"a", argument: Argument::Absent });
        assert_eq!(all[1], Directive { name: b"b", argument: Argument::Value(Cow::Borrowed(b"1")) });
        assert_eq!(all[2].argument, Argument::Value(Cow::Owned(b"x\"y".to_vec())));
        assert_eq!(all[3].argument, Argument::Malformed);
    }

    // The scan's answers on the lines a hit meets, and on the restricting ones.
    #[test]
    fn fresh_use_scan_rfc9111_5_2_2() {
        for clean in [&b"max-age=60"[..], b"public, max-age=3600", b"private, s-maxage=0", b"must-revalidate"]
        {
            assert!(
                !ResponseDirectives::may_restrict_fresh_use(&headers("cache-control", &[clean])),
                "{clean:?}"
            );
        }
        for restricting in
            [&b"no-store"[..], b"No-Cache", b"max-age=60, IMMUTABLE", b"no-cache=\"set-cookie\""]
        {
            assert!(ResponseDirectives::may_restrict_fresh_use(&headers("cache-control", &[restricting])));
        }
        // On a second line too; other header fields are not read.
        assert!(ResponseDirectives::may_restrict_fresh_use(&headers(
            "cache-control",
            &[b"max-age=1", b"no-store"]
        )));
        assert!(!ResponseDirectives::may_restrict_fresh_use(&headers("pragma", &[b"no-cache"])));
    }

    proptest! {
        // Tolerance (DESIGN.md "The machine never fails"): arbitrary lines never panic,
        // and every duration respects the §1.2.2 cap.
        #[test]
        fn never_panics_on_arbitrary_bytes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..4)) {
            let _ = directives(&lines.concat()).count();
            let map = cache_control_lines(&lines);
            let parsed = ResponseDirectives::parse(&map);
            for value in [parsed.max_age, parsed.s_maxage, parsed.stale_if_error, parsed.stale_while_revalidate].into_iter().flatten() {
                prop_assert!(value.as_secs() <= MAX_DELTA_SECONDS);
            }
            let _ = RequestDirectives::parse(&map);
        }

        // RFC 9111 §5.2: directive-shaped input from a small alphabet (quotes, commas,
        // escapes, digits) never panics and any max-age is within the cap.
        #[test]
        fn never_panics_on_directive_soup(line in "[a-z=\",\\\\ 0-9-]{0,40}") {
            let map = headers("cache-control", &[line.as_bytes()]);
            let parsed = ResponseDirectives::parse(&map);
            prop_assert!(parsed.max_age.is_none_or(|age| age.as_secs() <= MAX_DELTA_SECONDS));
            let _ = RequestDirectives::parse(&map);
        }

        // RFC 9111 §5.2.2.4, §5.2.2.5, RFC 8246: the quick scan a fresh hit relies on never
        // misses a directive the full parse finds (`no-store`, `no-cache` in any scope,
        // `immutable`), whatever the case, the quoting or the other directives around it.
        #[test]
        fn fresh_use_scan_never_misses_a_restriction(
            lines in proptest::collection::vec("([nN][oO]-(store|cache|[a-z]{0,4})|[iI][mM]{2}utable|max-age=[0-9]{1,3}|private|public|must-revalidate|[a-z]{1,6}(=\"[a-z -]{0,6}\")?)([ ]*,[ ]*(No-Store|NO-CACHE|no-cache=\"a, b\"|IMMUTABLE|max-age=60|s-maxage=1|x=\"no-\"))?", 0..3),
        ) {
            let map = headers("cache-control", &lines.iter().map(String::as_bytes).collect::<Vec<_>>());
            let parsed = ResponseDirectives::parse(&map);
            if parsed.no_store || parsed.no_cache.is_some() || parsed.immutable {
                prop_assert!(ResponseDirectives::may_restrict_fresh_use(&map), "{lines:?}");
            }
        }

        // The same over arbitrary bytes.
        #[test]
        fn fresh_use_scan_never_misses_on_arbitrary_bytes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 0..4)) {
            let map = cache_control_lines(&lines);
            let parsed = ResponseDirectives::parse(&map);
            if parsed.no_store || parsed.no_cache.is_some() || parsed.immutable {
                prop_assert!(ResponseDirectives::may_restrict_fresh_use(&map));
            }
        }

        // RFC 9111 §4.2.1 (most restrictive reading), §5.2: whatever separates the
        // directives of a line (a comma, or whitespace where a comma belongs), after a
        // flag or after an argument, token or quoted, every restricting flag in it counts.
        #[test]
        fn no_separator_hides_a_restriction_rfc9111_5_2(
            elements in proptest::collection::vec(
                prop_oneof![
                    Just("no-store"),
                    Just("no-cache"),
                    Just("private"),
                    Just("must-revalidate"),
                    Just("public"),
                    Just("max-age=60"),
                    Just("max-age=\"60\""),
                    Just("stale-if-error=5"),
                    Just("no-cache=\"set-cookie\""),
                    Just("x-ext=a"),
                ],
                1..6,
            ),
            separators in proptest::collection::vec(prop_oneof![Just(","), Just(", "), Just(" "), Just("\t"), Just(" , ")], 5),
        ) {
            let mut line = String::new();
            for (index, element) in elements.iter().enumerate() {
                if index > 0 {
                    line.push_str(separators[index - 1]);
                }
                line.push_str(element);
            }
            let parsed = response(&[line.as_bytes()]);
            let has = |flag: &str| elements.contains(&flag);
            prop_assert_eq!(parsed.no_store, has("no-store"), "{}", line);
            prop_assert!(!has("no-cache") || parsed.no_cache == Some(FieldScope::All), "{}", line);
            prop_assert!(!has("private") || parsed.private == Some(FieldScope::All), "{}", line);
            prop_assert_eq!(parsed.must_revalidate, has("must-revalidate"), "{}", line);
        }

        // RFC 9111 §5.2.2.1: any max-age=N (token or quoted) reads back as min(N, 2^31).
        #[test]
        fn max_age_round_trips_rfc9111_5_2_2_1(n in any::<u64>(), quoted in any::<bool>()) {
            let line = if quoted { format!("no-store, max-age=\"{n}\"") } else { format!("max-age={n}, no-store") };
            let parsed = response(&[line.as_bytes()]);
            prop_assert_eq!(parsed.max_age, secs(n.min(MAX_DELTA_SECONDS)));
            prop_assert!(parsed.no_store);
        }
    }
}

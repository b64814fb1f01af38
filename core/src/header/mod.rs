//! Tolerant parsers for the headers HTTP caching reads. A malformed value counts as
//! absent (or, for `Expires`, as already expired, RFC 9111 §5.3); nothing here panics.

pub mod cache_control;
pub mod date;
pub mod etag;
pub mod vary;

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    AGE, CONNECTION, PRAGMA, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue};

pub use cache_control::{FieldScope, MaxStale, RequestDirectives, ResponseDirectives};
pub use date::{format_http_date, parse_http_date};
pub use etag::{EntityTag, IfNoneMatch};
pub use vary::{VariantId, Vary};

/// The largest delta-seconds a cache must represent (RFC 9111 §1.2.2): 2^31 seconds.
pub const MAX_DELTA_SECONDS: u64 = 2_147_483_648;

/// Parses delta-seconds (RFC 9111 §1.2.2): ASCII digits only; values beyond
/// [`MAX_DELTA_SECONDS`] are capped to it. Anything else is `None`.
pub fn parse_delta_seconds(value: &[u8]) -> Option<Duration> {
    if value.is_empty() {
        return None;
    }
    let mut seconds: u64 = 0;
    for &byte in value {
        if !byte.is_ascii_digit() {
            return None;
        }
        // Saturating, then capped: a run of any length stays within MAX_DELTA_SECONDS.
        seconds = seconds.saturating_mul(10).saturating_add(u64::from(byte - b'0'));
        seconds = seconds.min(MAX_DELTA_SECONDS);
    }
    Some(Duration::from_secs(seconds))
}

/// The `Age` header (RFC 9111 §5.1): the first member of its first line, when it is
/// valid delta-seconds. Age is a singleton, but a list (`Age: 100, 5`, lines a proxy
/// joined) is read by its first member, as §5.1 says a cache SHOULD: ignored whole, an
/// old response would count as new, and be served fresh when it is not.
pub fn age(headers: &HeaderMap) -> Option<Duration> {
    let first = headers.get(AGE)?;
    parse_delta_seconds(split_list(first.as_bytes()).next()?)
}

/// Whether `Pragma` contains `no-cache` (RFC 9111 §5.4).
pub fn pragma_no_cache(headers: &HeaderMap) -> bool {
    headers.get_all(PRAGMA).iter().any(|line| {
        cache_control::directives(line.as_bytes())
            .any(|directive| directive.name.eq_ignore_ascii_case(b"no-cache"))
    })
}

/// Removes hop-by-hop fields (RFC 9110 §7.6.1: `Connection` and the fields it names,
/// `Keep-Alive`, `Proxy-Connection`, `TE`, `Transfer-Encoding`, `Upgrade`,
/// `Proxy-Authenticate`, `Proxy-Authorization`, `Trailer`) before a response is stored
/// (RFC 9111 §3.1). A `Content-Length` beside a `Transfer-Encoding` goes too: the
/// message was framed by the coding, the length is not its body's, and a recipient that
/// passes such a message on removes it (RFC 9112 §6.3).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let names = hop_by_hop_fields(headers);
    if names.is_empty() {
        return;
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        headers.remove(http::header::CONTENT_LENGTH);
    }
    for name in names {
        headers.remove(name);
    }
}

/// The names [`strip_hop_by_hop`] removes from `headers`: those its `Connection` lines
/// name, then the standard hop-by-hop ones. Empty, allocating nothing, when `headers`
/// has none of the standard ones (most responses): one pass over the names finds out,
/// instead of hashing and looking up ten names every time a response is stored.
pub(crate) fn hop_by_hop_fields(headers: &HeaderMap) -> Vec<HeaderName> {
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return Vec::new();
    }
    let mut names: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|line| split_list(line.as_bytes()))
        .filter_map(|element| HeaderName::from_bytes(element).ok())
        .collect();
    names.extend(HOP_BY_HOP);
    names
}

/// Copies of header values, all made into one new buffer: [`Copies::of`] copies the
/// bytes of a sequence of values, and [`Copies::next`] hands out a value of its own for
/// each of them, in the same order. The memory store's per-thread copies of entries
/// are made with it too.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use httpcache_core::header::Copies;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("etag", HeaderValue::from_static("\"v1\""));
/// headers.append("link", HeaderValue::from_static("<a>"));
/// let mut copies = Copies::of(|| headers.values());
/// let copied: Vec<HeaderValue> = headers.values().map(|value| copies.next(value)).collect();
/// assert_eq!(copied, ["\"v1\"", "<a>"]);
/// ```
///
/// Why a stored entry takes copies: a value a client parsed is usually a slice of the
/// buffer the client read the whole response into (hyper, under reqwest, reads heads
/// and bodies into one buffer of up to a few hundred KiB), and a clone of it keeps that
/// whole buffer alive. An entry a memory store kept with such values held up to 250 KiB
/// it was not weighed for; with copies it holds exactly its own fields.
pub struct Copies {
    buffer: Bytes,
    start: usize,
}

impl Copies {
    /// The bytes of the values `values()` yields, copied into one buffer (one
    /// allocation: `values` is called twice, to size it, then to fill it).
    pub fn of<'a, I: Iterator<Item = &'a HeaderValue>>(values: impl Fn() -> I) -> Copies {
        let mut buffer = Vec::with_capacity(values().map(HeaderValue::len).sum());
        for value in values() {
            buffer.extend_from_slice(value.as_bytes());
        }
        Copies { buffer: Bytes::from(buffer), start: 0 }
    }

    /// The copy of `value`, the next of the values [`Copies::of`] was given: a slice of
    /// the one buffer, sensitive when `value` is. Should `value` not be that next value
    /// (a caller's mistake), or its copy not be a valid value (`http` accepted the
    /// bytes once already), the value itself is shared instead: never a wrong value.
    pub fn next(&mut self, value: &HeaderValue) -> HeaderValue {
        let end = self.start + value.len();
        let copy = self
            .buffer
            .get(self.start..end)
            .filter(|bytes| *bytes == value.as_bytes())
            .and_then(|_| HeaderValue::from_maybe_shared(self.buffer.slice(self.start..end)).ok());
        match copy {
            Some(mut copy) => {
                self.start = end;
                copy.set_sensitive(value.is_sensitive());
                copy
            }
            None => value.clone(),
        }
    }
}

/// Gives every value in `headers` bytes of its own, all in one new buffer (see
/// [`Copies`] for why a stored entry needs that).
pub(crate) fn own_values(headers: &mut HeaderMap) {
    if headers.is_empty() {
        return;
    }
    let mut copies = Copies::of(|| headers.values());
    for value in headers.values_mut() {
        *value = copies.next(value);
    }
}

/// The hop-by-hop fields removed whatever `Connection` says.
const HOP_BY_HOP: [HeaderName; 10] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    TE,
    TRANSFER_ENCODING,
    UPGRADE,
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-authentication-info"),
    TRAILER,
];

/// The first `Content-Length` line as one number (RFC 9110 §8.6), whitespace around it
/// allowed; `None` when absent or malformed.
///
/// ```
/// use http::HeaderMap;
/// use httpcache_core::header::content_length;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(content_length(&headers), None);
/// headers.insert("content-length", " 69 ".parse().unwrap());
/// assert_eq!(content_length(&headers), Some(69));
/// ```
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// Whether `byte` is optional whitespace (RFC 9110 §5.6.3: SP or HTAB).
pub(crate) fn is_ows(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

/// `value` without leading and trailing optional whitespace (RFC 9110 §5.6.3).
pub(crate) fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|&b| !is_ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|&b| !is_ows(b)).map_or(start, |last| last + 1);
    &value[start..end.max(start)]
}

/// Whether `byte` is a `tchar` (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// The elements of a comma-separated list (RFC 9110 §5.6.1), each trimmed of OWS,
/// empty elements skipped. Commas are not special inside quoted strings here: use it
/// only for lists of tokens (field names, `Connection` options).
pub(crate) fn split_list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows).filter(|element| !element.is_empty())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    /// A header map from `(name, value)` pairs, repeated names appended in order (also
    /// used by the sibling modules' tests).
    pub(crate) fn map(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
                HeaderValue::from_bytes(value).expect("test header value"),
            );
        }
        headers
    }

    // RFC 9111 §3: a stored response keeps its header fields as they came. The copies an
    // entry takes of them are the same fields, lines in order, sensitivity kept, and all
    // live in one buffer of their own.
    proptest! {
        #[test]
        fn own_values_keeps_every_line_and_shares_no_buffer(
            lines in prop::collection::vec(
                (prop::sample::select(vec!["etag", "link", "x-a", "cache-control"]), "[ -~]{0,12}", any::<bool>()),
                0..8,
            )
        ) {
            let mut headers = HeaderMap::new();
            for (name, value, sensitive) in &lines {
                let mut value = HeaderValue::from_str(value).expect("visible ASCII");
                value.set_sensitive(*sensitive);
                headers.append(*name, value);
            }
            let before = headers.clone();
            own_values(&mut headers);
            prop_assert_eq!(&headers, &before);
            for (name, _, _) in &lines {
                let old: Vec<_> = before.get_all(*name).iter().map(HeaderValue::is_sensitive).collect();
                let new: Vec<_> = headers.get_all(*name).iter().map(HeaderValue::is_sensitive).collect();
                prop_assert_eq!(old, new);
            }
            // One buffer: the non-empty values sit end to end, in iteration order.
            let spans: Vec<_> = headers.values().filter(|v| !v.is_empty()).map(|v| v.as_bytes().as_ptr_range()).collect();
            for pair in spans.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
            }
        }
    }

    // A value handed to `Copies::next` out of turn is shared, never given another
    // value's bytes.
    #[test]
    fn a_copy_asked_out_of_turn_is_the_value_itself() {
        let (a, b) = (HeaderValue::from_static("first"), HeaderValue::from_static("second!"));
        let mut copies = Copies::of(|| [&a, &b].into_iter());
        assert_eq!(copies.next(&b), b, "asked for the second first: shared, not `first\u{0}`");
        assert_eq!(copies.next(&a), a);
        assert_eq!(copies.next(&b), b);
    }

    // RFC 9111 §1.2.2: delta-seconds is 1*DIGIT.
    #[test]
    fn delta_seconds_accepts_digits_rfc9111_1_2_2() {
        assert_eq!(parse_delta_seconds(b"0"), Some(Duration::ZERO));
        assert_eq!(parse_delta_seconds(b"60"), Some(Duration::from_secs(60)));
        assert_eq!(parse_delta_seconds(b"0060"), Some(Duration::from_secs(60)));
    }

    // RFC 9111 §1.2.2: only ASCII digits; no sign, no fraction, no whitespace, not empty.
    #[test]
    fn delta_seconds_rejects_non_digits_rfc9111_1_2_2() {
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1.5",
            b" 1",
            b"1 ",
            b"1e3",
            b"0x10",
            b"\xd9\xa3", // ARABIC-INDIC DIGIT THREE: not ASCII
            b"\xff",
        ] {
            assert_eq!(parse_delta_seconds(bad), None, "{bad:?}");
        }
    }

    // RFC 9111 §1.2.2: a value greater than the largest representable integer is
    // replaced by 2147483648 (2^31).
    #[test]
    fn delta_seconds_caps_overflow_rfc9111_1_2_2() {
        let cap = Some(Duration::from_secs(MAX_DELTA_SECONDS));
        assert_eq!(parse_delta_seconds(b"2147483647"), Some(Duration::from_secs(2_147_483_647)));
        assert_eq!(parse_delta_seconds(b"2147483648"), cap);
        assert_eq!(parse_delta_seconds(b"2147483649"), cap);
        assert_eq!(parse_delta_seconds(b"99999999999999999999999999999999999999"), cap);
    }

    // RFC 9111 §5.1: Age is delta-seconds; the first line is used.
    #[test]
    fn age_reads_first_line_rfc9111_5_1() {
        assert_eq!(age(&map(&[("age", b"42")])), Some(Duration::from_secs(42)));
        assert_eq!(age(&map(&[("age", b"42"), ("age", b"7")])), Some(Duration::from_secs(42)));
        assert_eq!(age(&HeaderMap::new()), None);
    }

    // RFC 9111 §5.1: an invalid Age counts as absent (tolerance, RFC 9111 §4.2.3).
    #[test]
    fn age_invalid_is_none_rfc9111_5_1() {
        for bad in [&b""[..], b"-5", b"1.5", b"abc", b"x, 2", b"\xff"] {
            assert_eq!(age(&map(&[("age", bad)])), None, "{bad:?}");
        }
        // The first line decides, even when a later line is valid.
        assert_eq!(age(&map(&[("age", b"x"), ("age", b"7")])), None);
        assert_eq!(age(&map(&[("age", b" 9 ")])), Some(Duration::from_secs(9)));
        assert_eq!(age(&map(&[("age", b"99999999999")])), Some(Duration::from_secs(MAX_DELTA_SECONDS)));
    }

    // RFC 9111 §5.1: a list-based Age is read by its first member, the others discarded;
    // an invalid first member makes the field ignored.
    #[test]
    fn age_list_uses_the_first_member_rfc9111_5_1() {
        assert_eq!(age(&map(&[("age", b"100, 5")])), Some(Duration::from_secs(100)));
        assert_eq!(age(&map(&[("age", b" 7 ,x")])), Some(Duration::from_secs(7)));
        assert_eq!(
            age(&map(&[("age", b", 8")])),
            Some(Duration::from_secs(8)),
            "empty elements do not count"
        );
        assert_eq!(age(&map(&[("age", b"1.5, 2")])), None);
    }

    // RFC 9111 §5.4: Pragma: no-cache, in any line, any case, among other directives.
    #[test]
    fn pragma_no_cache_rfc9111_5_4() {
        assert!(pragma_no_cache(&map(&[("pragma", b"no-cache")])));
        assert!(pragma_no_cache(&map(&[("pragma", b"NO-CACHE")])));
        assert!(pragma_no_cache(&map(&[("pragma", b"foo=\"a,b\", no-cache")])));
        assert!(pragma_no_cache(&map(&[("pragma", b"foo"), ("pragma", b" no-cache ")])));
        assert!(!pragma_no_cache(&map(&[("pragma", b"no-cache-please")])));
        assert!(!pragma_no_cache(&map(&[("pragma", b"foo=\"no-cache\"")])));
        assert!(!pragma_no_cache(&map(&[("cache-control", b"no-cache")])));
        assert!(!pragma_no_cache(&HeaderMap::new()));
    }

    // RFC 9110 §7.6.1 / RFC 9111 §3.1: hop-by-hop fields and those Connection names
    // are not stored; end-to-end fields stay, repeated lines included.
    #[test]
    fn strip_hop_by_hop_rfc9110_7_6_1() {
        let mut headers = map(&[
            ("connection", b"X-Private, close"),
            ("connection", b"x-other"),
            ("x-private", b"1"),
            ("x-other", b"2"),
            ("keep-alive", b"timeout=5"),
            ("proxy-connection", b"keep-alive"),
            ("te", b"trailers"),
            ("transfer-encoding", b"chunked"),
            ("upgrade", b"h2c"),
            ("proxy-authenticate", b"Basic"),
            ("proxy-authorization", b"Basic abc"),
            ("trailer", b"x-checksum"),
            ("content-type", b"text/plain"),
            ("set-cookie", b"a=1"),
            ("set-cookie", b"b=2"),
        ]);
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "set-cookie"]);
        assert_eq!(headers.get_all("set-cookie").iter().count(), 2);
    }

    // RFC 9111 §3.1: each hop-by-hop field is removed even when it is the only one
    // (the quick check for "none present" must see every one of them), and a map
    // without any is left exactly as it was.
    #[test]
    fn each_hop_by_hop_field_alone_is_stripped_rfc9111_3_1() {
        for name in HOP_BY_HOP {
            let mut headers = map(&[(name.as_str(), b"x"), ("content-type", b"text/plain")]);
            strip_hop_by_hop(&mut headers);
            assert!(!headers.contains_key(&name), "{name}");
            assert_eq!(headers.len(), 1, "{name}");
        }
        let untouched =
            map(&[("content-type", b"text/plain"), ("set-cookie", b"a=1"), ("set-cookie", b"b=2")]);
        let mut headers = untouched.clone();
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers, untouched);
    }

    // RFC 9110 §7.6.1: invalid tokens in Connection are ignored, not fatal.
    #[test]
    fn strip_hop_by_hop_ignores_invalid_connection_tokens_rfc9110_7_6_1() {
        let mut headers = map(&[("connection", b"bad name, , x-a"), ("x-a", b"1"), ("x-b", b"2")]);
        strip_hop_by_hop(&mut headers);
        assert!(!headers.contains_key("x-a"));
        assert!(!headers.contains_key("connection"));
        assert!(headers.contains_key("x-b"));
    }

    #[test]
    fn trim_ows_rfc9110_5_6_3() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
    }

    proptest! {
        // RFC 9111 §1.2.2: any digit string parses, to its value capped at 2^31.
        #[test]
        fn delta_seconds_matches_reference_rfc9111_1_2_2(digits in "[0-9]{1,40}") {
            let expected = digits
                .parse::<u128>()
                .map_or(MAX_DELTA_SECONDS, |v| v.min(u128::from(MAX_DELTA_SECONDS)) as u64);
            prop_assert_eq!(parse_delta_seconds(digits.as_bytes()), Some(Duration::from_secs(expected)));
        }

        // Tolerance: no panic on arbitrary bytes.
        #[test]
        fn header_helpers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_delta_seconds(&bytes);
            if let Ok(value) = HeaderValue::from_bytes(&bytes) {
                let mut headers = HeaderMap::new();
                headers.append(AGE, value.clone());
                headers.append(PRAGMA, value.clone());
                headers.append(CONNECTION, value);
                let _ = age(&headers);
                let _ = pragma_no_cache(&headers);
                let names_itself = split_list(&bytes).any(|name| name.eq_ignore_ascii_case(b"age"));
                strip_hop_by_hop(&mut headers);
                prop_assert!(!headers.contains_key(CONNECTION));
                prop_assert_eq!(headers.contains_key(AGE), !names_itself);
            }
        }
    }
}

//! `Vary` (RFC 9111 §4.1): which request headers select among stored variants.

use http::header::VARY;
use http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

use super::{split_list, trim_ows};

/// The value of field `name` in `headers` as §4.1 compares it: `None` when absent;
/// otherwise all lines joined by commas, with OWS around every comma (and at both
/// ends of each line) removed. `a , b` and two lines `a` and `b` both give `a,b`.
fn normalised_value(headers: &HeaderMap, name: &HeaderName) -> Option<Vec<u8>> {
    let mut lines = headers.get_all(name).iter().peekable();
    lines.peek()?;
    let mut combined = Vec::new();
    let mut first = true;
    for line in lines {
        for element in line.as_bytes().split(|&b| b == b',') {
            if !first {
                combined.push(b',');
            }
            first = false;
            combined.extend_from_slice(trim_ows(element));
        }
    }
    Some(combined)
}

/// What `Vary` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vary {
    /// `Vary: *`: no later request ever matches (§4.1).
    Any,
    /// The (lower-case) field names, in order, without duplicates; empty when absent.
    Fields(Vec<HeaderName>),
}

impl Vary {
    /// All `Vary` lines of a response combined. An element that is not a field name
    /// (e.g. `accept-language cookie`, a missing comma) makes the response vary on
    /// something unknowable, so it is read as `*`: never matched (§4.1's MUST NOT).
    pub fn parse(headers: &HeaderMap) -> Self {
        let mut fields: Vec<HeaderName> = Vec::new();
        for line in headers.get_all(VARY) {
            for element in split_list(line.as_bytes()) {
                if element == b"*" {
                    return Vary::Any;
                }
                match HeaderName::from_bytes(element) {
                    Ok(name) if !fields.contains(&name) => fields.push(name),
                    Ok(_) => {}
                    Err(_) => return Vary::Any,
                }
            }
        }
        Vary::Fields(fields)
    }

    /// Whether `self` and `other` name the same fields, in any order (RFC 9110 §12.5.5:
    /// the list is a set of field names), or are both `*`. A response whose `Vary` lists
    /// the fields of a stored one in another order has not changed it: the variants
    /// stored under it stay, under the same [`VariantId`]s.
    pub fn same_as(&self, other: &Vary) -> bool {
        match (self, other) {
            (Vary::Any, Vary::Any) => true,
            // Both without duplicates: equal lengths and one within the other.
            (Vary::Fields(ours), Vary::Fields(theirs)) => {
                ours.len() == theirs.len() && ours.iter().all(|name| theirs.contains(name))
            }
            _ => false,
        }
    }

    /// Whether a new request (`request`) selects a stored response whose original request
    /// had `stored` headers (§4.1): every named field must match after combining repeated
    /// lines and normalising whitespace around commas; a field absent in both matches.
    /// [`Vary::Any`] never matches.
    pub fn matches(&self, stored: &HeaderMap, request: &HeaderMap) -> bool {
        self.matches_within_key(stored, request, |_| false)
    }

    /// [`Vary::matches`], where a field for which `keyed` is true counts as matching
    /// whatever the values: the cache key already holds its value, so every request
    /// filed under the key agrees on it (see [`crate::Settings::keys_redacted`]).
    /// `keyed` is asked only about a field whose values differ.
    pub fn matches_within_key(
        &self,
        stored: &HeaderMap,
        request: &HeaderMap,
        keyed: impl Fn(&HeaderName) -> bool,
    ) -> bool {
        match self {
            Vary::Any => false,
            Vary::Fields(fields) => fields
                .iter()
                .all(|name| normalised_value(stored, name) == normalised_value(request, name) || keyed(name)),
        }
    }
}

/// Identifies one variant among those stored under a key: a digest of the normalised
/// values of the request headers the response varies on. Equal for requests that
/// [`Vary::matches`] treats as the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VariantId(pub u64);

impl VariantId {
    /// The variant of `request` under `vary` (0 when the response does not vary).
    ///
    /// The digest is the first 8 bytes (little-endian) of SHA-256 over, for each varied
    /// field sorted by name: the name and its normalised value (or an absence marker),
    /// each length-prefixed. It is stable across processes and versions of this crate's
    /// format. [`Vary::Any`] gives [`VariantId::ANY`].
    pub fn compute(vary: &Vary, request: &HeaderMap) -> Self {
        let fields = match vary {
            Vary::Any => return Self::ANY,
            Vary::Fields(fields) if fields.is_empty() => return Self::NONE,
            Vary::Fields(fields) => fields,
        };
        let mut sorted: Vec<&HeaderName> = fields.iter().collect();
        sorted.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        sorted.dedup();
        let mut hasher = Sha256::new();
        for name in sorted {
            hasher.update((name.as_str().len() as u64).to_le_bytes());
            hasher.update(name.as_str().as_bytes());
            match normalised_value(request, name) {
                None => hasher.update([0u8]),
                Some(value) => {
                    hasher.update([1u8]);
                    hasher.update((value.len() as u64).to_le_bytes());
                    hasher.update(&value);
                }
            }
        }
        let digest = hasher.finalize();
        let mut first8 = [0u8; 8];
        // Cannot fail: a SHA-256 digest is 32 bytes, so `..8` has exactly 8.
        first8.copy_from_slice(&digest[..8]);
        Self(u64::from_le_bytes(first8))
    }

    /// The variant of a response without `Vary` (or with an empty one).
    pub const NONE: VariantId = VariantId(0);

    /// The marker for `Vary: *`; such a response never matches a later request.
    pub const ANY: VariantId = VariantId(u64::MAX);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    use crate::header::tests::map;

    fn vary(lines: &[&[u8]]) -> Vary {
        let pairs: Vec<(&str, &[u8])> = lines.iter().map(|line| ("vary", *line)).collect();
        Vary::parse(&map(&pairs))
    }

    fn fields(names: &[&'static str]) -> Vary {
        Vary::Fields(names.iter().map(|n| HeaderName::from_static(n)).collect())
    }

    // RFC 9110 §12.5.5: Vary lists field names; lines combine; names lower-cased, deduped.
    #[test]
    fn parse_combines_and_dedupes_rfc9110_12_5_5() {
        assert_eq!(vary(&[]), fields(&[]));
        assert_eq!(vary(&[b"Accept-Encoding"]), fields(&["accept-encoding"]));
        assert_eq!(
            vary(&[b"Accept-Encoding, ACCEPT", b" accept-encoding ,User-Agent"]),
            fields(&["accept-encoding", "accept", "user-agent"])
        );
        assert_eq!(vary(&[b""]), fields(&[]));
    }

    // RFC 9110 §12.5.5: `*` anywhere makes the response vary on everything.
    #[test]
    fn star_anywhere_is_any_rfc9110_12_5_5() {
        assert_eq!(vary(&[b"*"]), Vary::Any);
        assert_eq!(vary(&[b"accept, *"]), Vary::Any);
        assert_eq!(vary(&[b"accept", b" * "]), Vary::Any);
        assert_ne!(vary(&[b"accept, x*"]), Vary::Any);
    }

    // RFC 9111 §4.1: a stored response MUST NOT be used unless every nominated field
    // matches, so an element that is not a field name (RFC 9110 §5.6.2) means "varies on
    // something unknowable": `*`. Empty elements are only list syntax.
    #[test]
    fn invalid_names_make_it_vary_on_everything_rfc9111_4_1() {
        assert_eq!(vary(&[b"accept,, , accept-language"]), fields(&["accept", "accept-language"]));
        for bad in [&b"accept-language cookie"[..], b"\"q\", accept", b"accept, @", b"a\xffb"] {
            assert_eq!(vary(&[bad]), Vary::Any, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    // RFC 9111 §4.1: every named field must match; absent in both matches.
    #[test]
    fn matches_rfc9111_4_1() {
        let v = fields(&["accept-encoding", "accept-language"]);
        let stored = map(&[("accept-encoding", b"gzip"), ("user-agent", b"a")]);
        assert!(v.matches(&stored, &map(&[("accept-encoding", b"gzip"), ("user-agent", b"b")])));
        assert!(!v.matches(&stored, &map(&[("accept-encoding", b"br")])));
        assert!(!v.matches(&stored, &map(&[("accept-encoding", b"GZIP")])), "values are case-sensitive");
        // Present in one only: no match, either way round.
        assert!(!v.matches(&stored, &map(&[("accept-encoding", b"gzip"), ("accept-language", b"en")])));
        assert!(!v.matches(&map(&[]), &stored));
        // Present but empty is not absent.
        assert!(!v.matches(&map(&[("accept-encoding", b"gzip"), ("accept-language", b"")]), &stored));
        // No Vary: everything matches.
        assert!(fields(&[]).matches(&stored, &map(&[])));
    }

    // RFC 9111 §4.1: values are normalised: repeated lines combined, OWS around commas.
    #[test]
    fn matches_normalises_rfc9111_4_1() {
        let v = fields(&["accept-encoding"]);
        let stored = map(&[("accept-encoding", b"gzip, br")]);
        assert!(v.matches(&stored, &map(&[("accept-encoding", b"gzip,br")])));
        assert!(v.matches(&stored, &map(&[("accept-encoding", b"  gzip \t,  br ")])));
        assert!(v.matches(&stored, &map(&[("accept-encoding", b"gzip"), ("accept-encoding", b"br")])));
        assert!(!v.matches(&stored, &map(&[("accept-encoding", b"br, gzip")])), "order matters");
        assert!(!v.matches(&stored, &map(&[("accept-encoding", b"gzip br")])));
    }

    // RFC 9110 §12.5.5: the same field names in another order, another case or over
    // several lines are the same `Vary`; one more or one fewer is not.
    #[test]
    fn same_as_ignores_order_rfc9110_12_5_5() {
        let v = vary(&[b"Accept, Accept-Language"]);
        assert!(v.same_as(&vary(&[b"accept-language,accept"])));
        assert!(v.same_as(&vary(&[b"ACCEPT-LANGUAGE", b"accept, accept"])));
        assert!(!v.same_as(&vary(&[b"accept"])));
        assert!(!v.same_as(&vary(&[b"accept, accept-language, cookie"])));
        assert!(!v.same_as(&vary(&[b"accept, cookie"])));
        assert!(!v.same_as(&Vary::Any));
        assert!(Vary::Any.same_as(&vary(&[b"*"])));
        assert!(vary(&[]).same_as(&vary(&[b""])));
    }

    // RFC 9111 §4.1: `Vary: *` always fails to match.
    #[test]
    fn any_never_matches_rfc9111_4_1() {
        let request = map(&[("accept", b"*/*")]);
        assert!(!Vary::Any.matches(&request, &request));
        assert!(!Vary::Any.matches(&map(&[]), &map(&[])));
    }

    // RFC 9111 §4.1: the variant id follows `matches`.
    #[test]
    fn variant_id_rfc9111_4_1() {
        let v = fields(&["accept-encoding", "accept-language"]);
        let a = map(&[("accept-encoding", b"gzip, br"), ("accept-language", b"en")]);
        let b = map(&[
            ("accept-encoding", b"gzip"),
            ("accept-encoding", b"br"),
            ("accept-language", b"en"),
            ("x", b"1"),
        ]);
        let c = map(&[("accept-encoding", b"gzip, br"), ("accept-language", b"fr")]);
        assert!(v.matches(&a, &b));
        assert_eq!(VariantId::compute(&v, &a), VariantId::compute(&v, &b));
        assert_ne!(VariantId::compute(&v, &a), VariantId::compute(&v, &c));
        // Order of the Vary list does not change the id.
        let reversed = fields(&["accept-language", "accept-encoding"]);
        assert_eq!(VariantId::compute(&reversed, &a), VariantId::compute(&v, &a));
    }

    // RFC 9111 §4.1: absent, empty and present values are three different variants.
    #[test]
    fn variant_id_absent_vs_empty_rfc9111_4_1() {
        let v = fields(&["accept"]);
        let absent = VariantId::compute(&v, &map(&[]));
        let empty = VariantId::compute(&v, &map(&[("accept", b"")]));
        let present = VariantId::compute(&v, &map(&[("accept", b"x")]));
        assert_ne!(absent, empty);
        assert_ne!(empty, present);
        assert_ne!(absent, present);
    }

    // Length prefixes: ("ab", "c") and ("a", "bc") differ; so do the field names.
    #[test]
    fn variant_id_is_length_prefixed_rfc9111_4_1() {
        let v = fields(&["x-a", "x-b"]);
        let one = map(&[("x-a", b"ab"), ("x-b", b"c")]);
        let two = map(&[("x-a", b"a"), ("x-b", b"bc")]);
        assert_ne!(VariantId::compute(&v, &one), VariantId::compute(&v, &two));
        let request = map(&[("x-a", b"1"), ("x-b", b"1")]);
        assert_ne!(
            VariantId::compute(&fields(&["x-a"]), &request),
            VariantId::compute(&fields(&["x-b"]), &request)
        );
    }

    // RFC 9111 §4.1: no Vary gives 0; `Vary: *` gives the fixed marker.
    #[test]
    fn variant_id_markers_rfc9111_4_1() {
        let request = map(&[("accept", b"x")]);
        assert_eq!(VariantId::compute(&fields(&[]), &request), VariantId(0));
        assert_eq!(VariantId::compute(&fields(&[]), &request), VariantId::NONE);
        assert_eq!(VariantId::compute(&Vary::Any, &request), VariantId(u64::MAX));
        assert_eq!(VariantId::compute(&Vary::Any, &request), VariantId::ANY);
    }

    // Stability: the id is a fixed function of its input, so stores written by one
    // build are read by the next. Pinned value; change only with a format version bump.
    #[test]
    fn variant_id_is_stable_rfc9111_4_1() {
        let id = VariantId::compute(&fields(&["accept-encoding"]), &map(&[("accept-encoding", b"gzip")]));
        let mut hasher = Sha256::new();
        hasher.update(15u64.to_le_bytes());
        hasher.update(b"accept-encoding");
        hasher.update([1u8]);
        hasher.update(4u64.to_le_bytes());
        hasher.update(b"gzip");
        let digest = hasher.finalize();
        let expected = u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ]);
        assert_eq!(id, VariantId(expected));
    }

    /// A header line value from a small alphabet, so that matches happen often.
    fn small_value() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![Just(b'a'), Just(b'b'), Just(b','), Just(b' '), Just(b'\t')],
            0..6,
        )
    }

    /// Up to three lines for each of two field names.
    fn small_request() -> impl Strategy<Value = HeaderMap> {
        proptest::collection::vec((0..2usize, small_value()), 0..5).prop_map(|lines| {
            let mut headers = HeaderMap::new();
            for (which, value) in lines {
                let name = if which == 0 { "x-a" } else { "x-b" };
                if let Ok(value) = HeaderValue::from_bytes(&value) {
                    headers.append(name, value);
                }
            }
            headers
        })
    }

    proptest! {
        // RFC 9111 §4.1: matches ⇒ equal VariantId (and matches is reflexive).
        #[test]
        fn matches_implies_equal_variant_id_rfc9111_4_1(a in small_request(), b in small_request(), which in 0..3usize) {
            let v = match which {
                0 => fields(&["x-a"]),
                1 => fields(&["x-b", "x-a"]),
                _ => fields(&["x-a", "x-c"]),
            };
            prop_assert!(v.matches(&a, &a));
            if v.matches(&a, &b) {
                prop_assert_eq!(VariantId::compute(&v, &a), VariantId::compute(&v, &b));
            }
            prop_assert_eq!(v.matches(&a, &b), v.matches(&b, &a));
        }

        // Tolerance: arbitrary Vary lines never panic; parsed names are valid,
        // lower-case and unique.
        #[test]
        fn never_panics_on_arbitrary_bytes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 0..3)) {
            let mut headers = HeaderMap::new();
            for line in &lines {
                if let Ok(value) = HeaderValue::from_bytes(line) {
                    headers.append(VARY, value);
                }
            }
            if let Vary::Fields(names) = Vary::parse(&headers) {
                for (index, name) in names.iter().enumerate() {
                    prop_assert_eq!(name.as_str(), name.as_str().to_ascii_lowercase());
                    prop_assert!(!names[..index].contains(name));
                }
            }
        }
    }
}

//! Entity tags (RFC 9110 §8.8.3) and their comparison (§8.8.3.2).

use http::header::{ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue};

use super::{is_ows, trim_ows};

/// Whether `byte`, known not to be `"`, is an `etagc` (RFC 9110 §8.8.3:
/// `%x21 / %x23-7E / obs-text`): anything but controls, space and DEL.
fn is_etagc_unquoted(byte: u8) -> bool {
    byte > b' ' && byte != 0x7f
}

/// Reads one entity tag at the start of `value`, returning it and the rest.
/// The opaque tag must be UTF-8 (it is kept as a `String`); obs-text that is not
/// UTF-8 makes the tag malformed.
fn parse_prefix(value: &[u8]) -> Option<(EntityTag, &[u8])> {
    let (tag, rest) = parse_ref_prefix(value)?;
    Some((tag.to_owned(), rest))
}

/// [`parse_prefix`] without copying the opaque tag.
fn parse_ref_prefix(value: &[u8]) -> Option<(TagRef<'_>, &[u8])> {
    let (weak, rest) = match value.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, value),
    };
    let rest = rest.strip_prefix(b"\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let tag = &rest[..end];
    // Branch-free over the bytes (no quote among them, so `etagc` is all but controls,
    // space and DEL), and a UTF-8 check only when there is obs-text.
    let malformed = tag.iter().fold(false, |malformed, &byte| malformed | !is_etagc_unquoted(byte));
    if malformed || (!tag.is_ascii() && std::str::from_utf8(tag).is_err()) {
        return None;
    }
    Some((TagRef { weak, tag }, &rest[end + 1..]))
}

/// An entity tag borrowed from a header value: what comparing two tags needs, without
/// copying either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagRef<'a> {
    /// `W/` prefix present.
    pub(crate) weak: bool,
    /// The opaque tag without the quotes: valid UTF-8 (checked when parsed), kept as
    /// bytes so that an ASCII tag, nearly every one, is not checked again.
    pub(crate) tag: &'a [u8],
}

impl TagRef<'_> {
    /// Parses one entity tag, as [`EntityTag::parse`] does.
    pub(crate) fn parse(value: &[u8]) -> Option<TagRef<'_>> {
        match parse_ref_prefix(trim_ows(value))? {
            (tag, []) => Some(tag),
            _ => None,
        }
    }

    fn to_owned(self) -> EntityTag {
        // Lossless: the tag was checked to be UTF-8 when parsed.
        EntityTag { weak: self.weak, tag: String::from_utf8_lossy(self.tag).into_owned() }
    }

    /// Weak comparison (RFC 9110 §8.8.3.2).
    pub(crate) fn weak_eq(&self, other: &TagRef<'_>) -> bool {
        self.tag == other.tag
    }
}

/// An entity tag: `"xyz"` (strong) or `W/"xyz"` (weak).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    /// `W/` prefix present.
    pub weak: bool,
    /// The opaque tag without the quotes.
    pub tag: String,
}

impl EntityTag {
    /// Parses one entity tag; `None` when malformed.
    ///
    /// Surrounding OWS is trimmed; the tag must be quoted (`W/` is case-sensitive,
    /// RFC 9110 §8.8.3) and nothing may follow the closing quote.
    pub fn parse(value: &[u8]) -> Option<Self> {
        TagRef::parse(value).map(TagRef::to_owned)
    }

    /// Strong comparison: both strong and the same opaque tag.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.tag == other.tag
    }

    /// Weak comparison: the same opaque tag, weak or not (used for `If-None-Match`).
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.tag == other.tag
    }

    /// The header form: `"xyz"` or `W/"xyz"`.
    pub fn to_header_string(&self) -> String {
        if self.weak { format!("W/\"{}\"", self.tag) } else { format!("\"{}\"", self.tag) }
    }
}

/// The `ETag` of a response: `None` when absent, malformed, or repeated with different values.
pub fn etag(headers: &HeaderMap) -> Option<EntityTag> {
    etag_ref(headers).map(|(tag, _)| tag.to_owned())
}

/// [`etag`] without copying: the tag, borrowed, and the first `ETag` line it was read
/// from.
pub(crate) fn etag_ref(headers: &HeaderMap) -> Option<(TagRef<'_>, &HeaderValue)> {
    let mut found: Option<(TagRef<'_>, &HeaderValue)> = None;
    for line in headers.get_all(ETAG) {
        let tag = TagRef::parse(line.as_bytes())?;
        match &found {
            Some((earlier, _)) if *earlier != tag => return None,
            Some(_) => {}
            None => found = Some((tag, line)),
        }
    }
    found
}

/// What `If-None-Match` asks for (RFC 9110 §13.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfNoneMatch {
    /// `*`: any current representation.
    Any,
    /// A list of entity tags (never empty).
    Tags(Vec<EntityTag>),
}

impl IfNoneMatch {
    /// Whether `tag` is selected, by weak comparison (RFC 9110 §13.1.2); `Any` selects
    /// every tag.
    pub fn matches(&self, tag: &EntityTag) -> bool {
        match self {
            IfNoneMatch::Any => true,
            IfNoneMatch::Tags(tags) => tags.iter().any(|candidate| candidate.weak_eq(tag)),
        }
    }
}

/// Parses a comma-separated list of entity tags (RFC 9110 §5.6.1, §8.8.3); empty list
/// elements are skipped. `None` when any element is malformed or the list is empty.
/// Commas inside an opaque tag are part of the tag.
pub fn parse_entity_tag_list(value: &[u8]) -> Option<Vec<EntityTag>> {
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        while let [first, tail @ ..] = rest {
            if is_ows(*first) || *first == b',' {
                rest = tail;
            } else {
                break;
            }
        }
        if rest.is_empty() {
            break;
        }
        let (tag, after) = parse_prefix(rest)?;
        tags.push(tag);
        rest = trim_ows(after);
        match rest {
            [] => break,
            [b',', ..] => {}
            _ => return None,
        }
    }
    if tags.is_empty() { None } else { Some(tags) }
}

/// The request's `If-None-Match`, all lines combined: `None` when absent or malformed.
pub fn if_none_match(headers: &HeaderMap) -> Option<IfNoneMatch> {
    let mut tags = Vec::new();
    let mut any = false;
    for line in headers.get_all(IF_NONE_MATCH) {
        if trim_ows(line.as_bytes()) == b"*" {
            any = true;
        } else {
            tags.extend(parse_entity_tag_list(line.as_bytes())?);
        }
    }
    if any {
        Some(IfNoneMatch::Any)
    } else if tags.is_empty() {
        None
    } else {
        Some(IfNoneMatch::Tags(tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strong(tag: &str) -> EntityTag {
        EntityTag { weak: false, tag: tag.to_owned() }
    }

    fn weak(tag: &str) -> EntityTag {
        EntityTag { weak: true, tag: tag.to_owned() }
    }

    fn map(name: http::HeaderName, lines: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(name.clone(), HeaderValue::from_bytes(line).expect("test value"));
        }
        headers
    }

    // RFC 9110 §8.8.3: strong and weak (W/) entity tags.
    #[test]
    fn parses_strong_and_weak_rfc9110_8_8_3() {
        assert_eq!(EntityTag::parse(b"\"xyzzy\""), Some(strong("xyzzy")));
        assert_eq!(EntityTag::parse(b"W/\"xyzzy\""), Some(weak("xyzzy")));
        assert_eq!(EntityTag::parse(b"\"\""), Some(strong("")));
        assert_eq!(EntityTag::parse(b" \t\"a\" "), Some(strong("a")), "OWS trimmed");
    }

    // RFC 9110 §8.8.3: etagc includes '/', 'W', ',' and other visible characters.
    #[test]
    fn opaque_tag_allows_any_etagc_rfc9110_8_8_3() {
        assert_eq!(EntityTag::parse(b"\"a/b\""), Some(strong("a/b")));
        assert_eq!(EntityTag::parse(b"\"W/x\""), Some(strong("W/x")));
        assert_eq!(EntityTag::parse(b"W/\"W/\""), Some(weak("W/")));
        assert_eq!(EntityTag::parse(b"\"a,b\""), Some(strong("a,b")));
        assert_eq!(EntityTag::parse("\"caf\u{e9}\"".as_bytes()), Some(strong("caf\u{e9}")));
    }

    // RFC 9110 §8.8.3: unquoted, unterminated, or with DQUOTE/space inside is malformed.
    #[test]
    fn rejects_malformed_rfc9110_8_8_3() {
        for bad in [
            &b""[..],
            b"xyzzy",
            b"W/xyzzy",
            b"\"",
            b"\"abc",
            b"abc\"",
            b"\"a\"b\"",
            b"\"a b\"",
            b"\"a\tb\"",
            b"w/\"a\"",
            b"W /\"a\"",
            b"W\"a\"",
            b"\"a\" x",
            b"\"a\", \"b\"",
            b"\"\xff\"",
            b"\"a\x7fb\"",
            b"\"a\x00\"",
            b"*",
        ] {
            assert_eq!(EntityTag::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    // RFC 9110 §8.8.3.2: the comparison table.
    #[test]
    fn comparison_table_rfc9110_8_8_3_2() {
        let cases = [
            (weak("1"), weak("1"), false, true),
            (weak("1"), weak("2"), false, false),
            (weak("1"), strong("1"), false, true),
            (strong("1"), strong("1"), true, true),
        ];
        for (a, b, strong_match, weak_match) in cases {
            assert_eq!(a.strong_eq(&b), strong_match, "{a:?} {b:?}");
            assert_eq!(a.weak_eq(&b), weak_match, "{a:?} {b:?}");
        }
    }

    // RFC 9110 §8.8.3: header form round-trips.
    #[test]
    fn to_header_string_rfc9110_8_8_3() {
        assert_eq!(weak("a/b").to_header_string(), "W/\"a/b\"");
        assert_eq!(strong("x").to_header_string(), "\"x\"");
    }

    // RFC 9110 §8.8.3: ETag is a singleton; repeats must agree.
    #[test]
    fn etag_header_rfc9110_8_8_3() {
        assert_eq!(etag(&map(ETAG, &[b"\"v1\""])), Some(strong("v1")));
        assert_eq!(etag(&map(ETAG, &[b"W/\"v1\"", b"W/\"v1\""])), Some(weak("v1")));
        assert_eq!(etag(&map(ETAG, &[b"\"v1\"", b"\"v2\""])), None);
        assert_eq!(etag(&map(ETAG, &[b"\"v1\"", b"W/\"v1\""])), None);
        assert_eq!(etag(&map(ETAG, &[b"v1"])), None);
        assert_eq!(etag(&map(ETAG, &[b"\"v1\"", b"junk"])), None);
        assert_eq!(etag(&HeaderMap::new()), None);
    }

    // RFC 9110 §13.1.2: If-None-Match lists, `*`, and weak comparison.
    #[test]
    fn if_none_match_rfc9110_13_1_2() {
        let parsed = if_none_match(&map(IF_NONE_MATCH, &[b"\"a\", W/\"b\"", b"\"c,d\""]));
        assert_eq!(parsed, Some(IfNoneMatch::Tags(vec![strong("a"), weak("b"), strong("c,d")])));
        let parsed = parsed.expect("just checked");
        assert!(parsed.matches(&weak("a")), "weak comparison");
        assert!(parsed.matches(&strong("b")));
        assert!(parsed.matches(&strong("c,d")));
        assert!(!parsed.matches(&strong("c")));
        assert_eq!(if_none_match(&map(IF_NONE_MATCH, &[b" * "])), Some(IfNoneMatch::Any));
        assert!(IfNoneMatch::Any.matches(&strong("anything")));
        assert_eq!(if_none_match(&HeaderMap::new()), None);
        assert_eq!(if_none_match(&map(IF_NONE_MATCH, &[b"\"a\", b"])), None, "malformed");
        assert_eq!(if_none_match(&map(IF_NONE_MATCH, &[b""])), None, "empty");
        assert_eq!(if_none_match(&map(IF_NONE_MATCH, &[b"\"a\" \"b\""])), None, "missing comma");
    }

    // RFC 9110 §5.6.1: empty list elements are ignored.
    #[test]
    fn entity_tag_list_rfc9110_5_6_1() {
        assert_eq!(parse_entity_tag_list(b" , \"a\" ,, W/\"b\" , "), Some(vec![strong("a"), weak("b")]));
        assert_eq!(parse_entity_tag_list(b" , "), None);
        assert_eq!(parse_entity_tag_list(b"\"a"), None);
    }

    proptest! {
        // RFC 9110 §8.8.3: any tag of etagc characters round-trips through the header form.
        #[test]
        fn round_trip_rfc9110_8_8_3(tag in "[!#-~]{0,20}", is_weak in any::<bool>()) {
            let original = EntityTag { weak: is_weak, tag };
            prop_assert_eq!(EntityTag::parse(original.to_header_string().as_bytes()), Some(original.clone()));
            prop_assert_eq!(parse_entity_tag_list(original.to_header_string().as_bytes()), Some(vec![original]));
        }

        // Tolerance: arbitrary bytes never panic; whatever parses re-parses identically.
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..32)) {
            if let Some(tag) = EntityTag::parse(&bytes) {
                prop_assert_eq!(EntityTag::parse(tag.to_header_string().as_bytes()), Some(tag));
            }
            if let Some(tags) = parse_entity_tag_list(&bytes) {
                prop_assert!(!tags.is_empty());
            }
        }
    }
}

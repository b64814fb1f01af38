//! Entity tags (RFC 9110 §8.8.3) and their comparison (§8.8.3.2).

use http::HeaderMap;

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
    pub fn parse(value: &[u8]) -> Option<Self> {
        let _ = value;
        todo!("header: EntityTag::parse")
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
    let _ = headers;
    todo!("header: etag")
}

//! `Vary` (RFC 9111 §4.1): which request headers select among stored variants.

use http::{HeaderMap, HeaderName};

/// What `Vary` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vary {
    /// `Vary: *`: no later request ever matches (§4.1).
    Any,
    /// The (lower-case) field names, in order, without duplicates; empty when absent.
    Fields(Vec<HeaderName>),
}

impl Vary {
    /// All `Vary` lines of a response combined; invalid field names are ignored.
    pub fn parse(headers: &HeaderMap) -> Self {
        let _ = headers;
        todo!("header: Vary::parse")
    }

    /// Whether a new request (`request`) selects a stored response whose original request
    /// had `stored` headers (§4.1): every named field must match after combining repeated
    /// lines and normalising whitespace around commas; a field absent in both matches.
    /// [`Vary::Any`] never matches.
    pub fn matches(&self, stored: &HeaderMap, request: &HeaderMap) -> bool {
        let _ = (stored, request);
        todo!("header: Vary::matches")
    }
}

/// Identifies one variant among those stored under a key: a digest of the normalised
/// values of the request headers the response varies on. Equal for requests that
/// [`Vary::matches`] treats as the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VariantId(pub u64);

impl VariantId {
    /// The variant of `request` under `vary` (0 when the response does not vary).
    pub fn compute(vary: &Vary, request: &HeaderMap) -> Self {
        let _ = (vary, request);
        todo!("header: VariantId::compute")
    }
}

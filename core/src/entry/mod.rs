//! What the cache stores: [`Entry`] (one response variant, with the redacted request
//! that selected it and its times) and [`EntryMeta`] (the small record listings read).
//!
//! Two encodings: a compact, versioned binary one ([`Entry::encode`] /
//! [`Entry::decode`]) whose metadata block comes first, so stores can list entries
//! without reading bodies ([`EntryMeta::decode_prefix`]); and JSON for humans
//! ([`Entry::to_json`] / [`Entry::from_json`]). Decoding never panics: truncated,
//! corrupt, foreign or older-format input is a [`DecodeError`], which stores treat
//! as a miss and delete.

mod binary;
mod json;
#[cfg(any(test, feature = "conformance"))]
pub mod testing;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Version};

use crate::header::VariantId;
use crate::key::CacheKey;

pub use binary::{FORMAT_VERSION, MAGIC, OLDEST_READ_VERSION};

/// The request that produced a stored response, redacted: method, URL with ignored
/// parameters' values replaced, and only the headers `Vary` or `match_headers` need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    /// The request method.
    pub method: Method,
    /// The URL the user asked for, redacted.
    pub url: String,
    /// The headers needed to match variants, redacted.
    pub headers: HeaderMap,
}

/// A stored response. `headers` keeps every line, repeated ones in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// Status code.
    pub status: StatusCode,
    /// HTTP version.
    pub version: Version,
    /// All header lines (hop-by-hop fields removed), repeated ones kept in order.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The URL the response finally came from, when redirects were followed (redacted).
    pub final_url: Option<String>,
}

/// Room a served response's header map keeps for the fields the driver adds when it
/// serves it (`Age`, `Cache-Status`), so that adding them does not make it grow.
pub(crate) const SERVED_FIELDS: usize = 2;

impl StoredResponse {
    /// A copy to serve: like `clone`, but its header map has room for the
    /// [`SERVED_FIELDS`]. A cloned map's list of fields is exactly full, so the first
    /// field added to it would reallocate that list and move every field. The copy is
    /// sized by distinct names (a field may repeat any number of times); a map with
    /// more names than `http` can size up front is simply cloned.
    pub(crate) fn clone_to_serve(&self) -> StoredResponse {
        let Some(headers) = self.headers_with_room() else {
            return self.clone();
        };
        StoredResponse {
            status: self.status,
            version: self.version,
            headers,
            body: self.body.clone(),
            final_url: self.final_url.clone(),
        }
    }

    /// The header map copied into one with room for the [`SERVED_FIELDS`]; `None` when
    /// `http` cannot size such a map.
    fn headers_with_room(&self) -> Option<HeaderMap> {
        let mut headers = HeaderMap::try_with_capacity(self.headers.keys_len() + SERVED_FIELDS).ok()?;
        for (name, value) in &self.headers {
            headers.try_append(name.clone(), value.clone()).ok()?;
        }
        Some(headers)
    }
}

/// One stored response variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The primary key it is stored under.
    pub key: CacheKey,
    /// Which variant of that key (from `Vary`).
    pub variant: VariantId,
    /// The redacted request.
    pub request: StoredRequest,
    /// The response.
    pub response: StoredResponse,
    /// When the request that got this response was sent (RFC 9111 §4.2.3 `request_time`).
    pub request_time: SystemTime,
    /// When the response arrived (§4.2.3 `response_time`).
    pub response_time: SystemTime,
    /// When this entry was first stored (kept across 304 refreshes).
    pub created: SystemTime,
    /// When it becomes stale, as computed when stored; `None` = never.
    pub expires: Option<SystemTime>,
    /// The age the response already had when it arrived: RFC 9111 §4.2.3
    /// `corrected_initial_age`, computed when stored from its `Date` and `Age` fields,
    /// `request_time` and `response_time` ([`AgeInputs::corrected_initial_age`]).
    /// Kept so that serving it does not parse those fields again; see
    /// [`Entry::current_age`].
    ///
    /// [`AgeInputs::corrected_initial_age`]: crate::freshness::AgeInputs::corrected_initial_age
    pub initial_age: Duration,
}

/// The metadata of an entry: what listing, filtering and sorting read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// Primary key.
    pub key: CacheKey,
    /// Variant.
    pub variant: VariantId,
    /// Request method.
    pub method: Method,
    /// Redacted request URL.
    pub url: String,
    /// Response status.
    pub status: StatusCode,
    /// Body length in bytes.
    pub body_size: u64,
    /// When first stored.
    pub created: SystemTime,
    /// When it becomes stale; `None` = never.
    pub expires: Option<SystemTime>,
    /// When the response arrived.
    pub response_time: SystemTime,
}

impl EntryMeta {
    /// Whether the entry is stale at `now` by its stored expiry.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        expired(self.expires, now)
    }
}

/// Whether a stored expiry (`None` = never) has passed at `now`.
pub(crate) fn expired(expires: Option<SystemTime>, now: SystemTime) -> bool {
    expires.is_some_and(|expires| expires <= now)
}

impl Entry {
    /// The entry's metadata.
    pub fn meta(&self) -> EntryMeta {
        EntryMeta {
            key: self.key,
            variant: self.variant,
            method: self.request.method.clone(),
            url: self.request.url.clone(),
            status: self.response.status,
            body_size: self.response.body.len() as u64,
            created: self.created,
            expires: self.expires,
            response_time: self.response_time,
        }
    }

    /// Whether the entry is stale at `now` by its stored expiry.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        expired(self.expires, now)
    }

    /// RFC 9111 §4.2.3 `current_age` at `now`: the [`initial_age`](Entry::initial_age)
    /// plus the time since the response arrived (zero when `now` is earlier).
    pub fn current_age(&self, now: SystemTime) -> Duration {
        crate::freshness::current_age(self.initial_age, self.response_time, now)
    }

    /// The [`initial_age`](Entry::initial_age) its stored fields and times give, as
    /// [`store`](crate::machine::store) computes it. Decoders of formats written
    /// before the field was kept use it; a hand-built entry can too.
    pub fn computed_initial_age(&self) -> Duration {
        crate::freshness::AgeInputs::of(self).corrected_initial_age()
    }
}

/// Why bytes could not be decoded into an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not an httpcache entry (wrong magic or not JSON of ours).
    #[error("not an httpcache entry")]
    Foreign,
    /// Written by another format version.
    #[error("entry format version {found}, expected {expected}")]
    Version {
        /// The version found.
        found: u16,
        /// The version this build reads.
        expected: u16,
    },
    /// Cut short.
    #[error("entry truncated")]
    Truncated,
    /// Checksum mismatch or an invalid field.
    #[error("entry corrupt: {0}")]
    Corrupt(&'static str),
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, header};

    use super::*;

    // RFC 9111 §3.1 / §4: a stored response is served with its header fields as stored,
    // repeated ones in order; the copy to serve keeps room for `Age` and `Cache-Status`.
    #[test]
    fn copy_to_serve_is_the_stored_response_with_room() {
        let mut headers = HeaderMap::new();
        for n in 0..10 {
            headers.append(format!("x-field-{n}").parse::<http::HeaderName>().unwrap(), HeaderValue::from(n));
        }
        headers.append(header::VARY, HeaderValue::from_static("accept"));
        headers.append(header::VARY, HeaderValue::from_static("accept-language"));
        let stored = StoredResponse {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers,
            body: Bytes::from_static(b"body"),
            final_url: Some("https://example.com/final".into()),
        };
        let copy = stored.clone_to_serve();
        assert_eq!(copy, stored);
        let vary: Vec<_> = copy.headers.get_all(header::VARY).iter().collect();
        assert_eq!(vary, ["accept", "accept-language"]);
        assert!(copy.headers.capacity() >= stored.headers.keys_len() + SERVED_FIELDS);
    }

    // A field repeated tens of thousands of times (more values than `http` can size a
    // map for up front) is served as stored, without a panic.
    #[test]
    fn copy_to_serve_of_a_huge_header_block_is_a_clone() {
        let mut headers = HeaderMap::new();
        for _ in 0..30_000 {
            headers.append(header::SET_COOKIE, HeaderValue::from_static("a=b"));
        }
        let stored = StoredResponse {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers,
            body: Bytes::new(),
            final_url: None,
        };
        assert_eq!(stored.clone_to_serve(), stored);
    }
}

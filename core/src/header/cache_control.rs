//! `Cache-Control` request and response directives (RFC 9111 §5.2), RFC 5861's
//! `stale-while-revalidate` / `stale-if-error`, and `Pragma: no-cache` (§5.4).
//!
//! All `Cache-Control` lines of a message are combined. Directive names are
//! case-insensitive; unknown directives are ignored; a directive with an invalid
//! argument counts as absent. When a directive appears more than once with different
//! values, the response is treated as stale (`max-age=0`), as RFC 9111 §4.2.1 allows.

use std::time::Duration;

use http::{HeaderMap, HeaderName};

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
    /// The directives of all `Cache-Control` lines in `headers`.
    pub fn parse(headers: &HeaderMap) -> Self {
        let _ = headers;
        todo!("header: ResponseDirectives::parse")
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
        let _ = headers;
        todo!("header: RequestDirectives::parse")
    }
}

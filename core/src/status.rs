//! What a response says about the cache: [`CacheStatus`] in its extensions and an
//! RFC 9211 `Cache-Status` header.

use std::time::{Duration, SystemTime};

use http::header::HeaderName;
use http::{Extensions, HeaderValue};

use crate::driver::FinalUrl;
use crate::key::CacheKey;
use crate::machine::Reason;

/// The name of the RFC 9211 header.
pub const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

/// The cache's name in `Cache-Status`.
pub const CACHE_NAME: &str = "httpcache";

/// How the response was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Served from the cache without contacting the origin.
    Cache,
    /// The origin confirmed the stored response (304) and it was served.
    Revalidated,
    /// The origin's response.
    Origin,
    /// Synthesised by the cache (a 504 for only-if-cached).
    Synthesized,
}

/// Cache information attached to every response the drivers return, in its
/// extensions. Adapters expose it through an extension trait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStatus {
    /// How the response was produced.
    pub source: Source,
    /// Served from the cache (including revalidated and stale responses).
    pub from_cache: bool,
    /// The origin confirmed the stored response with a 304.
    pub revalidated: bool,
    /// The response served was stale.
    pub stale: bool,
    /// The origin's response was written to the cache.
    pub stored: bool,
    /// When the stored entry was created.
    pub created_at: Option<SystemTime>,
    /// When the stored entry stops being fresh (`None`: never, or not stored).
    pub expires: Option<SystemTime>,
    /// Whether the entry is past `expires` now.
    pub is_expired: bool,
    /// The key the entry is stored under.
    pub cache_key: Option<CacheKey>,
    /// The age of the response served from the cache.
    pub age: Option<Duration>,
    /// Why.
    pub reason: Reason,
}

impl CacheStatus {
    /// A status for a response the cache did not touch.
    pub fn bypass(reason: Reason) -> Self {
        CacheStatus {
            source: Source::Origin,
            from_cache: false,
            revalidated: false,
            stale: false,
            stored: false,
            created_at: None,
            expires: None,
            is_expired: false,
            cache_key: None,
            age: None,
            reason,
        }
    }

    /// The RFC 9211 `Cache-Status` value, e.g. `httpcache; hit; ttl=42; key="..."`.
    /// `now` gives `ttl` (negative when stale).
    pub fn header_value(&self, now: SystemTime) -> HeaderValue {
        let mut out = HeaderText::default();
        out.extend_from_slice(CACHE_NAME.as_bytes());
        match self.source {
            Source::Cache => out.extend_from_slice(b"; hit"),
            Source::Revalidated => out.extend_from_slice(b"; fwd=stale; fwd-status=304"),
            Source::Synthesized => out.extend_from_slice(b"; fwd=miss"),
            Source::Origin => {
                let fwd = match self.reason {
                    Reason::Miss => "uri-miss",
                    Reason::VaryMismatch => "vary-miss",
                    Reason::ForceRefresh | Reason::RequestNoCache => "request",
                    Reason::Disabled | Reason::BodyNotReplayable | Reason::MethodNotCacheable => "bypass",
                    Reason::ClientConditional => "request",
                    _ if self.cache_key.is_some() && self.created_at.is_some() => "stale",
                    _ => "miss",
                };
                out.extend_from_slice(b"; fwd=");
                out.extend_from_slice(fwd.as_bytes());
                if self.stored {
                    out.extend_from_slice(b"; stored");
                }
            }
        }
        if let Some(expires) = self.expires {
            out.extend_from_slice(b"; ttl=");
            match expires.duration_since(now) {
                Ok(left) => out.decimal(left.as_secs()),
                Err(past) => {
                    out.extend_from_slice(b"-");
                    out.decimal(past.duration().as_secs());
                }
            }
        }
        if let Some(key) = self.cache_key {
            out.extend_from_slice(b"; key=\"");
            out.extend_from_slice(&key.to_hex());
            out.extend_from_slice(b"\"");
        }
        out.extend_from_slice(b"; detail=");
        out.extend_from_slice(self.reason.as_str().as_bytes());
        // One allocation: the value's own copy of the text built on the stack.
        HeaderValue::from_bytes(out.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(CACHE_NAME))
    }
}

/// The text of a `Cache-Status` value, built on the stack: the longest one we write
/// is under 170 bytes (name, `fwd`, `stored`, a 20-digit `ttl`, the 64-digit key and the
/// longest `detail`), so the capacity is never reached; were it ever, the text would be
/// cut short, never overrun.
struct HeaderText {
    bytes: [u8; 192],
    len: usize,
}

impl Default for HeaderText {
    fn default() -> Self {
        HeaderText { bytes: [0; 192], len: 0 }
    }
}

impl HeaderText {
    fn extend_from_slice(&mut self, text: &[u8]) {
        let end = (self.len + text.len()).min(self.bytes.len());
        self.bytes[self.len..end].copy_from_slice(&text[..end - self.len]);
        self.len = end;
    }

    fn decimal(&mut self, value: u64) {
        let mut buffer = [0u8; 20];
        self.extend_from_slice(decimal(&mut buffer, value));
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// `value` in decimal, written at the end of `buffer` (no allocation).
pub(crate) fn decimal(buffer: &mut [u8; 20], value: u64) -> &[u8] {
    let mut rest = value;
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    &buffer[start..]
}

/// What the cache says about a response, read from the [`CacheStatus`] (and the
/// [`FinalUrl`]) in its extensions. Every response an httpcache client returns carries
/// a [`CacheStatus`].
///
/// Implemented here for `http::Response<B>` (the responses of ureq, isahc and the
/// drivers); each adapter implements it for its client's own response types and
/// re-exports it. An implementation gives only [`CacheStatusExt::cache_extensions`].
///
/// `Marker` lets an adapter crate implement this trait for another crate's response
/// type (Rust's orphan rule asks for a type of the implementing crate in the impl): it
/// is that crate's marker type. Calls never name it; it is inferred.
///
/// ```
/// use httpcache_core::{CacheStatus, CacheStatusExt, Reason};
///
/// let mut response = http::Response::new(());
/// assert!(response.cache_status().is_none() && !response.from_cache());
/// response.extensions_mut().insert(CacheStatus::bypass(Reason::Disabled));
/// assert_eq!(response.cache_status().map(|status| status.reason), Some(Reason::Disabled));
/// assert!(!response.from_cache() && !response.is_stale());
/// ```
pub trait CacheStatusExt<Marker = ()> {
    /// The response's extensions, where the cache leaves its [`CacheStatus`] and [`FinalUrl`].
    fn cache_extensions(&self) -> &Extensions;

    /// The cache's account of the response, if it went through a cache.
    fn cache_status(&self) -> Option<&CacheStatus> {
        self.cache_extensions().get()
    }

    /// Where the response finally came from, after redirects ([`FinalUrl`]): known for
    /// responses served from the cache too.
    fn final_url(&self) -> Option<&str> {
        self.cache_extensions().get::<FinalUrl>().map(|url| url.0.as_str())
    }

    /// Served from the cache (including revalidated and stale responses).
    #[allow(clippy::wrong_self_convention)] // the name users of requests-cache know
    fn from_cache(&self) -> bool {
        self.cache_status().is_some_and(|status| status.from_cache)
    }

    /// The origin confirmed the stored response with a 304.
    fn revalidated(&self) -> bool {
        self.cache_status().is_some_and(|status| status.revalidated)
    }

    /// The response served was stale (stale-if-error, stale-while-revalidate,
    /// max-stale, only-if-cached).
    fn is_stale(&self) -> bool {
        self.cache_status().is_some_and(|status| status.stale)
    }

    /// When the stored entry was created.
    fn created_at(&self) -> Option<SystemTime> {
        self.cache_status()?.created_at
    }

    /// When the stored entry stops being fresh (`None`: never, or not stored).
    fn expires(&self) -> Option<SystemTime> {
        self.cache_status()?.expires
    }

    /// Whether the stored entry is past its expiry.
    fn is_expired(&self) -> bool {
        self.cache_status().is_some_and(|status| status.is_expired)
    }

    /// The key the entry is stored under.
    fn cache_key(&self) -> Option<CacheKey> {
        self.cache_status()?.cache_key
    }
}

impl<B> CacheStatusExt for http::Response<B> {
    fn cache_extensions(&self) -> &Extensions {
        self.extensions()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    // RFC 9211 §2: a hit carries `hit` and a `ttl` parameter, negative when stale (§2.4).
    #[test]
    fn hit_and_stale_ttl() {
        let mut status = CacheStatus::bypass(Reason::Fresh);
        status.source = Source::Cache;
        status.from_cache = true;
        status.expires = Some(at(1_100));
        assert_eq!(status.header_value(at(1_000)), "httpcache; hit; ttl=100; detail=fresh");
        assert_eq!(status.header_value(at(1_130)), "httpcache; hit; ttl=-30; detail=fresh");
    }

    // RFC 9211 §2.7: the `key` parameter; large and zero ttl values print in full.
    #[test]
    fn key_and_ttl_formatting() {
        let key = CacheKey::hash("https://example.com/");
        let mut status = CacheStatus::bypass(Reason::Fresh);
        status.source = Source::Cache;
        status.cache_key = Some(key);
        status.expires = Some(at(10_000_000_000));
        let expected = format!("httpcache; hit; ttl=9999999999; key=\"{key}\"; detail=fresh");
        assert_eq!(status.header_value(at(1)), expected.as_str());
        status.expires = Some(at(5));
        let zero = format!("httpcache; hit; ttl=0; key=\"{key}\"; detail=fresh");
        assert_eq!(status.header_value(at(5)), zero.as_str());
        assert_eq!(key.to_string().len(), 64);
        assert_eq!(key.to_string().parse::<CacheKey>(), Ok(key));
    }

    // RFC 9211 §2.2: `fwd` says why the request went forward; §2.5 `stored`.
    #[test]
    fn forwarded_miss_and_stored() {
        let mut status = CacheStatus::bypass(Reason::Miss);
        status.stored = true;
        assert_eq!(status.header_value(at(0)), "httpcache; fwd=uri-miss; stored; detail=miss");
        let bypass = CacheStatus::bypass(Reason::Disabled);
        assert_eq!(bypass.header_value(at(0)), "httpcache; fwd=bypass; detail=disabled");
        let mut revalidated = CacheStatus::bypass(Reason::Revalidated);
        revalidated.source = Source::Revalidated;
        assert_eq!(
            revalidated.header_value(at(0)),
            "httpcache; fwd=stale; fwd-status=304; detail=revalidated"
        );
    }
}

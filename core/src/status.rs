//! What a response says about the cache: [`CacheStatus`] in its extensions and an
//! RFC 9211 `Cache-Status` header.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use http::HeaderValue;
use http::header::HeaderName;

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
        let mut out = String::with_capacity(96);
        out.push_str(CACHE_NAME);
        match self.source {
            Source::Cache => out.push_str("; hit"),
            Source::Revalidated => out.push_str("; fwd=stale; fwd-status=304"),
            Source::Synthesized => out.push_str("; fwd=miss"),
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
                let _ = write!(out, "; fwd={fwd}");
                if self.stored {
                    out.push_str("; stored");
                }
            }
        }
        if let Some(expires) = self.expires {
            let ttl = match expires.duration_since(now) {
                Ok(left) => left.as_secs() as i64,
                Err(past) => -(past.duration().as_secs() as i64),
            };
            let _ = write!(out, "; ttl={ttl}");
        }
        if let Some(key) = self.cache_key {
            let _ = write!(out, "; key=\"{key}\"");
        }
        let _ = write!(out, "; detail={}", self.reason.as_str());
        // Only ASCII was written.
        HeaderValue::from_str(&out).unwrap_or_else(|_| HeaderValue::from_static(CACHE_NAME))
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

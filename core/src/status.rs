//! What a response says about the cache: [`CacheStatus`] in its extensions and an
//! RFC 9211 `Cache-Status` header.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
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
    /// Served from the cache: without contacting the origin, or, stale, in place of the
    /// origin's failed answer ([`Reason::StaleIfError`]).
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
    /// Why the request went to the origin, when it did: for a revalidated response
    /// (whose [`reason`](Self::reason) says what the origin's answer did) whether the
    /// stored response was stale ([`Reason::Stale`], [`Reason::ResponseNoCache`]...) or
    /// the request asked ([`Reason::Refresh`], [`Reason::RequestNoCache`],
    /// [`Reason::ClientConditional`]...). `None` for a response the cache answered
    /// alone (a hit, a 504 for `only-if-cached`).
    pub forwarded: Option<Reason>,
}

impl CacheStatus {
    /// A status for a response the cache did not touch: from the origin, forwarded
    /// because of `reason`.
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
            forwarded: Some(reason),
        }
    }

    /// Puts this status on a response's head, as the drivers put theirs: the
    /// `Cache-Status` field ([`header_value`](Self::header_value) at `now`), after any
    /// an upstream cache sent (RFC 9211 §2), and the extension.
    pub fn mark(self, head: &mut http::response::Parts, now: SystemTime) {
        // A map already full goes without the field rather than panic.
        let _ = head.headers.try_append(CACHE_STATUS, self.header_value(now));
        head.extensions.insert(self);
    }

    /// The RFC 9211 `Cache-Status` value, e.g. `httpcache; hit; ttl=42; key="..."`.
    /// `now` gives `ttl` (negative when stale).
    ///
    /// Each thread remembers the last few values it made, with everything each was
    /// made from: the same answer for the same key within the same second, what
    /// repeated requests for one resource get, is a shared copy of the value made
    /// first, with no text built and nothing allocated.
    pub fn header_value(&self, now: SystemTime) -> HeaderValue {
        thread_local! {
            static SAID: RefCell<[Option<(Said, HeaderValue)>; SAID_SLOTS]> =
                const { RefCell::new([const { None }; SAID_SLOTS]) };
        }
        let said = Said::of(self, now);
        // On a thread whose memory is gone (asked from another thread-local's
        // destructor), or were it ever borrowed twice, the value is made.
        let remembered = SAID.try_with(|memo| {
            let mut memo = memo.try_borrow_mut().ok()?;
            let slot = &mut memo[said.slot()];
            if let Some((seen, value)) = slot.as_ref()
                && *seen == said
            {
                return Some(value.clone());
            }
            let value = said.value();
            *slot = Some((said, value.clone()));
            Some(value)
        });
        remembered.ok().flatten().unwrap_or_else(|| said.value())
    }
}

/// Why a request with `reason` was forwarded, as RFC 9211 §2.2 names it (whether or
/// not the origin's answer was then stored).
fn fwd(reason: Reason) -> &'static str {
    match reason {
        Reason::Miss => "uri-miss",
        Reason::VaryMismatch => "vary-miss",
        // (An invalidation follows only an unsafe method.)
        Reason::MethodNotCacheable | Reason::Invalidated => "method",
        Reason::Disabled | Reason::BodyNotReplayable => "bypass",
        // The request (its directives, or the caller's options) did not allow using
        // what is stored.
        Reason::ClientConditional
        | Reason::ForceRefresh
        | Reason::Refresh
        | Reason::RequestNoCache
        | Reason::RequestMaxAge
        | Reason::RequestMinFresh
        | Reason::RequestExpireAfter => "request",
        // A stored response was selected, but it was stale or had to be validated
        // first (and a 304 that did not match it is fetched again).
        Reason::Stale | Reason::AlwaysRevalidate | Reason::ResponseNoCache | Reason::ValidatorMismatch => {
            "stale"
        }
        Reason::PartialContent => "partial",
        _ => "miss",
    }
}

/// How many `Cache-Status` values each thread remembers: one per slot, chosen by the
/// key's first byte.
const SAID_SLOTS: usize = 8;

/// What a `Cache-Status` value is made from: all of it, and nothing else, so that two
/// statuses with the same `Said` have the same value.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Said {
    source: Source,
    reason: Reason,
    forwarded: Option<Reason>,
    stored: bool,
    /// Whole seconds of freshness left, or past (`true`) when stale.
    ttl: Option<(bool, u64)>,
    key: Option<CacheKey>,
}

impl Said {
    fn of(status: &CacheStatus, now: SystemTime) -> Self {
        Said {
            source: status.source,
            reason: status.reason,
            forwarded: status.forwarded,
            stored: status.stored,
            ttl: status.expires.map(|expires| match expires.duration_since(now) {
                Ok(left) => (false, left.as_secs()),
                Err(past) => (true, past.duration().as_secs()),
            }),
            key: status.cache_key,
        }
    }

    fn slot(&self) -> usize {
        self.key.map_or(0, |key| usize::from(key.0[0])) % SAID_SLOTS
    }

    /// The value, made.
    fn value(&self) -> HeaderValue {
        let mut out = HeaderText::default();
        out.extend_from_slice(CACHE_NAME.as_bytes());
        match self.source {
            // RFC 9211 §2.1, §2.2: a stale response standing in for the origin's error
            // was no hit: the request went forward, because it was stale, or because
            // the request asked (`refresh`, its own `no-cache`).
            Source::Cache if self.reason == Reason::StaleIfError => {
                let asked = self.forwarded.map(fwd) == Some("request");
                out.extend_from_slice(if asked { b"; fwd=request" } else { b"; fwd=stale" });
            }
            Source::Cache => out.extend_from_slice(b"; hit"),
            Source::Revalidated => {
                // RFC 9211 §2.2: the request asked for the revalidation, or the stored
                // response needed it. §2.3: the status the origin answered with: a 304,
                // or the 200 of a HEAD whose validators freshened the stored GET (RFC
                // 9111 §4.3.5).
                let asked = self.forwarded.map(fwd) == Some("request");
                out.extend_from_slice(if asked { b"; fwd=request" } else { b"; fwd=stale" });
                let head = self.reason == Reason::HeadFreshened;
                out.extend_from_slice(if head { b"; fwd-status=200" } else { b"; fwd-status=304" });
            }
            // Neither a hit nor forwarded (the only-if-cached 504): `detail` says why.
            Source::Synthesized => {}
            Source::Origin => {
                out.extend_from_slice(b"; fwd=");
                out.extend_from_slice(fwd(self.reason).as_bytes());
                if self.stored {
                    out.extend_from_slice(b"; stored");
                }
            }
        }
        if let Some((past, seconds)) = self.ttl {
            out.extend_from_slice(if past { b"; ttl=-" } else { b"; ttl=" });
            out.decimal(seconds);
        }
        if let Some(key) = self.key {
            out.extend_from_slice(b"; key=\"");
            out.extend_from_slice(&key.to_hex());
            out.extend_from_slice(b"\"");
        }
        out.extend_from_slice(b"; detail=");
        out.extend_from_slice(self.reason.as_str().as_bytes());
        // One allocation, the text's own: its copies share it.
        HeaderValue::from_maybe_shared(Bytes::from_owner(out))
            .unwrap_or_else(|_| HeaderValue::from_static(CACHE_NAME))
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

impl AsRef<[u8]> for HeaderText {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
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

    // RFC 9211 §2: each cache appends its field, after those of caches nearer the origin.
    #[test]
    fn a_mark_comes_after_an_upstream_caches_field() {
        let (mut head, ()) = http::Response::builder()
            .header(CACHE_STATUS, "upstream; hit")
            .body(())
            .expect("a response")
            .into_parts();
        CacheStatus::bypass(Reason::OriginError).mark(&mut head, at(0));
        let fields: Vec<_> = head.headers.get_all(CACHE_STATUS).iter().collect();
        assert_eq!(fields, ["upstream; hit", "httpcache; fwd=miss; detail=origin-error"]);
        assert_eq!(
            head.extensions.get::<CacheStatus>().map(|status| status.reason),
            Some(Reason::OriginError)
        );
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

    /// The value a thread remembers is never one for another second, key or answer:
    /// the ttl counts down across a second's boundary, and keys that share a slot
    /// (the same first byte) each get their own.
    #[test]
    fn a_remembered_value_is_for_its_second_and_key() {
        let mut status = CacheStatus::bypass(Reason::Fresh);
        status.source = Source::Cache;
        status.expires = Some(at(1_100));
        let mut a = [7u8; 32];
        let mut b = [7u8; 32];
        a[1] = 1;
        b[1] = 2;
        for key in [CacheKey(a), CacheKey(b), CacheKey(a)] {
            status.cache_key = Some(key);
            let at_ms = |ms| at(1_000) + Duration::from_millis(ms);
            let first = status.header_value(at_ms(100));
            assert_eq!(first, format!("httpcache; hit; ttl=99; key=\"{key}\"; detail=fresh").as_str());
            assert_eq!(status.header_value(at_ms(900)), first, "the same second");
            let later = format!("httpcache; hit; ttl=98; key=\"{key}\"; detail=fresh");
            assert_eq!(status.header_value(at_ms(1_100)), later.as_str(), "the next second");
        }
        status.reason = Reason::Stale;
        status.cache_key = Some(CacheKey(a));
        assert_eq!(
            status.header_value(at(1_000)),
            format!("httpcache; hit; ttl=100; key=\"{}\"; detail=stale", CacheKey(a)).as_str()
        );
    }

    proptest::proptest! {
        /// Whatever a thread asked before, the value it gets is the one made afresh
        /// from the status and the time.
        #[test]
        fn the_remembered_value_is_the_made_one(
            asks in proptest::collection::vec(
                (0usize..4, 0usize..4, proptest::prelude::any::<bool>(), 0usize..3, proptest::option::of(0u64..4), 0u64..4_000),
                1..40,
            ),
        ) {
            let sources = [Source::Cache, Source::Revalidated, Source::Origin, Source::Synthesized];
            let reasons = [Reason::Fresh, Reason::Miss, Reason::Stale, Reason::MethodNotCacheable];
            // Keys 1 and 2 share a slot; `None` has one of its own.
            let keys = [None, Some(CacheKey([3; 32])), Some(CacheKey([3 + SAID_SLOTS as u8; 32]))];
            for (source, reason, stored, key, expires, now_ms) in asks {
                let mut status = CacheStatus::bypass(reasons[reason]);
                status.source = sources[source];
                status.stored = stored;
                status.cache_key = keys[key];
                status.created_at = keys[key].map(|_| at(0));
                status.expires = expires.map(at);
                let now = at(0) + Duration::from_millis(now_ms);
                proptest::prop_assert_eq!(status.header_value(now), Said::of(&status, now).value());
            }
        }
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

    // RFC 9211 §2.3: `fwd-status` is the status the next hop answered with: a HEAD that
    // freshened the stored GET (RFC 9111 §4.3.5) was answered with a 200, not a 304.
    #[test]
    fn a_head_freshening_forwarded_a_200() {
        let mut freshened = CacheStatus::bypass(Reason::HeadFreshened);
        freshened.source = Source::Revalidated;
        assert_eq!(
            freshened.header_value(at(0)),
            "httpcache; fwd=stale; fwd-status=200; detail=head-freshened"
        );
    }

    // RFC 9211 §2.2: `fwd=request` when the request made the cache go forward (the
    // caller's `refresh`, its own `no-cache` or preconditions), `fwd=stale` when the
    // stored response needed it; the revalidation's outcome does not change which.
    #[test]
    fn a_revalidation_the_request_asked_for_is_forwarded_by_request() {
        let revalidated = |forwarded, reason| {
            let mut status = CacheStatus::bypass(reason);
            status.source = Source::Revalidated;
            status.forwarded = Some(forwarded);
            status.header_value(at(0))
        };
        for asked in [Reason::Refresh, Reason::RequestNoCache, Reason::RequestMaxAge] {
            assert_eq!(
                revalidated(asked, Reason::Revalidated),
                "httpcache; fwd=request; fwd-status=304; detail=revalidated"
            );
        }
        assert_eq!(
            revalidated(Reason::ClientConditional, Reason::HeadFreshened),
            "httpcache; fwd=request; fwd-status=200; detail=head-freshened"
        );
        // A stored response standing in for the origin's error, after a refresh.
        let mut standing_in = CacheStatus::bypass(Reason::StaleIfError);
        standing_in.source = Source::Cache;
        standing_in.forwarded = Some(Reason::Refresh);
        assert_eq!(standing_in.header_value(at(0)), "httpcache; fwd=request; detail=stale-if-error");
        standing_in.forwarded = Some(Reason::Stale);
        assert_eq!(standing_in.header_value(at(0)), "httpcache; fwd=stale; detail=stale-if-error");
        for needed in [Reason::Stale, Reason::ResponseNoCache, Reason::AlwaysRevalidate] {
            assert_eq!(
                revalidated(needed, Reason::Revalidated),
                "httpcache; fwd=stale; fwd-status=304; detail=revalidated"
            );
        }
    }
}

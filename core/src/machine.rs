//! The policy machine: [`decide`] before the origin is asked, [`store`] after it
//! answers, [`on_error`] when it could not be reached.
//!
//! Data in, data out. Nothing here reads a clock, touches storage or fails: stored
//! variants come in as a slice, what to do comes out as an exhaustive
//! `#[must_use]` enum whose variants are verbs the driver performs, each carrying
//! the [`Reason`] for it.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, request, response};

use crate::entry::{Entry, StoredRequest, StoredResponse};
use crate::freshness::{
    AgeInputs, Lifetime, LifetimeSource, expires_at, explicit_lifetime, heuristic_lifetime,
    lifetime_of_expiry, since,
};
use crate::header::cache_control::{FieldScope, MaxStale, RequestDirectives, ResponseDirectives};
use crate::header::date::date_header;
use crate::header::etag::{IfNoneMatch, etag_ref};
use crate::header::{
    Copies, VariantId, Vary, content_length, hop_by_hop_fields, own_values, strip_hop_by_hop,
};
use crate::key::{CacheKey, cache_key, redact_headers, redact_url};
use crate::settings::{Expiry, MatchHeaders, RequestOptions, Settings, StaleAllowance};

/// Why the machine chose what it chose: for tracing, for the `Cache-Status` header,
/// and for users asking "why a miss?".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    // --- decide ---
    /// The cache is disabled.
    Disabled,
    /// The request body cannot be replayed (a stream), so the cache is bypassed.
    BodyNotReplayable,
    /// The method's responses are not stored ([`Settings::allowable_methods`]).
    MethodNotCacheable,
    /// The request carries its own preconditions that the cache does not answer: an
    /// `If-Match`, `If-Unmodified-Since` or `If-Range`, any on a method other than GET
    /// or HEAD, or an `If-None-Match` / `If-Modified-Since` when no stored response
    /// may be served as it is (RFC 9111 §4.3.2). It goes to the origin as sent.
    ClientConditional,
    /// Nothing is stored under the key.
    Miss,
    /// Variants are stored, but none matches the request's `Vary` fields (RFC 9111 §4.1).
    VaryMismatch,
    /// [`RequestOptions::force_refresh`] (also why a HEAD's response to it is not stored).
    ForceRefresh,
    /// [`RequestOptions::expire_after`] is [`Expiry::DoNotCache`].
    DoNotCache,
    /// The stored response is fresh (RFC 9111 §4.2).
    Fresh,
    /// The stored response is stale.
    Stale,
    /// [`RequestOptions::refresh`]: revalidate before use.
    Refresh,
    /// [`Settings::always_revalidate`].
    AlwaysRevalidate,
    /// The request said `no-cache` or `Pragma: no-cache` (RFC 9111 §5.2.1.4, §5.4).
    RequestNoCache,
    /// The request's `max-age` is lower than the stored response's age (§5.2.1.1).
    RequestMaxAge,
    /// The request's `min-fresh` is not met (§5.2.1.3).
    RequestMinFresh,
    /// The stored response is older than [`RequestOptions::expire_after`].
    RequestExpireAfter,
    /// The stored response said `no-cache` (§5.2.2.4).
    ResponseNoCache,
    /// A stale response served within the request's `max-stale` (§5.2.1.2).
    MaxStale,
    /// A stale response served while it is revalidated in the background (RFC 5861 §3).
    StaleWhileRevalidate,
    /// `only-if-cached` and nothing usable is stored: 504 (§5.2.1.7).
    OnlyIfCachedMiss,
    /// [`RequestOptions::only_if_cached`]: a stale response served rather than asking the origin.
    OnlyIfCachedStale,
    // --- store ---
    /// The response was stored.
    Stored,
    /// A 304 refreshed the stored response (RFC 9111 §4.3.4).
    Revalidated,
    /// A `HEAD` response freshened the stored `GET` response (§4.3.5).
    HeadFreshened,
    /// A `HEAD` response's validators or `Content-Length` disagree with the stored `GET`
    /// response's: that one is stale (§4.3.5), and is removed.
    HeadMismatch,
    /// The request said `no-store` (§5.2.1.5).
    RequestNoStore,
    /// The response said `no-store` (§5.2.2.5).
    ResponseNoStore,
    /// A partial response (206 or `Content-Range`): never stored, never served whole (§3.3).
    PartialContent,
    /// A 304 changed `Vary`: the stored variant was re-filed under its new variant.
    VaryChanged,
    /// The status is not in [`Settings::allowable_codes`].
    StatusNotCacheable,
    /// `private` in a shared cache (§5.2.2.7).
    Private,
    /// A shared cache and the request carried `Authorization` (§3.5).
    Authorization,
    /// `Vary: *` never matches, so storing is pointless (§4.1).
    VaryStar,
    /// `Vary` names a field among [`Settings::ignored_parameters`], which stored requests
    /// keep redacted: no later request would match it (§4.1), so storing is pointless.
    /// (Not when the key holds the field by value: [`Settings::keys_redacted`].)
    VaryRedacted,
    /// `must-understand` with a status code this cache does not understand (§5.2.2.3).
    MustUnderstand,
    /// [`Settings::filter_fn`] said no.
    Filtered,
    /// The body is larger than [`Settings::max_entry_bytes`].
    TooLarge,
    /// [`Settings::read_only`].
    ReadOnly,
    /// The response has no freshness and no validator: it could never be used.
    NeverFresh,
    /// A 304 answered a request the cache did not make conditional.
    Unsolicited304,
    /// A 304's validator does not match the stored response: fetch again unconditionally.
    ValidatorMismatch,
    /// An unsafe method succeeded: stored responses for its URLs are invalidated (§4.4).
    Invalidated,
    /// The origin failed and a stale response is served instead (RFC 5861 §4).
    StaleIfError,
    /// The origin failed and nothing stored may be served in its place.
    OriginError,
}

impl Reason {
    /// A short machine-readable name, e.g. `vary-mismatch`.
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            Disabled => "disabled",
            BodyNotReplayable => "body-not-replayable",
            MethodNotCacheable => "method-not-cacheable",
            ClientConditional => "client-conditional",
            Miss => "miss",
            VaryMismatch => "vary-mismatch",
            ForceRefresh => "force-refresh",
            DoNotCache => "do-not-cache",
            Fresh => "fresh",
            Stale => "stale",
            Refresh => "refresh",
            AlwaysRevalidate => "always-revalidate",
            RequestNoCache => "request-no-cache",
            RequestMaxAge => "request-max-age",
            RequestMinFresh => "request-min-fresh",
            RequestExpireAfter => "request-expire-after",
            ResponseNoCache => "response-no-cache",
            MaxStale => "max-stale",
            StaleWhileRevalidate => "stale-while-revalidate",
            OnlyIfCachedMiss => "only-if-cached-miss",
            OnlyIfCachedStale => "only-if-cached-stale",
            Stored => "stored",
            Revalidated => "revalidated",
            HeadFreshened => "head-freshened",
            HeadMismatch => "head-mismatch",
            RequestNoStore => "request-no-store",
            ResponseNoStore => "response-no-store",
            PartialContent => "partial-content",
            VaryChanged => "vary-changed",
            StatusNotCacheable => "status-not-cacheable",
            Private => "private",
            Authorization => "authorization",
            VaryStar => "vary-star",
            VaryRedacted => "vary-redacted",
            MustUnderstand => "must-understand",
            Filtered => "filtered",
            TooLarge => "too-large",
            ReadOnly => "read-only",
            NeverFresh => "never-fresh",
            Unsolicited304 => "unsolicited-304",
            ValidatorMismatch => "validator-mismatch",
            Invalidated => "invalidated",
            StaleIfError => "stale-if-error",
            OriginError => "origin-error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serve a stored variant without waiting for the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serve {
    /// Which of the stored variants passed to [`decide`].
    pub index: usize,
    /// Its current age, for the `Age` header (RFC 9111 §5.1).
    pub age: Duration,
    /// Whether it is stale.
    pub stale: bool,
    /// Revalidate it in the background with these conditional headers
    /// (stale-while-revalidate, RFC 5861 §3).
    pub revalidate_in_background: Option<Conditional>,
    /// Why.
    pub reason: Reason,
    /// Answer `304 Not Modified` rather than the stored response: the request carries
    /// its own `If-None-Match` (or, without one, `If-Modified-Since`) that the stored
    /// response, a 2xx, satisfies, so the client's copy is current (RFC 9111 §4.3.2).
    pub not_modified: bool,
}

/// Send the request with conditional headers, then pass the answer to [`store`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revalidate {
    /// The stored variant being revalidated.
    pub index: usize,
    /// `If-None-Match` / `If-Modified-Since` to add (RFC 9111 §4.3.1); empty when the
    /// stored response has no validator, or the method is neither GET nor HEAD (RFC 9110
    /// §13.1.2: a matching `If-None-Match` gets such a request a 412): the request is
    /// then unconditional, but the stored response still backs `stale-if-error`. Empty
    /// too for a HEAD carrying the client's own ([`Reason::ClientConditional`]), which
    /// go as they are.
    pub conditional: Conditional,
    /// Why.
    pub reason: Reason,
}

/// What to do with a request, before asking the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action {
    /// Answer from the cache.
    Serve(Serve),
    /// Ask the origin whether the stored response is still good.
    Revalidate(Revalidate),
    /// Ask the origin, then pass its answer to [`store`].
    Fetch(Reason),
    /// Ask the origin and leave the cache alone entirely.
    PassThrough(Reason),
    /// Answer `504 Gateway Timeout` without asking anyone (only-if-cached miss).
    GatewayTimeout(Reason),
}

impl Action {
    /// The reason carried by the action.
    pub fn reason(&self) -> Reason {
        match self {
            Action::Serve(serve) => serve.reason,
            Action::Revalidate(revalidate) => revalidate.reason,
            Action::Fetch(reason) | Action::PassThrough(reason) | Action::GatewayTimeout(reason) => *reason,
        }
    }
}

/// What happened on the wire, handed to [`store`].
#[derive(Debug, Clone, Copy)]
pub struct Exchange<'a> {
    /// The request as the user made it (without the conditional headers the cache added).
    pub request: &'a request::Parts,
    /// Its cache key.
    pub key: CacheKey,
    /// The response head.
    pub response: &'a response::Parts,
    /// The response body.
    pub body: &'a Bytes,
    /// When the request was sent.
    pub request_time: SystemTime,
    /// When the response arrived.
    pub response_time: SystemTime,
    /// The URL the response finally came from, when redirects were followed.
    pub final_url: Option<&'a Uri>,
}

/// What to do after the origin answered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome {
    /// Write this new entry, then return the origin's response.
    Store {
        /// The entry to put.
        entry: Box<Entry>,
        /// Keys to remove as well (an unsafe method the user chose to cache, §4.4).
        invalidate: Vec<CacheKey>,
        /// As [`Outcome::Invalidate::uris`]: when keys depend on request headers
        /// (`match_headers`, `key_fn`), also remove the GET/HEAD entries stored for these
        /// URIs, found by URL. Empty otherwise.
        invalidate_uris: Vec<Uri>,
        /// Why.
        reason: Reason,
    },
    /// A 304 (or a HEAD) refreshed the stored response: serve `entry`, and write it
    /// when `persist` (false in read-only mode): with
    /// [`Store::refresh`](crate::Store::refresh), its body being the one stored, or
    /// whole when `replaces` re-files it under another variant.
    Refresh {
        /// The updated entry.
        entry: Box<Entry>,
        /// Whether to write it back.
        persist: bool,
        /// The variant it was stored as before, when the merge changed `Vary` (remove it);
        /// `None` in read-only mode, which removes nothing.
        /// (Served at once, its current age is the one it arrived with,
        /// `entry.initial_age`, RFC 9111 §4.2.3.)
        replaces: Option<VariantId>,
        /// Why.
        reason: Reason,
        /// The merged response's fields that its `no-cache="..."` (or, in a shared
        /// cache, `private="..."`) names, the 304's own among them: served with this
        /// response, which the 304 just validated, and never stored (RFC 9111 §5.2.2.4,
        /// §5.2.2.7). Usually empty.
        served_only: HeaderMap,
    },
    /// The origin failed: serve the stored response that was being revalidated.
    ServeStale {
        /// How stale it is.
        staleness: Duration,
        /// Why.
        reason: Reason,
    },
    /// Remove these keys (after an unsafe method, §4.4), then return the origin's response.
    Invalidate {
        /// The keys.
        keys: Vec<CacheKey>,
        /// When keys depend on request headers (`match_headers`, `key_fn`): also remove
        /// the GET/HEAD entries stored for these URIs, found by URL.
        uris: Vec<Uri>,
        /// Why.
        reason: Reason,
    },
    /// Send the request again without the conditional headers.
    Retry(Reason),
    /// Return the origin's response; nothing is written.
    Skip(Reason),
}

impl Outcome {
    /// The reason carried by the outcome.
    pub fn reason(&self) -> Reason {
        match self {
            Outcome::Store { reason, .. }
            | Outcome::Refresh { reason, .. }
            | Outcome::ServeStale { reason, .. }
            | Outcome::Invalidate { reason, .. } => *reason,
            Outcome::Retry(reason) | Outcome::Skip(reason) => *reason,
        }
    }
}

/// Preconditions a cache leaves to the origin (RFC 9111 §4.3.2: `If-Match` and
/// `If-Unmodified-Since` do not apply to a cache; `If-Range` goes with a range request,
/// which this cache does not answer).
const ORIGIN_PRECONDITIONS: [HeaderName; 3] =
    [header::IF_MATCH, header::IF_UNMODIFIED_SINCE, header::IF_RANGE];

/// Preconditions a cache evaluates against a stored response it would serve to a GET or
/// HEAD (RFC 9111 §4.3.2), `If-None-Match` taking precedence.
const CACHE_PRECONDITIONS: [HeaderName; 2] = [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE];

/// What deciding on a stored response reads from its header fields besides its times,
/// gathered in one pass over them rather than a hashed lookup per field.
#[derive(Debug, Default, PartialEq, Eq)]
struct Glance {
    /// It has a `Vary` field.
    vary: bool,
    /// A `Cache-Control` line may say `no-store`, `no-cache` or `immutable`
    /// ([`ResponseDirectives::line_may_restrict_fresh_use`]).
    may_restrict_fresh_use: bool,
    /// It has a `Content-Range` field.
    content_range: bool,
}

impl Glance {
    fn of(headers: &HeaderMap) -> Self {
        let mut glance = Glance::default();
        for (name, value) in headers {
            if *name == header::CACHE_CONTROL {
                glance.may_restrict_fresh_use |= ResponseDirectives::line_may_restrict_fresh_use(value);
            } else if *name == header::VARY {
                glance.vary = true;
            } else if *name == header::CONTENT_RANGE {
                glance.content_range = true;
            }
        }
        glance
    }
}

/// Whether `stored` (the request that produced a stored response) may answer a
/// request with `method`: a stored GET answers GET and HEAD; a stored HEAD only HEAD;
/// other methods only themselves.
fn method_compatible(stored: &Method, method: &Method) -> bool {
    stored == method || (*stored == Method::GET && *method == Method::HEAD)
}

/// The stored variant that answers `request`, if any (RFC 9111 §4.1): method
/// compatible, `Vary` matching, the most recent by `Date` (then receipt time).
/// A field the key holds by value though it is stored redacted
/// ([`Settings::keys_redacted`]) matches within the key.
pub fn select_variant(request: &request::Parts, stored: &[Entry], settings: &Settings) -> Option<usize> {
    select(request, stored, settings).map(|(index, _)| index)
}

/// [`select_variant`], with the [`Glance`] at the variant chosen.
fn select(request: &request::Parts, stored: &[Entry], settings: &Settings) -> Option<(usize, Glance)> {
    // `Vary` is parsed only where the response may have one.
    let usable = |entry: &Entry, may_vary: bool| {
        method_compatible(&entry.request.method, &request.method)
            && (!may_vary
                || Vary::parse(&entry.response.headers).matches_within_key(
                    &entry.request.headers,
                    &request.headers,
                    |name| settings.keys_redacted(name),
                ))
    };
    // One stored variant (the common case): nothing to rank, and its fields are read
    // in one pass.
    if let [only] = stored {
        let glance = Glance::of(&only.response.headers);
        return usable(only, glance.vary).then_some((0, glance));
    }
    let mut best: Option<(usize, (SystemTime, SystemTime, bool))> = None;
    for (index, entry) in stored.iter().enumerate() {
        if !usable(entry, true) {
            continue;
        }
        let date = date_header(&entry.response.headers, &header::DATE).unwrap_or(entry.response_time);
        // Prefer the exact method (a stored HEAD answering HEAD is no better than a GET,
        // but a GET also carries the body), then the newest.
        let rank = (date, entry.response_time, entry.request.method == Method::GET);
        if best.as_ref().is_none_or(|(_, best_rank)| rank > *best_rank) {
            best = Some((index, rank));
        }
    }
    best.map(|(index, _)| (index, Glance::of(&stored[index].response.headers)))
}

/// The conditional header fields a revalidation adds to the request (RFC 9111 §4.3.1):
/// at most two, so kept as two fields rather than a header map (which would allocate
/// two tables for them). Add them to a request with [`Conditional::add_to`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditional {
    /// `If-None-Match`: the stored response's entity tag.
    pub if_none_match: Option<HeaderValue>,
    /// `If-Modified-Since`: the stored response's `Last-Modified`, when it is a valid date.
    pub if_modified_since: Option<HeaderValue>,
}

impl Conditional {
    /// Whether there is no field to add (the stored response has no validator).
    pub fn is_empty(&self) -> bool {
        self.if_none_match.is_none() && self.if_modified_since.is_none()
    }

    /// The fields, as (name, value) pairs: `If-None-Match` first.
    pub fn iter(&self) -> impl Iterator<Item = (HeaderName, &HeaderValue)> {
        let if_none_match = self.if_none_match.as_ref().map(|value| (header::IF_NONE_MATCH, value));
        let if_modified_since =
            self.if_modified_since.as_ref().map(|value| (header::IF_MODIFIED_SINCE, value));
        if_none_match.into_iter().chain(if_modified_since)
    }

    /// Sets the fields in `headers`, replacing any of the same names.
    pub fn add_to(&self, headers: &mut HeaderMap) {
        if let Some(value) = &self.if_none_match {
            headers.insert(header::IF_NONE_MATCH, value.clone());
        }
        if let Some(value) = &self.if_modified_since {
            headers.insert(header::IF_MODIFIED_SINCE, value.clone());
        }
    }
}

/// The conditional header fields that revalidate `entry` (RFC 9111 §4.3.1).
pub fn conditional_headers(entry: &Entry) -> Conditional {
    let headers = &entry.response.headers;
    let if_none_match = etag_ref(headers).and_then(|(tag, line)| {
        // The stored line as it is, when it is the tag alone (it nearly always is).
        if line.as_bytes().len() == tag.tag.len() + if tag.weak { 4 } else { 2 } {
            Some(line.clone())
        } else {
            let prefix = if tag.weak { "W/" } else { "" };
            HeaderValue::from_str(&format!("{prefix}\"{}\"", String::from_utf8_lossy(tag.tag))).ok()
        }
    });
    let if_modified_since = headers
        .get(header::LAST_MODIFIED)
        .filter(|_| date_header(headers, &header::LAST_MODIFIED).is_some())
        .cloned();
    Conditional { if_none_match, if_modified_since }
}

/// The conditional header fields that revalidate `entry` for `request`: its validators
/// ([`conditional_headers`]) for a GET or HEAD, none for another method (a POST the
/// settings let the cache store), to which an `If-None-Match` that matches makes the
/// origin answer 412, not 304, and which ignores `If-Modified-Since` (RFC 9110 §13.1.2,
/// §13.1.3): such a response is refreshed by sending the request again as it is.
fn revalidation_conditional(request: &request::Parts, entry: &Entry) -> Conditional {
    if matches!(request.method, Method::GET | Method::HEAD) {
        conditional_headers(entry)
    } else {
        Conditional::default()
    }
}

fn allowance_covers(allowance: StaleAllowance, staleness: Duration) -> bool {
    match allowance {
        StaleAllowance::Off => false,
        StaleAllowance::Always => true,
        StaleAllowance::AtMost(limit) => staleness <= limit,
    }
}

/// Whether a stored response may be served stale at all (RFC 9111 §4.2.4):
/// not under `must-revalidate`, `proxy-revalidate` (shared), `no-cache`, or an
/// `s-maxage` in a shared cache (§5.2.2.10).
fn may_serve_stale(directives: &ResponseDirectives, settings: &Settings) -> bool {
    !(directives.must_revalidate
        || matches!(directives.no_cache, Some(FieldScope::All))
        || (settings.shared && (directives.proxy_revalidate || directives.s_maxage.is_some())))
}

/// Decides what to do with `request`, given the variants stored under its key.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use httpcache_core::machine::{Action, Reason, decide};
/// use httpcache_core::{RequestOptions, Settings};
///
/// let (request, ()) = http::Request::get("https://example.com/").body(()).unwrap().into_parts();
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let action = decide(now, &request, &[], &Settings::default(), &RequestOptions::default());
/// assert_eq!(action, Action::Fetch(Reason::Miss));
/// ```
pub fn decide(
    now: SystemTime,
    request: &request::Parts,
    stored: &[Entry],
    settings: &Settings,
    options: &RequestOptions,
) -> Action {
    match decide_unread(request, settings, options) {
        Some(action) => action,
        None => decide_stored(now, request, stored, settings, options),
    }
}

/// The part of [`decide`] that does not look at the stored variants: the action when
/// the request settles it alone (the cache disabled, a method not stored, the client's
/// own conditional request, `force_refresh`, `expire_after: DoNotCache`), else `None`.
/// A driver that gets an action here sends the request without reading the store.
#[inline]
pub(crate) fn decide_unread(
    request: &request::Parts,
    settings: &Settings,
    options: &RequestOptions,
) -> Option<Action> {
    if settings.disabled {
        return Some(Action::PassThrough(Reason::Disabled));
    }
    let reason = if !settings.allowable_methods.contains(&request.method) {
        Reason::MethodNotCacheable
    } else if !request.headers.is_empty() && preconditions_for_origin(request) {
        Reason::ClientConditional
    } else if options.force_refresh {
        Reason::ForceRefresh
    } else if options.expire_after == Some(Expiry::DoNotCache) {
        Reason::DoNotCache
    } else {
        return None;
    };
    let only_if_cached = options.only_if_cached || RequestDirectives::parse(&request.headers).only_if_cached;
    Some(fetch_or_gateway_timeout(only_if_cached, reason))
}

/// Whether the request carries preconditions only the origin may evaluate: any of
/// [`ORIGIN_PRECONDITIONS`], or for a method other than GET and HEAD any at all (RFC
/// 9110 §13.1.3: `If-Modified-Since` means nothing to it, and an `If-None-Match` that
/// fails calls for a 412 from the origin, §13.1.2).
fn preconditions_for_origin(request: &request::Parts) -> bool {
    let has = |name: &HeaderName| request.headers.contains_key(name);
    ORIGIN_PRECONDITIONS.iter().any(has)
        || (!matches!(request.method, Method::GET | Method::HEAD) && CACHE_PRECONDITIONS.iter().any(has))
}

/// §5.2.1.7: with only-if-cached, answer from the cache or with a 504, never the origin.
fn fetch_or_gateway_timeout(only_if_cached: bool, reason: Reason) -> Action {
    if only_if_cached { Action::GatewayTimeout(Reason::OnlyIfCachedMiss) } else { Action::Fetch(reason) }
}

/// The rest of [`decide`], once [`decide_unread`] found that the stored variants matter.
#[inline]
pub(crate) fn decide_stored(
    now: SystemTime,
    request: &request::Parts,
    stored: &[Entry],
    settings: &Settings,
    options: &RequestOptions,
) -> Action {
    let action = decide_variants(now, request, stored, settings, options);
    if request.headers.is_empty() {
        return action;
    }
    with_client_preconditions(action, request, stored, options)
}

/// RFC 9111 §4.3.2: a GET or HEAD with its own `If-None-Match` or `If-Modified-Since`
/// ([`decide_unread`] forwarded the other conditional requests) is answered from a
/// stored response the cache would serve anyway: `304 Not Modified` when the stored
/// response satisfies the client's validator ([`Serve::not_modified`]), the stored
/// response itself when it does not. Any other action sends the request to the origin
/// as the client made it, its preconditions untouched (the origin's 304 is the
/// client's, passed through), as before this evaluation existed: a
/// [`Reason::ClientConditional`] fetch, or for a HEAD whose stored GET is stale a
/// [`Reason::ClientConditional`] revalidation with no validators of the cache's own,
/// whose 200 freshens that GET (§4.3.5).
fn with_client_preconditions(
    action: Action,
    request: &request::Parts,
    stored: &[Entry],
    options: &RequestOptions,
) -> Action {
    let headers = &request.headers;
    if !CACHE_PRECONDITIONS.iter().any(|name| headers.contains_key(name)) {
        return action;
    }
    match action {
        Action::Serve(mut serve) => {
            serve.not_modified =
                stored.get(serve.index).is_some_and(|entry| client_copy_is_current(headers, entry));
            Action::Serve(serve)
        }
        Action::GatewayTimeout(reason) => Action::GatewayTimeout(reason),
        // A HEAD that must go to the origin takes the stored GET with it, unconditional
        // but for the client's own fields: the origin's 200 then freshens (or outdates)
        // that GET as any HEAD's does (§4.3.5), where stored on its own it would take the
        // GET's place, with no body. The origin's 304 answers the client's validators,
        // not the stored response's, and is passed through.
        Action::Revalidate(revalidate)
            if request.method == Method::HEAD
                && stored.get(revalidate.index).is_some_and(|entry| entry.request.method == Method::GET) =>
        {
            Action::Revalidate(Revalidate {
                index: revalidate.index,
                conditional: Conditional::default(),
                reason: Reason::ClientConditional,
            })
        }
        _ => {
            let only_if_cached = options.only_if_cached || RequestDirectives::parse(headers).only_if_cached;
            fetch_or_gateway_timeout(only_if_cached, Reason::ClientConditional)
        }
    }
}

/// Whether the client's `If-None-Match`, or without one its `If-Modified-Since`, is
/// false for `entry` (RFC 9110 §13.2.2), so that a 304 answers it: a listed entity tag
/// matches the stored one by weak comparison, or `*` (any stored response); else the
/// stored `Last-Modified` (or `Date`, or the time it was received, RFC 9111 §4.3.2) is
/// no later than the client's date. A malformed or unusable field is true: the stored
/// response is served in full, which is never wrong. So is a stored response that is not
/// a 2xx (a 404 or a redirect `allowable_codes` lets in): preconditions do not apply to it
/// (RFC 9110 §13.2.1), and a 304 stands only for a 200 (§15.4.5).
fn client_copy_is_current(headers: &HeaderMap, entry: &Entry) -> bool {
    if !entry.response.status.is_success() {
        return false;
    }
    if headers.contains_key(header::IF_NONE_MATCH) {
        return match crate::header::etag::if_none_match(headers) {
            Some(IfNoneMatch::Any) => true,
            Some(IfNoneMatch::Tags(tags)) => etag_ref(&entry.response.headers)
                .is_some_and(|(stored, _)| tags.iter().any(|tag| tag.tag.as_bytes() == stored.tag)),
            None => false,
        };
    }
    let Some(since) = date_header(headers, &header::IF_MODIFIED_SINCE) else {
        return false;
    };
    let stored = &entry.response.headers;
    let modified = date_header(stored, &header::LAST_MODIFIED)
        .or_else(|| date_header(stored, &header::DATE))
        .unwrap_or_else(|| whole_seconds(entry.response_time));
    modified <= since
}

/// `time` without its fraction of a second, as an HTTP date would give it.
fn whole_seconds(time: SystemTime) -> SystemTime {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => time,
    }
}

/// [`decide_stored`] before the client's own preconditions are looked at.
fn decide_variants(
    now: SystemTime,
    request: &request::Parts,
    stored: &[Entry],
    settings: &Settings,
    options: &RequestOptions,
) -> Action {
    let request_directives = RequestDirectives::parse(&request.headers);
    let only_if_cached = options.only_if_cached || request_directives.only_if_cached;
    let fetch = |reason| fetch_or_gateway_timeout(only_if_cached, reason);
    let Some((index, glance)) = select(request, stored, settings) else {
        return fetch(if stored.is_empty() { Reason::Miss } else { Reason::VaryMismatch });
    };
    let entry = &stored[index];
    let fresh = entry.expires.is_none_or(|expires| now < expires);
    // A fresh response's use depends on `no-store`, `no-cache` and `immutable` alone:
    // below, every other directive is read only on the way to serving it stale, which a
    // fresh response never takes (a fresh one is served, or revalidated, or, with
    // only-if-cached, served as it is). So when a quick scan finds none of the three,
    // a hit does without parsing `Cache-Control`.
    let directives = if fresh && !glance.may_restrict_fresh_use {
        ResponseDirectives::default()
    } else {
        ResponseDirectives::parse(&entry.response.headers)
    };
    if let Some(reason) = storage_refused(&directives, entry.response.status) {
        // §5.2.2.5: it should never have been stored (a 304 merge can add the directive).
        return fetch(reason);
    }
    if partial(entry.response.status, glance.content_range) {
        // §3.3: an incomplete response never answers a request for the whole.
        return fetch(Reason::PartialContent);
    }
    let age = entry.current_age(now);
    // Time left before the stored expiry, or time past it (one is zero).
    let (remaining, staleness) = match entry.expires.map(|expires| expires.duration_since(now)) {
        None => (Duration::MAX, Duration::ZERO),
        Some(Ok(left)) => (left, Duration::ZERO),
        Some(Err(past)) => (Duration::ZERO, past.duration()),
    };

    // Reasons to go to the origin even though the response may be fresh.
    let mut must_ask = if options.refresh {
        Some(Reason::Refresh)
    } else if settings.always_revalidate {
        Some(Reason::AlwaysRevalidate)
    } else if request_directives.no_cache {
        Some(Reason::RequestNoCache)
    } else if matches!(directives.no_cache, Some(FieldScope::All)) {
        Some(Reason::ResponseNoCache)
    } else {
        None
    };
    // Reasons the request does not accept the response, fresh or stale: `max-stale`
    // relaxes staleness only, `max-age` and `min-fresh` still apply (§5.2.1.1, §5.2.1.3).
    if must_ask.is_none() {
        // RFC 8246: an immutable, fresh response is not revalidated on a reload-style max-age.
        if let Some(max_age) = request_directives.max_age
            && age > max_age
            && !(directives.immutable && fresh)
        {
            must_ask = Some(Reason::RequestMaxAge);
        } else if let Some(min_fresh) = request_directives.min_fresh
            && (!fresh || remaining < min_fresh)
        {
            must_ask = Some(Reason::RequestMinFresh);
        } else if stale_by_request_expiry(options, entry, now) {
            must_ask = Some(Reason::RequestExpireAfter);
        }
    }

    if fresh && must_ask.is_none() {
        return Action::Serve(Serve {
            index,
            age,
            stale: false,
            revalidate_in_background: None,
            reason: Reason::Fresh,
            not_modified: false,
        });
    }

    // Stale (or not acceptable as fresh). Forced revalidations never serve stale.
    let stale_allowed = may_serve_stale(&directives, settings);
    if must_ask.is_none() && stale_allowed {
        if let Some(max_stale) = request_directives.max_stale
            && match max_stale {
                MaxStale::Any => true,
                MaxStale::AtMost(limit) => staleness <= limit,
            }
        {
            return Action::Serve(Serve {
                index,
                age,
                stale: true,
                revalidate_in_background: None,
                reason: Reason::MaxStale,
                not_modified: false,
            });
        }
        let by_directive = settings.cache_control
            && directives.stale_while_revalidate.is_some_and(|window| staleness <= window);
        if !only_if_cached && (by_directive || allowance_covers(settings.stale_while_revalidate, staleness)) {
            return Action::Serve(Serve {
                index,
                age,
                stale: true,
                revalidate_in_background: Some(revalidation_conditional(request, entry)),
                reason: Reason::StaleWhileRevalidate,
                not_modified: false,
            });
        }
    }
    let origin_requires_validation = matches!(directives.no_cache, Some(FieldScope::All));
    if options.only_if_cached && (fresh || stale_allowed) && !origin_requires_validation {
        // requests-cache semantics: never contact the origin, serve what is stored; but
        // never a response the origin forbids using unvalidated: stale under
        // must-revalidate (§4.2.4), or under `no-cache`, fresh or not (§5.2.2.4).
        return Action::Serve(Serve {
            index,
            age,
            stale: !fresh,
            revalidate_in_background: None,
            reason: Reason::OnlyIfCachedStale,
            not_modified: false,
        });
    }
    if only_if_cached {
        return Action::GatewayTimeout(Reason::OnlyIfCachedMiss);
    }
    Action::Revalidate(Revalidate {
        index,
        conditional: revalidation_conditional(request, entry),
        reason: must_ask.unwrap_or(Reason::Stale),
    })
}

/// Whether [`RequestOptions::expire_after`] makes `entry` stale at `now`: older than it,
/// counted from receipt, as a stored `After` is (`expires_at`), not by the response's
/// age (a response that arrived old is not stale at once).
#[inline]
pub(crate) fn stale_by_request_expiry(options: &RequestOptions, entry: &Entry, now: SystemTime) -> bool {
    match options.expire_after {
        Some(Expiry::Immediately) => true,
        Some(Expiry::After(limit)) => {
            now.duration_since(entry.response_time).unwrap_or(Duration::ZERO) >= limit
        }
        Some(Expiry::At(at)) => now >= at,
        _ => false,
    }
}

/// Whether a response is incomplete (RFC 9111 §3.3): a 206, or any response carrying
/// `Content-Range`. Such responses are never stored (this cache does not combine parts).
pub fn is_partial(status: StatusCode, headers: &HeaderMap) -> bool {
    partial(status, headers.contains_key(header::CONTENT_RANGE))
}

/// [`is_partial`], given whether the response has a `Content-Range` field.
fn partial(status: StatusCode, content_range: bool) -> bool {
    status == StatusCode::PARTIAL_CONTENT || content_range
}

/// The status codes whose caching requirements this cache understands (§5.2.2.3).
fn understood_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 200..=205 | 300..=308 | 400..=418 | 421..=429 | 431 | 451 | 500..=511)
}

/// Why a response varying as `vary` says must not be stored, since no later request
/// could select it (§4.1): `Vary: *`, or a field the stored request keeps redacted (one
/// of the ignored parameters), whose stored value, `REDACTED`, no real request matches
/// (and a request that sent that very text would be served another's response), unless
/// the key holds that field's value ([`Settings::keys_redacted`]).
pub(crate) fn vary_refused(vary: &Vary, settings: &Settings) -> Option<Reason> {
    match vary {
        Vary::Any => Some(Reason::VaryStar),
        Vary::Fields(names)
            if names
                .iter()
                .any(|name| settings.is_ignored(name.as_str()) && !settings.keys_redacted(name)) =>
        {
            Some(Reason::VaryRedacted)
        }
        Vary::Fields(_) => None,
    }
}

/// Why a response with `directives` and `status` must not be stored, by its
/// `Cache-Control` alone: `no-store` (§5.2.2.5), unless `must-understand` comes with it
/// and this cache understands the status code, in which case `no-store` is ignored, as
/// §5.2.2.3 says a cache SHOULD; a status code it does not understand is never stored
/// under `must-understand`.
pub(crate) fn storage_refused(directives: &ResponseDirectives, status: StatusCode) -> Option<Reason> {
    if directives.must_understand {
        (!understood_status(status)).then_some(Reason::MustUnderstand)
    } else {
        directives.no_store.then_some(Reason::ResponseNoStore)
    }
}

/// The response facts freshness depends on.
struct FreshnessInputs<'a> {
    headers: &'a HeaderMap,
    status: StatusCode,
    uri: &'a Uri,
    response_time: SystemTime,
}

/// How long a new response stays fresh under the precedence in [`crate::settings`].
fn lifetime(
    inputs: &FreshnessInputs<'_>,
    directives: &ResponseDirectives,
    settings: &Settings,
    options: &RequestOptions,
) -> Lifetime {
    if settings.cache_control
        && let Some((duration, source)) =
            explicit_lifetime(inputs.headers, directives, settings.shared, inputs.response_time)
    {
        return Lifetime::For(duration, source);
    }
    if let Some(expiry) = options.expire_after {
        return lifetime_of_expiry(expiry, LifetimeSource::RequestOption);
    }
    if let Some(expiry) = settings.expiry_for_uri(inputs.uri) {
        return lifetime_of_expiry(expiry, LifetimeSource::Settings);
    }
    if settings.cache_control
        && let Some(duration) =
            heuristic_lifetime(inputs.status.as_u16(), inputs.headers, inputs.response_time)
    {
        return Lifetime::For(duration, LifetimeSource::Heuristic);
    }
    Lifetime::For(Duration::ZERO, LifetimeSource::None)
}

/// The request headers a stored entry must keep: those `Vary` names and those
/// `match_headers` selects, redacted.
fn stored_request_headers(request: &request::Parts, vary: &Vary, settings: &Settings) -> HeaderMap {
    let mut kept = HeaderMap::new();
    let mut keep = |name: &HeaderName| {
        if kept.contains_key(name) {
            return;
        }
        for value in request.headers.get_all(name) {
            kept.append(name.clone(), value.clone());
        }
    };
    if let Vary::Fields(names) = vary {
        names.iter().for_each(&mut keep);
    }
    match &settings.match_headers {
        MatchHeaders::None => {}
        MatchHeaders::All => request.headers.keys().for_each(&mut keep),
        MatchHeaders::List(names) => names.iter().for_each(&mut keep),
    }
    let mut kept = redact_headers(&kept, settings);
    own_values(&mut kept);
    kept
}

/// The response headers to store: hop-by-hop fields removed (§3.1), and the fields
/// named by `no-cache="..."` (and, in a shared cache, `private="..."`) dropped so the
/// rest may be reused without revalidation (§5.2.2.4, §5.2.2.7); without a `Date`, the
/// time it was received as one (RFC 9110 §6.6.1: a recipient with a clock MUST add it
/// to a response it caches). Their values are copies of their own, not slices of the
/// client's read buffer ([`Copies`]).
fn storable_response_headers(
    headers: &HeaderMap,
    directives: &ResponseDirectives,
    shared: bool,
    response_time: SystemTime,
) -> HeaderMap {
    let mut headers = headers.clone();
    // The fields dropped by name are the caller's alone, never stored.
    drop(make_storable(&mut headers, directives, shared));
    own_values(&mut headers);
    if !headers.contains_key(header::DATE)
        && let Ok(date) = HeaderValue::from_str(&crate::header::format_http_date(response_time))
    {
        // A map already full goes without (see the driver's `with_status`).
        let _ = headers.try_insert(header::DATE, date);
    }
    headers
}

/// [`storable_response_headers`] in place. Returns the lines dropped by name: a response
/// a 304 just validated is served with them (RFC 9111 §5.2.2.4 forbids their reuse
/// only without a successful revalidation); empty, allocating nothing, when none is.
fn make_storable(headers: &mut HeaderMap, directives: &ResponseDirectives, shared: bool) -> HeaderMap {
    strip_hop_by_hop(headers);
    let mut dropped = HeaderMap::new();
    let mut drop_named = |scope: &Option<FieldScope>| {
        if let Some(FieldScope::Fields(names)) = scope {
            for name in names {
                if let header::Entry::Occupied(lines) = headers.entry(name) {
                    let (name, values) = lines.remove_entry_mult();
                    for value in values {
                        dropped.append(name.clone(), value);
                    }
                }
            }
        }
    };
    drop_named(&directives.no_cache);
    if shared {
        drop_named(&directives.private);
    }
    dropped
}

/// What an unsafe request invalidates (RFC 9111 §4.4): its target URI, the URL the
/// response finally came from when the client followed redirects (after a 307 or 308 it
/// sent the unsafe request there too), and the `Location` / `Content-Location` of the
/// response, each only on the target's origin, as GET keys (which also cover HEAD, keyed
/// alike), plus the URIs themselves when keys depend on request headers (`match_headers`,
/// `key_fn`) and so cannot be derived from the URI alone.
fn invalidation(
    request: &request::Parts,
    response: &response::Parts,
    final_url: Option<&Uri>,
    settings: &Settings,
    key_of: KeyOf<'_>,
) -> (Vec<CacheKey>, Vec<Uri>) {
    let target = &request.uri;
    // The URLs are kept only for a store whose keys also depend on header fields: it
    // finds the other variants stored for them by URL.
    let keyed_by_headers = crate::key::keyed_by_fields(settings);
    let mut keys = vec![key_of(request, target)];
    let mut uris = if keyed_by_headers { vec![target.clone()] } else { Vec::new() };
    let final_url = final_url.filter(|url| *url != target).cloned();
    let located = [header::LOCATION, header::CONTENT_LOCATION]
        .into_iter()
        .map(|name| response.headers.get(name).and_then(|value| resolve_reference(target, value)));
    for uri in std::iter::once(final_url).chain(located) {
        if let Some(uri) = uri
            && same_origin(target, &uri)
        {
            let key = key_of(request, &uri);
            if !keys.contains(&key) {
                keys.push(key);
            }
            if keyed_by_headers && !uris.contains(&uri) {
                uris.push(uri);
            }
        }
    }
    (keys, uris)
}

/// Whether `request`, answered with `status`, invalidates what is stored for its URLs
/// (§4.4): an unsafe method with a non-error status, unless the cache is read-only.
fn invalidates(request: &request::Parts, status: StatusCode, settings: &Settings) -> bool {
    !request.method.is_safe() && (status.is_success() || status.is_redirection()) && !settings.read_only
}

/// What an unsafe request that bypassed the cache because its body could not be
/// replayed ([`Reason::BodyNotReplayable`]) invalidates, answered with `response`
/// (§4.4: the cache stores nothing for it, but its success still changes what is stored
/// for its URLs): the keys and the URIs of [`Outcome::Invalidate`], or `None`.
pub(crate) fn bypassed_invalidation(
    request: &request::Parts,
    response: &response::Parts,
    final_url: Option<&Uri>,
    settings: &Settings,
    key_of: KeyOf<'_>,
) -> Option<(Vec<CacheKey>, Vec<Uri>)> {
    (!settings.disabled && invalidates(request, response.status, settings))
        .then(|| invalidation(request, response, final_url, settings, key_of))
}

/// Resolves a `Location`-style reference against `base`: absolute URIs as they are,
/// absolute paths on `base`'s origin; other relative forms are ignored.
fn resolve_reference(base: &Uri, value: &HeaderValue) -> Option<Uri> {
    let text = value.to_str().ok()?.trim();
    if text.starts_with('/') && !text.starts_with("//") {
        let mut parts = base.clone().into_parts();
        parts.path_and_query = Some(text.parse().ok()?);
        return Uri::from_parts(parts).ok();
    }
    let uri: Uri = text.parse().ok()?;
    uri.scheme().is_some().then_some(uri)
}

fn same_origin(a: &Uri, b: &Uri) -> bool {
    fn port(uri: &Uri) -> Option<u16> {
        uri.port_u16().or(match uri.scheme_str() {
            Some("http") => Some(80),
            Some("https") => Some(443),
            _ => None,
        })
    }
    a.scheme_str().map(str::to_ascii_lowercase) == b.scheme_str().map(str::to_ascii_lowercase)
        && a.host().map(str::to_ascii_lowercase) == b.host().map(str::to_ascii_lowercase)
        && port(a) == port(b)
}

/// Whether stale-if-error lets `entry` stand in for the origin's `status` response to
/// `request`, a server error (RFC 5861 §4 names 500, 502, 503 and 504), and how stale
/// it is. Decided from the status alone, never from the error's body.
pub(crate) fn stale_instead_of_error(
    now: SystemTime,
    status: StatusCode,
    request: &request::Parts,
    entry: &Entry,
    settings: &Settings,
) -> Option<Duration> {
    if !matches!(status.as_u16(), 500 | 502 | 503 | 504) {
        return None;
    }
    stale_if_error_allows(now, request, entry, settings)
}

/// Whether stale-if-error lets `entry` stand in for a failed origin (RFC 5861 §4).
fn stale_if_error_allows(
    now: SystemTime,
    request: &request::Parts,
    entry: &Entry,
    settings: &Settings,
) -> Option<Duration> {
    let staleness = entry.expires.map_or(Duration::ZERO, |expires| since(now, expires));
    let directives = ResponseDirectives::parse(&entry.response.headers);
    let request_directives = RequestDirectives::parse(&request.headers);
    // RFC 5861 §4: stale-if-error overrides must-revalidate only when the directive
    // itself is present; the user's setting does not override the origin's must-revalidate.
    // A client's own stale-if-error never overrides the origin's must-revalidate or
    // no-cache (RFC 9111 §4.2.4); it counts whether or not the response's Cache-Control
    // sets expiration (`Settings::cache_control`), as the request's max-stale does.
    let allowed = may_serve_stale(&directives, settings);
    let within = |window: Option<Duration>| window.is_some_and(|window| staleness <= window);
    let by_directive = (settings.cache_control && within(directives.stale_if_error))
        || (allowed && within(request_directives.stale_if_error));
    let by_setting = allowed && allowance_covers(settings.stale_if_error, staleness);
    (by_directive || by_setting).then_some(staleness)
}

/// Decides what to do with the origin's answer.
///
/// `stored` is the variant that was being revalidated (from [`Action::Revalidate`]),
/// or `None` after a [`Action::Fetch`].
pub fn store(
    now: SystemTime,
    exchange: &Exchange<'_>,
    stored: Option<&Entry>,
    settings: &Settings,
    options: &RequestOptions,
) -> Outcome {
    store_entry(now, exchange, stored.map(Cow::Borrowed), settings, options, &|request, uri| {
        cache_key(&crate::key::memo::get_request(request, uri), &[], settings)
    })
}

/// How [`store_entry`] derives the keys of the URLs an unsafe method invalidates: the key
/// of a GET of the URL with the request's header fields (RFC 9111 §4.4). [`cache_key`]
/// for [`store`], and the drivers' remembered keys ([`crate::key::memo::get_key`]), so
/// that repeated requests to one URL neither hash it nor copy the request again.
pub(crate) type KeyOf<'a> = &'a dyn Fn(&request::Parts, &Uri) -> CacheKey;

/// [`store`], given the stored variant either borrowed or owned: a driver that owns it
/// (and needs it no more) saves a copy of the whole entry when a 304 refreshes it.
pub(crate) fn store_entry(
    now: SystemTime,
    exchange: &Exchange<'_>,
    stored: Option<Cow<'_, Entry>>,
    settings: &Settings,
    options: &RequestOptions,
    key_of: KeyOf<'_>,
) -> Outcome {
    if settings.disabled {
        return Outcome::Skip(Reason::Disabled);
    }
    let request = exchange.request;
    let response = exchange.response;
    let status = response.status;

    // §4.4: a successful unsafe method invalidates what is stored for its URLs.
    let (mut invalidate, mut invalidate_uris) = if invalidates(request, status, settings) {
        invalidation(request, response, exchange.final_url, settings, key_of)
    } else {
        (Vec::new(), Vec::new())
    };

    // §4.3.3 / §4.3.4: a 304 refreshes the stored response it validates.
    if status == StatusCode::NOT_MODIFIED {
        let Some(entry) = stored else {
            return Outcome::Skip(Reason::Unsolicited304);
        };
        let entry_headers = &entry.response.headers;
        // §4.3.4: the 304 must select the stored response by its validator.
        let selects = match (etag_ref(&response.headers), etag_ref(entry_headers)) {
            (Some((new, _)), Some((old, _))) => new.weak_eq(&old),
            (Some(_), None) => false,
            (None, _) => {
                let modified = |headers| date_header(headers, &header::LAST_MODIFIED);
                match (modified(&response.headers), modified(entry_headers)) {
                    (Some(new), Some(old)) => new == old,
                    _ => true,
                }
            }
        };
        if !selects {
            return Outcome::Retry(Reason::ValidatorMismatch);
        }
        return refreshed(exchange, entry, settings, options, Reason::Revalidated);
    }

    // RFC 5861 §4: serve stale on a server error.
    let stored = stored.as_deref();
    if let Some(entry) = stored
        && let Some(staleness) = stale_instead_of_error(now, status, request, entry, settings)
    {
        return Outcome::ServeStale { staleness, reason: Reason::StaleIfError };
    }

    // §4.3.5: a HEAD response freshens the stored GET response it describes.
    if request.method == Method::HEAD
        && status == StatusCode::OK
        && let Some(entry) = stored
        && entry.request.method == Method::GET
    {
        if settings.read_only {
            return Outcome::Skip(Reason::ReadOnly);
        }
        // "Matching values" of the validators: the same entity tag, weak or strong alike.
        let validators_agree = match (etag_ref(&response.headers), etag_ref(&entry.response.headers)) {
            (Some((new, _)), Some((old, _))) => new == old,
            (None, None) => {
                date_header(&response.headers, &header::LAST_MODIFIED)
                    == date_header(&entry.response.headers, &header::LAST_MODIFIED)
            }
            _ => false,
        };
        // No `Content-Length`, or the stored response's (a malformed one disagrees):
        // its field, which a client that decoded the body (`Content-Encoding`) kept as
        // the origin sent it, else its body's length. Lengths of two content codings
        // are not comparable: a HEAD answered `gzip` says the coded length of a body a
        // client stored decoded (without the coding, as reqwest, ureq and isahc do).
        let coding = |headers: &HeaderMap| headers.get(header::CONTENT_ENCODING).cloned();
        let stored_length =
            content_length(&entry.response.headers).unwrap_or(entry.response.body.len() as u64);
        let length_agrees = !response.headers.contains_key(header::CONTENT_LENGTH)
            || coding(&response.headers) != coding(&entry.response.headers)
            || content_length(&response.headers) == Some(stored_length);
        if validators_agree && length_agrees {
            return refreshed(exchange, Cow::Borrowed(entry), settings, options, Reason::HeadFreshened);
        }
        // Else the stored response is stale (§4.3.5), and most likely outdated: it is
        // removed, not replaced by this response, which has no body for a GET. The
        // HEAD response goes back unstored.
        return Outcome::Invalidate {
            keys: vec![exchange.key],
            uris: Vec::new(),
            reason: Reason::HeadMismatch,
        };
    }

    // At most one of the returns below takes the invalidation: it is moved, not copied.
    let mut skip = |reason| {
        if invalidate.is_empty() {
            Outcome::Skip(reason)
        } else {
            Outcome::Invalidate {
                keys: std::mem::take(&mut invalidate),
                uris: std::mem::take(&mut invalidate_uris),
                reason: Reason::Invalidated,
            }
        }
    };
    if settings.read_only {
        return Outcome::Skip(Reason::ReadOnly);
    }
    // `force_refresh` and a per-request `DoNotCache` read nothing, so a HEAD response was
    // not matched with a stored GET (§4.3.5, above): stored, it would take that GET's
    // place (HEAD shares its key), and it has no body to answer one with.
    if request.method == Method::HEAD {
        if options.force_refresh {
            return skip(Reason::ForceRefresh);
        }
        if options.expire_after == Some(Expiry::DoNotCache) {
            return skip(Reason::DoNotCache);
        }
    }
    if !settings.allowable_methods.contains(&request.method) {
        return skip(Reason::MethodNotCacheable);
    }
    let request_directives = RequestDirectives::parse(&request.headers);
    if request_directives.no_store {
        return skip(Reason::RequestNoStore);
    }
    let directives = ResponseDirectives::parse(&response.headers);
    if let Some(reason) = storage_refused(&directives, status) {
        return skip(reason);
    }
    if is_partial(status, &response.headers) {
        return skip(Reason::PartialContent);
    }
    if !settings.allowable_codes.contains(&status) {
        return skip(Reason::StatusNotCacheable);
    }
    if settings.shared && matches!(directives.private, Some(FieldScope::All)) {
        return skip(Reason::Private);
    }
    if settings.shared
        && request.headers.contains_key(header::AUTHORIZATION)
        && !(directives.public || directives.must_revalidate || directives.s_maxage.is_some())
    {
        return skip(Reason::Authorization);
    }
    let vary = Vary::parse(&response.headers);
    if let Some(reason) = vary_refused(&vary, settings) {
        return skip(reason);
    }
    if exchange.body.len() as u64 > settings.max_entry_bytes {
        return skip(Reason::TooLarge);
    }
    if let Some(filter) = &settings.filter_fn
        && !filter(response, exchange.body)
    {
        return skip(Reason::Filtered);
    }
    let freshness = FreshnessInputs {
        headers: &response.headers,
        status,
        uri: &request.uri,
        response_time: exchange.response_time,
    };
    let lifetime = lifetime(&freshness, &directives, settings, options);
    if lifetime == Lifetime::DoNotCache {
        return skip(Reason::DoNotCache);
    }
    let inputs = AgeInputs::new(exchange.request_time, exchange.response_time, &response.headers);
    let expires = expires_at(lifetime, &inputs);
    let has_validator = etag_ref(&response.headers).is_some()
        || date_header(&response.headers, &header::LAST_MODIFIED).is_some();
    let never_fresh = expires.is_some_and(|expires| expires <= exchange.response_time);
    if never_fresh
        && !has_validator
        && settings.stale_if_error == StaleAllowance::Off
        && settings.stale_while_revalidate == StaleAllowance::Off
        && directives.stale_if_error.is_none()
        && directives.stale_while_revalidate.is_none()
    {
        return skip(Reason::NeverFresh);
    }

    let entry = Entry {
        key: exchange.key,
        variant: VariantId::compute(&vary, &request.headers),
        request: StoredRequest {
            method: request.method.clone(),
            url: redact_url(&request.uri, settings),
            headers: stored_request_headers(request, &vary, settings),
        },
        response: StoredResponse {
            status,
            version: response.version,
            headers: storable_response_headers(
                &response.headers,
                &directives,
                settings.shared,
                exchange.response_time,
            ),
            body: exchange.body.clone(),
            final_url: exchange
                .final_url
                .filter(|url| *url != &request.uri)
                .map(|url| redact_url(url, settings)),
        },
        request_time: exchange.request_time,
        response_time: exchange.response_time,
        created: now,
        expires,
        initial_age: inputs.corrected_initial_age(),
    };
    Outcome::Store { entry: Box::new(entry), invalidate, invalidate_uris, reason: Reason::Stored }
}

/// The stored entry updated from a 304 or HEAD response (RFC 9111 §3.2, §4.3.4):
/// its header fields replace the stored ones, except hop-by-hop fields,
/// `Content-Length` and `Content-Encoding`; times and expiry are recomputed.
/// (`Content-Encoding` describes the stored body, which a client may have decoded as
/// it arrived: §3.2 lets a cache keep such a field, "to assure integrity of the
/// stored response".) The stored `Age` is dropped
/// (the new response's age is what counts) and a missing `Date` becomes the receipt
/// time (RFC 9110 §6.6.1). Returns whether `Vary` changed, in which case the stored
/// request headers and the variant are recomputed for the request that revalidated
/// it (§4.1).
fn refresh(
    exchange: &Exchange<'_>,
    entry: Cow<'_, Entry>,
    settings: &Settings,
    options: &RequestOptions,
) -> Refreshed {
    let old_vary = Vary::parse(&entry.response.headers);
    let mut updated = entry.into_owned();
    let incoming = &exchange.response.headers;
    let stored = &mut updated.response.headers;
    stored.remove(header::AGE);
    // The 304's fields, read in place: its hop-by-hop ones, `Content-Length` and
    // `Content-Encoding` are not the stored response's to take. `HeaderMap` iterates a field's lines one after the
    // other: the first replaces every stored line of the field, the ones after it join it.
    // The fields taken are copies of their own ([`Copies`]), made into one buffer.
    let hop_by_hop = hop_by_hop_fields(incoming);
    let taken = |name: &HeaderName| {
        *name != header::CONTENT_LENGTH && *name != header::CONTENT_ENCODING && !hop_by_hop.contains(name)
    };
    let mut copies = Copies::of(|| incoming.iter().filter(|(name, _)| taken(name)).map(|(_, value)| value));
    let mut last: Option<&HeaderName> = None;
    let mut dated = false;
    for (name, value) in incoming {
        // A map already full keeps what it has rather than panic (see the driver's
        // `with_status`).
        if last == Some(name) {
            let _ = stored.try_append(name.clone(), copies.next(value));
        } else if taken(name) {
            let _ = stored.try_insert(name.clone(), copies.next(value));
            dated |= *name == header::DATE;
            last = Some(name);
        }
    }
    if !dated
        && let Ok(date) = HeaderValue::from_str(&crate::header::format_http_date(exchange.response_time))
    {
        let _ = stored.try_insert(header::DATE, date);
    }
    let directives = ResponseDirectives::parse(&updated.response.headers);
    let served_only = make_storable(&mut updated.response.headers, &directives, settings.shared);
    updated.request_time = exchange.request_time;
    updated.response_time = exchange.response_time;
    let vary = Vary::parse(&updated.response.headers);
    let vary_changed = !vary.same_as(&old_vary);
    if vary_changed {
        updated.request.headers = stored_request_headers(exchange.request, &vary, settings);
        updated.variant = VariantId::compute(&vary, &exchange.request.headers);
    }
    let freshness = FreshnessInputs {
        headers: &updated.response.headers,
        status: updated.response.status,
        uri: &exchange.request.uri,
        response_time: exchange.response_time,
    };
    let lifetime = lifetime(&freshness, &directives, settings, options);
    let inputs = AgeInputs::of(&updated);
    updated.initial_age = inputs.corrected_initial_age();
    updated.expires = match lifetime {
        Lifetime::DoNotCache => Some(exchange.response_time),
        lifetime => expires_at(lifetime, &inputs),
    };
    Refreshed { entry: updated, vary_changed, directives, vary, served_only }
}

/// A stored response merged with a 304 or HEAD response, with what was parsed from
/// its merged headers on the way (so that deciding whether to write it back does not
/// parse them again).
struct Refreshed {
    entry: Entry,
    vary_changed: bool,
    directives: ResponseDirectives,
    vary: Vary,
    /// See [`Outcome::Refresh::served_only`].
    served_only: HeaderMap,
}

/// The outcome of refreshing `entry` from a 304 (`Revalidated`) or a HEAD
/// (`HeadFreshened`): written back when allowed, re-filed when `Vary` changed.
fn refreshed(
    exchange: &Exchange<'_>,
    entry: Cow<'_, Entry>,
    settings: &Settings,
    options: &RequestOptions,
    reason: Reason,
) -> Outcome {
    let old_variant = entry.variant;
    let refreshed = refresh(exchange, entry, settings, options);
    Outcome::Refresh {
        persist: may_persist(exchange, &refreshed, settings),
        // Read-only, the stored variant stays as it is: nothing is removed either.
        replaces: (refreshed.vary_changed && !settings.read_only).then_some(old_variant),
        reason: if refreshed.vary_changed && reason == Reason::Revalidated {
            Reason::VaryChanged
        } else {
            reason
        },
        entry: Box::new(refreshed.entry),
        served_only: refreshed.served_only,
    }
}

/// Whether a refreshed entry may be written back: never in read-only mode, never when
/// the request says `no-store` or the merged response refuses storage ([`storage_refused`];
/// §5.2.1.5, §5.2.2.5: the 304 validates the response for this use only), never under
/// `Vary: *`, in a shared cache never when the merge made it `private` (§5.2.2.7), and
/// never when [`Settings::filter_fn`] turns the merged response down, as it would
/// have turned it down arriving whole.
fn may_persist(exchange: &Exchange<'_>, refreshed: &Refreshed, settings: &Settings) -> bool {
    let directives = &refreshed.directives;
    let forbidden = settings.read_only
        || storage_refused(directives, refreshed.entry.response.status).is_some()
        || RequestDirectives::parse(&exchange.request.headers).no_store
        || vary_refused(&refreshed.vary, settings).is_some()
        || (settings.shared && matches!(directives.private, Some(FieldScope::All)))
        || settings.filter_fn.as_ref().is_some_and(|filter| {
            !filter(&head_of(&refreshed.entry.response), &refreshed.entry.response.body)
        });
    !forbidden
}

/// A stored response's head, as [`Settings::filter_fn`] sees a response.
fn head_of(stored: &StoredResponse) -> response::Parts {
    let (mut head, ()) = http::Response::new(()).into_parts();
    head.status = stored.status;
    head.version = stored.version;
    head.headers = stored.headers.clone();
    head
}

/// Decides what to do when the origin could not be reached (a transport error):
/// serve the stored response being revalidated if stale-if-error allows it
/// (RFC 5861 §4), else report the error.
pub fn on_error(
    now: SystemTime,
    request: &request::Parts,
    stored: Option<&Entry>,
    settings: &Settings,
    options: &RequestOptions,
) -> Outcome {
    let _ = options;
    if settings.disabled {
        return Outcome::Skip(Reason::Disabled);
    }
    match stored.and_then(|entry| stale_if_error_allows(now, request, entry, settings)) {
        Some(staleness) => Outcome::ServeStale { staleness, reason: Reason::StaleIfError },
        None => Outcome::Skip(Reason::OriginError),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn fields() -> impl Strategy<Value = HeaderMap> {
        let name = prop::sample::select(vec![
            "cache-control",
            "Cache-Control",
            "vary",
            "content-range",
            "content-type",
            "date",
            "x-vary",
            "x-cache-control",
        ]);
        let value = prop::sample::select(vec![
            "max-age=60",
            "no-cache",
            "public, No-Store",
            "IMMUTABLE",
            "private=\"no-x\"",
            "accept",
            "bytes 0-9/10",
            "",
        ]);
        prop::collection::vec((name, value), 0..8).prop_map(|fields| {
            let mut map = HeaderMap::new();
            for (name, value) in fields {
                map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static(value));
            }
            map
        })
    }

    proptest! {
        // The one pass a hit makes over the stored fields sees what a lookup of each
        // field sees: `Vary` (RFC 9111 §4.1), the directives that restrict a fresh
        // response's use (§5.2.2), and `Content-Range` (§3.3).
        #[test]
        fn a_glance_agrees_with_the_lookups(headers in fields()) {
            let expected = Glance {
                vary: headers.contains_key(header::VARY),
                may_restrict_fresh_use: ResponseDirectives::may_restrict_fresh_use(&headers),
                content_range: headers.contains_key(header::CONTENT_RANGE),
            };
            prop_assert_eq!(Glance::of(&headers), expected);
        }
    }
}

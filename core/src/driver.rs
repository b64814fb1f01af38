//! The drivers adapters call: key → store read → [`decide`](crate::machine::decide) → (send) → [`store`](crate::machine::store) →
//! write. [`Cache`] holds a store, the settings and a clock; it runs the loop
//! synchronously over a [`Store`] or asynchronously over an [`AsyncStore`].
//!
//! Two levels:
//! * [`Cache::send`] / [`Cache::send_async`]: give it a request and a function that
//!   asks the origin; get the response. Enough for most adapters.
//! * [`Cache::plan`] → [`Forward`] → [`Cache::complete`] / [`Cache::fail`] (and the
//!   `_async` twins): the same loop in steps, for adapters that stream bodies or
//!   spawn background revalidations themselves. An async adapter on a hot path plans
//!   with [`Cache::plan_now`], which answers without a future when the store can read
//!   at once ([`AsyncStore::read_now`]: a hit from memory or LMDB), and awaits
//!   [`Cache::plan_pending`] only when it cannot.
//!
//! Planning reads the store through its borrowing form ([`Store::read_with`],
//! [`AsyncStore::read_now`]): a store that keeps entries in memory lends them, and a
//! hit copies out only the response part it serves. It does not read it at all when
//! the request settles the decision alone (a method that is not stored, the client's
//! own conditional, `force_refresh`), or when the key's last response was not stored,
//! within [`Settings::remember_not_stored`].
//!
//! A store failure never fails a request: the origin's response is returned and the
//! error is traced. Concurrent identical misses are coalesced: one goes to the
//! origin, the others wait for it and are then served from the cache.
//!
//! An adapter that stops buffering a body (it grew past `max_entry_bytes`) asks
//! [`Cache::stale_instead_of`] before passing the response through with
//! [`Cache::complete_streamed`]: a server error that stale-if-error covers is answered
//! with the stored response, whatever the size of its page.
//!
//! Stale-while-revalidate: when a stale response is served for revalidation in the
//! background, the response carries a [`PendingRevalidation`] in its extensions.
//! The adapter takes it out and runs it (on a task or a thread) with
//! [`Cache::complete`]; if nobody does (and [`Cache::send`] does not: it drops it),
//! the entry is simply revalidated later.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use event_listener::{Event, EventListener, Listener};
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, request};

use crate::entry::{Entry, EntryMeta, StoredResponse};
use crate::header::cache_control::{RequestDirectives, ResponseDirectives};
use crate::header::{VariantId, Vary};
use crate::key::{CacheKey, KeyHash, cache_key};
use crate::machine::{
    Action, Conditional, Exchange, Outcome, Reason, Revalidate, Serve, decide_stored, decide_unread,
    on_error, stale_instead_of_error, store_entry,
};
use crate::settings::{RequestOptions, Settings};
use crate::status::{CACHE_STATUS, CacheStatus, Source};
use crate::store::{AsyncStore, Store, StoreError, Variants};

mod background;
mod not_stored;
use background::Background;
pub use background::Revalidating;
use not_stored::NotStored;

/// How long a follower waits for an identical request in flight before going to the
/// origin itself: a blocking one ([`Cache::plan`]; [`Cache::plan_within`] waits less)
/// and an async one given a timer
/// ([`Cache::plan_pending_within`], what the adapters use). (The core has no timer:
/// [`Cache::plan_pending`] alone waits for the leader to finish or be dropped; complete
/// or drop every [`Forward`] before planning the same key again on one task.)
pub const COALESCE_WAIT: Duration = Duration::from_secs(10);

/// A source of the current time. The machine never reads a clock; the drivers read
/// this one. Tests pass a virtual clock.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    Arc::new(SystemTime::now)
}

/// The URL a response served from the cache finally came from (after redirects),
/// in the response's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalUrl(pub String);

impl FinalUrl {
    /// `uri` as text, exactly as `Uri`'s `Display` writes it, in one allocation of the
    /// exact size (`to_string` grows its buffer as it goes): adapters set it on every
    /// response served from the cache.
    pub fn from_uri(uri: &Uri) -> FinalUrl {
        let scheme = uri.scheme_str();
        let authority = uri.authority().map(|authority| authority.as_str());
        let (path, query) = (uri.path(), uri.query());
        let length = scheme.map_or(0, |scheme| scheme.len() + 3)
            + authority.map_or(0, str::len)
            + path.len()
            + query.map_or(0, |query| query.len() + 1);
        let mut url = String::with_capacity(length);
        if let Some(scheme) = scheme {
            url.push_str(scheme);
            url.push_str("://");
        }
        url.push_str(authority.unwrap_or_default());
        url.push_str(path);
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        FinalUrl(url)
    }
}

/// A background revalidation for a stale response served under
/// stale-while-revalidate: send [`Forward::request`] and hand the answer to
/// [`Cache::complete`]. Found in the served response's extensions.
#[derive(Debug)]
pub struct PendingRevalidation(pub Forward);

impl Clone for PendingRevalidation {
    // Extensions require `Clone`. A clone does not hold the key's coalescing lead:
    // run the one taken out of the response, not copies of it.
    fn clone(&self) -> Self {
        PendingRevalidation(Forward { _guard: None, ..self.0.clone_inner() })
    }
}

/// A request on its way to the origin, with what the cache needs to finish it.
#[derive(Debug)]
pub struct Forward {
    parts: request::Parts,
    body: Bytes,
    conditional: Conditional,
    key: Option<CacheKey>,
    stored: Option<Box<Entry>>,
    reason: Reason,
    request_time: SystemTime,
    options: RequestOptions,
    settings: Arc<Settings>,
    /// Planned on the memory that its key's last response was not stored (without a
    /// store read, see [`Settings::remember_not_stored`]): its response, not stored
    /// either, does not renew that memory.
    remembered: bool,
    /// Held for its `Drop`: releases coalesced waiters.
    _guard: Option<InflightGuard>,
}

impl Forward {
    /// Takes out the coalescing guard, to be dropped after the store writes.
    fn take_guard(&mut self) -> Option<InflightGuard> {
        self._guard.take()
    }

    fn clone_inner(&self) -> Forward {
        Forward {
            parts: self.parts.clone(),
            body: self.body.clone(),
            conditional: self.conditional.clone(),
            key: self.key,
            stored: self.stored.clone(),
            reason: self.reason,
            request_time: self.request_time,
            options: self.options,
            settings: self.settings.clone(),
            remembered: self.remembered,
            _guard: None,
        }
    }

    /// The request to send: the user's, plus conditional headers when revalidating.
    pub fn request(&self) -> Request<Bytes> {
        let mut request = Request::from_parts(self.parts.clone(), self.body.clone());
        self.conditional.add_to(request.headers_mut());
        request
    }

    /// The headers of [`Forward::request`] alone: the user's, plus conditional headers
    /// when revalidating. For adapters that send the user's own request object and only
    /// need to set its headers (cheaper than building the whole request).
    pub fn request_headers(&self) -> http::HeaderMap {
        let mut headers = self.parts.headers.clone();
        self.conditional.add_to(&mut headers);
        headers
    }

    /// Whether completing this request may answer [`Completion::Retry`]: only when it
    /// revalidates a stored response (a 304 that does not select it, RFC 9111 §4.3.4,
    /// is retried unconditionally). An adapter needs a copy of its request object for a
    /// retry only then.
    pub fn may_retry(&self) -> bool {
        self.stored.is_some()
    }

    /// The request's URI (as the caller gave it).
    pub fn uri(&self) -> &Uri {
        &self.parts.uri
    }

    /// Why the request goes to the origin.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The cache key, unless the cache is bypassed.
    pub fn key(&self) -> Option<CacheKey> {
        self.key
    }

    /// Whether the response's body is worth buffering for the cache: `false` when the
    /// cache is bypassed, the method or status is not stored, the response will not be
    /// stored anyway (`no-store`, `Vary: *`, partial), or `Content-Length` exceeds
    /// `max_entry_bytes` (not a HEAD response's, which has no body). Stream such responses straight to the caller and
    /// finish with [`Cache::complete_streamed`] (not [`Cache::complete`] on an empty
    /// body, which could store an empty entry).
    pub fn wants_body(&self, response: &http::response::Parts) -> bool {
        if self.key.is_none() {
            return false;
        }
        // A 304 refreshes (or, read-only, serves) the stored entry; a 5xx may be
        // answered with it (stale-if-error): both need `complete`, read-only or not.
        if response.status == StatusCode::NOT_MODIFIED {
            return true;
        }
        if self.settings.read_only {
            return self.stored.is_some() && response.status.is_server_error();
        }
        let too_long =
            self.body_length(response).is_some_and(|length| length > self.settings.max_entry_bytes);
        let stale_if_error = self.stored.is_some() && response.status.is_server_error();
        if stale_if_error {
            return true;
        }
        // Responses that will certainly not be stored stream straight through: no copy
        // into a buffer only to throw it away.
        let never_stored = || {
            crate::machine::storage_refused(&ResponseDirectives::parse(&response.headers), response.status)
                .is_some()
                || RequestDirectives::parse(&self.parts.headers).no_store
                || crate::machine::vary_refused(&Vary::parse(&response.headers), &self.settings).is_some()
                || crate::machine::is_partial(response.status, &response.headers)
        };
        !too_long
            && self.settings.allowable_methods.contains(&self.parts.method)
            && self.settings.allowable_codes.contains(&response.status)
            && !never_stored()
    }

    /// The length of the body that comes with `response`, as its `Content-Length`
    /// announces it: zero for a HEAD response, whose `Content-Length` is the length a GET
    /// would get (RFC 9110 §9.3.2, §8.6), not that of its own (empty) body.
    fn body_length(&self, response: &http::response::Parts) -> Option<u64> {
        if self.parts.method == Method::HEAD {
            return Some(0);
        }
        crate::header::content_length(&response.headers)
    }

    /// A buffer to read a body [`Forward::wants_body`] wants into: with room for its
    /// `Content-Length` when that is within `max_entry_bytes` (at most 8 MiB set aside
    /// before any of it arrives), and [`END_ROOM`] bytes more, so that a body of the
    /// length announced, and the read that finds its end, fill it without growing it
    /// (`futures_lite`'s `read_to_end` doubles a full buffer before it reads again).
    /// Hand the bytes read to [`Cache::complete`] through [`stored_body`].
    pub fn body_buffer(&self, response: &http::response::Parts) -> Vec<u8> {
        let room = self
            .body_length(response)
            .filter(|length| *length <= self.settings.max_entry_bytes)
            .map_or(0, |length| length.min(MAX_BODY_SET_ASIDE) + END_ROOM);
        Vec::with_capacity(usize::try_from(room).unwrap_or(0))
    }
}

/// The most [`Forward::body_buffer`] sets aside for a body before it arrives.
const MAX_BODY_SET_ASIDE: u64 = 8 << 20;

/// The room [`Forward::body_buffer`] leaves past the announced length, for the read
/// that finds the body's end.
pub const END_ROOM: u64 = 32;

/// The body to hand to [`Cache::complete`], from the buffer it was read into: exactly
/// its bytes. A memory store keeps this very `Bytes`, and weighs the entry by its
/// length; a buffer that grew while the body arrived can have as much again to spare,
/// which the entry would hold unweighed. Shrinking hands the spare room back to the
/// allocator where it lies (the bytes are not copied).
pub fn stored_body(mut buffer: Vec<u8>) -> Bytes {
    buffer.shrink_to_fit();
    Bytes::from(buffer)
}

/// What [`Cache::plan`] says to do.
#[derive(Debug)]
pub enum Plan {
    /// Answer with this response (a hit, a stale response, or a synthesised 504).
    Respond(Box<Response<Bytes>>),
    /// Send [`Forward::request`] to the origin, then call [`Cache::complete`] or [`Cache::fail`].
    Forward(Box<Forward>),
}

/// What [`Cache::complete`] says to do.
#[derive(Debug)]
pub enum Completion {
    /// Return this response to the caller.
    Respond(Box<Response<Bytes>>),
    /// The 304 did not match: send [`Forward::request`] again (now unconditional).
    Retry(Box<Forward>),
}

#[derive(Debug, Default)]
struct Inflight {
    /// An `Event` allocates nothing until someone listens: a request that nobody
    /// waits behind pays for no more than the map entry.
    map: Mutex<HashMap<CacheKey, Event, KeyHash>>,
}

/// Releases waiters when the leading request of a coalesced group finishes.
#[derive(Debug)]
struct InflightGuard {
    inflight: Arc<Inflight>,
    key: CacheKey,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        let event = self.inflight.map.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
        // Listeners are only added under the map's lock, to an event still in the map:
        // once removed, its count is final. `notify` would allocate the event's state
        // even for no listener, so a request nobody waited behind skips it.
        if let Some(event) = event.filter(|event| event.total_listeners() > 0) {
            event.notify(usize::MAX);
        }
    }
}

/// The store writes of an async completion (see `Cache::writes_async`), and whether
/// every put succeeded.
enum Writes<'a> {
    /// Made already, through the store's blocking face ([`AsyncStore::write_now`]), or
    /// none to make.
    Made(bool),
    /// To await.
    Pending(Pin<Box<dyn Future<Output = bool> + Send + 'a>>),
}

impl Writes<'_> {
    /// Whether every put succeeded, once the writes are made.
    async fn made(self) -> bool {
        match self {
            Writes::Made(ok) => ok,
            Writes::Pending(writes) => writes.await,
        }
    }
}

/// A plan [`Cache::plan_now`] could not finish without waiting; finish it with
/// [`Cache::plan_pending`].
pub struct PendingPlan {
    planned: Box<Planned>,
    coalesce: bool,
    /// The identical request in flight, to wait for before reading the store again.
    wait: Option<EventListener>,
}

impl fmt::Debug for PendingPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingPlan")
            .field("key", &self.planned.key)
            .field("uri", &self.planned.parts.uri)
            .field("waiting", &self.wait.is_some())
            .finish()
    }
}

enum Step {
    Plan(Plan),
    /// Another identical request is in flight: wait for it, then plan again.
    Wait(EventListener, Box<Planned>),
}

/// A cache: a store, settings (changeable at runtime) and a clock.
pub struct Cache<S> {
    store: S,
    /// Read on every request without a lock (no shared lock word to bounce between
    /// cores); replaced whole by [`Cache::update_settings`].
    settings: ArcSwap<Settings>,
    /// Serialises [`Cache::update_settings`], so concurrent changes all apply, and
    /// counts the [`DisabledGuard`]s alive.
    settings_update: Mutex<Disables>,
    clock: Clock,
    inflight: Arc<Inflight>,
    /// The keys whose last response was not stored, whose store reads planning skips.
    not_stored: NotStored,
    /// The stale-while-revalidate revalidations still running in the background.
    background: Arc<Background>,
}

impl<S> std::fmt::Debug for Cache<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("settings", &self.settings()).finish_non_exhaustive()
    }
}

impl<S> Cache<S> {
    /// A cache over `store` with `settings`, reading the system clock.
    pub fn new(store: S, settings: Settings) -> Self {
        Cache {
            store,
            settings: ArcSwap::from_pointee(settings),
            settings_update: Mutex::new(Disables::default()),
            clock: system_clock(),
            inflight: Arc::default(),
            not_stored: NotStored::default(),
            background: Arc::default(),
        }
    }

    /// Replaces the clock (tests use a virtual one).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// A snapshot of the settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Changes the settings; requests already under way keep the old ones.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) {
        let _serialised = self.settings_update.lock().unwrap_or_else(PoisonError::into_inner);
        self.change_settings(change);
    }

    /// Replaces the settings with `change`d ones; the caller holds `settings_update`.
    fn change_settings(&self, change: impl FnOnce(&mut Settings)) {
        let mut settings = Settings::clone(&self.settings.load());
        change(&mut settings);
        self.settings.store(Arc::new(settings));
    }

    /// Counts a stale-while-revalidate revalidation that an adapter runs in the
    /// background (on a thread or task of its own), until the returned guard is
    /// dropped. [`Cache::wait_for_revalidations`] and [`Cache::revalidations_finished`]
    /// wait for every such guard.
    pub fn revalidating(&self) -> Revalidating {
        Background::start(&self.background)
    }

    /// How many background revalidations of this cache are running.
    pub fn revalidations_running(&self) -> usize {
        self.background.running()
    }

    /// Blocks, at most `timeout`, until no background revalidation of this cache is
    /// running; returns whether none is.
    ///
    /// A stale-while-revalidate hit answers at once and revalidates on a thread or
    /// task that does not keep the program alive. A short-lived program (a command, a
    /// script) that wants the refreshed response stored calls this (or, async,
    /// [`Cache::revalidations_finished`]) before it exits, then [`Store::flush`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use httpcache_core::{Cache, Settings};
    ///
    /// # let store = (); // any store: httpcache_mem::MemoryStore, say
    /// let cache = Cache::new(store, Settings::default());
    /// let revalidation = cache.revalidating();
    /// assert!(!cache.wait_for_revalidations(Duration::ZERO));
    /// drop(revalidation); // the revalidation ended
    /// assert!(cache.wait_for_revalidations(Duration::from_secs(5)));
    /// ```
    pub fn wait_for_revalidations(&self, timeout: Duration) -> bool {
        self.background.wait(timeout)
    }

    /// Completes once no background revalidation of this cache is running: the
    /// async form of [`Cache::wait_for_revalidations`], for any executor. Bound it
    /// with the runtime's own timeout (`tokio::time::timeout`, say).
    pub async fn revalidations_finished(&self) {
        self.background.idle().await
    }

    /// The current time by the cache's clock.
    pub fn now(&self) -> SystemTime {
        (self.clock)()
    }

    /// Disables the cache until the returned guard is dropped. Guards may overlap (on
    /// several threads): the cache is disabled until the last one is dropped, then
    /// `disabled` is what it was before the first.
    pub fn disable(&self) -> DisabledGuard<'_, S> {
        let mut disables = self.settings_update.lock().unwrap_or_else(PoisonError::into_inner);
        if disables.guards == 0 {
            disables.was = self.settings.load().disabled;
            self.change_settings(|settings| settings.disabled = true);
        }
        disables.guards += 1;
        DisabledGuard { cache: self }
    }

    /// The part of planning that reads the stored variants: the decision, and what of
    /// the chosen entry planning goes on with, taken out of them (so that variants a
    /// store only lends need not outlive the read). A plain hit is answered here, from
    /// the entry's response part alone (a lent entry's request part is not copied), so
    /// that it moves nothing more on its way out. A read error is a miss.
    #[inline(always)]
    fn choose(&self, planned: &Planned, read: Result<Variants<'_>, StoreError>) -> Choice {
        let now = self.now();
        let mut variants = read.unwrap_or_else(|error| {
            log_store_error("read", &planned.key, &error);
            Variants::default()
        });
        let action = decide_stored(now, &planned.parts, &variants, &planned.settings, &planned.options);
        let taken = match &action {
            Action::Serve(serve) if serve.revalidate_in_background.is_none() => {
                let times = variants.get(serve.index).map(|entry| (entry.created, entry.expires));
                if let (Some((created, expires)), Some(response)) =
                    (times, variants.take_response(serve.index))
                {
                    trace_decision(planned, &action);
                    let served = self.serve(planned, serve, (response, created, expires), now);
                    return Choice::Served(Box::new(served));
                }
                Taken::Nothing
            }
            // A hit that starts a revalidation needs the whole entry.
            Action::Serve(Serve { index, .. }) | Action::Revalidate(Revalidate { index, .. }) => {
                variants.take(*index).map_or(Taken::Nothing, |entry| Taken::Entry(Box::new(entry)))
            }
            _ => Taken::Nothing,
        };
        Choice::Decided(Box::new(Chosen { now, action, taken, remembered: false }))
    }

    /// What planning settles before it reads the store: the action when the request
    /// alone settles it ([`decide_unread`]), or when the key's last response was not
    /// stored (remembered in [`NotStored`] within [`Settings::remember_not_stored`])
    /// and the request may go to the origin; else `None`: read, then [`Cache::choose`].
    #[inline(always)]
    fn before_reading(&self, planned: &Planned) -> Option<Unread> {
        if let Some(action) = decide_unread(&planned.parts, &planned.settings, &planned.options) {
            return Some(Unread { now: self.now(), action, remembered: false });
        }
        if let Some(since) = self.not_stored.remembered(&planned.key) {
            let settings = &planned.settings;
            let now = self.now();
            let within =
                now.duration_since(since).is_ok_and(|elapsed| elapsed < settings.remember_not_stored);
            if within && !settings.read_only {
                // As if the store were empty, which it most likely is; `only-if-cached`
                // (a 504 on an empty store) reads it after all.
                let action = decide_stored(now, &planned.parts, &[], settings, &planned.options);
                if action == Action::Fetch(Reason::Miss) {
                    return Some(Unread { now, action, remembered: true });
                }
            }
        }
        None
    }

    /// Remembers `forward`'s key as not stored, when nothing was stored under it before
    /// (it was a miss) and its response was not stored either: see [`NotStored`].
    fn note_not_stored(&self, forward: &Forward, now: SystemTime) {
        if let Some(key) = &forward.key
            && forward.reason == Reason::Miss
            && forward.stored.is_none()
            && !forward.remembered
            && !forward.settings.read_only
            && !forward.settings.remember_not_stored.is_zero()
        {
            self.not_stored.remember(key, now);
        }
    }

    /// The response for a hit: the stored response with `Age` and `Cache-Status`.
    fn serve(
        &self,
        planned: &Planned,
        serve: &Serve,
        (response, created, expires): (StoredResponse, SystemTime, Option<SystemTime>),
        now: SystemTime,
    ) -> Response<Bytes> {
        let status = CacheStatus {
            source: Source::Cache,
            from_cache: true,
            revalidated: false,
            stale: serve.stale,
            stored: false,
            created_at: Some(created),
            expires,
            is_expired: crate::entry::expired(expires, now),
            cache_key: Some(planned.key),
            age: Some(serve.age),
            reason: serve.reason,
            forwarded: None,
        };
        if serve.not_modified {
            return not_modified_from_entry(response, serve.age, status, now);
        }
        respond_from_entry(response, planned.parts.method == Method::HEAD, serve.age, status, now)
    }

    /// The pure part of planning: what to do, given what [`Cache::choose`] chose.
    fn step(&self, planned: Planned, chosen: Chosen, coalesce: bool) -> Step {
        let Chosen { now, action, taken, remembered } = chosen;
        // A request planned on the memory of a response not stored is not held back
        // for one that will most likely not be stored either.
        let coalesce = coalesce && !remembered;
        let key = planned.key;
        trace_decision(&planned, &action);
        let forward = |planned: Planned, conditional, stored, reason, guard| Forward {
            parts: planned.parts,
            body: planned.body,
            conditional,
            key: Some(key),
            stored,
            reason,
            request_time: now,
            options: planned.options,
            settings: arc_swap::Guard::into_inner(planned.settings),
            remembered,
            _guard: guard,
        };
        // `choose` takes out an entry for every action that needs one; were one ever
        // missing, the request goes on as a miss.
        let as_miss = |planned| {
            let chosen =
                Chosen { now, action: Action::Fetch(Reason::Miss), taken: Taken::Nothing, remembered };
            self.step(planned, chosen, coalesce)
        };
        match action {
            Action::Serve(mut serve) => {
                // A plain hit was answered by `choose`; this one starts a background
                // revalidation, so it took the whole entry.
                let Taken::Entry(entry) = taken else {
                    return as_miss(planned);
                };
                let times = (entry.created, entry.expires);
                // One background revalidation per key at a time: it leads the coalescing
                // group until it completes, so identical stale hits do not each start one.
                let background = serve.revalidate_in_background.take().and_then(|conditional| {
                    let guard = self.lead(key).ok()?;
                    Some((conditional, guard))
                });
                let response = match background {
                    Some((conditional, guard)) => {
                        let stored = (entry.response.clone_to_serve(), times.0, times.1);
                        let mut response = self.serve(&planned, &serve, stored, now);
                        // The revalidation validates the stored response with its own
                        // validators (`conditional`), not the client's copy: the client's
                        // `If-None-Match` / `If-Modified-Since` (answered above, RFC 9111
                        // §4.3.2) would make the origin answer for that copy, and its 304
                        // refresh a stored response that changed. Nor the client's
                        // `Range`: the revalidation refreshes the whole stored response,
                        // and the 206 a changed resource would get is never stored
                        // (RFC 9111 §3.3), leaving the stale one in place.
                        let mut planned = planned;
                        planned.parts.headers.remove(header::IF_NONE_MATCH);
                        planned.parts.headers.remove(header::IF_MODIFIED_SINCE);
                        planned.parts.headers.remove(header::RANGE);
                        let reason = Reason::StaleWhileRevalidate;
                        let forward = forward(planned, conditional, Some(entry), reason, Some(guard));
                        response.extensions_mut().insert(PendingRevalidation(forward));
                        response
                    }
                    None => self.serve(&planned, &serve, (entry.response, times.0, times.1), now),
                };
                Step::Plan(Plan::Respond(Box::new(response)))
            }
            Action::GatewayTimeout(reason) => {
                Step::Plan(Plan::Respond(Box::new(gateway_timeout(reason, Some(key), now))))
            }
            Action::PassThrough(reason) => {
                let mut forward = forward(planned, Conditional::default(), None, reason, None);
                forward.key = None;
                Step::Plan(Plan::Forward(Box::new(forward)))
            }
            Action::Fetch(reason) => {
                let guard = match (coalesce, reason) {
                    (true, Reason::Miss | Reason::VaryMismatch) => match self.lead(key) {
                        Ok(guard) => Some(guard),
                        Err(listener) => return Step::Wait(listener, Box::new(planned)),
                    },
                    _ => None,
                };
                Step::Plan(Plan::Forward(Box::new(forward(
                    planned,
                    Conditional::default(),
                    None,
                    reason,
                    guard,
                ))))
            }
            Action::Revalidate(revalidate) => {
                let guard = if coalesce {
                    match self.lead(key) {
                        Ok(guard) => Some(guard),
                        Err(listener) => return Step::Wait(listener, Box::new(planned)),
                    }
                } else {
                    None
                };
                let Taken::Entry(entry) = taken else {
                    return as_miss(planned);
                };
                Step::Plan(Plan::Forward(Box::new(forward(
                    planned,
                    revalidate.conditional,
                    Some(entry),
                    revalidate.reason,
                    guard,
                ))))
            }
        }
    }

    /// A plan that bypasses the cache (e.g. a body that cannot be replayed). With
    /// [`Reason::BodyNotReplayable`], the completion of an unsafe request that succeeded
    /// still invalidates what is stored for its URLs (RFC 9111 §4.4); nothing is stored.
    /// Needs no store access, so it serves sync and async adapters alike.
    ///
    /// A request with `only_if_cached` (the option, or the `only-if-cached` directive)
    /// is answered `504 Gateway Timeout` at once ([`Reason::OnlyIfCachedMiss`]): it never
    /// goes to the origin, and nothing stored can answer a request the cache cannot key.
    /// (Unless the cache is disabled, which bypasses it for every request.)
    pub fn plan_bypass(&self, parts: request::Parts, options: RequestOptions, reason: Reason) -> Plan {
        let only_if_cached =
            options.only_if_cached || RequestDirectives::parse(&parts.headers).only_if_cached;
        if only_if_cached && !self.settings.load().disabled {
            return Plan::Respond(Box::new(gateway_timeout(Reason::OnlyIfCachedMiss, None, self.now())));
        }
        self.bypass(parts, Bytes::new(), options, reason)
    }

    /// How many requests are waiting behind an identical one in flight (coalesced).
    pub fn coalesced_waiters(&self) -> usize {
        let map = self.inflight.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.values().map(|event| event.total_listeners()).sum()
    }

    /// The stored response to serve instead of the origin's, whose head is `response`,
    /// when that is a server error stale-if-error lets the stored one stand in for
    /// (RFC 5861 §4: 500, 502, 503, 504): what [`Cache::complete`] would answer, decided
    /// from the head alone, with no store access. For adapters that gave up buffering
    /// the body ([`Forward::wants_body`] asks for a server error's when a response is
    /// stored, to decide this): an error page too large to store still gives way to the
    /// stored response. `Some`: serve it and drop `forward` (the origin's response
    /// with it); `None`: finish with [`Cache::complete_streamed`].
    pub fn stale_instead_of(
        &self,
        forward: &Forward,
        response: &http::response::Parts,
    ) -> Option<Response<Bytes>> {
        let entry = forward.stored.as_deref().filter(|_| forward.key.is_some())?;
        let now = self.now();
        stale_instead_of_error(now, response.status, &forward.parts, entry, &forward.settings)?;
        Some(self.stale_response(forward, entry, Reason::StaleIfError, now))
    }

    /// Becomes the leader for `key`, or gets a listener for the current leader.
    fn lead(&self, key: CacheKey) -> Result<InflightGuard, EventListener> {
        let mut map = self.inflight.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.entry(key) {
            Slot::Occupied(event) => Err(event.get().listen()),
            Slot::Vacant(slot) => {
                slot.insert(Event::new());
                Ok(InflightGuard { inflight: self.inflight.clone(), key })
            }
        }
    }

    fn bypass(&self, parts: request::Parts, body: Bytes, options: RequestOptions, reason: Reason) -> Plan {
        Plan::Forward(Box::new(Forward {
            parts,
            body,
            conditional: Conditional::default(),
            key: None,
            stored: None,
            reason,
            request_time: self.now(),
            options,
            settings: self.settings(),
            remembered: false,
            _guard: None,
        }))
    }

    /// The pure part of completing: what to write, and what to answer.
    fn finish(&self, mut forward: Forward, response: Response<Bytes>, final_url: Option<&Uri>) -> Finish {
        let now = self.now();
        let Some(key) = forward.key else {
            let (head, body) = response.into_parts();
            let writes = self.bypassed_writes(&forward, &head, final_url);
            let response = Response::from_parts(head, body);
            return Finish {
                response: with_status(response, CacheStatus::bypass(forward.reason), now),
                writes,
                retry: None,
            };
        };
        let (head, body) = response.into_parts();
        let exchange = Exchange {
            request: &forward.parts,
            key,
            response: &head,
            body: &body,
            request_time: forward.request_time,
            response_time: now,
            final_url,
        };
        // A 304 refreshes the stored entry and nothing reads it afterwards: hand it over
        // instead of having the refresh copy it.
        let stored = if head.status == StatusCode::NOT_MODIFIED {
            // A 304 to the client's own validators says nothing of the stored response's
            // (RFC 9111 §4.3.4 selects by the validators the cache sent): it is the
            // client's answer, passed through.
            let clients = forward.reason == Reason::ClientConditional;
            forward.stored.take().filter(|_| !clients).map(|entry| Cow::Owned(*entry))
        } else {
            forward.stored.as_deref().map(Cow::Borrowed)
        };
        let (settings, options) = (&forward.settings, &forward.options);
        let outcome = store_entry(now, &exchange, stored, settings, options, &remembered_keys(settings));
        tracing::debug!(target: "httpcache", key = %key, status = %head.status, outcome = %outcome.reason(), "store");
        let mut status = CacheStatus::bypass(forward.reason);
        status.cache_key = Some(key);
        match outcome {
            Outcome::Store { entry, invalidate, invalidate_uris, reason } => {
                status.reason = forward.reason;
                status.stored = true;
                status.created_at = Some(entry.created);
                status.expires = entry.expires;
                status.is_expired = entry.is_expired(now);
                let mut puts = vec![*entry];
                // Remember the redirect target too, so asking for it directly is a hit:
                // for a GET only, which a client follows as the same request. It may
                // follow another method's redirect with a GET (301, 302, 303), and never
                // sent this method, with this body, to the target. Nor a HEAD: its
                // response, without a body, would take the place of a GET stored for
                // the target (HEAD shares GET's key), which this write does not read.
                let followed_as_sent = forward.parts.method == Method::GET;
                if let Some(final_url) =
                    final_url.filter(|url| followed_as_sent && **url != forward.parts.uri)
                {
                    let mut parts = forward.parts.clone();
                    parts.uri = final_url.clone();
                    // Stored as the target's own response would be: its URL patterns give
                    // its expiry, or keep it out (`DoNotCache`), as they would have kept
                    // out the target asked for directly. (A redirect only, never a hit.)
                    let alias = Exchange {
                        request: &parts,
                        key: cache_key(&parts, &forward.body, settings),
                        final_url: None,
                        ..exchange
                    };
                    if let Outcome::Store { entry, .. } =
                        store_entry(now, &alias, None, settings, options, &remembered_keys(settings))
                    {
                        puts.push(*entry);
                    }
                }
                let _ = reason;
                for put in &puts {
                    self.not_stored.forget(&put.key);
                }
                let mut writes = invalidation_writes(key, invalidate, invalidate_uris, settings);
                // Variants filed under another `Vary` are obsolete once the origin's
                // `Vary` changed (RFC 9111 §4.1): prune them after the write. After a 304
                // that selected nothing, the retry no longer holds the entry it was
                // revalidating, whose `Vary` may differ; `force_refresh` read nothing, and
                // a response that varies may leave behind one that did not (which would
                // still answer the requests this one does not match).
                let vary = Vary::parse(&puts[0].response.headers);
                let vary_moved = match forward.stored.as_ref() {
                    Some(old) => !Vary::parse(&old.response.headers).same_as(&vary),
                    None => match forward.reason {
                        Reason::VaryMismatch | Reason::ValidatorMismatch => true,
                        Reason::ForceRefresh => !vary.same_as(&Vary::Fields(Vec::new())),
                        _ => false,
                    },
                };
                let prune = vary_moved.then(|| Write::Prune(key, vary, puts[0].variant));
                writes.extend(puts.into_iter().map(|entry| Write::Put(Box::new(entry))));
                writes.extend(prune);
                Finish {
                    response: with_status(Response::from_parts(head, body), status, now),
                    writes,
                    retry: None,
                }
            }
            Outcome::Refresh { entry, persist, replaces, reason, served_only } => {
                status.source = Source::Revalidated;
                status.from_cache = true;
                // A 304 confirmed it, whether or not it changed `Vary` (a HEAD's 200 did not).
                status.revalidated = matches!(reason, Reason::Revalidated | Reason::VaryChanged);
                status.reason = reason;
                status.created_at = Some(entry.created);
                status.expires = entry.expires;
                status.is_expired = entry.is_expired(now);
                // Served now, when it arrived: its current age is its age on arrival.
                let age = entry.initial_age;
                status.age = Some(age);
                let mut writes = Vec::with_capacity(usize::from(replaces.is_some()) + usize::from(persist));
                if let Some(old) = replaces {
                    writes.push(Write::RemoveVariant(key, old));
                }
                let is_head = forward.parts.method == Method::HEAD;
                // The stored body is the entry's: let the store rewrite only what changed
                // (§4.3.4). Re-filed under a new variant id, nothing is stored under it
                // yet, so the whole entry goes in.
                let write = |entry| match replaces {
                    None => Write::Refresh(entry),
                    Some(_) => Write::Put(entry),
                };
                let mut response = if reason == Reason::HeadFreshened {
                    writes.extend(persist.then(|| write(entry)));
                    with_status(Response::from_parts(head, body), status, now)
                } else if persist {
                    // The entry goes to the store; the response copies its response part,
                    // with room for the fields serving adds (a plain clone would grow).
                    let response =
                        respond_from_entry(entry.response.clone_to_serve(), is_head, age, status, now);
                    writes.push(write(entry));
                    response
                } else {
                    respond_from_entry(entry.response, is_head, age, status, now)
                };
                if !served_only.is_empty() {
                    // The 304 validated this response: the fields it names as not to be
                    // reused unvalidated go to this caller, not to the store (§5.2.2.4).
                    // As `extend` would (a field's first line replaces, the next join
                    // it), but a map already full drops what does not fit (`with_status`).
                    let mut last = None;
                    for (name, value) in served_only {
                        let headers = response.headers_mut();
                        match (name, &last) {
                            (Some(name), _) => {
                                let _ = headers.try_insert(name.clone(), value);
                                last = Some(name);
                            }
                            (None, Some(name)) => {
                                let _ = headers.try_append(name.clone(), value);
                            }
                            (None, None) => {}
                        }
                    }
                }
                Finish { response, writes, retry: None }
            }
            Outcome::ServeStale { reason, .. } => match forward.stored.as_deref() {
                Some(entry) => Finish::respond(self.stale_response(&forward, entry, reason, now)),
                // `store` serves stale only with a stored entry; were one ever missing,
                // the origin's answer goes back as it is.
                None => Finish::respond(with_status(Response::from_parts(head, body), status, now)),
            },
            Outcome::Invalidate { keys, uris, reason } => {
                status.reason = reason;
                let writes = invalidation_writes(key, keys, uris, &forward.settings);
                Finish {
                    response: with_status(Response::from_parts(head, body), status, now),
                    writes,
                    retry: None,
                }
            }
            Outcome::Retry(reason) => {
                let mut retry = forward;
                retry.conditional = Conditional::default();
                retry.stored = None;
                retry.reason = reason;
                retry.request_time = now;
                Finish {
                    response: Response::new(Bytes::new()),
                    writes: Vec::new(),
                    retry: Some(Box::new(retry)),
                }
            }
            Outcome::Skip(reason) => {
                self.note_not_stored(&forward, now);
                // A 304 to the client's own conditional request (whatever else sent it to
                // the origin: force_refresh, DoNotCache...) is the client's answer, not an
                // unsolicited one: it keeps saying why it was forwarded.
                let asked = |name| forward.parts.headers.contains_key(name);
                let unsolicited = reason == Reason::Unsolicited304
                    && forward.reason != Reason::ClientConditional
                    && !asked(header::IF_NONE_MATCH)
                    && !asked(header::IF_MODIFIED_SINCE);
                status.reason = if unsolicited { reason } else { forward.reason };
                tracing::debug!(target: "httpcache", key = %key, why = %reason, "not stored");
                Finish::respond(with_status(Response::from_parts(head, body), status, now))
            }
        }
    }

    fn stale_response(
        &self,
        forward: &Forward,
        entry: &Entry,
        reason: Reason,
        now: SystemTime,
    ) -> Response<Bytes> {
        let age = entry.current_age(now);
        // Stale by its expiry or by the request's `expire_after`; not when the request
        // forced the revalidation of a fresh one (`refresh`, its own `no-cache`...).
        let is_expired = entry.is_expired(now);
        let stale = is_expired || crate::machine::stale_by_request_expiry(&forward.options, entry, now);
        let status = CacheStatus {
            source: Source::Cache,
            from_cache: true,
            revalidated: false,
            stale,
            stored: false,
            created_at: Some(entry.created),
            expires: entry.expires,
            is_expired,
            cache_key: forward.key,
            age: Some(age),
            reason,
            // Served after the origin was asked, and failed.
            forwarded: Some(forward.reason),
        };
        let response = entry.response.clone_to_serve();
        respond_from_entry(response, forward.parts.method == Method::HEAD, age, status, now)
    }

    /// The pure part of completing a response whose body is streamed, not buffered:
    /// the status to attach and the keys a successful unsafe method invalidates.
    /// Nothing is stored (the body was never seen).
    fn finish_streamed(
        &self,
        forward: &Forward,
        head: &mut http::response::Parts,
        final_url: Option<&Uri>,
    ) -> Vec<Write> {
        let (status, writes, now) = self.streamed_outcome(forward, head, final_url);
        status.mark(head, now);
        writes
    }

    /// The verdict on a streamed response and the writes it causes (see `finish_streamed`).
    fn streamed_outcome(
        &self,
        forward: &Forward,
        head: &http::response::Parts,
        final_url: Option<&Uri>,
    ) -> (CacheStatus, Vec<Write>, SystemTime) {
        let now = self.now();
        let mut status = CacheStatus::bypass(forward.reason);
        let Some(key) = forward.key else {
            return (status, self.bypassed_writes(forward, head, final_url), now);
        };
        status.cache_key = Some(key);
        // A streamed response is not stored, so the only writes it can cause are the
        // invalidations of an unsafe method (§4.4): a safe one has nothing to decide.
        if forward.parts.method.is_safe() {
            self.note_not_stored(forward, now);
            return (status, Vec::new(), now);
        }
        let empty = Bytes::new();
        let exchange = Exchange {
            request: &forward.parts,
            key,
            response: head,
            body: &empty,
            request_time: forward.request_time,
            response_time: now,
            final_url,
        };
        let (settings, options) = (&forward.settings, &forward.options);
        let stored = forward.stored.as_deref().map(Cow::Borrowed);
        let writes = match store_entry(now, &exchange, stored, settings, options, &remembered_keys(settings))
        {
            // Too large to store (the only storable response `wants_body` turns down).
            Outcome::Store { invalidate, invalidate_uris, .. } => {
                invalidation_writes(key, invalidate, invalidate_uris, &forward.settings)
            }
            Outcome::Invalidate { keys, uris, reason } => {
                status.reason = reason;
                invalidation_writes(key, keys, uris, &forward.settings)
            }
            _ => Vec::new(),
        };
        (status, writes, now)
    }

    /// The invalidations of a request that bypassed the cache because its body could
    /// not be replayed: an unsafe one that succeeded still invalidates its URLs (RFC 9111
    /// §4.4). Nothing for any other bypass (the cache disabled...).
    fn bypassed_writes(
        &self,
        forward: &Forward,
        head: &http::response::Parts,
        final_url: Option<&Uri>,
    ) -> Vec<Write> {
        if forward.reason != Reason::BodyNotReplayable {
            return Vec::new();
        }
        let settings = &forward.settings;
        match crate::machine::bypassed_invalidation(
            &forward.parts,
            head,
            final_url,
            settings,
            &remembered_keys(settings),
        ) {
            Some((keys, uris)) => invalidation_writes(keys[0], keys, uris, settings),
            None => Vec::new(),
        }
    }

    /// The pure part of failing: a stale response when stale-if-error allows it.
    fn recover(&self, forward: &Forward) -> Option<Response<Bytes>> {
        forward.key?;
        let now = self.now();
        match on_error(now, &forward.parts, forward.stored.as_deref(), &forward.settings, &forward.options) {
            Outcome::ServeStale { reason, .. } => {
                let entry = forward.stored.as_deref()?;
                Some(self.stale_response(forward, entry, reason, now))
            }
            _ => None,
        }
    }
}

/// Re-enables the cache when dropped, unless another guard is alive (see
/// [`Cache::disable`]).
pub struct DisabledGuard<'a, S> {
    cache: &'a Cache<S>,
}

impl<S> Drop for DisabledGuard<'_, S> {
    fn drop(&mut self) {
        let cache = self.cache;
        let mut disables = cache.settings_update.lock().unwrap_or_else(PoisonError::into_inner);
        disables.guards = disables.guards.saturating_sub(1);
        if disables.guards == 0 {
            let was = disables.was;
            cache.change_settings(|settings| settings.disabled = was);
        }
    }
}

/// The [`DisabledGuard`]s alive, and whether the cache was disabled before the first.
#[derive(Debug, Default)]
struct Disables {
    guards: usize,
    was: bool,
}

/// What [`Cache::choose`] made of the stored variants. Both kinds are boxed, so that a
/// hit, answered at once, moves a pointer and writes no more: with the decision held
/// inline, the hit path's frames grow by its size, and a hit touched 15 more cache
/// lines cold (measured with `scripts/cold-footprint`).
enum Choice {
    /// A plain hit, answered.
    Served(Box<Response<Bytes>>),
    /// Anything else, for [`Cache::step`].
    Decided(Box<Chosen>),
}

/// A decision and what [`Cache::choose`] took out of the stored variants for it.
struct Chosen {
    /// The time the decision was made at.
    now: SystemTime,
    action: Action,
    taken: Taken,
    /// Decided without reading the store because the key's last response was not
    /// stored: the request goes on without a read ([`Forward::remembered`]) and is not
    /// coalesced.
    remembered: bool,
}

/// A decision [`Cache::before_reading`] made without reading the store. Kept apart from
/// [`Chosen`] (which can hold a whole entry) so that the check every request makes
/// returns a few words, not room for an entry.
struct Unread {
    now: SystemTime,
    action: Action,
    /// Because the key's last response was not stored (see [`Chosen::remembered`]).
    remembered: bool,
}

impl Unread {
    fn chosen(self) -> Chosen {
        Chosen { now: self.now, action: self.action, taken: Taken::Nothing, remembered: self.remembered }
    }
}

/// The part of the chosen entry planning goes on with.
enum Taken {
    /// None (a miss, a pass-through...).
    Nothing,
    /// The whole entry: a revalidation, or a hit that starts one in the background.
    /// Boxed, and kept in the box by the [`Forward`] that goes on with it: what moves
    /// from planning to the request and on to its completion is a pointer, not the
    /// entry's 400-odd bytes, and neither a [`Chosen`] nor a [`Forward`] without one
    /// (a miss, a pass-through) is any bigger for it. A revalidation pays the box (an
    /// allocation) and writes fewer cold lines for it.
    Entry(Box<Entry>),
}

/// A request whose key is known, on its way through [`Cache::step`].
struct Planned {
    parts: request::Parts,
    body: Bytes,
    options: RequestOptions,
    key: CacheKey,
    /// The settings when the request was planned. Loaded without touching the shared
    /// reference count (which threads planning at once would fight over): a hit never
    /// takes a reference; a request that goes on (a [`Forward`], or a plan that waits)
    /// takes one with [`Planned::detached`] or when its `Forward` is built.
    settings: arc_swap::Guard<Arc<Settings>>,
}

impl Planned {
    /// The same, holding its own reference to the settings: for a plan that may wait
    /// long (a guard is meant to be short-lived).
    fn detached(self) -> Planned {
        let settings = arc_swap::Guard::from_inner(arc_swap::Guard::into_inner(self.settings));
        Planned { settings, ..self }
    }
}

/// What a failed [`Write`] is reported as.
struct Failure {
    key: CacheKey,
    stores: bool,
}

impl Failure {
    /// Traces the failure; returns whether the write stored an entry.
    fn traced(self, error: &crate::store::StoreError) -> bool {
        log_store_error(if self.stores { "write" } else { "remove" }, &self.key, error);
        self.stores
    }
}

/// One storage effect of completing a request, performed in order.
enum Write {
    /// Remove every variant under a key (invalidation, §4.4).
    Remove(CacheKey),
    /// Remove one variant (re-filed under a new `Vary`).
    RemoveVariant(CacheKey, VariantId),
    /// Store an entry.
    Put(Box<Entry>),
    /// Store an entry freshened by a validation, whose body is already stored
    /// ([`Store::refresh`]).
    Refresh(Box<Entry>),
    /// Remove the variants under a key whose `Vary` differs from this one, except `VariantId`.
    Prune(CacheKey, Vary, VariantId),
    /// Remove the GET/HEAD entries stored for a URI, found by scanning metadata (the
    /// key is the invalidating request's, for logs).
    RemoveUrl(CacheKey, Uri, Arc<Settings>),
}

impl Write {
    /// What a failure of this write is reported as: its key, and whether it stores an
    /// entry (a `Put` or a `Refresh`: the response is then not stored). Taken before
    /// the write, which hands its entry over to the store.
    fn failure(&self) -> Failure {
        Failure { key: *self.key(), stores: matches!(self, Write::Put(_) | Write::Refresh(_)) }
    }

    fn key(&self) -> &CacheKey {
        match self {
            Write::Remove(key)
            | Write::RemoveVariant(key, _)
            | Write::Prune(key, _, _)
            | Write::RemoveUrl(key, _, _) => key,
            Write::Put(entry) | Write::Refresh(entry) => &entry.key,
        }
    }

    /// The entries `RemoveUrl` removes, given the store's metadata.
    fn stored_at(
        uri: &Uri,
        settings: &Settings,
        metas: Vec<EntryMeta>,
    ) -> impl Iterator<Item = (CacheKey, VariantId)> {
        // As stored URLs are: redacted (a password in it is `REDACTED`), then normalised.
        let wanted = crate::inventory::wanted_url(uri, settings);
        metas
            .into_iter()
            .filter(move |meta| {
                (meta.method == Method::GET || meta.method == Method::HEAD)
                    && crate::inventory::stored_url_is(&meta.url, &wanted, settings)
            })
            .map(|meta| (meta.key, meta.variant))
    }

    /// The variants `Prune` removes, given what is stored under its key.
    fn obsolete(vary: &Vary, keep: VariantId, stored: Vec<Entry>) -> impl Iterator<Item = VariantId> {
        stored
            .into_iter()
            .filter(move |entry| entry.variant != keep && !Vary::parse(&entry.response.headers).same_as(vary))
            .map(|entry| entry.variant)
    }
}

/// How the drivers derive the keys an unsafe request invalidates: through the thread's
/// memo of keys (see [`crate::machine::KeyOf`]).
fn remembered_keys(settings: &Arc<Settings>) -> impl Fn(&request::Parts, &Uri) -> CacheKey + '_ {
    move |request, uri| crate::key::memo::get_key(request, uri, settings)
}

/// The writes that invalidate `keys`, and the entries stored for `uris` (found by URL).
fn invalidation_writes(
    key: CacheKey,
    keys: Vec<CacheKey>,
    uris: Vec<Uri>,
    settings: &Arc<Settings>,
) -> Vec<Write> {
    let mut writes: Vec<Write> = keys.into_iter().map(Write::Remove).collect();
    writes.extend(uris.into_iter().map(|uri| Write::RemoveUrl(key, uri, settings.clone())));
    writes
}

struct Finish {
    response: Response<Bytes>,
    writes: Vec<Write>,
    /// Boxed as [`Completion::Retry`] wants it, and so that a `Finish` held across the
    /// store writes is small.
    retry: Option<Box<Forward>>,
}

impl Finish {
    fn respond(response: Response<Bytes>) -> Self {
        Finish { response, writes: Vec::new(), retry: None }
    }

    /// Marks the response as not stored when a `Put` or `Refresh` failed; `now` (asked
    /// only then) gives its `Cache-Status` again.
    fn stored(mut self, all_puts_succeeded: bool, now: impl FnOnce() -> SystemTime) -> Self {
        if !all_puts_succeeded {
            mark_not_stored(&mut self.response, now());
        }
        self
    }

    fn into_completion(self) -> Completion {
        match self.retry {
            Some(retry) => Completion::Retry(retry),
            None => Completion::Respond(Box::new(self.response)),
        }
    }
}

/// Builds the response for a stored entry: its head and body (no copy), `Age`
/// (RFC 9111 §5.1), `Cache-Status` (RFC 9211) and the [`CacheStatus`] extension.
fn respond_from_entry(
    stored: StoredResponse,
    head: bool,
    age: Duration,
    status: CacheStatus,
    now: SystemTime,
) -> Response<Bytes> {
    let mut response = Response::new(if head { Bytes::new() } else { stored.body });
    *response.status_mut() = stored.status;
    *response.version_mut() = stored.version;
    *response.headers_mut() = stored.headers;
    // `try_insert` is what `insert` runs: a map already full (see `with_status`) goes
    // without the field rather than panic.
    let _ = response.headers_mut().try_insert(header::AGE, age_value(age.as_secs()));
    if let Some(final_url) = stored.final_url {
        response.extensions_mut().insert(FinalUrl(final_url));
    }
    with_status(response, status, now)
}

/// The fields a `304 Not Modified` carries from the stored response (RFC 9110 §15.4.5:
/// those a 200 would have sent of `Cache-Control`, `Content-Location`, `Date`, `ETag`,
/// `Expires` and `Vary`, and `Last-Modified`, which guides a client's own cache).
const NOT_MODIFIED_FIELDS: [header::HeaderName; 7] = [
    header::CACHE_CONTROL,
    header::CONTENT_LOCATION,
    header::DATE,
    header::ETAG,
    header::EXPIRES,
    header::VARY,
    header::LAST_MODIFIED,
];

/// A `304 Not Modified` answering the client's own conditional request from a stored
/// response (RFC 9111 §4.3.2): no body, and of the stored fields only
/// [`NOT_MODIFIED_FIELDS`], with `Age` and the cache status ([`respond_from_entry`]).
fn not_modified_from_entry(
    stored: StoredResponse,
    age: Duration,
    status: CacheStatus,
    now: SystemTime,
) -> Response<Bytes> {
    let mut headers = header::HeaderMap::new();
    for name in NOT_MODIFIED_FIELDS {
        for value in stored.headers.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let not_modified =
        StoredResponse { status: StatusCode::NOT_MODIFIED, headers, body: Bytes::new(), ..stored };
    respond_from_entry(not_modified, true, age, status, now)
}

/// The digits of every number under 100, each at its own place: `n` is `n` bytes from
/// the start under 10, and `10 + 2 * (n - 10)` bytes from it above.
const SMALL_NUMBERS: &str = concat!(
    "0123456789",
    "10111213141516171819202122232425262728293031323334353637383940414243444546474849",
    "50515253545556575859606162636465666768697071727374757677787980818283848586878889",
    "90919293949596979899",
);

/// `Age` in seconds: under 100 (a response served soon after it was stored), static
/// text, without an allocation; above, in one (`HeaderValue::from(u64)` makes two).
fn age_value(seconds: u64) -> HeaderValue {
    if let Ok(small @ 0..100) = usize::try_from(seconds) {
        let at = if small < 10 { small..small + 1 } else { 10 + 2 * (small - 10)..12 + 2 * (small - 10) };
        if let Some(text) = SMALL_NUMBERS.get(at) {
            return HeaderValue::from_static(text);
        }
    }
    let mut buffer = [0u8; 20];
    let digits = crate::status::decimal(&mut buffer, seconds);
    // Only ASCII digits were written.
    HeaderValue::from_bytes(digits).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// The `504 Gateway Timeout` the cache answers alone (`only-if-cached` with nothing to
/// serve, RFC 9111 §5.2.1.7): synthesized, never forwarded.
fn gateway_timeout(reason: Reason, key: Option<CacheKey>, now: SystemTime) -> Response<Bytes> {
    let mut status = CacheStatus::bypass(reason);
    status.source = Source::Synthesized;
    status.forwarded = None;
    status.cache_key = key;
    synthesized(StatusCode::GATEWAY_TIMEOUT, status, now)
}

/// Adds the `Cache-Status` field and the [`CacheStatus`] extension. A header map holds
/// at most about 24,000 fields (`http`'s bound): one that full (a response that came
/// so, or an entry stored so) goes without the fields the cache adds rather than panic
/// (`try_append` is what `append` runs, so this costs nothing).
fn with_status(mut response: Response<Bytes>, status: CacheStatus, now: SystemTime) -> Response<Bytes> {
    let _ = response.headers_mut().try_append(CACHE_STATUS, status.header_value(now));
    response.extensions_mut().insert(status);
    response
}

fn synthesized(code: StatusCode, status: CacheStatus, now: SystemTime) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = code;
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    with_status(response, status, now)
}

/// Traces the decision for a planned request.
fn trace_decision(planned: &Planned, action: &Action) {
    tracing::debug!(
        target: "httpcache",
        key = %planned.key,
        uri = %crate::key::redact_url(&planned.parts.uri, &planned.settings),
        action = ?action.reason(),
        "decide"
    );
}

fn log_store_error(operation: &str, key: &CacheKey, error: &crate::store::StoreError) {
    tracing::warn!(target: "httpcache", %key, %error, "store {operation} failed; continuing without the cache");
}

impl<S: Store> Cache<S> {
    /// Plans a request: reads the store and decides. Identical concurrent misses wait
    /// here for the first one to finish (at most [`COALESCE_WAIT`]), then read again.
    #[inline]
    pub fn plan(&self, parts: request::Parts, body: Bytes, options: RequestOptions) -> Plan {
        self.plan_within(parts, body, options, COALESCE_WAIT)
    }

    /// [`Cache::plan`], waiting for an identical request in flight at most `wait`
    /// (rather than [`COALESCE_WAIT`]): for a blocking adapter whose request has a
    /// timeout of its own, shorter than that. Then the request goes on as if none were
    /// in flight (to the origin, on a miss).
    pub fn plan_within(
        &self,
        parts: request::Parts,
        body: Bytes,
        options: RequestOptions,
        wait: Duration,
    ) -> Plan {
        let settings = self.settings.load();
        if settings.disabled {
            return self.bypass(parts, body, options, Reason::Disabled);
        }
        let key = crate::key::request_key(&parts, &body, &settings);
        let mut planned = Planned { parts, body, options, key, settings };
        let mut coalesce = !options.force_refresh;
        loop {
            let chosen = match self.before_reading(&planned) {
                Some(unread) => unread.chosen(),
                None => {
                    let mut choice = None;
                    self.store.read_with(&key, &mut |read| choice = Some(self.choose(&planned, read)));
                    // A store that never calls back has nothing to lend: a miss.
                    let choice = choice.unwrap_or_else(|| self.choose(&planned, Ok(Variants::default())));
                    match choice {
                        Choice::Served(response) => return Plan::Respond(response),
                        Choice::Decided(chosen) => *chosen,
                    }
                }
            };
            match self.step(planned, chosen, coalesce) {
                Step::Plan(plan) => return plan,
                Step::Wait(listener, returned) => {
                    let returned = returned.detached();
                    // Bounded: a leader that never finishes (a hung origin, or a caller
                    // that plans the same key twice before completing the first) only
                    // delays the followers, who then go to the origin themselves.
                    let _ = listener.wait_timeout(wait);
                    planned = returned;
                    coalesce = false;
                }
            }
        }
    }

    fn write(&self, mut finish: Finish) -> Completion {
        let ok = perform(&self.store, std::mem::take(&mut finish.writes));
        finish.stored(ok, || self.now()).into_completion()
    }

    /// Finishes a forwarded request with the origin's response (body buffered).
    /// `final_url` is where redirects ended, when the client followed any.
    ///
    /// A stored entry keeps the body's `Bytes` as given (a memory store holds that very
    /// buffer): read it into [`Forward::body_buffer`] and pass it through
    /// [`stored_body`], so that it holds exactly its bytes. Header values need no such
    /// care: the entry takes copies of its own.
    pub fn complete(
        &self,
        mut forward: Forward,
        response: Response<Bytes>,
        final_url: Option<&Uri>,
    ) -> Completion {
        let guard = forward.take_guard();
        let finish = self.finish(forward, response, final_url);
        release_after(self.write(finish), guard)
    }

    /// Finishes a forwarded request whose response body goes to the caller as a
    /// stream instead of being buffered (when [`Forward::wants_body`] is `false`, or a
    /// body without `Content-Length` turned out larger than `max_entry_bytes`):
    /// nothing is stored, but what a successful unsafe method invalidates is removed
    /// (RFC 9111 §4.4). Adds the `Cache-Status` header and the [`CacheStatus`]
    /// extension to `response`.
    pub fn complete_streamed(
        &self,
        forward: Forward,
        response: &mut http::response::Parts,
        final_url: Option<&Uri>,
    ) {
        let writes = self.finish_streamed(&forward, response, final_url);
        perform(&self.store, writes);
    }

    /// Finishes a forwarded request whose origin could not be reached: a stale
    /// response if stale-if-error allows one, else `None` (return the error).
    pub fn fail(&self, forward: Forward) -> Option<Response<Bytes>> {
        self.recover(&forward)
    }

    /// Runs the whole loop: `origin` sends a request and returns the response with its
    /// body, or an error. Store failures never surface; origin errors do, unless a
    /// stale response may stand in. A response served under stale-while-revalidate is
    /// returned without its [`PendingRevalidation`], which this loop has no background
    /// to run: dropped, it lets the next request for the key revalidate, where kept in
    /// the response it would hold identical requests back until the response is gone.
    pub fn send<E>(
        &self,
        request: Request<Bytes>,
        options: RequestOptions,
        mut origin: impl FnMut(Request<Bytes>) -> Result<Response<Bytes>, E>,
    ) -> Result<Response<Bytes>, E> {
        let (parts, body) = request.into_parts();
        let mut forward = match self.plan(parts, body, options) {
            Plan::Respond(response) => return Ok(without_revalidation(*response)),
            Plan::Forward(forward) => forward,
        };
        loop {
            match origin(forward.request()) {
                Ok(response) => match self.complete(*forward, response, None) {
                    Completion::Respond(response) => return Ok(*response),
                    Completion::Retry(retry) => forward = retry,
                },
                Err(error) => return self.fail(*forward).ok_or(error),
            }
        }
    }
}

/// Waits for `listener` (the leader of a coalesced group finishing), or for the future
/// `give_up` makes, whichever comes first; without `give_up` (not expected: a plan
/// waits at most once), for `listener` alone.
async fn wait_at_most<G, F>(listener: EventListener, give_up: Option<G>)
where
    G: FnOnce() -> F,
    F: Future<Output = ()>,
{
    let Some(give_up) = give_up else {
        return listener.await;
    };
    let mut listener = std::pin::pin!(listener);
    let mut timer = std::pin::pin!(give_up());
    std::future::poll_fn(|cx| {
        if listener.as_mut().poll(cx).is_ready() || timer.as_mut().poll(cx).is_ready() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// `response` without a [`PendingRevalidation`] (see [`Cache::send`]).
fn without_revalidation(mut response: Response<Bytes>) -> Response<Bytes> {
    response.extensions_mut().remove::<PendingRevalidation>();
    response
}

/// Releases coalesced waiters (by dropping `guard`) only once the entry is written, so
/// they find it; a retry keeps leading the group.
fn release_after(completion: Completion, guard: Option<InflightGuard>) -> Completion {
    match completion {
        Completion::Retry(mut retry) => {
            retry._guard = guard;
            Completion::Retry(retry)
        }
        respond => respond,
    }
}

/// Says in the [`CacheStatus`] extension, and in the `Cache-Status` field the cache
/// added (the last one: those of caches before it stay, RFC 9211 §2), that the response
/// was not stored after all.
fn mark_not_stored(response: &mut Response<Bytes>, now: SystemTime) {
    let Some(status) = response.extensions_mut().get_mut::<CacheStatus>() else { return };
    status.stored = false;
    let value = status.header_value(now);
    if let header::Entry::Occupied(mut fields) = response.headers_mut().entry(CACHE_STATUS)
        && let Some(ours) = fields.iter_mut().last()
    {
        *ours = value;
    }
}

/// Performs `writes` in order on a blocking store; returns whether every `Put` and
/// `Refresh` succeeded. Failures are traced, never returned: a store error never fails
/// a request.
fn perform<S: Store + ?Sized>(store: &S, writes: Vec<Write>) -> bool {
    let mut all_puts_succeeded = true;
    for write in writes {
        let failure = write.failure();
        let result = match write {
            Write::Remove(key) => store.remove(&key).map(drop),
            Write::RemoveVariant(key, variant) => store.remove_variant(&key, variant).map(drop),
            Write::Put(entry) => store.put_owned(*entry),
            Write::Refresh(entry) => store.refresh_owned(*entry),
            Write::Prune(key, vary, keep) => store.get(&key).and_then(|stored| {
                Write::obsolete(&vary, keep, stored)
                    .try_for_each(|variant| store.remove_variant(&key, variant).map(drop))
            }),
            Write::RemoveUrl(_, uri, settings) => store.scan().and_then(|metas| {
                Write::stored_at(&uri, &settings, metas)
                    .try_for_each(|(key, variant)| store.remove_variant(&key, variant).map(drop))
            }),
        };
        if let Err(error) = result {
            all_puts_succeeded &= !failure.traced(&error);
        }
    }
    all_puts_succeeded
}

impl<S: AsyncStore> Cache<S> {
    /// [`Cache::plan`] over an [`AsyncStore`].
    pub async fn plan_async(&self, parts: request::Parts, body: Bytes, options: RequestOptions) -> Plan {
        match self.plan_now(parts, body, options) {
            Ok(plan) => plan,
            Err(pending) => self.plan_pending(pending).await,
        }
    }

    /// [`Cache::plan_async`] as far as it gets without waiting: the plan, when the store
    /// reads at once ([`AsyncStore::read_now`]) and no identical request is in flight;
    /// else a [`PendingPlan`] to finish with [`Cache::plan_pending`].
    ///
    /// For adapters on a hot path: a hit from the memory or LMDB store is planned
    /// without building, moving or polling a future.
    pub fn plan_now(
        &self,
        parts: request::Parts,
        body: Bytes,
        options: RequestOptions,
    ) -> Result<Plan, PendingPlan> {
        let settings = self.settings.load();
        if settings.disabled {
            return Ok(self.bypass(parts, body, options, Reason::Disabled));
        }
        let key = crate::key::request_key(&parts, &body, &settings);
        let planned = Planned { parts, body, options, key, settings };
        let coalesce = !options.force_refresh;
        let chosen = match self.before_reading(&planned) {
            Some(unread) => unread.chosen(),
            None => {
                let mut choice = None;
                if !self.store.read_now(&key, &mut |read| choice = Some(self.choose(&planned, read))) {
                    return Err(PendingPlan { planned: Box::new(planned.detached()), coalesce, wait: None });
                }
                // A store that says it read but never called back had nothing to lend: a miss.
                match choice.unwrap_or_else(|| self.choose(&planned, Ok(Variants::default()))) {
                    Choice::Served(response) => return Ok(Plan::Respond(response)),
                    Choice::Decided(chosen) => *chosen,
                }
            }
        };
        match self.step(planned, chosen, coalesce) {
            Step::Plan(plan) => Ok(plan),
            Step::Wait(listener, planned) => Err(PendingPlan {
                planned: Box::new(planned.detached()),
                coalesce: false,
                wait: Some(listener),
            }),
        }
    }

    /// Finishes planning what [`Cache::plan_now`] could not: waits for the identical
    /// request in flight, or reads the store, then plans.
    ///
    /// The wait has no bound: a leader whose origin stalls holds this request back
    /// until it ends. Adapters bound it with [`Cache::plan_pending_within`].
    pub async fn plan_pending(&self, pending: PendingPlan) -> Plan {
        self.plan_pending_within(pending, std::future::pending::<()>).await
    }

    /// [`Cache::plan_pending`], waiting for an identical request in flight only until
    /// the future `give_up` makes completes (a timer of the adapter's runtime, usually
    /// [`COALESCE_WAIT`]): then the request goes on as if none were in flight (to the
    /// origin, on a miss), as a blocking follower does. `give_up` is called only when
    /// the request does wait behind another, so a plan that only reads the store builds
    /// no timer.
    pub async fn plan_pending_within<G, F>(&self, pending: PendingPlan, give_up: G) -> Plan
    where
        G: FnOnce() -> F,
        F: Future<Output = ()>,
    {
        let PendingPlan { mut planned, mut coalesce, wait } = pending;
        let mut give_up = Some(give_up);
        if let Some(listener) = wait {
            wait_at_most(listener, give_up.take()).await;
        }
        loop {
            // Again after a wait: the request waited for may have left the key
            // remembered as not stored.
            let chosen = match self.before_reading(&planned) {
                Some(unread) => unread.chosen(),
                None => {
                    let read = self.store.get(&planned.key).await.map(Variants::Owned);
                    match self.choose(&planned, read) {
                        Choice::Served(response) => return Plan::Respond(response),
                        Choice::Decided(chosen) => *chosen,
                    }
                }
            };
            match self.step(*planned, chosen, coalesce) {
                Step::Plan(plan) => return plan,
                Step::Wait(listener, returned) => {
                    wait_at_most(listener, give_up.take()).await;
                    planned = returned;
                    coalesce = false;
                }
            }
        }
    }

    /// [`perform`] over an [`AsyncStore`].
    async fn perform_async(&self, writes: Vec<Write>) -> bool {
        let mut all_puts_succeeded = true;
        for write in writes {
            let failure = write.failure();
            let result = match write {
                Write::Remove(key) => self.store.remove(&key).await.map(drop),
                Write::RemoveVariant(key, variant) => {
                    self.store.remove_variant(&key, variant).await.map(drop)
                }
                Write::Put(entry) => self.store.put_owned(*entry).await,
                Write::Refresh(entry) => self.store.refresh_owned(*entry).await,
                Write::Prune(key, vary, keep) => match self.store.get(&key).await {
                    Ok(stored) => {
                        let mut result = Ok(());
                        for variant in Write::obsolete(&vary, keep, stored) {
                            result = result.and(self.store.remove_variant(&key, variant).await.map(drop));
                        }
                        result
                    }
                    Err(error) => Err(error),
                },
                Write::RemoveUrl(_, uri, settings) => match self.store.scan().await {
                    Ok(metas) => {
                        let mut result = Ok(());
                        for (key, variant) in Write::stored_at(&uri, &settings, metas) {
                            result = result.and(self.store.remove_variant(&key, variant).await.map(drop));
                        }
                        result
                    }
                    Err(error) => Err(error),
                },
            };
            if let Err(error) = result {
                all_puts_succeeded &= !failure.traced(&error);
            }
        }
        all_puts_succeeded
    }

    /// The store writes of a completion: made at once when the store writes at once
    /// ([`AsyncStore::write_now`]: the memory store), else a future of their own, boxed.
    /// `perform_async` is a large future (every store call it may make keeps its state
    /// in it); held inline, it would make every completion future, and every adapter
    /// future that awaits one, as large, copied whole at each move, even for the
    /// responses that write nothing (a `no-store` pass-through).
    fn writes_async(&self, writes: Vec<Write>) -> Writes<'_> {
        if writes.is_empty() {
            return Writes::Made(true);
        }
        match self.store.write_now() {
            Some(store) => Writes::Made(perform(store, writes)),
            None => Writes::Pending(Box::pin(self.perform_async(writes))),
        }
    }

    /// [`Cache::complete`] over an [`AsyncStore`]. The response is decided when this is
    /// called; the returned future makes the store writes, or, for a store that writes
    /// at once ([`AsyncStore::write_now`]), they are made when this is called too. The
    /// future borrows the cache only, not `final_url`.
    pub fn complete_async(
        &self,
        mut forward: Forward,
        response: Response<Bytes>,
        final_url: Option<&Uri>,
    ) -> impl Future<Output = Completion> + Send + use<'_, S> {
        let guard = forward.take_guard();
        let mut finish = self.finish(forward, response, final_url);
        let writes = self.writes_async(std::mem::take(&mut finish.writes));
        async move {
            // Awaited before `finish` is touched: as the argument of `finish.stored(..)`,
            // the await would hold a moved copy of `finish` (176 bytes) in the future too.
            let made = writes.made().await;
            release_after(finish.stored(made, || self.now()).into_completion(), guard)
        }
    }

    /// [`Cache::complete_streamed`] over an [`AsyncStore`]. `response` gets its
    /// `Cache-Status` header and [`CacheStatus`] extension when this is called; the
    /// returned future makes the store writes (invalidations; a store that writes at
    /// once makes them when this is called), and the coalesced requests waiting behind
    /// this one are released after them. The future borrows the cache only, not
    /// `response` or `final_url`.
    pub fn complete_streamed_async(
        &self,
        mut forward: Forward,
        response: &mut http::response::Parts,
        final_url: Option<&Uri>,
    ) -> impl Future<Output = ()> + Send + use<'_, S> {
        let writes = self.finish_streamed(&forward, response, final_url);
        let guard = forward.take_guard();
        let writes = self.writes_async(writes);
        async move {
            writes.made().await;
            drop(guard);
        }
    }

    /// [`Cache::fail`] for async adapters (no store access is needed).
    pub fn fail_async(&self, forward: Forward) -> Option<Response<Bytes>> {
        self.recover(&forward)
    }

    /// [`Cache::send`] over an [`AsyncStore`] with an async `origin` (a
    /// stale-while-revalidate response also comes without its revalidation).
    pub async fn send_async<E, F, Fut>(
        &self,
        request: Request<Bytes>,
        options: RequestOptions,
        mut origin: F,
    ) -> Result<Response<Bytes>, E>
    where
        F: FnMut(Request<Bytes>) -> Fut,
        Fut: Future<Output = Result<Response<Bytes>, E>>,
    {
        let (parts, body) = request.into_parts();
        let mut forward = match self.plan_async(parts, body, options).await {
            Plan::Respond(response) => return Ok(without_revalidation(*response)),
            Plan::Forward(forward) => forward,
        };
        loop {
            match origin(forward.request()).await {
                Ok(response) => match self.complete_async(*forward, response, None).await {
                    Completion::Respond(response) => return Ok(*response),
                    Completion::Retry(retry) => forward = retry,
                },
                Err(error) => return self.fail_async(*forward).ok_or(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::age_value;

    // RFC 9111 §5.1: `Age` is a non-negative integer in seconds, in decimal digits.
    #[test]
    fn age_value_is_the_decimal_number() {
        for seconds in (0..250).chain([999, 1000, 86_400, u64::from(u32::MAX), u64::MAX]) {
            assert_eq!(age_value(seconds).to_str().unwrap(), seconds.to_string(), "{seconds}");
        }
    }
}

//! # httpcache-ureq
//!
//! An RFC 9111 HTTP cache for [ureq] 3: a [`Middleware`] ([`CacheMiddleware`]) and an
//! agent helper ([`CachedAgent`]). All policy lives in [`httpcache_core`]'s driver; this
//! crate converts ureq's requests and responses and runs the driver's steps.
//!
//! ```no_run
//! use std::time::Duration;
//! use httpcache_core::{Cache, Expiry, Settings};
//! use httpcache_mem::MemoryStore;
//! use httpcache_ureq::{CacheRequestExt, CacheStatusExt, CachedAgent};
//!
//! let settings = Settings { expire_after: Some(Expiry::After(Duration::from_secs(600))), ..Settings::default() };
//! let cache = Cache::new(MemoryStore::new(64 << 20), settings);
//! // Your other agent settings go in the closure; they are kept.
//! let agent = CachedAgent::with_config(cache, |config| config.timeout_global(Some(Duration::from_secs(30))));
//!
//! let first = agent.get("http://example.com/").call()?;
//! let second = agent.get("http://example.com/").call()?;
//! assert!(!first.from_cache() && second.from_cache());
//! println!("{:?}", second.headers().get("cache-status"));
//!
//! // Per request: never contact the origin (a miss answers 504).
//! let offline = agent.get("http://example.com/").only_if_cached().call();
//! # let _ = offline;
//! // At runtime: change the settings, or switch the cache off for a while.
//! agent.update_settings(|settings| settings.stale_if_error = httpcache_core::StaleAllowance::Always);
//! {
//!     let _off = agent.disable();
//!     agent.get("http://example.com/").call()?; // straight to the origin
//! }
//! # Ok::<(), ureq::Error>(())
//! ```
//!
//! Or, like niquests-cache's `cached_session()`: [`cached_agent()`] (feature `lmdb`, on
//! by default) caches in LMDB under the user's cache directory for 10 minutes.
//!
//! ## How ureq's behaviour meets the cache
//!
//! ureq runs the middleware chain first and only then, inside the last
//! [`MiddlewareNext::handle`], does the exchange proper: it follows redirects,
//! decompresses, and turns 4xx/5xx into `Err(Error::StatusCode)`. So the middleware
//! sees one call per request, whatever the number of hops:
//!
//! * **Redirects**: the entry is stored under the URL asked for and remembers where the
//!   redirects ended ([`ureq::ResponseExt::get_uri`]); the driver stores a GET's under
//!   the final URL too, so asking for that directly is a hit. Every response carries the
//!   final URL as [`FinalUrl`] ([`CacheStatusExt::final_url`]). ureq's own URI extension
//!   is private to ureq: responses built from the origin's (misses, revalidations,
//!   stale-if-error on a 5xx) keep it, but on a pure hit **`ResponseExt::get_uri`
//!   panics**: use [`CacheStatusExt::final_url`].
//! * **Decompression**: bodies are stored decoded, without `Content-Encoding`, as ureq
//!   hands them to callers, and served the same way. With ureq's `charset` feature,
//!   text is stored as the UTF-8 ureq delivers and served without re-decoding.
//! * **Error statuses**: the cache must see a 500 to serve stale-if-error, and a 404 to
//!   store it when allowed, so [`CachedAgent`] builds the agent with
//!   `http_status_as_error(false)` and the middleware applies your setting *after* the
//!   cache: a 4xx/5xx, cached or not, becomes `Err(Error::StatusCode)` exactly when
//!   ureq would have made it one. Using [`CacheMiddleware`] by hand, build the agent
//!   with `http_status_as_error(false)` and set [`CacheMiddleware::status_as_error`]; if
//!   ureq still turns statuses into errors, 5xx errors go through stale-if-error and
//!   4xx/5xx responses are never stored. Give the sender `http_status_as_error(false)`
//!   too, or a 4xx/5xx it fetches in the background never reaches the cache.
//!   **A request's own `http_status_as_error`** (`agent.get(url).config()
//!   .http_status_as_error(false).build()`) is not seen: ureq keeps a request's own
//!   config from middleware (it has no public getter), so the agent's setting applies
//!   to every request of a cached agent. To read error bodies, build the agent with
//!   `http_status_as_error(false)` and look at `status()`.
//!
//! ## Bodies
//!
//! * A response served from a stored body (a hit, a revalidation, a response just
//!   stored) reads that body in place, without copying it, through a reader: ureq then
//!   does not know its length (`Body::content_length()` is `None`; the `Content-Length`
//!   header is there). To send such a body on as another request's body, set that
//!   request's `Content-Length` yourself, or read the body first.
//! * Responses the cache does not want ([`Forward::wants_body`] is `false`), and
//!   responses whose body turns out larger than `max_entry_bytes`, are handed over
//!   streamed and not stored (a body without `Content-Length` is buffered up to the
//!   limit, then the buffered prefix is chained with the rest of the stream).
//! * ureq request bodies are opaque readers. For GET, HEAD and methods whose responses
//!   are not stored, the body is not part of the key and is passed on untouched. For a
//!   method you allowed (e.g. POST) the body is read into memory to compute the key and
//!   sent with a `Content-Length`; a body larger than `max_entry_bytes` bypasses the
//!   cache and is streamed.
//!
//! ## Background work
//!
//! Under stale-while-revalidate the stale response is returned at once and a thread
//! revalidates it. A middleware cannot send requests outside its own call, so this (and
//! the rare resend after a 304 whose validator does not match) uses a *sender*: an agent
//! with your settings but without the cache middleware. [`CachedAgent`] builds one; by
//! hand, pass it to [`CacheMiddleware::sender`] (without one, background revalidations
//! are skipped and the entry is revalidated on a later request).
//!
//! Identical concurrent misses are coalesced by the driver: one goes to the origin, the
//! others wait for it at most [`COALESCE_WAIT`](httpcache_core::driver::COALESCE_WAIT)
//! (10 s), or the agent's `timeout_global` / `timeout_per_call` if shorter
//! ([`CachedAgent`] reads them; by hand, [`CacheMiddleware::coalesce_wait`]), and then go
//! to the origin themselves. (A request's own timeouts are not seen, as its
//! `http_status_as_error` is not.)
//!
//! [ureq]: https://docs.rs/ureq/3
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io::{self, Read};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Extensions, HeaderMap, HeaderValue, Method, Request, Response, Uri};
use httpcache_core::driver::{
    COALESCE_WAIT, Completion, DisabledGuard, FinalUrl, Forward, PendingRevalidation, Plan, stored_body,
};
use httpcache_core::inventory::Inventory;
use httpcache_core::key::body_is_keyed;
use httpcache_core::{Cache, Reason, RequestOptions, Settings, Store};
use ureq::config::{Config, ConfigBuilder};
use ureq::middleware::{Middleware, MiddlewareNext};
use ureq::typestate::AgentScope;
use ureq::{Agent, Body, BodyBuilder, ResponseExt, SendBody};

pub use httpcache_core;
pub use httpcache_core::{CacheRequestExt, CacheStatusExt};

#[cfg(feature = "lmdb")]
mod default_agent;
#[cfg(feature = "lmdb")]
pub use default_agent::{cached_agent, cached_agent_with};
#[cfg(feature = "lmdb")]
pub use httpcache_lmdb::{DEFAULT_APP_NAME, default_cache_dir};

/// What can go wrong building a cached agent (never a request: store failures are traced,
/// and the origin's response is returned).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The system has no user cache directory to put the default store in, or the
    /// application name is not one directory name ([`default_cache_dir`]).
    #[error("no user cache directory on this system, or the application name is not one directory name")]
    NoCacheDir,
    /// The store could not be opened.
    #[error("opening the cache store: {0}")]
    Store(#[from] httpcache_core::StoreError),
}

/// The cache as a ureq [`Middleware`]. Add it last, so your other middleware runs before
/// it (and sees its responses), or let [`CachedAgent`] do it.
///
/// ```
/// use std::sync::Arc;
/// use httpcache_core::{Cache, Settings};
/// use httpcache_mem::MemoryStore;
/// use httpcache_ureq::CacheMiddleware;
/// use ureq::{Agent, config::Config};
///
/// let cache = Arc::new(Cache::new(MemoryStore::new(16 << 20), Settings::default()));
/// // The sender: same settings, no cache; used for background revalidation.
/// let sender: Agent = Config::builder().http_status_as_error(false).build().into();
/// let agent: Agent = Config::builder()
///     .http_status_as_error(false) // the middleware must see 4xx/5xx responses...
///     .middleware(CacheMiddleware::new(cache.clone()).status_as_error(true).sender(sender))
///     .build()
///     .into(); // ...and turns them into `Err(StatusCode)` after the cache.
/// # let _ = agent;
/// ```
pub struct CacheMiddleware<S> {
    cache: Arc<Cache<S>>,
    status_as_error: bool,
    sender: Option<Agent>,
    /// How long a request waits behind an identical one in flight.
    coalesce_wait: std::time::Duration,
}

impl<S> Clone for CacheMiddleware<S> {
    fn clone(&self) -> Self {
        CacheMiddleware {
            cache: self.cache.clone(),
            status_as_error: self.status_as_error,
            sender: self.sender.clone(),
            coalesce_wait: self.coalesce_wait,
        }
    }
}

impl<S> std::fmt::Debug for CacheMiddleware<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheMiddleware")
            .field("cache", &self.cache)
            .field("status_as_error", &self.status_as_error)
            .field("sender", &self.sender.is_some())
            .field("coalesce_wait", &self.coalesce_wait)
            .finish()
    }
}

/// How a forwarded request ended.
enum Settled {
    Done(Result<Response<Body>, ureq::Error>),
    Retry(Box<Forward>),
}

impl<S: Store + 'static> CacheMiddleware<S> {
    /// A middleware over `cache`, turning 4xx/5xx into errors (ureq's default), with no
    /// sender (see [`CacheMiddleware::sender`]).
    pub fn new(cache: impl Into<Arc<Cache<S>>>) -> Self {
        CacheMiddleware {
            cache: cache.into(),
            status_as_error: true,
            sender: None,
            coalesce_wait: COALESCE_WAIT,
        }
    }

    /// How long a request waits for an identical one in flight (coalesced) before it
    /// goes to the origin itself: at most [`COALESCE_WAIT`], the default. Give it the
    /// agent's `timeout_global` (or `timeout_per_call`) when shorter, so that a request
    /// behind a stalled one keeps to it; [`CachedAgent`] does.
    pub fn coalesce_wait(mut self, wait: std::time::Duration) -> Self {
        self.coalesce_wait = wait.min(COALESCE_WAIT);
        self
    }

    /// Whether 4xx/5xx responses, from the cache or not, become
    /// `Err(ureq::Error::StatusCode)`. Set it to what you would have given ureq's
    /// `http_status_as_error`, and build the agent with `http_status_as_error(false)`.
    pub fn status_as_error(mut self, yes: bool) -> Self {
        self.status_as_error = yes;
        self
    }

    /// The agent used to send requests outside a middleware call: background
    /// revalidations (stale-while-revalidate) and the resend after a 304 whose validator
    /// does not match. Give it your settings, `http_status_as_error(false)` (what it
    /// fetches goes to the cache, a 404 it may store included) and no cache middleware.
    pub fn sender(mut self, agent: Agent) -> Self {
        self.sender = Some(agent);
        self
    }

    /// The cache (settings, store, driver).
    pub fn cache(&self) -> &Arc<Cache<S>> {
        &self.cache
    }

    /// A snapshot of the settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.cache.settings()
    }

    /// Waits, at most `timeout`, until no stale-while-revalidate revalidation of this
    /// cache is running; returns whether none is. Each runs on a thread of its own,
    /// which ends with the process: a short-lived program that wants them done (and
    /// stored) calls this before it exits, then [`Store::flush`].
    pub fn wait_for_revalidations(&self, timeout: std::time::Duration) -> bool {
        self.cache.wait_for_revalidations(timeout)
    }

    /// Changes the settings at runtime; requests under way keep the old ones.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) {
        self.cache.update_settings(change);
    }

    /// Disables the cache until the returned guard is dropped.
    pub fn disable(&self) -> DisabledGuard<'_, S> {
        self.cache.disable()
    }

    /// Inspects the store: count, list, filter, delete, copy.
    pub fn inventory(&self) -> Inventory<'_, S> {
        Inventory::new(self.cache.store())
    }

    /// Runs a plan; `first` sends the first request through the middleware chain.
    fn run(
        &self,
        plan: Plan,
        asked: &Uri,
        first: impl FnOnce(Request<Bytes>) -> Result<Response<Body>, ureq::Error>,
    ) -> Result<Response<Body>, ureq::Error> {
        let mut forward = match plan {
            Plan::Respond(response) => return self.deliver(*response, None, asked),
            Plan::Forward(forward) => forward,
        };
        let mut sent = first(forward.request());
        loop {
            match self.settle(forward, sent, asked) {
                Settled::Done(result) => return result,
                Settled::Retry(retry) => {
                    sent = self.resend(&retry);
                    forward = retry;
                }
            }
        }
    }

    /// Hands the origin's answer (or failure) to the driver.
    fn settle(
        &self,
        forward: Box<Forward>,
        sent: Result<Response<Body>, ureq::Error>,
        asked: &Uri,
    ) -> Settled {
        let response = match sent {
            Ok(response) => response,
            // A 4xx ureq made an error is an answer, not a failure of the origin.
            Err(ureq::Error::StatusCode(code)) if code < 500 => {
                return Settled::Done(Err(ureq::Error::StatusCode(code)));
            }
            Err(error) => return Settled::Done(self.fail(*forward, error, asked)),
        };
        let final_uri = response.get_uri().clone();
        let final_url = (final_uri != *asked).then_some(&final_uri);
        let (mut head, body) = response.into_parts();
        head.extensions.insert(FinalUrl::from_uri(&final_uri));
        if !forward.wants_body(&head) {
            self.cache.complete_streamed(*forward, &mut head, final_url);
            return Settled::Done(self.check_status(Response::from_parts(head, body)));
        }
        let limit = self.cache.settings().max_entry_bytes;
        let mut reader = body.into_reader();
        let mut buffered = forward.body_buffer(&head);
        if let Err(error) = (&mut reader).take(limit.saturating_add(1)).read_to_end(&mut buffered) {
            // The origin failed mid-body: as if it could not be reached.
            return Settled::Done(self.fail(*forward, error.into(), asked));
        }
        if buffered.len() as u64 > limit {
            // A server error stale-if-error covers gives way to the stored response,
            // however large its page.
            if let Some(stale) = self.cache.stale_instead_of(&forward, &head) {
                return Settled::Done(self.deliver(stale, None, asked));
            }
            self.cache.complete_streamed(*forward, &mut head, final_url);
            let body = body_builder(&head.headers).reader(io::Cursor::new(buffered).chain(reader));
            return Settled::Done(self.check_status(Response::from_parts(head, body)));
        }
        // ureq's own extensions (its URI, redirect history): put back under the driver's.
        let origin = std::mem::take(&mut head.extensions);
        match self.cache.complete(*forward, Response::from_parts(head, stored_body(buffered)), final_url) {
            Completion::Respond(response) => Settled::Done(self.deliver(*response, Some(origin), &final_uri)),
            Completion::Retry(retry) => Settled::Retry(retry),
        }
    }

    /// The origin could not be reached: a stale response if allowed, else the error.
    fn fail(&self, forward: Forward, error: ureq::Error, asked: &Uri) -> Result<Response<Body>, ureq::Error> {
        match self.cache.fail(forward) {
            Some(stale) => {
                // The URL as stored: without the ignored parameters' values (an API key).
                let uri = httpcache_core::key::redact_url(asked, &self.cache.settings());
                tracing::debug!(target: "httpcache", %error, %uri, "origin failed; serving stale");
                self.deliver(stale, None, asked)
            }
            None => Err(error),
        }
    }

    /// Sends a request again, through the sender.
    fn resend(&self, forward: &Forward) -> Result<Response<Body>, ureq::Error> {
        let Some(agent) = &self.sender else {
            return Err(ureq::Error::Other(
                "httpcache: a request must be sent again but the CacheMiddleware has no sender agent".into(),
            ));
        };
        send_buffered(forward.request(), |request| agent.run(request))
    }

    /// Converts a driver response to ureq's, starting a background revalidation if asked.
    /// `origin`: the extensions of the origin's response it came from (ureq's own).
    fn deliver(
        &self,
        response: Response<Bytes>,
        origin: Option<Extensions>,
        url: &Uri,
    ) -> Result<Response<Body>, ureq::Error> {
        let (mut parts, bytes) = response.into_parts();
        if let Some(pending) = parts.extensions.remove::<PendingRevalidation>() {
            self.revalidate_in_background(pending);
        }
        if let Some(mut extensions) = origin {
            extensions.extend(std::mem::take(&mut parts.extensions));
            parts.extensions = extensions;
        }
        if parts.extensions.get::<FinalUrl>().is_none() {
            parts.extensions.insert(FinalUrl::from_uri(url));
        }
        // The stored body is read in place: no copy, whatever its size.
        let body = if bytes.is_empty() {
            body_builder(&parts.headers).reader(io::empty())
        } else {
            body_builder(&parts.headers).reader(io::Cursor::new(bytes))
        };
        self.check_status(Response::from_parts(parts, body))
    }

    /// Applies `status_as_error` as ureq would have.
    fn check_status(&self, response: Response<Body>) -> Result<Response<Body>, ureq::Error> {
        let status = response.status();
        if self.status_as_error && (status.is_client_error() || status.is_server_error()) {
            return Err(ureq::Error::StatusCode(status.as_u16()));
        }
        Ok(response)
    }

    fn revalidate_in_background(&self, pending: PendingRevalidation) {
        if self.sender.is_none() {
            tracing::debug!(target: "httpcache", "no sender agent: background revalidation skipped");
            return;
        }
        let middleware = self.clone();
        let revalidating = self.cache.revalidating();
        let spawned = std::thread::Builder::new().name("httpcache-revalidate".into()).spawn(move || {
            let _revalidating = revalidating;
            let mut forward = Box::new(pending.0);
            let asked = forward.request().uri().clone();
            // The driver asks for at most one resend (after a 304 that did not match).
            for _ in 0..2 {
                let sent = middleware.resend(&forward);
                match middleware.settle(forward, sent, &asked) {
                    Settled::Done(_) => return,
                    Settled::Retry(retry) => forward = retry,
                }
            }
        });
        if let Err(error) = spawned {
            tracing::warn!(target: "httpcache", %error, "could not start a background revalidation");
        }
    }
}

impl<S: Store + 'static> Middleware for CacheMiddleware<S> {
    fn handle(
        &self,
        request: Request<SendBody>,
        next: MiddlewareNext,
    ) -> Result<Response<Body>, ureq::Error> {
        let (parts, body) = request.into_parts();
        let options = RequestOptions::from_extensions(&parts.extensions);
        let asked = parts.uri.clone();
        // GET and HEAD bodies are never keyed: no settings snapshot needed to know it.
        let bodiless = parts.method == Method::GET || parts.method == Method::HEAD;
        let settings = (!bodiless).then(|| self.cache.settings());
        let Some(settings) = settings.filter(|settings| body_is_keyed(&parts.method, settings)) else {
            let plan = self.cache.plan_within(parts, Bytes::new(), options, self.coalesce_wait);
            return self.run(plan, &asked, |request| next.handle(request.map(|_| body)));
        };
        // The body is part of the key: read it, unless it is too large to keep.
        let limit = settings.max_entry_bytes;
        let mut reader = body.into_reader();
        let mut prefix = Vec::new();
        (&mut reader).take(limit.saturating_add(1)).read_to_end(&mut prefix)?;
        if prefix.len() as u64 > limit {
            let plan = self.cache.plan_bypass(parts, options, Reason::BodyNotReplayable);
            let mut stream = io::Cursor::new(prefix).chain(reader);
            return self.run(plan, &asked, |request| {
                next.handle(request.map(|_| SendBody::from_reader(&mut stream)))
            });
        }
        let plan = self.cache.plan_within(parts, Bytes::from(prefix), options, self.coalesce_wait);
        self.run(plan, &asked, |request| send_buffered(request, |request| next.handle(request)))
    }
}

/// Sends a request with a buffered body (and its `Content-Length`) through `send`.
fn send_buffered<R>(request: Request<Bytes>, send: impl FnOnce(Request<SendBody<'_>>) -> R) -> R {
    let (mut parts, bytes) = request.into_parts();
    if bytes.is_empty() {
        return send(Request::from_parts(parts, SendBody::none()));
    }
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let mut slice = &bytes[..];
    send(Request::from_parts(parts, SendBody::from_reader(&mut slice)))
}

/// A body builder carrying the mime type and charset ureq derives from `Content-Type`.
fn body_builder(headers: &HeaderMap) -> BodyBuilder {
    let mut builder = Body::builder();
    let Some(content_type) = headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return builder;
    };
    let mut fields = content_type.split(';');
    if let Some(mime_type) = fields.next() {
        builder = builder.mime_type(mime_type);
    }
    // Bytes read through ureq were already decoded to UTF-8 when it transcodes.
    if !ureq_transcodes()
        && let Some(charset) = fields.find_map(|field| field.trim().strip_prefix("charset="))
    {
        builder = builder.charset(charset);
    }
    builder
}

/// Whether ureq decodes text bodies to UTF-8 as they are read (its `charset` feature,
/// which another crate may turn on).
fn ureq_transcodes() -> bool {
    static TRANSCODES: OnceLock<bool> = OnceLock::new();
    *TRANSCODES.get_or_init(|| {
        let mut probe = Body::builder().mime_type("text/plain").charset("iso-8859-1").data(vec![0xE9]);
        probe.read_to_vec().is_ok_and(|bytes| bytes != [0xE9])
    })
}

/// A ureq [`Agent`] with the cache middleware, and the cache it uses. Derefs to the
/// agent, so `agent.get(url).call()` works as usual.
pub struct CachedAgent<S> {
    agent: Agent,
    cache: Option<Arc<Cache<S>>>,
}

impl<S> Clone for CachedAgent<S> {
    fn clone(&self) -> Self {
        CachedAgent { agent: self.agent.clone(), cache: self.cache.clone() }
    }
}

impl<S> std::fmt::Debug for CachedAgent<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedAgent").field("agent", &self.agent).field("cache", &self.cache).finish()
    }
}

impl<S> Deref for CachedAgent<S> {
    type Target = Agent;
    fn deref(&self) -> &Agent {
        &self.agent
    }
}

impl<S: Store + 'static> CachedAgent<S> {
    /// An agent with ureq's default settings over `cache`.
    pub fn new(cache: impl Into<Arc<Cache<S>>>) -> Self {
        Self::with_config(cache, |config| config)
    }

    /// An agent over `cache` with the settings `configure` makes, called three times:
    /// to read your `http_status_as_error` and timeouts, for the agent, and for its sender (the same
    /// settings, no cache; see [`CacheMiddleware::sender`]). The agent and the sender get
    /// `http_status_as_error(false)`, the agent the cache middleware last; the
    /// middleware applies your `http_status_as_error` to what it returns, and waits
    /// behind an identical request in flight at most your `timeout_global` or
    /// `timeout_per_call` ([`CacheMiddleware::coalesce_wait`]).
    pub fn with_config(
        cache: impl Into<Arc<Cache<S>>>,
        configure: impl Fn(ConfigBuilder<AgentScope>) -> ConfigBuilder<AgentScope>,
    ) -> Self {
        let cache = cache.into();
        let yours = configure(Config::builder()).build();
        let status_as_error = yours.http_status_as_error();
        let timeouts = yours.timeouts();
        let wait = [timeouts.global, timeouts.per_call].into_iter().flatten().fold(COALESCE_WAIT, Ord::min);
        // What the sender gets (background revalidations, resends) goes to the cache,
        // never to a caller: a 4xx/5xx turned into an error would never reach it.
        let sender: Agent = configure(Config::builder()).http_status_as_error(false).build().into();
        let middleware = CacheMiddleware::new(cache.clone())
            .status_as_error(status_as_error)
            .sender(sender)
            .coalesce_wait(wait);
        let agent = configure(Config::builder()).http_status_as_error(false).middleware(middleware).build();
        CachedAgent { agent: agent.into(), cache: Some(cache) }
    }
}

impl<S> CachedAgent<S> {
    /// A plain agent, without a cache (what the `no_cache` switch of [`cached_agent_with`] gives).
    pub fn uncached(agent: Agent) -> Self {
        CachedAgent { agent, cache: None }
    }

    /// The agent.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The agent, without the cache handle (it keeps caching).
    pub fn into_agent(self) -> Agent {
        self.agent
    }

    /// The cache (settings, store, driver), unless the agent is uncached.
    pub fn cache(&self) -> Option<&Arc<Cache<S>>> {
        self.cache.as_ref()
    }

    /// Waits, at most `timeout`, until no stale-while-revalidate revalidation of this
    /// agent's cache is running; returns whether none is (always, uncached). See
    /// [`CacheMiddleware::wait_for_revalidations`].
    pub fn wait_for_revalidations(&self, timeout: std::time::Duration) -> bool {
        self.cache.as_ref().is_none_or(|cache| cache.wait_for_revalidations(timeout))
    }

    /// A snapshot of the settings in force, unless the agent is uncached.
    pub fn settings(&self) -> Option<Arc<Settings>> {
        self.cache.as_ref().map(|cache| cache.settings())
    }

    /// Changes the settings at runtime (requests under way keep the old ones); nothing
    /// to change on an uncached agent.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) {
        if let Some(cache) = &self.cache {
            cache.update_settings(change);
        }
    }

    /// Disables the cache until the returned guard is dropped (`None`: uncached).
    pub fn disable(&self) -> Option<DisabledGuard<'_, S>> {
        self.cache.as_ref().map(|cache| cache.disable())
    }
}

impl<S: Store> CachedAgent<S> {
    /// Inspects the store (count, list, filter, delete, copy), unless the agent is uncached.
    pub fn inventory(&self) -> Option<Inventory<'_, S>> {
        self.cache.as_deref().map(|cache| Inventory::new(cache.store()))
    }
}

/// The marker of this crate's implementation of [`CacheRequestExt`] for ureq's
/// [`ureq::RequestBuilder`] (Rust's orphan rule asks for a type of this crate in it).
/// Never named in calls: it is inferred.
#[derive(Debug)]
pub enum Ureq {}

/// Per-request cache controls in ureq's idiom: they travel in the request's extensions
/// as a [`RequestOptions`], set with [`CacheRequestExt`] on ureq's builder and on
/// `http::Request` (send it with [`Agent::run`]).
///
/// ```no_run
/// # fn demo(agent: &ureq::Agent) -> Result<(), ureq::Error> {
/// use std::time::Duration;
/// use httpcache_core::Expiry;
/// use httpcache_ureq::CacheRequestExt;
///
/// agent.get("http://example.com/a").expire_after(Expiry::After(Duration::from_secs(60))).call()?;
/// agent.get("http://example.com/b").force_refresh().call()?;
/// let request = http::Request::get("http://example.com/c").body(())?.refresh();
/// agent.run(request)?;
/// # Ok(()) }
/// ```
impl<B> CacheRequestExt<Ureq> for ureq::RequestBuilder<B> {
    fn map_cache_options(self, change: impl FnOnce(&mut RequestOptions)) -> Self {
        let mut options = self.extensions_ref().map(RequestOptions::from_extensions).unwrap_or_default();
        change(&mut options);
        self.extension(options)
    }
}

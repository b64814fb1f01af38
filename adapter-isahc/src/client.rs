//! [`CachedClient`]: the loop of [`Cache`]'s step API around `isahc::HttpClient`.

use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::{AsyncReadExt, future};
use http::{Extensions, Request, Response, Uri};
use httpcache_core::driver::{COALESCE_WAIT, DisabledGuard, FinalUrl, PendingRevalidation, stored_body};
use httpcache_core::inventory::{AsyncInventory, Inventory};
use httpcache_core::{
    AsyncStore, Cache, CacheStatus, Completion, Forward, Plan, Reason, RequestOptions, Revalidating,
    Settings, Store,
};
use isahc::{AsyncBody, Body, HttpClient, ResponseExt};

/// A caching HTTP client: an [`isahc::HttpClient`] in front of which every request goes
/// through an httpcache [`Cache`]. [`send`](CachedClient::send) needs a blocking
/// [`Store`], [`send_async`](CachedClient::send_async) an [`AsyncStore`]; a
/// [`DualStore`](crate::DualStore) is both. Cheap to clone (clones share the client and
/// the cache).
#[derive(Debug)]
pub struct CachedClient<S> {
    client: HttpClient,
    cache: Option<Arc<Cache<S>>>,
}

impl<S> Clone for CachedClient<S> {
    fn clone(&self) -> Self {
        CachedClient { client: self.client.clone(), cache: self.cache.clone() }
    }
}

/// How a forwarded request ended: an answer for the caller, or a resend (after a 304
/// whose validator did not match).
enum Settled<T> {
    Done(Result<Response<T>, isahc::Error>),
    Retry(Box<Forward>),
}

impl<S> CachedClient<S> {
    /// Wraps an existing isahc client, keeping all its configuration (redirect policy,
    /// timeouts, TLS...), with a cache over `store`.
    pub fn wrap(client: HttpClient, store: S, settings: Settings) -> Self {
        Self::with_cache(client, Cache::new(store, settings))
    }

    /// Wraps an existing isahc client with an existing cache (e.g. one with a test clock,
    /// or one shared with other clients).
    pub fn with_cache(client: HttpClient, cache: impl Into<Arc<Cache<S>>>) -> Self {
        CachedClient { client, cache: Some(cache.into()) }
    }

    /// A client with isahc's default configuration and a cache over `store`.
    ///
    /// # Errors
    /// When isahc cannot build its client.
    pub fn new(store: S, settings: Settings) -> Result<Self, crate::Error> {
        Ok(Self::wrap(HttpClient::new()?, store, settings))
    }

    /// A pass-through client without a cache (what the `no_cache` switch of
    /// [`cached_client_with`](crate::cached_client_with) gives). Its responses still carry
    /// a [`CacheStatus`] (a bypass) and a `Cache-Status` header.
    pub fn uncached(client: HttpClient) -> Self {
        CachedClient { client, cache: None }
    }

    /// The isahc client requests are sent with.
    pub fn inner(&self) -> &HttpClient {
        &self.client
    }

    /// The cache (settings, store, driver), unless the client is uncached.
    pub fn cache(&self) -> Option<&Arc<Cache<S>>> {
        self.cache.as_ref()
    }

    /// Waits, at most `timeout`, until no stale-while-revalidate revalidation of this
    /// client's cache is running; returns whether none is (always, uncached). Each
    /// runs on a thread of its own, which ends with the process: a short-lived program
    /// that wants them done (and stored) calls this before it exits, then
    /// [`Store::flush`](httpcache_core::Store::flush). From async code, await
    /// [`CachedClient::revalidations_finished`] instead.
    pub fn wait_for_revalidations(&self, timeout: std::time::Duration) -> bool {
        self.cache.as_ref().is_none_or(|cache| cache.wait_for_revalidations(timeout))
    }

    /// Completes once no stale-while-revalidate revalidation of this client's cache is
    /// running: the async form of [`CachedClient::wait_for_revalidations`], for any
    /// executor (bound it with the executor's own timeout).
    pub async fn revalidations_finished(&self) {
        if let Some(cache) = &self.cache {
            cache.revalidations_finished().await;
        }
    }

    /// A snapshot of the settings in force, unless the client is uncached.
    pub fn settings(&self) -> Option<Arc<Settings>> {
        self.cache.as_ref().map(|cache| cache.settings())
    }

    /// Changes the settings at runtime (requests under way keep the old ones); nothing
    /// to change on an uncached client.
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

#[cfg(feature = "mem")]
impl CachedClient<crate::MemoryStores> {
    /// A client with isahc's defaults caching in memory, at most about `max_bytes` of entries.
    ///
    /// # Errors
    /// When isahc cannot build its client.
    pub fn memory(settings: Settings, max_bytes: u64) -> Result<Self, crate::Error> {
        Self::new(httpcache_mem::MemoryStore::new(max_bytes).into(), settings)
    }
}

#[cfg(feature = "lmdb")]
impl CachedClient<crate::LmdbStores> {
    /// A client with isahc's defaults caching in an LMDB environment in `dir`.
    ///
    /// # Errors
    /// When the environment cannot be opened or isahc cannot build its client.
    pub fn lmdb(dir: impl Into<std::path::PathBuf>, settings: Settings) -> Result<Self, crate::Error> {
        let store = httpcache_lmdb::LmdbStore::open(dir).map_err(httpcache_core::StoreError::from)?;
        Self::new(store.into(), settings)
    }
}

#[cfg(feature = "fs")]
impl CachedClient<crate::FsStores> {
    /// A client with isahc's defaults caching in files under `dir`.
    ///
    /// # Errors
    /// When the directory cannot be used as a cache or isahc cannot build its client.
    pub fn fs(dir: impl AsRef<std::path::Path>, settings: Settings) -> Result<Self, crate::Error> {
        let store = httpcache_fs::FsStore::open(dir)?;
        Self::new(crate::FsStores::from(store), settings)
    }
}

/// Builds `GET`/`HEAD` requests for the conveniences.
fn bodiless<U>(method: http::Method, uri: U) -> Result<Request<()>, isahc::Error>
where
    Uri: TryFrom<U>,
    <Uri as TryFrom<U>>::Error: Into<http::Error>,
{
    Ok(Request::builder().method(method).uri(uri).body(())?)
}

impl<S: Store + 'static> CachedClient<S> {
    /// Sends a request through the cache and blocks until the response head arrives (as
    /// [`HttpClient::send`]). Per-request controls travel in the request's extensions
    /// (see [`CacheRequestExt`](crate::CacheRequestExt)).
    ///
    /// # Errors
    /// isahc's, when the origin could not be reached (or failed mid-body) and no stale
    /// response may stand in. A store failure never fails a request.
    pub fn send<B: Into<Body>>(&self, request: Request<B>) -> Result<Response<Body>, isahc::Error> {
        let Some(cache) = &self.cache else {
            return self.client.send(request).map(uncached_response);
        };
        let (parts, body) = request.into_parts();
        let mut body: Body = body.into();
        let options = RequestOptions::from_extensions(&parts.extensions);
        let asked = parts.uri.clone();
        let had_body = !body.is_empty();
        // A body in memory can be replayed and keyed; a stream bypasses the cache.
        let (plan, mut stream) = if body.reset() {
            let mut bytes = Vec::new();
            body.read_to_end(&mut bytes)?;
            (cache.plan(parts, Bytes::from(bytes), options), None)
        } else {
            (cache.plan_bypass(parts, options, Reason::BodyNotReplayable), Some(body))
        };
        let mut forward = match plan {
            Plan::Respond(response) => return Ok(self.deliver(cache, *response, None, &asked)),
            Plan::Forward(forward) => forward,
        };
        loop {
            let request = outgoing(forward.request(), had_body, stream.take(), Body::from, Body::empty());
            match self.settle(cache, forward, self.client.send(request), &asked) {
                Settled::Done(result) => return result,
                Settled::Retry(retry) => forward = retry,
            }
        }
    }

    /// A GET request through the cache.
    ///
    /// # Errors
    /// As [`CachedClient::send`], and for an invalid URI.
    pub fn get<U>(&self, uri: U) -> Result<Response<Body>, isahc::Error>
    where
        Uri: TryFrom<U>,
        <Uri as TryFrom<U>>::Error: Into<http::Error>,
    {
        self.send(bodiless(http::Method::GET, uri)?)
    }

    /// A HEAD request through the cache.
    ///
    /// # Errors
    /// As [`CachedClient::get`].
    pub fn head<U>(&self, uri: U) -> Result<Response<Body>, isahc::Error>
    where
        Uri: TryFrom<U>,
        <Uri as TryFrom<U>>::Error: Into<http::Error>,
    {
        self.send(bodiless(http::Method::HEAD, uri)?)
    }

    /// Inspects the store (count, list, filter, delete, copy), unless the client is uncached.
    pub fn inventory(&self) -> Option<Inventory<'_, S>> {
        self.cache.as_deref().map(|cache| Inventory::new(cache.store()))
    }

    /// Hands the origin's answer (or failure) to the driver.
    fn settle(
        &self,
        cache: &Arc<Cache<S>>,
        forward: Box<Forward>,
        sent: Result<Response<Body>, isahc::Error>,
        asked: &Uri,
    ) -> Settled<Body> {
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Settled::Done(self.fail(cache, *forward, error, asked)),
        };
        let (final_uri, mut head, mut body) = split(response, asked);
        let final_url = (final_uri != *asked).then_some(&final_uri);
        if !forward.wants_body(&head) {
            cache.complete_streamed(*forward, &mut head, final_url);
            return Settled::Done(Ok(Response::from_parts(head, body)));
        }
        let limit = cache.settings().max_entry_bytes;
        let mut buffered = forward.body_buffer(&head);
        if let Err(error) = (&mut body).take(limit.saturating_add(1)).read_to_end(&mut buffered) {
            // The origin failed mid-body: as if it could not be reached.
            return Settled::Done(self.fail(cache, *forward, error.into(), asked));
        }
        if buffered.len() as u64 > limit {
            // A server error stale-if-error covers gives way to the stored response,
            // however large its page.
            if let Some(stale) = cache.stale_instead_of(&forward, &head) {
                return Settled::Done(Ok(self.deliver(cache, stale, None, asked)));
            }
            cache.complete_streamed(*forward, &mut head, final_url);
            let body = Body::from_reader(io::Cursor::new(buffered).chain(body));
            return Settled::Done(Ok(Response::from_parts(head, body)));
        }
        describe_decoded(forward.request().method(), &mut head, &buffered);
        let origin = std::mem::take(&mut head.extensions);
        match cache.complete(*forward, Response::from_parts(head, stored_body(buffered)), final_url) {
            Completion::Respond(response) => {
                Settled::Done(Ok(self.deliver(cache, *response, Some(origin), &final_uri)))
            }
            Completion::Retry(retry) => Settled::Retry(retry),
        }
    }

    /// The origin could not be reached: a stale response if allowed, else the error.
    fn fail(
        &self,
        cache: &Arc<Cache<S>>,
        forward: Forward,
        error: isahc::Error,
        asked: &Uri,
    ) -> Result<Response<Body>, isahc::Error> {
        match cache.fail(forward) {
            Some(stale) => {
                // The URL as stored: without the ignored parameters' values (an API key).
                let uri = httpcache_core::key::redact_url(asked, &cache.settings());
                tracing::debug!(target: "httpcache", %error, %uri, "origin failed; serving stale");
                Ok(self.deliver(cache, stale, None, asked))
            }
            None => Err(error),
        }
    }

    /// Converts a driver response to isahc's, starting a background revalidation if asked.
    fn deliver(
        &self,
        cache: &Arc<Cache<S>>,
        response: Response<Bytes>,
        origin: Option<Extensions>,
        url: &Uri,
    ) -> Response<Body> {
        let (response, pending) = convert(response, origin, url, sync_body, Body::empty());
        if let Some(PendingRevalidation(forward)) = pending {
            let revalidating = cache.revalidating();
            let (client, cache) = (self.clone(), cache.clone());
            spawn_revalidation(revalidating, move || {
                let mut forward = Box::new(forward);
                let asked = forward.request().uri().clone();
                // The driver asks for at most one resend (after a 304 that did not match).
                for _ in 0..2 {
                    let had_body = !forward.request().body().is_empty();
                    let request = outgoing(forward.request(), had_body, None, Body::from, Body::empty());
                    match client.settle(&cache, forward, client.client.send(request), &asked) {
                        Settled::Done(_) => return,
                        Settled::Retry(retry) => forward = retry,
                    }
                }
            });
        }
        response
    }
}

impl<S: AsyncStore + 'static> CachedClient<S> {
    /// Sends a request through the cache without blocking (as [`HttpClient::send_async`]).
    /// The future runs on any executor: isahc does the I/O on its own agent thread, and
    /// the stores' async flavours move blocking work to the `blocking` crate's pool.
    ///
    /// # Errors
    /// As [`CachedClient::send`].
    pub async fn send_async<B: Into<AsyncBody>>(
        &self,
        request: Request<B>,
    ) -> Result<Response<AsyncBody>, isahc::Error> {
        let Some(cache) = &self.cache else {
            return self.client.send_async(request).await.map(uncached_response);
        };
        let (parts, body) = request.into_parts();
        let mut body: AsyncBody = body.into();
        let options = RequestOptions::from_extensions(&parts.extensions);
        let asked = parts.uri.clone();
        let had_body = !body.is_empty();
        let (plan, mut stream) = if body.reset() {
            let mut bytes = Vec::new();
            body.read_to_end(&mut bytes).await?;
            let plan = match cache.plan_now(parts, Bytes::from(bytes), options) {
                Ok(plan) => plan,
                // Behind an identical request in flight at most `COALESCE_WAIT`: a
                // leader whose origin stalls does not hold this one forever.
                Err(pending) => cache.plan_pending_within(pending, || Timer::new(COALESCE_WAIT)).await,
            };
            (plan, None)
        } else {
            (cache.plan_bypass(parts, options, Reason::BodyNotReplayable), Some(body))
        };
        let mut forward = match plan {
            Plan::Respond(response) => return Ok(self.deliver_async(cache, *response, None, &asked)),
            Plan::Forward(forward) => forward,
        };
        loop {
            let request =
                outgoing(forward.request(), had_body, stream.take(), AsyncBody::from, AsyncBody::empty());
            let sent = self.client.send_async(request).await;
            match self.settle_async(cache, forward, sent, &asked).await {
                Settled::Done(result) => return result,
                Settled::Retry(retry) => forward = retry,
            }
        }
    }

    /// A GET request through the cache, without blocking.
    ///
    /// # Errors
    /// As [`CachedClient::send_async`], and for an invalid URI.
    pub async fn get_async<U>(&self, uri: U) -> Result<Response<AsyncBody>, isahc::Error>
    where
        Uri: TryFrom<U>,
        <Uri as TryFrom<U>>::Error: Into<http::Error>,
    {
        self.send_async(bodiless(http::Method::GET, uri)?).await
    }

    /// A HEAD request through the cache, without blocking.
    ///
    /// # Errors
    /// As [`CachedClient::get_async`].
    pub async fn head_async<U>(&self, uri: U) -> Result<Response<AsyncBody>, isahc::Error>
    where
        Uri: TryFrom<U>,
        <Uri as TryFrom<U>>::Error: Into<http::Error>,
    {
        self.send_async(bodiless(http::Method::HEAD, uri)?).await
    }

    /// [`CachedClient::inventory`] over the async store.
    pub fn async_inventory(&self) -> Option<AsyncInventory<'_, S>> {
        self.cache.as_deref().map(|cache| AsyncInventory::new(cache.store()))
    }

    /// [`CachedClient::settle`] for async responses.
    async fn settle_async(
        &self,
        cache: &Arc<Cache<S>>,
        forward: Box<Forward>,
        sent: Result<Response<AsyncBody>, isahc::Error>,
        asked: &Uri,
    ) -> Settled<AsyncBody> {
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Settled::Done(self.fail_async(cache, *forward, error, asked)),
        };
        let (final_uri, mut head, mut body) = split(response, asked);
        let final_url = (final_uri != *asked).then_some(&final_uri);
        if !forward.wants_body(&head) {
            cache.complete_streamed_async(*forward, &mut head, final_url).await;
            return Settled::Done(Ok(Response::from_parts(head, body)));
        }
        let limit = cache.settings().max_entry_bytes;
        let mut buffered = forward.body_buffer(&head);
        if let Err(error) = read_at_most(&mut body, limit.saturating_add(1), &mut buffered).await {
            return Settled::Done(self.fail_async(cache, *forward, error.into(), asked));
        }
        if buffered.len() as u64 > limit {
            // As in the blocking loop: stale-if-error, whatever the error page's size.
            if let Some(stale) = cache.stale_instead_of(&forward, &head) {
                return Settled::Done(Ok(self.deliver_async(cache, stale, None, asked)));
            }
            cache.complete_streamed_async(*forward, &mut head, final_url).await;
            let body = AsyncBody::from_reader(futures_lite::io::Cursor::new(buffered).chain(body));
            return Settled::Done(Ok(Response::from_parts(head, body)));
        }
        describe_decoded(forward.request().method(), &mut head, &buffered);
        let origin = std::mem::take(&mut head.extensions);
        let buffered = Response::from_parts(head, stored_body(buffered));
        match cache.complete_async(*forward, buffered, final_url).await {
            Completion::Respond(response) => {
                Settled::Done(Ok(self.deliver_async(cache, *response, Some(origin), &final_uri)))
            }
            Completion::Retry(retry) => Settled::Retry(retry),
        }
    }

    /// [`CachedClient::fail`] for async requests.
    fn fail_async(
        &self,
        cache: &Arc<Cache<S>>,
        forward: Forward,
        error: isahc::Error,
        asked: &Uri,
    ) -> Result<Response<AsyncBody>, isahc::Error> {
        match cache.fail_async(forward) {
            Some(stale) => {
                // The URL as stored: without the ignored parameters' values (an API key).
                let uri = httpcache_core::key::redact_url(asked, &cache.settings());
                tracing::debug!(target: "httpcache", %error, %uri, "origin failed; serving stale");
                Ok(self.deliver_async(cache, stale, None, asked))
            }
            None => Err(error),
        }
    }

    /// [`CachedClient::deliver`] for async requests. The background revalidation runs on
    /// a thread of its own, which drives it with `futures_lite::future::block_on`: no
    /// executor is assumed.
    fn deliver_async(
        &self,
        cache: &Arc<Cache<S>>,
        response: Response<Bytes>,
        origin: Option<Extensions>,
        url: &Uri,
    ) -> Response<AsyncBody> {
        let (response, pending) = convert(response, origin, url, async_body, AsyncBody::empty());
        if let Some(PendingRevalidation(forward)) = pending {
            let revalidating = cache.revalidating();
            let (client, cache) = (self.clone(), cache.clone());
            spawn_revalidation(revalidating, move || {
                future::block_on(async move {
                    let mut forward = Box::new(forward);
                    let asked = forward.request().uri().clone();
                    for _ in 0..2 {
                        let had_body = !forward.request().body().is_empty();
                        let request =
                            outgoing(forward.request(), had_body, None, AsyncBody::from, AsyncBody::empty());
                        let sent = client.client.send_async(request).await;
                        match client.settle_async(&cache, forward, sent, &asked).await {
                            Settled::Done(_) => return,
                            Settled::Retry(retry) => forward = retry,
                        }
                    }
                });
            });
        }
        response
    }
}

/// The request to send to isahc: the driver's (headers, conditional headers, isahc's
/// per-request configuration in the extensions) with the caller's stream when there is
/// one, else the buffered body (no body at all when the caller gave none).
fn outgoing<T>(
    request: Request<Bytes>,
    had_body: bool,
    stream: Option<T>,
    from_vec: fn(Vec<u8>) -> T,
    empty: T,
) -> Request<T> {
    request.map(|bytes| match stream {
        Some(stream) => stream,
        None if bytes.is_empty() && !had_body => empty,
        None => from_vec(Vec::from(bytes)),
    })
}

/// Splits an origin response into where its redirects ended (isahc's effective URI, or
/// the URI asked for), its head (with a [`FinalUrl`]) and its body.
fn split<T>(response: Response<T>, asked: &Uri) -> (Uri, http::response::Parts, T) {
    let final_uri = response.effective_uri().cloned().unwrap_or_else(|| asked.clone());
    let (mut head, body) = response.into_parts();
    head.extensions.insert(FinalUrl::from_uri(&final_uri));
    (final_uri, head, body)
}

/// A driver response as isahc's: `origin`'s extensions (isahc's own: effective URI,
/// addresses, metrics) under the driver's, a [`FinalUrl`] (the stored one, else `url`),
/// and the pending background revalidation taken out.
fn convert<T>(
    response: Response<Bytes>,
    origin: Option<Extensions>,
    url: &Uri,
    from_bytes: fn(Bytes) -> T,
    empty: T,
) -> (Response<T>, Option<PendingRevalidation>) {
    let (mut parts, bytes) = response.into_parts();
    let pending = parts.extensions.remove::<PendingRevalidation>();
    if let Some(mut extensions) = origin {
        extensions.extend(std::mem::take(&mut parts.extensions));
        parts.extensions = extensions;
    }
    if parts.extensions.get::<FinalUrl>().is_none() {
        parts.extensions.insert(FinalUrl::from_uri(url));
    }
    let body = if bytes.is_empty() { empty } else { from_bytes(bytes) };
    (Response::from_parts(parts, body), pending)
}

/// A stored body as isahc's, read in place (no copy, whatever its size), with its
/// length known, as isahc's own response bodies are.
fn sync_body(bytes: Bytes) -> Body {
    let length = bytes.len() as u64;
    Body::from_reader_sized(io::Cursor::new(bytes), length)
}

/// [`sync_body`] for async responses.
fn async_body(bytes: Bytes) -> AsyncBody {
    let length = bytes.len() as u64;
    AsyncBody::from_reader_sized(futures_lite::io::Cursor::new(bytes), length)
}

/// Marks a response of an uncached client as a bypass, as every response is marked.
fn uncached_response<T>(mut response: Response<T>) -> Response<T> {
    let url = response.effective_uri().map(|uri| FinalUrl::from_uri(uri).0);
    let status = CacheStatus::bypass(Reason::Disabled);
    // A bypass has no expiry, so the time (used only for `ttl`) does not matter.
    let value = status.header_value(std::time::SystemTime::UNIX_EPOCH);
    response.headers_mut().append(httpcache_core::status::CACHE_STATUS, value);
    response.extensions_mut().insert(status);
    if let Some(url) = url {
        response.extensions_mut().insert(FinalUrl(url));
    }
    response
}

/// A timer that runs on any executor (as [`CachedClient::send_async`] does): a thread
/// of its own sleeps, then wakes the future; dropping the future ends the thread early.
/// Built only when a request waits behind an identical one in flight.
struct Timer {
    shared: Arc<TimerShared>,
}

#[derive(Default)]
struct TimerShared {
    state: Mutex<TimerState>,
    /// Signalled when the future is dropped.
    dropped: Condvar,
}

#[derive(Default)]
struct TimerState {
    fired: bool,
    dropped: bool,
    waker: Option<Waker>,
}

impl TimerShared {
    fn lock(&self) -> MutexGuard<'_, TimerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The stack of a timer's thread: it only waits and wakes, a small one will do, for the
/// many followers of a busy key.
const TIMER_STACK: usize = 64 << 10;

impl Timer {
    /// Completes `after` from now.
    fn new(after: Duration) -> Timer {
        Timer::on_a_stack_of(after, TIMER_STACK)
    }

    /// [`Timer::new`], its thread given `stack` bytes. Without a thread to time it (the
    /// process has no more threads to give, a busy key's followers having taken them),
    /// it completes at once: the follower goes to the origin rather than wait behind
    /// the identical request in flight for as long as that takes, which a stalled origin
    /// makes forever.
    fn on_a_stack_of(after: Duration, stack: usize) -> Timer {
        let shared = Arc::new(TimerShared::default());
        let timing = shared.clone();
        let thread = std::thread::Builder::new().name("httpcache-timer".into()).stack_size(stack);
        let spawned = thread.spawn(move || {
            let state = timing.lock();
            let (mut state, _) = timing
                .dropped
                .wait_timeout_while(state, after, |state| !state.dropped)
                .unwrap_or_else(PoisonError::into_inner);
            state.fired = true;
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        });
        if let Err(error) = spawned {
            tracing::debug!(target: "httpcache", %error, "no timer thread: not waiting");
            shared.lock().fired = true;
        }
        Timer { shared }
    }
}

impl std::future::Future for Timer {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let mut state = self.shared.lock();
        if state.fired {
            return std::task::Poll::Ready(());
        }
        state.waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.shared.lock().dropped = true;
        self.shared.dropped.notify_one();
    }
}

/// Runs a background revalidation on a thread of its own, counted by `revalidating`
/// until it ends.
fn spawn_revalidation(revalidating: Revalidating, work: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new().name("httpcache-revalidate".into()).spawn(move || {
        let _revalidating = revalidating;
        work()
    });
    if let Err(error) = spawned {
        tracing::warn!(target: "httpcache", %error, "could not start a background revalidation");
    }
}

/// Makes the head of a response whose body isahc (libcurl) decoded as it arrived say
/// so: without `Content-Encoding`, and with the decoded length as `Content-Length`, as
/// reqwest and ureq hand decoded bodies over. isahc keeps the origin's fields, and does
/// not say whether it decoded (its configuration is private), so the fields are changed
/// only where the body proves it: its length is not the `Content-Length` the coded body
/// had, or, without one, a body said to be gzip lacks gzip's first two bytes. Anything
/// else (a `deflate` or `br` body without a length) is left as it came. Stored, such a
/// head would describe a body it does not have to every other reader of the store
/// (RFC 9111 §3.2).
fn describe_decoded(method: &http::Method, head: &mut http::response::Parts, body: &[u8]) {
    use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
    let bodiless = *method == http::Method::HEAD
        || head.status.is_informational()
        || matches!(head.status, http::StatusCode::NO_CONTENT | http::StatusCode::NOT_MODIFIED);
    let Some(coding) = head.headers.get(CONTENT_ENCODING) else {
        return;
    };
    if bodiless {
        return;
    }
    let said = head.headers.contains_key(CONTENT_LENGTH);
    let decoded = match httpcache_core::header::content_length(&head.headers) {
        Some(length) => length != body.len() as u64,
        // A malformed length proves nothing.
        None if said => false,
        None => {
            let gzip = coding.as_bytes().eq_ignore_ascii_case(b"gzip")
                || coding.as_bytes().eq_ignore_ascii_case(b"x-gzip");
            gzip && !body.starts_with(&[0x1f, 0x8b])
        }
    };
    if decoded {
        head.headers.remove(CONTENT_ENCODING);
        head.headers.insert(CONTENT_LENGTH, http::HeaderValue::from(body.len()));
    }
}

/// How far ahead of what has been read [`read_at_most`] zeroes its buffer.
const READ_STEP: usize = 64 << 10;

/// Reads `body` into `buffer` until the body ends or `buffer` holds `limit` bytes; the
/// rest stays in `body`.
///
/// Not `futures_lite`'s `read_to_end`: before each read it zeroes the buffer up to its
/// capacity, which a `Vec` doubles as it grows, so that a body without
/// `Content-Length` just past a `max_entry_bytes` of 16 MiB had 32 MiB zeroed and
/// resident before it was handed on (measured: a peak RSS of 39.5 MiB streaming 1 GiB
/// through the async client, against 23 MiB through the blocking one). This zeroes at
/// most [`READ_STEP`] ahead of what has been read, and each byte once.
async fn read_at_most(
    body: &mut (impl futures_lite::AsyncRead + Unpin),
    limit: u64,
    buffer: &mut Vec<u8>,
) -> io::Result<()> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut filled = buffer.len();
    let read = loop {
        if filled >= limit {
            break Ok(());
        }
        if filled == buffer.len() {
            buffer.resize(filled + READ_STEP.min(limit - filled), 0);
        }
        match body.read(&mut buffer[filled..]).await {
            Ok(0) => break Ok(()),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => break Err(error),
        }
    };
    buffer.truncate(filled);
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(status: u16, fields: &[(&str, &str)]) -> http::response::Parts {
        let mut response = Response::builder().status(status);
        for (name, value) in fields {
            response = response.header(*name, *value);
        }
        response.body(()).unwrap().into_parts().0
    }

    fn described(method: http::Method, status: u16, fields: &[(&str, &str)], body: &[u8]) -> Vec<String> {
        let mut head = head_of(status, fields);
        describe_decoded(&method, &mut head, body);
        head.headers.iter().map(|(name, value)| format!("{name}: {}", value.to_str().unwrap())).collect()
    }

    // RFC 9111 §3.2: the stored fields describe the stored (decoded) body, where the
    // body proves isahc decoded it, and only there.
    #[test]
    fn a_decoded_body_is_described_only_where_the_body_proves_it() {
        let get = http::Method::GET;
        let gzip = [("content-encoding", "gzip"), ("content-length", "69")];
        assert_eq!(described(get.clone(), 200, &gzip, b"decoded"), ["content-length: 7"]);
        // The coded body itself, its length as said: untouched.
        assert_eq!(
            described(get.clone(), 200, &gzip, &[0x1f; 69]),
            ["content-encoding: gzip", "content-length: 69"]
        );
        // Chunked: gzip's magic bytes tell.
        let chunked = [("content-encoding", "GZIP")];
        assert_eq!(described(get.clone(), 200, &chunked, b"decoded"), ["content-length: 7"]);
        assert_eq!(described(get.clone(), 200, &chunked, &[0x1f, 0x8b, 8]), ["content-encoding: GZIP"]);
        // Nothing to go by for deflate or br without a length.
        assert_eq!(
            described(get.clone(), 200, &[("content-encoding", "br")], b"x"),
            ["content-encoding: br"]
        );
        // Responses without a body say the coded length of a body they do not carry.
        assert_eq!(
            described(http::Method::HEAD, 200, &gzip, b""),
            ["content-encoding: gzip", "content-length: 69"]
        );
        assert_eq!(described(get.clone(), 304, &gzip, b""), ["content-encoding: gzip", "content-length: 69"]);
        assert_eq!(described(get, 200, &[("content-length", "3")], b"abcd"), ["content-length: 3"]);
    }

    /// A reader handing out `chunk` bytes at a time, interrupted before every other
    /// read while `interrupts`, failing with `fail` once `data` is read if set.
    struct Trickle {
        data: io::Cursor<Vec<u8>>,
        chunk: usize,
        interrupts: bool,
        interrupt: bool,
        fail: bool,
        /// The most room a read was offered: how far ahead the buffer was zeroed.
        widest: usize,
    }

    impl futures_lite::AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.widest = self.widest.max(buf.len());
            self.interrupt = self.interrupts && !self.interrupt;
            if self.interrupt {
                return std::task::Poll::Ready(Err(io::ErrorKind::Interrupted.into()));
            }
            let end = buf.len().min(self.chunk);
            let n = io::Read::read(&mut self.data, &mut buf[..end])?;
            if n == 0 && self.fail {
                return std::task::Poll::Ready(Err(io::ErrorKind::ConnectionReset.into()));
            }
            std::task::Poll::Ready(Ok(n))
        }
    }

    fn trickle(len: usize, chunk: usize, fail: bool) -> Trickle {
        let data = (0..len).map(|i| (i % 251) as u8).collect();
        Trickle { data: io::Cursor::new(data), chunk, interrupts: true, interrupt: false, fail, widest: 0 }
    }

    /// A body longer than the limit: exactly `limit` bytes read (what the caller needs to
    /// tell it is too long), the rest left to stream, and the buffer zeroed no further
    /// than one step past what was read.
    #[test]
    fn a_long_body_is_read_up_to_the_limit_and_no_further() {
        for (len, limit, chunk) in
            [(300_000, 200_001, 7_000), (10, 5, 3), (READ_STEP * 3, READ_STEP + 1, READ_STEP)]
        {
            let mut body = trickle(len, chunk, false);
            let mut buffer = vec![9, 9];
            future::block_on(read_at_most(&mut body, limit as u64, &mut buffer)).expect("read");
            assert_eq!(buffer.len(), limit, "{len} bytes, limit {limit}");
            assert!(body.widest <= READ_STEP, "zeroed {} bytes ahead", body.widest);
            // `read_to_end` gives up on an interruption.
            body.interrupts = false;
            let mut rest = Vec::new();
            future::block_on(futures_lite::AsyncReadExt::read_to_end(&mut body, &mut rest)).expect("rest");
            let whole: Vec<u8> = [&buffer[2..], &rest[..]].concat();
            assert_eq!(whole, trickle(len, 1, false).data.into_inner(), "nothing lost or repeated");
        }
    }

    /// A body shorter than the limit is read whole, and a failure mid-body is returned
    /// with what was read before it kept.
    #[test]
    fn a_short_body_is_read_whole_and_a_failure_is_returned() {
        let mut buffer = Vec::new();
        future::block_on(read_at_most(&mut trickle(5_000, 999, false), 1 << 20, &mut buffer)).expect("read");
        assert_eq!(buffer, trickle(5_000, 1, false).data.into_inner());
        let mut buffer = Vec::new();
        let failed = future::block_on(read_at_most(&mut trickle(5_000, 999, true), 1 << 20, &mut buffer));
        assert_eq!(failed.map_err(|error| error.kind()), Err(io::ErrorKind::ConnectionReset));
        assert_eq!(buffer.len(), 5_000, "the bytes read before the failure");
    }

    /// A follower's wait is bounded even when no thread can time it: its timer then
    /// completes at once (the documented bound is COALESCE_WAIT, never "until the
    /// request in flight ends").
    #[test]
    fn a_timer_without_a_thread_completes_at_once() {
        // No thread gets a stack of (nearly) the whole address space.
        let timer = Timer::on_a_stack_of(Duration::from_secs(3_600), usize::MAX / 2);
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let mut timer = std::pin::pin!(timer);
        assert!(
            timer.as_mut().poll(&mut context).is_ready(),
            "the timer waits for a thread it does not have"
        );
        // With a thread, it waits.
        let timer = Timer::new(Duration::from_secs(3_600));
        let mut timer = std::pin::pin!(timer);
        assert!(timer.as_mut().poll(&mut context).is_pending());
    }

    #[test]
    fn stored_bodies_keep_their_length() {
        let bytes = Bytes::from_static(b"stored body");
        let mut body = sync_body(bytes.clone());
        assert_eq!(body.len(), Some(11));
        let mut read = Vec::new();
        body.read_to_end(&mut read).expect("read");
        assert_eq!(read, bytes);
        let mut body = async_body(bytes.clone());
        assert_eq!(body.len(), Some(11));
        let mut read = Vec::new();
        future::block_on(body.read_to_end(&mut read)).expect("read");
        assert_eq!(read, bytes);
    }
}

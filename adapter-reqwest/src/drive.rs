//! The cache loop for one request, async (the client and the middleware) and blocking:
//! plan, then send and complete, with the steps of [`crate::convert`]. The async loop
//! is two parts: [`plan_at_once`], which answers a hit without building a future, and
//! [`exchange`], the rest, boxed.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use httpcache_core::driver::{COALESCE_WAIT, stored_body};
use httpcache_core::{AsyncStore, Cache, Completion, Forward, PendingPlan, Plan, Reason, RequestOptions};

use crate::body::Prefixed;
use crate::convert::{
    Retry, give_extensions_back, mark_streamed, origin_head, outgoing, plan_input, served, stale_or, with_url,
};

/// Runs a stale-while-revalidate revalidation on a Tokio task when there is a runtime
/// (there always is under reqwest); otherwise the entry is simply revalidated later.
pub(crate) fn spawn_revalidation<S, E, F, Fut>(
    cache: Arc<Cache<S>>,
    forward: Box<Forward>,
    request: reqwest::Request,
    send: F,
) where
    S: AsyncStore + 'static,
    E: From<reqwest::Error> + Send + 'static,
    F: FnMut(reqwest::Request) -> Fut + Send + 'static,
    Fut: Future<Output = Result<reqwest::Response, E>> + Send,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!(target: "httpcache", "no Tokio runtime: background revalidation skipped");
        return;
    };
    let revalidating = cache.revalidating();
    runtime.spawn(async move {
        let _revalidating = revalidating;
        let retry = Retry::of(&forward, &request, false);
        if let Ok(mut response) = forward_loop(&cache, forward, request, retry, send).await {
            // Drain what the cache did not buffer (it is not stored anyway), each chunk
            // dropped as it arrives: nobody reads this body, which may be past
            // `max_entry_bytes` (`bytes()` would gather it all in memory).
            while let Ok(Some(_)) = response.chunk().await {}
        }
    });
}

/// What is left to do for a request [`plan_at_once`] did not answer.
pub(crate) enum Left {
    /// Send this planned request and complete it ([`forward_loop`]).
    Forward(Box<Forward>),
    /// Planning needs waiting: for the store, or for an identical request in flight.
    Pending(PendingPlan),
    /// The URL is not a valid `Uri` (never for reqwest's URLs): send the request as it is.
    Unplannable,
}

/// Plans `request` as far as it goes without waiting: a response (a hit from a store
/// that reads at once, such as memory or LMDB) is answered here, with no future built,
/// moved or polled; anything else is [`Left`] for [`exchange`].
pub(crate) fn plan_at_once<S: AsyncStore>(
    cache: &Cache<S>,
    request: &mut reqwest::Request,
    options: RequestOptions,
) -> Result<Box<http::Response<Bytes>>, Left> {
    let plan = match plan_input(request) {
        None => return Err(Left::Unplannable),
        Some((parts, Some(body))) => cache.plan_now(parts, body, options).map_err(Left::Pending)?,
        Some((parts, None)) => cache.plan_bypass(parts, options, Reason::BodyNotReplayable),
    };
    match plan {
        Plan::Respond(response) => Ok(response),
        Plan::Forward(forward) => Err(Left::Forward(forward)),
    }
}

/// Where [`exchange`] sends a request, and how it starts a stale-while-revalidate
/// revalidation: reqwest's client, or the rest of a middleware chain.
pub(crate) trait Origin<S> {
    /// What sending fails with.
    type Error: From<reqwest::Error>;

    /// Sends `request` on. The future does not borrow `self`, so that the next request
    /// (a retry) can be sent while it lives.
    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = Result<reqwest::Response, Self::Error>> + Send + use<Self, S>;

    /// Starts revalidating `forward` (with a copy of its request) in the background.
    fn revalidate_later(&self, cache: &Arc<Cache<S>>, forward: Box<Forward>, request: reqwest::Request);
}

/// The boxed rest of the cache loop after [`plan_at_once`], as [`exchange`] returns it.
pub(crate) type Exchange<'a, E> = Pin<Box<dyn Future<Output = Result<reqwest::Response, E>> + Send + 'a>>;

/// What is [`Left`] of the cache loop after [`plan_at_once`], boxed: send (through
/// `origin`) and complete, after waiting if planning must.
///
/// Boxed because the exchange with the origin (reqwest's future, the response's head,
/// the body, the store write) makes a future of several hundred bytes. Inline, every
/// hit would carry and move that space too; boxed, only a request that waits or goes
/// to the network pays one allocation for it.
///
/// The box holds the cache, the origin and the request once, moved in: for a request
/// planned at once (every request to a store that reads at once: memory, LMDB,
/// files), [`forward_loop`] itself. Keeping that box under 1 KiB matters: the system
/// allocator serves and takes back blocks up to about 1 KiB from a per-thread cache,
/// larger ones from its shared bins, at several times the cost.
///
/// `built`: the request came from reqwest's builder, so a retry can be rebuilt from
/// the driver's copy rather than from a copy taken before sending ([`Retry`]).
pub(crate) fn exchange<'a, S, C, O>(
    cache: C,
    mut origin: O,
    request: reqwest::Request,
    left: Left,
    built: bool,
) -> Exchange<'a, O::Error>
where
    S: AsyncStore + 'a,
    C: std::ops::Deref<Target = Arc<Cache<S>>> + Send + 'a,
    O: Origin<S> + Send + 'a,
{
    match left {
        Left::Forward(forward) => {
            let retry = Retry::of(&forward, &request, built);
            Box::pin(forward_loop(cache, forward, request, retry, move |request| origin.send(request)))
        }
        Left::Pending(pending) => Box::pin(after_waiting(cache, origin, request, pending, built)),
        Left::Unplannable => Box::pin(origin.send(request)),
    }
}

/// The cache loop for a request whose planning must wait (for the store, or for an
/// identical request in flight): wait, then answer, or send (through `origin`) and
/// complete.
///
/// Written as a function returning an `async` block rather than as an `async fn`: an
/// `async fn` keeps each argument twice in its future (the argument, and the local it
/// is moved into when the body starts), and this one's request alone is 264 bytes.
#[expect(clippy::manual_async_fn, reason = "an `async fn` would keep its arguments twice")]
fn after_waiting<S, C, O>(
    cache: C,
    mut origin: O,
    request: reqwest::Request,
    pending: PendingPlan,
    built: bool,
) -> impl Future<Output = Result<reqwest::Response, O::Error>>
where
    S: AsyncStore,
    C: std::ops::Deref<Target = Arc<Cache<S>>>,
    O: Origin<S>,
{
    async move {
        // Behind an identical request in flight, at most `COALESCE_WAIT` (or the
        // request's own timeout): a leader whose origin stalls does not hold it forever.
        let wait = request.timeout().map_or(COALESCE_WAIT, |timeout| COALESCE_WAIT.min(*timeout));
        let forward = match cache.plan_pending_within(pending, || tokio::time::sleep(wait)).await {
            Plan::Respond(response) => {
                let background = |forward, request| origin.revalidate_later(&cache, forward, request);
                return Ok(served(*response, &request, background));
            }
            Plan::Forward(forward) => forward,
        };
        let retry = Retry::of(&forward, &request, built);
        forward_loop(&*cache, forward, request, retry, |request| origin.send(request)).await
    }
}

/// Sends `first` (then, on a retry, the request `retry` makes) and completes `forward`.
/// A function returning an `async` block, for the reason [`after_waiting`] gives.
///
/// What is done with each response before the completion ([`receive`]) is a future
/// of its own, awaited at one point: its locals (the response, its head, the buffer)
/// live across several awaits, and written inline they would take room of their own
/// in this future, beside the completion's rather than in the same place.
fn forward_loop<S, C, E, F, Fut>(
    cache: C,
    mut forward: Box<Forward>,
    first: reqwest::Request,
    retry: Option<Retry<reqwest::Request>>,
    mut send: F,
) -> impl Future<Output = Result<reqwest::Response, E>>
where
    S: AsyncStore,
    C: std::ops::Deref<Target = Arc<Cache<S>>>,
    E: From<reqwest::Error>,
    F: FnMut(reqwest::Request) -> Fut,
    Fut: Future<Output = Result<reqwest::Response, E>>,
{
    let asked = first.url().clone();
    let mut first = Some(first);
    async move {
        loop {
            let request = outgoing(&mut first, retry.as_ref(), &forward)?;
            let response = match send(request).await {
                Ok(response) => response,
                Err(error) => return stale_or(cache.fail_async(*forward), &asked, error),
            };
            let (url, completion) = match receive(&cache, forward, &asked, response).await {
                // The completion borrows only the cache: `final_url` is not kept.
                Received::Buffered { forward, response, final_url, url } => {
                    (url, cache.complete_async(*forward, response, final_url.as_ref()))
                }
                Received::Done(result) => return result,
            };
            match completion.await {
                Completion::Respond(response) => {
                    return Ok(reqwest::Response::from(with_url(
                        *response,
                        url.as_deref().unwrap_or(&asked),
                    )));
                }
                Completion::Retry(retry) => forward = retry,
            }
        }
    }
}

/// What [`receive`] made of a response.
enum Received<E> {
    /// Buffered whole, for the completion.
    Buffered {
        /// The exchange, given back.
        forward: Box<Forward>,
        /// The response, its body buffered.
        response: http::Response<Bytes>,
        /// Where its redirects ended, when not at the URL asked, for the driver.
        final_url: Option<http::Uri>,
        /// The same for reqwest, boxed (redirects are rare, the room is kept for
        /// every request).
        url: Option<Box<reqwest::Url>>,
    },
    /// Passed through (streamed, not stored), or failed.
    Done(Result<reqwest::Response, E>),
}

/// Takes the origin's `response` to `forward`: passes it through as it streams when
/// the driver does not want its body ([`Forward::wants_body`]), else buffers the body
/// up to `max_entry_bytes` (a `Content-Length`, when present, is within it) and hands it
/// back for the completion; past the limit, the prefix, then the rest, unstored.
///
/// A function returning an `async` block, for the reason [`after_waiting`] gives.
#[expect(clippy::manual_async_fn, reason = "an `async fn` would keep its arguments twice")]
fn receive<'a, S, E>(
    cache: &'a Cache<S>,
    forward: Box<Forward>,
    asked: &'a reqwest::Url,
    mut response: reqwest::Response,
) -> impl Future<Output = Received<E>> + 'a
where
    S: AsyncStore,
    E: From<reqwest::Error> + 'a,
{
    async move {
        let (final_url, mut head) = origin_head(asked, &mut response);
        if !forward.wants_body(&head) {
            cache.complete_streamed_async(*forward, &mut head, final_url.as_ref()).await;
            mark_streamed(&mut head, &mut response);
            return Received::Done(Ok(response));
        }
        let limit = cache.settings().max_entry_bytes;
        let mut buffer = forward.body_buffer(&head);
        let overflow = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    buffer.extend_from_slice(&chunk);
                    if buffer.len() as u64 > limit {
                        break true;
                    }
                }
                Ok(None) => break false,
                Err(error) => {
                    return Received::Done(stale_or(cache.fail_async(*forward), asked, E::from(error)));
                }
            }
        };
        if overflow {
            // A server error stale-if-error covers gives way to the stored response,
            // however large its page.
            if let Some(stale) = cache.stale_instead_of(&forward, &head) {
                return Received::Done(Ok(reqwest::Response::from(with_url(stale, asked))));
            }
            cache.complete_streamed_async(*forward, &mut head, final_url.as_ref()).await;
            mark_streamed(&mut head, &mut response);
            let url = response.url().clone();
            let (parts, rest) = http::Response::from(response).into_parts();
            let body = reqwest::Body::wrap(Prefixed::new(Bytes::from(buffer), rest));
            return Received::Done(Ok(reqwest::Response::from(with_url(
                http::Response::from_parts(parts, body),
                &url,
            ))));
        }
        let url = (response.url() != asked).then(|| Box::new(response.url().clone()));
        give_extensions_back(&mut head, &mut response);
        let (mut parts, _) = http::Response::from(response).into_parts();
        parts.headers = head.headers;
        Received::Buffered {
            forward,
            response: http::Response::from_parts(parts, stored_body(buffer)),
            final_url,
            url,
        }
    }
}

/// The blocking twin of the loop, over [`reqwest::blocking`] and a blocking store.
#[cfg(feature = "blocking")]
pub(crate) mod blocking {
    use std::io::Read;
    use std::sync::Arc;

    use bytes::Bytes;
    use httpcache_core::driver::{COALESCE_WAIT, stored_body};
    use httpcache_core::{Cache, CacheStatus, Completion, Forward, Plan, Reason, RequestOptions, Store};
    use reqwest::blocking::{Client, Request, Response};

    use crate::body::{Failed, Prefixed, ReadBody};
    use crate::convert::{
        Retry, give_extensions_back, mark_streamed, origin_head, outgoing, plan_input, served, stale_or,
        with_url,
    };

    /// The blocking cache loop for one request: plan, then send and complete.
    /// Stale-while-revalidate revalidations run on a thread of their own. `built`: the
    /// request came from reqwest's builder (see [`Retry`]).
    pub(crate) fn run<S: Store + 'static>(
        cache: &Arc<Cache<S>>,
        client: &Client,
        mut request: Request,
        options: RequestOptions,
        built: bool,
    ) -> reqwest::Result<Response> {
        // Behind an identical request in flight, at most `COALESCE_WAIT` or the
        // request's own timeout, as the async loop waits (`after_waiting`).
        let wait = request.timeout().map_or(COALESCE_WAIT, |timeout| COALESCE_WAIT.min(*timeout));
        let plan = match plan_input(&mut request) {
            None => return client.execute(request),
            Some((parts, Some(body))) => cache.plan_within(parts, body, options, wait),
            Some((parts, None)) => cache.plan_bypass(parts, options, Reason::BodyNotReplayable),
        };
        match plan {
            Plan::Respond(response) => Ok(served(*response, &request, |forward, request| {
                spawn_revalidation(cache.clone(), client.clone(), forward, request)
            })),
            Plan::Forward(forward) => {
                let retry = Retry::of(&forward, &request, built);
                forward_loop(cache, client, forward, request, retry)
            }
        }
    }

    /// Runs a stale-while-revalidate revalidation on a thread of its own.
    fn spawn_revalidation<S: Store + 'static>(
        cache: Arc<Cache<S>>,
        client: Client,
        forward: Box<Forward>,
        request: Request,
    ) {
        let revalidating = cache.revalidating();
        let spawned = std::thread::Builder::new().name("httpcache-revalidate".into()).spawn(move || {
            let _revalidating = revalidating;
            let retry = Retry::of(&forward, &request, false);
            if let Ok(mut response) = forward_loop(&cache, &client, forward, request, retry) {
                // As the async revalidation drains: in constant memory.
                let _ = std::io::copy(&mut response, &mut std::io::sink());
            }
        });
        if let Err(error) = spawned {
            tracing::debug!(target: "httpcache", %error, "background revalidation not started");
        }
    }

    /// How reading a body for the cache ended.
    enum Buffered {
        /// All of it, within `max_entry_bytes`.
        Complete,
        /// Past `max_entry_bytes`, without a `Content-Length`.
        Overflow,
        /// A read failed, with this error.
        Failed(std::io::Error),
    }

    /// Sends `first` (then, on a retry, the request `retry` makes) and completes `forward`.
    fn forward_loop<S: Store>(
        cache: &Cache<S>,
        client: &Client,
        mut forward: Box<Forward>,
        first: Request,
        retry: Option<Retry<Request>>,
    ) -> reqwest::Result<Response> {
        let asked = first.url().clone();
        let mut first = Some(first);
        loop {
            let request = outgoing(&mut first, retry.as_ref(), &forward)?;
            let mut response = match client.execute(request) {
                Ok(response) => response,
                Err(error) => return stale_or(cache.fail(*forward), &asked, error),
            };
            let (final_url, mut head) = origin_head(&asked, &mut response);
            if !forward.wants_body(&head) {
                cache.complete_streamed(*forward, &mut head, final_url.as_ref());
                mark_streamed(&mut head, &mut response);
                return Ok(response);
            }
            // Buffer up to `max_entry_bytes` (a `Content-Length`, when present, is within it).
            let limit = cache.settings().max_entry_bytes;
            let mut buffer = forward.body_buffer(&head);
            let mut chunk = vec![0; 64 * 1024];
            let read = loop {
                match response.read(&mut chunk) {
                    Ok(0) => break Buffered::Complete,
                    Ok(read) => {
                        buffer.extend_from_slice(&chunk[..read]);
                        if buffer.len() as u64 > limit {
                            break Buffered::Overflow;
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        // Its kind only: a reqwest error's text may hold the URL, ignored parameters and all.
                        tracing::debug!(target: "httpcache", kind = %error.kind(), "reading the response body failed");
                        break Buffered::Failed(error);
                    }
                }
            };
            let url = response.url().clone();
            match read {
                Buffered::Complete => {
                    give_extensions_back(&mut head, &mut response);
                    let mut buffered = http_response(&mut response, stored_body(buffer));
                    *buffered.headers_mut() = std::mem::take(&mut head.headers);
                    match cache.complete(*forward, buffered, final_url.as_ref()) {
                        Completion::Respond(response) => {
                            return Ok(Response::from(with_url(*response, &url)));
                        }
                        Completion::Retry(retry) => forward = retry,
                    }
                }
                // Past the limit: the prefix, then the rest as the caller reads it.
                Buffered::Overflow => {
                    // A server error stale-if-error covers gives way to the stored
                    // response, however large its page.
                    if let Some(stale) = cache.stale_instead_of(&forward, &head) {
                        return Ok(Response::from(with_url(stale, &asked)));
                    }
                    cache.complete_streamed(*forward, &mut head, final_url.as_ref());
                    return Ok(unstored(head, response, buffer, &url, ReadBody::new));
                }
                Buffered::Failed(error) => {
                    if let Some(stale) = cache.fail(*forward) {
                        return Ok(Response::from(with_url(stale, &asked)));
                    }
                    // The prefix, then the error: reading on from `response` would give
                    // the end of the body, not the error (see `Failed`).
                    CacheStatus::bypass(Reason::OriginError).mark(&mut head, cache.now());
                    return Ok(unstored(head, response, buffer, &url, |_| Failed::new(error)));
                }
            }
        }
    }

    /// `response`, not stored: its head given back from `head` (where
    /// [`origin_head`] moved it and the driver added its verdict), and a body of
    /// `prefix` (what was buffered), then of what `rest` makes of the response.
    fn unstored<B>(
        mut head: http::response::Parts,
        mut response: Response,
        prefix: Vec<u8>,
        url: &reqwest::Url,
        rest: impl FnOnce(Response) -> B,
    ) -> Response
    where
        B: http_body::Body<Data = Bytes, Error = std::io::Error> + Send + Sync + Unpin + 'static,
    {
        mark_streamed(&mut head, &mut response);
        let mut streamed = http_response(&mut response, reqwest::Body::from(Bytes::new()));
        *streamed.body_mut() = reqwest::Body::wrap(Prefixed::new(Bytes::from(prefix), rest(response)));
        Response::from(with_url(streamed, url))
    }

    /// An `http` response with `response`'s head (taking its headers, if still there,
    /// and extensions) and `body`.
    fn http_response<B>(response: &mut Response, body: B) -> http::Response<B> {
        let mut converted = http::Response::new(body);
        *converted.status_mut() = response.status();
        *converted.version_mut() = response.version();
        *converted.headers_mut() = std::mem::take(response.headers_mut());
        *converted.extensions_mut() = std::mem::take(response.extensions_mut());
        converted
    }
}

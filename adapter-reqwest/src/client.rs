//! The async [`CachedClient`] and the loop it shares with the middleware.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Version};
use httpcache_core::driver::{DisabledGuard, PendingRevalidation};
use httpcache_core::inventory::AsyncInventory;
use httpcache_core::{AsyncStore, Cache, Completion, Forward, Plan, Reason, RequestOptions, Settings};
use reqwest::{IntoUrl, Url};

use crate::body::Prefixed;
use crate::convert::{final_uri, request_parts, response_head, take_status, with_url};
use crate::{CacheRequestExt, DefaultStore};

/// A caching async HTTP client: a [`reqwest::Client`] in front of which every request
/// goes through an httpcache [`Cache`] over an [`AsyncStore`]. Cheap to clone (clones
/// share the client and the cache).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use httpcache_reqwest::{CacheStatusExt, CachedClient};
/// use httpcache_reqwest::core::Settings;
///
/// let client = CachedClient::lmdb("/tmp/my-cache", Settings::default())?;
/// let response = client.get("http://localhost:8080/").send().await?;
/// assert!(response.cache_status().is_some());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct CachedClient<S = DefaultStore> {
    client: reqwest::Client,
    cache: Arc<Cache<S>>,
}

impl<S> Clone for CachedClient<S> {
    fn clone(&self) -> Self {
        CachedClient { client: self.client.clone(), cache: self.cache.clone() }
    }
}

/// Builds a [`CachedClient`]: settings, a store, and optionally an existing reqwest client.
#[derive(Debug)]
pub struct CachedClientBuilder<S> {
    settings: Settings,
    store: Option<S>,
    client: Option<reqwest::Client>,
}

impl CachedClient {
    /// A builder with default settings and no store yet.
    pub fn builder() -> CachedClientBuilder<DefaultStore> {
        CachedClientBuilder { settings: Settings::default(), store: None, client: None }
    }
}

impl<S: AsyncStore + 'static> CachedClientBuilder<S> {
    /// The cache settings (default: [`Settings::default`]).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The store (required).
    pub fn store<T: AsyncStore>(self, store: T) -> CachedClientBuilder<T> {
        CachedClientBuilder { settings: self.settings, store: Some(store), client: self.client }
    }

    /// The reqwest client to send requests with, keeping all its configuration
    /// (default: `reqwest::Client::new()`).
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The cached client.
    ///
    /// # Errors
    /// [`Error::NoStore`](crate::Error::NoStore) without a store;
    /// [`Error::Client`](crate::Error::Client) when reqwest cannot build its default client.
    pub fn build(self) -> Result<CachedClient<S>, crate::Error> {
        let store = self.store.ok_or(crate::Error::NoStore)?;
        let client = match self.client {
            Some(client) => client,
            None => reqwest::Client::builder().build()?,
        };
        Ok(CachedClient::wrap(client, store, self.settings))
    }
}

#[cfg(feature = "mem")]
impl CachedClient<httpcache_core::Inline<httpcache_mem::MemoryStore>> {
    /// A client caching in memory, at most about `max_bytes` of entries.
    pub fn memory(settings: Settings, max_bytes: u64) -> Self {
        let store = httpcache_core::Inline(httpcache_mem::MemoryStore::new(max_bytes));
        CachedClient::wrap(reqwest::Client::new(), store, settings)
    }
}

#[cfg(feature = "fs")]
impl CachedClient<httpcache_fs::AsyncFsStore> {
    /// A client caching in files under `dir`.
    ///
    /// # Errors
    /// When the directory cannot be created or is not a cache.
    pub fn fs(dir: impl AsRef<std::path::Path>, settings: Settings) -> Result<Self, crate::Error> {
        let store = httpcache_fs::FsStore::open(dir)?.into_async();
        Ok(CachedClient::wrap(reqwest::Client::new(), store, settings))
    }
}

impl CachedClient<httpcache_lmdb::AsyncLmdbStore> {
    /// A client caching in an LMDB environment in `dir`.
    ///
    /// # Errors
    /// When the environment cannot be opened.
    pub fn lmdb(dir: impl Into<std::path::PathBuf>, settings: Settings) -> Result<Self, crate::Error> {
        let store =
            httpcache_lmdb::LmdbStore::open(dir).map_err(httpcache_core::StoreError::from)?.into_async();
        Ok(CachedClient::wrap(reqwest::Client::new(), store, settings))
    }
}

impl<S: AsyncStore + 'static> CachedClient<S> {
    /// Wraps an existing reqwest client, keeping all its configuration.
    pub fn wrap(client: reqwest::Client, store: S, settings: Settings) -> Self {
        CachedClient { client, cache: Arc::new(Cache::new(store, settings)) }
    }

    /// A GET request.
    pub fn get(&self, url: impl IntoUrl) -> RequestBuilder<S> {
        self.request(Method::GET, url)
    }

    /// A HEAD request.
    pub fn head(&self, url: impl IntoUrl) -> RequestBuilder<S> {
        self.request(Method::HEAD, url)
    }

    /// A POST request.
    pub fn post(&self, url: impl IntoUrl) -> RequestBuilder<S> {
        self.request(Method::POST, url)
    }

    /// A PUT request.
    pub fn put(&self, url: impl IntoUrl) -> RequestBuilder<S> {
        self.request(Method::PUT, url)
    }

    /// A PATCH request.
    pub fn patch(&self, url: impl IntoUrl) -> RequestBuilder<S> {
        self.request(Method::PATCH, url)
    }

    /// A DELETE request.
    pub fn delete(&self, url: impl IntoUrl) -> RequestBuilder<S> {
        self.request(Method::DELETE, url)
    }

    /// A request with any method.
    pub fn request(&self, method: Method, url: impl IntoUrl) -> RequestBuilder<S> {
        RequestBuilder {
            client: self.clone(),
            inner: self.client.request(method, url),
            options: RequestOptions::default(),
        }
    }

    /// Sends a request through the cache with default per-request options.
    ///
    /// # Errors
    /// reqwest's, when the origin could not be reached and no stale response may stand in.
    pub async fn execute(&self, request: reqwest::Request) -> reqwest::Result<reqwest::Response> {
        self.execute_with(request, RequestOptions::default()).await
    }

    /// Sends a request through the cache with per-request `options`.
    ///
    /// # Errors
    /// As [`CachedClient::execute`].
    pub async fn execute_with(
        &self,
        request: reqwest::Request,
        options: RequestOptions,
    ) -> reqwest::Result<reqwest::Response> {
        let client = self.client.clone();
        let background = {
            let (cache, client) = (self.cache.clone(), self.client.clone());
            move |forward, request| spawn_revalidation(cache, forward, request, move |r| client.execute(r))
        };
        run(&self.cache, request, options, move |r| client.execute(r), background).await
    }

    /// The reqwest client requests are sent with.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// The cache (settings, store, driver).
    pub fn cache(&self) -> &Cache<S> {
        &self.cache
    }

    /// A snapshot of the settings in force.
    pub fn settings(&self) -> Arc<Settings> {
        self.cache.settings()
    }

    /// Changes the settings at runtime; requests under way keep the old ones.
    pub fn update_settings(&self, change: impl FnOnce(&mut Settings)) {
        self.cache.update_settings(change);
    }

    /// Disables the cache until the returned guard is dropped.
    pub fn disabled(&self) -> DisabledGuard<'_, S> {
        self.cache.disable()
    }

    /// Inspects the store: count, list, filter, delete, copy.
    pub fn inventory(&self) -> AsyncInventory<'_, S> {
        AsyncInventory::new(self.cache.store())
    }
}

/// A request on its way through a [`CachedClient`]: reqwest's builder plus the
/// per-request cache controls of [`CacheRequestExt`].
#[derive(Debug)]
pub struct RequestBuilder<S = DefaultStore> {
    client: CachedClient<S>,
    inner: reqwest::RequestBuilder,
    options: RequestOptions,
}

impl<S: AsyncStore + 'static> RequestBuilder<S> {
    /// Adds a header.
    pub fn header<K, V>(self, key: K, value: V) -> Self
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        self.map(|inner| inner.header(key, value))
    }

    /// Adds headers.
    pub fn headers(self, headers: HeaderMap) -> Self {
        self.map(|inner| inner.headers(headers))
    }

    /// Sets the body.
    pub fn body(self, body: impl Into<reqwest::Body>) -> Self {
        self.map(|inner| inner.body(body))
    }

    /// Sets a timeout for this request.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|inner| inner.timeout(timeout))
    }

    /// HTTP basic authentication.
    pub fn basic_auth(
        self,
        username: impl std::fmt::Display,
        password: Option<impl std::fmt::Display>,
    ) -> Self {
        self.map(|inner| inner.basic_auth(username, password))
    }

    /// Bearer authentication.
    pub fn bearer_auth(self, token: impl std::fmt::Display) -> Self {
        self.map(|inner| inner.bearer_auth(token))
    }

    /// Sets the HTTP version.
    pub fn version(self, version: Version) -> Self {
        self.map(|inner| inner.version(version))
    }

    /// Changes the underlying [`reqwest::RequestBuilder`] (for `query`, `json`, `form`...).
    pub fn map(mut self, change: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder) -> Self {
        self.inner = change(self.inner);
        self
    }

    /// Builds the request.
    ///
    /// # Errors
    /// reqwest's builder errors (an invalid URL or header).
    pub fn build(self) -> reqwest::Result<reqwest::Request> {
        self.inner.build()
    }

    /// Sends the request through the cache.
    ///
    /// # Errors
    /// reqwest's builder and transport errors.
    pub async fn send(self) -> reqwest::Result<reqwest::Response> {
        let request = self.inner.build()?;
        self.client.execute_with(request, self.options).await
    }
}

impl<S> CacheRequestExt for RequestBuilder<S> {
    fn cache_options_with(mut self, change: impl FnOnce(&mut RequestOptions)) -> Self {
        change(&mut self.options);
        self
    }
}

/// Runs `pending` on a Tokio task when there is a runtime (there always is under
/// reqwest); otherwise the entry is simply revalidated later.
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
    runtime.spawn(async move {
        let asked = request.url().clone();
        let template = request.try_clone();
        if let Ok(response) = forward_loop(&cache, forward, request, template, asked, send).await {
            // Drain what the cache did not buffer (it is not stored anyway).
            let _ = response.bytes().await;
        }
    });
}

/// The cache loop for one request: plan, then send (through `send`) and complete.
/// `background` receives a stale-while-revalidate revalidation to run.
pub(crate) async fn run<S, E, F, Fut>(
    cache: &Cache<S>,
    request: reqwest::Request,
    options: RequestOptions,
    send: F,
    background: impl FnOnce(Box<Forward>, reqwest::Request),
) -> Result<reqwest::Response, E>
where
    S: AsyncStore,
    E: From<reqwest::Error>,
    F: FnMut(reqwest::Request) -> Fut,
    Fut: Future<Output = Result<reqwest::Response, E>>,
{
    let asked = request.url().clone();
    let Some(parts) = request_parts(request.method(), &asked, request.version(), request.headers()) else {
        // Not a URL the cache can key (cannot happen for reqwest's URLs): send it as is.
        let mut send = send;
        return send(request).await;
    };
    let body = request.body().map(|body| body.as_bytes().map(Bytes::copy_from_slice));
    let plan = match body {
        None => cache.plan_async(parts, Bytes::new(), options).await,
        Some(Some(bytes)) => cache.plan_async(parts, bytes, options).await,
        Some(None) => cache.plan_bypass(parts, options, Reason::BodyNotReplayable),
    };
    match plan {
        Plan::Respond(response) => {
            let mut response = *response;
            if let Some(PendingRevalidation(forward)) =
                response.extensions_mut().remove::<PendingRevalidation>()
                && let Some(mut revalidation) = request.try_clone()
            {
                *revalidation.headers_mut() = forward.request().headers().clone();
                background(Box::new(forward), revalidation);
            }
            Ok(reqwest::Response::from(with_url(response, &asked)))
        }
        Plan::Forward(forward) => {
            let template = request.try_clone();
            forward_loop(cache, forward, request, template, asked, send).await
        }
    }
}

/// Sends `first` (then clones of `template` on a retry) and completes `forward`.
async fn forward_loop<S, E, F, Fut>(
    cache: &Cache<S>,
    mut forward: Box<Forward>,
    first: reqwest::Request,
    template: Option<reqwest::Request>,
    asked: Url,
    mut send: F,
) -> Result<reqwest::Response, E>
where
    S: AsyncStore,
    E: From<reqwest::Error>,
    F: FnMut(reqwest::Request) -> Fut,
    Fut: Future<Output = Result<reqwest::Response, E>>,
{
    let mut next = Some(first);
    loop {
        let mut request = match next.take().or_else(|| template.as_ref()?.try_clone()) {
            Some(request) => request,
            // Only requests with a replayable body are ever retried; rebuild from the driver's copy.
            None => reqwest::Request::try_from(forward.request())?,
        };
        // The user's headers, plus the conditional ones when revalidating.
        *request.headers_mut() = forward.request().headers().clone();
        let mut response = match send(request).await {
            Ok(response) => response,
            Err(error) => return stale_or(cache, *forward, &asked, error),
        };
        let final_url = final_uri(&asked, response.url());
        let mut head = response_head(response.status(), response.version(), response.headers());
        if !forward.wants_body(&head) {
            cache.complete_streamed_async(*forward, &mut head, final_url.as_ref()).await;
            if let Some(status) = take_status(&mut head, response.headers_mut()) {
                response.extensions_mut().insert(status);
            }
            return Ok(response);
        }
        // Buffer up to `max_entry_bytes` (a `Content-Length`, when present, is within it).
        let limit = cache.settings().max_entry_bytes;
        let mut buffer = BytesMut::new();
        let overflow = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    buffer.extend_from_slice(&chunk);
                    if buffer.len() as u64 > limit {
                        break true;
                    }
                }
                Ok(None) => break false,
                Err(error) => return stale_or(cache, *forward, &asked, E::from(error)),
            }
        };
        let url = response.url().clone();
        let (mut parts, rest) = http::Response::from(response).into_parts();
        if overflow {
            // Past the limit without a Content-Length: the prefix, then the rest, unstored.
            cache.complete_streamed_async(*forward, &mut head, final_url.as_ref()).await;
            if let Some(status) = take_status(&mut head, &mut parts.headers) {
                parts.extensions.insert(status);
            }
            let body = reqwest::Body::wrap(Prefixed::new(buffer.freeze(), rest));
            return Ok(reqwest::Response::from(with_url(http::Response::from_parts(parts, body), &url)));
        }
        let buffered = http::Response::from_parts(parts, buffer.freeze());
        match cache.complete_async(*forward, buffered, final_url.as_ref()).await {
            Completion::Respond(response) => return Ok(reqwest::Response::from(with_url(*response, &url))),
            Completion::Retry(retry) => forward = retry,
        }
    }
}

/// A stale response when stale-if-error allows one, else `error`.
fn stale_or<S: AsyncStore, E>(
    cache: &Cache<S>,
    forward: Forward,
    asked: &Url,
    error: E,
) -> Result<reqwest::Response, E> {
    match cache.fail_async(forward) {
        Some(stale) => Ok(reqwest::Response::from(with_url(stale, asked))),
        None => Err(error),
    }
}

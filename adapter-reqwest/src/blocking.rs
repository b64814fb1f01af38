//! The blocking [`CachedClient`], over [`reqwest::blocking`] and a blocking [`Store`].
//!
//! ```no_run
//! use httpcache_reqwest::CacheStatusExt;
//! use httpcache_reqwest::blocking::CachedClient;
//! use httpcache_reqwest::core::Settings;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = CachedClient::lmdb("/tmp/my-cache", Settings::default())?;
//! let response = client.get("http://localhost:8080/").send()?;
//! println!("from cache: {}", response.from_cache());
//! # Ok(()) }
//! ```
//!
//! Stale-while-revalidate revalidations run on a thread of their own. A response
//! without `Content-Length` that grows past `max_entry_bytes` is returned as the
//! buffered prefix followed by the rest, read from the original response as the
//! caller reads (on the caller's thread, as every blocking response is read).

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Version};
use httpcache_core::driver::{DisabledGuard, PendingRevalidation};
use httpcache_core::inventory::Inventory;
use httpcache_core::{
    Cache, CacheStatus, Completion, Forward, Plan, Reason, RequestOptions, Settings, Store,
};
use reqwest::blocking::{Client, Request, Response};
use reqwest::{IntoUrl, Url};

use crate::CacheRequestExt;
use crate::body::{Prefixed, ReadBody};
use crate::convert::{final_uri, request_parts, response_head, take_status, with_url};

/// A caching blocking HTTP client: a [`reqwest::blocking::Client`] in front of which
/// every request goes through an httpcache [`Cache`] over a [`Store`]. Cheap to
/// clone (clones share the client and the cache).
#[derive(Debug)]
pub struct CachedClient<S = httpcache_lmdb::LmdbStore> {
    client: Client,
    cache: Arc<Cache<S>>,
}

impl<S> Clone for CachedClient<S> {
    fn clone(&self) -> Self {
        CachedClient { client: self.client.clone(), cache: self.cache.clone() }
    }
}

#[cfg(feature = "mem")]
impl CachedClient<httpcache_mem::MemoryStore> {
    /// A client caching in memory, at most about `max_bytes` of entries.
    ///
    /// # Errors
    /// When reqwest cannot build its client.
    pub fn memory(settings: Settings, max_bytes: u64) -> Result<Self, crate::Error> {
        Ok(CachedClient::wrap(
            Client::builder().build()?,
            httpcache_mem::MemoryStore::new(max_bytes),
            settings,
        ))
    }
}

#[cfg(feature = "fs")]
impl CachedClient<httpcache_fs::FsStore> {
    /// A client caching in files under `dir`.
    ///
    /// # Errors
    /// When the directory cannot be used or reqwest cannot build its client.
    pub fn fs(dir: impl AsRef<std::path::Path>, settings: Settings) -> Result<Self, crate::Error> {
        Ok(CachedClient::wrap(Client::builder().build()?, httpcache_fs::FsStore::open(dir)?, settings))
    }
}

impl CachedClient<httpcache_lmdb::LmdbStore> {
    /// A client caching in an LMDB environment in `dir`.
    ///
    /// # Errors
    /// When the environment cannot be opened or reqwest cannot build its client.
    pub fn lmdb(dir: impl Into<std::path::PathBuf>, settings: Settings) -> Result<Self, crate::Error> {
        let store = httpcache_lmdb::LmdbStore::open(dir).map_err(httpcache_core::StoreError::from)?;
        Ok(CachedClient::wrap(Client::builder().build()?, store, settings))
    }
}

impl<S: Store + 'static> CachedClient<S> {
    /// Wraps an existing blocking client, keeping all its configuration.
    pub fn wrap(client: Client, store: S, settings: Settings) -> Self {
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
    pub fn execute(&self, request: Request) -> reqwest::Result<Response> {
        self.execute_with(request, RequestOptions::default())
    }

    /// Sends a request through the cache with per-request `options`.
    ///
    /// # Errors
    /// As [`CachedClient::execute`].
    pub fn execute_with(&self, request: Request, options: RequestOptions) -> reqwest::Result<Response> {
        let asked = request.url().clone();
        let Some(parts) = request_parts(request.method(), &asked, request.version(), request.headers())
        else {
            return self.client.execute(request);
        };
        let body = request.body().map(|body| body.as_bytes().map(Bytes::copy_from_slice));
        let plan = match body {
            None => self.cache.plan(parts, Bytes::new(), options),
            Some(Some(bytes)) => self.cache.plan(parts, bytes, options),
            Some(None) => self.cache.plan_bypass(parts, options, Reason::BodyNotReplayable),
        };
        match plan {
            Plan::Respond(response) => {
                let mut response = *response;
                if let Some(PendingRevalidation(forward)) =
                    response.extensions_mut().remove::<PendingRevalidation>()
                    && let Some(revalidation) = request.try_clone()
                {
                    self.spawn_revalidation(Box::new(forward), revalidation);
                }
                Ok(Response::from(with_url(response, &asked)))
            }
            Plan::Forward(forward) => {
                let template = request.try_clone();
                forward_loop(&self.cache, &self.client, forward, request, template, asked)
            }
        }
    }

    /// Runs a stale-while-revalidate revalidation on a thread of its own.
    fn spawn_revalidation(&self, forward: Box<Forward>, request: Request) {
        let (cache, client) = (self.cache.clone(), self.client.clone());
        let spawned = std::thread::Builder::new().name("httpcache-revalidate".into()).spawn(move || {
            let asked = request.url().clone();
            let template = request.try_clone();
            if let Ok(response) = forward_loop(&cache, &client, forward, request, template, asked) {
                let _ = response.bytes();
            }
        });
        if let Err(error) = spawned {
            tracing::debug!(target: "httpcache", %error, "background revalidation not started");
        }
    }

    /// The blocking reqwest client requests are sent with.
    pub fn inner(&self) -> &Client {
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
    pub fn inventory(&self) -> Inventory<'_, S> {
        Inventory::new(self.cache.store())
    }
}

/// How reading a body for the cache ended.
enum Buffered {
    /// All of it, within `max_entry_bytes`.
    Complete,
    /// Past `max_entry_bytes`, without a `Content-Length`.
    Overflow,
    /// A read failed.
    Failed,
}

/// Sends `first` (then clones of `template` on a retry) and completes `forward`.
fn forward_loop<S: Store>(
    cache: &Cache<S>,
    client: &Client,
    mut forward: Box<Forward>,
    first: Request,
    template: Option<Request>,
    asked: Url,
) -> reqwest::Result<Response> {
    let mut next = Some(first);
    loop {
        let mut request = match next.take().or_else(|| template.as_ref()?.try_clone()) {
            Some(request) => request,
            // Only requests with a replayable body are ever retried; rebuild from the driver's copy.
            None => Request::try_from(forward.request())?,
        };
        *request.headers_mut() = forward.request().headers().clone();
        let mut response = match client.execute(request) {
            Ok(response) => response,
            Err(error) => {
                return cache
                    .fail(*forward)
                    .map(|stale| Response::from(with_url(stale, &asked)))
                    .ok_or(error);
            }
        };
        let final_url = final_uri(&asked, response.url());
        let mut head = response_head(response.status(), response.version(), response.headers());
        if !forward.wants_body(&head) {
            cache.complete_streamed(*forward, &mut head, final_url.as_ref());
            if let Some(status) = take_status(&mut head, response.headers_mut()) {
                response.extensions_mut().insert(status);
            }
            return Ok(response);
        }
        // Buffer up to `max_entry_bytes` (a `Content-Length`, when present, is within it).
        let limit = cache.settings().max_entry_bytes;
        let mut buffer = BytesMut::new();
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
                    tracing::debug!(target: "httpcache", %error, "reading the response body failed");
                    break Buffered::Failed;
                }
            }
        };
        // Past the limit (or a failed read): the prefix, then the rest as it comes, unstored.
        let mut head = match read {
            Buffered::Complete => {
                let url = response.url().clone();
                let mut buffered = http::Response::new(buffer.freeze());
                *buffered.status_mut() = response.status();
                *buffered.version_mut() = response.version();
                *buffered.headers_mut() = std::mem::take(response.headers_mut());
                *buffered.extensions_mut() = std::mem::take(response.extensions_mut());
                match cache.complete(*forward, buffered, final_url.as_ref()) {
                    Completion::Respond(response) => return Ok(Response::from(with_url(*response, &url))),
                    Completion::Retry(retry) => forward = retry,
                }
                continue;
            }
            Buffered::Overflow => {
                cache.complete_streamed(*forward, &mut head, final_url.as_ref());
                head
            }
            Buffered::Failed => match cache.fail(*forward) {
                Some(stale) => return Ok(Response::from(with_url(stale, &asked))),
                // The caller meets the error when reading past what was buffered.
                None => {
                    head.extensions.insert(CacheStatus::bypass(Reason::OriginError));
                    head
                }
            },
        };
        let url = response.url().clone();
        let mut streamed = http::Response::new(reqwest::Body::from(Bytes::new()));
        *streamed.status_mut() = response.status();
        *streamed.version_mut() = response.version();
        *streamed.headers_mut() = std::mem::take(response.headers_mut());
        *streamed.extensions_mut() = std::mem::take(response.extensions_mut());
        if let Some(status) = take_status(&mut head, streamed.headers_mut()) {
            streamed.extensions_mut().insert(status);
        }
        *streamed.body_mut() = reqwest::Body::wrap(Prefixed::new(buffer.freeze(), ReadBody::new(response)));
        return Ok(Response::from(with_url(streamed, &url)));
    }
}

/// A request on its way through a blocking [`CachedClient`]: reqwest's builder plus
/// the per-request cache controls of [`CacheRequestExt`].
#[derive(Debug)]
pub struct RequestBuilder<S = httpcache_lmdb::LmdbStore> {
    client: CachedClient<S>,
    inner: reqwest::blocking::RequestBuilder,
    options: RequestOptions,
}

impl<S: Store + 'static> RequestBuilder<S> {
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
    pub fn body(self, body: impl Into<reqwest::blocking::Body>) -> Self {
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

    /// Changes the underlying [`reqwest::blocking::RequestBuilder`] (for `query`, `json`, `form`...).
    pub fn map(
        mut self,
        change: impl FnOnce(reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder,
    ) -> Self {
        self.inner = change(self.inner);
        self
    }

    /// Builds the request.
    ///
    /// # Errors
    /// reqwest's builder errors (an invalid URL or header).
    pub fn build(self) -> reqwest::Result<Request> {
        self.inner.build()
    }

    /// Sends the request through the cache.
    ///
    /// # Errors
    /// reqwest's builder and transport errors.
    pub fn send(self) -> reqwest::Result<Response> {
        let request = self.inner.build()?;
        self.client.execute_with(request, self.options)
    }
}

impl<S> CacheRequestExt for RequestBuilder<S> {
    fn cache_options_with(mut self, change: impl FnOnce(&mut RequestOptions)) -> Self {
        change(&mut self.options);
        self
    }
}

//! The async [`CachedClient`].

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use httpcache_core::{AsyncStore, Cache, Forward, RequestOptions, Settings};

use crate::DefaultStore;
use crate::convert::served;
use crate::drive::{Exchange, Origin, exchange, plan_at_once, spawn_revalidation};

/// A caching async HTTP client: a [`reqwest::Client`] in front of which every request
/// goes through an httpcache [`Cache`] over an [`AsyncStore`]. Cheap to clone: clones
/// share the client and the cache.
///
/// Give each thread or task that sends many requests a clone of its own rather than a
/// reference to one client. A request holds a reference count of the client it was
/// made from, and each clone has its own: one that threads do not update at once, so
/// hits from several threads do not wait on each other for it.
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
    handle: Arc<Handle<S>>,
}

/// What a [`CachedClient`]'s requests take from it.
type Handle<S> = crate::front::Handle<reqwest::Client, S>;

impl<S> Clone for CachedClient<S> {
    /// A client sharing this one's reqwest client and cache, with a handle of its own.
    fn clone(&self) -> Self {
        CachedClient { handle: self.handle.fork() }
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
        CachedClient { handle: Handle::new(client, Arc::new(Cache::new(store, settings))) }
    }

    request_constructors!();

    /// Sends a request through the cache with default per-request options.
    ///
    /// Options set on an `http::Request` ([`CacheRequestExt`](crate::CacheRequestExt))
    /// before converting it to a `reqwest::Request` cannot be seen here: reqwest keeps a
    /// request's extensions, where they travel, to itself. Send such a request with
    /// [`CachedClient::execute_http`], or give the options to [`CachedClient::execute_with`].
    ///
    /// # Errors
    /// reqwest's, when the origin could not be reached and no stale response may stand in.
    pub fn execute(
        &self,
        request: reqwest::Request,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + '_ {
        self.execute_with(request, RequestOptions::default())
    }

    /// Sends an `http::Request` through the cache with the per-request options set on
    /// it ([`CacheRequestExt`](crate::CacheRequestExt), which keeps them in its
    /// extensions), converted as `reqwest::Request::try_from` converts it.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use httpcache_reqwest::core::Settings;
    /// use httpcache_reqwest::{CacheRequestExt, CachedClient};
    ///
    /// let client = CachedClient::lmdb("/tmp/my-cache", Settings::default())?;
    /// let request = http::Request::get("http://localhost:8080/").body(Vec::new())?.only_if_cached();
    /// let response = client.execute_http(request).await?;
    /// println!("{}", response.status());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// reqwest's, when it cannot convert the request; else as [`CachedClient::execute`].
    pub fn execute_http<B: Into<reqwest::Body>>(
        &self,
        request: http::Request<B>,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + '_ {
        let options = RequestOptions::from_extensions(request.extensions());
        Sending::new(Cow::Borrowed(&self.handle), None, reqwest::Request::try_from(request), options)
    }

    /// Sends a request through the cache with per-request `options`.
    ///
    /// # Errors
    /// As [`CachedClient::execute`].
    pub fn execute_with(
        &self,
        request: reqwest::Request,
        options: RequestOptions,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + '_ {
        Sending::new(Cow::Borrowed(&self.handle), None, Ok(request), options)
    }

    /// The reqwest client requests are sent with.
    pub fn inner(&self) -> &reqwest::Client {
        &self.handle.client
    }

    cache_accessors!(AsyncInventory, handle.cache);

    /// Completes once no stale-while-revalidate revalidation of this cache is running
    /// on a Tokio task. Those tasks end with the runtime: a short-lived program that
    /// wants them done (and stored) awaits this before it returns, bounded with
    /// `tokio::time::timeout`, then calls [`Store::flush`](httpcache_core::Store::flush)
    /// if its store buffers writes.
    pub async fn revalidations_finished(&self) {
        self.cache().revalidations_finished().await
    }
}

/// A request on its way through a [`CachedClient`]: reqwest's builder plus the
/// per-request cache controls of [`CacheRequestExt`](crate::CacheRequestExt).
#[derive(Debug)]
pub struct RequestBuilder<S = DefaultStore> {
    handle: Arc<Handle<S>>,
    inner: reqwest::RequestBuilder,
    options: RequestOptions,
}

request_builder!(reqwest::RequestBuilder, reqwest::Body, reqwest::Request);

impl<S: AsyncStore + 'static> RequestBuilder<S> {
    /// Sends the request through the cache.
    ///
    /// # Errors
    /// reqwest's builder and transport errors.
    pub fn send(self) -> impl Future<Output = reqwest::Result<reqwest::Response>> + use<S> {
        // The builder's clone of the reqwest client is the one the handle holds: the
        // future drops it on its first poll, while its shared reference count is still in
        // this core's cache. (Dropped here, it would have the request, or the future,
        // copied once more on a hit: a call between building a value and returning it.)
        let (client, request) = self.inner.build_split();
        Sending::new(Cow::Owned(self.handle), Some(client), request, self.options)
    }
}

/// A client's handle, borrowed ([`CachedClient::execute`]) or owned (a builder's), as
/// the cache and the origin of [`exchange`].
struct ClientOrigin<'a, S>(Cow<'a, Arc<Handle<S>>>);

impl<S> Clone for ClientOrigin<'_, S> {
    fn clone(&self) -> Self {
        ClientOrigin(self.0.clone())
    }
}

impl<S> std::ops::Deref for ClientOrigin<'_, S> {
    type Target = Arc<Cache<S>>;

    fn deref(&self) -> &Arc<Cache<S>> {
        &self.0.cache
    }
}

impl<'a, S: AsyncStore + 'static> Origin<S> for ClientOrigin<'a, S> {
    type Error = reqwest::Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send + use<'a, S> {
        self.0.client.execute(request)
    }

    /// Starts it on a Tokio task, which holds the handle: the reference counts shared
    /// by every clone are not touched.
    fn revalidate_later(&self, cache: &Arc<Cache<S>>, forward: Box<Forward>, request: reqwest::Request) {
        let handle = Arc::clone(&self.0);
        spawn_revalidation(cache.clone(), forward, request, move |r| handle.client.execute(r));
    }
}

/// A request on its way through the cache, as a future written out by hand: its first
/// poll plans the request without waiting ([`plan_at_once`]), so a hit from memory or
/// LMDB is answered then, having built, moved and polled no other future. Whatever
/// else (a wait, an exchange with the origin) goes on in one boxed future. The client's
/// handle is borrowed ([`CachedClient::execute`]) or owned (a builder's).
struct Sending<'a, S> {
    start: Option<Start<'a, S>>,
    exchange: Option<Exchange<'a, reqwest::Error>>,
}

struct Start<'a, S> {
    handle: Cow<'a, Arc<Handle<S>>>,
    /// A builder's clone of the reqwest client, which the handle also holds: dropped on
    /// the first poll.
    spare: Option<reqwest::Client>,
    request: reqwest::Result<reqwest::Request>,
    options: RequestOptions,
}

impl<'a, S: AsyncStore + 'static> Sending<'a, S> {
    fn new(
        handle: Cow<'a, Arc<Handle<S>>>,
        spare: Option<reqwest::Client>,
        request: reqwest::Result<reqwest::Request>,
        options: RequestOptions,
    ) -> Self {
        Sending { start: Some(Start { handle, spare, request, options }), exchange: None }
    }
}

impl<S: AsyncStore + 'static> Future for Sending<'_, S> {
    type Output = reqwest::Result<reqwest::Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(Start { handle, spare, request, options }) = this.start.take() {
            // Only a builder's request has a spare client.
            let built = spare.is_some();
            drop(spare);
            let mut request = request?;
            let origin = ClientOrigin(handle);
            let cache = &origin.0.cache;
            let left = match plan_at_once(cache, &mut request, options) {
                Ok(response) => {
                    let background = |forward, request| origin.revalidate_later(cache, forward, request);
                    return Poll::Ready(Ok(served(*response, &request, background)));
                }
                Err(left) => left,
            };
            this.exchange = Some(exchange(origin.clone(), origin, request, left, built));
        }
        match &mut this.exchange {
            Some(exchange) => exchange.as_mut().poll(cx),
            // As every future's: polling once more after the answer is a caller's error.
            None => panic!("a request future was polled after it completed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use httpcache_core::{Inline, Settings};
    use httpcache_mem::MemoryStore;

    use super::*;
    use crate::drive::{Left, exchange};

    /// Clones share the cache, and each has a handle of its own: a request made from one
    /// clone takes a reference count that no other clone's requests update.
    #[test]
    fn a_clones_requests_count_on_its_own_handle() {
        let store = Inline(MemoryStore::new(1 << 20));
        let a = CachedClient::wrap(reqwest::Client::new(), store, Settings::default());
        let b = a.clone();
        assert!(Arc::ptr_eq(a.cache(), b.cache()), "one cache");
        assert!(!Arc::ptr_eq(&a.handle, &b.handle), "two handles");
        let request = b.get("http://localhost/a");
        assert_eq!((Arc::strong_count(&a.handle), Arc::strong_count(&b.handle)), (1, 2));
        let sending = request.send();
        assert_eq!(Arc::strong_count(&b.handle), 2, "the future holds the builder's count");
        drop(sending);
        assert_eq!(Arc::strong_count(&b.handle), 1);
        assert_eq!(Arc::strong_count(a.cache()), 2, "one count per handle, none per request");
    }

    /// A request that goes to the origin is one boxed future, and the box of one planned
    /// at once (a miss on the memory store, through reqwest's client, as
    /// `CachedClient::execute` sends it) stays within 1,024 bytes: glibc serves and frees
    /// blocks up to 1,032 bytes from a per-thread cache, larger ones from its shared bins
    /// at several times the cost (see `drive::exchange`).
    #[test]
    fn the_exchange_of_a_miss_fits_the_allocators_thread_cache() {
        let cache = Arc::new(Cache::new(Inline(MemoryStore::new(1 << 20)), Settings::default()));
        let handle = Handle::new(reqwest::Client::new(), cache.clone());
        let url = reqwest::Url::parse("http://localhost/a").expect("url");
        let mut request = reqwest::Request::new(http::Method::GET, url);
        let left = plan_at_once(&cache, &mut request, RequestOptions::default());
        let Err(left @ Left::Forward(_)) = left else { panic!("an empty store: a miss, planned at once") };
        let origin = ClientOrigin(Cow::Borrowed(&handle));
        let exchange = exchange(origin.clone(), origin, request, left, false);
        let size = std::mem::size_of_val(&*exchange);
        assert!(size <= 1024, "the boxed exchange is {size} bytes");
    }
}

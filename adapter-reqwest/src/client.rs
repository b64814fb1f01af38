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

    request_constructors!();

    /// Sends a request through the cache with default per-request options.
    ///
    /// # Errors
    /// reqwest's, when the origin could not be reached and no stale response may stand in.
    pub fn execute(
        &self,
        request: reqwest::Request,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + '_ {
        self.execute_with(request, RequestOptions::default())
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
        Sending::new(Cow::Borrowed(&self.cache), Cow::Borrowed(&self.client), Ok(request), options)
    }

    /// The reqwest client requests are sent with.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    cache_accessors!(AsyncInventory);
}

/// A request on its way through a [`CachedClient`]: reqwest's builder plus the
/// per-request cache controls of [`CacheRequestExt`](crate::CacheRequestExt).
#[derive(Debug)]
pub struct RequestBuilder<S = DefaultStore> {
    cache: Arc<Cache<S>>,
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
        let (client, request) = self.inner.build_split();
        Sending::new(Cow::Owned(self.cache), Cow::Owned(client), request, self.options)
    }
}

/// reqwest's client as the origin of [`exchange`], borrowed ([`CachedClient::execute`])
/// or owned (a builder's).
struct ClientOrigin<'a>(Cow<'a, reqwest::Client>);

impl<'a, S: AsyncStore + 'static> Origin<S> for ClientOrigin<'a> {
    type Error = reqwest::Error;

    fn send(
        &mut self,
        request: reqwest::Request,
    ) -> impl Future<Output = reqwest::Result<reqwest::Response>> + Send + use<'a, S> {
        self.0.execute(request)
    }

    /// Starts it on a Tokio task. The cache and the client are cloned (atomic reference
    /// counts shared by every thread) only when a revalidation actually starts, not on
    /// every request.
    fn revalidate_later(&self, cache: &Arc<Cache<S>>, forward: Box<Forward>, request: reqwest::Request) {
        let client = self.0.clone().into_owned();
        spawn_revalidation(cache.clone(), forward, request, move |r| client.execute(r));
    }
}

/// A request on its way through the cache, as a future written out by hand: its first
/// poll plans the request without waiting ([`plan_at_once`]), so a hit from memory or
/// LMDB is answered then, having built, moved and polled no other future. Whatever
/// else (a wait, an exchange with the origin) goes on in one boxed future. The cache
/// and the client are borrowed ([`CachedClient::execute`]) or owned (a builder's).
struct Sending<'a, S> {
    start: Option<Start<'a, S>>,
    exchange: Option<Exchange<'a, reqwest::Error>>,
}

struct Start<'a, S> {
    cache: Cow<'a, Arc<Cache<S>>>,
    client: Cow<'a, reqwest::Client>,
    request: reqwest::Result<reqwest::Request>,
    options: RequestOptions,
}

impl<'a, S: AsyncStore + 'static> Sending<'a, S> {
    fn new(
        cache: Cow<'a, Arc<Cache<S>>>,
        client: Cow<'a, reqwest::Client>,
        request: reqwest::Result<reqwest::Request>,
        options: RequestOptions,
    ) -> Self {
        Sending { start: Some(Start { cache, client, request, options }), exchange: None }
    }
}

impl<S: AsyncStore + 'static> Future for Sending<'_, S> {
    type Output = reqwest::Result<reqwest::Response>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(Start { cache, client, request, options }) = this.start.take() {
            let mut request = request?;
            let origin = ClientOrigin(client);
            let left = match plan_at_once(&cache, &mut request, options) {
                Ok(response) => {
                    let background = |forward, request| origin.revalidate_later(&cache, forward, request);
                    return Poll::Ready(Ok(served(*response, &request, background)));
                }
                Err(left) => left,
            };
            this.exchange = Some(exchange(cache, origin, request, left));
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

    /// A request that goes to the origin is one boxed future, and the box of one planned
    /// at once (a miss on the memory store, through reqwest's client, as
    /// `CachedClient::execute` sends it) stays within 1,024 bytes: glibc serves and frees
    /// blocks up to 1,032 bytes from a per-thread cache, larger ones from its shared bins
    /// at several times the cost (see `drive::exchange`).
    #[test]
    fn the_exchange_of_a_miss_fits_the_allocators_thread_cache() {
        let cache = Arc::new(Cache::new(Inline(MemoryStore::new(1 << 20)), Settings::default()));
        let client = reqwest::Client::new();
        let url = reqwest::Url::parse("http://localhost/a").expect("url");
        let mut request = reqwest::Request::new(http::Method::GET, url);
        let left = plan_at_once(&cache, &mut request, RequestOptions::default());
        let Err(left @ Left::Forward(_)) = left else { panic!("an empty store: a miss, planned at once") };
        let exchange = exchange(Cow::Borrowed(&cache), ClientOrigin(Cow::Borrowed(&client)), request, left);
        let size = std::mem::size_of_val(&*exchange);
        assert!(size <= 1024, "the boxed exchange is {size} bytes");
    }
}

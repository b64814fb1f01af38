//! [`CacheMiddleware`]: the cache as a [`reqwest_middleware::Middleware`].
//!
//! ```no_run
//! use httpcache_reqwest::{CacheMiddleware, CacheRequestExt, CacheStatusExt};
//! use httpcache_reqwest::core::{Inline, Settings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Inline(httpcache_mem::MemoryStore::new(64 << 20));
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(CacheMiddleware::new(store, Settings::default()))
//!     .build();
//! let response = client.get("http://localhost:8080/").only_if_cached().send().await?;
//! println!("from cache: {}", response.from_cache());
//! # Ok(()) }
//! ```
//!
//! Per-request controls ([`CacheRequestExt`] on [`reqwest_middleware::RequestBuilder`])
//! travel as a [`RequestOptions`] in the request's extensions: the ones the chain
//! carries, not a `reqwest::Request`'s own, which reqwest keeps to itself. So options
//! set on an `http::Request` are lost when it is converted to a `reqwest::Request`;
//! give them to `ClientWithMiddleware::execute_with_extensions` instead.
//!
//! Stale-while-revalidate revalidations run on a Tokio task and are sent with the
//! middleware's background client ([`CacheMiddleware::background_client`]), not
//! through the rest of the chain, which cannot outlive the request.

use std::future::Future;
use std::sync::Arc;

use http::Extensions;
use httpcache_core::{AsyncStore, Cache, CacheRequestExt, Forward, RequestOptions, Settings};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::Reqwest;
use crate::convert::served;
use crate::drive::{Origin, exchange, plan_at_once, spawn_revalidation};

/// The cache as a middleware. Cheap to clone (clones share the cache).
#[derive(Debug)]
pub struct CacheMiddleware<S> {
    cache: Arc<Cache<S>>,
    background: reqwest::Client,
}

impl<S> Clone for CacheMiddleware<S> {
    fn clone(&self) -> Self {
        CacheMiddleware { cache: self.cache.clone(), background: self.background.clone() }
    }
}

impl<S: AsyncStore + 'static> CacheMiddleware<S> {
    /// A middleware caching in `store` with `settings`. Background revalidations use
    /// `reqwest::Client::new()` until [`CacheMiddleware::background_client`] says otherwise.
    pub fn new(store: S, settings: Settings) -> Self {
        CacheMiddleware { cache: Arc::new(Cache::new(store, settings)), background: reqwest::Client::new() }
    }

    /// The client stale-while-revalidate revalidations are sent with (usually the one
    /// the middleware chain wraps).
    pub fn background_client(mut self, client: reqwest::Client) -> Self {
        self.background = client;
        self
    }

    cache_accessors!(AsyncInventory, cache);

    /// Completes once no stale-while-revalidate revalidation of this cache is running
    /// on a Tokio task. Those tasks end with the runtime: a short-lived program that
    /// wants them done (and stored) awaits this before it returns, bounded with
    /// `tokio::time::timeout`, then calls [`Store::flush`](httpcache_core::Store::flush)
    /// if its store buffers writes.
    pub async fn revalidations_finished(&self) {
        self.cache().revalidations_finished().await
    }
}

impl<S: AsyncStore + 'static> CacheMiddleware<S> {
    /// Starts a stale-while-revalidate revalidation on a Tokio task, sent with the
    /// background client. Clones the cache and the client only then.
    fn revalidate_later(&self, forward: Box<Forward>, request: Request) {
        let client = self.background.clone();
        spawn_revalidation(self.cache.clone(), forward, request, move |r| {
            let client = client.clone();
            async move { client.execute(r).await.map_err(reqwest_middleware::Error::from) }
        })
    }
}

#[async_trait::async_trait]
impl<S: AsyncStore + 'static> Middleware for CacheMiddleware<S> {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let options = RequestOptions::from_extensions(extensions);
        match plan_at_once(&self.cache, &mut request, options) {
            Ok(response) => {
                Ok(served(*response, &request, |forward, request| self.revalidate_later(forward, request)))
            }
            Err(left) => {
                // A retry (a 304 whose validator did not match) gets a copy of the
                // caller's extensions, which the first send lends to the rest of the chain.
                let spare = extensions.clone();
                let chain = Chain { middleware: self, next, lent: Some(extensions), spare };
                exchange(&self.cache, chain, request, left, false).await
            }
        }
    }
}

/// The rest of the middleware chain as the origin of [`exchange`].
struct Chain<'a, S> {
    middleware: &'a CacheMiddleware<S>,
    next: Next<'a>,
    lent: Option<&'a mut Extensions>,
    spare: Extensions,
}

impl<'a, S: AsyncStore + 'static> Origin<S> for Chain<'a, S> {
    type Error = reqwest_middleware::Error;

    fn send(
        &mut self,
        request: Request,
    ) -> impl Future<Output = reqwest_middleware::Result<Response>> + Send + use<'a, S> {
        match self.lent.take() {
            Some(extensions) => self.next.clone().run(request, extensions),
            None => {
                let (next, mut extensions) = (self.next.clone(), self.spare.clone());
                Box::pin(async move { next.run(request, &mut extensions).await })
            }
        }
    }

    fn revalidate_later(&self, _: &Arc<Cache<S>>, forward: Box<Forward>, request: Request) {
        self.middleware.revalidate_later(forward, request);
    }
}

impl CacheRequestExt<Reqwest> for reqwest_middleware::RequestBuilder {
    fn map_cache_options(mut self, change: impl FnOnce(&mut RequestOptions)) -> Self {
        change(self.extensions().get_or_insert_default::<RequestOptions>());
        self
    }
}

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
//! travel as a [`RequestOptions`] in the request's extensions. Stale-while-revalidate
//! revalidations run on a Tokio task and are sent with the middleware's background
//! client ([`CacheMiddleware::background_client`]), not through the rest of the chain,
//! which cannot outlive the request.

use std::sync::Arc;

use http::Extensions;
use httpcache_core::{AsyncStore, Cache, CacheRequestExt, Plan, RequestOptions, Settings};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::Reqwest;
use crate::convert::served;
use crate::drive::{AtOnce, finish, plan_at_once, spawn_revalidation};

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

    cache_accessors!(AsyncInventory);
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
        // Clones the cache and client only when a background revalidation starts.
        let background = |forward, request| {
            let client = self.background.clone();
            spawn_revalidation(self.cache.clone(), forward, request, move |r| {
                let client = client.clone();
                async move { client.execute(r).await.map_err(reqwest_middleware::Error::from) }
            })
        };
        // The first send lends the caller's extensions to the rest of the chain; a retry
        // (a 304 whose validator did not match) gets a copy of them.
        let spare = extensions.clone();
        let mut lent = Some(extensions);
        let send = move |request| match lent.take() {
            Some(extensions) => next.clone().run(request, extensions),
            None => {
                let (next, mut extensions) = (next.clone(), spare.clone());
                Box::pin(async move { next.run(request, &mut extensions).await })
            }
        };
        match plan_at_once(&self.cache, &mut request, options) {
            AtOnce::Planned(Plan::Respond(response)) => Ok(served(*response, &request, background)),
            // Boxed, as `finish` says.
            left => Box::pin(finish(&self.cache, request, left, send, background)).await,
        }
    }
}

impl CacheRequestExt<Reqwest> for reqwest_middleware::RequestBuilder {
    fn map_cache_options(mut self, change: impl FnOnce(&mut RequestOptions)) -> Self {
        change(self.extensions().get_or_insert_default::<RequestOptions>());
        self
    }
}

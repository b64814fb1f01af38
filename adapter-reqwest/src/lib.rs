//! # httpcache-reqwest
//!
//! An RFC 9111 HTTP cache for [reqwest]: the async [`CachedClient`], the
//! [`blocking::CachedClient`] (feature `blocking`, on by default) and a
//! [`reqwest_middleware`] middleware (feature `middleware`). All the policy lives in
//! [`httpcache_core`]'s driver; this crate converts requests and responses.
//!
//! ```no_run
//! use std::time::Duration;
//! use httpcache_reqwest::{CacheRequestExt, CacheStatusExt, CachedClient};
//! use httpcache_reqwest::core::{Expiry, Settings};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = Settings { expire_after: Some(Expiry::After(Duration::from_secs(600))), ..Settings::default() };
//! let client = CachedClient::memory(settings, 64 << 20);
//! let response = client.get("http://localhost:8080/").send().await?;
//! println!("from cache: {}", response.from_cache());
//! // Per-request controls.
//! let response = client.get("http://localhost:8080/").refresh().send().await?;
//! assert!(response.cache_status().is_some());
//! # Ok(()) }
//! ```
//!
//! For a ready-made client whose cache lives under the user's cache directory (like
//! niquests-cache's `cached_session()`), see [`cached_client`].
//!
//! ## How requests flow
//!
//! Every request runs [`Cache`](httpcache_core::Cache)'s step API: `plan` →
//! (send through reqwest) → `complete` / `complete_streamed` / `fail`.
//!
//! * Responses are the client's own ([`reqwest::Response`]), carrying a
//!   [`CacheStatus`] in their extensions (read it with [`CacheStatusExt`]) and an
//!   RFC 9211 `Cache-Status` header. A response served from the cache reports the
//!   URL its redirects ended at as [`reqwest::Response::url`].
//! * reqwest follows redirects inside `send`: the entry is keyed by the URL asked
//!   for and remembers where the redirects ended.
//! * Bodies are buffered only when the cache wants them ([`Forward::wants_body`]):
//!   a response whose `Content-Length` exceeds `max_entry_bytes` is returned as it
//!   streams; one without `Content-Length` is buffered up to `max_entry_bytes` and,
//!   past that, returned as the buffered prefix followed by the rest of the stream,
//!   unstored.
//! * A request body that cannot be replayed (a stream) bypasses the cache.
//! * stale-while-revalidate: the background revalidation runs on a Tokio task (async)
//!   or a thread (blocking).
//! * A store failure never fails a request.
//!
//! [`Forward::wants_body`]: httpcache_core::Forward::wants_body
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::time::SystemTime;

pub use httpcache_core as core;
use httpcache_core::{CacheKey, CacheStatus, Expiry, RequestOptions};

#[cfg(feature = "blocking")]
pub mod blocking;
mod body;
mod client;
mod convert;
mod default;
#[cfg(feature = "middleware")]
pub mod middleware;

pub use client::{CachedClient, CachedClientBuilder, RequestBuilder};
pub use default::{
    DEFAULT_APP_NAME, DEFAULT_EXPIRE_AFTER, DefaultStore, cached_client, cached_client_with,
    default_cache_dir,
};
#[cfg(feature = "middleware")]
pub use middleware::CacheMiddleware;

/// This crate's errors: only when building a client. Requests fail with reqwest's own errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The builder was given no store.
    #[error("no store: call `.store(..)` on the builder")]
    NoStore,
    /// No user cache directory is known on this platform.
    #[error("no user cache directory on this platform")]
    NoCacheDir,
    /// The store could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] httpcache_core::StoreError),
    /// reqwest could not build its client.
    #[error("building the reqwest client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Per-request cache controls on a request builder; the options travel with the
/// request (for [`reqwest_middleware::RequestBuilder`], in its extensions).
pub trait CacheRequestExt: Sized {
    /// Changes this request's [`RequestOptions`].
    fn cache_options_with(self, change: impl FnOnce(&mut RequestOptions)) -> Self;

    /// Replaces this request's [`RequestOptions`].
    fn cache_options(self, options: RequestOptions) -> Self {
        self.cache_options_with(|current| *current = options)
    }

    /// Expiry for this request: a stored response older than this is stale, and a
    /// new one is stored with it (unless the response's own headers say otherwise).
    fn expire_after(self, expiry: Expiry) -> Self {
        self.cache_options_with(|options| options.expire_after = Some(expiry))
    }

    /// Never contact the origin: serve what is stored (even stale) or answer 504.
    fn only_if_cached(self) -> Self {
        self.cache_options_with(|options| options.only_if_cached = true)
    }

    /// Revalidate the stored response before using it.
    fn refresh(self) -> Self {
        self.cache_options_with(|options| options.refresh = true)
    }

    /// Skip the cache read, fetch from the origin and overwrite the stored response.
    fn force_refresh(self) -> Self {
        self.cache_options_with(|options| options.force_refresh = true)
    }
}

/// What the cache says about a response, read from the [`CacheStatus`] in its
/// extensions. Every response from this crate's clients carries one.
pub trait CacheStatusExt {
    /// The cache's account of the response, if it went through a cache.
    fn cache_status(&self) -> Option<&CacheStatus>;

    /// Served from the cache (including revalidated and stale responses).
    #[allow(clippy::wrong_self_convention)] // the name users of requests-cache know
    fn from_cache(&self) -> bool {
        self.cache_status().is_some_and(|status| status.from_cache)
    }

    /// The origin confirmed the stored response with a 304.
    fn revalidated(&self) -> bool {
        self.cache_status().is_some_and(|status| status.revalidated)
    }

    /// The response served was stale (stale-if-error, stale-while-revalidate, only-if-cached).
    fn is_stale(&self) -> bool {
        self.cache_status().is_some_and(|status| status.stale)
    }

    /// When the stored entry was created.
    fn created_at(&self) -> Option<SystemTime> {
        self.cache_status()?.created_at
    }

    /// When the stored entry stops being fresh (`None`: never, or not stored).
    fn expires(&self) -> Option<SystemTime> {
        self.cache_status()?.expires
    }

    /// Whether the stored entry is past its expiry.
    fn is_expired(&self) -> bool {
        self.cache_status().is_some_and(|status| status.is_expired)
    }

    /// The key the entry is stored under.
    fn cache_key(&self) -> Option<CacheKey> {
        self.cache_status()?.cache_key
    }
}

impl CacheStatusExt for reqwest::Response {
    fn cache_status(&self) -> Option<&CacheStatus> {
        self.extensions().get()
    }
}

#[cfg(feature = "blocking")]
impl CacheStatusExt for reqwest::blocking::Response {
    fn cache_status(&self) -> Option<&CacheStatus> {
        self.extensions().get()
    }
}

impl<B> CacheStatusExt for http::Response<B> {
    fn cache_status(&self) -> Option<&CacheStatus> {
        self.extensions().get()
    }
}

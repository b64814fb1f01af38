//! # httpcache-reqwest
//!
//! An RFC 9111 HTTP cache for [reqwest]: the async [`CachedClient`], the
//! [`blocking::CachedClient`] (feature `blocking`, on by default) and a
//! [`reqwest_middleware`] middleware (feature `middleware`). All the policy lives in
//! [`httpcache_core`]'s driver; this crate converts requests and responses.
//!
//! [`reqwest_middleware`]: https://docs.rs/reqwest-middleware
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
//! (send through reqwest) → `complete` / `stale_instead_of` + `complete_streamed` / `fail`.
//!
//! * Responses are the client's own ([`reqwest::Response`]), carrying a
//!   [`CacheStatus`](httpcache_core::CacheStatus) in their extensions (read it with [`CacheStatusExt`]) and an
//!   RFC 9211 `Cache-Status` header. A response served from the cache reports the
//!   URL its redirects ended at as [`reqwest::Response::url`] (and
//!   [`CacheStatusExt::final_url`]).
//! * reqwest follows redirects inside `send`: the entry is keyed by the URL asked
//!   for and remembers where the redirects ended.
//! * Bodies are buffered only when the cache wants them ([`Forward::wants_body`]):
//!   a response whose `Content-Length` exceeds `max_entry_bytes` is returned as it
//!   streams; one without `Content-Length` is buffered up to `max_entry_bytes` and,
//!   past that, returned as the buffered prefix followed by the rest of the stream,
//!   unstored.
//! * A request body that cannot be replayed (a stream) bypasses the cache; a successful
//!   unsafe request (PUT, POST...) still invalidates what is stored for its URL (RFC 9111 §4.4).
//! * stale-while-revalidate: the background revalidation runs on a Tokio task (async)
//!   or a thread (blocking). Neither keeps the program alive: before a short-lived
//!   program exits, it awaits [`CachedClient::revalidations_finished`] (async) or calls
//!   [`blocking::CachedClient::wait_for_revalidations`].
//! * Identical concurrent misses are coalesced: one goes to the origin, the others wait
//!   for it, at most [`COALESCE_WAIT`](httpcache_core::driver::COALESCE_WAIT) (10 s) or
//!   the request's own timeout if shorter, and then go to the origin themselves.
//! * A store failure never fails a request.
//!
//! [`Forward::wants_body`]: httpcache_core::Forward::wants_body
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use httpcache_core as core;
pub use httpcache_core::{CacheRequestExt, CacheStatusExt};
#[doc(no_inline)]
pub use httpcache_lmdb::{DEFAULT_APP_NAME, default_cache_dir};

#[macro_use]
mod front;
#[cfg(feature = "blocking")]
pub mod blocking;
mod body;
mod client;
mod convert;
mod default;
mod drive;
#[cfg(feature = "middleware")]
pub mod middleware;

pub use client::{CachedClient, CachedClientBuilder, RequestBuilder};
pub use default::{DefaultStore, cached_client, cached_client_with};
#[cfg(feature = "middleware")]
pub use middleware::CacheMiddleware;

/// This crate's errors: only when building a client. Requests fail with reqwest's own errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The builder was given no store.
    #[error("no store: call `.store(..)` on the builder")]
    NoStore,
    /// No user cache directory is known on this platform, or the application name is
    /// not one directory name (`httpcache_lmdb::default_cache_dir`).
    #[error("no user cache directory on this platform, or the application name is not one directory name")]
    NoCacheDir,
    /// The store could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] httpcache_core::StoreError),
    /// reqwest could not build its client.
    #[error("building the reqwest client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The marker of this crate's implementations of [`CacheStatusExt`] for reqwest's
/// responses and of [`CacheRequestExt`] for `reqwest_middleware::RequestBuilder`
/// (Rust's orphan rule asks for a type of this crate in them). Never named in calls:
/// it is inferred.
#[derive(Debug)]
pub enum Reqwest {}

/// A response from this crate's clients; [`CacheStatusExt::final_url`] is reqwest's
/// [`url`](reqwest::Response::url), which for a response served from the cache is
/// the URL its redirects ended at.
impl CacheStatusExt<Reqwest> for reqwest::Response {
    fn cache_extensions(&self) -> &http::Extensions {
        self.extensions()
    }

    fn final_url(&self) -> Option<&str> {
        Some(self.url().as_str())
    }
}

/// As for [`reqwest::Response`].
#[cfg(feature = "blocking")]
impl CacheStatusExt<Reqwest> for reqwest::blocking::Response {
    fn cache_extensions(&self) -> &http::Extensions {
        self.extensions()
    }

    fn final_url(&self) -> Option<&str> {
        Some(self.url().as_str())
    }
}

//! # httpcache-isahc
//!
//! An RFC 9111 HTTP cache for [isahc] 2: [`CachedClient`] wraps an
//! [`isahc::HttpClient`] and sends every request through an httpcache
//! [`Cache`](httpcache_core::Cache), blocking ([`CachedClient::send`]) or not
//! ([`CachedClient::send_async`]). Responses are isahc's own
//! (`isahc::Response<isahc::Body>` / `isahc::Response<isahc::AsyncBody>`). All the
//! policy lives in [`httpcache_core`]'s driver; this crate converts requests and
//! responses and runs the driver's steps.
//!
//! ```no_run
//! use std::time::Duration;
//! use httpcache_isahc::core::{Expiry, Settings, StaleAllowance};
//! use httpcache_isahc::{CacheRequestExt, CacheStatusExt, CachedClient, MemoryStores};
//! use isahc::config::{Configurable, RedirectPolicy};
//! use isahc::{HttpClient, ReadResponseExt, Request};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = Settings { expire_after: Some(Expiry::After(Duration::from_secs(600))), ..Settings::default() };
//! // Your isahc configuration is kept.
//! let isahc = HttpClient::builder().redirect_policy(RedirectPolicy::Follow).build()?;
//! let store = MemoryStores::from(httpcache_mem::MemoryStore::new(64 << 20));
//! let client = CachedClient::wrap(isahc, store, settings);
//!
//! let mut first = client.get("http://example.com/")?;
//! let body = first.bytes()?;
//! let second = client.get("http://example.com/")?;
//! assert!(!first.from_cache() && second.from_cache());
//! println!("{} bytes, {:?}", body.len(), second.headers().get("cache-status"));
//!
//! // Per request: never contact the origin (a miss answers 504).
//! let request = Request::get("http://example.com/").only_if_cached().body(())?;
//! let offline = client.send(request)?;
//! # let _ = offline;
//! // At runtime: change the settings, or switch the cache off for a while.
//! client.update_settings(|settings| settings.stale_if_error = StaleAllowance::Always);
//! {
//!     let _off = client.disable();
//!     client.get("http://example.com/")?; // straight to the origin
//! }
//! println!("{} entries", client.inventory().map_or(Ok(0), |inventory| inventory.count())?);
//! # Ok(()) }
//! ```
//!
//! Or, like niquests-cache's `cached_session()`: [`cached_client()`] (feature `lmdb`, on
//! by default) caches in LMDB under the user's cache directory for 10 minutes.
//!
//! ## Features
//!
//! isahc is used with `default-features = false`. This crate's features: `static-curl`
//! (default: libcurl built from the bundled source, no system libcurl needed), `rustls`
//! (HTTPS through rustls), `http2`, `text-decoding` (isahc's `Response::text`), `lmdb`
//! (default: [`CachedClient::lmdb`] and [`cached_client()`]), `mem` (default:
//! [`CachedClient::memory`]) and `fs` (`CachedClient::fs`). Other isahc features
//! (`json`, `cookies`...): depend on isahc yourself with them.
//!
//! ## Stores
//!
//! `send` reads a blocking [`Store`](httpcache_core::Store), `send_async` an
//! [`AsyncStore`](httpcache_core::AsyncStore). A [`DualStore`] (from the core) is both:
//! the blocking and async faces of the same entries. [`LmdbStores`], [`MemoryStores`]
//! and `FsStores` (feature `fs`) are made with `From` from the blocking store; the
//! constructors [`CachedClient::lmdb`], [`CachedClient::memory`], `CachedClient::fs`
//! use them.
//!
//! ## How isahc's behaviour meets the cache
//!
//! * **Redirects** follow isahc's [`RedirectPolicy`](isahc::config::RedirectPolicy)
//!   (isahc's default is not to follow them). When they are followed, the entry is
//!   stored under the URL asked for and remembers where the redirects ended (isahc's
//!   [`ResponseExt::effective_uri`](isahc::ResponseExt::effective_uri)); the driver
//!   stores a GET's under the final URL too. Every response carries the final URL as a
//!   [`FinalUrl`] extension, read with [`CacheStatusExt::final_url`].
//!   **`effective_uri()` is `None` on responses served from the cache without asking
//!   the origin** (hits, stale-while-revalidate, stale-if-error after a refused
//!   connection): isahc keeps the type it stores it in private. Responses built from
//!   an origin response (misses, passes, 304 revalidations) keep isahc's extensions,
//!   `effective_uri()` included.
//! * **Decompression**: with isahc's automatic decompression (on by default) the body
//!   is stored as isahc delivers it, decoded. isahc keeps the origin's
//!   `Content-Encoding` and coded `Content-Length`; where the body proves it was
//!   decoded (its length is not the `Content-Length`, or a chunked `gzip` body lacks
//!   gzip's magic bytes) the response you get and the entry stored say so: no
//!   `Content-Encoding`, and the decoded length. A chunked `deflate` or `br` body gives
//!   no such proof and keeps its fields as they came.
//! * **Per-request controls** travel in the request's extensions as a
//!   [`RequestOptions`](httpcache_core::RequestOptions) ([`CacheRequestExt`] on
//!   `http::request::Builder` and `http::Request`), next to isahc's own per-request
//!   configuration, which is kept:
//!
//! ```no_run
//! # fn demo(client: &httpcache_isahc::CachedClient<httpcache_isahc::MemoryStores>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use httpcache_isahc::CacheRequestExt;
//! use httpcache_isahc::core::Expiry;
//! use isahc::Request;
//!
//! client.send(Request::get("http://example.com/a").expire_after(Expiry::After(Duration::from_secs(60))).body(())?)?;
//! client.send(Request::get("http://example.com/b").force_refresh().body(())?)?;
//! client.send(Request::get("http://example.com/c").body(())?.refresh())?;
//! # Ok(()) }
//! ```
//!
//! ## Bodies
//!
//! * A response served from a stored body (a hit, a revalidation, a response just
//!   stored) reads that body in place, without copying it: like isahc's own response
//!   bodies it knows its length (`Body::len()`) and cannot be `reset()`.
//! * Responses the cache does not want ([`Forward::wants_body`] is `false`: not
//!   storable, or a `Content-Length` above `max_entry_bytes`) are returned streamed and
//!   not stored. A body without `Content-Length` is buffered up to `max_entry_bytes`;
//!   past that, the caller gets the buffered prefix chained with the rest of the stream,
//!   not stored.
//! * A request body in memory (bytes, strings) is part of the key where the method is
//!   cacheable with a body; a streamed request body (`Body::from_reader`) cannot be
//!   replayed, so the request bypasses the cache; a successful unsafe request (PUT,
//!   POST...) still invalidates what is stored for its URL (RFC 9111 §4.4).
//!
//! ## Background work
//!
//! Under stale-while-revalidate the stale response is returned at once and a thread
//! revalidates it: with the blocking `send` for [`CachedClient::send`], and, for
//! [`CachedClient::send_async`], by driving the async revalidation with
//! `futures_lite::future::block_on` on that thread, so no executor is assumed (isahc
//! does the I/O on its own agent thread either way).
//!
//! Identical concurrent misses are coalesced by the driver: one goes to the origin,
//! the others wait for it, at most [`COALESCE_WAIT`](httpcache_core::driver::COALESCE_WAIT)
//! (10 s; then they go to the origin themselves). A store failure never fails a request.
//!
//! [isahc]: https://docs.rs/isahc/2
//! [`Forward::wants_body`]: httpcache_core::Forward::wants_body
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use httpcache_core as core;
pub use httpcache_core::driver::FinalUrl;
pub use httpcache_core::{CacheRequestExt, CacheStatusExt, DualStore};

mod client;
#[cfg(feature = "lmdb")]
mod default;
mod store;

pub use client::CachedClient;
#[cfg(feature = "lmdb")]
pub use default::{cached_client, cached_client_with};
#[cfg(feature = "lmdb")]
pub use httpcache_lmdb::{DEFAULT_APP_NAME, default_cache_dir};
#[cfg(feature = "fs")]
pub use store::FsStores;
#[cfg(feature = "lmdb")]
pub use store::LmdbStores;
#[cfg(feature = "mem")]
pub use store::MemoryStores;

/// What can go wrong building a cached client (never a request: store failures are
/// traced and the origin's response is returned; requests fail with isahc's errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The system has no user cache directory to put the default store in, or the
    /// application name is not one directory name ([`default_cache_dir`]).
    #[error("no user cache directory on this system, or the application name is not one directory name")]
    NoCacheDir,
    /// The store could not be opened.
    #[error("opening the cache store: {0}")]
    Store(#[from] httpcache_core::StoreError),
    /// isahc could not build its client.
    #[error("building the isahc client: {0}")]
    Client(#[from] isahc::Error),
}

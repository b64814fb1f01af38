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
//! Stale-while-revalidate revalidations run on a thread of their own, which does not
//! keep the process alive: a short-lived program that wants them done (and stored)
//! calls [`CachedClient::wait_for_revalidations`] before it exits, then [`Store::flush`]. A response
//! without `Content-Length` that grows past `max_entry_bytes` is returned as the
//! buffered prefix followed by the rest, read from the original response as the
//! caller reads (on the caller's thread, as every blocking response is read). A body
//! the origin cuts off is not stored: unless a stored response may stand in
//! (`stale-if-error`), the caller reads what came, then the error, as without the cache.

use std::sync::Arc;

use httpcache_core::{Cache, RequestOptions, Settings, Store};
use reqwest::blocking::{Client, Request, Response};

use crate::drive::blocking::run;

/// A caching blocking HTTP client: a [`reqwest::blocking::Client`] in front of which
/// every request goes through an httpcache [`Cache`] over a [`Store`]. Cheap to
/// clone: clones share the client and the cache.
///
/// Give each thread that sends many requests a clone of its own rather than a
/// reference to one client: a request made with [`CachedClient::get`] and the like
/// holds a reference count of the client it was made from, and each clone has its own,
/// so hits from several threads do not wait on each other for it.
#[derive(Debug)]
pub struct CachedClient<S = httpcache_lmdb::LmdbStore> {
    handle: Arc<Handle<S>>,
}

/// What a blocking [`CachedClient`]'s requests take from it.
type Handle<S> = crate::front::Handle<Client, S>;

impl<S> Clone for CachedClient<S> {
    /// A client sharing this one's reqwest client and cache, with a handle of its own.
    fn clone(&self) -> Self {
        CachedClient { handle: self.handle.fork() }
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
        CachedClient { handle: Handle::new(client, Arc::new(Cache::new(store, settings))) }
    }

    request_constructors!();

    /// Sends a request through the cache with default per-request options.
    ///
    /// Options set on an `http::Request` ([`CacheRequestExt`](crate::CacheRequestExt))
    /// before converting it to a `reqwest::blocking::Request` cannot be seen here:
    /// reqwest keeps a request's extensions, where they travel, to itself. Send such a
    /// request with [`CachedClient::execute_http`], or give the options to
    /// [`CachedClient::execute_with`].
    ///
    /// # Errors
    /// reqwest's, when the origin could not be reached and no stale response may stand in.
    pub fn execute(&self, request: Request) -> reqwest::Result<Response> {
        self.execute_with(request, RequestOptions::default())
    }

    /// Sends an `http::Request` through the cache with the per-request options set on
    /// it ([`CacheRequestExt`](crate::CacheRequestExt), which keeps them in its
    /// extensions), converted as `reqwest::blocking::Request::try_from` converts it.
    ///
    /// ```no_run
    /// use httpcache_reqwest::blocking::CachedClient;
    /// use httpcache_reqwest::core::Settings;
    /// use httpcache_reqwest::CacheRequestExt;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = CachedClient::lmdb("/tmp/my-cache", Settings::default())?;
    /// let request = http::Request::get("http://localhost:8080/").body(Vec::new())?.force_refresh();
    /// let response = client.execute_http(request)?;
    /// println!("{}", response.status());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// reqwest's, when it cannot convert the request; else as [`CachedClient::execute`].
    pub fn execute_http<B: Into<reqwest::blocking::Body>>(
        &self,
        request: http::Request<B>,
    ) -> reqwest::Result<Response> {
        let options = RequestOptions::from_extensions(request.extensions());
        self.execute_with(Request::try_from(request)?, options)
    }

    /// Sends a request through the cache with per-request `options`.
    ///
    /// # Errors
    /// As [`CachedClient::execute`].
    pub fn execute_with(&self, request: Request, options: RequestOptions) -> reqwest::Result<Response> {
        run(&self.handle.cache, &self.handle.client, request, options, false)
    }

    /// The blocking reqwest client requests are sent with.
    pub fn inner(&self) -> &Client {
        &self.handle.client
    }

    cache_accessors!(Inventory, handle.cache);

    /// Waits, at most `timeout`, until no stale-while-revalidate revalidation of this
    /// client's cache is running (each runs on a thread of its own, which ends with
    /// the process); returns whether none is. A short-lived program, such as the
    /// `httpcache` command, calls it before exiting, so that serving a stale response
    /// still refreshes it, then calls [`Store::flush`].
    pub fn wait_for_revalidations(&self, timeout: std::time::Duration) -> bool {
        self.cache().wait_for_revalidations(timeout)
    }
}

/// A request on its way through a blocking [`CachedClient`]: reqwest's builder plus
/// the per-request cache controls of [`CacheRequestExt`](crate::CacheRequestExt).
#[derive(Debug)]
pub struct RequestBuilder<S = httpcache_lmdb::LmdbStore> {
    handle: Arc<Handle<S>>,
    inner: reqwest::blocking::RequestBuilder,
    options: RequestOptions,
}

request_builder!(reqwest::blocking::RequestBuilder, reqwest::blocking::Body, Request);

impl<S: Store + 'static> RequestBuilder<S> {
    /// Sends the request through the cache.
    ///
    /// # Errors
    /// reqwest's builder and transport errors.
    pub fn send(self) -> reqwest::Result<Response> {
        // The builder's clone of the reqwest client is the one the handle holds: dropped
        // now, while its shared reference count is still in this core's cache.
        let (_, request) = self.inner.build_split();
        run(&self.handle.cache, &self.handle.client, request?, self.options, true)
    }
}

#[cfg(test)]
mod tests {
    use httpcache_mem::MemoryStore;

    use super::*;

    /// As for the async client: clones share the cache, and a request made from one
    /// clone takes a reference count that no other clone's requests update.
    #[test]
    fn a_clones_requests_count_on_its_own_handle() {
        let a = CachedClient::wrap(Client::new(), MemoryStore::new(1 << 20), Settings::default());
        let b = a.clone();
        assert!(Arc::ptr_eq(a.cache(), b.cache()), "one cache");
        let request = b.get("http://localhost/a");
        assert_eq!((Arc::strong_count(&a.handle), Arc::strong_count(&b.handle)), (1, 2));
        drop(request);
        assert_eq!(Arc::strong_count(&b.handle), 1);
        assert_eq!(Arc::strong_count(a.cache()), 2, "one count per handle, none per request");
    }
}

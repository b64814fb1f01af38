//! niquests-cache's `cached_session()` for isahc: an LMDB cache under the user's cache
//! directory ([`httpcache_lmdb::default_cache_dir`]), [`Settings::session`] (10 minutes).

use httpcache_core::{Settings, StoreError};
use httpcache_lmdb::{DEFAULT_APP_NAME, LmdbStore, default_cache_dir};
use isahc::HttpClient;

use crate::{CachedClient, Error, LmdbStores};

/// A client caching in LMDB under `<user cache dir>/httpcache/`, responses fresh for 10
/// minutes unless their headers say otherwise ([`Settings::session`]), over isahc's
/// default `HttpClient`. See [`cached_client_with`].
///
/// ```no_run
/// use httpcache_isahc::{CacheStatusExt, cached_client};
///
/// let client = cached_client()?;
/// let response = client.get("http://example.com/")?;
/// println!("from cache: {}", response.from_cache());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// When the system has no cache directory, the store cannot be opened, or isahc cannot
/// build its client.
pub fn cached_client() -> Result<CachedClient<LmdbStores>, Error> {
    cached_client_with(DEFAULT_APP_NAME, false)
}

/// Like [`cached_client()`], under [`default_cache_dir`]`(app_name)`. With `no_cache`, a
/// pass-through client with no cache (and no directory created): switch caching off
/// without changing the calling code.
///
/// # Errors
/// As [`cached_client()`].
pub fn cached_client_with(app_name: &str, no_cache: bool) -> Result<CachedClient<LmdbStores>, Error> {
    let client = HttpClient::new()?;
    if no_cache {
        return Ok(CachedClient::uncached(client));
    }
    let dir = default_cache_dir(app_name).ok_or(Error::NoCacheDir)?;
    let store = LmdbStore::open(dir).map_err(StoreError::from)?;
    Ok(CachedClient::wrap(client, LmdbStores::from(store), Settings::session()))
}

//! niquests-cache's `cached_session()` for isahc: an LMDB cache under the user's cache
//! directory, 10 minutes by default.

use std::path::PathBuf;
use std::time::Duration;

use httpcache_core::{Expiry, Settings, StoreError};
use httpcache_lmdb::LmdbStore;
use isahc::HttpClient;

use crate::{CachedClient, Error, LmdbStores};

/// The application name [`cached_client()`] uses for its directory.
pub const DEFAULT_APP_NAME: &str = "httpcache";

/// How long [`cached_client()`] keeps responses fresh when their headers do not say.
pub const DEFAULT_EXPIRE_AFTER: Duration = Duration::from_secs(600);

/// Where the default store of `app_name` lives: `<user cache dir>/<app_name>/` (e.g.
/// `~/.cache/<app_name>` on Linux), or `None` if the system has no cache directory.
pub fn default_cache_dir(app_name: &str) -> Option<PathBuf> {
    dirs::cache_dir().map(|dir| dir.join(app_name))
}

/// A client caching in LMDB under `<user cache dir>/httpcache/`, responses fresh for 10
/// minutes unless their headers say otherwise, over isahc's default `HttpClient`. See
/// [`cached_client_with`].
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

/// Like [`cached_client()`], under `<user cache dir>/<app_name>/`. With `no_cache`, a
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
    let settings =
        Settings { expire_after: Some(Expiry::After(DEFAULT_EXPIRE_AFTER)), ..Settings::default() };
    Ok(CachedClient::wrap(client, LmdbStores::from(store), settings))
}

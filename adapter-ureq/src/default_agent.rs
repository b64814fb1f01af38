//! niquests-cache's `cached_session()` for ureq: an LMDB cache under the user's cache
//! directory ([`httpcache_lmdb::default_cache_dir`]), [`Settings::session`] (10 minutes).

use httpcache_core::{Cache, Settings};
use httpcache_lmdb::{DEFAULT_APP_NAME, LmdbStore, default_cache_dir};
use ureq::Agent;

use crate::{CachedAgent, Error};

/// An agent caching in LMDB under `<user cache dir>/httpcache/`, responses fresh for 10
/// minutes unless their headers say otherwise ([`Settings::session`]). See
/// [`cached_agent_with`].
///
/// ```no_run
/// use httpcache_ureq::{CacheStatusExt, cached_agent};
///
/// let agent = cached_agent()?;
/// let response = agent.get("http://example.com/").call()?;
/// println!("from cache: {}", response.from_cache());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// When the system has no cache directory or the store cannot be opened.
pub fn cached_agent() -> Result<CachedAgent<LmdbStore>, Error> {
    cached_agent_with(DEFAULT_APP_NAME, false)
}

/// Like [`cached_agent()`], under [`default_cache_dir`]`(app_name)`. With `no_cache`, a
/// plain agent with no cache (and no directory created): switch caching off without
/// changing the calling code.
///
/// # Errors
/// As [`cached_agent()`] (never with `no_cache`).
pub fn cached_agent_with(app_name: &str, no_cache: bool) -> Result<CachedAgent<LmdbStore>, Error> {
    if no_cache {
        return Ok(CachedAgent::uncached(Agent::new_with_defaults()));
    }
    let dir = default_cache_dir(app_name).ok_or(Error::NoCacheDir)?;
    let store = LmdbStore::open(dir).map_err(|error| Error::Store(error.into()))?;
    Ok(CachedAgent::new(Cache::new(store, Settings::session())))
}

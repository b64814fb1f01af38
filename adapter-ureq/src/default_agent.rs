//! niquests-cache's `cached_session()` for ureq: an LMDB cache under the user's cache
//! directory, 10 minutes by default.

use std::path::PathBuf;
use std::time::Duration;

use httpcache_core::{Cache, Expiry, Settings};
use httpcache_lmdb::LmdbStore;
use ureq::Agent;

use crate::{CachedAgent, Error};

/// The application name [`cached_agent()`] uses for its directory.
pub const DEFAULT_APP_NAME: &str = "httpcache";

/// How long [`cached_agent()`] keeps responses fresh when they do not say.
pub const DEFAULT_EXPIRE_AFTER: Duration = Duration::from_secs(600);

/// Where the default store of `app_name` lives: `<user cache dir>/<app_name>/`
/// (e.g. `~/.cache/<app_name>` on Linux), or `None` if the system has no cache directory.
pub fn default_cache_dir(app_name: &str) -> Option<PathBuf> {
    dirs::cache_dir().map(|dir| dir.join(app_name))
}

/// An agent caching in LMDB under `<user cache dir>/httpcache/`, responses fresh for 10
/// minutes unless their headers say otherwise. See [`cached_agent_with`].
///
/// ```no_run
/// use httpcache_ureq::{CacheStatusExt, cached_agent};
///
/// let agent = cached_agent()?;
/// let response = agent.get("http://example.com/").call()?;
/// println!("from cache: {}", response.from_cache());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cached_agent() -> Result<CachedAgent<LmdbStore>, Error> {
    cached_agent_with(DEFAULT_APP_NAME, false)
}

/// Like [`cached_agent()`], under `<user cache dir>/<app_name>/`. With `no_cache`, a plain
/// agent with no cache (and no directory created): switch caching off without changing
/// the calling code.
pub fn cached_agent_with(app_name: &str, no_cache: bool) -> Result<CachedAgent<LmdbStore>, Error> {
    if no_cache {
        return Ok(CachedAgent::uncached(Agent::new_with_defaults()));
    }
    let dir = default_cache_dir(app_name).ok_or(Error::NoCacheDir)?;
    let store = LmdbStore::open(dir).map_err(|error| Error::Store(error.into()))?;
    let settings =
        Settings { expire_after: Some(Expiry::After(DEFAULT_EXPIRE_AFTER)), ..Settings::default() };
    Ok(CachedAgent::new(Cache::new(store, settings)))
}

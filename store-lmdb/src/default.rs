//! Where the ready-made clients keep their cache: `<user cache dir>/<app name>/`.

use std::path::{Component, Path, PathBuf};

use httpcache_core::DualStore;

use crate::{AsyncLmdbStore, LmdbError, LmdbStore};

/// The application name of the ready-made clients (the adapters' `cached_client()` /
/// `cached_agent()`): their cache lives in `<user cache dir>/httpcache/`.
pub const DEFAULT_APP_NAME: &str = "httpcache";

/// The cache directory of application `app_name`: `<user cache dir>/<app_name>/`
/// (`~/.cache/<app_name>` on Linux, `~/Library/Caches/<app_name>` on macOS,
/// `%LOCALAPPDATA%\<app_name>` on Windows); `None` where the system has none, and for
/// an `app_name` that is not one directory name (empty, `.`, `..`, a path with a
/// separator or a root), which would put the store in the user cache directory itself
/// or outside it.
///
/// ```
/// use httpcache_lmdb::{DEFAULT_APP_NAME, default_cache_dir};
///
/// if let Some(dir) = default_cache_dir(DEFAULT_APP_NAME) {
///     assert!(dir.ends_with("httpcache"));
/// }
/// assert_eq!(default_cache_dir("../elsewhere"), None);
/// assert_eq!(default_cache_dir(""), None);
/// ```
pub fn default_cache_dir(app_name: &str) -> Option<PathBuf> {
    let mut parts = Path::new(app_name).components();
    let one_name = matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None))
        && !app_name.contains(['/', '\\']);
    one_name.then(dirs::cache_dir).flatten().map(|dir| dir.join(app_name))
}

impl LmdbStore {
    /// Opens (creating it if needed) the store of application `app_name` in
    /// [`default_cache_dir`]`(app_name)`, with the defaults of [`LmdbStore::open`].
    ///
    /// ```no_run
    /// use httpcache_lmdb::{DEFAULT_APP_NAME, LmdbStore};
    ///
    /// let store = LmdbStore::open_default(DEFAULT_APP_NAME)?;
    /// # let _ = store;
    /// # Ok::<(), httpcache_lmdb::LmdbError>(())
    /// ```
    ///
    /// # Errors
    /// [`LmdbError::Io`] (of kind `NotFound`) when the system has no user cache
    /// directory, or `app_name` is not one directory name; otherwise as
    /// [`LmdbStore::open`].
    pub fn open_default(app_name: &str) -> Result<LmdbStore, LmdbError> {
        let Some(dir) = default_cache_dir(app_name) else {
            return Err(LmdbError::Io {
                context: format!("opening the cache of {app_name:?}"),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no user cache directory on this system, or the application name is not one directory name",
                ),
            });
        };
        LmdbStore::open(dir)
    }
}

/// The blocking and async faces of one LMDB environment, for a
/// [`Cache`](httpcache_core::Cache) serving both blocking and async requests.
impl From<LmdbStore> for DualStore<LmdbStore, AsyncLmdbStore> {
    fn from(store: LmdbStore) -> Self {
        DualStore::new(store.clone(), store.into_async())
    }
}

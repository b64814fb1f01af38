//! Per-request cache controls on request builders: [`CacheRequestExt`].

use crate::settings::{Expiry, RequestOptions};

/// Per-request cache controls ([`RequestOptions`]) on a request or request builder.
///
/// Implemented here for `http::request::Builder` and `http::Request<B>`, where the
/// options travel in the request's extensions (as ureq and isahc send them); each
/// adapter implements it for its client's own builders and re-exports it. An
/// implementation gives only [`CacheRequestExt::map_cache_options`].
///
/// `Marker` lets an adapter crate implement this trait for another crate's builder
/// (Rust's orphan rule asks for a type of the implementing crate in the impl): it is
/// that crate's marker type. Calls never name it; it is inferred.
///
/// ```
/// use std::time::Duration;
/// use httpcache_core::{CacheRequestExt, Expiry, RequestOptions};
///
/// let request = http::Request::get("https://example.com/")
///     .expire_after(Expiry::After(Duration::from_secs(60)))
///     .body(())?
///     .refresh();
/// let options = RequestOptions::from_extensions(request.extensions());
/// assert_eq!(options.expire_after, Some(Expiry::After(Duration::from_secs(60))));
/// assert!(options.refresh && !options.only_if_cached);
/// # Ok::<(), http::Error>(())
/// ```
pub trait CacheRequestExt<Marker = ()>: Sized {
    /// Changes this request's [`RequestOptions`] (the defaults if it has none yet).
    fn map_cache_options(self, change: impl FnOnce(&mut RequestOptions)) -> Self;

    /// Replaces this request's [`RequestOptions`].
    fn cache_options(self, options: RequestOptions) -> Self {
        self.map_cache_options(|current| *current = options)
    }

    /// Expiry for this request ([`RequestOptions::expire_after`]): a stored response
    /// older than this is stale, and a new one is stored with it (unless the response's
    /// own headers say otherwise).
    fn expire_after(self, expiry: Expiry) -> Self {
        self.map_cache_options(|options| options.expire_after = Some(expiry))
    }

    /// Never contact the origin: serve what is stored (even stale) or answer 504.
    fn only_if_cached(self) -> Self {
        self.map_cache_options(|options| options.only_if_cached = true)
    }

    /// Revalidate the stored response before using it.
    fn refresh(self) -> Self {
        self.map_cache_options(|options| options.refresh = true)
    }

    /// Skip the cache read, fetch from the origin and overwrite the stored response
    /// (see [`RequestOptions::force_refresh`]: a HEAD's response is not stored).
    fn force_refresh(self) -> Self {
        self.map_cache_options(|options| options.force_refresh = true)
    }
}

impl CacheRequestExt for http::request::Builder {
    fn map_cache_options(mut self, change: impl FnOnce(&mut RequestOptions)) -> Self {
        // `None` only when the builder already holds an error, which `body()` reports.
        if let Some(extensions) = self.extensions_mut() {
            change(extensions.get_or_insert_default::<RequestOptions>());
        }
        self
    }
}

impl<B> CacheRequestExt for http::Request<B> {
    fn map_cache_options(mut self, change: impl FnOnce(&mut RequestOptions)) -> Self {
        change(self.extensions_mut().get_or_insert_default::<RequestOptions>());
        self
    }
}

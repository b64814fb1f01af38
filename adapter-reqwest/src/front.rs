//! The surface the async client, the blocking client and the middleware share, written
//! once: reqwest's async and blocking types have the same methods but no common trait.

use std::sync::Arc;

use httpcache_core::Cache;

/// What a client's requests take from it: the reqwest client `C` and the cache.
///
/// Each clone of a client has a handle of its own, so the reference count a request
/// takes (its builder and its future must own their client) is one that only the
/// threads using that clone update. A count every thread updates is a cache line that
/// moves between cores on every request, about 0.1 µs each time on the 2-core
/// development machine, against 1.3 to 2 µs for a whole memory hit. The cache's count
/// changes only when a client is cloned or dropped; the reqwest client's is also taken
/// by reqwest's builder, once per request (see `request_constructors!`).
#[derive(Debug)]
pub(crate) struct Handle<C, S> {
    pub(crate) client: C,
    pub(crate) cache: Arc<Cache<S>>,
}

impl<C: Clone, S> Handle<C, S> {
    /// A handle of the client and the cache, for one more clone of the client.
    pub(crate) fn new(client: C, cache: Arc<Cache<S>>) -> Arc<Self> {
        Arc::new(Handle { client, cache })
    }

    /// A handle sharing this one's client and cache, with a reference count of its own.
    pub(crate) fn fork(&self) -> Arc<Self> {
        Handle::new(self.client.clone(), self.cache.clone())
    }
}

/// The accessors of a front-end whose cache, an `Arc<Cache<S>>`, is at `self.$path`;
/// `$inventory` is `Inventory` or `AsyncInventory`.
macro_rules! cache_accessors {
    ($inventory:ident, $($path:ident).+) => {
        /// The cache (settings, store, driver).
        pub fn cache(&self) -> &::std::sync::Arc<::httpcache_core::Cache<S>> {
            &self.$($path).+
        }

        /// A snapshot of the settings in force.
        pub fn settings(&self) -> ::std::sync::Arc<::httpcache_core::Settings> {
            self.cache().settings()
        }

        /// Changes the settings at runtime; requests under way keep the old ones.
        pub fn update_settings(&self, change: impl FnOnce(&mut ::httpcache_core::Settings)) {
            self.cache().update_settings(change);
        }

        /// Disables the cache until the returned guard is dropped.
        pub fn disable(&self) -> ::httpcache_core::driver::DisabledGuard<'_, S> {
            self.cache().disable()
        }

        /// Inspects the store: count, list, filter, delete, copy.
        pub fn inventory(&self) -> ::httpcache_core::inventory::$inventory<'_, S> {
            ::httpcache_core::inventory::$inventory::new(self.cache().store())
        }
    };
}

/// A client's request constructors, each returning its `RequestBuilder<S>`; the client
/// holds `handle: Arc<Handle<_, S>>`.
macro_rules! request_constructors {
    () => {
        /// A GET request.
        pub fn get(&self, url: impl ::reqwest::IntoUrl) -> RequestBuilder<S> {
            self.request(::http::Method::GET, url)
        }

        /// A HEAD request.
        pub fn head(&self, url: impl ::reqwest::IntoUrl) -> RequestBuilder<S> {
            self.request(::http::Method::HEAD, url)
        }

        /// A POST request.
        pub fn post(&self, url: impl ::reqwest::IntoUrl) -> RequestBuilder<S> {
            self.request(::http::Method::POST, url)
        }

        /// A PUT request.
        pub fn put(&self, url: impl ::reqwest::IntoUrl) -> RequestBuilder<S> {
            self.request(::http::Method::PUT, url)
        }

        /// A PATCH request.
        pub fn patch(&self, url: impl ::reqwest::IntoUrl) -> RequestBuilder<S> {
            self.request(::http::Method::PATCH, url)
        }

        /// A DELETE request.
        pub fn delete(&self, url: impl ::reqwest::IntoUrl) -> RequestBuilder<S> {
            self.request(::http::Method::DELETE, url)
        }

        /// A request with any method.
        pub fn request(&self, method: ::http::Method, url: impl ::reqwest::IntoUrl) -> RequestBuilder<S> {
            // Two reference counts: this clone's handle, which no other clone updates,
            // and the reqwest client's, in reqwest's builder, which every clone shares.
            // The request's future drops the latter on its first poll, so that its cache
            // line is taken from the other cores once per request, not twice.
            RequestBuilder {
                handle: self.handle.clone(),
                inner: self.handle.client.request(method, url),
                options: ::httpcache_core::RequestOptions::default(),
            }
        }
    };
}

/// A `RequestBuilder<S>` (fields `handle`, `inner`, `options`) over reqwest's
/// `$builder`, building `$request`s with bodies from `$body`: reqwest's builder
/// methods, and the per-request controls of [`CacheRequestExt`](crate::CacheRequestExt).
macro_rules! request_builder {
    ($builder:ty, $body:ty, $request:ty) => {
        impl<S> RequestBuilder<S> {
            /// Adds a header.
            pub fn header<K, V>(self, key: K, value: V) -> Self
            where
                ::http::HeaderName: TryFrom<K>,
                <::http::HeaderName as TryFrom<K>>::Error: Into<::http::Error>,
                ::http::HeaderValue: TryFrom<V>,
                <::http::HeaderValue as TryFrom<V>>::Error: Into<::http::Error>,
            {
                self.map(|inner| inner.header(key, value))
            }

            /// Adds headers.
            pub fn headers(self, headers: ::http::HeaderMap) -> Self {
                self.map(|inner| inner.headers(headers))
            }

            /// Sets the body.
            pub fn body(self, body: impl Into<$body>) -> Self {
                self.map(|inner| inner.body(body))
            }

            /// Sets a timeout for this request.
            pub fn timeout(self, timeout: ::std::time::Duration) -> Self {
                self.map(|inner| inner.timeout(timeout))
            }

            /// HTTP basic authentication.
            pub fn basic_auth(
                self,
                username: impl ::std::fmt::Display,
                password: Option<impl ::std::fmt::Display>,
            ) -> Self {
                self.map(|inner| inner.basic_auth(username, password))
            }

            /// Bearer authentication.
            pub fn bearer_auth(self, token: impl ::std::fmt::Display) -> Self {
                self.map(|inner| inner.bearer_auth(token))
            }

            /// Sets the HTTP version.
            pub fn version(self, version: ::http::Version) -> Self {
                self.map(|inner| inner.version(version))
            }

            #[doc = concat!("Changes the underlying [`", stringify!($builder), "`] (for `query`, `json`, `form`...).")]
            pub fn map(mut self, change: impl FnOnce($builder) -> $builder) -> Self {
                self.inner = change(self.inner);
                self
            }

            /// Builds the request, without this builder's per-request cache options
            /// ([`CacheRequestExt`](crate::CacheRequestExt): `only_if_cached`,
            /// `refresh`...): reqwest keeps a request's extensions, where they would
            /// travel, to itself, so `execute` on the built request uses the defaults.
            /// To keep them, use [`build_with_options`](Self::build_with_options) and
            /// `execute_with`, or call `send`.
            ///
            /// # Errors
            /// reqwest's builder errors (an invalid URL or header).
            pub fn build(self) -> ::reqwest::Result<$request> {
                self.inner.build()
            }

            /// Builds the request, and returns it with this builder's per-request cache
            /// options, for the client's `execute_with`.
            ///
            /// # Errors
            /// reqwest's builder errors (an invalid URL or header).
            pub fn build_with_options(self) -> ::reqwest::Result<($request, ::httpcache_core::RequestOptions)> {
                Ok((self.inner.build()?, self.options))
            }
        }

        impl<S> ::httpcache_core::CacheRequestExt for RequestBuilder<S> {
            fn map_cache_options(
                mut self,
                change: impl FnOnce(&mut ::httpcache_core::RequestOptions),
            ) -> Self {
                change(&mut self.options);
                self
            }
        }
    };
}

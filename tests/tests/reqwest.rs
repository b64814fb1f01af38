//! The scenario suite for the reqwest adapter: the async client, the blocking client
//! and the reqwest-middleware middleware, each over the memory, fs and LMDB stores.

use std::time::Duration;

use httpcache_core::{CacheStatus, RequestOptions, Settings};
use httpcache_reqwest::{CacheMiddleware, CacheRequestExt, CachedClient};
use httpcache_tests::scenarios::{AnyAsyncStore, AnyStore, ClientUnderTest, Fetched, Guard, TestStore};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

async fn fetched(response: reqwest::Response) -> Result<Fetched, String> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let url = response.url().to_string();
    let cache = response.extensions().get::<CacheStatus>().cloned().ok_or("no CacheStatus extension")?;
    let body = response.bytes().await.map_err(|error| format!("reading the body: {error}"))?;
    Ok(Fetched { status, body, headers, cache, url })
}

/// The async client, run on its own multi-threaded runtime.
struct AsyncClient {
    runtime: tokio::runtime::Runtime,
    client: CachedClient<AnyAsyncStore>,
}

impl ClientUnderTest for AsyncClient {
    fn get(&self, url: &str, options: RequestOptions, headers: &[(&str, &str)]) -> Result<Fetched, String> {
        self.runtime.block_on(async {
            let mut request = self.client.get(url).cache_options(options);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            fetched(request.send().await.map_err(|error| format!("{error:?}"))?).await
        })
    }

    fn post(&self, url: &str, body: &[u8]) -> Result<Fetched, String> {
        self.runtime.block_on(async {
            let request = self.client.post(url).body(body.to_vec());
            fetched(request.send().await.map_err(|error| format!("{error:?}"))?).await
        })
    }

    fn update_settings(&self, change: &dyn Fn(&mut Settings)) {
        self.client.update_settings(change);
    }

    fn disable(&self) -> Box<dyn Guard + '_> {
        Box::new(self.client.disable())
    }

    fn wait_for_revalidations(&self, timeout: Duration) -> bool {
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, self.client.revalidations_finished()).await.is_ok()
        })
    }
}

fn async_client(store: &TestStore, settings: Settings) -> Box<dyn ClientUnderTest> {
    let client =
        CachedClient::builder().settings(settings).store(store.asynchronous()).build().expect("client");
    Box::new(AsyncClient { runtime: runtime(), client })
}

/// The blocking client.
struct BlockingClient {
    client: httpcache_reqwest::blocking::CachedClient<AnyStore>,
}

fn fetched_blocking(response: reqwest::blocking::Response) -> Result<Fetched, String> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let url = response.url().to_string();
    let cache = response.extensions().get::<CacheStatus>().cloned().ok_or("no CacheStatus extension")?;
    let body = response.bytes().map_err(|error| format!("reading the body: {error}"))?;
    Ok(Fetched { status, body, headers, cache, url })
}

impl ClientUnderTest for BlockingClient {
    fn get(&self, url: &str, options: RequestOptions, headers: &[(&str, &str)]) -> Result<Fetched, String> {
        let mut request = self.client.get(url).cache_options(options);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        fetched_blocking(request.send().map_err(|error| format!("{error:?}"))?)
    }

    fn post(&self, url: &str, body: &[u8]) -> Result<Fetched, String> {
        let response =
            self.client.post(url).body(body.to_vec()).send().map_err(|error| format!("{error:?}"))?;
        fetched_blocking(response)
    }

    fn update_settings(&self, change: &dyn Fn(&mut Settings)) {
        self.client.update_settings(change);
    }

    fn disable(&self) -> Box<dyn Guard + '_> {
        Box::new(self.client.disable())
    }

    fn wait_for_revalidations(&self, timeout: Duration) -> bool {
        self.client.wait_for_revalidations(timeout)
    }
}

fn blocking_client(store: &TestStore, settings: Settings) -> Box<dyn ClientUnderTest> {
    let client = reqwest::blocking::Client::builder().build().expect("blocking client");
    Box::new(BlockingClient {
        client: httpcache_reqwest::blocking::CachedClient::wrap(client, store.blocking(), settings),
    })
}

/// The middleware in a `reqwest_middleware::ClientWithMiddleware`.
struct MiddlewareClient {
    runtime: tokio::runtime::Runtime,
    client: reqwest_middleware::ClientWithMiddleware,
    cache: CacheMiddleware<AnyAsyncStore>,
}

impl ClientUnderTest for MiddlewareClient {
    fn get(&self, url: &str, options: RequestOptions, headers: &[(&str, &str)]) -> Result<Fetched, String> {
        self.runtime.block_on(async {
            let mut request = self.client.get(url).cache_options(options);
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            fetched(request.send().await.map_err(|error| format!("{error:?}"))?).await
        })
    }

    fn post(&self, url: &str, body: &[u8]) -> Result<Fetched, String> {
        self.runtime.block_on(async {
            let request = self.client.post(url).body(body.to_vec());
            fetched(request.send().await.map_err(|error| format!("{error:?}"))?).await
        })
    }

    fn update_settings(&self, change: &dyn Fn(&mut Settings)) {
        self.cache.update_settings(change);
    }

    fn disable(&self) -> Box<dyn Guard + '_> {
        Box::new(self.cache.disable())
    }

    fn wait_for_revalidations(&self, timeout: Duration) -> bool {
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, self.cache.revalidations_finished()).await.is_ok()
        })
    }
}

fn middleware_client(store: &TestStore, settings: Settings) -> Box<dyn ClientUnderTest> {
    let inner = reqwest::Client::new();
    let cache = CacheMiddleware::new(store.asynchronous(), settings).background_client(inner.clone());
    let client = reqwest_middleware::ClientBuilder::new(inner).with(cache.clone()).build();
    Box::new(MiddlewareClient { runtime: runtime(), client, cache })
}

httpcache_tests::scenario_tests!(reqwest_async, async_client);
httpcache_tests::scenario_tests!(reqwest_blocking, blocking_client);
httpcache_tests::scenario_tests!(reqwest_middleware_stack, middleware_client);

/// The futures of `send` and `execute`: `send`'s can be spawned on a multi-threaded
/// runtime (`Send + 'static`); both answer a miss from the origin, then a hit from the
/// store without asking it again (RFC 9111 §4), through the same cache.
#[test]
fn send_spawns_and_execute_answers_alike() {
    let origin = httpcache_tests::origin::Origin::start();
    let runtime = runtime();
    let client = CachedClient::memory(Settings::default(), 1 << 20);
    let url = origin.url("/max-age/60");
    let status = |response: &reqwest::Response| response.extensions().get::<CacheStatus>().cloned();

    let miss = runtime.block_on(runtime.spawn(client.get(url.as_str()).send())).expect("task").expect("miss");
    assert!(!status(&miss).expect("status").from_cache);
    let request = reqwest::Request::new(reqwest::Method::GET, url.parse().expect("url"));
    let hit = runtime.block_on(client.execute(request)).expect("hit");
    assert!(status(&hit).expect("status").from_cache);
    let hit = runtime.block_on(runtime.spawn(client.get(url.as_str()).send())).expect("task").expect("hit");
    assert!(status(&hit).expect("status").from_cache);
    assert_eq!(origin.hits("/max-age/60"), 1);
}

/// A response passed through as it streams (`no-store`: nothing to store, RFC 9111
/// §5.2.2.5) is reqwest's own response: its extensions (the connection's, which
/// `remote_addr` reads) are kept, and the cache's verdict is added to them and to its
/// headers. The async and the blocking client alike.
#[test]
fn a_passed_through_response_keeps_reqwests_extensions() {
    let origin = httpcache_tests::origin::Origin::start();
    let url = origin.url("/no-store-bytes/16");
    let runtime = runtime();
    let client = CachedClient::memory(Settings::default(), 1 << 20);
    let response = runtime.block_on(client.get(url.as_str()).send()).expect("response");
    assert!(response.remote_addr().is_some(), "reqwest's connection info is kept");
    let status = response.extensions().get::<CacheStatus>().expect("the verdict");
    assert!(!status.from_cache && !status.stored);
    assert!(response.headers().contains_key("cache-status"));
    assert_eq!(runtime.block_on(response.bytes()).expect("body").len(), 16);

    let blocking = httpcache_reqwest::blocking::CachedClient::memory(Settings::default(), 1 << 20)
        .expect("blocking client");
    let response = blocking.get(url.as_str()).send().expect("response");
    assert!(response.remote_addr().is_some(), "reqwest's connection info is kept");
    assert!(!response.extensions().get::<CacheStatus>().expect("the verdict").stored);
    assert!(response.headers().contains_key("cache-status"));
    assert_eq!(origin.hits("/no-store-bytes/16"), 2);
}

/// Options set on an `http::Request` ([`CacheRequestExt`], which keeps them in its
/// extensions) are honoured by `execute_http`, as the ureq and isahc adapters honour
/// them: `only-if-cached` on an empty cache is a 504 without asking the origin (RFC 9111
/// §5.2.1.7), and `force_refresh` goes to the origin although a fresh response is
/// stored. The async and the blocking client alike.
#[test]
fn execute_http_honours_the_options_of_an_http_request() {
    let origin = httpcache_tests::origin::Origin::start();
    let request = |url: &str| http::Request::get(url).body(Vec::<u8>::new()).expect("request");
    let body = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let runtime = runtime();
    let client = CachedClient::memory(Settings::default(), 1 << 20);
    let url = origin.url("/max-age/60");
    let send = |request: http::Request<Vec<u8>>| {
        runtime.block_on(async { client.execute_http(request).await?.bytes().await })
    };
    let status = |request: http::Request<Vec<u8>>| {
        runtime.block_on(client.execute_http(request)).expect("response").status()
    };
    assert_eq!(status(request(&url).only_if_cached()), 504);
    assert_eq!(origin.hits("/max-age/60"), 0, "only-if-cached never asks the origin");
    assert_eq!(body(&send(request(&url)).expect("miss")), "max-age=60 hit 1");
    assert_eq!(body(&send(request(&url)).expect("hit")), "max-age=60 hit 1", "stored and fresh");
    assert_eq!(body(&send(request(&url).force_refresh()).expect("refreshed")), "max-age=60 hit 2");
    assert_eq!(origin.hits("/max-age/60"), 2);

    let client = httpcache_reqwest::blocking::CachedClient::memory(Settings::default(), 1 << 20)
        .expect("blocking client");
    let url = origin.url("/max-age/61");
    let send =
        |request: http::Request<Vec<u8>>| client.execute_http(request).and_then(|response| response.bytes());
    let status = |request: http::Request<Vec<u8>>| client.execute_http(request).expect("response").status();
    assert_eq!(status(request(&url).only_if_cached()), 504);
    assert_eq!(origin.hits("/max-age/61"), 0, "only-if-cached never asks the origin");
    assert_eq!(body(&send(request(&url)).expect("miss")), "max-age=61 hit 1");
    assert_eq!(body(&send(request(&url)).expect("hit")), "max-age=61 hit 1", "stored and fresh");
    assert_eq!(body(&send(request(&url).force_refresh()).expect("refreshed")), "max-age=61 hit 2");
    assert_eq!(origin.hits("/max-age/61"), 2);
}

/// A builder's per-request options survive `build_with_options` into `execute_with`
/// (`build` alone cannot carry them: reqwest keeps a request's extensions private):
/// `only-if-cached` on an empty cache is a 504 without asking the origin (RFC 9111
/// §5.2.1.7). The async and the blocking client alike.
#[test]
fn build_with_options_keeps_the_builders_options() {
    let origin = httpcache_tests::origin::Origin::start();
    let runtime = runtime();
    let client = CachedClient::memory(Settings::default(), 1 << 20);
    let url = origin.url("/max-age/62");
    let (request, options) = client.get(&url).only_if_cached().build_with_options().expect("request");
    assert!(options.only_if_cached);
    let response = runtime.block_on(client.execute_with(request, options)).expect("response");
    assert_eq!(response.status(), 504);

    let client = httpcache_reqwest::blocking::CachedClient::memory(Settings::default(), 1 << 20)
        .expect("blocking client");
    let (request, options) = client.get(&url).only_if_cached().build_with_options().expect("request");
    assert_eq!(client.execute_with(request, options).expect("response").status(), 504);
    assert_eq!(origin.hits("/max-age/62"), 0, "only-if-cached never asks the origin");
}

/// RFC 9111 §4.4: a POST redirected with a 307 is sent again, as a POST, to the
/// redirect's target (RFC 9110 §15.4.8); its success there invalidates the GET stored for
/// that target, as a POST sent there directly does. The cache sees only the final
/// response, and that response's URL. Each store.
#[test]
fn a_post_redirected_with_307_invalidates_the_target() {
    use httpcache_tests::scenarios::{Setup, StoreKind};
    for kind in [StoreKind::Memory, StoreKind::Fs, StoreKind::Lmdb] {
        let setup = Setup::new(async_client, kind, Settings::default());
        setup.get("/redirect-target");
        assert!(setup.get("/redirect-target").cache.from_cache, "{kind:?}: stored");
        let posted = setup.client.post(&setup.origin.url("/redirect/307/1"), b"form=1").expect("POST");
        assert_eq!(posted.status, 200);
        assert_eq!(setup.origin.hits("/redirect-target"), 2, "{kind:?}: the POST reached the target");
        let after = setup.get("/redirect-target");
        assert!(!after.cache.from_cache, "{kind:?}: the stored GET was invalidated");
        assert_eq!(after.text(), "redirect target hit 3");
    }
}

/// RFC 9111 §4.4: a PUT whose body is a reader (which cannot be replayed, so the cache
/// is bypassed) still invalidates the GET stored for its URL when it succeeds.
#[test]
fn a_put_with_a_streamed_body_invalidates_the_stored_get() {
    let origin = httpcache_tests::origin::Origin::start();
    let url = origin.url("/max-age/60");
    let client = httpcache_reqwest::blocking::CachedClient::memory(Settings::default(), 1 << 20)
        .expect("blocking client");
    let from_cache = |response: &reqwest::blocking::Response| {
        response.extensions().get::<CacheStatus>().expect("status").from_cache
    };
    client.get(url.as_str()).send().expect("miss");
    assert!(from_cache(&client.get(url.as_str()).send().expect("hit")));
    let body = reqwest::blocking::Body::new(std::io::Cursor::new(b"uploaded".to_vec()));
    let put = client.put(url.as_str()).body(body).send().expect("PUT");
    assert_eq!(put.status(), 200);
    let after = client.get(url.as_str()).send().expect("GET");
    assert!(!from_cache(&after), "the stored GET was invalidated");
    assert_eq!(after.text().expect("body"), "max-age=60 hit 3");
}

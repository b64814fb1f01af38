//! The isahc adapter: the whole scenario suite over every store, once through the
//! blocking `send` and once through `send_async`, then what is particular to isahc
//! (its effective URI, streamed request bodies, one cache for both faces, the default
//! client's `no_cache` switch).

use std::time::Duration;

use httpcache_core::settings::StaleAllowance;
use httpcache_core::{Expiry, Reason, RequestOptions, Settings};
use httpcache_isahc::{CacheRequestExt, CacheStatusExt, CachedClient, DualStore, MemoryStores};
use httpcache_mem::MemoryStore;
use httpcache_tests::origin::{Origin, expected_bytes};
use httpcache_tests::scenarios::{AnyAsyncStore, AnyStore, ClientUnderTest, Fetched, Guard, TestStore};
use isahc::config::{Configurable, RedirectPolicy};
use isahc::{AsyncReadResponseExt, Body, HttpClient, ReadResponseExt, Request, ResponseExt};

type Client = CachedClient<DualStore<AnyStore, AnyAsyncStore>>;

/// isahc as the scenarios expect it: following redirects, with a timeout.
fn isahc_client() -> HttpClient {
    HttpClient::builder()
        .redirect_policy(RedirectPolicy::Follow)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an isahc client")
}

fn client_over(store: &TestStore, settings: Settings) -> Client {
    let store = DualStore::new(store.blocking(), store.asynchronous());
    CachedClient::wrap(isahc_client(), store, settings)
}

fn fetched<B>(response: &http::Response<B>, body: Vec<u8>) -> Result<Fetched, String> {
    let cache = response.cache_status().cloned().ok_or("no CacheStatus on the response")?;
    Ok(Fetched {
        status: response.status().as_u16(),
        body: body.into(),
        headers: response.headers().clone(),
        cache,
        url: response.final_url().unwrap_or_default().to_owned(),
    })
}

fn get_request(url: &str, options: RequestOptions, headers: &[(&str, &str)]) -> Result<Request<()>, String> {
    let mut request = Request::get(url).cache_options(options);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).map_err(|error| error.to_string())
}

/// The blocking face: `CachedClient::send`.
struct Blocking(Client);

impl ClientUnderTest for Blocking {
    fn get(&self, url: &str, options: RequestOptions, headers: &[(&str, &str)]) -> Result<Fetched, String> {
        let mut response =
            self.0.send(get_request(url, options, headers)?).map_err(|error| error.to_string())?;
        let body = response.bytes().map_err(|error| error.to_string())?;
        fetched(&response, body)
    }

    fn post(&self, url: &str, body: &[u8]) -> Result<Fetched, String> {
        let request = Request::post(url).body(body.to_vec()).map_err(|error| error.to_string())?;
        let mut response = self.0.send(request).map_err(|error| error.to_string())?;
        let body = response.bytes().map_err(|error| error.to_string())?;
        fetched(&response, body)
    }

    fn update_settings(&self, change: &dyn Fn(&mut Settings)) {
        self.0.update_settings(change);
    }

    fn disable(&self) -> Box<dyn Guard + '_> {
        Box::new(self.0.disable())
    }

    fn wait_for_revalidations(&self, timeout: Duration) -> bool {
        self.0.wait_for_revalidations(timeout)
    }
}

/// The async face: `CachedClient::send_async`, driven by a minimal executor (isahc does
/// the I/O on its own thread; background revalidations run on threads of their own).
struct Async(Client);

impl ClientUnderTest for Async {
    fn get(&self, url: &str, options: RequestOptions, headers: &[(&str, &str)]) -> Result<Fetched, String> {
        let request = get_request(url, options, headers)?;
        futures_lite::future::block_on(async {
            let mut response = self.0.send_async(request).await.map_err(|error| error.to_string())?;
            let body = response.bytes().await.map_err(|error| error.to_string())?;
            fetched(&response, body)
        })
    }

    fn post(&self, url: &str, body: &[u8]) -> Result<Fetched, String> {
        let request = Request::post(url).body(body.to_vec()).map_err(|error| error.to_string())?;
        futures_lite::future::block_on(async {
            let mut response = self.0.send_async(request).await.map_err(|error| error.to_string())?;
            let body = response.bytes().await.map_err(|error| error.to_string())?;
            fetched(&response, body)
        })
    }

    fn update_settings(&self, change: &dyn Fn(&mut Settings)) {
        self.0.update_settings(change);
    }

    fn disable(&self) -> Box<dyn Guard + '_> {
        Box::new(self.0.disable())
    }

    /// The async form, `revalidations_finished`, awaited on a thread of its own and
    /// bounded by a channel's timeout (futures-lite has no timer).
    fn wait_for_revalidations(&self, timeout: Duration) -> bool {
        let (done, finished) = std::sync::mpsc::channel();
        let client = self.0.clone();
        std::thread::spawn(move || {
            futures_lite::future::block_on(client.revalidations_finished());
            let _ = done.send(());
        });
        finished.recv_timeout(timeout).is_ok()
    }
}

fn blocking_client(store: &TestStore, settings: Settings) -> Box<dyn ClientUnderTest> {
    Box::new(Blocking(client_over(store, settings)))
}

fn async_client(store: &TestStore, settings: Settings) -> Box<dyn ClientUnderTest> {
    Box::new(Async(client_over(store, settings)))
}

httpcache_tests::scenario_tests!(isahc_blocking, blocking_client);
httpcache_tests::scenario_tests!(isahc_async, async_client);

fn memory_client(settings: Settings) -> CachedClient<MemoryStores> {
    CachedClient::wrap(isahc_client(), MemoryStores::from(MemoryStore::new(16 << 20)), settings)
}

/// isahc's effective URI is kept on responses built from the origin's; on a hit it is
/// unknown to isahc, and `final_url` says where the redirects ended.
#[test]
fn effective_uri_and_final_url() {
    let origin = Origin::start();
    let client = memory_client(Settings::default());
    let (asked, target) = (origin.url("/redirect/302/1"), origin.url("/redirect-target"));
    let mut miss = client.get(asked.as_str()).expect("a response");
    assert_eq!(miss.effective_uri().map(ToString::to_string), Some(target.clone()));
    assert_eq!(miss.final_url(), Some(target.as_str()));
    assert_eq!(miss.bytes().expect("body"), b"redirect target hit 1");
    let hit = client.get(asked.as_str()).expect("a response");
    assert!(hit.from_cache());
    assert_eq!(hit.effective_uri(), None, "isahc's extension cannot be made by hand");
    assert_eq!(hit.final_url(), Some(target.as_str()));
    // Without following redirects (isahc's default), the 302 passes through unstored.
    let plain = CachedClient::wrap(
        HttpClient::new().expect("isahc"),
        MemoryStores::from(MemoryStore::new(1 << 20)),
        Settings::default(),
    );
    let redirect = plain.get(asked.as_str()).expect("a response");
    assert_eq!(redirect.status(), 302);
    assert!(!redirect.cache_status().expect("status").stored);
}

/// A streamed request body cannot be replayed: the request bypasses the cache, and the
/// body still reaches the origin.
#[test]
fn streamed_request_body_bypasses_the_cache() {
    let origin = Origin::start();
    let client = memory_client(Settings {
        allowable_methods: vec![http::Method::GET, http::Method::POST],
        ..Settings::default()
    });
    let url = origin.url("/max-age/60");
    let request = Request::post(url.as_str()).body(Body::from_reader(&b"streamed"[..])).expect("request");
    let response = client.send(request).expect("a response");
    assert_eq!(response.status(), 200);
    let status = response.cache_status().expect("status");
    assert_eq!(status.reason, Reason::BodyNotReplayable);
    assert!(!status.stored && status.cache_key.is_none());
    assert!(response.headers().get("cache-status").is_some());
    // The same body in memory is keyed and stored.
    let keyed =
        client.send(Request::post(url.as_str()).body("in memory").expect("request")).expect("response");
    assert!(keyed.cache_status().expect("status").stored, "{:?}", keyed.cache_status());
    let again =
        client.send(Request::post(url.as_str()).body("in memory").expect("request")).expect("response");
    assert!(again.from_cache());
}

/// `only_if_cached` never contacts the origin, not even for a streamed body that
/// bypasses the cache: the request is answered 504 (RFC 9111 §5.2.1.7) and its body is
/// never sent.
#[test]
fn only_if_cached_with_a_streamed_body_never_reaches_the_origin() {
    let origin = Origin::start();
    let client = memory_client(Settings::default());
    let url = origin.url("/max-age/60");
    let request = Request::post(url.as_str())
        .only_if_cached()
        .body(Body::from_reader(&b"streamed"[..]))
        .expect("request");
    let response = client.send(request).expect("a response");
    assert_eq!(response.status(), 504);
    assert_eq!(response.cache_status().expect("status").reason, Reason::OnlyIfCachedMiss);
    assert_eq!(origin.hits("/max-age/60"), 0);
}

/// One cache behind both faces: what `send_async` stored, `send` serves, and back.
#[test]
fn blocking_and_async_share_one_cache() {
    let origin = Origin::start();
    let store = TestStore::new(httpcache_tests::scenarios::StoreKind::Lmdb);
    let client = client_over(&store, Settings::default());
    let url = origin.url("/max-age/60");
    let mut stored = futures_lite::future::block_on(client.get_async(url.as_str())).expect("a response");
    assert!(stored.cache_status().expect("status").stored);
    let body = futures_lite::future::block_on(stored.bytes()).expect("body");
    let mut hit = client.get(url.as_str()).expect("a response");
    assert!(hit.from_cache());
    assert_eq!(hit.bytes().expect("body"), body);
    let head = futures_lite::future::block_on(client.head_async(url.as_str())).expect("a response");
    assert!(head.from_cache());
    assert_eq!(origin.hits("/max-age/60"), 1);
    assert_eq!(client.inventory().expect("inventory").count().expect("count"), 1);
    let count = futures_lite::future::block_on(client.async_inventory().expect("inventory").count());
    assert_eq!(count.expect("count"), 1);
}

/// `send_async`'s future can move between threads (any executor, including multi-threaded ones).
#[test]
fn send_async_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = memory_client(Settings::default());
    let future = client.send_async(Request::get("http://127.0.0.1:9/").body(()).expect("request"));
    assert_send(&future);
}

/// A large response without Content-Length, through the async face: the buffered prefix
/// and the rest arrive whole; nothing is stored; isahc's extensions are kept.
#[test]
fn large_async_stream_passes_through() {
    let origin = Origin::start();
    let client = memory_client(Settings { max_entry_bytes: 10_000, ..Settings::default() });
    let url = origin.url("/stream/100000");
    let mut response = futures_lite::future::block_on(client.get_async(url.as_str())).expect("a response");
    assert_eq!(response.effective_uri().map(ToString::to_string), Some(url.clone()));
    let body = futures_lite::future::block_on(response.bytes()).expect("body");
    assert!(body == expected_bytes(100_000));
    let status = response.cache_status().expect("status");
    assert!(!status.stored && !status.from_cache);
    assert_eq!(client.inventory().expect("inventory").count().expect("count"), 0);
}

/// stale-while-revalidate through `send_async`: the background revalidation runs without
/// any executor running between calls.
#[test]
fn async_background_revalidation_needs_no_executor() {
    let origin = Origin::start();
    let client = memory_client(Settings {
        stale_while_revalidate: StaleAllowance::Always,
        cache_control: false,
        expire_after: Some(Expiry::Immediately),
        ..Settings::default()
    });
    let url = origin.url("/max-age/60");
    futures_lite::future::block_on(client.get_async(url.as_str())).expect("a response");
    let stale = futures_lite::future::block_on(client.get_async(url.as_str())).expect("a response");
    assert!(stale.is_stale() && stale.from_cache());
    assert!(httpcache_tests::scenarios::eventually(|| origin.hits("/max-age/60") == 2));
    let landed = httpcache_tests::scenarios::eventually(|| {
        let inventory = client.inventory().expect("inventory");
        inventory
            .values()
            .expect("entries")
            .iter()
            .any(|entry| entry.response.body.as_ref() == b"max-age=60 hit 2")
    });
    assert!(landed, "the background revalidation was stored");
}

/// The `no_cache` switch gives a pass-through client whose responses still say so.
#[test]
fn no_cache_switch_gives_a_plain_client() {
    let origin = Origin::start();
    let client = httpcache_isahc::cached_client_with("httpcache-isahc-test", true).expect("a client");
    assert!(client.cache().is_none() && client.inventory().is_none() && client.disable().is_none());
    let url = origin.url("/max-age/60");
    for _ in 0..2 {
        let response = client.get(url.as_str()).expect("a response");
        assert!(!response.from_cache());
        assert_eq!(response.cache_status().expect("status").reason, Reason::Disabled);
        assert_eq!(response.final_url(), Some(url.as_str()));
    }
    assert_eq!(origin.hits("/max-age/60"), 2);
    let dir = httpcache_isahc::default_cache_dir("httpcache-isahc-test");
    assert!(dir.is_none_or(|dir| dir.ends_with("httpcache-isahc-test")));
}

/// Per-request options on an `http::Request`: only-if-cached answers 504 on a miss
/// without asking the origin.
#[test]
fn only_if_cached_on_a_request() {
    let origin = Origin::start();
    let client = memory_client(Settings::default());
    let request = Request::get(origin.url("/max-age/60")).body(()).expect("request").only_if_cached();
    let response = client.send(request).expect("a response");
    assert_eq!(response.status(), 504);
    assert_eq!(origin.total_hits(), 0);
}

/// RFC 9111 §3.2 (a cache that decodes a content coding as it receives a response must
/// keep the stored metadata consistent with what it stored), RFC 9110 §8.4, §8.6: with
/// isahc's automatic decompression (its default), libcurl asks for and decodes gzip, but
/// isahc leaves `Content-Encoding: gzip` and the coded `Content-Length` (69) on a body
/// of 46 decoded bytes. Stored so, every other reader of the store (the reqwest and
/// ureq adapters over a shared LMDB or fs store, the CLI) would serve headers that do
/// not describe the body. The adapter now describes the decoded body, on the miss, on
/// the hit, and after a 304 that says `Content-Encoding: gzip` again.
#[test]
fn a_stored_gzip_response_is_described_by_its_headers() {
    use httpcache_core::Store;
    let origin = Origin::start();
    let client = memory_client(Settings::default());
    let text = httpcache_tests::origin::GZIP_TEXT.as_bytes();
    let described = |response: &http::Response<Body>, why: &str| {
        let headers = response.headers();
        assert_eq!(headers.get("content-encoding"), None, "{why}: {headers:?}");
        assert_eq!(headers["content-length"], text.len().to_string().as_str(), "{why}: {headers:?}");
    };
    let mut miss = client.get(origin.url("/gzip")).expect("a response");
    described(&miss, "the miss");
    assert_eq!(miss.bytes().expect("a body"), text, "isahc decodes");
    let key = miss.cache_status().and_then(|status| status.cache_key).expect("a key");
    let stored_entry = || {
        let stored = client.cache().expect("cached").store().get(&key).expect("a read");
        stored.into_iter().next().expect("stored")
    };
    let entry = stored_entry();
    assert_eq!(entry.response.body, text);
    assert_eq!(entry.response.headers.get("content-encoding"), None);
    assert_eq!(entry.response.headers["content-length"], text.len().to_string().as_str());

    let mut hit = client.get(origin.url("/gzip")).expect("a response");
    assert!(hit.cache_status().is_some_and(|status| status.from_cache));
    described(&hit, "the hit");
    assert_eq!(hit.bytes().expect("a body"), text);

    // A revalidation: the origin's 304 says `Content-Encoding: gzip`; the decoded body
    // stays described as decoded.
    let request = Request::get(origin.url("/gzip")).refresh().body(()).expect("a request");
    let mut revalidated = client.send(request).expect("a response");
    assert!(
        revalidated.cache_status().is_some_and(|status| status.revalidated),
        "{:?}",
        revalidated.cache_status()
    );
    described(&revalidated, "the revalidated response");
    assert_eq!(revalidated.bytes().expect("a body"), text);
    assert_eq!(stored_entry().response.headers.get("content-encoding"), None);
}

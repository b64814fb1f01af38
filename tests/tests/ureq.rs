//! The ureq adapter: the whole scenario suite over every store, then what is particular
//! to ureq (its error statuses, the middleware used by hand, the default agent).

use std::sync::Arc;
use std::time::Duration;

use httpcache_core::settings::StaleAllowance;
use httpcache_core::{Cache, Expiry, RequestOptions, Settings};
use httpcache_mem::MemoryStore;
use httpcache_tests::origin::Origin;
use httpcache_tests::scenarios::{AnyStore, ClientUnderTest, Fetched, Guard, TestStore};
use httpcache_ureq::{CacheMiddleware, CacheRequestExt, CacheStatusExt, CachedAgent};
use ureq::config::Config;
use ureq::{Agent, ResponseExt};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

/// The client the scenarios drive: statuses come back as responses, as the suite expects.
struct UreqClient {
    agent: CachedAgent<AnyStore>,
}

impl UreqClient {
    fn cache(&self) -> &Arc<Cache<AnyStore>> {
        self.agent.cache().expect("a cached agent")
    }
}

fn fetched(result: Result<http::Response<ureq::Body>, ureq::Error>) -> Result<Fetched, String> {
    let mut response = result.map_err(|error| error.to_string())?;
    let body = response.body_mut().read_to_vec().map_err(|error| error.to_string())?;
    let cache = response.cache_status().cloned().ok_or("no CacheStatus on the response")?;
    Ok(Fetched {
        status: response.status().as_u16(),
        body: body.into(),
        headers: response.headers().clone(),
        cache,
        url: response.final_url().unwrap_or_default().to_owned(),
    })
}

impl ClientUnderTest for UreqClient {
    fn get(&self, url: &str, options: RequestOptions, headers: &[(&str, &str)]) -> Result<Fetched, String> {
        let mut request = self.agent.get(url).cache_options(options);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        fetched(request.call())
    }

    fn post(&self, url: &str, body: &[u8]) -> Result<Fetched, String> {
        fetched(self.agent.post(url).send(body))
    }

    fn update_settings(&self, change: &dyn Fn(&mut Settings)) {
        self.cache().update_settings(change);
    }

    fn disable(&self) -> Box<dyn Guard + '_> {
        Box::new(self.cache().disable())
    }

    fn wait_for_revalidations(&self, timeout: Duration) -> bool {
        self.agent.wait_for_revalidations(timeout)
    }
}

fn new_client(store: &TestStore, settings: Settings) -> Box<dyn ClientUnderTest> {
    let cache = Cache::new(store.blocking(), settings);
    let agent =
        CachedAgent::with_config(cache, |config| config.http_status_as_error(false).timeout_global(TIMEOUT));
    Box::new(UreqClient { agent })
}

httpcache_tests::scenario_tests!(ureq_adapter, new_client);

fn memory_cache(settings: Settings) -> Cache<MemoryStore> {
    Cache::new(MemoryStore::new(16 << 20), settings)
}

fn status_of(result: Result<http::Response<ureq::Body>, ureq::Error>) -> Result<u16, u16> {
    match result {
        Ok(response) => Ok(response.status().as_u16()),
        Err(ureq::Error::StatusCode(code)) => Err(code),
        Err(other) => panic!("unexpected error: {other}"),
    }
}

/// With ureq's default `http_status_as_error`, a cached 404 is an `Err(StatusCode(404))`
/// exactly like the origin's; with it off, both are responses.
#[test]
fn error_statuses_come_back_as_ureq_makes_them() {
    let origin = Origin::start();
    let settings = Settings {
        allowable_codes: vec![http::StatusCode::OK, http::StatusCode::NOT_FOUND],
        expire_after: Some(Expiry::After(Duration::from_secs(60))),
        ..Settings::default()
    };
    let agent =
        CachedAgent::with_config(memory_cache(settings.clone()), |config| config.timeout_global(TIMEOUT));
    let url = origin.url("/status/404");
    assert_eq!(status_of(agent.get(&url).call()), Err(404));
    assert_eq!(status_of(agent.get(&url).call()), Err(404), "the hit is an error too");
    assert_eq!(origin.hits("/status/404"), 1, "the 404 was stored and served");
    // only-if-cached on a miss: a 504, an error like any other.
    assert_eq!(status_of(agent.get(origin.url("/max-age/60")).only_if_cached().call()), Err(504));

    let lenient = CachedAgent::with_config(memory_cache(settings), |config| {
        config.http_status_as_error(false).timeout_global(TIMEOUT)
    });
    assert_eq!(status_of(lenient.get(&url).call()), Ok(404));
    let hit = lenient.get(&url).call().expect("a response");
    assert_eq!(hit.status(), 404);
    assert!(hit.from_cache());
    assert_eq!(origin.hits("/status/404"), 2);
}

/// stale-if-error on a 500 works with ureq's default `http_status_as_error` too.
#[test]
fn stale_if_error_with_status_errors_on() {
    let origin = Origin::start();
    let agent =
        CachedAgent::with_config(memory_cache(Settings::default()), |config| config.timeout_global(TIMEOUT));
    let url = origin.url("/stale-if-error");
    agent.get(&url).call().expect("the first response");
    origin.set_failing("/stale-if-error", true);
    let mut stale = agent.get(&url).expire_after(Expiry::Immediately).call().expect("a stale response");
    assert!(stale.from_cache() && stale.is_stale());
    assert_eq!(stale.body_mut().read_to_string().expect("body"), "stale-if-error hit 1");
    // ureq's own URI extension survives: the stale response was built from the origin's 500.
    assert_eq!(stale.get_uri().to_string(), url);
    // Without stale-if-error the 500 is ureq's error.
    origin.set_failing("/max-age/60", true);
    assert_eq!(status_of(agent.get(origin.url("/max-age/60")).call()), Err(503));
}

/// The middleware by hand, on an agent that still turns statuses into errors: a 5xx error
/// goes through stale-if-error; without a sender, stale-while-revalidate serves the stale
/// response and skips the background revalidation.
#[test]
fn middleware_by_hand() {
    let origin = Origin::start();
    let settings = Settings { stale_if_error: StaleAllowance::Always, ..Settings::default() };
    let cache = Arc::new(memory_cache(settings));
    let agent: Agent = Config::builder()
        .timeout_global(TIMEOUT)
        .middleware(CacheMiddleware::new(cache.clone()))
        .build()
        .into();
    let url = origin.url("/max-age/60");
    let mut first = agent.get(&url).call().expect("a response");
    assert!(!first.from_cache());
    assert_eq!(first.get_uri().to_string(), url, "ureq's URI on an origin response");
    assert_eq!(first.body_mut().read_to_string().expect("body"), "max-age=60 hit 1");
    origin.set_failing("/max-age/60", true);
    let stale = agent.get(&url).expire_after(Expiry::Immediately).call().expect("a stale response");
    assert!(stale.is_stale());
    assert_eq!(stale.final_url(), Some(url.as_str()));

    // Stale by the settings (a per-request expiry asks for a synchronous revalidation).
    cache.update_settings(|settings| {
        settings.stale_while_revalidate = StaleAllowance::Always;
        settings.stale_if_error = StaleAllowance::Off;
        settings.cache_control = false;
        settings.expire_after = Some(Expiry::Immediately);
    });
    let swr = origin.url("/max-age/61");
    agent.get(&swr).call().expect("a response");
    let served = agent.get(&swr).call().expect("a stale response");
    assert!(served.is_stale() && served.from_cache(), "{:?}", served.cache_status());
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(origin.hits("/max-age/61"), 1, "no background revalidation without a sender");
}

/// The same through a sender: the background revalidation lands.
#[test]
fn background_revalidation_through_the_sender() {
    let origin = Origin::start();
    let settings = Settings {
        stale_while_revalidate: StaleAllowance::Always,
        cache_control: false,
        expire_after: Some(Expiry::Immediately),
        ..Settings::default()
    };
    let cache = Arc::new(memory_cache(settings));
    let sender: Agent = Config::builder().http_status_as_error(false).timeout_global(TIMEOUT).build().into();
    let middleware = CacheMiddleware::new(cache.clone()).status_as_error(false).sender(sender);
    let agent: Agent = Config::builder()
        .http_status_as_error(false)
        .timeout_global(TIMEOUT)
        .middleware(middleware)
        .build()
        .into();
    let url = origin.url("/max-age/60");
    agent.get(&url).call().expect("a response");
    let stale = agent.get(&url).call().expect("a stale response");
    assert!(stale.is_stale());
    let landed = httpcache_tests::scenarios::eventually(|| {
        let entries = httpcache_core::inventory::Inventory::new(cache.store()).values().expect("entries");
        entries.iter().any(|entry| entry.response.body.as_ref() == b"max-age=60 hit 2")
    });
    assert!(landed, "the background revalidation was stored");
    assert_eq!(origin.hits("/max-age/60"), 2);
}

/// A `CachedAgent` with ureq's default `http_status_as_error(true)`: its callers get a
/// 404 as an error, but the 404 its sender fetches in the background reaches the cache
/// and is stored (allowed here), not dropped as an error.
#[test]
fn background_revalidation_stores_an_error_status() {
    let origin = Origin::start();
    let settings = Settings {
        allowable_codes: vec![http::StatusCode::OK, http::StatusCode::NOT_FOUND],
        stale_while_revalidate: StaleAllowance::Always,
        cache_control: false,
        expire_after: Some(Expiry::Immediately),
        ..Settings::default()
    };
    let cached = CachedAgent::with_config(memory_cache(settings), |config| config.timeout_global(TIMEOUT));
    let stored_at = || {
        let entries = cached.inventory().expect("an inventory").values().expect("entries");
        entries.iter().map(|entry| entry.response_time).max()
    };
    let url = origin.url("/status/404");
    assert_eq!(status_of(cached.get(&url).call()), Err(404));
    let first = stored_at().expect("the 404 was stored");
    assert_eq!(status_of(cached.get(&url).call()), Err(404), "the stale 404");
    let landed = httpcache_tests::scenarios::eventually(|| stored_at() > Some(first));
    assert!(landed, "the background revalidation's 404 was stored");
    assert_eq!(origin.hits("/status/404"), 2);
}

/// A large response passes through streamed, whole, and is not stored; ureq's URI works on it.
#[test]
fn large_stream_passes_through() {
    let origin = Origin::start();
    let settings = Settings { max_entry_bytes: 10_000, ..Settings::default() };
    let agent = CachedAgent::with_config(memory_cache(settings), |config| config.timeout_global(TIMEOUT));
    let url = origin.url("/stream/100000");
    let mut response = agent.get(&url).call().expect("a response");
    assert_eq!(response.get_uri().to_string(), url);
    let body = response.body_mut().with_config().limit(1 << 20).read_to_vec().expect("body");
    assert_eq!(body, httpcache_tests::origin::expected_bytes(100_000));
    let status = response.cache_status().expect("a CacheStatus");
    assert!(!status.stored && !status.from_cache);
    assert!(response.headers().contains_key("cache-status"));
    assert_eq!(agent.inventory().expect("an inventory").count().expect("count"), 0);
}

/// Per-request options also travel on an `http::Request` sent with `Agent::run`.
#[test]
fn options_on_http_requests() {
    let origin = Origin::start();
    let agent =
        CachedAgent::with_config(memory_cache(Settings::default()), |config| config.timeout_global(TIMEOUT));
    let request = http::Request::get(origin.url("/max-age/60")).body(()).expect("request").only_if_cached();
    assert_eq!(status_of(agent.run(request)), Err(504));
    assert_eq!(origin.total_hits(), 0);
}

#[test]
fn no_cache_switch_gives_a_plain_agent() {
    let agent = httpcache_ureq::cached_agent_with("httpcache-ureq-test", true).expect("an agent");
    assert!(agent.cache().is_none());
    let dir = httpcache_ureq::default_cache_dir("httpcache-ureq-test");
    assert!(dir.is_none_or(|dir| dir.ends_with("httpcache-ureq-test")));
}

/// With POST cached by choice, its body is part of the key: read, then sent with a
/// `Content-Length`; a body larger than `max_entry_bytes` bypasses the cache, streamed.
#[test]
fn post_bodies_when_post_is_cached() {
    let origin = Origin::start();
    let settings = Settings {
        allowable_methods: vec![http::Method::GET, http::Method::HEAD, http::Method::POST],
        max_entry_bytes: 1_000,
        ..Settings::default()
    };
    let agent = CachedAgent::with_config(memory_cache(settings), |config| config.timeout_global(TIMEOUT));
    let url = origin.url("/max-age/60");
    let small = agent.post(&url).send(&b"a=1"[..]).expect("a response");
    assert_eq!(small.status(), 200);
    let sent = origin.last_request_headers("/max-age/60").unwrap_or_default();
    assert_eq!(sent.get("content-length").map(|v| v.as_bytes()), Some(&b"3"[..]));
    let large = vec![b'x'; 5_000];
    let bypassed = agent.post(&url).send(&large[..]).expect("a response");
    let status = bypassed.cache_status().expect("a CacheStatus");
    assert_eq!(status.reason, httpcache_core::Reason::BodyNotReplayable);
    assert!(!status.stored);
    assert_eq!(origin.hits("/max-age/60"), 2, "both bodies reached the origin");
}

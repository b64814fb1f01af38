//! Failures and cancellation around the adapters (mostly the async ones): an origin whose body stalls
//! half-way, a leading request dropped while its body is buffered, and what the
//! requests coalesced behind it get.

use std::time::Duration;

use httpcache_core::{AsyncStore, Inline, Settings};
use httpcache_mem::MemoryStore;
use httpcache_tests::origin::Origin;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Waits (up to 5 s) until `origin` has seen `hits` requests to `route`.
async fn until_hits(origin: &Origin, route: &str, hits: usize) {
    for _ in 0..500 {
        if origin.hits(route) >= hits {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{route} never got {hits} requests (got {})", origin.hits(route));
}

type MemStore = Inline<MemoryStore>;

fn reqwest_client(store: MemStore) -> httpcache_reqwest::CachedClient<MemStore> {
    httpcache_reqwest::CachedClient::builder()
        .settings(Settings::default())
        .store(store)
        .build()
        .expect("client")
}

// The blocking reqwest client keeps the same promise (the crate docs: a follower waits
// at most COALESCE_WAIT or the request's own timeout if shorter): a follower with a
// 300 ms timeout behind a leader whose body stalls ends long before COALESCE_WAIT.
#[test]
fn reqwest_blocking_a_follower_waits_at_most_its_own_timeout_behind_a_stalled_leader() {
    let origin = Origin::start();
    let client = httpcache_reqwest::blocking::CachedClient::wrap(
        reqwest::blocking::Client::new(),
        MemoryStore::new(1 << 20),
        Settings::default(),
    );
    let url = origin.url("/stall/1000");
    std::thread::spawn({
        let (client, url) = (client.clone(), url.clone());
        move || {
            let _ = client.get(&url).timeout(Duration::from_secs(30)).send();
        }
    });
    runtime().block_on(until_hits(&origin, "/stall/1000", 1));
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn({
        let (client, url) = (client.clone(), url.clone());
        move || {
            let request = client.get(&url).timeout(Duration::from_millis(300));
            let _ = done.send(request.send().and_then(|response| response.bytes()).map(drop));
        }
    });
    // Well within COALESCE_WAIT (10 s): 300 ms of waiting, then 300 ms of its own request.
    let result = ended.recv_timeout(httpcache_core::driver::COALESCE_WAIT / 2);
    assert!(
        result.is_ok(),
        "the follower still waited behind the stalled leader, beyond its own 300 ms timeout"
    );
    assert!(result.unwrap().is_err(), "a stalled body is an error for the follower too");
    assert_eq!(origin.hits("/stall/1000"), 2, "the follower went to the origin itself");
}

// A ureq agent built with a global timeout (`timeout_global`, the whole call's budget)
// keeps to it behind a stalled leader too: a follower waits for the identical request in
// flight at most that long (not COALESCE_WAIT), then goes to the origin itself, where
// its own timeout ends it.
#[test]
fn ureq_a_follower_waits_at_most_the_agents_global_timeout_behind_a_stalled_leader() {
    let origin = Origin::start();
    let cache = httpcache_core::Cache::new(MemoryStore::new(1 << 20), Settings::default());
    let agent = httpcache_ureq::CachedAgent::with_config(cache, |config| {
        config.timeout_global(Some(Duration::from_millis(300)))
    });
    // The leader: an agent over the same cache with no timeout, whose body stalls.
    let leader = httpcache_ureq::CachedAgent::new(agent.cache().expect("cached").clone());
    let url = origin.url("/stall/1000");
    std::thread::spawn({
        let url = url.clone();
        move || {
            let _ = leader.get(&url).call().and_then(|mut response| response.body_mut().read_to_vec());
        }
    });
    runtime().block_on(until_hits(&origin, "/stall/1000", 1));
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = agent.get(&url).call().and_then(|mut response| response.body_mut().read_to_vec());
        let _ = done.send(result.map(drop));
    });
    // Well within COALESCE_WAIT (10 s): 300 ms of waiting, then 300 ms of its own request.
    let result = ended.recv_timeout(httpcache_core::driver::COALESCE_WAIT / 2);
    assert!(result.is_ok(), "the follower still waited behind the stalled leader, beyond its 300 ms timeout");
    assert!(result.unwrap().is_err(), "a stalled body is an error for the follower too");
    assert_eq!(origin.hits("/stall/1000"), 2, "the follower went to the origin itself");
}

/// Starts the leading request for `url` (a `/stall/1000` route) and waits until the
/// origin has it, its body stalled half-way.
async fn stalled_leader(
    client: &httpcache_reqwest::CachedClient<MemStore>,
    origin: &Origin,
    url: &str,
) -> tokio::task::JoinHandle<Result<(), reqwest::Error>> {
    let leader = tokio::spawn({
        let client = client.clone();
        let url = url.to_owned();
        async move { client.get(&url).send().await.map(drop) }
    });
    until_hits(origin, "/stall/1000", 1).await;
    leader
}

fn stored(client: &httpcache_reqwest::CachedClient<MemStore>) -> usize {
    futures_lite::future::block_on(client.cache().store().scan()).expect("scan").len()
}

// A request coalesced behind an identical one whose body stalls half-way must not be
// held behind it forever: its own timeout has to be able to end it.
#[test]
fn reqwest_async_a_follower_is_not_held_forever_behind_a_stalled_leader() {
    let origin = Origin::start();
    let client = reqwest_client(Inline(MemoryStore::new(1 << 20)));
    let runtime = runtime();
    let url = origin.url("/stall/1000");
    runtime.block_on(async {
        let leader = stalled_leader(&client, &origin, &url).await;
        let follower = client.get(&url).timeout(Duration::from_millis(300)).send();
        let ended = tokio::time::timeout(Duration::from_secs(20), follower).await;
        assert!(ended.is_ok(), "the follower was still waiting behind the stalled leader after 20 s");
        assert!(ended.unwrap().is_err(), "a stalled body is an error for the follower too");
        leader.abort();
    });
    assert_eq!(stored(&client), 0, "nothing stored");
}

// The leading request dropped (its future cancelled) while its body is being buffered:
// the requests behind it go on, nothing partial is stored.
#[test]
fn reqwest_async_a_leader_dropped_mid_body_releases_its_followers_and_stores_nothing() {
    let origin = Origin::start();
    let client = reqwest_client(Inline(MemoryStore::new(1 << 20)));
    let runtime = runtime();
    let url = origin.url("/stall/1000");
    runtime.block_on(async {
        let leader = stalled_leader(&client, &origin, &url).await;
        let follower = tokio::spawn({
            let client = client.clone();
            let url = url.clone();
            async move { client.get(&url).timeout(Duration::from_millis(500)).send().await.map(drop) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        leader.abort();
        let ended = tokio::time::timeout(Duration::from_secs(10), follower).await;
        let result = ended.expect("the follower went on once the leader was dropped").expect("joined");
        assert!(result.is_err(), "the follower's own request stalls too, and times out");
        assert_eq!(origin.hits("/stall/1000"), 2, "the follower asked the origin itself");
    });
    assert_eq!(stored(&client), 0, "nothing stored");
}

fn isahc_client() -> httpcache_isahc::CachedClient<httpcache_isahc::MemoryStores> {
    httpcache_isahc::CachedClient::memory(Settings::default(), 1 << 20).expect("isahc")
}

// As for reqwest: a follower behind a stalled leader ends by its own timeout.
#[test]
fn isahc_async_a_follower_is_not_held_forever_behind_a_stalled_leader() {
    use isahc::config::Configurable;
    let origin = Origin::start();
    let client = isahc_client();
    let url = origin.url("/stall/1000");
    std::thread::spawn({
        let (client, url) = (client.clone(), url.clone());
        move || {
            let _ = futures_lite::future::block_on(client.get_async(url.as_str()));
        }
    });
    runtime().block_on(until_hits(&origin, "/stall/1000", 1));
    let (done, ended) = std::sync::mpsc::channel();
    let follower = client.clone();
    std::thread::spawn(move || {
        let client = follower;
        let request =
            isahc::Request::get(url.as_str()).timeout(Duration::from_millis(300)).body(()).expect("request");
        let _ = done.send(futures_lite::future::block_on(client.send_async(request)).map(drop));
    });
    let result = ended.recv_timeout(Duration::from_secs(20));
    assert!(result.is_ok(), "the follower was still waiting behind the stalled leader after 20 s");
    assert!(result.unwrap().is_err(), "a stalled body is an error for the follower too");
    let store = client.cache().expect("cached").store();
    assert_eq!(httpcache_core::Store::scan(store).expect("scan").len(), 0, "nothing stored");
}

// RFC 5861 §3: stale-while-revalidate. Many concurrent stale hits start one background
// revalidation, not one each.
#[test]
fn reqwest_async_concurrent_stale_hits_start_one_revalidation() {
    let origin = Origin::start();
    let client = reqwest_client(Inline(MemoryStore::new(1 << 20)));
    let url = origin.url("/swr");
    runtime().block_on(async {
        client.get(&url).send().await.expect("miss").bytes().await.expect("body");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let hits: Vec<_> = (0..20)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move { client.get(&url).send().await.map(|r| r.status()) })
            })
            .collect();
        for hit in hits {
            assert_eq!(hit.await.expect("joined").expect("served"), 200);
        }
        until_hits(&origin, "/swr", 2).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    });
    assert_eq!(origin.hits("/swr"), 2, "one background revalidation");
}

// A background revalidation cancelled by its runtime shutting down (here while its
// origin's body stalls) releases its key: a later request that must revalidate goes
// to the origin at once instead of waiting behind it.
#[test]
fn reqwest_async_a_revalidation_cancelled_by_a_runtime_shutdown_releases_its_key() {
    let origin = Origin::start();
    let client = reqwest_client(Inline(MemoryStore::new(1 << 20)));
    let url = origin.url("/swr-stall");
    let first = runtime();
    first.block_on(async {
        client.get(&url).send().await.expect("miss").bytes().await.expect("body");
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let stale = client.get(&url).send().await.expect("a stale hit");
        assert!(stale.extensions().get::<httpcache_core::CacheStatus>().expect("status").stale);
        until_hits(&origin, "/swr-stall", 2).await;
    });
    drop(first);
    runtime().block_on(async {
        use httpcache_reqwest::CacheRequestExt;
        let refresh = tokio::spawn({
            let (client, url) = (client.clone(), url.clone());
            async move { client.get(&url).refresh().send().await.map(drop) }
        });
        // Within `until_hits`' 5 s: well before a leaked lead would let it go (10 s).
        until_hits(&origin, "/swr-stall", 3).await;
        refresh.abort();
    });
}

//! Memory, not time: a response larger than `max_entry_bytes`, streamed through each
//! adapter (reqwest, ureq, isahc blocking and async) and read as it arrives, must not be
//! held in memory. Each fetch runs in a child process (this test binary run again with
//! an environment variable) so its peak resident set (VmHWM) is its own.
//!
//! Each child streams 1 GiB (about a second, even in a debug build: the origin's
//! `/lazy` routes send one shared chunk again and again). `HTTPCACHE_MEMORY_BYTES`
//! changes the size. `cargo bench --bench compare` reports the same figures in release.

use std::process::Command;

use httpcache_core::Settings;
use httpcache_reqwest::CachedClient;
use httpcache_tests::origin::Origin;

#[path = "../common/stream.rs"]
mod stream;

/// What the child fetches, and through which adapter: `client route` (`route` a
/// `/lazy...` route without its size), set by the parent.
const CHILD_ENV: &str = "HTTPCACHE_MEMORY_CHILD";
/// The adapters, as the child knows them.
const CLIENTS: [&str; 4] = ["reqwest", "ureq", "isahc", "isahc-async"];
/// The size streamed: 1 GiB unless `HTTPCACHE_MEMORY_BYTES` says otherwise.
const DEFAULT_BYTES: u64 = 1 << 30;
/// Far below the response.
const MAX_ENTRY_BYTES: u64 = 16 << 20;
/// The bound (through ureq and isahc it allows twice this; they are held to it).
const LIMIT_KIB: u64 = 64 << 10;
/// What a child may hold beyond the `max_entry_bytes` it buffers before streaming on:
/// the process itself (about 7 MiB in release, 10 MiB in a debug build) and the
/// client's read buffers. A buffer grown to twice `max_entry_bytes`, or zeroed ahead
/// of what it holds, is over (the async isahc client's was: 42 MiB here).
const MARGIN_KIB: u64 = 16 << 10;

fn bytes() -> u64 {
    std::env::var("HTTPCACHE_MEMORY_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_BYTES)
}

/// A figure of this process from `/proc/self/status`, in KiB: `VmHWM` (the peak
/// resident set) or `VmRSS` (the resident set now).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|line| line.strip_prefix(field).is_some_and(|rest| rest.starts_with(':')));
    line.and_then(|line| line.split_whitespace().nth(1)?.parse().ok()).expect("the field, in kB")
}

/// Runs the test `name` of this binary again in a child process, with `env` set to
/// `value`, and returns the numbers it printed as `key=value` pairs on the line
/// starting at `first=` (libtest may print "test name ... " on the same line first).
fn child_figures(name: &str, env: &str, value: &str, first: &str) -> impl Fn(&str) -> u64 {
    let exe = std::env::current_exe().expect("the test binary");
    let output = Command::new(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, value)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let start = format!("{first}=");
    let line = stdout
        .lines()
        .find_map(|line| Some(line[line.find(&start)?..].to_owned()))
        .expect("the child's figures");
    move |key: &str| {
        line.split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .and_then(|value| value.parse().ok())
            .expect("a number")
    }
}

/// The child's side: does nothing unless started by [`peak_rss_streaming_past_max_entry_bytes`].
#[test]
fn memory_child() {
    let Ok(which) = std::env::var(CHILD_ENV) else { return };
    let (client, route) = which.split_once(' ').expect("client route");
    let origin = Origin::start();
    let url = origin.url(&format!("{route}/{}", bytes()));
    let settings = Settings { max_entry_bytes: MAX_ENTRY_BYTES, ..Settings::default() };
    let read = stream::stream_through(client, &url, &settings);
    println!("read={read} vmhwm_kib={}", status_kib("VmHWM"));
}

/// Runs [`memory_child`] in a child process for `route` through `client`; returns
/// (bytes read, peak KiB).
fn child(client: &str, route: &str) -> (u64, u64) {
    let which = format!("{client} {route}");
    let field = child_figures("memory_child", CHILD_ENV, &which, "read");
    (field("read"), field("vmhwm_kib"))
}

#[test]
fn peak_rss_streaming_past_max_entry_bytes() {
    if std::env::var(CHILD_ENV).is_ok() || std::env::var(SWR_CHILD_ENV).is_ok() {
        return; // in a child: only `memory_child` runs
    }
    let bytes = bytes();
    // Without Content-Length the cache buffers up to max_entry_bytes, then streams the
    // rest unstored; with one, it streams from the start.
    let bound = LIMIT_KIB.min((MAX_ENTRY_BYTES >> 10) + MARGIN_KIB);
    for client in CLIENTS {
        for route in ["/lazy", "/lazy-length"] {
            let (read, kib) = child(client, route);
            println!("{client} {route}: {} MiB read, peak RSS {:.1} MiB", read >> 20, kib as f64 / 1024.0);
            assert_eq!(read, bytes, "{client} {route}: the whole body arrives");
            assert!(kib < bound, "{client} {route}: peak RSS {kib} KiB, over {bound} KiB");
        }
    }
}

/// Set by [`a_background_revalidation_past_max_entry_bytes_is_not_held_in_memory`] for
/// its child: the client (`reqwest` or `reqwest-blocking`).
const SWR_CHILD_ENV: &str = "HTTPCACHE_SWR_CHILD";

/// The child's side of [`a_background_revalidation_past_max_entry_bytes_is_not_held_in_memory`]:
/// stores a small stale response, serves it stale (RFC 5861 §3), waits for the
/// background revalidation, which brings a body past `max_entry_bytes` that nobody
/// reads, and prints its peak resident set.
#[test]
fn swr_child() {
    let Ok(client) = std::env::var(SWR_CHILD_ENV) else { return };
    let origin = Origin::start();
    let url = origin.url(&format!("/swr-grow/{}", bytes()));
    let settings = Settings { max_entry_bytes: MAX_ENTRY_BYTES, ..Settings::default() };
    let wait = std::time::Duration::from_secs(120);
    let stale = if client == "reqwest" {
        let client = CachedClient::memory(settings, 64 << 20);
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            client.get(&url).send().await.expect("miss").bytes().await.expect("body");
            let stale = client.get(&url).send().await.expect("stale").bytes().await.expect("body");
            tokio::time::timeout(wait, client.revalidations_finished()).await.expect("revalidated");
            stale
        })
    } else {
        let client =
            httpcache_reqwest::blocking::CachedClient::memory(settings, 64 << 20).expect("blocking client");
        client.get(&url).send().and_then(|response| response.bytes()).expect("miss");
        let stale = client.get(&url).send().and_then(|response| response.bytes()).expect("stale");
        assert!(client.wait_for_revalidations(wait), "revalidated");
        stale
    };
    assert_eq!(&stale[..], b"small", "served stale at once");
    assert_eq!(origin.hits(&format!("/swr-grow/{}", bytes())), 2, "one background revalidation");
    println!("vmhwm_kib={}", status_kib("VmHWM"));
}

// A stale-while-revalidate revalidation runs where nobody reads its response: one whose
// body turns out past `max_entry_bytes` (not stored, streamed) is read to its end and
// dropped as it arrives, not gathered whole in memory (reqwest's `bytes()` did: here a
// 1 GiB body took 1 GiB of resident memory, for nothing).
#[test]
fn a_background_revalidation_past_max_entry_bytes_is_not_held_in_memory() {
    if std::env::var(CHILD_ENV).is_ok() || std::env::var(SWR_CHILD_ENV).is_ok() {
        return;
    }
    // The bound, 64 MiB: besides the stream, this process holds a stored entry,
    // a runtime and a revalidation task (32.6 MiB seen for async reqwest on a 2-core
    // CI machine, against 2 GiB when the body was gathered whole).
    let bound = LIMIT_KIB;
    for client in ["reqwest", "reqwest-blocking"] {
        let kib = child_figures("swr_child", SWR_CHILD_ENV, client, "vmhwm_kib")("vmhwm_kib");
        println!(
            "{client}: a background revalidation of {} MiB, peak RSS {:.1} MiB",
            bytes() >> 20,
            kib as f64 / 1024.0
        );
        assert!(kib < bound, "{client}: peak RSS {kib} KiB, over {bound} KiB");
    }
}

/// Set by [`a_memory_store_holds_about_what_it_weighs`] for its child.
const WEIGH_CHILD_ENV: &str = "HTTPCACHE_WEIGH_CHILD";
/// Small entries stored, each right after a 1 MiB response that is not (so the client
/// reads the small one's head into a large read buffer).
const SMALL_ENTRIES: usize = 200;
/// Bodies stored without a `Content-Length` (`/stream`), each a little over 512 KiB:
/// most of what the store weighs.
const STREAMED_ENTRIES: usize = 16;
const STREAMED_BYTES: usize = 520 << 10;

/// The child's side of [`a_memory_store_holds_about_what_it_weighs`]: fills a memory
/// store through the reqwest adapter, then prints how much the resident set grew and
/// what the store weighs.
#[test]
fn weigh_child() {
    if std::env::var(WEIGH_CHILD_ENV).is_err() {
        return;
    }
    let origin = Origin::start();
    let client = CachedClient::memory(Settings::default(), 1 << 30);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let fetch = async |url: String| {
        let response = client.get(&url).send().await.expect("request");
        assert!(response.status().is_success());
        response.bytes().await.expect("body").len()
    };
    let (grew, used) = runtime.block_on(async {
        // Warm up: the client's buffers, the allocator's arenas, the store's shards.
        for i in 0..20 {
            fetch(origin.url("/no-store-bytes/1048576")).await;
            fetch(origin.url(&format!("/blob/100?warm={i}"))).await;
        }
        let store = &client.cache().store().0;
        let (rss, used) = (status_kib("VmRSS"), store.used_bytes());
        for i in 0..SMALL_ENTRIES {
            fetch(origin.url("/no-store-bytes/1048576")).await;
            assert_eq!(fetch(origin.url(&format!("/blob/100?i={i}"))).await, 100);
        }
        for i in 0..STREAMED_ENTRIES {
            assert_eq!(fetch(origin.url(&format!("/stream/{STREAMED_BYTES}?i={i}"))).await, STREAMED_BYTES);
        }
        (status_kib("VmRSS").saturating_sub(rss), (store.used_bytes() - used) >> 10)
    });
    println!("grew_kib={grew} weighed_kib={used}");
}

// A memory store bounds memory by what it weighs its entries (their fields and body).
// Through reqwest, header values are slices of hyper's read buffer, and an entry that
// kept clones of them kept the whole buffer (up to a few hundred KiB) alive: here the
// resident set grew by 94 MiB for 8.2 MiB weighed. A body kept in the buffer it grew in
// holds up to its length again, but mostly in pages never touched, which the resident
// set does not show (core's `stored_body` test covers it).
#[test]
fn a_memory_store_holds_about_what_it_weighs() {
    if std::env::var(CHILD_ENV).is_ok()
        || std::env::var(WEIGH_CHILD_ENV).is_ok()
        || std::env::var(SWR_CHILD_ENV).is_ok()
    {
        return;
    }
    let field = child_figures("weigh_child", WEIGH_CHILD_ENV, "1", "grew_kib");
    let (grew, weighed) = (field("grew_kib"), field("weighed_kib"));
    println!(
        "{SMALL_ENTRIES} small and {STREAMED_ENTRIES} streamed entries: resident set +{grew} KiB, weighed {weighed} KiB"
    );
    // What was stored is about 8.3 MiB of bodies; allow a quarter more and 2 MiB for
    // the allocator's own bookkeeping and what the warm-up did not reach.
    let bound = weighed + weighed / 4 + 2048;
    assert!(
        grew <= bound,
        "the resident set grew {grew} KiB for entries weighing {weighed} KiB (bound {bound} KiB)"
    );
}

//! A tour of httpcache without a network: a scripted in-process origin, the core
//! driver and the memory store. Shows a miss, a hit, a 304 revalidation and a
//! stale-if-error answer, with the time each took.
//!
//! Run with `cargo run --release -p httpcache-mem --example tour`.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Request, Response};
use httpcache_core::{Cache, CacheStatus, RequestOptions, Settings};
use httpcache_mem::MemoryStore;

/// What the scripted origin does on its next request.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Serve,
    Fail,
}

#[allow(clippy::disallowed_methods)] // an example program times itself with the wall clock
fn main() {
    // A virtual clock, so the tour can jump past the response's max-age.
    let now = std::sync::Arc::new(std::sync::Mutex::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ));
    let clock = {
        let now = now.clone();
        std::sync::Arc::new(move || *now.lock().unwrap())
    };
    let advance = |secs| *now.lock().unwrap() += Duration::from_secs(secs);

    let cache = Cache::new(MemoryStore::new(64 << 20), Settings::default()).with_clock(clock);
    let mode = Cell::new(Mode::Serve);
    let origin_calls = Cell::new(0);
    let origin = |request: Request<Bytes>| -> Result<Response<Bytes>, String> {
        origin_calls.set(origin_calls.get() + 1);
        // Pretend to be a remote server.
        std::thread::sleep(Duration::from_millis(20));
        if mode.get() == Mode::Fail {
            return Err("connection refused".into());
        }
        let builder = Response::builder()
            .header("cache-control", "max-age=60, stale-if-error=3600")
            .header("etag", "\"v1\"");
        if request.headers().get("if-none-match").is_some_and(|tag| tag == "\"v1\"") {
            return Ok(builder.status(304).body(Bytes::new()).unwrap());
        }
        Ok(builder.body(Bytes::from(vec![b'x'; 64 * 1024])).unwrap())
    };
    let url = "https://origin.example/data";
    let fetch = |label: &str| {
        let request = Request::get(url).body(Bytes::new()).unwrap();
        let started = Instant::now();
        let calls_before = origin_calls.get();
        let result = cache.send(request, RequestOptions::default(), origin);
        let elapsed = started.elapsed();
        match result {
            Ok(response) => {
                let status = response.extensions().get::<CacheStatus>().cloned().expect("cache status");
                let outcome = if status.revalidated {
                    "REVALIDATED"
                } else if status.stale {
                    "STALE"
                } else if status.from_cache {
                    "HIT"
                } else {
                    "MISS"
                };
                println!(
                    "{label:<34} {outcome:<12} {:>3} {:>7} B  origin calls {}  {:>9.1?}  ({})",
                    response.status().as_u16(),
                    response.body().len(),
                    origin_calls.get() - calls_before,
                    elapsed,
                    status.reason,
                );
            }
            Err(error) => println!("{label:<34} ERROR {error}"),
        }
    };

    println!("{:<34} {:<12} {:>3} {:>9}  {:<14}  {:>9}  why", "step", "outcome", "st", "body", "", "time");
    fetch("1. first request");
    fetch("2. same request");
    advance(120);
    fetch("3. after max-age (304)");
    advance(120);
    mode.set(Mode::Fail);
    fetch("4. origin down, stale-if-error");
}

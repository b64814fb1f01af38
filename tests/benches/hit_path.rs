//! The core hit path alone: `Cache::plan` answering from the memory store, at three
//! body sizes, next to the in-process floor (a `HashMap` lookup and a `Bytes` clone).
//! No network, no client: this is what every adapter pays on a hit before its own
//! response conversion.

use std::collections::HashMap;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use httpcache_core::driver::Plan;
use httpcache_core::{Cache, CacheKey, RequestOptions, Settings};
use httpcache_mem::MemoryStore;

const SIZES: [(usize, &str); 3] = [(1 << 10, "1KiB"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];

fn hit_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("hit_path");
    for (size, label) in SIZES {
        let cache = Cache::new(MemoryStore::new(256 << 20), Settings::default());
        let url = format!("http://127.0.0.1:8080/bytes/{size}?b=2&a=1");
        let request = || http::Request::get(url.as_str()).body(()).unwrap().into_parts().0;
        let body = Bytes::from(vec![7u8; size]);
        // Prime the cache through the driver's own loop.
        let origin = |_: http::Request<Bytes>| {
            Ok::<_, ()>(
                http::Response::builder()
                    .header("cache-control", "max-age=3600")
                    .header("content-type", "application/octet-stream")
                    .header("etag", "\"abc\"")
                    .header("date", httpcache_core::header::format_http_date(cache.now()))
                    .body(body.clone())
                    .unwrap(),
            )
        };
        let primed = http::Request::get(url.as_str()).body(Bytes::new()).unwrap();
        cache.send(primed, RequestOptions::default(), origin).unwrap();

        group.bench_function(format!("plan_hit/{label}"), |b| {
            b.iter(|| match cache.plan(request(), Bytes::new(), RequestOptions::default()) {
                Plan::Respond(response) => black_box(response),
                Plan::Forward(_) => panic!("expected a hit"),
            })
        });

        // A request the cache does not answer and whose response it does not store: the
        // plan (key, store lookup, decision) and the completion of a `no-store` head,
        // what the cache adds to a pass-through before the adapter's own conversions.
        let pass_url = format!("http://127.0.0.1:8080/no-store-bytes/{size}?b=2&a=1");
        let no_store = http::Response::builder()
            .header("cache-control", "no-store")
            .header("content-type", "application/octet-stream")
            .header("content-length", size.to_string())
            .body(())
            .unwrap()
            .into_parts()
            .0;
        group.bench_function(format!("pass_through/{label}"), |b| {
            b.iter(|| {
                let request = http::Request::get(pass_url.as_str()).body(()).unwrap().into_parts().0;
                match cache.plan(request, Bytes::new(), RequestOptions::default()) {
                    Plan::Forward(forward) => {
                        let mut head = no_store.clone();
                        if forward.wants_body(&head) {
                            panic!("a no-store response is streamed, not buffered");
                        }
                        cache.complete_streamed(*forward, &mut head, None);
                        black_box(head)
                    }
                    Plan::Respond(_) => panic!("expected a miss"),
                }
            })
        });

        if size == 1 << 10 {
            let settings = Settings::default();
            let parts = request();
            group.bench_function("key", |b| {
                b.iter(|| black_box(httpcache_core::key::cache_key(black_box(&parts), b"", &settings)))
            });
        }

        let mut floor: HashMap<CacheKey, Bytes> = HashMap::new();
        let key = CacheKey::hash(url.as_bytes());
        floor.insert(key, body.clone());
        group.bench_function(format!("floor_hashmap_bytes_clone/{label}"), |b| {
            b.iter(|| black_box(floor.get(black_box(&key)).cloned()))
        });
    }
    group.finish();
}

criterion_group!(benches, hit_path);
criterion_main!(benches);

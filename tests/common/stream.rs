//! One large response streamed through a cached client of each adapter: shared by the
//! memory test (`tests/memory.rs`) and the `compare` bench's memory section, which both
//! include this file with `#[path]` (the adapters are dev-dependencies, out of the
//! library's reach).

use httpcache_core::Settings;

/// Fetches `url` through a cached client over a memory store with `settings`, reading
/// the body as it arrives and dropping it; returns how many bytes arrived. `client` is
/// `reqwest`, `ureq`, `isahc` (blocking) or `isahc-async`.
///
/// # Panics
/// On another `client`, a failed request, or a status other than success.
pub fn stream_through(client: &str, url: &str, settings: &Settings) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let isahc = || httpcache_isahc::CachedClient::memory(settings.clone(), 256 << 20).expect("isahc client");
    let request = || http::Request::get(url).body(()).expect("request");
    match client {
        "reqwest" => runtime.block_on(async {
            let client = httpcache_reqwest::CachedClient::memory(settings.clone(), 256 << 20);
            let mut response = client.get(url).send().await.expect("request");
            assert!(response.status().is_success(), "{}", response.status());
            let mut read = 0u64;
            while let Some(chunk) = response.chunk().await.expect("chunk") {
                read += chunk.len() as u64;
            }
            read
        }),
        "ureq" => {
            let cache =
                httpcache_core::Cache::new(httpcache_mem::MemoryStore::new(256 << 20), settings.clone());
            let agent = httpcache_ureq::CachedAgent::new(cache);
            let mut response = agent.agent().get(url).call().expect("request");
            assert!(response.status().is_success(), "{}", response.status());
            std::io::copy(&mut response.body_mut().as_reader(), &mut std::io::sink()).expect("body")
        }
        "isahc" => {
            let mut response = isahc().send(request()).expect("request");
            assert!(response.status().is_success(), "{}", response.status());
            std::io::copy(response.body_mut(), &mut std::io::sink()).expect("body")
        }
        "isahc-async" => runtime.block_on(async {
            let mut response = isahc().send_async(request()).await.expect("request");
            assert!(response.status().is_success(), "{}", response.status());
            futures_lite::io::copy(response.body_mut(), &mut futures_lite::io::sink()).await.expect("body")
        }),
        other => panic!("no client {other}"),
    }
}

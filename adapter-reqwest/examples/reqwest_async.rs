//! The async cached client: fetch a URL twice, the second time from the cache.
//!
//! ```text
//! cargo run -p httpcache-reqwest --features rustls --example reqwest_async -- https://www.rust-lang.org/
//! ```
//!
//! (Plain `http://` URLs work without `--features rustls`.) The cache lives in a
//! temporary directory; `httpcache_reqwest::cached_client()` would put it under the
//! user's cache directory instead.

use httpcache_reqwest::core::Settings;
use httpcache_reqwest::{CacheRequestExt, CacheStatusExt, CachedClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "https://www.rust-lang.org/".to_owned());
    let dir = tempfile::tempdir()?;
    // Fresh for 10 minutes unless the response says otherwise.
    let settings = Settings::session();
    let client = CachedClient::lmdb(dir.path().join("cache"), settings)?;

    for attempt in 1..=2 {
        let response = client.get(&url).send().await?;
        let cache_status = response.headers().get("cache-status").cloned();
        let from_cache = response.from_cache();
        let body = response.bytes().await?;
        println!(
            "#{attempt}: {} bytes, from cache: {from_cache}, Cache-Status: {cache_status:?}",
            body.len()
        );
    }
    // Per-request controls: revalidate before use.
    let refreshed = client.get(&url).refresh().send().await?;
    println!("refresh: from cache {}, revalidated {}", refreshed.from_cache(), refreshed.revalidated());
    println!("{} entries stored", client.inventory().count().await?);
    Ok(())
}

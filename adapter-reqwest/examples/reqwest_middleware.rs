//! The cache as a `reqwest_middleware` middleware.
//!
//! ```text
//! cargo run -p httpcache-reqwest --features rustls,middleware --example reqwest_middleware -- https://www.rust-lang.org/
//! ```
//!
//! (Plain `http://` URLs work without `rustls`.)

use httpcache_reqwest::core::{Inline, Settings};
use httpcache_reqwest::{CacheMiddleware, CacheRequestExt, CacheStatusExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "https://www.rust-lang.org/".to_owned());
    let inner = reqwest::Client::new();
    // Fresh for 10 minutes unless the response says otherwise.
    let settings = Settings::session();
    let cache = CacheMiddleware::new(Inline(httpcache_mem::MemoryStore::new(64 << 20)), settings)
        .background_client(inner.clone());
    let client = reqwest_middleware::ClientBuilder::new(inner).with(cache.clone()).build();

    let first = client.get(&url).send().await?;
    println!("first: {} from cache {}", first.status(), first.from_cache());
    first.bytes().await?;
    let second = client.get(&url).send().await?;
    println!("second: {} from cache {}", second.status(), second.from_cache());
    // Skip the cache read and overwrite the entry.
    let forced = client.get(&url).force_refresh().send().await?;
    println!("forced: from cache {}", forced.from_cache());
    println!("settings: {:?}", cache.settings());
    Ok(())
}

//! Fetch a URL twice through the cache and show what the cache did.
//!
//! ```text
//! cargo run -p httpcache-ureq --features rustls --example ureq -- https://httpbin.org/cache/60
//! ```
//!
//! Without `--features rustls` only `http://` URLs work.

use std::time::Duration;

use httpcache_core::{Cache, Settings};
use httpcache_mem::MemoryStore;
use httpcache_ureq::{CacheStatusExt, CachedAgent};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "https://httpbin.org/cache/60".to_owned());
    // Fresh for 10 minutes unless the response says otherwise.
    let settings = Settings::session();
    let cache = Cache::new(MemoryStore::new(64 << 20), settings);
    let agent =
        CachedAgent::with_config(cache, |config| config.timeout_global(Some(Duration::from_secs(30))));

    for attempt in 1..=2 {
        let mut response = agent.get(&url).call()?;
        let body = response.body_mut().read_to_vec()?;
        println!(
            "#{attempt}: {} {} bytes, from cache: {}, final URL: {}",
            response.status(),
            body.len(),
            response.from_cache(),
            response.final_url().unwrap_or("?"),
        );
        if let Some(status) = response.headers().get("cache-status") {
            println!("    Cache-Status: {}", status.to_str().unwrap_or("?"));
        }
    }
    if let Some(inventory) = agent.inventory() {
        println!("{} entries stored", inventory.count()?);
    }
    Ok(())
}

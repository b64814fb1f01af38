//! The blocking cached client: fetch a URL twice, the second time from the cache.
//!
//! ```text
//! cargo run -p httpcache-reqwest --features rustls --example reqwest_blocking -- https://www.rust-lang.org/
//! ```
//!
//! (Plain `http://` URLs work without `--features rustls`.)

use httpcache_reqwest::blocking::CachedClient;
use httpcache_reqwest::core::Settings;
use httpcache_reqwest::{CacheRequestExt, CacheStatusExt};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "https://www.rust-lang.org/".to_owned());
    let dir = tempfile::tempdir()?;
    // Fresh for 10 minutes unless the response says otherwise.
    let settings = Settings::session();
    let client = CachedClient::lmdb(dir.path().join("cache"), settings)?;

    for attempt in 1..=2 {
        let response = client.get(&url).send()?;
        let from_cache = response.from_cache();
        let expires = response.expires();
        let body = response.bytes()?;
        println!("#{attempt}: {} bytes, from cache: {from_cache}, expires: {expires:?}", body.len());
    }
    // Never contact the origin: served from the cache, or a 504.
    let offline = client.get(&url).only_if_cached().send()?;
    println!("only-if-cached: {}", offline.status());
    // Bypass the cache for a while.
    {
        let _off = client.disable();
        println!("disabled: from cache {}", client.get(&url).send()?.from_cache());
    }
    Ok(())
}

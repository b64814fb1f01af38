//! Fetches a URL twice through a cached isahc client, blocking and then async, and shows
//! what the cache did.
//!
//! ```text
//! cargo run -p httpcache-isahc --features rustls --example isahc -- https://example.com/
//! ```
//!
//! (Without `rustls`, only `http://` URLs work.) The cache lives in a temporary
//! directory; `httpcache_isahc::cached_client()` would keep it under your user cache
//! directory instead.

use std::time::Duration;

use httpcache_isahc::core::{Expiry, Settings};
use httpcache_isahc::{CacheRequestExt, CacheStatusExt, CachedClient, LmdbStores};
use isahc::config::{Configurable, RedirectPolicy};
use isahc::{AsyncReadResponseExt, HttpClient, ReadResponseExt, Request};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).unwrap_or_else(|| "https://example.com/".to_owned());
    let dir = std::env::temp_dir().join(format!("httpcache-isahc-example-{}", std::process::id()));
    let isahc = HttpClient::builder()
        .redirect_policy(RedirectPolicy::Follow)
        .timeout(Duration::from_secs(30))
        .build()?;
    // Fresh for a minute unless the response says otherwise.
    let settings =
        Settings { expire_after: Some(Expiry::After(Duration::from_secs(60))), ..Settings::default() };
    let store = httpcache_lmdb::LmdbStore::open(&dir)?;
    let client = CachedClient::wrap(isahc, LmdbStores::from(store), settings);

    for round in 1..=2 {
        let mut response = client.get(url.as_str())?;
        let body = response.bytes()?;
        println!(
            "blocking #{round}: {} {} bytes, from cache: {}, final URL: {}",
            response.status(),
            body.len(),
            response.from_cache(),
            response.final_url().unwrap_or("?"),
        );
        println!("  Cache-Status: {:?}", response.headers().get("cache-status"));
    }

    futures_lite::future::block_on(async {
        let mut response = client.get_async(url.as_str()).await?;
        let body = response.bytes().await?;
        println!("async: {} {} bytes, from cache: {}", response.status(), body.len(), response.from_cache());
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;

    // Never contact the origin: what is stored, or a 504.
    let offline = client.send(Request::get("https://example.invalid/").only_if_cached().body(())?)?;
    println!("only-if-cached on a URL never fetched: {}", offline.status());

    if let Some(inventory) = client.inventory() {
        println!("{} entries in {}", inventory.count()?, dir.display());
    }
    drop(client);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

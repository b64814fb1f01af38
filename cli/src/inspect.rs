//! `ls`, `show`, `stats`, `purge`, `export` and `import`: everything through
//! [`httpcache_core::inventory::Inventory`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::SystemTime;

use http::{HeaderMap, Uri};
use httpcache_core::inventory::{CopyReport, Filter, Inventory, Query, SortBy, stored_url_is, wanted_url};
use httpcache_core::{CacheKey, Entry, EntryMeta, Settings, Store};
use reqwest::Url;
use serde_json::{Value, json};

use crate::error::CliError;
use crate::format::{self, Align};
use crate::store::{self, Access, Location, StoreKind};
use crate::{LsArgs, PurgeArgs, SortKey, clock};

/// Whether an entry is fresh or stale at `now`, by its stored expiry.
fn state(meta: &EntryMeta, now: SystemTime) -> &'static str {
    if meta.is_expired(now) { "stale" } else { "fresh" }
}

fn optional_time(at: Option<SystemTime>) -> Value {
    at.map_or(Value::Null, |at| Value::String(format::rfc3339(at)))
}

/// One entry for scripts.
fn meta_json(meta: &EntryMeta, now: SystemTime) -> Value {
    json!({
        "key": meta.key.to_string(),
        // As text: a 64-bit digest, beyond the integers a JSON reader (JavaScript, jq)
        // holds exactly.
        "variant": format!("{:016x}", meta.variant.0),
        "method": meta.method.as_str(),
        "url": meta.url,
        "status": meta.status.as_u16(),
        "size": meta.body_size,
        "created": format::rfc3339(meta.created),
        "expires": optional_time(meta.expires),
        "response_time": format::rfc3339(meta.response_time),
        "expired": meta.is_expired(now),
    })
}

fn print_json(value: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|error| CliError::Output(format!("encoding JSON: {error}")))?;
    crate::emit(&format!("{text}\n"))
}

/// `httpcache ls`.
pub fn ls(location: &Location, args: &LsArgs) -> Result<(), CliError> {
    let store = store::open(location, Access::Read)?;
    let inventory = Inventory::new(&store);
    let filter = match (args.expired, args.valid) {
        (true, _) => Filter::Expired,
        (_, true) => Filter::Valid,
        _ => Filter::All,
    };
    let mut query = Query::new(filter);
    query.sort = args.sort.map(|sort| match sort {
        SortKey::Expires => SortBy::Expires,
        SortKey::Size => SortBy::Size,
        SortKey::Created => SortBy::Created,
    });
    query.reverse = args.reverse;
    query.limit = args.limit.map(std::num::NonZeroUsize::get);
    let now = clock::now();
    let metas = inventory.list(&query, now)?;
    if args.json {
        return print_json(&Value::Array(metas.iter().map(|meta| meta_json(meta, now)).collect()));
    }
    if metas.is_empty() {
        crate::note(&format!("no entries in {location}"));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = metas
        .iter()
        .map(|meta| {
            vec![
                meta.status.as_u16().to_string(),
                meta.method.to_string(),
                format::bytes(meta.body_size),
                format::relative(meta.created, now),
                meta.expires.map_or_else(|| "never".to_owned(), |at| format::relative(at, now)),
                state(meta, now).to_owned(),
                meta.url.clone(),
            ]
        })
        .collect();
    let headers = [
        ("STATUS", Align::Left),
        ("METHOD", Align::Left),
        ("SIZE", Align::Right),
        ("CREATED", Align::Left),
        ("EXPIRES", Align::Left),
        ("STATE", Align::Left),
        ("URL", Align::Left),
    ];
    let mut out = format::table(&headers, &rows);
    let total: u64 = metas.iter().map(|meta| meta.body_size).sum();
    let noun = if metas.len() == 1 { "entry" } else { "entries" };
    let _ = writeln!(out, "{} {noun}, {}", metas.len(), format::bytes(total));
    crate::emit(&out)
}

/// The keys `target` names: a cache key, or the keys of every entry whose URL matches
/// `target` once both are normalised.
fn keys_for(store: &dyn Store, target: &str) -> Result<Vec<CacheKey>, CliError> {
    let target = target.trim();
    if target.len() == 64
        && let Ok(key) = target.parse::<CacheKey>()
    {
        return Ok(vec![key]);
    }
    let settings = Settings::default();
    let wanted: Vec<String> =
        lookup_uris(&parse_target(target)?)?.iter().map(|uri| wanted_url(uri, &settings)).collect();
    let keys: BTreeSet<CacheKey> = store
        .scan()?
        .into_iter()
        .filter(|meta| wanted.iter().any(|wanted| stored_url_is(&meta.url, wanted, &settings)))
        .map(|meta| meta.key)
        .collect();
    Ok(keys.into_iter().collect())
}

/// Parses the URL `show` is given, as `get` parses its URL.
fn parse_target(text: &str) -> Result<Url, CliError> {
    crate::parse_url(text)
        .map_err(|_| CliError::Usage(format!("'{text}' is neither a URL nor a cache key (64 hex digits)")))
}

/// The URLs entries fetched with `url` are stored under. `get` sends `url` as reqwest
/// does: with its non-ASCII characters percent-encoded (`http::Uri` would take them as
/// they are, and they would match nothing), without its fragment, and with a user name
/// and password moved into an `Authorization` field. So `url` without its user
/// information too; and with it, as a client that keeps it in the URL stores it.
fn lookup_uris(url: &Url) -> Result<Vec<Uri>, CliError> {
    let mut url = url.clone();
    url.set_fragment(None);
    let mut urls = vec![url.clone()];
    if !url.username().is_empty() || url.password().is_some() {
        // Both fail only for URLs that cannot have user information, which this has.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        urls.push(url);
    }
    urls.iter()
        .map(|url| {
            url.as_str()
                .parse::<Uri>()
                .map_err(|error| CliError::Usage(format!("'{url}' is not a URL: {error}")))
        })
        .collect()
}

fn write_headers(out: &mut String, headers: &HeaderMap) {
    if headers.is_empty() {
        out.push_str("    (no headers stored)\n");
    }
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        let _ = writeln!(out, "    {name}: {value}");
    }
}

/// One stored variant for people.
fn describe(entry: &Entry, now: SystemTime) -> String {
    let mut out = String::new();
    let meta = entry.meta();
    let _ = writeln!(out, "key            {}", entry.key);
    let _ = writeln!(out, "variant        {:016x}", entry.variant.0);
    let _ = writeln!(out, "request        {} {}", entry.request.method, entry.request.url);
    write_headers(&mut out, &entry.request.headers);
    let response = &entry.response;
    let _ = writeln!(out, "response       {:?} {}", response.version, response.status);
    write_headers(&mut out, &response.headers);
    if let Some(final_url) = &response.final_url {
        let _ = writeln!(out, "final URL      {final_url}");
    }
    let _ = writeln!(out, "body           {}", format::bytes(response.body.len() as u64));
    let _ = writeln!(out, "created        {}", format::instant_and_relative(entry.created, now));
    let _ = writeln!(out, "request time   {}", format::instant_and_relative(entry.request_time, now));
    let _ = writeln!(out, "response time  {}", format::instant_and_relative(entry.response_time, now));
    let expires =
        entry.expires.map_or_else(|| "never".to_owned(), |at| format::instant_and_relative(at, now));
    let _ = writeln!(out, "expires        {expires}");
    let _ = writeln!(out, "state          {}", state(&meta, now));
    out
}

/// `httpcache show`.
pub fn show(location: &Location, target: &str) -> Result<(), CliError> {
    let target_is_key = target.trim().len() == 64 && target.trim().parse::<CacheKey>().is_ok();
    if !target_is_key {
        parse_target(target)?;
    }
    let store = store::open(location, Access::Read)?;
    let mut entries = Vec::new();
    for key in keys_for(&store, target)? {
        let mut variants = store.get(&key)?;
        variants.sort_by_key(|entry| entry.variant);
        entries.append(&mut variants);
    }
    if entries.is_empty() {
        return Err(CliError::NotCached(format!("nothing stored for {target} in {location}")));
    }
    let now = clock::now();
    let count = entries.len();
    let mut out = String::new();
    for (index, entry) in entries.iter().enumerate() {
        if count > 1 {
            let _ = writeln!(out, "# {} of {count}", index + 1);
        }
        let _ = write!(out, "{}", describe(entry, now));
        if index + 1 < count {
            out.push('\n');
        }
    }
    crate::emit(&out)
}

/// The host (with its port, when given) of a stored URL; not the user name (nor the
/// `REDACTED` password) a URL may hold before it.
fn host_of(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => uri.authority().map_or_else(
            || "(no host)".to_owned(),
            |authority| {
                let text = authority.as_str();
                text.rsplit_once('@').map_or(text, |(_, host)| host).to_owned()
            },
        ),
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

/// `httpcache stats`.
pub fn stats(location: &Location, json: bool) -> Result<(), CliError> {
    let store = store::open(location, Access::Read)?;
    let now = clock::now();
    let metas = Inventory::new(&store).list(&Query::new(Filter::All), now)?;
    let bytes: u64 = metas.iter().map(|meta| meta.body_size).sum();
    let expired = metas.iter().filter(|meta| meta.is_expired(now)).count();
    let keys = metas.iter().map(|meta| meta.key).collect::<BTreeSet<_>>().len();
    let oldest = metas.iter().min_by_key(|meta| meta.created);
    let newest = metas.iter().max_by_key(|meta| meta.created);
    let mut hosts: BTreeMap<String, usize> = BTreeMap::new();
    for meta in &metas {
        *hosts.entry(host_of(&meta.url)).or_default() += 1;
    }
    let mut hosts: Vec<(String, usize)> = hosts.into_iter().collect();
    hosts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    if json {
        let end = |meta: Option<&EntryMeta>| {
            meta.map_or(
                Value::Null,
                |meta| json!({"url": meta.url, "created": format::rfc3339(meta.created)}),
            )
        };
        return print_json(&json!({
            "cache": location.to_string(),
            "entries": metas.len(),
            "keys": keys,
            "bytes": bytes,
            "fresh": metas.len() - expired,
            "expired": expired,
            "oldest": end(oldest),
            "newest": end(newest),
            "hosts": hosts.iter().map(|(host, count)| json!({"host": host, "entries": count})).collect::<Vec<_>>(),
        }));
    }
    let mut out = String::new();
    let _ = writeln!(out, "cache      {location}");
    let _ = writeln!(out, "entries    {} ({keys} keys)", metas.len());
    let _ = writeln!(out, "bytes      {} ({bytes} bytes of bodies)", format::bytes(bytes));
    let _ = writeln!(out, "fresh      {}", metas.len() - expired);
    let _ = writeln!(out, "expired    {expired}");
    if let (Some(oldest), Some(newest)) = (oldest, newest) {
        let _ =
            writeln!(out, "oldest     {}  {}", format::instant_and_relative(oldest.created, now), oldest.url);
        let _ =
            writeln!(out, "newest     {}  {}", format::instant_and_relative(newest.created, now), newest.url);
    }
    if !hosts.is_empty() {
        let _ = writeln!(out, "hosts");
        let rows: Vec<Vec<String>> =
            hosts.iter().map(|(host, count)| vec![format!("  {host}"), count.to_string()]).collect();
        let table = format::table(&[("", Align::Left), ("", Align::Right)], &rows);
        // Drop the (empty) header row.
        for line in table.lines().skip(1) {
            let _ = writeln!(out, "{line}");
        }
    }
    crate::emit(&out)
}

/// `httpcache purge`.
pub fn purge(location: &Location, args: &PurgeArgs) -> Result<(), CliError> {
    let store = store::open(location, Access::Read)?;
    let inventory = Inventory::new(&store);
    let removed = if args.expired {
        inventory.delete_expired(clock::now())?
    } else if let Some(age) = args.older_than {
        inventory.delete_older_than(age, clock::now())?
    } else if args.all {
        let count = inventory.count()?;
        inventory.clear()?;
        count
    } else {
        let mut uris = Vec::new();
        for url in &args.url {
            uris.extend(lookup_uris(url)?);
        }
        inventory.delete_urls(&uris, &Settings::default())?
    };
    let noun = if removed == 1 { "entry" } else { "entries" };
    crate::emit(&format!("removed {removed} {noun}\n"))
}

/// Prints what a copy did; failures make it an error (exit 3) once reported.
fn report(copy: &CopyReport, from: &Location, to: &Location) -> Result<(), CliError> {
    let noun = if copy.copied == 1 { "entry" } else { "entries" };
    crate::emit(&format!("copied {} {noun} from {from} to {to}\n", copy.copied))?;
    for failure in copy.failed.iter().take(10) {
        crate::note(&format!("httpcache: could not copy {}: {}", failure.key, failure.error));
    }
    match copy.failed.len() {
        0 => Ok(()),
        failed => Err(CliError::Store(format!("{failed} entries could not be copied to {to}"))),
    }
}

/// `httpcache export DEST`: the cache into another store.
pub fn export(location: &Location, destination: &Location) -> Result<(), CliError> {
    if location.kind != StoreKind::Mem && !location.path.exists() {
        return Err(CliError::Store(format!("{}: no such cache", location.path.display())));
    }
    let source = store::open(location, Access::Read)?;
    let target = store::open(destination, Access::Write)?;
    report(&Inventory::new(&source).copy_into(&target)?, location, destination)
}

/// `httpcache import SRC`: another store into the cache.
pub fn import(location: &Location, source: &Location) -> Result<(), CliError> {
    if source.kind != StoreKind::Mem && !source.path.exists() {
        return Err(CliError::Store(format!("{}: no such cache", source.path.display())));
    }
    let from = store::open(source, Access::Read)?;
    let into = store::open(location, Access::Write)?;
    report(&Inventory::new(&from).copy_into(&into)?, source, location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_keep_their_port() {
        assert_eq!(host_of("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(host_of("https://example.com/"), "example.com");
        assert_eq!(host_of("/relative"), "(no host)");
        // A URL stored with user information counts under its host alone.
        assert_eq!(host_of("http://user:REDACTED@127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(host_of("https://user@example.com/"), "example.com");
    }

    #[test]
    fn targets_are_urls_or_keys() {
        assert!(parse_target("http://example.com/a?b=c").is_ok());
        assert!(matches!(parse_target("example"), Err(CliError::Usage(_))));
    }

    #[test]
    fn urls_are_looked_up_as_get_sends_them() {
        let uris = |text: &str| {
            lookup_uris(&parse_target(text).unwrap())
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        assert_eq!(uris("http://example.com/\u{e4}?q=\u{e4}#top"), ["http://example.com/%C3%A4?q=%C3%A4"]);
        assert_eq!(uris("http://u:p@example.com/a"), ["http://u:p@example.com/a", "http://example.com/a"]);
    }
}

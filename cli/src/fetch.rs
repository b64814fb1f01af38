//! `httpcache get`: one request through the reqwest adapter's blocking client.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http::StatusCode;
use httpcache_core::status::Source;
use httpcache_core::{CacheStatus, Reason, RequestOptions, Settings, Store};
use httpcache_reqwest::blocking::CachedClient;
use httpcache_reqwest::{CacheRequestExt, CacheStatusExt};

use crate::error::{CliError, chain};
use crate::progress::Progress;
use crate::store::{self, Access, Location};
use crate::{GetArgs, clock, format};

/// How long `get` waits, after writing a stale-while-revalidate response, for its
/// background revalidation.
const REVALIDATION_WAIT: Duration = Duration::from_secs(30);

/// The settings of the adapters' default clients ([`Settings::session`]), so the tool
/// and programs agree on what is fresh.
pub fn default_settings() -> Settings {
    Settings::session()
}

/// A blocking caching client over `store`, with reqwest's defaults (the proxies the
/// environment names included).
pub fn client(store: Box<dyn Store>, settings: Settings) -> Result<CachedClient<Box<dyn Store>>, CliError> {
    client_from(reqwest::blocking::Client::builder(), store, settings)
}

/// A blocking caching client over `store`, built from `builder`.
pub fn client_from(
    builder: reqwest::blocking::ClientBuilder,
    store: Box<dyn Store>,
    settings: Settings,
) -> Result<CachedClient<Box<dyn Store>>, CliError> {
    let client = builder
        .build()
        .map_err(|error| CliError::Http(format!("building the HTTP client: {}", chain(&error))))?;
    Ok(CachedClient::wrap(client, store, settings))
}

/// What the cache did, in one word: `HIT`, `MISS`, `REVALIDATED` or `STALE`.
pub fn label(status: Option<&CacheStatus>) -> &'static str {
    match status {
        Some(status) if status.source == Source::Cache && status.stale => "STALE",
        Some(status) if status.source == Source::Cache => "HIT",
        Some(status) if status.source == Source::Revalidated => "REVALIDATED",
        _ => "MISS",
    }
}

/// The status line: `HIT 200 OK age=12s expires=in 9m48s elapsed=1.3ms reason=fresh`.
fn status_line(http: StatusCode, status: Option<&CacheStatus>, elapsed: Duration, now: SystemTime) -> String {
    let label = label(status);
    let elapsed = format::elapsed(elapsed);
    let Some(status) = status else {
        return format!("{label} {http} elapsed={elapsed} reason=not-cached");
    };
    let age = status.age.map_or_else(|| "-".to_owned(), format::duration);
    let expires = match (status.expires, status.created_at) {
        (Some(at), _) => format::relative(at, now),
        (None, Some(_)) => "never".to_owned(),
        (None, None) => "-".to_owned(),
    };
    let stored = if status.stored {
        " (stored)"
    } else if label == "MISS" {
        " (not stored)"
    } else {
        ""
    };
    format!("{label} {http} age={age} expires={expires} elapsed={elapsed} reason={}{stored}", status.reason)
}

/// Where the body goes.
enum Output {
    Stdout(io::StdoutLock<'static>),
    File(BufWriter<File>, PathBuf),
}

impl Output {
    fn open(path: Option<&Path>) -> Result<Output, CliError> {
        match path {
            None => Ok(Output::Stdout(io::stdout().lock())),
            Some(path) => File::create(path)
                .map(|file| Output::File(BufWriter::new(file), path.to_owned()))
                .map_err(|error| CliError::Output(format!("cannot write {}: {error}", path.display()))),
        }
    }

    fn name(&self) -> String {
        match self {
            Output::Stdout(_) => "stdout".to_owned(),
            Output::File(_, path) => path.display().to_string(),
        }
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Output::Stdout(stdout) => stdout,
            Output::File(file, _) => file,
        }
    }
}

/// Copies the body to the output. A closed pipe (`| head`) ends the copy quietly.
fn copy(reader: &mut dyn Read, output: &mut Output) -> Result<(), CliError> {
    let mut buffer = vec![0; 64 * 1024];
    let written = loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(CliError::Http(format!("reading the response body: {}", chain(&error))));
            }
        };
        if let Err(error) = output.writer().write_all(&buffer[..read]) {
            break Err(error);
        }
    };
    match written.and_then(|()| output.writer().flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(CliError::Output(format!("cannot write {}: {error}", output.name()))),
    }
}

/// `httpcache get`.
pub fn get(location: &Location, args: GetArgs) -> Result<(), CliError> {
    let store = store::open(location, Access::Write)?;
    let client = client(store, default_settings())?;
    let options = RequestOptions {
        expire_after: args.expire_after,
        only_if_cached: args.only_if_cached,
        refresh: args.refresh,
        force_refresh: args.force_refresh,
    };
    let mut request = client.request(args.method.clone(), args.url.clone()).cache_options(options);
    for (name, value) in args.headers {
        request = request.header(name, value);
    }

    let started = clock::stopwatch();
    let waiting = Progress::spinner(format!("{} {}", args.method, args.url));
    let sent = request.send();
    waiting.finish();
    let response = sent.map_err(|error| CliError::Http(chain(&error)))?;
    // A revalidation's refresh is queued now (the LMDB and fs stores write it behind):
    // keep it, whatever happens next.
    client.cache().store().flush()?;
    let http = response.status();
    let status = response.cache_status().cloned();
    if status.as_ref().is_some_and(|status| status.reason == Reason::OnlyIfCachedMiss) {
        return Err(CliError::NotCached(format!("{} is not in the cache (--only-if-cached)", args.url)));
    }

    let reading = Progress::body(response.content_length());
    let mut output = Output::open(args.output.as_deref())?;
    let copied = copy(&mut reading.wrap(response), &mut output);
    reading.finish();
    let elapsed = started.elapsed();
    if !args.quiet {
        crate::note(&status_line(http, status.as_ref(), elapsed, clock::now()));
    }
    // A stale response served under stale-while-revalidate started its revalidation on
    // a thread, which would end with this process: let it finish and land, so the next
    // command finds the entry refreshed.
    if status.as_ref().is_some_and(|status| status.reason == Reason::StaleWhileRevalidate) {
        client.wait_for_revalidations(REVALIDATION_WAIT);
        client.cache().store().flush()?;
    }
    copied?;
    if http.is_client_error() || http.is_server_error() {
        return Err(CliError::Http(format!("the origin answered {http}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn status_lines() {
        let mut hit = CacheStatus::bypass(Reason::Fresh);
        hit.source = Source::Cache;
        hit.from_cache = true;
        hit.age = Some(Duration::from_secs(12));
        hit.created_at = Some(at(88));
        hit.expires = Some(at(688));
        assert_eq!(
            status_line(StatusCode::OK, Some(&hit), Duration::from_micros(1_300), at(100)),
            "HIT 200 OK age=12s expires=in 9m48s elapsed=1.3ms reason=fresh"
        );
        hit.stale = true;
        hit.reason = Reason::StaleIfError;
        assert!(status_line(StatusCode::OK, Some(&hit), Duration::ZERO, at(100)).starts_with("STALE 200 OK"));

        let mut miss = CacheStatus::bypass(Reason::Miss);
        miss.stored = true;
        miss.created_at = Some(at(100));
        assert_eq!(
            status_line(StatusCode::OK, Some(&miss), Duration::from_micros(50), at(100)),
            "MISS 200 OK age=- expires=never elapsed=50µs reason=miss (stored)"
        );
        let mut revalidated = CacheStatus::bypass(Reason::Revalidated);
        revalidated.source = Source::Revalidated;
        assert_eq!(label(Some(&revalidated)), "REVALIDATED");
        assert_eq!(label(None), "MISS");
    }
}

//! # httpcache (the command line tool)
//!
//! Fetch URLs through an httpcache cache, and look inside the caches programs built
//! with the adapters. A thin layer: requests go through the reqwest adapter's blocking
//! client (so through the core's driver), inspection through
//! [`httpcache_core::inventory`]; the tool adds no caching policy of its own.
//!
//! ```text
//! httpcache get URL [-X METHOD] [-H 'Name: value']... [-o FILE]
//!               [--expire-after 10m] [--refresh | --force-refresh | --only-if-cached]
//! httpcache ls [--expired | --valid] [--sort expires|size|created] [--reverse] [--limit N] [--json]
//! httpcache show URL|KEY
//! httpcache stats [--json]
//! httpcache purge --expired | --url URL | --older-than 7d | --all
//! httpcache export lmdb:PATH | fs:DIR | fs-json:DIR
//! httpcache import lmdb:PATH | fs:DIR | fs-json:DIR
//! httpcache demo
//! ```
//!
//! * `get`: the body goes to stdout (or `-o FILE`); stderr gets one status line,
//!   `HIT`, `MISS`, `REVALIDATED` or `STALE` with the HTTP status, the age, when the
//!   entry expires, the time taken and the cache's reason, e.g.
//!   `HIT 200 OK age=12s expires=in 9m48s elapsed=1.3ms reason=fresh`. When stderr
//!   is a terminal, a request still running after 0.3 s shows a spinner (while the
//!   response arrives and the cache buffers it) and a byte bar for a body streamed
//!   past the cache (one too large to store). `--expire-after`
//!   takes `never`, `0` (stale at once) or a duration such as `30s`, `10m`, `1h30m`,
//!   `7d`. The cache's settings are those of the adapters' default clients
//!   (`httpcache_core::Settings::session`): RFC 9111 rules, and 10 minutes for
//!   responses that say nothing about freshness.
//! * `ls`: one row per stored response (status, method, size, created, expires,
//!   fresh/stale, URL); `--json` prints one JSON array for scripts.
//! * `show`: every stored variant of a URL (or of a 64-hex-digit cache key): the
//!   stored request and response headers, the times and the state.
//! * `stats`: entries, bytes, fresh and expired counts, the oldest and newest entry,
//!   entries per host.
//! * `purge`: deletes expired entries, the entries of a URL, those older than a
//!   duration, or everything; prints how many went.
//! * `export DEST` / `import SRC`: copies every entry from the cache to another store,
//!   or from another store into the cache (migrating between store kinds).
//! * `demo`: no network needed. Starts a small origin on 127.0.0.1 and shows a miss, a
//!   hit, a revalidation (304) and a stale response served while the origin fails,
//!   with the time each took, on an LMDB store in a temporary directory.
//!
//! ## Which cache
//!
//! `--cache PATH` (or the `HTTPCACHE_DIR` environment variable) and `--store
//! lmdb|fs|fs-json|mem` (or `HTTPCACHE_STORE`). The default is the LMDB store in the
//! user's cache directory that the adapters' default clients use
//! (`httpcache_lmdb::default_cache_dir("httpcache")`, e.g. `~/.cache/httpcache`),
//! so `httpcache ls` shows what a program cached. A path that holds something else (a
//! file, a directory of other files, another store kind) is refused before anything is
//! written there; commands that only read do not create a missing cache directory.
//!
//! ## Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the request failed: transport error, or the origin answered 4xx/5xx (the body is still written) |
//! | 2 | bad command line: unknown option, unparsable URL, duration, header or store spec |
//! | 3 | the cache could not be used: not a cache, locked, unreadable, full |
//! | 4 | not in the cache: `get --only-if-cached` missed, `show` found nothing |
//! | 5 | the output (`-o FILE` or stdout) could not be written |
//!
//! Errors are one line on stderr: `httpcache: error: ...` (`httpcache` with no command
//! prints the help there instead, and exits 2). A failed command never
//! deletes anything from the cache.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod demo;
mod error;
mod fetch;
mod format;
mod inspect;
mod progress;
mod store;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use http::{HeaderName, HeaderValue, Method};
use httpcache_core::Expiry;
use reqwest::Url;

use crate::error::CliError;
use crate::store::{Location, StoreKind};

/// Exit codes, shown at the end of `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the request failed: transport error, or the origin answered 4xx/5xx
  2  bad command line: unknown option, unparsable URL, duration, header or store spec
  3  the cache could not be used: not a cache, locked, unreadable, full
  4  not in the cache: get --only-if-cached missed, show found nothing
  5  the output (-o FILE or stdout) could not be written

Durations: 0, 30s, 10m, 1h30m, 7d, 2w (and never, for --expire-after).";

/// A client-side HTTP cache: fetch through it, inspect it, purge it, copy it.
#[derive(Debug, Parser)]
#[command(name = "httpcache", version, about, after_help = EXIT_CODES)]
struct Cli {
    /// The cache directory [default: the adapters' default, e.g. ~/.cache/httpcache]
    #[arg(long, global = true, value_name = "PATH", env = "HTTPCACHE_DIR")]
    cache: Option<PathBuf>,

    /// The store kind of the cache
    #[arg(long, global = true, value_enum, default_value_t = StoreKind::Lmdb, env = "HTTPCACHE_STORE")]
    store: StoreKind,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fetch a URL through the cache: body to stdout or FILE, status line on stderr
    Get(GetArgs),
    /// List the stored responses
    Ls(LsArgs),
    /// Show the stored request, response headers and times of a URL or cache key
    Show {
        /// A URL (every method and variant stored for it) or a 64-hex-digit cache key
        target: String,
    },
    /// Count entries, bytes, fresh and expired, per host
    Stats {
        /// Print one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Delete entries; prints how many were removed
    Purge(PurgeArgs),
    /// Copy every entry of the cache into another store
    Export {
        /// The destination: lmdb:PATH, fs:DIR or fs-json:DIR
        #[arg(value_parser = store::parse_spec, value_name = "DEST")]
        destination: Location,
    },
    /// Copy every entry of another store into the cache
    Import {
        /// The source: lmdb:PATH, fs:DIR or fs-json:DIR
        #[arg(value_parser = store::parse_spec, value_name = "SRC")]
        source: Location,
    },
    /// See it work, without network: miss, hit, revalidation, stale-if-error
    Demo,
}

/// `httpcache get`.
#[derive(Debug, Args)]
struct GetArgs {
    /// The URL (http or https)
    #[arg(value_parser = parse_url)]
    url: Url,

    /// The request method
    #[arg(short = 'X', long = "request", value_name = "METHOD", default_value = "GET", value_parser = parse_method)]
    method: Method,

    /// A request header (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,

    /// Write the body to FILE instead of stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Treat a stored response older than this as stale, and keep a new one this long
    /// (unless the response's own headers say otherwise): 0, 10m, 7d, never...
    #[arg(long, value_name = "DURATION", value_parser = format::parse_expiry)]
    expire_after: Option<Expiry>,

    /// Revalidate the stored response with the origin before using it
    #[arg(long, conflicts_with_all = ["force_refresh", "only_if_cached"])]
    refresh: bool,

    /// Skip the cache read, fetch from the origin and overwrite the stored response
    #[arg(long, conflicts_with = "only_if_cached")]
    force_refresh: bool,

    /// Never contact the origin: serve what is stored (even stale) or exit 4
    #[arg(long)]
    only_if_cached: bool,

    /// No status line on stderr
    #[arg(short, long)]
    quiet: bool,
}

/// The orders of `ls --sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SortKey {
    /// Soonest expiry first; never-expiring last.
    Expires,
    /// Smallest body first.
    Size,
    /// Oldest first.
    Created,
}

/// `httpcache ls`.
#[derive(Debug, Args)]
struct LsArgs {
    /// Only expired entries
    #[arg(long, conflicts_with = "valid")]
    expired: bool,

    /// Only entries still fresh
    #[arg(long)]
    valid: bool,

    /// Order of the rows [default: by cache key]
    #[arg(long, value_enum)]
    sort: Option<SortKey>,

    /// Reverse the order
    #[arg(long)]
    reverse: bool,

    /// At most N rows (N at least 1)
    #[arg(long, value_name = "N")]
    limit: Option<std::num::NonZeroUsize>,

    /// Print one JSON array instead of a table
    #[arg(long)]
    json: bool,
}

/// `httpcache purge`: exactly one of its selections.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct PurgeArgs {
    /// Delete the expired entries
    #[arg(long)]
    expired: bool,

    /// Delete every entry stored for URL (repeatable)
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    url: Vec<Url>,

    /// Delete the entries first stored more than DURATION ago
    #[arg(long, value_name = "DURATION", value_parser = format::parse_duration)]
    older_than: Option<Duration>,

    /// Delete everything
    #[arg(long)]
    all: bool,
}

/// Parses an absolute `http`/`https` URL.
fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|error| format!("'{text}' is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("'{text}' is not an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{text}' has no host"));
    }
    Ok(url)
}

/// Parses a method name (`get` is `GET`).
fn parse_method(text: &str) -> Result<Method, String> {
    Method::from_bytes(text.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("'{text}' is not an HTTP method"))
}

/// Parses `Name: value`.
fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(format!("'{text}' is not a header: expected 'Name: value'"));
    };
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("'{}' is not a header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value of header '{name}' is not valid"))?;
    Ok((name, value))
}

/// Runs the command; the error carries the exit code.
fn run(cli: Cli) -> Result<(), CliError> {
    let (cache, kind) = (cli.cache, cli.store);
    let location = || store::resolve(cache.clone(), kind);
    match cli.command {
        Command::Get(args) => fetch::get(&location()?, args),
        Command::Ls(args) => inspect::ls(&location()?, &args),
        Command::Show { target } => inspect::show(&location()?, &target),
        Command::Stats { json } => inspect::stats(&location()?, json),
        Command::Purge(args) => inspect::purge(&location()?, &args),
        Command::Export { destination } => inspect::export(&location()?, &destination),
        Command::Import { source } => inspect::import(&location()?, &source),
        Command::Demo => demo::run(kind),
    }
}

/// Writes `text` to stdout. A closed pipe (`httpcache ls | head`) is not an error.
fn emit(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(error) => Err(CliError::Output(format!("cannot write to stdout: {error}"))),
    }
}

/// Writes `line` and a newline to stderr. A stderr that cannot be written (full, a
/// closed pipe) loses the line; unlike `eprintln!`, which panics, it changes no exit code.
fn note(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}").and_then(|()| stderr.flush());
}

/// One line from clap's error: its message and hints, without the usage block.
fn one_line(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty() && !line.starts_with("Usage:") && !line.starts_with("For more information")
        })
        .collect();
    let joined = parts.join(" ");
    joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version, on stdout: exit 5 when it cannot be written (a
            // closed pipe, as in `httpcache --help | head -1`, is no error).
            return match error.print() {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    ExitCode::from(error::code::OUTPUT)
                }
                _ => ExitCode::SUCCESS,
            };
        }
        Err(error) if error.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `httpcache` alone: the help, laid out, on stderr (run into one line, it is
            // unreadable); a usage error all the same.
            let _ = error.print();
            return ExitCode::from(error::code::USAGE);
        }
        Err(error) => {
            note(&format!("httpcache: error: {} (see httpcache --help)", one_line(&error)));
            return ExitCode::from(error::code::USAGE);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::from(error::code::OK),
        Err(error) => {
            note(&format!("httpcache: error: {error}"));
            ExitCode::from(error.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn urls_methods_headers() {
        assert!(parse_url("http://127.0.0.1:8080/x").is_ok());
        assert!(parse_url("not a url").is_err());
        assert!(parse_url("ftp://example.com/").is_err());
        assert!(parse_url("http://").is_err());
        assert_eq!(parse_method("post"), Ok(Method::POST));
        assert!(parse_method("BAD METHOD").is_err());
        let (name, value) = parse_header("Accept:  text/html ").unwrap();
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("accept", "text/html"));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn clap_errors_fit_on_one_line() {
        let error = Cli::try_parse_from(["httpcache", "--store", "redis", "ls"]).unwrap_err();
        let line = one_line(&error);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("redis") && line.contains("lmdb"), "{line}");
    }
}

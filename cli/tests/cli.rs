//! The `httpcache` binary driven as a user would, against the loopback origin of
//! `httpcache-tests`. Every test has its own cache directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use httpcache_tests::origin::Origin;
use serde_json::Value;

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:#?}");
        &self.stdout
    }

    /// The JSON printed on stdout.
    fn json(&self) -> Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|error| panic!("not JSON ({error}): {self:#?}"))
    }

    /// Asserts that the run failed with `code` and one `httpcache: error:` line.
    fn fails_with(&self, code: i32) -> &str {
        assert_eq!(self.code, code, "expected exit {code}: {self:#?}");
        let error = self.stderr.lines().last().unwrap_or_default();
        assert!(error.starts_with("httpcache: error: "), "{self:#?}");
        error
    }
}

/// Runs `httpcache` with `args`, with no cache settings from the environment.
fn httpcache(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_httpcache"))
        .args(args)
        .env_remove("HTTPCACHE_DIR")
        .env_remove("HTTPCACHE_STORE")
        .output()
        .expect("run the httpcache binary");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A cache directory of its own, and the options naming it.
struct Cache {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Cache {
    fn new() -> Cache {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("cache");
        Cache { _dir: dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("UTF-8 temporary path")
    }

    /// Runs `httpcache --cache <this cache> args...`.
    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--cache", self.path()];
        all.extend_from_slice(args);
        httpcache(&all)
    }

    /// `get`, returning the run.
    fn get(&self, url: &str, extra: &[&str]) -> Run {
        let mut args = vec!["get", url];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// The URLs `ls --json` lists, sorted.
    fn urls(&self, store: &[&str]) -> Vec<String> {
        let mut args = store.to_vec();
        args.extend(["ls", "--json"]);
        let mut urls: Vec<String> = self
            .run(&args)
            .json()
            .as_array()
            .expect("a JSON array")
            .iter()
            .map(|entry| entry["url"].as_str().expect("url").to_owned())
            .collect();
        urls.sort();
        urls
    }
}

/// The status line `get` printed.
fn status_line(run: &Run) -> &str {
    run.stderr.lines().last().unwrap_or_default()
}

#[test]
fn get_misses_then_hits_and_the_origin_is_asked_once() {
    let origin = Origin::start();
    let cache = Cache::new();
    let url = origin.url("/max-age/60");

    let first = cache.get(&url, &[]);
    assert_eq!(first.ok(), "max-age=60 hit 1");
    let line = status_line(&first);
    assert!(line.starts_with("MISS 200 OK "), "{line}");
    assert!(line.contains("reason=miss (stored)") && line.contains("expires=in "), "{line}");

    let second = cache.get(&url, &[]);
    assert_eq!(second.ok(), "max-age=60 hit 1");
    let line = status_line(&second);
    assert!(line.starts_with("HIT 200 OK age="), "{line}");
    assert!(line.contains("elapsed=") && line.contains("reason=fresh"), "{line}");
    assert_eq!(origin.hits("/max-age/60"), 1);

    let quiet = cache.get(&url, &["--quiet"]);
    assert_eq!((quiet.ok(), quiet.stderr.as_str()), ("max-age=60 hit 1", ""));
}

#[test]
fn get_revalidates_refreshes_and_sends_headers() {
    let origin = Origin::start();
    let cache = Cache::new();
    // `/etag` says no-cache: every later use is revalidated with a 304.
    let url = origin.url("/etag");
    assert!(status_line(&cache.get(&url, &[])).starts_with("MISS"));
    let revalidated = cache.get(&url, &[]);
    assert_eq!(revalidated.ok(), "etag v1");
    assert!(status_line(&revalidated).starts_with("REVALIDATED 200 OK"), "{revalidated:#?}");
    assert_eq!(origin.hits("/etag"), 2);

    let fresh = origin.url("/max-age/60");
    cache.get(&fresh, &[]).ok();
    let refreshed = cache.get(&fresh, &["--refresh"]);
    assert!(status_line(&refreshed).contains("reason=refresh"), "{refreshed:#?}");
    let forced = cache.get(&fresh, &["--force-refresh", "-H", "X-Test: yes"]);
    assert_eq!(forced.ok(), "max-age=60 hit 3");
    assert!(status_line(&forced).starts_with("MISS"), "{forced:#?}");
    let headers = origin.last_request_headers("/max-age/60").expect("a request");
    assert_eq!(headers.get("x-test").map(|value| value.as_bytes()), Some(&b"yes"[..]));
    assert!(status_line(&cache.get(&fresh, &[])).starts_with("HIT"));
}

#[test]
fn a_revalidation_is_kept_when_get_exits() {
    // The LMDB store writes a 304's refresh behind; `get` waits for it before exiting,
    // so the next process sees the refreshed entry (RFC 9111 §4.3.4).
    let origin = Origin::start();
    let cache = Cache::new();
    let url = origin.url("/etag");
    cache.get(&url, &["--expire-after", "0"]).ok();
    let expired = cache.run(&["ls", "--expired", "--json"]).json();
    assert_eq!(expired.as_array().map(Vec::len), Some(1), "stored already expired");
    let revalidated = cache.get(&url, &[]);
    assert!(status_line(&revalidated).starts_with("REVALIDATED"), "{revalidated:#?}");
    let valid = cache.run(&["ls", "--valid", "--json"]).json();
    assert_eq!(valid.as_array().map(Vec::len), Some(1), "the refreshed entry, in the next process");
    assert_eq!(valid[0]["url"], url.as_str());
}

// RFC 5861 §3: a stale response served under stale-while-revalidate is revalidated in
// the background. `get` exits right after; it waits for that revalidation, which would
// otherwise die with the process, leaving the entry stale for the whole window.
#[test]
fn a_stale_while_revalidate_hit_is_refreshed_before_get_exits() {
    let origin = Origin::start();
    let cache = Cache::new();
    // `/swr`: max-age=1, stale-while-revalidate=600.
    let url = origin.url("/swr");
    assert_eq!(cache.get(&url, &[]).ok(), "swr hit 1");
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    let stale = cache.get(&url, &[]);
    assert_eq!(stale.ok(), "swr hit 1", "served stale at once");
    assert!(
        status_line(&stale).starts_with("STALE") && status_line(&stale).contains("stale-while-revalidate")
    );
    assert_eq!(origin.hits("/swr"), 2, "revalidated before exiting");
    let valid = cache.run(&["ls", "--valid", "--json"]).json();
    assert_eq!(valid.as_array().map(Vec::len), Some(1), "the refreshed entry, in the next process");
    assert_eq!(cache.get(&url, &[]).ok(), "swr hit 2");
}

#[test]
fn get_writes_the_body_to_a_file() {
    let origin = Origin::start();
    let cache = Cache::new();
    let file = cache.path.with_file_name("body.txt");
    let run = cache.get(&origin.url("/max-age/60"), &["-o", file.to_str().expect("UTF-8 path")]);
    assert_eq!(run.ok(), "");
    assert_eq!(std::fs::read_to_string(&file).expect("the output file"), "max-age=60 hit 1");
    assert!(status_line(&run).starts_with("MISS"));
}

#[test]
fn only_if_cached_miss_exits_4_without_asking_the_origin() {
    let origin = Origin::start();
    let cache = Cache::new();
    let url = origin.url("/max-age/60");
    let miss = cache.get(&url, &["--only-if-cached"]);
    assert!(miss.fails_with(4).contains("not in the cache"), "{miss:#?}");
    assert_eq!(miss.stdout, "");
    assert_eq!(origin.hits("/max-age/60"), 0);

    cache.get(&url, &[]).ok();
    let hit = cache.get(&url, &["--only-if-cached"]);
    assert_eq!(hit.ok(), "max-age=60 hit 1");

    // A method the cache does not store is not sent either (RFC 9111 §5.2.1.7): a POST
    // has side effects the user said not to cause.
    let post = cache.get(&url, &["-X", "POST", "--only-if-cached"]);
    assert!(post.fails_with(4).contains("not in the cache"), "{post:#?}");
    assert_eq!(origin.hits("/max-age/60"), 1);
}

#[test]
fn http_errors_exit_1_and_still_write_the_body() {
    let origin = Origin::start();
    let cache = Cache::new();
    let run = cache.get(&origin.url("/status/404"), &[]);
    assert!(run.fails_with(1).contains("404"), "{run:#?}");
    assert_eq!(run.stdout, "status 404");

    let refused = cache.get("http://127.0.0.1:1/", &[]);
    refused.fails_with(1);
}

/// A variant id is a 64-bit digest: `ls --json` gives it as 16 hex digits, as `show`
/// prints it, not as a JSON number, which a reader holds exactly only below 2^53.
#[test]
fn ls_json_gives_the_variant_as_text_that_show_agrees_with() {
    let origin = Origin::start();
    let cache = Cache::new();
    let url = origin.url("/vary/accept");
    cache.get(&url, &["-H", "Accept: text/plain"]).ok();
    let listed = cache.run(&["ls", "--json"]).json();
    let variant = listed[0]["variant"].as_str().expect("the variant as a string").to_owned();
    assert_eq!(variant.len(), 16, "{variant}");
    assert!(variant.bytes().all(|b| b.is_ascii_hexdigit()) && variant != "0000000000000000", "{variant}");
    let shown = cache.run(&["show", &url]);
    assert!(shown.ok().contains(&format!("variant        {variant}")), "{shown:#?}");
}

#[test]
fn ls_prints_a_table_and_json() {
    let origin = Origin::start();
    let cache = Cache::new();
    let (small, large) = (origin.url("/max-age/60"), origin.url("/bytes/5000"));
    cache.get(&small, &[]).ok();
    cache.get(&large, &[]).ok();

    let table = cache.run(&["ls"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 4, "{table:#?}");
    for column in ["STATUS", "METHOD", "SIZE", "CREATED", "EXPIRES", "STATE", "URL"] {
        assert!(lines[0].contains(column), "{}", lines[0]);
    }
    for url in [&small, &large] {
        let row = lines.iter().find(|line| line.ends_with(url.as_str())).expect("a row per URL");
        assert!(row.starts_with("200") && row.contains("GET") && row.contains("fresh"), "{row}");
    }
    assert!(lines[3].starts_with("2 entries"), "{}", lines[3]);

    let json = cache.run(&["ls", "--json"]).json();
    let entries = json.as_array().expect("an array");
    assert_eq!(entries.len(), 2);
    let large_entry = entries.iter().find(|entry| entry["url"] == large.as_str()).expect("the large one");
    assert_eq!(large_entry["size"], 5000);
    assert_eq!(large_entry["method"], "GET");
    assert_eq!(large_entry["status"], 200);
    assert_eq!(large_entry["expired"], false);
    assert_eq!(large_entry["key"].as_str().map(str::len), Some(64));
    assert!(large_entry["created"].as_str().is_some_and(|at| at.ends_with('Z')));

    let biggest = cache.run(&["ls", "--json", "--sort", "size", "--reverse", "--limit", "1"]).json();
    assert_eq!(biggest[0]["url"], large.as_str());
    assert_eq!(biggest.as_array().map(Vec::len), Some(1));
    // `--limit 0` would list nothing and say the cache is empty: it is refused.
    assert!(cache.run(&["ls", "--limit", "0"]).fails_with(2).contains("limit"));

    // An entry expired at once, without waiting.
    let expired = origin.url("/etag");
    cache.get(&expired, &["--expire-after", "0"]).ok();
    let listed = cache.run(&["ls", "--expired", "--json"]).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["url"], expired.as_str());
    assert_eq!(cache.run(&["ls", "--valid", "--json"]).json().as_array().map(Vec::len), Some(2));
    assert!(cache.run(&["ls", "--expired"]).ok().contains("stale"));
}

#[test]
fn show_prints_the_stored_exchange() {
    let origin = Origin::start();
    let cache = Cache::new();
    let url = origin.url("/max-age/60");
    cache.get(&url, &["-H", "Accept: text/plain"]).ok();

    let shown = cache.run(&["show", &url]);
    let text = shown.ok();
    assert!(text.contains(&format!("request        GET {url}")), "{text}");
    assert!(text.contains("response       HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("cache-control: max-age=60"), "{text}");
    assert!(text.contains("state          fresh"), "{text}");
    assert!(text.contains("expires        20"), "{text}");

    let key = cache.run(&["ls", "--json"]).json()[0]["key"].as_str().expect("a key").to_owned();
    assert!(cache.run(&["show", &key]).ok().contains(&format!("key            {key}")));

    cache.run(&["show", &origin.url("/nothing-here")]).fails_with(4);
    cache.run(&["show", "neither"]).fails_with(2);
}

// `show URL` and `purge --url URL` find what `get URL` stored, however the URL was
// typed: reqwest percent-encodes non-ASCII characters, drops the fragment and moves a
// user name and password out of the URL.
#[test]
fn show_and_purge_find_what_get_stored_for_the_same_url() {
    let origin = Origin::start();
    let cache = Cache::new();
    let unicode = origin.url("/max-age/60?q=\u{e4}#top");
    let userinfo = origin.url("/bytes/10").replacen("http://", "http://user:secret@", 1);
    cache.get(&unicode, &[]).ok();
    cache.get(&userinfo, &[]).ok();
    assert_eq!(cache.urls(&[]).len(), 2);

    for url in [&unicode, &userinfo] {
        let shown = cache.run(&["show", url]);
        assert!(shown.ok().contains("state          fresh"), "{shown:#?}");
        assert_eq!(cache.run(&["purge", "--url", url]).ok(), "removed 1 entry\n", "{url}");
    }
    assert!(cache.urls(&[]).is_empty());
}

#[test]
fn stats_counts_entries_and_hosts() {
    let origin = Origin::start();
    let cache = Cache::new();
    cache.get(&origin.url("/max-age/60"), &[]).ok();
    cache.get(&origin.url("/bytes/1000"), &[]).ok();
    cache.get(&origin.url("/etag"), &["--expire-after", "0"]).ok();

    let text = cache.run(&["stats"]);
    let text = text.ok();
    assert!(text.contains("entries    3 (3 keys)"), "{text}");
    assert!(text.contains("fresh      2") && text.contains("expired    1"), "{text}");
    let host = origin.addr().to_string();
    assert!(text.lines().any(|line| line.contains(&host) && line.trim_end().ends_with(" 3")), "{text}");

    let json = cache.run(&["stats", "--json"]).json();
    assert_eq!(json["entries"], 3);
    assert_eq!(json["expired"], 1);
    assert_eq!(json["fresh"], 2);
    assert_eq!(json["hosts"][0]["host"], host.as_str());
    assert_eq!(json["hosts"][0]["entries"], 3);
    assert!(json["bytes"].as_u64().is_some_and(|bytes| bytes >= 1000));
    assert_eq!(json["newest"]["url"], origin.url("/etag").as_str());
}

#[test]
fn purge_each_kind() {
    let origin = Origin::start();
    let cache = Cache::new();
    let (fresh, expired, other) = (origin.url("/max-age/60"), origin.url("/etag"), origin.url("/bytes/10"));
    cache.get(&fresh, &[]).ok();
    cache.get(&expired, &["--expire-after", "0"]).ok();
    cache.get(&other, &[]).ok();

    assert_eq!(cache.run(&["purge", "--expired"]).ok(), "removed 1 entry\n");
    assert_eq!(cache.urls(&[]), vec![other.clone(), fresh.clone()]);

    assert_eq!(cache.run(&["purge", "--url", &fresh]).ok(), "removed 1 entry\n");
    assert_eq!(cache.urls(&[]), vec![other.clone()]);

    assert_eq!(cache.run(&["purge", "--older-than", "1h"]).ok(), "removed 0 entries\n");
    assert_eq!(cache.run(&["purge", "--older-than", "0"]).ok(), "removed 1 entry\n");
    assert!(cache.urls(&[]).is_empty());

    cache.get(&fresh, &[]).ok();
    cache.get(&other, &[]).ok();
    assert_eq!(cache.run(&["purge", "--all"]).ok(), "removed 2 entries\n");
    assert!(cache.urls(&[]).is_empty());

    // Exactly one selection.
    cache.run(&["purge"]).fails_with(2);
    cache.run(&["purge", "--all", "--expired"]).fails_with(2);
}

#[test]
fn export_and_import_round_trip_between_store_kinds() {
    let origin = Origin::start();
    let lmdb = Cache::new();
    let urls = [origin.url("/max-age/60"), origin.url("/bytes/2000"), origin.url("/etag")];
    for url in &urls {
        lmdb.get(url, &[]).ok();
    }
    let mut expected: Vec<String> = urls.to_vec();
    expected.sort();
    assert_eq!(lmdb.urls(&[]), expected);

    let fs = Cache::new();
    let exported = lmdb.run(&["export", &format!("fs:{}", fs.path())]);
    assert!(exported.ok().starts_with("copied 3 entries"), "{exported:#?}");
    assert_eq!(fs.urls(&["--store", "fs"]), expected);

    let json = Cache::new();
    json.run(&["--store", "fs-json", "import", &format!("fs:{}", fs.path())]).ok();
    assert_eq!(json.urls(&["--store", "fs-json"]), expected);
    let file = std::fs::read_dir(json.path.as_path())
        .expect("the fs-json directory")
        .flatten()
        .find(|entry| entry.path().is_dir())
        .and_then(|shard| std::fs::read_dir(shard.path()).ok()?.flatten().next())
        .expect("an entry file");
    assert!(file.path().extension().is_some_and(|ext| ext == "json"));

    let back = Cache::new();
    back.run(&["import", &format!("fs-json:{}", json.path())]).ok();
    assert_eq!(back.urls(&[]), expected);
    // The copies are usable: served without asking the origin.
    let hits = origin.total_hits();
    assert_eq!(back.get(&urls[0], &["--only-if-cached"]).ok(), "max-age=60 hit 1");
    assert_eq!(origin.total_hits(), hits);

    // Store specs are checked before anything is opened.
    lmdb.run(&["export", "nowhere"]).fails_with(2);
    lmdb.run(&["import", &format!("lmdb:{}", Path::new(fs.path()).join("missing").display())]).fails_with(3);
    // A cache that does not exist (a mistyped --cache) is not exported as if empty: the
    // same error as importing from one, and nothing is created at the destination.
    let missing = Cache::new();
    let destination = Path::new(fs.path()).join("out");
    missing.run(&["export", &format!("fs:{}", destination.display())]).fails_with(3);
    assert!(!destination.exists(), "nothing created");
}

#[test]
fn demo_shows_miss_hit_revalidation_and_stale() {
    let run = httpcache(&["demo"]);
    let text = run.ok();
    let row = |step: &str| {
        text.lines()
            .find(|line| line.starts_with(step))
            .unwrap_or_else(|| panic!("no row {step:?} in:\n{text}"))
            .to_owned()
    };
    assert!(row("1 ").contains(" MISS "), "{text}");
    assert!(row("2 ").contains(" HIT "), "{text}");
    assert!(row("3 ").contains(" REVALIDATED ") && row("3 ").contains(" 304 "), "{text}");
    assert!(row("4 ").contains(" STALE ") && row("4 ").contains(" 503 "), "{text}");
    assert!(row("4 ").contains("stale-if-error"), "{text}");
    assert!(text.lines().next().is_some_and(|line| line.starts_with("httpcache demo")), "{text}");
}

// "No network needed": the demo's origin is on loopback, so a proxy named by the
// environment (as many corporate and CI machines set one) must not see its requests.
// Here the proxy is a closed port: through it, every step would fail.
#[test]
fn demo_goes_straight_to_its_origin_whatever_proxy_is_set() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_httpcache"));
    command.arg("demo").env_remove("HTTPCACHE_DIR").env_remove("HTTPCACHE_STORE").env_remove("NO_PROXY");
    command.env_remove("no_proxy");
    for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        command.env(name, "http://127.0.0.1:9");
    }
    let output = command.output().expect("run the httpcache binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.lines().any(|line| line.starts_with("4 ") && line.contains(" STALE ")), "{stdout}");
}

#[test]
fn errors_are_one_line_with_distinct_codes_and_lose_nothing() {
    let origin = Origin::start();
    let cache = Cache::new();
    let url = origin.url("/max-age/60");
    cache.get(&url, &[]).ok();

    // A file as the cache: refused, and left as it was.
    let file = cache.path.with_file_name("a-file");
    std::fs::write(&file, "not a cache").expect("write a file");
    let file_arg = file.to_str().expect("UTF-8 path");
    for args in [
        &["ls"][..],
        &["get", &url],
        &["purge", "--all"],
        &["export", &format!("fs:{}", cache.path.with_file_name("out").display())],
    ] {
        let mut all = vec!["--cache", file_arg];
        all.extend_from_slice(args);
        let run = httpcache(&all);
        assert!(run.fails_with(3).contains("is not a cache"), "{run:#?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:#?}");
    }
    assert_eq!(std::fs::read_to_string(&file).expect("the file"), "not a cache");

    // Another store kind's directory is refused too, before anything is written there.
    cache.run(&["--store", "fs", "ls"]).fails_with(3);

    let bad_url = cache.get("not a url", &[]);
    assert!(bad_url.fails_with(2).contains("not a URL"), "{bad_url:#?}");
    assert_eq!(bad_url.stderr.lines().count(), 1);
    let bad_store = cache.run(&["--store", "redis", "ls"]);
    assert!(bad_store.fails_with(2).contains("redis"), "{bad_store:#?}");
    assert_eq!(bad_store.stderr.lines().count(), 1);
    cache.run(&["purge", "--older-than", "soon"]).fails_with(2);
    cache.get(&url, &["--expire-after", "5"]).fails_with(2);
    cache.get(&url, &["-X", "BAD METHOD"]).fails_with(2);
    cache.get(&url, &["--refresh", "--only-if-cached"]).fails_with(2);

    // The entry survived every failed command.
    assert_eq!(cache.urls(&[]), vec![url.clone()]);
    assert_eq!(cache.get(&url, &["--only-if-cached"]).ok(), "max-age=60 hit 1");
    assert_eq!(origin.hits("/max-age/60"), 1);
}

// The binary and JSON fs stores ignore each other's files: opened as the other kind, a
// cache would look empty, and `get` would write a second copy beside each entry. Refused,
// as an LMDB directory is, before anything is written.
#[test]
fn an_fs_store_of_the_other_format_is_refused() {
    let origin = Origin::start();
    let url = origin.url("/max-age/60");
    for (kind, other) in [("fs-json", "fs"), ("fs", "fs-json")] {
        let cache = Cache::new();
        cache.get(&url, &["--store", kind]).ok();
        let files = || walk(&cache.path);
        let before = files();
        for args in [&["ls"][..], &["get", &url], &["purge", "--all"]] {
            let mut all = vec!["--store", other];
            all.extend_from_slice(args);
            let run = cache.run(&all);
            let error = run.fails_with(3);
            assert!(error.contains(&format!("use --store {kind}")), "{run:#?}");
        }
        assert_eq!(files(), before, "nothing written or deleted");
        assert_eq!(cache.urls(&["--store", kind]), vec![url.clone()]);
    }
}

/// Every file under `dir`, sorted.
// A directory of other files (a mistyped --cache: a project, the home directory) is no
// fs store, as it is no LMDB store: refused before shard directories are written into it.
#[test]
fn a_directory_of_other_files_is_not_taken_for_an_fs_store() {
    let origin = Origin::start();
    let url = origin.url("/max-age/60");
    let cache = Cache::new();
    std::fs::create_dir_all(cache.path.join("src")).expect("a subdirectory");
    std::fs::write(cache.path.join("notes.txt"), "mine").expect("a file");
    let before = walk(&cache.path);
    for kind in ["fs", "fs-json"] {
        for args in [&["get", &url][..], &["ls"], &["purge", "--all"]] {
            let mut all = vec!["--store", kind];
            all.extend_from_slice(args);
            let run = cache.run(&all);
            assert!(run.fails_with(3).contains("is not a cache"), "{run:#?}");
        }
    }
    assert_eq!(origin.hits("/max-age/60"), 0);
    let source = Cache::new();
    source.get(&url, &[]).ok();
    let into = cache.path.to_str().expect("UTF-8 path");
    let export = source.run(&["export", &format!("fs:{into}")]);
    assert!(export.fails_with(3).contains("is not a cache"), "{export:#?}");
    assert_eq!(walk(&cache.path), before, "nothing written or deleted");
    let shards = std::fs::read_dir(&cache.path).expect("the directory").count();
    assert_eq!(shards, 2, "no shard directory was made");

    // An fs store's own directory, its entries all purged, is still one.
    let store = Cache::new();
    store.get(&url, &["--store", "fs"]).ok();
    store.run(&["--store", "fs", "purge", "--all"]).ok();
    store.get(&url, &["--store", "fs"]).ok();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending
                .extend(std::fs::read_dir(&path).expect("a directory").flatten().map(|entry| entry.path()));
        } else {
            found.push(path);
        }
    }
    found.sort();
    found
}

// A stderr that cannot be written loses the messages, not the exit codes: `eprintln!`
// panicked there (exit 101).
#[test]
fn an_unwritable_stderr_keeps_the_exit_codes() {
    let cache = Cache::new();
    let run = |args: &[&str]| {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
        Command::new(env!("CARGO_BIN_EXE_httpcache"))
            .args(["--cache", cache.path()])
            .args(args)
            .stderr(full)
            .output()
            .expect("run the httpcache binary")
            .status
            .code()
    };
    assert_eq!(run(&["get", "http://127.0.0.1:1/"]), Some(1));
    assert_eq!(run(&["ls", "--bogus"]), Some(2));
    assert_eq!(run(&["ls"]), Some(0), "'no entries' on stderr");
}

// Exit 5: the output could not be written, help and version included.
#[test]
fn an_unwritable_stdout_exits_5() {
    let cache = Cache::new();
    for args in [&["--help"][..], &["--version"], &["stats"], &["ls", "--json"]] {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
        let output = Command::new(env!("CARGO_BIN_EXE_httpcache"))
            .args(["--cache", cache.path()])
            .args(args)
            .stdout(full)
            .output()
            .expect("run the httpcache binary");
        assert_eq!(output.status.code(), Some(5), "{args:?}: {output:?}");
    }
}

#[test]
fn help_lists_the_exit_codes() {
    let help = httpcache(&["--help"]);
    let text = help.ok();
    for line in ["0  success", "2  bad command line", "3  the cache could not be used", "4  not in the cache"]
    {
        assert!(text.contains(line), "{text}");
    }
}

// `httpcache` alone, as a newcomer first types it: a usage error (exit 2), and the help
// to read, laid out as `--help` lays it out, not run together into one error line.
#[test]
fn no_command_shows_the_help_as_help() {
    let run = httpcache(&[]);
    assert_eq!(run.code, 2, "{run:#?}");
    assert!(run.stdout.is_empty(), "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines.iter().any(|line| line.starts_with("Usage: httpcache")), "{run:#?}");
    assert!(lines.iter().any(|line| line.trim_start().starts_with("get ")), "{run:#?}");
    assert!(lines.iter().any(|line| line.trim_start().starts_with("4  not in the cache")), "{run:#?}");
}

#[test]
fn the_cache_can_come_from_the_environment_and_reading_creates_nothing() {
    let origin = Origin::start();
    let cache = Cache::new();
    let with_env = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_httpcache"))
            .args(args)
            .env("HTTPCACHE_DIR", cache.path())
            .env("HTTPCACHE_STORE", "fs-json")
            .output()
            .expect("run the httpcache binary");
        (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
    };
    assert_eq!(with_env(&["ls"]), (Some(0), String::new()));
    assert_eq!(with_env(&["purge", "--expired"]), (Some(0), "removed 0 entries\n".to_owned()));
    assert!(!cache.path.exists(), "reading a missing cache must not create it");
    // Nor does reading an empty directory create an LMDB store in it.
    let empty = Cache::new();
    std::fs::create_dir(&empty.path).expect("an empty directory");
    for command in [&["ls"][..], &["stats"], &["purge", "--expired"]] {
        empty.run(command).ok();
    }
    assert_eq!(walk(&empty.path), Vec::<PathBuf>::new(), "nothing created by reading");

    let url = origin.url("/max-age/60");
    assert_eq!(with_env(&["get", &url]), (Some(0), "max-age=60 hit 1".to_owned()));
    assert_eq!(cache.urls(&["--store", "fs-json"]), vec![url]);
}

//! What a user configures: [`Settings`] for a whole cache, [`RequestOptions`] for one request.
//!
//! Expiration precedence, highest first (as requests-cache):
//! 1. request `Cache-Control` (`max-age`, `no-store`, `no-cache`, ...),
//! 2. response `Cache-Control` / `Expires` (when [`Settings::cache_control`] is on),
//! 3. [`RequestOptions::expire_after`],
//! 4. the first matching pattern of [`Settings::urls_expire_after`],
//! 5. [`Settings::expire_after`],
//! 6. RFC 9111 §4.2.2 heuristic freshness (only when none of the above applies).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderName, Method, StatusCode};

use crate::key::CacheKey;

/// How long a response stays fresh, when the user (not the origin) says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Fresh forever: never expires.
    Never,
    /// Stale at once: every use is revalidated first. Stored only when that can
    /// serve (a validator to revalidate with, or stale-while-revalidate /
    /// stale-if-error allowing it, as for any response stale on arrival:
    /// [`Reason::NeverFresh`](crate::machine::Reason::NeverFresh)), as requests-cache does.
    Immediately,
    /// Not stored at all.
    DoNotCache,
    /// Fresh for this long after the response was received.
    After(Duration),
    /// Fresh until this instant.
    At(SystemTime),
}

/// A URL glob such as `*.example.com/api/*`, matched against a URL without its scheme.
/// The cache matches a request's URL without its userinfo and without a default port
/// (`https://example.com:443/api` is matched as `example.com/api`), as its key has it.
///
/// `*` matches any run of characters (including `/`), `?` one character. A pattern
/// matches a URL that *starts* with something it matches, so `example.com/static`
/// covers `example.com/static/app.js`. Matching ignores case in the host, not in the
/// path or query (RFC 3986 §6.2.2.1): `example.com/static` does not cover
/// `EXAMPLE.com/Static/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    pub(crate) pattern: String,
}

impl UrlPattern {
    /// A pattern from its text; a leading `http://` or `https://` is ignored.
    pub fn new(pattern: impl Into<String>) -> Self {
        let pattern = pattern.into();
        let stripped = crate::key::strip_scheme(&pattern);
        // The host in lower case (patterns that differ only there are equal), the rest
        // as written.
        let (host, rest) = stripped.split_at(crate::key::host_end(stripped));
        UrlPattern { pattern: format!("{}{rest}", host.to_ascii_lowercase()) }
    }

    /// The pattern's text, without a scheme.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `url` (with or without a scheme) matches this pattern.
    pub fn matches(&self, url: &str) -> bool {
        crate::key::glob_prefix_match(&self.pattern, crate::key::strip_scheme(url))
    }
}

/// Which request headers become part of the cache key (besides `Vary`, which is always honoured).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MatchHeaders {
    /// None: the key ignores request headers (the default).
    #[default]
    None,
    /// Every request header except the ignored parameters.
    All,
    /// Only these headers.
    List(Vec<HeaderName>),
}

/// When a stale response may be served (for `stale_if_error` and `stale_while_revalidate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StaleAllowance {
    /// Only when the origin's own directive allows it (the default).
    #[default]
    Off,
    /// However stale the response is.
    Always,
    /// When it has been stale for at most this long.
    AtMost(Duration),
}

/// A user function computing the cache key of a request. See [`crate::key::KeyInput`].
pub type KeyFn = Arc<dyn Fn(&crate::key::KeyInput<'_>) -> CacheKey + Send + Sync>;

/// A user function deciding whether a response may be stored: `false` keeps it out.
pub type FilterFn = Arc<dyn Fn(&http::response::Parts, &Bytes) -> bool + Send + Sync>;

/// The settings of one cache. A plain struct: build it with struct update syntax
/// from [`Settings::default()`], and change it at runtime through the client.
///
/// ```
/// use std::time::Duration;
/// use httpcache_core::settings::{Expiry, Settings, UrlPattern};
///
/// let settings = Settings {
///     expire_after: Some(Expiry::After(Duration::from_secs(600))),
///     urls_expire_after: vec![(UrlPattern::new("*.example.com/static/*"), Expiry::Never)],
///     ..Settings::default()
/// };
/// assert!(settings.cache_control);
/// ```
#[derive(Clone)]
pub struct Settings {
    /// Session-wide expiry; `None` leaves freshness to the response headers and RFC 9111 heuristics.
    pub expire_after: Option<Expiry>,
    /// Ordered URL patterns; the first match wins.
    pub urls_expire_after: Vec<(UrlPattern, Expiry)>,
    /// Honour `Cache-Control`/`Expires` from responses for expiration (default on).
    /// `no-store` and `private` are honoured either way.
    pub cache_control: bool,
    /// Status codes that may be stored (default 200).
    pub allowable_codes: Vec<StatusCode>,
    /// Methods whose responses may be stored (default GET, HEAD).
    pub allowable_methods: Vec<Method>,
    /// Revalidate every stored response before use, fresh or not.
    pub always_revalidate: bool,
    /// Query parameters, headers and JSON/form body fields left out of the key
    /// and redacted from what is stored (case-insensitive names).
    pub ignored_parameters: Vec<String>,
    /// Request headers that are part of the key.
    pub match_headers: MatchHeaders,
    /// Replaces the default key derivation.
    pub key_fn: Option<KeyFn>,
    /// Vetoes storing a response: a new one, and the stored one a 304 (or a HEAD)
    /// updated, which is then served but not written back.
    pub filter_fn: Option<FilterFn>,
    /// Serve stale responses when the origin fails (5xx or a transport error).
    pub stale_if_error: StaleAllowance,
    /// Serve stale responses at once and revalidate in the background.
    pub stale_while_revalidate: StaleAllowance,
    /// Read from the cache but never write to it.
    pub read_only: bool,
    /// Bypass the cache entirely.
    pub disabled: bool,
    /// Act as a shared cache (`s-maxage`, `proxy-revalidate`, `private`, `Authorization` rules).
    pub shared: bool,
    /// Responses with larger bodies are passed through and not stored.
    pub max_entry_bytes: u64,
    /// How long the cache remembers that a URL's response was not stored (`no-store`,
    /// a status or size not stored, turned down by `filter_fn`...) when nothing was
    /// stored for it before. Within that time, requests for it go to the origin without
    /// reading the store first, and identical ones are not held back behind each other:
    /// the read would find nothing, and on a disk store it costs a system call or a
    /// transaction. Storing a response for the URL ends it at once; so does a request
    /// with `only-if-cached`, which always reads the store. An entry another process
    /// (or another cache over the same store) puts under the URL meanwhile is not
    /// read until the time is up: shorten it, or set `Duration::ZERO` (never remember),
    /// where that matters. Default [`DEFAULT_REMEMBER_NOT_STORED`]. Not used
    /// when `read_only`, where nothing is stored by design.
    pub remember_not_stored: Duration,
}

/// The default of [`Settings::remember_not_stored`]: 10 seconds.
pub const DEFAULT_REMEMBER_NOT_STORED: Duration = Duration::from_secs(10);

/// The parameters redacted by default.
pub const DEFAULT_IGNORED_PARAMETERS: [&str; 4] = ["Authorization", "X-API-Key", "access_token", "api_key"];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            expire_after: None,
            urls_expire_after: Vec::new(),
            cache_control: true,
            allowable_codes: vec![StatusCode::OK],
            allowable_methods: vec![Method::GET, Method::HEAD],
            always_revalidate: false,
            ignored_parameters: DEFAULT_IGNORED_PARAMETERS.iter().map(|s| s.to_string()).collect(),
            match_headers: MatchHeaders::None,
            key_fn: None,
            filter_fn: None,
            stale_if_error: StaleAllowance::Off,
            stale_while_revalidate: StaleAllowance::Off,
            read_only: false,
            disabled: false,
            shared: false,
            max_entry_bytes: 64 * 1024 * 1024,
            remember_not_stored: DEFAULT_REMEMBER_NOT_STORED,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("expire_after", &self.expire_after)
            .field("urls_expire_after", &self.urls_expire_after)
            .field("cache_control", &self.cache_control)
            .field("allowable_codes", &self.allowable_codes)
            .field("allowable_methods", &self.allowable_methods)
            .field("always_revalidate", &self.always_revalidate)
            .field("ignored_parameters", &self.ignored_parameters)
            .field("match_headers", &self.match_headers)
            .field("key_fn", &self.key_fn.as_ref().map(|_| "<fn>"))
            .field("filter_fn", &self.filter_fn.as_ref().map(|_| "<fn>"))
            .field("stale_if_error", &self.stale_if_error)
            .field("stale_while_revalidate", &self.stale_while_revalidate)
            .field("read_only", &self.read_only)
            .field("disabled", &self.disabled)
            .field("shared", &self.shared)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("remember_not_stored", &self.remember_not_stored)
            .finish()
    }
}

/// The session expiry of the ready-made clients (the adapters' `cached_client()` /
/// `cached_agent()`, like niquests-cache's `cached_session()`): responses whose headers
/// say nothing about freshness stay fresh 10 minutes. See [`Settings::session`].
pub const DEFAULT_SESSION_EXPIRE_AFTER: Duration = Duration::from_secs(600);

impl Settings {
    /// The settings of the ready-made clients: the defaults, with
    /// [`expire_after`](Settings::expire_after) set to [`DEFAULT_SESSION_EXPIRE_AFTER`].
    ///
    /// ```
    /// use httpcache_core::settings::{DEFAULT_SESSION_EXPIRE_AFTER, Expiry, Settings};
    ///
    /// let settings = Settings::session();
    /// assert_eq!(settings.expire_after, Some(Expiry::After(DEFAULT_SESSION_EXPIRE_AFTER)));
    /// assert!(settings.cache_control);
    /// ```
    pub fn session() -> Self {
        Settings { expire_after: Some(Expiry::After(DEFAULT_SESSION_EXPIRE_AFTER)), ..Settings::default() }
    }

    /// Whether `name` is one of [`Settings::ignored_parameters`] (ASCII case-insensitive).
    pub fn is_ignored(&self, name: &str) -> bool {
        self.ignored_parameters.iter().any(|p| p.eq_ignore_ascii_case(name))
    }

    /// Whether the request header `name` is one of the ignored parameters that the
    /// cache key nonetheless holds by value: listed in [`MatchHeaders::List`], with no
    /// [`Settings::key_fn`] replacing the default key. Such a field (`Authorization`,
    /// say, listed to keep users apart) is stored redacted, yet every request filed
    /// under one key sent the same value, so a response that varies on it may be
    /// stored, and its `Vary` is satisfied by the key (RFC 9111 §4.1).
    ///
    /// ```
    /// use httpcache_core::settings::MatchHeaders;
    /// use httpcache_core::Settings;
    ///
    /// let listed = Settings {
    ///     match_headers: MatchHeaders::List(vec![http::header::AUTHORIZATION]),
    ///     ..Settings::default()
    /// };
    /// assert!(listed.keys_redacted(&http::header::AUTHORIZATION));
    /// assert!(!Settings::default().keys_redacted(&http::header::AUTHORIZATION));
    /// ```
    pub fn keys_redacted(&self, name: &HeaderName) -> bool {
        matches!(&self.match_headers, MatchHeaders::List(names) if names.contains(name))
            && self.key_fn.is_none()
            && self.is_ignored(name.as_str())
    }

    /// The expiry the user configured for `url`: the first matching URL pattern, else `expire_after`.
    pub fn expiry_for_url(&self, url: &str) -> Option<Expiry> {
        self.urls_expire_after
            .iter()
            .find(|(pattern, _)| pattern.matches(url))
            .map(|(_, expiry)| *expiry)
            .or(self.expire_after)
    }

    /// [`Settings::expiry_for_url`] for a request's URI, which is written out as text
    /// only when there are URL patterns to match it against: as [`pattern_text`]
    /// writes it, so that every spelling of a URL that shares its cache key (a default
    /// port written out, a user name) gets the same expiry.
    pub(crate) fn expiry_for_uri(&self, uri: &http::Uri) -> Option<Expiry> {
        if self.urls_expire_after.is_empty() {
            return self.expire_after;
        }
        self.expiry_for_url(&pattern_text(uri))
    }
}

/// `uri` as [`UrlPattern`]s see it: host, port unless the scheme's default (80 for
/// `http`, 443 for `https`, dropped as the cache key drops it), path and query; no
/// scheme, and no userinfo (RFC 9110 §4.2.4: not part of the resource's identity).
fn pattern_text(uri: &http::Uri) -> String {
    use std::fmt::Write;

    let mut text = String::with_capacity(uri.path_and_query().map_or(0, |pq| pq.as_str().len()) + 64);
    if let Some(authority) = uri.authority() {
        text.push_str(authority.host());
        let default_port = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => Some(80),
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => Some(443),
            _ => None,
        };
        if let Some(port) = authority.port_u16().filter(|&port| Some(port) != default_port) {
            // Writing into a String cannot fail.
            let _ = write!(text, ":{port}");
        }
    }
    let path = uri.path();
    text.push_str(if path.is_empty() { "/" } else { path });
    if let Some(query) = uri.query() {
        text.push('?');
        text.push_str(query);
    }
    text
}

/// Controls for one request, on top of the [`Settings`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Expiry for this request: a stored response older than this is stale, and a new one
    /// is stored with this expiry (unless the response's own headers say otherwise).
    /// [`Expiry::DoNotCache`] skips the read, and a HEAD's response to it is never
    /// stored (it would take the place of the stored GET response).
    pub expire_after: Option<Expiry>,
    /// Never contact the origin: serve what is stored (even stale) or answer 504.
    pub only_if_cached: bool,
    /// Revalidate the stored response before using it.
    pub refresh: bool,
    /// Skip the cache read, fetch from the origin and overwrite the stored response. A
    /// HEAD's response is not stored: it has no body, and would take the place of the
    /// stored GET response it was not compared with.
    pub force_refresh: bool,
}

impl RequestOptions {
    /// The options a request carries in its extensions (put there with
    /// [`CacheRequestExt`](crate::CacheRequestExt)); the defaults when it carries none.
    pub fn from_extensions(extensions: &http::Extensions) -> Self {
        extensions.get::<RequestOptions>().copied().unwrap_or_default()
    }
}

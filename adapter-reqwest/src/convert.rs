//! Conversions between reqwest's types and the `http` types the driver speaks, and the
//! steps of the cache loop that the async client, the blocking client and the
//! middleware share. reqwest has two families of types with the same methods (async
//! and blocking): [`Outgoing`] and [`Incoming`] let one function serve both.

use std::cell::RefCell;
use std::time::Duration;

use bytes::Bytes;
use http::{Extensions, HeaderMap, Method, StatusCode, Uri, Version, request, response};
use httpcache_core::driver::{FinalUrl, Forward, PendingRevalidation};
use reqwest::{ResponseBuilderExt, Url};

/// One of reqwest's request types, as the cache loop uses it.
pub(crate) trait Outgoing: Sized {
    /// The response type the same client answers with.
    type Response: Incoming + From<http::Response<Bytes>>;

    fn method(&self) -> &Method;
    fn url(&self) -> &Url;
    fn version(&self) -> Version;
    fn headers_mut(&mut self) -> &mut HeaderMap;
    fn timeout(&self) -> Option<Duration>;
    fn timeout_mut(&mut self) -> &mut Option<Duration>;
    /// The body as the cache keys it: the bytes (empty without a body), or `None` for
    /// a stream, which cannot be replayed.
    fn replayable_body(&self) -> Option<Bytes>;
    fn try_clone(&self) -> Option<Self>;
    /// The request rebuilt from the driver's copy.
    fn from_http(request: http::Request<Bytes>) -> reqwest::Result<Self>;
}

/// One of reqwest's response types, as the cache loop uses it.
pub(crate) trait Incoming {
    fn url(&self) -> &Url;
    fn status(&self) -> StatusCode;
    fn version(&self) -> Version;
    fn headers_mut(&mut self) -> &mut HeaderMap;
    fn extensions_mut(&mut self) -> &mut Extensions;
}

/// Implements [`Outgoing`] and [`Incoming`] for one family of reqwest's types, whose
/// inherent methods have the same names.
macro_rules! reqwest_family {
    ($request:ty, $response:ty) => {
        impl Outgoing for $request {
            type Response = $response;

            fn method(&self) -> &Method {
                <$request>::method(self)
            }
            fn url(&self) -> &Url {
                <$request>::url(self)
            }
            fn version(&self) -> Version {
                <$request>::version(self)
            }
            fn headers_mut(&mut self) -> &mut HeaderMap {
                <$request>::headers_mut(self)
            }
            fn timeout(&self) -> Option<Duration> {
                <$request>::timeout(self).copied()
            }
            fn timeout_mut(&mut self) -> &mut Option<Duration> {
                <$request>::timeout_mut(self)
            }
            fn replayable_body(&self) -> Option<Bytes> {
                match <$request>::body(self) {
                    None => Some(Bytes::new()),
                    Some(body) => body.as_bytes().map(Bytes::copy_from_slice),
                }
            }
            fn try_clone(&self) -> Option<Self> {
                <$request>::try_clone(self)
            }
            fn from_http(request: http::Request<Bytes>) -> reqwest::Result<Self> {
                <$request>::try_from(request)
            }
        }

        impl Incoming for $response {
            fn url(&self) -> &Url {
                <$response>::url(self)
            }
            fn status(&self) -> StatusCode {
                <$response>::status(self)
            }
            fn version(&self) -> Version {
                <$response>::version(self)
            }
            fn headers_mut(&mut self) -> &mut HeaderMap {
                <$response>::headers_mut(self)
            }
            fn extensions_mut(&mut self) -> &mut Extensions {
                <$response>::extensions_mut(self)
            }
        }
    };
}

reqwest_family!(reqwest::Request, reqwest::Response);
#[cfg(feature = "blocking")]
reqwest_family!(reqwest::blocking::Request, reqwest::blocking::Response);

/// What the cache plans with: the request head and its body (`None`: a stream, so the
/// request bypasses the cache). `None` when the URL is not a valid `Uri`, which cannot
/// happen for reqwest's URLs: the request is then sent as it is.
///
/// The headers move to the driver instead of being copied: every request sent after
/// planning gets the driver's headers back (see [`outgoing`] and [`served`]).
pub(crate) fn plan_input<R: Outgoing>(request: &mut R) -> Option<(request::Parts, Option<Bytes>)> {
    let uri = to_uri(request.url())?;
    let mut head = http::Request::new(());
    *head.method_mut() = request.method().clone();
    *head.uri_mut() = uri;
    *head.version_mut() = request.version();
    *head.headers_mut() = std::mem::take(request.headers_mut());
    Some((head.into_parts().0, request.replayable_body()))
}

/// The longest URL [`to_uri`] keeps for the next request.
const KEPT_URL_MAX: usize = 2048;

/// reqwest's URL as an `http::Uri` (`None`: not a valid one).
///
/// Parsing costs a copy of the text, two allocations and a validation pass. Each thread
/// keeps the last URL it converted, so asking again for the same URL (what a cache
/// hit is: the same resource, again) costs a comparison and a clone of the kept `Uri`,
/// whose parts are shared: no allocation. A different URL replaces the kept one, into
/// the same buffer. URLs longer than [`KEPT_URL_MAX`] are parsed and not kept, which
/// bounds what each thread holds. (What is kept is the URL as sent, query included,
/// until the thread converts another or ends.)
pub(crate) fn to_uri(url: &Url) -> Option<Uri> {
    thread_local! {
        static LAST: RefCell<(String, Option<Uri>)> = const { RefCell::new((String::new(), None)) };
    }
    let text = url.as_str();
    if text.len() > KEPT_URL_MAX {
        return text.parse().ok();
    }
    // On a thread whose kept URL is gone (asked from another thread-local's destructor),
    // or were it ever borrowed twice, the URL is simply parsed.
    let kept = LAST.try_with(|last| {
        let mut last = last.try_borrow_mut().ok()?;
        let (last_text, last_uri) = &mut *last;
        if let Some(uri) = last_uri.as_ref().filter(|_| last_text == text) {
            return Some(Some(uri.clone()));
        }
        let uri: Option<Uri> = text.parse().ok();
        if let Some(uri) = &uri {
            last_text.clear();
            last_text.push_str(text);
            *last_uri = Some(uri.clone());
        }
        Some(uri)
    });
    match kept {
        Ok(Some(uri)) => uri,
        _ => text.parse().ok(),
    }
}

/// A response the cache answers with, as reqwest's. A stale-while-revalidate
/// revalidation it carries goes to `background`, with a copy of `request`.
pub(crate) fn served<R: Outgoing>(
    response: http::Response<Bytes>,
    request: &R,
    background: impl FnOnce(Box<Forward>, R),
) -> R::Response {
    let mut response = response;
    if let Some(PendingRevalidation(forward)) = response.extensions_mut().remove::<PendingRevalidation>()
        && let Some(mut revalidation) = request.try_clone()
    {
        *revalidation.headers_mut() = forward.request_headers();
        background(Box::new(forward), revalidation);
    }
    R::Response::from(with_url(response, request.url()))
}

/// How the request for a retry is made. Only a revalidation is ever retried: when the
/// 304 selects no stored response (RFC 9111 §4.3.4), the request goes again without its
/// conditions.
#[derive(Debug)]
pub(crate) enum Retry<R> {
    /// From a copy of the first request, taken before it was sent. A request given to
    /// `execute` may carry extensions (one converted from an `http::Request` does), which
    /// reqwest lets out only in a copy of the whole request.
    Copy(Box<R>),
    /// Rebuilt from the driver's copy, given this timeout: a request from reqwest's
    /// builder carries nothing else the driver does not hold (its builder sets no
    /// extension but the timeout), so no copy is taken before sending.
    Rebuild(Option<Duration>),
}

impl<R: Outgoing> Retry<R> {
    /// What a retry of `request`, planned as `forward`, is made from: `None` when
    /// `forward` is never retried (it is no revalidation), or when the request cannot be
    /// copied (a streamed body, never replayed). `built`: the request came from
    /// reqwest's builder.
    pub(crate) fn of(forward: &Forward, request: &R, built: bool) -> Option<Retry<R>> {
        if !forward.may_retry() {
            return None;
        }
        if built {
            return Some(Retry::Rebuild(request.timeout()));
        }
        request.try_clone().map(|copy| Retry::Copy(Box::new(copy)))
    }
}

/// The request to send for `forward`: `first` the first time, then one made as `retry`
/// says, else one rebuilt from the driver's copy (only requests with a replayable body
/// are ever retried). It gets the driver's headers: the caller's, plus the conditional
/// ones when revalidating.
pub(crate) fn outgoing<R: Outgoing>(
    first: &mut Option<R>,
    retry: Option<&Retry<R>>,
    forward: &Forward,
) -> reqwest::Result<R> {
    let copy = || match retry? {
        Retry::Copy(template) => template.try_clone(),
        Retry::Rebuild(_) => None,
    };
    let mut request = match first.take().or_else(copy) {
        Some(request) => request,
        None => {
            let mut rebuilt = R::from_http(forward.request())?;
            if let Some(Retry::Rebuild(Some(timeout))) = retry {
                *rebuilt.timeout_mut() = Some(*timeout);
            }
            rebuilt
        }
    };
    *request.headers_mut() = forward.request_headers();
    Ok(request)
}

/// The origin's response as the driver sees it: where its redirects ended, when not at
/// `asked`, and its head (status, version, headers, extensions). The headers and the
/// extensions move to the head, not copied: give them back with [`mark_streamed`], or
/// build the buffered response from the head (the extensions given back with
/// [`give_extensions_back`]).
///
/// The extensions move too so that the driver's verdict (the [`CacheStatus`](httpcache_core::CacheStatus)
/// extension) goes into reqwest's map, which exists already, instead of a new one: a
/// first insertion allocates the map and its table.
pub(crate) fn origin_head<P: Incoming>(asked: &Url, response: &mut P) -> (Option<Uri>, response::Parts) {
    let url = response.url();
    let final_url = (asked != url).then(|| url.as_str().parse().ok()).flatten();
    let mut head = http::Response::new(());
    *head.status_mut() = response.status();
    *head.version_mut() = response.version();
    *head.headers_mut() = std::mem::take(response.headers_mut());
    *head.extensions_mut() = std::mem::take(response.extensions_mut());
    (final_url, head.into_parts().0)
}

/// Gives `response` back the extensions [`origin_head`] moved to `head`, with what
/// the driver added to them.
pub(crate) fn give_extensions_back<P: Incoming>(head: &mut response::Parts, response: &mut P) {
    *response.extensions_mut() = std::mem::take(&mut head.extensions);
}

/// Gives a response passed through as it streams its headers and extensions back from
/// `head`, where [`origin_head`] moved them and the driver added its verdict: the
/// `Cache-Status` header, and the [`CacheStatus`](httpcache_core::CacheStatus) extension.
pub(crate) fn mark_streamed<P: Incoming>(head: &mut response::Parts, response: &mut P) {
    *response.headers_mut() = std::mem::take(&mut head.headers);
    give_extensions_back(head, response);
}

/// The stale response the driver allows when the origin failed, else `error`.
pub(crate) fn stale_or<P: From<http::Response<Bytes>>, E>(
    stale: Option<http::Response<Bytes>>,
    asked: &Url,
    error: E,
) -> Result<P, E> {
    match stale {
        Some(stale) => Ok(P::from(with_url(stale, asked))),
        None => Err(error),
    }
}

/// Sets the URL reqwest reports for a response built from `response`: the final URL
/// remembered with a cached entry, else `fallback`.
pub(crate) fn with_url<B>(response: http::Response<B>, fallback: &Url) -> http::Response<B> {
    let (mut parts, body) = response.into_parts();
    let url = parts
        .extensions
        .get::<FinalUrl>()
        .and_then(|url| Url::parse(&url.0).ok())
        .unwrap_or_else(|| fallback.clone());
    // reqwest reads the URL from an extension only its response builder can set. The
    // builder gets the response's own extensions and adds the URL to them, so there is no
    // second map to allocate and merge. (With no fallible step, `body` cannot fail.)
    let mut builder = http::Response::builder();
    if let Some(extensions) = builder.extensions_mut() {
        std::mem::swap(extensions, &mut parts.extensions);
    }
    if let Ok(carrier) = builder.url(url).body(()) {
        parts.extensions = carrier.into_parts().0.extensions;
    }
    http::Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9111 §4.3.4: a revalidation whose 304 selects no stored response is sent
    /// again, without its conditions (the driver drops them). The request sent again is
    /// the first one: from reqwest's builder it is rebuilt from the driver's copy with
    /// the first one's timeout, from `execute` it is a copy taken before sending.
    #[test]
    fn a_retry_is_the_first_request_again() {
        use httpcache_core::{Cache, Plan, RequestOptions, Settings};
        use httpcache_mem::MemoryStore;

        let cache = Cache::new(MemoryStore::new(1 << 20), Settings::default());
        let client = reqwest::Client::new();
        let timeout = Duration::from_millis(250);
        let request = || {
            let builder = client.get("http://localhost/etag").header("x-a", "1").timeout(timeout);
            builder.version(Version::HTTP_11).build().expect("request")
        };
        let plan = |request: &mut reqwest::Request| {
            let (parts, body) = plan_input(request).expect("a valid URL");
            cache.plan(parts, body.expect("no body: replayable"), RequestOptions::default())
        };
        let mut first = request();
        let Plan::Forward(miss) = plan(&mut first) else { panic!("an empty store: a miss") };
        assert!(Retry::of(&miss, &first, true).is_none(), "a miss is never retried");
        let stored = http::Response::builder()
            .header("cache-control", "no-cache")
            .header("etag", "\"v1\"")
            .body(Bytes::from_static(b"v1"))
            .expect("response");
        let _ = cache.complete(*miss, stored, None);
        let mut second = request();
        let Plan::Forward(revalidation) = plan(&mut second) else { panic!("no-cache: a revalidation") };

        let rebuilt = Retry::of(&revalidation, &second, true);
        assert!(matches!(rebuilt, Some(Retry::Rebuild(Some(kept))) if kept == timeout), "{rebuilt:?}");
        let copied = Retry::of(&revalidation, &second, false);
        assert!(matches!(copied, Some(Retry::Copy(_))), "{copied:?}");
        for retry in [rebuilt, copied] {
            let again = outgoing(&mut None, retry.as_ref(), &revalidation).expect("request");
            assert_eq!(again.method(), Method::GET);
            assert_eq!(again.url().as_str(), "http://localhost/etag");
            assert_eq!(again.version(), Version::HTTP_11);
            assert_eq!(again.timeout(), Some(&timeout), "{retry:?}");
            assert_eq!(again.headers().get("x-a").map(|v| v.as_bytes()), Some(&b"1"[..]));
            assert_eq!(again.headers().get("if-none-match").map(|v| v.as_bytes()), Some(&b"\"v1\""[..]));
        }
    }

    // The kept conversion never answers for another URL: a run of repeated, changed and
    // alternating URLs converts exactly as parsing each one would (RFC 9111 §4.1: the
    // cache key is the request's target URI).
    #[test]
    fn to_uri_is_the_parsed_url_every_time() {
        let urls = [
            "http://example.com/a",
            "http://example.com/a",
            "http://example.com/a?q=1",
            "http://example.com/a",
            "https://example.com/a",
            "http://example.com:8080/a",
            "http://example.com/a#fragment",
            "http://example.com/b",
            "http://example.com/a",
            "http://example.com/a",
        ];
        let long = format!("http://example.com/{}", "x".repeat(KEPT_URL_MAX));
        let urls = urls.iter().copied().chain([long.as_str(), long.as_str(), "http://example.com/a"]);
        for text in urls {
            let url = Url::parse(text).unwrap();
            let expected: Uri = url.as_str().parse().unwrap();
            assert_eq!(to_uri(&url), Some(expected), "{text}");
        }
        // On another thread, nothing kept from this one.
        let url = Url::parse("http://example.com/c").unwrap();
        let there = std::thread::spawn(move || to_uri(&url)).join().unwrap();
        assert_eq!(there.unwrap(), "http://example.com/c");
    }

    /// A URL converted while the thread ends, from another thread-local's destructor
    /// that runs after the kept URL's, is parsed, not a panic. (Destructors run in the
    /// reverse order of first use: the probe is used first, so it is destroyed last.)
    #[test]
    fn to_uri_works_while_the_thread_ends() {
        struct Probe(std::sync::mpsc::Sender<Option<Uri>>);
        impl Drop for Probe {
            fn drop(&mut self) {
                let _ = self.0.send(to_uri(&Url::parse("http://example.com/late").unwrap()));
            }
        }
        thread_local! {
            static PROBE: RefCell<Option<Probe>> = const { RefCell::new(None) };
        }
        let (sender, uris) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            PROBE.with(|probe| *probe.borrow_mut() = Some(Probe(sender)));
            to_uri(&Url::parse("http://example.com/early").unwrap());
        })
        .join()
        .unwrap();
        assert_eq!(uris.recv().unwrap().unwrap(), "http://example.com/late");
    }
}

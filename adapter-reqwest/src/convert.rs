//! Conversions between reqwest's types and the `http` types the driver speaks.

use http::{HeaderMap, Method, Uri, Version, request, response};
use httpcache_core::CacheStatus;
use httpcache_core::driver::FinalUrl;
use httpcache_core::status::CACHE_STATUS;
use reqwest::{ResponseBuilderExt, Url};

/// The `http` request head of a reqwest request; `None` when its URL is not a valid `Uri`.
pub(crate) fn request_parts(
    method: &Method,
    url: &Url,
    version: Version,
    headers: &HeaderMap,
) -> Option<request::Parts> {
    let uri: Uri = url.as_str().parse().ok()?;
    let mut request = http::Request::new(());
    *request.method_mut() = method.clone();
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers.clone();
    Some(request.into_parts().0)
}

/// The response head the driver decides on (status, version, headers).
pub(crate) fn response_head(
    status: http::StatusCode,
    version: Version,
    headers: &HeaderMap,
) -> response::Parts {
    let mut response = http::Response::new(());
    *response.status_mut() = status;
    *response.version_mut() = version;
    *response.headers_mut() = headers.clone();
    response.into_parts().0
}

/// `url` as a `Uri` when it differs from `asked` (redirects were followed).
pub(crate) fn final_uri(asked: &Url, url: &Url) -> Option<Uri> {
    (asked != url).then(|| url.as_str().parse().ok()).flatten()
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
    // reqwest reads the URL from an extension only its response builder can set.
    if let Ok(carrier) = http::Response::builder().url(url).body(()) {
        parts.extensions.extend(carrier.into_parts().0.extensions);
    }
    http::Response::from_parts(parts, body)
}

/// Copies the `Cache-Status` header the driver put on `head` into `headers` (of a
/// response that streams as it came) and takes the [`CacheStatus`] for its extensions.
pub(crate) fn take_status(head: &mut response::Parts, headers: &mut HeaderMap) -> Option<CacheStatus> {
    for value in head.headers.get_all(CACHE_STATUS) {
        headers.append(CACHE_STATUS, value.clone());
    }
    head.extensions.remove::<CacheStatus>()
}

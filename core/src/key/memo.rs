//! Each thread's memo of the keys it derived last.
//!
//! A cache exists to be asked for the same resources again, and the built-in key of a
//! request without a keyed body or matched headers depends on nothing but the method,
//! the URL and the settings: normalising the URL and hashing it with SHA-256 then
//! gives the same key every time, at about a tenth of a memory hit's time. Each thread
//! therefore keeps the last [`SLOTS`] such keys with exactly what they were derived
//! from, and answers a request that matches one of them byte for byte with its key.
//!
//! A slot names its settings by a [`Weak`] reference: it matches only the settings
//! object it was derived under (settings are replaced whole, never changed in place,
//! see [`Cache::update_settings`](crate::Cache::update_settings)), and holding the
//! `Weak` keeps that object's allocation from being reused by other settings while
//! the slot exists. Requests the memo does not cover (a `key_fn`, `match_headers`, a
//! keyed body, a URL over [`MAX_TEXT`]) are keyed as before.

use std::cell::RefCell;
use std::sync::{Arc, Weak};

use http::{Method, Uri, request};

use super::{CacheKey, MIX, body_is_keyed, cache_key, keyed_by_fields};
use crate::settings::Settings;

/// How many keys each thread remembers.
const SLOTS: usize = 8;

/// The longest URL text a slot keeps: longer URLs are keyed each time, which bounds
/// what a thread holds (`SLOTS` × this).
const MAX_TEXT: usize = 2048;

/// What a key was derived from, and the key.
struct Slot {
    settings: Weak<Settings>,
    method: Method,
    /// The URL's scheme, authority, path and query back to back, and where each ends.
    text: String,
    ends: [u32; 4],
    /// Which of scheme, authority and query the URL has (an absent part and an empty
    /// one are told apart, though they key alike today).
    present: u8,
    key: CacheKey,
}

thread_local! {
    static MEMO: RefCell<[Option<Slot>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

/// The parts of a URL the key is derived from, as [`Slot`] keeps them.
struct UrlParts<'a> {
    pieces: [&'a str; 4],
    /// Where each piece ends, counted from the start of the first.
    ends: [u32; 4],
    present: u8,
}

impl<'a> UrlParts<'a> {
    // Here, on `slot` and on `Slot::matches`: inlined into both of `remembered`'s
    // instances, as they were into its one caller before; outlined, they cost every
    // hit three calls (about 35 instructions).
    #[inline(always)]
    fn of(uri: &'a Uri) -> Self {
        let scheme = uri.scheme_str();
        let authority = uri.authority().map(|authority| authority.as_str());
        let query = uri.query();
        let present = u8::from(scheme.is_some())
            | (u8::from(authority.is_some()) << 1)
            | (u8::from(query.is_some()) << 2);
        let pieces = [scheme.unwrap_or(""), authority.unwrap_or(""), uri.path(), query.unwrap_or("")];
        let mut ends = [0u32; 4];
        let mut end = 0usize;
        for (piece, slot) in pieces.iter().zip(&mut ends) {
            end += piece.len();
            // A URL longer than `u32::MAX` is never kept (see `MAX_TEXT`).
            *slot = u32::try_from(end).unwrap_or(u32::MAX);
        }
        UrlParts { pieces, ends, present }
    }

    fn len(&self) -> usize {
        self.ends[3] as usize
    }

    /// Which slot the URL goes in, from the pieces' lengths and the last bytes of its
    /// path and query, where URLs of one site mostly differ. URLs that differ elsewhere
    /// may share a slot: that only costs a derivation, since a slot is compared in full.
    /// The method moves it along by one slot per common method, so one URL under two
    /// of them never shares: an unsafe request and the GET it invalidates (RFC 9111
    /// §4.4) are keyed together, every time.
    #[inline(always)]
    fn slot(&self, method: &Method) -> usize {
        let tail = |piece: &str| {
            let bytes = piece.as_bytes();
            let mut word = [0u8; 8];
            let from = bytes.len().saturating_sub(8);
            word[..bytes.len() - from].copy_from_slice(&bytes[from..]);
            u64::from_le_bytes(word)
        };
        let lengths = u64::from(self.ends[1]) << 32 | u64::from(self.ends[3]);
        let shape = lengths ^ (u64::from(self.present) << 56);
        let hash = (tail(self.pieces[2]).wrapping_mul(MIX) ^ tail(self.pieces[3]) ^ shape).wrapping_mul(MIX);
        ((hash >> 59) as usize + method_offset(method)) % SLOTS
    }
}

/// How far [`UrlParts::slot`] moves a URL's slot for `method`: apart for each common
/// method (at most [`SLOTS`] of them).
fn method_offset(method: &Method) -> usize {
    const COMMON: [Method; 7] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ];
    COMMON.iter().position(|common| common == method).unwrap_or(COMMON.len())
}

impl Slot {
    #[inline(always)]
    fn matches(&self, settings: &Arc<Settings>, method: &Method, url: &UrlParts<'_>) -> bool {
        if self.ends != url.ends
            || self.present != url.present
            || self.method != *method
            || !std::ptr::eq(self.settings.as_ptr(), Arc::as_ptr(settings))
        {
            return false;
        }
        let text = self.text.as_bytes();
        let mut start = 0;
        for (piece, &end) in url.pieces.iter().zip(&self.ends) {
            let end = end as usize;
            if text.get(start..end) != Some(piece.as_bytes()) {
                return false;
            }
            start = end;
        }
        true
    }

    fn fill(&mut self, settings: &Arc<Settings>, method: &Method, url: &UrlParts<'_>, key: CacheKey) {
        if !std::ptr::eq(self.settings.as_ptr(), Arc::as_ptr(settings)) {
            self.settings = Arc::downgrade(settings);
        }
        self.method.clone_from(method);
        self.text.clear();
        for piece in url.pieces {
            self.text.push_str(piece);
        }
        self.ends = url.ends;
        self.present = url.present;
        self.key = key;
    }
}

/// The key of `request`: [`cache_key`], remembered by the thread for requests whose key
/// depends only on their method and URL (see the [module docs](self)).
pub(crate) fn request_key(request: &request::Parts, body: &[u8], settings: &Arc<Settings>) -> CacheKey {
    if keyed_by_fields(settings) || body_is_keyed(&request.method, settings) {
        return cache_key(request, body, settings);
    }
    remembered(&request.method, &request.uri, settings, || cache_key(request, body, settings))
}

/// The key of a GET of `uri` with `request`'s header fields, what an unsafe `request`
/// invalidates (RFC 9111 §4.4): as [`request_key`] gives it, but the GET request is
/// built only when its key is derived, not when the thread remembers it.
pub(crate) fn get_key(request: &request::Parts, uri: &Uri, settings: &Arc<Settings>) -> CacheKey {
    let derive = || cache_key(&get_request(request, uri), b"", settings);
    if keyed_by_fields(settings) {
        return derive();
    }
    remembered(&Method::GET, uri, settings, derive)
}

/// A GET of `uri` with `request`'s header fields (and version and extensions).
pub(crate) fn get_request(request: &request::Parts, uri: &Uri) -> request::Parts {
    let mut get = request.clone();
    get.method = Method::GET;
    get.uri = uri.clone();
    get
}

/// The thread's remembered key of `method` and `uri` under `settings`, or the one
/// `derive` gives, then remembered.
fn remembered(
    method: &Method,
    uri: &Uri,
    settings: &Arc<Settings>,
    derive: impl Fn() -> CacheKey,
) -> CacheKey {
    let url = UrlParts::of(uri);
    if url.len() > MAX_TEXT {
        return derive();
    }
    let index = url.slot(method);
    // On a thread whose memo is gone (asked from another thread-local's destructor), or
    // were it ever borrowed twice, the key is derived.
    let remembered = MEMO.try_with(|memo| {
        let mut memo = memo.try_borrow_mut().ok()?;
        let slot = &mut memo[index];
        if let Some(slot) = slot.as_ref().filter(|slot| slot.matches(settings, method, &url)) {
            return Some(slot.key);
        }
        let key = derive();
        match slot {
            Some(slot) => slot.fill(settings, method, &url, key),
            None => {
                let mut filled = Slot {
                    settings: Weak::new(),
                    method: Method::GET,
                    text: String::with_capacity(url.len()),
                    ends: [0; 4],
                    present: 0,
                    key,
                };
                filled.fill(settings, method, &url, key);
                *slot = Some(filled);
            }
        }
        Some(key)
    });
    remembered.ok().flatten().unwrap_or_else(derive)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::key::default_cache_key;
    use crate::settings::MatchHeaders;

    fn parts(method: Method, uri: &str) -> request::Parts {
        http::Request::builder().method(method).uri(uri).body(()).expect("request").into_parts().0
    }

    /// One URL under the common methods takes as many slots: a POST and the GET it
    /// invalidates (RFC 9111 §4.4) do not push each other out.
    #[test]
    fn one_url_under_two_methods_takes_two_slots() {
        let methods = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::DELETE, Method::PATCH];
        for path in ["/", "/a", "/api/v1/items?page=2", "/blob/1024?post=1", "/x/y/z/w"] {
            let uri: http::Uri = format!("https://example.com{path}").parse().expect("URI");
            let url = UrlParts::of(&uri);
            let mut slots: Vec<usize> = methods.iter().map(|method| url.slot(method)).collect();
            slots.sort_unstable();
            slots.dedup();
            assert_eq!(slots.len(), methods.len(), "{path}");
        }
    }

    #[test]
    fn a_remembered_key_is_the_derived_key() {
        let settings = Arc::new(Settings::default());
        let request = parts(Method::GET, "https://example.com/a?b=2&a=1");
        let first = request_key(&request, b"", &settings);
        let second = request_key(&request, b"", &settings);
        assert_eq!(first, default_cache_key(&request, b"", &settings));
        assert_eq!(second, first);
    }

    /// Settings replaced by others (here: one more ignored parameter) key anew, even
    /// for a URL the thread remembers a key of.
    #[test]
    fn new_settings_are_not_answered_from_the_old() {
        let old = Arc::new(Settings::default());
        let request = parts(Method::GET, "https://example.com/a?session=1&q=2");
        let before = request_key(&request, b"", &old);
        let mut changed = Settings::clone(&old);
        changed.ignored_parameters.push("session".into());
        let new = Arc::new(changed);
        let after = request_key(&request, b"", &new);
        assert_ne!(before, after);
        assert_eq!(after, default_cache_key(&request, b"", &new));
        // The old settings still get theirs.
        assert_eq!(request_key(&request, b"", &old), before);
    }

    /// A dropped settings object's memory is not reused by settings the memo then
    /// confuses with it: the slot's `Weak` keeps the allocation.
    #[test]
    fn dropped_settings_never_answer_for_their_successor() {
        let request = parts(Method::GET, "http://example.com/x?api_key=1");
        let mut first = Settings::default();
        first.ignored_parameters.clear();
        let first = Arc::new(first);
        let first_key = request_key(&request, b"", &first);
        drop(first);
        for _ in 0..64 {
            let next = Arc::new(Settings::default());
            assert_eq!(request_key(&request, b"", &next), default_cache_key(&request, b"", &next));
            assert_ne!(request_key(&request, b"", &next), first_key);
        }
    }

    /// Settings whose key depends on more than the method and URL are never answered
    /// from the memo: two requests to one URL with different matched headers or bodies
    /// keep different keys.
    #[test]
    fn keys_that_depend_on_headers_or_bodies_are_derived() {
        let by_header = Arc::new(Settings {
            match_headers: MatchHeaders::List(vec![http::header::ACCEPT_LANGUAGE]),
            ..Settings::default()
        });
        let with = |language: &str| {
            http::Request::get("http://example.com/")
                .header("accept-language", language)
                .body(())
                .expect("request")
                .into_parts()
                .0
        };
        assert_ne!(request_key(&with("en"), b"", &by_header), request_key(&with("fr"), b"", &by_header));

        let mut by_body = Settings::default();
        by_body.allowable_methods.push(Method::POST);
        let by_body = Arc::new(by_body);
        let post = parts(Method::POST, "http://example.com/search");
        assert_ne!(request_key(&post, b"q=1", &by_body), request_key(&post, b"q=2", &by_body));
    }

    /// The key of the GET an unsafe request invalidates (RFC 9111 §4.4) is the GET's own
    /// key, remembered or not, and keyed by the request's header fields when the
    /// settings match them.
    #[test]
    fn the_key_of_an_invalidated_get_is_the_gets() {
        let settings = Arc::new(Settings::default());
        let post = parts(Method::POST, "https://example.com/items");
        let other: Uri = "https://example.com/items/7?b=1&a=2".parse().expect("URI");
        for uri in [&post.uri, &other, &post.uri] {
            let get = parts(Method::GET, &uri.to_string());
            assert_eq!(get_key(&post, uri, &settings), default_cache_key(&get, b"", &settings));
            assert_eq!(get_key(&post, uri, &settings), request_key(&get, b"", &settings));
        }
        assert_ne!(get_key(&post, &post.uri, &settings), request_key(&post, b"", &settings));

        let by_header = Arc::new(Settings {
            match_headers: MatchHeaders::List(vec![http::header::ACCEPT_LANGUAGE]),
            ..Settings::default()
        });
        let mut french = post.clone();
        french.headers.insert(http::header::ACCEPT_LANGUAGE, http::HeaderValue::from_static("fr"));
        let mut get = parts(Method::GET, "https://example.com/items");
        get.headers = french.headers.clone();
        assert_eq!(get_key(&french, &french.uri, &by_header), cache_key(&get, b"", &by_header));
        assert_ne!(get_key(&french, &french.uri, &by_header), get_key(&post, &post.uri, &by_header));
    }

    /// A key asked for while the thread ends, from another thread-local's destructor
    /// that runs after the memo's, is derived, not a panic. (Destructors run in the
    /// reverse order of first use: the probe is used first, so it is destroyed last.)
    #[test]
    fn a_thread_that_has_dropped_its_memo_still_gets_keys() {
        struct Probe(std::sync::mpsc::Sender<CacheKey>);
        impl Drop for Probe {
            fn drop(&mut self) {
                let settings = Arc::new(Settings::default());
                let _ =
                    self.0.send(request_key(&parts(Method::GET, "http://example.com/late"), b"", &settings));
            }
        }
        thread_local! {
            static PROBE: RefCell<Option<Probe>> = const { RefCell::new(None) };
        }
        let (sender, keys) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            PROBE.with(|probe| *probe.borrow_mut() = Some(Probe(sender)));
            let settings = Arc::new(Settings::default());
            request_key(&parts(Method::GET, "http://example.com/early"), b"", &settings);
        })
        .join()
        .expect("the thread ends without a panic");
        let late = parts(Method::GET, "http://example.com/late");
        assert_eq!(keys.recv().expect("a key"), default_cache_key(&late, b"", &Settings::default()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the thread asked before (URLs and methods that share slots, lengths
        /// and prefixes, under two settings, in any order), the memo answers with the
        /// key derived afresh.
        #[test]
        fn the_memo_always_agrees_with_the_derivation(
            asks in proptest::collection::vec(
                (0usize..2, "[a-c]{0,3}", proptest::option::of("[a-c=&]{0,6}"), any::<bool>(), 0usize..4),
                1..40,
            ),
        ) {
            let mut ignoring = Settings::default();
            ignoring.ignored_parameters.push("a".into());
            let all = [Arc::new(Settings::default()), Arc::new(ignoring)];
            for (settings, path, query, https, method) in asks {
                let settings = &all[settings];
                let scheme = if https { "https" } else { "http" };
                let uri = match query {
                    Some(query) => format!("{scheme}://h.example/{path}?{query}"),
                    None => format!("{scheme}://h.example/{path}"),
                };
                // Methods outside `allowable_methods` key by method and URL too.
                let method = [Method::GET, Method::HEAD, Method::POST, Method::DELETE][method].clone();
                let request = parts(method, &uri);
                prop_assert_eq!(request_key(&request, b"", settings), cache_key(&request, b"", settings));
                // The GET an unsafe request invalidates (RFC 9111 §4.4), remembered in
                // the same slots.
                let get = get_request(&request, &request.uri);
                prop_assert_eq!(get_key(&request, &request.uri, settings), cache_key(&get, b"", settings));
            }
        }
    }
}

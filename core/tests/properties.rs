//! Policy invariants, property-tested over random directives, times and settings.

mod support;

use std::time::Duration;

use httpcache_core::freshness::AgeInputs;
use httpcache_core::machine::{Action, Outcome, Reason, Serve, decide};
use httpcache_core::settings::{Expiry, RequestOptions, Settings, StaleAllowance};
use httpcache_core::{Entry, header::Vary};
use proptest::prelude::*;
use support::*;

const URL: &str = "https://example.com/p";

/// A random `Cache-Control` value built from response directives.
fn response_directives() -> impl Strategy<Value = Vec<String>> {
    let directive = prop_oneof![
        (0u64..500).prop_map(|n| format!("max-age={n}")),
        (0u64..500).prop_map(|n| format!("s-maxage={n}")),
        Just("no-cache".to_string()),
        Just("must-revalidate".to_string()),
        Just("proxy-revalidate".to_string()),
        Just("public".to_string()),
        Just("private".to_string()),
        Just("immutable".to_string()),
        (0u64..500).prop_map(|n| format!("stale-while-revalidate={n}")),
        (0u64..500).prop_map(|n| format!("stale-if-error={n}")),
    ];
    prop::collection::vec(directive, 0..5)
}

/// Request directives that never allow a stale response.
fn strict_request_directives() -> impl Strategy<Value = Vec<String>> {
    let directive = prop_oneof![
        (0u64..500).prop_map(|n| format!("max-age={n}")),
        (0u64..500).prop_map(|n| format!("min-fresh={n}")),
        Just("no-cache".to_string()),
        Just("no-store".to_string()),
    ];
    prop::collection::vec(directive, 0..3)
}

fn settings_strategy() -> impl Strategy<Value = Settings> {
    (any::<bool>(), any::<bool>(), prop::option::of(0u64..1000)).prop_map(|(shared, cache_control, ttl)| {
        Settings {
            shared,
            cache_control,
            expire_after: ttl.map(|secs| Expiry::After(Duration::from_secs(secs))),
            ..Settings::default()
        }
    })
}

/// How a response arrived: sent at `sent` seconds, received `delay` seconds later,
/// its `Date` that far from the sending (clamped at the virtual epoch), and an `Age`.
fn arrival() -> impl Strategy<Value = (u64, u64, i64, Option<u64>)> {
    (0u64..1000, 0u64..100, -200i64..200, prop::option::of(0u64..10_000))
}

fn header_list(directives: &[String]) -> Vec<(&'static str, String)> {
    if directives.is_empty() { Vec::new() } else { vec![("cache-control", directives.join(", "))] }
}

fn as_pairs<'a>(list: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    list.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// Stores a response received at `secs` with `directives` plus a validator and a Date,
/// returning the entry if the machine stores it.
fn try_store(
    secs: u64,
    directives: &[String],
    extra: &[(&str, &str)],
    request: &http::request::Parts,
    settings: &Settings,
) -> Option<Entry> {
    let mut headers = header_list(directives);
    headers.push(("etag", "\"p\"".to_string()));
    headers.push(("date", date(secs)));
    let mut pairs = as_pairs(&headers);
    pairs.extend_from_slice(extra);
    match outcome(secs, request, &resp(200, &pairs), b"body", None, settings, &RequestOptions::default()) {
        Outcome::Store { entry, .. } => Some(*entry),
        _ => None,
    }
}

proptest! {
    /// RFC 9111 §5.2.2.5: a response under `no-store` is never stored, whatever else it says.
    #[test]
    fn no_store_is_never_stored(mut directives in response_directives(), settings in settings_strategy(), position in 0usize..6) {
        let position = position.min(directives.len());
        directives.insert(position, "no-store".to_string());
        prop_assert!(try_store(0, &directives, &[], &get(URL, &[]), &settings).is_none());
    }

    /// RFC 9111 §5.2.2.5: and a stored response that (through a 304 merge) came to
    /// say `no-store` is never served.
    #[test]
    fn no_store_is_never_served(directives in response_directives(), later in 0u64..1000) {
        let settings = Settings::default();
        if let Some(mut entry) = try_store(0, &directives, &[], &get(URL, &[]), &settings) {
            entry.response.headers.append("cache-control", http::HeaderValue::from_static("no-store"));
            let action = decide(at(later), &get(URL, &[]), &[entry], &settings, &RequestOptions::default());
            prop_assert!(!matches!(action, Action::Serve(_)), "{action:?}");
        }
    }

    /// RFC 9111 §4.2.4: a stale response is never served unless a directive
    /// (max-stale, stale-while-revalidate) or a setting allows it.
    #[test]
    fn stale_is_never_served_without_permission(
        directives in response_directives().prop_map(|d| d.into_iter().filter(|d| !d.starts_with("stale-while")).collect::<Vec<_>>()),
        request_directives in strict_request_directives(),
        settings in settings_strategy(),
        later in 0u64..2000,
    ) {
        let request = get(URL, &as_pairs(&header_list(&request_directives)));
        if let Some(entry) = try_store(0, &directives, &[], &get(URL, &[]), &settings) {
            let stale = entry.expires.is_some_and(|expires| expires <= at(later));
            let action = decide(at(later), &request, &[entry], &settings, &RequestOptions::default());
            if stale {
                prop_assert!(!matches!(action, Action::Serve(_)), "{action:?}");
            }
        }
    }

    /// RFC 9111 §4.2: a fresh response with nothing forcing revalidation is served
    /// without asking the network.
    #[test]
    fn a_fresh_hit_never_asks_the_network(max_age in 1u64..10_000, elapsed_fraction in 0.0f64..1.0, shared in any::<bool>()) {
        let settings = Settings { shared, ..Settings::default() };
        let entry = try_store(0, &[format!("max-age={max_age}")], &[], &get(URL, &[]), &settings).expect("storable");
        let now = (max_age as f64 * elapsed_fraction) as u64;
        prop_assume!(now < max_age);
        let action = decide(at(now), &get(URL, &[]), &[entry], &settings, &RequestOptions::default());
        prop_assert!(matches!(action, Action::Serve(ref serve) if !serve.stale), "{action:?}");
    }

    /// RFC 9111 §4.1: whatever is served matches the request's Vary fields.
    #[test]
    fn a_vary_mismatch_never_serves_the_other_variant(
        stored_languages in prop::collection::vec("[a-c]{1,2}", 1..4),
        asked in "[a-c]{1,2}",
        later in 0u64..200,
    ) {
        let settings = Settings::default();
        let entries: Vec<Entry> = stored_languages
            .iter()
            .filter_map(|language| {
                let request = get(URL, &[("accept-language", language)]);
                try_store(0, &["max-age=100".to_string()], &[("vary", "accept-language")], &request, &settings)
            })
            .collect();
        let request = get(URL, &[("accept-language", &asked)]);
        let chosen = match decide(at(later), &request, &entries, &settings, &RequestOptions::default()) {
            Action::Serve(serve) => Some(serve.index),
            Action::Revalidate(revalidate) => Some(revalidate.index),
            _ => None,
        };
        if let Some(index) = chosen {
            let entry = &entries[index];
            prop_assert!(Vary::parse(&entry.response.headers).matches(&entry.request.headers, &request.headers));
            prop_assert_eq!(entry.request.headers["accept-language"].to_str().unwrap(), asked.as_str());
        } else {
            prop_assert!(!stored_languages.contains(&asked));
        }
    }

    /// What lets a driver skip the store read (RFC 9111 §4: a cache is never required to
    /// reuse a stored response): a request with a method that is not stored, a
    /// precondition only the origin evaluates (`If-Match`, §4.3.2), `force_refresh` or
    /// `expire_after: DoNotCache` is decided alike whatever is stored.
    #[test]
    fn requests_that_skip_the_cache_are_decided_alike_whatever_is_stored(
        directives in response_directives(),
        request_directives in strict_request_directives(),
        settings in settings_strategy(),
        later in 0u64..2000,
        only_if_cached in any::<bool>(),
        which in 0usize..4,
    ) {
        let stored: Vec<Entry> = try_store(0, &directives, &[], &get(URL, &[]), &settings).into_iter().collect();
        let mut headers = header_list(&request_directives);
        let mut options = RequestOptions { only_if_cached, ..RequestOptions::default() };
        let mut method = http::Method::GET;
        match which {
            0 => method = http::Method::POST,
            1 => headers.push(("if-match", "\"p\"".to_string())),
            2 => options.force_refresh = true,
            _ => options.expire_after = Some(Expiry::DoNotCache),
        }
        let request = req(method, URL, &as_pairs(&headers));
        prop_assert_eq!(
            decide(at(later), &request, &stored, &settings, &options),
            decide(at(later), &request, &[], &settings, &options)
        );
    }

    /// RFC 9111 §4.3.2: a GET's own `If-None-Match` changes only how a stored response
    /// the cache would serve anyway is sent (a 304 when its tag matches, else in full);
    /// every other decision that reads the store becomes the request forwarded as the
    /// client made it (or a 504 under only-if-cached, as before).
    #[test]
    fn a_clients_if_none_match_changes_only_how_a_served_response_is_sent(
        directives in response_directives(),
        request_directives in strict_request_directives(),
        settings in settings_strategy(),
        later in 0u64..2000,
        only_if_cached in any::<bool>(),
        matching in any::<bool>(),
    ) {
        let stored: Vec<Entry> =
            try_store(0, &directives, &[("etag", "\"p\"")], &get(URL, &[]), &settings).into_iter().collect();
        let mut headers = header_list(&request_directives);
        let options = RequestOptions { only_if_cached, ..RequestOptions::default() };
        let plain = decide(at(later), &get(URL, &as_pairs(&headers)), &stored, &settings, &options);
        headers.push(("if-none-match", if matching { "\"p\"" } else { "\"q\"" }.to_string()));
        let conditional = decide(at(later), &get(URL, &as_pairs(&headers)), &stored, &settings, &options);
        match plain {
            Action::Serve(serve) => {
                prop_assert_eq!(conditional, Action::Serve(Serve { not_modified: matching, ..serve }));
            }
            Action::PassThrough(_) | Action::GatewayTimeout(_) | Action::Fetch(Reason::MethodNotCacheable) => {
                prop_assert_eq!(conditional, plain);
            }
            _ => prop_assert_eq!(conditional, Action::Fetch(Reason::ClientConditional)),
        }
    }

    /// `decide` is a function: the same inputs give the same action.
    #[test]
    fn decide_is_deterministic(
        directives in response_directives(),
        request_directives in strict_request_directives(),
        settings in settings_strategy(),
        later in 0u64..2000,
        refresh in any::<bool>(),
        only_if_cached in any::<bool>(),
    ) {
        let options = RequestOptions { refresh, only_if_cached, ..RequestOptions::default() };
        let request = get(URL, &as_pairs(&header_list(&request_directives)));
        let stored: Vec<Entry> = try_store(0, &directives, &[], &get(URL, &[]), &settings).into_iter().collect();
        let settings = Settings { stale_while_revalidate: StaleAllowance::AtMost(Duration::from_secs(30)), ..settings };
        prop_assert_eq!(
            decide(at(later), &request, &stored, &settings, &options),
            decide(at(later), &request, &stored, &settings, &options)
        );
    }

    /// RFC 9111 §4.2.3: age never decreases as `now` grows.
    #[test]
    fn age_never_decreases(
        (sent, delay, date_offset, age) in arrival(),
        t1 in 0u64..5000,
        dt in 0u64..5000,
    ) {
        let request_time = at(sent);
        let response_time = at(sent + delay);
        let date = at((sent as i64 + date_offset).max(0) as u64);
        let inputs = AgeInputs { request_time, response_time, date: Some(date), age: age.map(Duration::from_secs) };
        let first = inputs.current_age(at(t1));
        let second = inputs.current_age(at(t1 + dt));
        prop_assert!(second >= first);
        prop_assert!(inputs.current_age(response_time) >= Duration::from_secs(delay.min(age.map_or(delay, |a| a + delay))));
    }

    /// RFC 9111 §4.2.3: the age a stored response is served with is its
    /// `corrected_initial_age` (from `Date`, `Age` and the response delay, kept in the
    /// entry when stored and again when a 304 refreshes it) plus its resident time.
    #[test]
    fn served_age_is_the_corrected_initial_age_plus_resident_time(
        (sent, delay, date_offset, age) in arrival(),
        refresh in prop::option::of((1u64..500, 0u64..50, -100i64..100, prop::option::of(0u64..1000))),
        later in 0u64..5000,
    ) {
        let settings = Settings::default();
        let request = get(URL, &[]);
        let exchange_at = |sent: u64, delay: u64, date_offset: i64, age: Option<u64>, stored: Option<&Entry>| {
            let date = date((sent as i64 + date_offset).max(0) as u64);
            let age = age.map(|age| age.to_string());
            let mut fields = vec![("cache-control", "max-age=100000"), ("etag", "\"p\""), ("date", date.as_str())];
            fields.extend(age.as_deref().map(|age| ("age", age)));
            let response = resp(if stored.is_some() { 304 } else { 200 }, &fields);
            let expected = AgeInputs::new(at(sent), at(sent + delay), &response.headers).corrected_initial_age();
            let options = RequestOptions::default();
            (outcome_after(sent, delay, &request, &response, b"", stored, &settings, &options), expected)
        };
        let entry = match exchange_at(sent, delay, date_offset, age, None) {
            (Outcome::Store { entry, .. }, expected) => {
                prop_assert_eq!(entry.initial_age, expected);
                *entry
            }
            (other, _) => return Err(TestCaseError::fail(format!("not stored: {other:?}"))),
        };
        let entry = match refresh {
            None => entry,
            Some((after, delay, date_offset, age)) => {
                let sent = sent + after;
                match exchange_at(sent, delay, date_offset, age, Some(&entry)) {
                    (Outcome::Refresh { entry, .. }, expected) => {
                        // The 304's `Date` and `Age` replace the stored ones (§4.3.4).
                        prop_assert_eq!(entry.initial_age, expected);
                        *entry
                    }
                    (other, _) => return Err(TestCaseError::fail(format!("not refreshed: {other:?}"))),
                }
            }
        };
        prop_assert_eq!(entry.initial_age, entry.computed_initial_age());
        let now = entry.response_time + Duration::from_secs(later);
        let inputs = AgeInputs::new(entry.request_time, entry.response_time, &entry.response.headers);
        match decide(now, &request, std::slice::from_ref(&entry), &settings, &RequestOptions::default()) {
            Action::Serve(serve) => prop_assert_eq!(serve.age, inputs.current_age(now)),
            other => prop_assert!(entry.is_expired(now), "a fresh entry not served: {:?}", other),
        }
    }
}

/// RFC 9111 §4.2.1 and §4.2.3 computed here on their own, from the fields and times of
/// one exchange, as the oracle for the two properties below: the freshness lifetime
/// (`max-age`, else `Expires - Date`, with the receipt time for a missing `Date`) and
/// `corrected_initial_age`, in whole seconds (every input is whole seconds).
fn oracle(
    sent: u64,
    delay: u64,
    date: Option<u64>,
    age: Option<u64>,
    max_age: Option<u64>,
    expires: Option<u64>,
) -> (u64, u64) {
    let received = sent + delay;
    let lifetime = match (max_age, expires) {
        (Some(max_age), _) => max_age,
        (None, Some(expires)) => expires.saturating_sub(date.unwrap_or(received)),
        (None, None) => 0,
    };
    let apparent_age = date.map_or(0, |date| received.saturating_sub(date));
    let corrected_age_value = age.unwrap_or(0) + delay;
    (lifetime, apparent_age.max(corrected_age_value))
}

/// An exchange's times and fields: sent at `sent`, received `delay` later, a `Date`
/// (anywhere around the sending: a clock behind or ahead), an `Age`, a `max-age`, and an
/// `Expires` relative to the `Date` (or to the sending), possibly before it.
fn timed_exchange() -> impl Strategy<Value = (u64, u64, Option<u64>, Option<u64>, Option<u64>, Option<u64>)> {
    (
        1_000u64..2_000,
        0u64..60,
        prop::option::of(-600i64..600),
        prop::option::of(0u64..300),
        prop::option::of(0u64..600),
        prop::option::of(-300i64..900),
    )
        .prop_map(|(sent, delay, date_offset, age, max_age, expires_offset)| {
            let date = date_offset.map(|offset| (sent as i64 + offset) as u64);
            let expires = expires_offset.map(|offset| (date.unwrap_or(sent) as i64 + offset).max(0) as u64);
            (sent, delay, date, age, max_age, expires)
        })
}

/// The origin's answer `status` to a GET sent at `sent`, arriving `delay` later, with
/// an entity tag and the fields the age and freshness calculations read (RFC 9111
/// §4.2.1, §4.2.3), each present or not: what [`store`] makes of it, given `stored`.
fn timed_outcome(
    status: u16,
    (sent, delay, date, age, max_age, expires): (
        u64,
        u64,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
    ),
    stored: Option<&Entry>,
) -> Outcome {
    let settings = Settings::default();
    let request = get(URL, &[]);
    let mut fields: Vec<(&str, String)> = vec![("etag", "\"p\"".to_string())];
    fields.extend(date.map(|secs| ("date", support::date(secs))));
    fields.extend(age.map(|age| ("age", age.to_string())));
    fields.extend(max_age.map(|max_age| ("cache-control", format!("max-age={max_age}"))));
    fields.extend(expires.map(|secs| ("expires", support::date(secs))));
    let response = resp(status, &as_pairs(&fields));
    outcome_after(sent, delay, &request, &response, b"", stored, &settings, &RequestOptions::default())
}

/// Stores the exchange [`timed_exchange`] describes (with an entity tag, so that even a
/// response stale on arrival is stored).
fn store_timed(
    (sent, delay, date, age, max_age, expires): (
        u64,
        u64,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
    ),
) -> Entry {
    match timed_outcome(200, (sent, delay, date, age, max_age, expires), None) {
        Outcome::Store { entry, .. } => *entry,
        other => panic!("not stored: {other:?}"),
    }
}

proptest! {
    /// RFC 9111 §4.2: a stored response is fresh exactly while its current age (§4.2.3)
    /// is below its freshness lifetime (§4.2.1): never once `now` passes that point,
    /// whatever the `Date` (skewed either way), `Age`, response delay, `max-age` or
    /// `Expires` (past, before `Date`, or none).
    #[test]
    fn fresh_exactly_while_the_age_is_below_the_lifetime_rfc9111_4_2(
        exchange in timed_exchange(),
        later in 0u64..2_000,
    ) {
        let (sent, delay, date, age, max_age, expires) = exchange;
        let (lifetime, initial_age) = oracle(sent, delay, date, age, max_age, expires);
        let entry = store_timed(exchange);
        let now = sent + delay + later;
        let current_age = initial_age + later;
        let action = decide(at(now), &get(URL, &[]), &[entry], &Settings::default(), &RequestOptions::default());
        if current_age < lifetime {
            prop_assert!(matches!(action, Action::Serve(Serve { stale: false, reason: Reason::Fresh, .. })), "{action:?}");
        } else {
            prop_assert!(matches!(action, Action::Revalidate(_)), "{action:?}");
        }
    }

    /// RFC 9111 §4.2.3, §5.1: the `Age` a hit is served with is the current age, never
    /// less than the age the response arrived with, and it never decreases as `now`
    /// grows (a clock that went back gives the age at receipt, never less).
    #[test]
    fn the_age_served_is_the_current_age_and_monotone_in_now_rfc9111_4_2_3(
        exchange in timed_exchange(),
        first in 0u64..3_000,
        step in 0u64..3_000,
        before_receipt in 0u64..100,
    ) {
        let (sent, delay, date, age, max_age, expires) = exchange;
        let (_, initial_age) = oracle(sent, delay, date, age, max_age, expires);
        let entry = store_timed(exchange);
        // Served however stale (max-stale), so that every `now` gives an age.
        let request = get(URL, &[("cache-control", "max-stale")]);
        let served_age = |now: std::time::SystemTime| {
            match decide(now, &request, std::slice::from_ref(&entry), &Settings::default(), &RequestOptions::default()) {
                Action::Serve(serve) => serve.age,
                other => panic!("not served: {other:?}"),
            }
        };
        let received = sent + delay;
        prop_assert_eq!(served_age(at(received + first)), Duration::from_secs(initial_age + first));
        prop_assert!(served_age(at(received + first + step)) >= served_age(at(received + first)));
        prop_assert_eq!(served_age(at(received - before_receipt.min(received))), Duration::from_secs(initial_age));
    }
}

proptest! {
    /// RFC 9111 §4.2.4, §5.2.1.2, RFC 5861 §3: a stale response is served only within a
    /// window something grants (the request's `max-stale`, the response's
    /// `stale-while-revalidate`, the `stale_while_revalidate` setting), boundaries
    /// included, and never under `must-revalidate`, `no-cache`, or in a shared cache
    /// `proxy-revalidate` / `s-maxage`; and a response served within a
    /// stale-while-revalidate window is always revalidated in the background.
    #[test]
    fn stale_is_served_only_within_a_granted_window_rfc9111_4_2_4(
        directives in response_directives(),
        max_stale in prop::option::of(prop::option::of(0u64..600)),
        allowance in prop_oneof![
            Just(StaleAllowance::Off),
            Just(StaleAllowance::Always),
            (0u64..600).prop_map(|secs| StaleAllowance::AtMost(Duration::from_secs(secs))),
        ],
        shared in any::<bool>(),
        later in 0u64..2_000,
    ) {
        let settings = Settings { shared, stale_while_revalidate: allowance, ..Settings::default() };
        let Some(entry) = try_store(0, &directives, &[], &get(URL, &[]), &settings) else {
            return Ok(());
        };
        let request_directive = max_stale.map(|limit| match limit {
            Some(limit) => format!("max-stale={limit}"),
            None => "max-stale".to_string(),
        });
        let request = get(URL, &as_pairs(&header_list(&request_directive.into_iter().collect::<Vec<_>>())));
        let now = at(later);
        let Some(expires) = entry.expires else { return Ok(()) };
        let staleness = now.duration_since(expires).ok();
        let parsed = httpcache_core::header::ResponseDirectives::parse(&entry.response.headers);
        let action = decide(now, &request, std::slice::from_ref(&entry), &settings, &RequestOptions::default());
        let Action::Serve(serve) = action else { return Ok(()) };
        if !serve.stale {
            prop_assert!(now < expires);
            return Ok(());
        }
        let staleness = staleness.expect("served stale only once expired");
        prop_assert!(!parsed.must_revalidate && parsed.no_cache.is_none(), "{directives:?}");
        prop_assert!(!(shared && (parsed.proxy_revalidate || parsed.s_maxage.is_some())), "{directives:?}");
        let within = |limit: Option<Duration>| limit.is_some_and(|limit| staleness <= limit);
        match serve.reason {
            Reason::MaxStale => {
                let granted = match max_stale {
                    Some(None) => true,
                    Some(Some(limit)) => within(Some(Duration::from_secs(limit))),
                    None => false,
                };
                prop_assert!(granted);
            }
            Reason::StaleWhileRevalidate => {
                prop_assert!(serve.revalidate_in_background.is_some());
                let by_setting = match allowance {
                    StaleAllowance::Off => false,
                    StaleAllowance::Always => true,
                    StaleAllowance::AtMost(limit) => within(Some(limit)),
                };
                prop_assert!(within(parsed.stale_while_revalidate) || by_setting);
            }
            other => prop_assert!(false, "served stale for {other:?}"),
        }
    }
}

proptest! {
    /// RFC 5861 §4, RFC 9111 §4.2.4: when the origin fails, the stored response stands
    /// in only within a window something grants (the response's `stale-if-error`, the
    /// request's, the `stale_if_error` setting), boundaries included; and neither the
    /// request's directive nor the setting ever overrides `must-revalidate`, `no-cache`,
    /// or in a shared cache `proxy-revalidate` / `s-maxage`. The staleness it reports is
    /// the time since the stored expiry.
    #[test]
    fn stale_if_error_only_within_a_granted_window_rfc5861_4(
        directives in response_directives(),
        request_window in prop::option::of(0u64..600),
        allowance in prop_oneof![
            Just(StaleAllowance::Off),
            Just(StaleAllowance::Always),
            (0u64..600).prop_map(|secs| StaleAllowance::AtMost(Duration::from_secs(secs))),
        ],
        settings in settings_strategy(),
        later in 0u64..2_000,
        transport_error in any::<bool>(),
    ) {
        let settings = Settings { stale_if_error: allowance, ..settings };
        let Some(entry) = try_store(0, &directives, &[], &get(URL, &[]), &settings) else {
            return Ok(());
        };
        let request_directive: Vec<String> = request_window.map(|secs| format!("stale-if-error={secs}")).into_iter().collect();
        let request = get(URL, &as_pairs(&header_list(&request_directive)));
        let now = at(later);
        let options = RequestOptions::default();
        let outcome = if transport_error {
            httpcache_core::machine::on_error(now, &request, Some(&entry), &settings, &options)
        } else {
            outcome(later, &request, &resp(503, &[]), b"", Some(&entry), &settings, &options)
        };
        let Outcome::ServeStale { staleness, reason } = outcome else { return Ok(()) };
        prop_assert_eq!(reason, Reason::StaleIfError);
        let expected = entry.expires.map_or(Duration::ZERO, |expires| now.duration_since(expires).unwrap_or_default());
        prop_assert_eq!(staleness, expected);
        let parsed = httpcache_core::header::ResponseDirectives::parse(&entry.response.headers);
        let within = |limit: Option<Duration>| limit.is_some_and(|limit| staleness <= limit);
        let by_response = settings.cache_control && within(parsed.stale_if_error);
        let forbidden = parsed.must_revalidate
            || parsed.no_cache.is_some()
            || (settings.shared && (parsed.proxy_revalidate || parsed.s_maxage.is_some()));
        let by_request = within(request_window.map(Duration::from_secs));
        let by_setting = match allowance {
            StaleAllowance::Off => false,
            StaleAllowance::Always => true,
            StaleAllowance::AtMost(limit) => within(Some(limit)),
        };
        prop_assert!(by_response || (!forbidden && (by_request || by_setting)), "{directives:?} {request_window:?} {allowance:?}");
    }
}

proptest! {
    /// RFC 9111 §4.3.4, §4.2.1, §4.2.3: after a 304 refreshes a stored response, the
    /// merged fields (the 304's `Date`, `Age`, `Cache-Control` and `Expires` replacing
    /// the stored ones, a missing `Date` becoming the receipt time, a stored `Age`
    /// dropped) say how long it is fresh, counted from the 304's exchange: fresh exactly
    /// while the current age is below that lifetime, and served with that age.
    #[test]
    fn a_refreshed_response_is_fresh_by_its_merged_fields_rfc9111_4_3_4(
        stored in timed_exchange(),
        after in 1u64..3_000,
        revalidation in timed_exchange(),
        later in 0u64..2_000,
    ) {
        let settings = Settings::default();
        let entry = store_timed(stored);
        let (_, _, _, _, stored_max_age, stored_expires) = stored;
        // The 304's own times, shifted to start `after` seconds after the first receipt.
        let (sent0, delay0, ..) = stored;
        let (sent, delay, date, age, max_age, expires) = revalidation;
        let shift = |secs: u64| secs + sent0 + delay0 + after - 1_000;
        let (sent, date, expires) = (shift(sent), date.map(shift), expires.map(shift));
        let refreshed = match timed_outcome(304, (sent, delay, date, age, max_age, expires), Some(&entry)) {
            Outcome::Refresh { entry, .. } => *entry,
            other => return Err(TestCaseError::fail(format!("not refreshed: {other:?}"))),
        };
        // The merge, field by field: what the 304 carries wins, `Date` defaults to the
        // receipt time, `Age` is the 304's or none.
        let merged_date = Some(date.unwrap_or(sent + delay));
        let merged_max_age = max_age.or(stored_max_age);
        let merged_expires = expires.or(stored_expires);
        let (lifetime, initial_age) = oracle(sent, delay, merged_date, age, merged_max_age, merged_expires);
        prop_assert_eq!(refreshed.initial_age, Duration::from_secs(initial_age));
        let now = sent + delay + later;
        let current_age = initial_age + later;
        let action = decide(at(now), &get(URL, &[]), std::slice::from_ref(&refreshed), &settings, &RequestOptions::default());
        if current_age < lifetime {
            prop_assert!(
                matches!(action, Action::Serve(Serve { stale: false, age, .. }) if age == Duration::from_secs(current_age)),
                "{action:?}"
            );
        } else {
            prop_assert!(matches!(action, Action::Revalidate(_)), "{action:?}");
        }
    }
}

/// A user's expiry for the precedence property: `None`, or one of the `Expiry` forms.
fn user_expiry() -> impl Strategy<Value = Option<Expiry>> {
    prop::option::of(prop_oneof![
        Just(Expiry::Never),
        Just(Expiry::Immediately),
        Just(Expiry::DoNotCache),
        (0u64..5_000).prop_map(|secs| Expiry::After(Duration::from_secs(secs))),
        (0u64..5_000).prop_map(|secs| Expiry::At(at(secs))),
    ])
}

proptest! {
    /// The expiration precedence the README and `settings` document, highest first:
    /// the response's `Cache-Control` / `Expires` (when `cache_control`), the request's
    /// `expire_after`, the first matching URL pattern, the session's `expire_after`, then
    /// the RFC 9111 §4.2.2 heuristic (a tenth of `Date - Last-Modified`, for heuristically
    /// cacheable status codes); user lifetimes counted from receipt, the origin's against
    /// the response's age (§4.2.3).
    #[test]
    fn expiration_follows_the_documented_precedence(
        max_age in prop::option::of(0u64..1_000),
        expires_in in prop::option::of(0u64..1_000),
        last_modified_ago in prop::option::of(0u64..50_000),
        age in prop::option::of(0u64..100),
        status in prop::sample::select(vec![200u16, 203, 404, 302]),
        cache_control in any::<bool>(),
        per_request in user_expiry(),
        per_url in user_expiry(),
        session in user_expiry(),
        url_matches in any::<bool>(),
    ) {
        let received = 1_000u64;
        let settings = Settings {
            cache_control,
            expire_after: session,
            urls_expire_after: per_url
                .map(|expiry| (httpcache_core::settings::UrlPattern::new("example.com/p"), expiry))
                .into_iter()
                .collect(),
            allowable_codes: vec![
                http::StatusCode::OK,
                http::StatusCode::NON_AUTHORITATIVE_INFORMATION,
                http::StatusCode::NOT_FOUND,
                http::StatusCode::FOUND,
            ],
            ..Settings::default()
        };
        let url = if url_matches { URL } else { "https://example.com/q" };
        let mut fields: Vec<(&str, String)> = vec![("etag", "\"p\"".to_string()), ("date", date(received))];
        fields.extend(max_age.map(|secs| ("cache-control", format!("max-age={secs}"))));
        fields.extend(expires_in.map(|secs| ("expires", date(received + secs))));
        fields.extend(last_modified_ago.map(|ago| ("last-modified", date(received - ago.min(received)))));
        fields.extend(age.map(|age| ("age", age.to_string())));
        let options = RequestOptions { expire_after: per_request, ..RequestOptions::default() };
        let outcome = outcome(received, &get(url, &[]), &resp(status, &as_pairs(&fields)), b"x", None, &settings, &options);
        let initial_age = Duration::from_secs(age.unwrap_or(0));
        let origin = |lifetime: Duration| Some(at(received) + lifetime - initial_age);
        let user = |expiry: Expiry| match expiry {
            Expiry::Never => Ok(None),
            Expiry::Immediately => Ok(Some(at(received))),
            Expiry::DoNotCache => Err(()),
            Expiry::After(lifetime) => Ok(Some(at(received) + lifetime)),
            Expiry::At(instant) => Ok(Some(instant)),
        };
        let explicit = max_age.or(expires_in).filter(|_| cache_control).map(Duration::from_secs);
        let per_url = per_url.filter(|_| url_matches);
        let heuristic = last_modified_ago
            .filter(|_| cache_control && status != 302)
            .map(|ago| Duration::from_secs(ago.min(received)) / 10);
        let expected: Result<Option<std::time::SystemTime>, ()> = match (explicit, per_request.or(per_url).or(session), heuristic) {
            (Some(lifetime), _, _) => Ok(origin(lifetime)),
            (None, Some(expiry), _) => user(expiry),
            (None, None, Some(lifetime)) => Ok(origin(lifetime)),
            (None, None, None) => Ok(origin(Duration::ZERO)),
        };
        match (outcome, expected) {
            (Outcome::Store { entry, .. }, Ok(expires)) => prop_assert_eq!(entry.expires, expires),
            (Outcome::Skip(Reason::DoNotCache), Err(())) => {}
            (other, expected) => prop_assert!(false, "{other:?}, expected {expected:?}"),
        }
    }
}

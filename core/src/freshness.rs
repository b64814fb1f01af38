//! Age and freshness arithmetic (RFC 9111 §4.2), as pure functions of stored times,
//! headers and `now`.

use std::time::{Duration, SystemTime};

use http::HeaderMap;
use http::header::{DATE, LAST_MODIFIED};

use crate::entry::Entry;
use crate::header::cache_control::ResponseDirectives;
use crate::header::date::{ExpiresValue, date_header, expires};
use crate::header::{MAX_DELTA_SECONDS, age};
use crate::settings::Expiry;

/// The status codes that are heuristically cacheable (RFC 9110 §15.1).
pub const HEURISTICALLY_CACHEABLE: [u16; 12] = [200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501];

/// The fraction of the time since `Last-Modified` used as heuristic freshness
/// (RFC 9111 §4.2.2 suggests 10%).
pub const HEURISTIC_FRACTION: u32 = 10;

/// `a - b`, or zero when `b` is later.
pub(crate) fn since(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).unwrap_or(Duration::ZERO)
}

/// RFC 9111 §4.2.3 `current_age` at `now` of a response that arrived at
/// `response_time` with `corrected_initial_age`: that plus its resident time (zero when
/// `now` is earlier). [`AgeInputs::current_age`] and [`Entry::current_age`] (which kept
/// the initial age) both come here.
pub(crate) fn current_age(
    corrected_initial_age: Duration,
    response_time: SystemTime,
    now: SystemTime,
) -> Duration {
    corrected_initial_age.saturating_add(since(now, response_time))
}

/// The times and headers the age calculation needs (RFC 9111 §4.2.3).
#[derive(Debug, Clone, Copy)]
pub struct AgeInputs {
    /// When the request was sent.
    pub request_time: SystemTime,
    /// When the response arrived.
    pub response_time: SystemTime,
    /// The response's `Date`, if valid.
    pub date: Option<SystemTime>,
    /// The response's `Age`, if valid.
    pub age: Option<Duration>,
}

impl AgeInputs {
    /// Reads `Date` and `Age` from `headers`.
    pub fn new(request_time: SystemTime, response_time: SystemTime, headers: &HeaderMap) -> Self {
        AgeInputs { request_time, response_time, date: date_header(headers, &DATE), age: age(headers) }
    }

    /// The inputs of a stored entry.
    pub fn of(entry: &Entry) -> Self {
        Self::new(entry.request_time, entry.response_time, &entry.response.headers)
    }

    /// `corrected_initial_age` (RFC 9111 §4.2.3): the larger of the apparent age
    /// (`response_time - Date`) and `Age` plus the response delay.
    pub fn corrected_initial_age(&self) -> Duration {
        let apparent_age = self.date.map_or(Duration::ZERO, |date| since(self.response_time, date));
        let response_delay = since(self.response_time, self.request_time);
        let corrected_age_value = self.age.unwrap_or(Duration::ZERO).saturating_add(response_delay);
        apparent_age.max(corrected_age_value)
    }

    /// `current_age` at `now` (RFC 9111 §4.2.3).
    pub fn current_age(&self, now: SystemTime) -> Duration {
        current_age(self.corrected_initial_age(), self.response_time, now)
    }
}

/// Where a response's freshness lifetime came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifetimeSource {
    /// `s-maxage` (shared caches).
    SharedMaxAge,
    /// `max-age`.
    MaxAge,
    /// `Expires` minus `Date`.
    Expires,
    /// [`crate::settings::RequestOptions::expire_after`].
    RequestOption,
    /// [`crate::settings::Settings::urls_expire_after`] or [`crate::settings::Settings::expire_after`].
    Settings,
    /// RFC 9111 §4.2.2 heuristic from `Last-Modified`.
    Heuristic,
    /// Nothing gives one: stale on arrival.
    None,
}

/// The freshness a response is stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Fresh for this long, counted as RFC 9111 counts age.
    For(Duration, LifetimeSource),
    /// Fresh until this instant (a user's [`Expiry::At`]).
    Until(SystemTime),
    /// Never expires (a user's [`Expiry::Never`]).
    Forever,
    /// The user said not to store it ([`Expiry::DoNotCache`]).
    DoNotCache,
}

/// The explicit freshness lifetime from response headers (RFC 9111 §4.2.1), if any.
pub fn explicit_lifetime(
    headers: &HeaderMap,
    directives: &ResponseDirectives,
    shared: bool,
    response_time: SystemTime,
) -> Option<(Duration, LifetimeSource)> {
    if shared && let Some(s_maxage) = directives.s_maxage {
        return Some((s_maxage, LifetimeSource::SharedMaxAge));
    }
    if let Some(max_age) = directives.max_age {
        return Some((max_age, LifetimeSource::MaxAge));
    }
    match expires(headers)? {
        ExpiresValue::Invalid => Some((Duration::ZERO, LifetimeSource::Expires)),
        ExpiresValue::At(at) => {
            // §4.2.1: Expires minus Date; without a valid Date, the receipt time stands in
            // (RFC 9110 §6.6.1: a cache adds a Date when the origin sent none).
            let date = date_header(headers, &DATE).unwrap_or(response_time);
            Some((since(at, date), LifetimeSource::Expires))
        }
    }
}

/// Heuristic freshness (RFC 9111 §4.2.2): 10% of `Date - Last-Modified`, for
/// heuristically cacheable status codes without explicit freshness.
pub fn heuristic_lifetime(status: u16, headers: &HeaderMap, response_time: SystemTime) -> Option<Duration> {
    if !HEURISTICALLY_CACHEABLE.contains(&status) {
        return None;
    }
    let last_modified = date_header(headers, &LAST_MODIFIED)?;
    let date = date_header(headers, &DATE).unwrap_or(response_time);
    let lifetime = since(date, last_modified) / HEURISTIC_FRACTION;
    Some(lifetime.min(Duration::from_secs(MAX_DELTA_SECONDS)))
}

/// Maps a user [`Expiry`] to a [`Lifetime`].
pub fn lifetime_of_expiry(expiry: Expiry, source: LifetimeSource) -> Lifetime {
    match expiry {
        Expiry::Never => Lifetime::Forever,
        Expiry::Immediately => Lifetime::For(Duration::ZERO, source),
        Expiry::DoNotCache => Lifetime::DoNotCache,
        Expiry::After(duration) => Lifetime::For(duration, source),
        Expiry::At(at) => Lifetime::Until(at),
    }
}

/// The instant a response with `lifetime` stops being fresh, given its age inputs:
/// `response_time + lifetime - corrected_initial_age` for durations.
/// `None` means never (so does a lifetime past what `SystemTime` can hold);
/// [`Lifetime::DoNotCache`] maps to `Some(response_time)`.
pub fn expires_at(lifetime: Lifetime, inputs: &AgeInputs) -> Option<SystemTime> {
    match lifetime {
        Lifetime::Forever => None,
        Lifetime::Until(at) => Some(at),
        Lifetime::DoNotCache => Some(inputs.response_time),
        Lifetime::For(duration, source) => {
            // A user's TTL counts from receipt; an origin's lifetime counts against the
            // response's age (§4.2.3).
            let initial_age = match source {
                LifetimeSource::RequestOption | LifetimeSource::Settings => Duration::ZERO,
                _ => inputs.corrected_initial_age(),
            };
            let base = inputs.response_time;
            if duration >= initial_age {
                // Past what `SystemTime` can hold: never, rather than a wrapped instant or
                // the receipt time, which would read as stale at once (§1.2.2).
                base.checked_add(duration - initial_age)
            } else {
                Some(base.checked_sub(initial_age - duration).unwrap_or(base))
            }
        }
    }
}

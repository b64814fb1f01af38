//! The two clocks the tool reads. The workspace bans reading clocks (the policy core
//! takes time as an argument); the command line tool is an I/O edge, like the drivers.

use std::time::{Instant, SystemTime};

/// The wall clock: what "expired" and "3m ago" are measured against.
#[allow(clippy::disallowed_methods)] // an I/O edge: the one wall-clock read of the tool
pub fn now() -> SystemTime {
    SystemTime::now()
}

/// A monotonic start point, for the elapsed times the tool prints.
#[allow(clippy::disallowed_methods)] // an I/O edge: timing requests for people
pub fn stopwatch() -> Instant {
    Instant::now()
}

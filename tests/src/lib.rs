//! Integration test support for httpcache.
//!
//! * [`workload`]: deterministic, self-verifying entries and the workload the
//!   `store-worker` binary runs against a store shared by several processes (used by
//!   the multi-process and crash tests in `tests/`).
//! * [`origin`]: a real HTTP/1.1 origin server on loopback, for adapter tests.
//! * [`scenarios`]: the adapter × store scenario suite and its [`scenario_tests!`] macro.
#![warn(missing_docs)]

pub mod origin;
pub mod scenarios;
pub mod workload;

/// Every Rust block of the README, compiled (and run unless `no_run`) as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

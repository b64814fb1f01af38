//! The store conformance suite, shared by every store crate's tests.

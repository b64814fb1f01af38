//! Integration test support for httpcache.

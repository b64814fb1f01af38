//! The crate's error type and its mapping onto [`StoreError`].

use std::io;
use std::path::Path;

use httpcache_core::StoreError;

/// What can go wrong opening or using an [`LmdbStore`](crate::LmdbStore).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LmdbError {
    /// An operating-system error (permission denied, disk full, missing directory...).
    #[error("{context}: {source}")]
    Io {
        /// What the store was doing, with the path.
        context: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An entry exceeds `max_bytes`, or the map is at its maximum size and evicting
    /// entries could not make room: the write needs more pages than even an empty map
    /// has, or a longer run of them than eviction is counted on to free (both refused
    /// before anything is evicted), or it still did not fit once the store was empty.
    /// See the [crate docs](crate#size).
    #[error("store full: {0}")]
    Full(String),
    /// The path holds something that is not an httpcache LMDB store.
    #[error("not an httpcache LMDB store: {0}")]
    NotACache(String),
    /// Any other LMDB failure.
    #[error("lmdb {context}: {message}")]
    Lmdb {
        /// What the store was doing.
        context: String,
        /// LMDB's description of the failure.
        message: String,
    },
}

impl LmdbError {
    /// Classifies a heed error raised while doing `what` on the store at `path`.
    pub(crate) fn from_heed(what: &str, path: &Path, error: heed::Error) -> Self {
        use heed::MdbError;
        match error {
            heed::Error::Io(source) => {
                LmdbError::Io { context: format!("{what} {}", path.display()), source }
            }
            heed::Error::Mdb(MdbError::MapFull) => {
                LmdbError::Full(format!("{what} {}: the LMDB map is full", path.display()))
            }
            heed::Error::Mdb(MdbError::Invalid | MdbError::VersionMismatch) => {
                LmdbError::NotACache(format!("{} ({error})", path.display()))
            }
            heed::Error::Mdb(MdbError::ReadersFull) => LmdbError::Lmdb {
                context: format!("{what} {}", path.display()),
                message: "LMDB's reader table is full: more threads read this cache than \
                          `LmdbBuilder::max_readers` allows (a thread keeps its reader slot from \
                          its first read until it exits)"
                    .into(),
            },
            other => {
                LmdbError::Lmdb { context: format!("{what} {}", path.display()), message: other.to_string() }
            }
        }
    }
}

impl From<LmdbError> for StoreError {
    fn from(error: LmdbError) -> Self {
        match error {
            LmdbError::Io { context, source } => StoreError::Io { context, source },
            LmdbError::Full(message) => StoreError::Full(message),
            LmdbError::NotACache(message) => StoreError::NotACache(message),
            other @ LmdbError::Lmdb { .. } => StoreError::Backend(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_the_path() {
        let error = LmdbError::from_heed(
            "open",
            Path::new("/some/cache"),
            heed::Error::Io(io::Error::from(io::ErrorKind::PermissionDenied)),
        );
        let StoreError::Io { context, source } = StoreError::from(error) else {
            panic!("expected an I/O error");
        };
        assert!(context.contains("/some/cache"), "{context}");
        assert_eq!(source.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn map_full_is_full_and_invalid_is_not_a_cache() {
        let full = LmdbError::from_heed("put", Path::new("x"), heed::Error::Mdb(heed::MdbError::MapFull));
        assert!(matches!(StoreError::from(full), StoreError::Full(_)));
        let invalid = LmdbError::from_heed("open", Path::new("x"), heed::Error::Mdb(heed::MdbError::Invalid));
        assert!(matches!(StoreError::from(invalid), StoreError::NotACache(_)));
        let other = LmdbError::from_heed("get", Path::new("x"), heed::Error::Mdb(heed::MdbError::BadTxn));
        assert!(matches!(StoreError::from(other), StoreError::Backend(_)));
    }
}

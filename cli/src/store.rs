//! Which store a command works on, and opening it without surprises: a path that
//! holds something else is refused before anything is written there.

use std::fmt;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use httpcache_core::Store;
use httpcache_fs::{Format, FsStore};
use httpcache_lmdb::LmdbStore;
use httpcache_mem::MemoryStore;

use crate::error::CliError;

/// The size bound of a `mem` store (it lives as long as the command).
const MEMORY_BYTES: u64 = 256 << 20;

/// The file LMDB keeps its data in.
const LMDB_DATA: &str = "data.mdb";

/// A store kind, as `--store` and store specs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// LMDB: the default, shared by every process (what the adapters' default clients use).
    Lmdb,
    /// One binary file per key.
    Fs,
    /// One JSON file per key (readable by people).
    FsJson,
    /// In memory, for this command only: nothing persists.
    Mem,
}

impl StoreKind {
    /// The name `--store` and store specs use.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Lmdb => "lmdb",
            StoreKind::Fs => "fs",
            StoreKind::FsJson => "fs-json",
            StoreKind::Mem => "mem",
        }
    }
}

/// A store kind and where it lives: the global `--cache`/`--store`, or a spec such as
/// `fs-json:DIR` given to `export` and `import`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The kind.
    pub kind: StoreKind,
    /// The directory (unused for `mem`).
    pub path: PathBuf,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            StoreKind::Mem => f.write_str("mem"),
            kind => write!(f, "{}:{}", kind.name(), self.path.display()),
        }
    }
}

/// Parses a store spec: `lmdb:PATH`, `fs:DIR` or `fs-json:DIR`.
pub fn parse_spec(text: &str) -> Result<Location, String> {
    let usage = "expected lmdb:PATH, fs:DIR or fs-json:DIR";
    let Some((kind, path)) = text.split_once(':') else {
        return Err(format!("'{text}' is not a store spec: {usage}"));
    };
    let kind = match kind {
        "lmdb" => StoreKind::Lmdb,
        "fs" => StoreKind::Fs,
        "fs-json" => StoreKind::FsJson,
        other => return Err(format!("unknown store kind '{other}': {usage}")),
    };
    if path.is_empty() {
        return Err(format!("'{text}' names no directory: {usage}"));
    }
    Ok(Location { kind, path: PathBuf::from(path) })
}

/// How a command uses its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// It may write: a missing directory is created.
    Write,
    /// It only reads (or deletes): a missing directory is an empty cache, and is not created.
    Read,
}

/// Refuses a path that holds something other than a store of `location.kind`, before
/// the store's own `open` could create files in it.
fn check_path(location: &Location) -> Result<(), CliError> {
    let path = &location.path;
    let not_a_cache = |why: String| CliError::Store(format!("{} is not a cache: {why}", path.display()));
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(CliError::Store(format!("{}: {error}", path.display()))),
    };
    if !metadata.is_dir() {
        return Err(not_a_cache("it is a file, not a directory".into()));
    }
    let has_lmdb = path.join(LMDB_DATA).is_file();
    match location.kind {
        StoreKind::Lmdb if !has_lmdb && !is_empty_dir(path)? => Err(not_a_cache(
            "the directory holds files but no LMDB store (an fs store? try --store fs or fs-json)".into(),
        )),
        StoreKind::Fs | StoreKind::FsJson if has_lmdb => {
            Err(not_a_cache("it holds an LMDB store (use --store lmdb)".into()))
        }
        StoreKind::Fs | StoreKind::FsJson => match fs_kind_of(path, location.kind)? {
            Some(other) if other != location.kind => {
                Err(not_a_cache(format!("it holds an {} store (use --store {})", other.name(), other.name())))
            }
            Some(_) => Ok(()),
            // No entry file yet: an fs store's directory holds its shard directories alone.
            None if holds_only_shards(path)? => Ok(()),
            None => Err(not_a_cache(format!(
                "the directory holds files but no {} store (entries live in <2 hex digits>/ directories)",
                location.kind.name()
            ))),
        },
        _ => Ok(()),
    }
}

/// The kind of the fs store whose entry files the directory holds: `wanted` as soon as
/// one of its files is found, else the other fs kind when only its files are there,
/// else `None`. Entry files are `<2 hex>/<64 hex>` (binary) and `<2 hex>/<64 hex>.json`;
/// a directory holding both is either kind (the two formats ignore each other's files).
fn fs_kind_of(path: &Path, wanted: StoreKind) -> Result<Option<StoreKind>, CliError> {
    let io_error =
        |path: &Path, error: std::io::Error| CliError::Store(format!("{}: {error}", path.display()));
    let is_hex = |text: &str, len: usize| {
        text.len() == len && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut other = None;
    for shard in std::fs::read_dir(path).map_err(|error| io_error(path, error))?.flatten() {
        if !shard.file_name().to_str().is_some_and(|name| is_hex(name, 2))
            || !shard.file_type().is_ok_and(|kind| kind.is_dir())
        {
            continue;
        }
        let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
        for file in files.flatten() {
            let name = file.file_name();
            let kind = match name.to_str() {
                Some(name) if is_hex(name, 64) => StoreKind::Fs,
                Some(name) if name.strip_suffix(".json").is_some_and(|hex| is_hex(hex, 64)) => {
                    StoreKind::FsJson
                }
                _ => continue,
            };
            if kind == wanted {
                return Ok(Some(kind));
            }
            other = Some(kind);
        }
    }
    Ok(other)
}

/// Whether everything in the directory is a shard directory of an fs store (`<2 hex>/`,
/// as the store names them): true for an empty directory.
fn holds_only_shards(path: &Path) -> Result<bool, CliError> {
    let entries =
        std::fs::read_dir(path).map_err(|error| CliError::Store(format!("{}: {error}", path.display())))?;
    Ok(entries.flatten().all(|entry| {
        entry.file_name().to_str().is_some_and(|name| {
            name.len() == 2 && name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }) && entry.file_type().is_ok_and(|kind| kind.is_dir())
    }))
}

fn is_empty_dir(path: &Path) -> Result<bool, CliError> {
    let mut entries =
        std::fs::read_dir(path).map_err(|error| CliError::Store(format!("{}: {error}", path.display())))?;
    Ok(entries.next().is_none())
}

/// Opens the store at `location`. With [`Access::Read`], a directory that does not
/// exist, or an LMDB cache's directory without its data file, is an empty cache and
/// nothing is created.
pub fn open(location: &Location, access: Access) -> Result<Box<dyn Store>, CliError> {
    if location.kind == StoreKind::Mem {
        return Ok(Box::new(MemoryStore::new(MEMORY_BYTES)));
    }
    check_path(location)?;
    // Nothing to read: a directory that does not exist, or (for LMDB) one without a
    // store in it yet, which opening would create.
    let nothing_stored = !location.path.exists()
        || (location.kind == StoreKind::Lmdb && !location.path.join(LMDB_DATA).is_file());
    if access == Access::Read && nothing_stored {
        return Ok(Box::new(MemoryStore::new(MEMORY_BYTES)));
    }
    let path = location.path.clone();
    Ok(match location.kind {
        StoreKind::Lmdb => Box::new(LmdbStore::open(path).map_err(httpcache_core::StoreError::from)?),
        StoreKind::Fs => Box::new(FsStore::open(path)?),
        StoreKind::FsJson => Box::new(FsStore::builder(path).format(Format::Json).open()?),
        StoreKind::Mem => Box::new(MemoryStore::new(MEMORY_BYTES)),
    })
}

/// The cache a command works on: `--cache` (or `HTTPCACHE_DIR`), else the directory
/// the adapters' default clients use ([`httpcache_lmdb::default_cache_dir`]).
pub fn resolve(cache: Option<PathBuf>, kind: StoreKind) -> Result<Location, CliError> {
    let path = match cache {
        Some(path) => path,
        None => httpcache_lmdb::default_cache_dir(httpcache_lmdb::DEFAULT_APP_NAME).ok_or_else(|| {
            CliError::Store("this platform has no user cache directory: pass --cache PATH".into())
        })?,
    };
    Ok(Location { kind, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(parse_spec("lmdb:/tmp/x"), Ok(Location { kind: StoreKind::Lmdb, path: "/tmp/x".into() }));
        assert_eq!(parse_spec("fs-json:d"), Ok(Location { kind: StoreKind::FsJson, path: "d".into() }));
        assert_eq!(parse_spec("fs:a:b").map(|l| l.path), Ok(PathBuf::from("a:b")));
        assert!(parse_spec("/tmp/x").is_err());
        assert!(parse_spec("redis:x").is_err());
        assert!(parse_spec("fs:").is_err());
    }
}

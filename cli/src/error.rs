//! The tool's errors and exit codes: one line on stderr, one code per kind of failure.

use std::fmt;

use httpcache_core::StoreError;

/// The exit codes, as documented in `--help` and the crate docs.
pub mod code {
    /// Success.
    pub const OK: u8 = 0;
    /// The request failed: transport error, or the origin answered 4xx/5xx.
    pub const HTTP: u8 = 1;
    /// Bad command line: unknown option, unparsable URL, duration, header or store spec.
    pub const USAGE: u8 = 2;
    /// The cache could not be used: not a cache, locked, unreadable, full.
    pub const STORE: u8 = 3;
    /// Not in the cache: `get --only-if-cached` missed, `show` found nothing.
    pub const NOT_CACHED: u8 = 4;
    /// The output (`-o FILE` or stdout) could not be written.
    pub const OUTPUT: u8 = 5;
}

/// Why a command failed. Each kind maps to one exit code ([`CliError::exit_code`]).
#[derive(Debug)]
pub enum CliError {
    /// The request failed (exit 1).
    Http(String),
    /// The command line is wrong (exit 2).
    Usage(String),
    /// The cache could not be used (exit 3).
    Store(String),
    /// Nothing usable is stored (exit 4).
    NotCached(String),
    /// The output could not be written (exit 5).
    Output(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Http(_) => code::HTTP,
            CliError::Usage(_) => code::USAGE,
            CliError::Store(_) => code::STORE,
            CliError::NotCached(_) => code::NOT_CACHED,
            CliError::Output(_) => code::OUTPUT,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (CliError::Http(message)
        | CliError::Usage(message)
        | CliError::Store(message)
        | CliError::NotCached(message)
        | CliError::Output(message)) = self;
        // Keep it to one line whatever the source said.
        let mut first = true;
        for line in message.lines().map(str::trim).filter(|line| !line.is_empty()) {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(line)?;
            first = false;
        }
        Ok(())
    }
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> Self {
        CliError::Store(error.to_string())
    }
}

/// `error` and its chain of sources, joined by `: ` (reqwest's own message alone often
/// hides the cause, such as "connection refused").
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

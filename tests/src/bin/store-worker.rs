//! Runs a workload against a store shared with other processes.
//!
//! ```text
//! store-worker STORE run    [--writer N] [--threads N] [--keys N] [--variants N] [--millis N] [--mode mixed|write]
//! store-worker STORE verify
//! ```
//!
//! `STORE` is `lmdb:PATH`, `lmdb-nosync:PATH` or `fs:DIR`. `run` prints `ready` once the store is open,
//! then a summary line when done; `verify` reads every entry and checks it against
//! what its writer wrote. Exit status: 0 when no call failed and every entry read
//! verified, 1 otherwise, 2 on a usage error.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use httpcache_tests::workload::{self, Mode, StoreSpec, Workload};

fn usage(message: &str) -> ExitCode {
    eprintln!("store-worker: {message}");
    eprintln!(
        "usage: store-worker lmdb:PATH|lmdb-nosync:PATH|fs:DIR run|verify [--writer N] [--threads N] [--keys N]"
    );
    eprintln!("       [--variants N] [--millis N] [--mode mixed|write]");
    ExitCode::from(2)
}

fn parse<T: FromStr>(name: &str, value: Option<String>) -> Result<T, String> {
    let value = value.ok_or_else(|| format!("{name} needs a value"))?;
    value.parse().map_err(|_| format!("{name}: invalid value {value:?}"))
}

fn parse_workload(mut args: impl Iterator<Item = String>) -> Result<Workload, String> {
    let mut workload = Workload {
        writer: 0,
        threads: 4,
        keys: 64,
        variants: 2,
        duration: Duration::from_secs(3),
        mode: Mode::Mixed,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--writer" => workload.writer = parse(&flag, args.next())?,
            "--threads" => workload.threads = parse(&flag, args.next())?,
            "--keys" => workload.keys = parse(&flag, args.next())?,
            "--variants" => workload.variants = parse(&flag, args.next())?,
            "--millis" => workload.duration = Duration::from_millis(parse(&flag, args.next())?),
            "--mode" => workload.mode = parse(&flag, args.next())?,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(workload)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let spec: StoreSpec = match args.next().map(|spec| spec.parse()) {
        Some(Ok(spec)) => spec,
        Some(Err(message)) => return usage(&message),
        None => return usage("no store given"),
    };
    let command = args.next();
    let store = match spec.open() {
        Ok(store) => store,
        Err(error) => {
            eprintln!("store-worker: opening {spec}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let report = match command.as_deref() {
        Some("run") => {
            let workload = match parse_workload(args) {
                Ok(workload) => workload,
                Err(message) => return usage(&message),
            };
            println!("ready");
            workload::run(store.store(), &workload)
        }
        Some("verify") => workload::verify_store(store.store()),
        Some(other) => return usage(&format!("unknown command {other:?}")),
        None => return usage("no command given"),
    };
    println!("{report}");
    if report.errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

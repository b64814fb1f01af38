//! A worker writing as fast as it can is killed with SIGKILL at a different moment in
//! each of 20 rounds; after each kill the store must open, and every entry in it must
//! be whole and exactly what its writer wrote (or absent), with nothing found
//! undecodable.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use httpcache_lmdb::SyncMode;
use httpcache_tests::workload::{self, StoreSpec};

const WORKER: &str = env!("CARGO_BIN_EXE_store-worker");
const ROUNDS: u64 = 20;

/// 20 to 200 ms, spread over the rounds without a random number generator.
fn delay(round: u64) -> Duration {
    Duration::from_millis(20 + (round * 97 + 13) % 181)
}

fn kill_mid_writes(spec: &StoreSpec) {
    let mut last_count = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(WORKER)
            .arg(spec.to_string())
            .arg("run")
            .args(["--writer", &round.to_string(), "--threads", "2", "--keys", "32", "--variants", "2"])
            .args(["--mode", "write", "--millis", "60000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a store-worker");
        // Wait until the store is open and writing has begun.
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("{spec} round {round}: the worker did not start: {line}{stderr}");
        }
        std::thread::sleep(delay(round));
        child.kill().expect("SIGKILL the worker");
        let status = child.wait().expect("reap the worker");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "{spec} round {round}: the worker ended before the kill: {status}"
            );
        }
        #[cfg(not(unix))]
        let _ = status;

        let store =
            spec.open().unwrap_or_else(|error| panic!("{spec} round {round}: reopen failed: {error}"));
        let before = store.raw_count().expect("count records");
        let report = workload::verify_store(store.store());
        assert_eq!(report.errors, 0, "{spec} round {round}: {report}");
        let after = store.raw_count().expect("count records");
        assert_eq!(after, before, "{spec} round {round}: undecodable records were found and deleted");
        last_count = after;
    }
    assert!(last_count > 0, "{spec}: the workers never wrote anything");
}

#[test]
fn lmdb_survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().expect("temporary directory");
    kill_mid_writes(&StoreSpec::Lmdb(dir.path().join("lmdb"), SyncMode::Full));
}

#[test]
fn fs_survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().expect("temporary directory");
    kill_mid_writes(&StoreSpec::Fs(dir.path().join("fs")));
}

/// LMDB without flushes: many more operations in the same time.
#[test]
fn lmdb_nosync_survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().expect("temporary directory");
    kill_mid_writes(&StoreSpec::Lmdb(dir.path().join("lmdb"), SyncMode::None));
}

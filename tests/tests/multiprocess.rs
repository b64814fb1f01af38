//! Four processes, four threads each, put, refresh (entries they read), get, and remove
//! overlapping keys of one store for about three seconds. Every call must succeed,
//! every entry read during the run must be exactly what its writer wrote, and
//! afterwards every stored entry must decode and verify (read from this process and
//! from a fresh one).

use std::process::{Command, Stdio};

use httpcache_lmdb::SyncMode;
use httpcache_tests::workload::{self, StoreSpec};

const WORKER: &str = env!("CARGO_BIN_EXE_store-worker");
const PROCESSES: u32 = 4;
const THREADS: &str = "4";
const MILLIS: &str = "3000";

fn count(summary: &str, name: &str) -> u64 {
    summary
        .split_whitespace()
        .find_map(|field| field.strip_prefix(name)?.strip_prefix('='))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

fn hammer(spec: &StoreSpec) {
    let children: Vec<_> = (0..PROCESSES)
        .map(|writer| {
            Command::new(WORKER)
                .arg(spec.to_string())
                .arg("run")
                .args(["--writer", &writer.to_string(), "--threads", THREADS, "--keys", "48"])
                .args(["--variants", "2", "--millis", MILLIS, "--mode", "mixed"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start a store-worker")
        })
        .collect();
    let mut failures = Vec::new();
    for (writer, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().expect("wait for a store-worker");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("{spec} worker {writer}: {}", stdout.lines().last().unwrap_or_default());
        if !output.status.success() {
            failures.push(format!("worker {writer} exited with {}:\n{stdout}\n{stderr}", output.status));
        } else if ["puts", "refreshes", "entries_read"].iter().any(|name| count(&stdout, name) == 0) {
            failures.push(format!("worker {writer} did no work: {stdout}"));
        }
    }
    assert!(failures.is_empty(), "{spec}: {}", failures.join("\n"));

    let store = spec.open().expect("open the store after the run");
    let before = store.raw_count().expect("count records");
    let report = workload::verify_store(store.store());
    eprintln!("{spec} verified in-process: {report}");
    assert_eq!(report.errors, 0, "{spec}: {report}");
    assert!(report.entries_read > 0, "{spec}: nothing was left to verify");
    let after = store.raw_count().expect("count records");
    assert_eq!(after, before, "{spec}: reading deleted undecodable records");
    drop(store);

    let output = Command::new(WORKER).arg(spec.to_string()).arg("verify").output().expect("run a verifier");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{spec}: the verifier process failed: {stdout}");
    assert_eq!(count(&stdout, "entries_read"), report.entries_read, "{spec}: {stdout}");
}

#[test]
fn lmdb_shared_by_four_processes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    hammer(&StoreSpec::Lmdb(dir.path().join("lmdb"), SyncMode::Full));
}

#[test]
fn fs_shared_by_four_processes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    hammer(&StoreSpec::Fs(dir.path().join("fs")));
}

/// LMDB without flushes: many more operations in the same time.
#[test]
fn lmdb_nosync_shared_by_four_processes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    hammer(&StoreSpec::Lmdb(dir.path().join("lmdb"), SyncMode::None));
}

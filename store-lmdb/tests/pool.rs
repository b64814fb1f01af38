//! The writer of refreshes must not depend on the `blocking` thread pool: the pool's
//! tasks (an async `put` settling the queue, say) wait for the writer, and on a full
//! pool a writer queued behind them never runs. This test runs itself again in a child
//! process whose pool has one thread (`BLOCKING_MAX_THREADS=1`, read once per process)
//! and fails if the child does not finish.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use httpcache_core::conformance::{body, entry, key, revalidated};
use httpcache_core::{AsyncStore, Store};
use httpcache_lmdb::LmdbStore;

/// Set in the child process, which runs the scenario.
const CHILD: &str = "HTTPCACHE_POOL_TEST_CHILD";

#[test]
fn a_full_blocking_pool_never_starves_the_writer_of_refreshes() {
    if std::env::var_os(CHILD).is_some() {
        scenario();
        return;
    }
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "a_full_blocking_pool_never_starves_the_writer_of_refreshes", "--nocapture"])
        .env(CHILD, "1")
        .env("BLOCKING_MAX_THREADS", "1")
        .stdout(Stdio::null())
        .spawn()
        .expect("run the scenario in a child process");
    // Polled for at most about a minute (the scenario takes a fraction of a second).
    for _ in 0..3_000 {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            assert!(status.success(), "the scenario failed: {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("deadlock: the scenario did not finish within a minute");
}

/// The one pool thread is busy; an async put queues behind it; then a refresh is
/// queued. When the busy task ends, the put runs on the pool and waits for the refresh
/// to be written: that must happen elsewhere than on the pool.
fn scenario() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = LmdbStore::open(dir.path()).expect("open").into_async();
    let stored = entry(key(1), 0, body(1, 30_000));
    store.blocking().put(&stored).expect("put");

    let (release, hold) = mpsc::channel::<()>();
    let busy = blocking::unblock(move || hold.recv().ok());
    let other = entry(key(2), 0, body(2, 1_000));
    std::thread::scope(|scope| {
        let put = scope.spawn(|| futures_executor::block_on(AsyncStore::put(&store, &other)));
        // Give the put time to reach the pool's queue, behind the busy task (if it has
        // not, the scenario is merely easier).
        std::thread::sleep(Duration::from_millis(100));
        let refreshed = revalidated(&stored, 1);
        futures_executor::block_on(AsyncStore::refresh(&store, &refreshed)).expect("refresh");
        release.send(()).expect("release the busy task");
        futures_executor::block_on(busy);
        put.join().expect("the put's thread").expect("put");
        assert_eq!(store.blocking().get(&key(1)).expect("get"), [refreshed]);
        assert_eq!(store.blocking().get(&key(2)).expect("get"), std::slice::from_ref(&other));
    });
}

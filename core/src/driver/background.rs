//! The stale-while-revalidate revalidations of one [`Cache`](super::Cache) still
//! running in the background, so that a program can wait for them before it exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use event_listener::{Event, Listener};

/// How many background revalidations run, and the event their end fires.
#[derive(Debug, Default)]
pub(super) struct Background {
    running: AtomicUsize,
    /// Notified when `running` drops to zero. Allocates nothing until someone listens.
    idle: Event,
}

impl Background {
    /// Counts one more revalidation, for as long as the returned guard lives.
    pub(super) fn start(this: &Arc<Background>) -> Revalidating {
        this.running.fetch_add(1, Ordering::AcqRel);
        Revalidating { background: this.clone() }
    }

    /// How many are running.
    pub(super) fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// Blocks until none is running, or until `timeout` has passed; returns whether
    /// none is. (One wait, not a loop to a deadline: the core reads no clock. Should a
    /// new revalidation start just as the last one ends, this says `false`.)
    pub(super) fn wait(&self, timeout: Duration) -> bool {
        if self.running() == 0 {
            return true;
        }
        let listener = self.idle.listen();
        // A revalidation that ended between the check and `listen` notified no one.
        if self.running() == 0 {
            return true;
        }
        let _ = listener.wait_timeout(timeout);
        self.running() == 0
    }

    /// Completes once none is running.
    pub(super) async fn idle(&self) {
        loop {
            if self.running() == 0 {
                return;
            }
            let listener = self.idle.listen();
            if self.running() == 0 {
                return;
            }
            listener.await;
        }
    }
}

/// One background revalidation of a [`Cache`](super::Cache), counted from
/// [`Cache::revalidating`](super::Cache::revalidating) until this guard is dropped
/// (when the revalidation ends, fails or panics). An adapter moves it into the thread
/// or task that revalidates, so that [`Cache::wait_for_revalidations`](super::Cache::wait_for_revalidations)
/// and [`Cache::revalidations_finished`](super::Cache::revalidations_finished) wait for it.
#[derive(Debug)]
#[must_use = "the revalidation is counted only while the guard lives"]
pub struct Revalidating {
    background: Arc<Background>,
}

impl Drop for Revalidating {
    fn drop(&mut self) {
        if self.background.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.background.idle.notify(usize::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_with_nothing_running_returns_at_once() {
        let background = Arc::new(Background::default());
        assert!(background.wait(Duration::ZERO));
    }

    #[test]
    fn waiting_times_out_while_one_runs_and_returns_once_it_ends() {
        let background = Arc::new(Background::default());
        let first = Background::start(&background);
        let second = Background::start(&background);
        assert_eq!(background.running(), 2);
        assert!(!background.wait(Duration::from_millis(1)), "two are running");
        drop(first);
        assert!(!background.wait(Duration::ZERO), "one is still running");
        let waiter = {
            let background = background.clone();
            std::thread::spawn(move || background.wait(Duration::from_secs(60)))
        };
        drop(second);
        assert!(waiter.join().unwrap(), "the waiter is woken by the last one ending");
        assert_eq!(background.running(), 0);
    }

    #[test]
    fn a_revalidation_that_panics_is_still_counted_out() {
        let background = Arc::new(Background::default());
        let guard = Background::start(&background);
        let ended = std::thread::spawn(move || {
            let _guard = guard;
            panic!("the revalidation failed");
        })
        .join();
        assert!(ended.is_err());
        assert_eq!(background.running(), 0);
        assert!(background.wait(Duration::ZERO));
    }

    #[test]
    fn the_async_wait_completes_when_the_last_one_ends() {
        let background = Arc::new(Background::default());
        let guard = Background::start(&background);
        let idle = {
            let background = background.clone();
            std::thread::spawn(move || futures_executor::block_on(async move { background.idle().await }))
        };
        drop(guard);
        idle.join().unwrap();
        assert_eq!(background.running(), 0);
    }
}

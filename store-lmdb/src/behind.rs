//! Write-behind for refreshes: the queue of refreshes a store has accepted but not yet
//! written, which reads consult and every other write waits for.
//!
//! A refresh after a 304 changes a few hundred bytes, but its commit waits for a
//! flush to disk. [`Behind`] lets the refresh return once it is queued: one writer at
//! a time (a task on the [`blocking`] pool, started by whoever queues into an idle
//! queue) writes everything queued in one transaction, so a burst of refreshes costs
//! one commit. Three rules keep the store's answers the same as if every refresh had
//! been written before it returned:
//!
//! * reads see queued refreshes ([`Behind::queued_for`]) before they read the map, so
//!   a refresh is visible from the moment it is queued, and still visible (from the
//!   map) once it is written and dequeued;
//! * every other write of this process, and every scan, first waits until the queue
//!   is empty ([`Behind::settle`]), so it lands after the refreshes queued before it;
//! * the queue is bounded ([`MAX_QUEUED`], [`MAX_QUEUED_BYTES`]): a refresh that finds
//!   it full waits for room.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use httpcache_core::CacheKey;

use crate::records::PreparedEntry;

/// At most this many refreshes wait to be written; one more waits for room.
pub(crate) const MAX_QUEUED: usize = 256;

/// At most this many bytes of entries (bodies included: a queued refresh keeps the
/// body it was read with alive) wait to be written; one more waits for room, unless
/// the queue is empty.
pub(crate) const MAX_QUEUED_BYTES: u64 = 32 << 20;

/// The queue and its writer flag.
#[derive(Default)]
struct Queue {
    /// Oldest first. An entry leaves only once written (or its write failed).
    entries: VecDeque<Arc<PreparedEntry>>,
    /// The sum of the entries' [`PreparedEntry::stored_len`].
    bytes: u64,
    /// Whether a writer is draining the queue.
    writing: bool,
    /// How many entries have ever left the queue (written, failed or abandoned): a
    /// settle waits for this to pass the count queued before it, not for an empty
    /// queue, which a steady stream of refreshes might never leave.
    left: u64,
}

impl Queue {
    fn has_room_for(&self, entry: &PreparedEntry) -> bool {
        self.entries.is_empty()
            || (self.entries.len() < MAX_QUEUED
                && self.bytes.saturating_add(entry.stored_len()) <= MAX_QUEUED_BYTES)
    }
}

/// Refreshes accepted and not yet written. See the [module docs](self).
#[derive(Default)]
pub(crate) struct Behind {
    queue: Mutex<Queue>,
    /// Signalled whenever entries leave the queue.
    drained: Condvar,
    /// How many entries are queued, readable without the lock: a read of a store with
    /// nothing queued (the usual case) takes no lock here.
    len: AtomicUsize,
}

/// What [`Behind::push`] asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Pushed {
    /// A writer is already draining the queue.
    Queued,
    /// The queue was idle: the caller starts a writer ([`Behind::next_batch`]).
    StartWriter,
}

impl Behind {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Queue>) -> MutexGuard<'a, Queue> {
        self.drained.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    fn enqueue(&self, queue: &mut Queue, entry: Arc<PreparedEntry>) -> Pushed {
        queue.bytes = queue.bytes.saturating_add(entry.stored_len());
        queue.entries.push_back(entry);
        self.len.store(queue.entries.len(), Ordering::Release);
        if queue.writing {
            Pushed::Queued
        } else {
            queue.writing = true;
            Pushed::StartWriter
        }
    }

    /// Queues `entry`, first waiting for room if the queue is full (blocking).
    pub(crate) fn push(&self, entry: Arc<PreparedEntry>) -> Pushed {
        let mut queue = self.lock();
        while !queue.has_room_for(&entry) {
            queue = self.wait(queue);
        }
        self.enqueue(&mut queue, entry)
    }

    /// Queues `entry` if there is room now; gives it back otherwise (never blocks on
    /// room, for callers on an executor).
    pub(crate) fn try_push(&self, entry: Arc<PreparedEntry>) -> Result<Pushed, Arc<PreparedEntry>> {
        let mut queue = self.lock();
        if queue.has_room_for(&entry) { Ok(self.enqueue(&mut queue, entry)) } else { Err(entry) }
    }

    /// The queued refreshes of `key`'s variants, oldest first (empty without taking
    /// the lock when nothing is queued).
    pub(crate) fn queued_for(&self, key: &CacheKey) -> Vec<Arc<PreparedEntry>> {
        if self.len.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let queue = self.lock();
        queue.entries.iter().filter(|entry| entry.id[..32] == key.as_bytes()[..]).cloned().collect()
    }

    /// For the writer: the entries to write next, oldest first and left in the queue
    /// (so reads keep seeing them) until [`written`](Self::written); `None` when the
    /// queue is empty, in which case the writer is done and the next push starts one.
    pub(crate) fn next_batch(&self) -> Option<Vec<Arc<PreparedEntry>>> {
        let mut queue = self.lock();
        if queue.entries.is_empty() {
            queue.writing = false;
            return None;
        }
        Some(queue.entries.iter().cloned().collect())
    }

    /// For the writer: the first `count` entries are written (or failed); they leave
    /// the queue, and whoever waits for room or for the queue to empty wakes.
    pub(crate) fn written(&self, count: usize) {
        let mut queue = self.lock();
        let count = count.min(queue.entries.len());
        let freed: u64 = queue.entries.drain(..count).map(|entry| entry.stored_len()).sum();
        queue.bytes = queue.bytes.saturating_sub(freed);
        queue.left += count as u64;
        self.len.store(queue.entries.len(), Ordering::Release);
        drop(queue);
        self.drained.notify_all();
    }

    /// For a writer that cannot go on (it is unwinding): drops what is queued, so that
    /// nobody waits for it forever, and lets the next push start a writer.
    pub(crate) fn abandon(&self) {
        let mut queue = self.lock();
        queue.left += queue.entries.len() as u64;
        queue.entries.clear();
        queue.bytes = 0;
        queue.writing = false;
        self.len.store(0, Ordering::Release);
        drop(queue);
        self.drained.notify_all();
    }

    /// Waits until every refresh queued so far has been written (at once when the
    /// queue is empty).
    pub(crate) fn settle(&self) {
        if self.len.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut queue = self.lock();
        let target = queue.left + queue.entries.len() as u64;
        while queue.left < target {
            queue = self.wait(queue);
        }
    }

    /// How many refreshes are queued.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use httpcache_core::conformance::{body, entry, key};

    use super::*;

    fn prepared(n: u64) -> Arc<PreparedEntry> {
        Arc::new(PreparedEntry::new(&entry(key(n), 0, body(n, 100))))
    }

    #[test]
    fn the_first_push_starts_the_writer_and_an_empty_batch_stops_it() {
        let behind = Behind::default();
        assert_eq!(behind.push(prepared(1)), Pushed::StartWriter);
        assert_eq!(behind.push(prepared(2)), Pushed::Queued);
        let batch = behind.next_batch().expect("two queued");
        assert_eq!(batch.len(), 2);
        assert_eq!(behind.len(), 2, "a batch stays queued until written");
        assert_eq!(behind.queued_for(&key(2)).len(), 1);
        behind.written(batch.len());
        assert_eq!(behind.len(), 0);
        assert!(behind.queued_for(&key(2)).is_empty());
        assert!(behind.next_batch().is_none());
        assert_eq!(behind.push(prepared(3)), Pushed::StartWriter, "the writer stopped: start another");
    }

    #[test]
    fn a_full_queue_refuses_a_try_and_holds_a_push_until_there_is_room() {
        let behind = Behind::default();
        for n in 0..MAX_QUEUED as u64 {
            let _ = behind.try_push(prepared(n)).expect("room");
        }
        assert!(behind.try_push(prepared(1_000)).is_err(), "full");
        let (done, pushed) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _ = behind.push(prepared(1_001));
                done.send(()).unwrap();
            });
            // Not a timing assertion: a push that did not wait would only make this
            // check pass sooner, never fail it.
            assert!(pushed.recv_timeout(Duration::from_millis(50)).is_err(), "the push waits for room");
            behind.written(1);
            pushed.recv().expect("the push went through once there was room");
        });
        assert_eq!(behind.len(), MAX_QUEUED);
    }

    #[test]
    fn a_queue_over_its_byte_bound_takes_one_more_only_when_empty() {
        let behind = Behind::default();
        let big = || Arc::new(PreparedEntry::new(&entry(key(9), 0, body(9, MAX_QUEUED_BYTES as usize))));
        let _ = behind.try_push(big()).expect("an empty queue takes any entry");
        assert!(behind.try_push(prepared(1)).is_err(), "over the byte bound");
        behind.written(1);
        let _ = behind.try_push(prepared(1)).expect("room again");
    }

    #[test]
    fn settle_waits_for_what_was_queued_before_it_only() {
        let behind = Behind::default();
        behind.settle(); // nothing queued: returns at once
        let _ = behind.push(prepared(1));
        let (done, settled) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                behind.settle();
                done.send(()).unwrap();
            });
            assert!(settled.recv_timeout(Duration::from_millis(50)).is_err(), "settle waits");
            // Queued after the settle began: it does not wait for this one.
            let _ = behind.push(prepared(2));
            behind.written(1);
            settled.recv().expect("settled once the first was written");
        });
        assert_eq!(behind.len(), 1);
    }

    #[test]
    fn abandoning_empties_the_queue_and_wakes_the_waiters() {
        let behind = Behind::default();
        let _ = behind.push(prepared(1));
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| behind.settle());
            behind.abandon();
            waiter.join().expect("settle returned");
        });
        assert_eq!(behind.len(), 0);
        assert_eq!(behind.push(prepared(2)), Pushed::StartWriter);
    }
}

//! Write-behind for stores: a bounded queue of writes a store has accepted but not
//! yet made, which its reads consult and its other writes wait for.
//!
//! A refresh after a 304 changes a few hundred bytes of a stored entry, but a disk
//! store's write waits for a flush to disk. [`WriteBehind`] lets such a store return
//! from [`Store::refresh`](crate::Store::refresh) once the refresh is queued: one
//! writer at a time, on a thread the store starts when a push finds no writer (the
//! `start_writer` callback of [`WriteBehind::push`]), runs [`WriteBehind::drain`], which hands it what is
//! queued, batch after batch, and returns once the queue has stayed empty for a while.
//! The writer needs a thread of its own: on a shared pool, the tasks waiting for it
//! (below) could hold every thread and starve it. Three rules, which the store keeps
//! with these calls, make its answers the same as if every refresh had been written
//! before `refresh` returned (the contract of [`Store::refresh`](crate::Store::refresh)):
//!
//! * reads look at the queued writes of their key ([`WriteBehind::queued_for`])
//!   *before* reading storage, and prefer them: a queued write is visible from the
//!   moment it is queued, and one written and dequeued after that look is in storage
//!   by the time the read starts;
//! * every other write first waits for the writes queued before it, and then holds
//!   the writer off until it has landed ([`WriteBehind::settle`] and the [`Settled`]
//!   guard it returns): it lands after them, and a refresh queued meanwhile lands
//!   after it, so two reads never see a refresh, then the write, then the refresh
//!   again; scans settle too, so they list what reads would return;
//! * the queue is bounded in entries and in bytes ([`WriteBehind::new`]): a write
//!   that finds it full waits for room ([`WriteBehind::push`]) or is refused
//!   ([`WriteBehind::try_push`], for callers on an executor).
//!
//! The queue itself starts no thread and does no I/O: it is two `Mutex`es, two
//! `Condvar`s and an atomic count, the last so that a read of a store with nothing
//! queued (the usual case) takes no lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::{CacheKey, Entry, VariantId};

/// A write that can wait in a [`WriteBehind`] queue.
pub trait Queued: Send + Sync {
    /// The key of the entry it writes: what [`WriteBehind::queued_for`] matches.
    fn key(&self) -> CacheKey;
    /// The variant it writes: of two writes of one key and variant in a batch, only the
    /// later is handed to the writer ([`WriteBehind::drain`]).
    fn variant(&self) -> VariantId;
    /// What it counts for against the queue's byte bound: about the memory it keeps
    /// alive while queued.
    fn weight(&self) -> u64;
}

/// An entry queued whole, weighing about its encoded size.
impl Queued for Entry {
    fn key(&self) -> CacheKey {
        self.key
    }
    fn variant(&self) -> VariantId {
        self.variant
    }
    fn weight(&self) -> u64 {
        (self.head_len_estimate() as u64).saturating_add(self.response.body.len() as u64)
    }
}

/// Puts each of `queued` (oldest first) in place of the entry of the same variant in
/// `stored`, or adds it: what a read returns while writes are queued (the first rule
/// of the [module docs](self)).
pub fn overlay(stored: &mut Vec<Entry>, queued: impl IntoIterator<Item = Entry>) {
    for entry in queued {
        match stored.iter_mut().find(|old| old.variant == entry.variant) {
            Some(old) => *old = entry,
            None => stored.push(entry),
        }
    }
}

/// The default bound on queued writes: 256.
pub const DEFAULT_MAX_QUEUED: usize = 256;

/// The default bound on the bytes of queued writes ([`Queued::weight`]): 32 MiB.
pub const DEFAULT_MAX_QUEUED_BYTES: u64 = 32 << 20;

/// The queue and its writer flag.
struct Queue<T> {
    /// Oldest first. An entry leaves only once written (or its write failed).
    entries: VecDeque<Arc<T>>,
    /// The sum of the entries' [`Queued::weight`].
    bytes: u64,
    /// Whether a writer is draining the queue (or about to start).
    writing: bool,
    /// Whether the writer waits for work (a push wakes it).
    parked: bool,
    /// How many entries have ever left the queue (written, failed or abandoned): a
    /// settle waits for this to pass the count queued before it, not for an empty
    /// queue, which a steady stream of refreshes might never leave.
    left: u64,
}

/// Writes accepted and not yet made. See the [module docs](self).
pub struct WriteBehind<T> {
    queue: Mutex<Queue<T>>,
    /// Signalled whenever entries leave the queue.
    drained: Condvar,
    /// Signalled when a push finds the writer parked.
    arrived: Condvar,
    /// Held by the writer while it writes a batch, and by every other write from
    /// its settle until it has landed.
    gate: Mutex<()>,
    /// How many entries are queued, readable without the lock.
    len: AtomicUsize,
    max_len: usize,
    max_bytes: u64,
}

impl<T> std::fmt::Debug for WriteBehind<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteBehind")
            .field("queued", &self.len())
            .field("max_len", &self.max_len)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// Returned by [`WriteBehind::settle`]: while it lives, the writer waits.
#[must_use = "a write holds it until it has landed"]
pub struct Settled<'a>(#[allow(dead_code)] MutexGuard<'a, ()>);

impl std::fmt::Debug for Settled<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Settled")
    }
}

impl<T: Queued> Default for WriteBehind<T> {
    /// A queue with the default bounds ([`DEFAULT_MAX_QUEUED`],
    /// [`DEFAULT_MAX_QUEUED_BYTES`]).
    fn default() -> Self {
        WriteBehind::new(DEFAULT_MAX_QUEUED, DEFAULT_MAX_QUEUED_BYTES)
    }
}

impl<T: Queued> WriteBehind<T> {
    /// An empty queue holding at most `max_len` writes (at least 1) weighing at most
    /// `max_bytes` together; a write heavier than `max_bytes` alone still goes in
    /// when the queue is empty.
    pub fn new(max_len: usize, max_bytes: u64) -> Self {
        WriteBehind {
            queue: Mutex::new(Queue {
                entries: VecDeque::new(),
                bytes: 0,
                writing: false,
                parked: false,
                left: 0,
            }),
            drained: Condvar::new(),
            arrived: Condvar::new(),
            gate: Mutex::new(()),
            len: AtomicUsize::new(0),
            max_len: max_len.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Queue<T>>) -> MutexGuard<'a, Queue<T>> {
        self.drained.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    fn has_room(&self, queue: &Queue<T>, entry: &T) -> bool {
        queue.entries.is_empty()
            || (queue.entries.len() < self.max_len
                && queue.bytes.saturating_add(entry.weight()) <= self.max_bytes)
    }

    /// Adds `entry`; whether the caller must start a writer (none is draining).
    fn enqueue(&self, queue: &mut Queue<T>, entry: Arc<T>) -> bool {
        queue.bytes = queue.bytes.saturating_add(entry.weight());
        queue.entries.push_back(entry);
        self.len.store(queue.entries.len(), Ordering::Release);
        if queue.writing {
            if queue.parked {
                queue.parked = false;
                self.arrived.notify_one();
            }
            false
        } else {
            queue.writing = true;
            true
        }
    }

    /// Queues `entry`, first waiting for room if the queue is full (blocking). When no
    /// writer is draining the queue, calls `start_writer` (after releasing the queue):
    /// the store starts one, which runs [`drain`](Self::drain).
    pub fn push(&self, entry: Arc<T>, start_writer: impl FnOnce()) {
        let mut queue = self.lock();
        while !self.has_room(&queue, &entry) {
            queue = self.wait(queue);
        }
        let start = self.enqueue(&mut queue, entry);
        drop(queue);
        if start {
            start_writer();
        }
    }

    /// [`push`](Self::push) if there is room now; gives `entry` back otherwise (never
    /// blocks on room, for callers on an executor).
    ///
    /// # Errors
    /// `entry` itself, when the queue is full.
    pub fn try_push(&self, entry: Arc<T>, start_writer: impl FnOnce()) -> Result<(), Arc<T>> {
        let mut queue = self.lock();
        if !self.has_room(&queue, &entry) {
            return Err(entry);
        }
        let start = self.enqueue(&mut queue, entry);
        drop(queue);
        if start {
            start_writer();
        }
        Ok(())
    }

    /// The queued refreshes of `key`'s variants, oldest first (empty without taking
    /// the lock when nothing is queued).
    pub fn queued_for(&self, key: &CacheKey) -> Vec<Arc<T>> {
        if self.len.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let queue = self.lock();
        queue.entries.iter().filter(|entry| entry.key() == *key).cloned().collect()
    }

    /// The writer: calls `write` with everything queued, oldest first, then again with
    /// what was queued meanwhile, until the queue has stayed empty for `idle`; then
    /// the next push starts a writer again. Waiting a while
    /// spares a steady stream of refreshes a thread start each (`Duration::ZERO`
    /// returns as soon as the queue is empty). Of several writes of one key and
    /// variant in a batch, `write` receives only the last: each replaces the variant
    /// whole, so the others would be overwritten at once (a burst of revalidations of
    /// one resource costs one write). A batch stays queued, so reads keep seeing it,
    /// until `write` returns; `write` handles its own failures (a store logs
    /// them: the writes are dropped either way). If `write` panics, what is queued is
    /// dropped, so that no one waits for it forever.
    pub fn drain(&self, idle: Duration, mut write: impl FnMut(&[Arc<T>])) {
        /// Empties the queue if the writer unwinds.
        struct Abandon<'a, T: Queued>(&'a WriteBehind<T>);
        impl<T: Queued> Drop for Abandon<'_, T> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.abandon();
                }
            }
        }
        let _abandon = Abandon(self);
        while let Some(batch) = self.next_batch(idle) {
            let count = batch.len();
            let _gate = self.gate.lock().unwrap_or_else(PoisonError::into_inner);
            write(&latest_per_variant(batch));
            self.written(count);
        }
    }

    /// The entries to write next, oldest first and left in the queue (so reads keep
    /// seeing them) until [`written`](Self::written), waiting up to `idle` for some;
    /// `None` when there were none, in which case the writer is done and the next push
    /// starts one.
    fn next_batch(&self, idle: Duration) -> Option<Vec<Arc<T>>> {
        let mut queue = self.lock();
        let mut timed_out = idle.is_zero();
        // No clock in the core: a spurious wake-up waits `idle` afresh, which only
        // keeps the writer a little longer.
        while queue.entries.is_empty() {
            if timed_out {
                queue.writing = false;
                queue.parked = false;
                return None;
            }
            queue.parked = true;
            let (guard, wait) =
                self.arrived.wait_timeout(queue, idle).unwrap_or_else(PoisonError::into_inner);
            queue = guard;
            timed_out = wait.timed_out();
        }
        queue.parked = false;
        Some(queue.entries.iter().cloned().collect())
    }

    /// The first `count` entries are written (or failed); they leave the queue, and
    /// whoever waits for room or for the queue to empty wakes.
    fn written(&self, count: usize) {
        let mut queue = self.lock();
        let count = count.min(queue.entries.len());
        let freed: u64 = queue.entries.drain(..count).map(|entry| entry.weight()).sum();
        queue.bytes = queue.bytes.saturating_sub(freed);
        queue.left += count as u64;
        self.len.store(queue.entries.len(), Ordering::Release);
        drop(queue);
        self.drained.notify_all();
    }

    /// For a writer that cannot go on (it is unwinding): drops what is queued, so that
    /// nobody waits for it forever, and lets the next push start a writer.
    fn abandon(&self) {
        let mut queue = self.lock();
        queue.left += queue.entries.len() as u64;
        queue.entries.clear();
        queue.bytes = 0;
        queue.writing = false;
        queue.parked = false;
        self.len.store(0, Ordering::Release);
        drop(queue);
        self.drained.notify_all();
    }

    /// Waits until every write queued so far has been made (at once when the queue is
    /// empty), then holds the writer off while the returned guard lives: a write holds
    /// it until it has landed, so that what is queued meanwhile lands after it. A scan
    /// drops it at once. Never call it while holding a [`Settled`] of the same queue.
    pub fn settle(&self) -> Settled<'_> {
        if self.len.load(Ordering::Acquire) != 0 {
            let mut queue = self.lock();
            let target = queue.left + queue.entries.len() as u64;
            while queue.left < target {
                queue = self.wait(queue);
            }
        }
        Settled(self.gate.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `batch` without the writes a later one of the same key and variant replaces, in
/// order.
fn latest_per_variant<T: Queued>(mut batch: Vec<Arc<T>>) -> Vec<Arc<T>> {
    if batch.len() > 1 {
        let mut seen = std::collections::HashSet::with_capacity(batch.len());
        batch.reverse();
        batch.retain(|write| seen.insert((write.key(), write.variant())));
        batch.reverse();
    }
    batch
}

impl<T> WriteBehind<T> {
    /// How many writes are queued.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::VariantId;
    use crate::entry::testing::sample_entry;

    type Behind = WriteBehind<Entry>;

    /// [`WriteBehind::push`]; whether it asked for a writer.
    fn push(behind: &Behind, entry: Arc<Entry>) -> bool {
        let mut started = false;
        behind.push(entry, || started = true);
        started
    }

    /// [`WriteBehind::try_push`]; whether it asked for a writer.
    fn try_push(behind: &Behind, entry: Arc<Entry>) -> Result<bool, Arc<Entry>> {
        let mut started = false;
        behind.try_push(entry, || started = true).map(|()| started)
    }

    fn key(n: u64) -> CacheKey {
        CacheKey::hash(format!("write-behind {n}"))
    }

    fn sized(n: u64, len: usize) -> Arc<Entry> {
        Arc::new(sample_entry(key(n), VariantId(0), Bytes::from(vec![0; len])))
    }

    fn prepared(n: u64) -> Arc<Entry> {
        sized(n, 100)
    }

    #[test]
    fn the_first_push_starts_the_writer_and_an_empty_batch_stops_it() {
        let behind = Behind::default();
        assert!(push(&behind, prepared(1)));
        assert!(!push(&behind, prepared(2)));
        let batch = behind.next_batch(Duration::ZERO).expect("two queued");
        assert_eq!(batch.len(), 2);
        assert_eq!(behind.len(), 2, "a batch stays queued until written");
        assert_eq!(behind.queued_for(&key(2)).len(), 1);
        behind.written(batch.len());
        assert_eq!(behind.len(), 0);
        assert!(behind.queued_for(&key(2)).is_empty());
        assert!(behind.next_batch(Duration::ZERO).is_none());
        assert!(push(&behind, prepared(3)), "the writer stopped: start another");
    }

    #[test]
    fn a_full_queue_refuses_a_try_and_holds_a_push_until_there_is_room() {
        let behind = Behind::default();
        for n in 0..DEFAULT_MAX_QUEUED as u64 {
            try_push(&behind, prepared(n)).expect("room");
        }
        assert!(try_push(&behind, prepared(1_000)).is_err(), "full");
        let (done, pushed) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                push(&behind, prepared(1_001));
                done.send(()).unwrap();
            });
            // Not a timing assertion: a push that did not wait would only make this
            // check pass sooner, never fail it.
            assert!(pushed.recv_timeout(Duration::from_millis(50)).is_err(), "the push waits for room");
            behind.written(1);
            pushed.recv().expect("the push went through once there was room");
        });
        assert_eq!(behind.len(), DEFAULT_MAX_QUEUED);
    }

    #[test]
    fn a_queue_over_its_byte_bound_takes_one_more_only_when_empty() {
        let behind = Behind::default();
        let big = || sized(9, DEFAULT_MAX_QUEUED_BYTES as usize);
        try_push(&behind, big()).expect("an empty queue takes any entry");
        assert!(try_push(&behind, prepared(1)).is_err(), "over the byte bound");
        behind.written(1);
        try_push(&behind, prepared(1)).expect("room again");
    }

    #[test]
    fn settle_waits_for_what_was_queued_before_it_only() {
        let behind = Behind::default();
        drop(behind.settle()); // nothing queued: returns at once
        push(&behind, prepared(1));
        let (done, settled) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                drop(behind.settle());
                done.send(()).unwrap();
            });
            assert!(settled.recv_timeout(Duration::from_millis(50)).is_err(), "settle waits");
            // Queued after the settle began: it does not wait for this one.
            push(&behind, prepared(2));
            behind.written(1);
            settled.recv().expect("settled once the first was written");
        });
        assert_eq!(behind.len(), 1);
    }

    #[test]
    fn drain_hands_over_batches_until_the_queue_is_empty() {
        let behind = Behind::default();
        push(&behind, prepared(1));
        push(&behind, prepared(2));
        let mut batches = Vec::new();
        behind.drain(Duration::ZERO, |batch| {
            assert_eq!(behind.len(), batch.len(), "a batch stays queued while it is written");
            assert_eq!(behind.queued_for(&batch[0].key()).len(), 1, "and reads see it");
            if batches.is_empty() {
                // Queued while the first batch is written: the next batch.
                push(&behind, prepared(3));
            }
            batches.push(batch.iter().map(|entry| entry.key()).collect::<Vec<_>>());
        });
        assert_eq!(batches, [vec![key(1), key(2)], vec![key(3)]]);
        assert!(behind.is_empty());
        assert!(push(&behind, prepared(4)), "the writer is done");
    }

    #[test]
    fn drain_hands_over_the_last_write_of_each_variant_only() {
        let behind = Behind::default();
        let write = |n: u64, variant: u64, len: usize| {
            Arc::new(sample_entry(key(n), VariantId(variant), Bytes::from(vec![0; len])))
        };
        for (n, variant, len) in [(1, 0, 10), (2, 0, 20), (1, 0, 30), (1, 1, 40), (2, 0, 50), (1, 0, 60)] {
            push(&behind, write(n, variant, len));
        }
        let mut handed = Vec::new();
        behind.drain(Duration::ZERO, |batch| {
            handed.extend(batch.iter().map(|entry| (entry.key, entry.variant.0, entry.response.body.len())));
        });
        assert_eq!(handed, [(key(1), 1, 40), (key(2), 0, 50), (key(1), 0, 60)], "the last of each, in order");
        assert!(behind.is_empty(), "the replaced ones left the queue too");
    }

    #[test]
    fn a_writer_that_panics_drops_the_queue_and_frees_the_waiters() {
        let behind = Behind::default();
        push(&behind, prepared(1));
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            behind.drain(Duration::ZERO, |_| panic!("the disk went away"));
        }));
        assert!(unwound.is_err());
        assert!(behind.is_empty());
        drop(behind.settle()); // returns: nothing is left to wait for
        assert!(push(&behind, prepared(2)));
    }

    #[test]
    fn a_settled_write_holds_the_writer_off_until_it_has_landed() {
        // The race a write must not lose: it settles (nothing queued), a refresh is
        // queued and would be written while the write is still going on, then reads
        // would see the refresh, the write, and the refresh again.
        let behind = Behind::default();
        let settled = behind.settle();
        assert!(push(&behind, prepared(1)));
        let (wrote, written) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| behind.drain(Duration::ZERO, |batch| wrote.send(batch.len()).unwrap()));
            // Not a timing assertion: a writer that did not wait would only fail it.
            assert!(written.recv_timeout(Duration::from_millis(50)).is_err(), "the writer waits");
            assert_eq!(behind.queued_for(&key(1)).len(), 1, "reads still see the refresh");
            drop(settled);
            assert_eq!(written.recv().unwrap(), 1, "written once the write has landed");
        });
        assert!(behind.is_empty());
    }

    #[test]
    fn an_idle_writer_waits_for_more_work_before_it_stops() {
        let behind = Behind::default();
        assert!(push(&behind, prepared(1)));
        let (wrote, written) = mpsc::channel();
        std::thread::scope(|scope| {
            let writer = scope.spawn(|| {
                behind.drain(Duration::from_secs(1), |batch| {
                    wrote.send(batch.iter().map(|entry| entry.key()).collect::<Vec<_>>()).unwrap();
                })
            });
            assert_eq!(written.recv().unwrap(), [key(1)]);
            // The writer is still there (parked): no new one is asked for, and it wakes.
            assert!(!push(&behind, prepared(2)));
            assert_eq!(written.recv().unwrap(), [key(2)]);
            drop(behind.settle());
            assert!(!writer.is_finished(), "still waiting for work");
        });
        // The scope joined the writer: it stopped after `idle`, and the next push
        // starts another.
        assert!(push(&behind, prepared(3)));
    }

    #[test]
    fn overlay_replaces_the_same_variant_and_adds_the_others_last_queued_winning() {
        let variant = |n: u64, len: usize| sample_entry(key(1), VariantId(n), Bytes::from(vec![0; len]));
        let mut stored = vec![variant(0, 1), variant(1, 2)];
        overlay(&mut stored, [variant(1, 3), variant(2, 4), variant(1, 5)]);
        let read: Vec<(u64, usize)> = stored.iter().map(|e| (e.variant.0, e.response.body.len())).collect();
        assert_eq!(read, [(0, 1), (1, 5), (2, 4)]);
    }

    #[test]
    fn abandoning_empties_the_queue_and_wakes_the_waiters() {
        let behind = Behind::default();
        push(&behind, prepared(1));
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| drop(behind.settle()));
            behind.abandon();
            waiter.join().expect("settle returned");
        });
        assert_eq!(behind.len(), 0);
        assert!(push(&behind, prepared(2)));
    }
}

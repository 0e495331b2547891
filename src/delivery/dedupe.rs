//! Dedupe off the hot path: an in-memory record of the ids this process handled, in front
//! of the durable store, and a writer that batches the durable records.
//!
//! - **Checks**: a key in the recent set is done. For work whose queue message is
//!   received for the first time ([`DedupeStore::is_done_on_first_receipt`]) a key the
//!   filter of every key this process ever marked has not seen is not done, with no
//!   remote call: a text to a chat whose session is cached costs one remote call
//!   (SendMessage) before the agent sees it. A key the filter may have seen (evicted from
//!   the recent set, or a false positive) and every redelivery (receive count above 1)
//!   not in the recent set ask the durable store, as before. Why this never lets through, within one process, a
//!   duplicate the durable check would have stopped, and what covers other processes:
//!   docs/delivery.md, "Dedupe on the hot path".
//! - **Records**: [`DedupeStore::mark_done`] puts the key in memory at once (a copy
//!   right behind finds it), then waits for the durable record, written in batches
//!   (DynamoDB BatchWriteItem of up to 25) within [`LINGER`] of the first key waiting.
//!   The caller answers its queue message only after that, so a message is deleted only
//!   once its record is stored.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use metrics::counter;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::metrics as m;
use crate::ports::{DedupeStore, ErrorKind, PortError, PortResult};

/// Keys remembered exactly (FIFO eviction): about 10 MB, hours of traffic at tens of
/// messages per second.
pub const MEMORY_KEYS: usize = 100_000;
/// Bits of the filter of every key marked: 4 MiB, about 1% false positives (each one a
/// durable read) after 3.5 million keys.
const FILTER_BITS: usize = 1 << 25;
const FILTER_HASHES: u64 = 7;
/// How long the first key of a batch waits for others before the batch is written.
pub const LINGER: Duration = Duration::from_millis(2);
/// Keys per durable write (DynamoDB BatchWriteItem's limit).
pub const BATCH: usize = 25;
/// Durable writes in flight at once.
const WRITERS: usize = 8;

/// A Bloom filter: "never marked here" is certain, "maybe marked" is checked durably.
struct Filter {
    bits: Vec<u64>,
    hasher: std::collections::hash_map::RandomState,
}

impl Filter {
    fn new(bits: usize) -> Self {
        Self {
            bits: vec![0; bits.div_ceil(64).max(1)],
            hasher: Default::default(),
        }
    }

    /// The bit positions of `key` (double hashing).
    fn positions(&self, key: &str) -> impl Iterator<Item = usize> + '_ {
        use std::hash::BuildHasher;
        let h1 = self.hasher.hash_one(key);
        let h2 = self.hasher.hash_one((key, 0x9e37_79b9_u32)) | 1;
        let n = (self.bits.len() * 64) as u64;
        (0..FILTER_HASHES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % n) as usize)
    }

    fn insert(&mut self, key: &str) {
        let positions: Vec<usize> = self.positions(key).collect();
        for p in positions {
            self.bits[p / 64] |= 1 << (p % 64);
        }
    }

    fn may_contain(&self, key: &str) -> bool {
        self.positions(key)
            .all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// The ids this process handled: the latest exactly, all of them in the filter.
struct Recent {
    keys: HashSet<Arc<str>>,
    order: VecDeque<Arc<str>>,
    capacity: usize,
    filter: Filter,
}

/// What memory knows of a key.
#[derive(Debug, PartialEq, Eq)]
enum Known {
    Done,
    NeverMarked,
    Maybe,
}

impl Recent {
    fn lookup(&self, key: &str) -> Known {
        if self.keys.contains(key) {
            Known::Done
        } else if self.filter.may_contain(key) {
            Known::Maybe
        } else {
            Known::NeverMarked
        }
    }

    fn insert(&mut self, key: &str) {
        if self.keys.contains(key) {
            return;
        }
        self.filter.insert(key);
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        let key: Arc<str> = key.into();
        self.order.push_back(key.clone());
        self.keys.insert(key);
    }
}

/// A key waiting for its durable record.
struct Pending {
    key: String,
    ttl: Duration,
    stored: oneshot::Sender<PortResult<()>>,
}

/// [`DedupeStore`] with an in-memory record in front of `durable` and batched writes.
pub struct RecentDedupe {
    durable: Arc<dyn DedupeStore>,
    recent: Mutex<Recent>,
    /// Started on first use, inside the runtime.
    writer: OnceLock<mpsc::UnboundedSender<Pending>>,
}

impl RecentDedupe {
    pub fn new(durable: Arc<dyn DedupeStore>) -> Self {
        Self::with_capacity(durable, MEMORY_KEYS)
    }

    pub fn with_capacity(durable: Arc<dyn DedupeStore>, capacity: usize) -> Self {
        Self::sized(durable, capacity, FILTER_BITS)
    }

    fn sized(durable: Arc<dyn DedupeStore>, capacity: usize, filter_bits: usize) -> Self {
        Self {
            durable,
            recent: Mutex::new(Recent {
                keys: HashSet::new(),
                order: VecDeque::new(),
                capacity: capacity.max(1),
                filter: Filter::new(filter_bits),
            }),
            writer: OnceLock::new(),
        }
    }

    fn known(&self, key: &str) -> Known {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lookup(key)
    }

    fn remember(&self, key: &str) {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key);
    }

    fn writer(&self) -> &mpsc::UnboundedSender<Pending> {
        self.writer.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_batches(self.durable.clone(), rx));
            tx
        })
    }
}

/// Collects pending keys into batches and writes each batch (several at once).
async fn write_batches(durable: Arc<dyn DedupeStore>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let writers = Arc::new(Semaphore::new(WRITERS));
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(next)) => batch.push(next),
                Ok(None) | Err(_) => break,
            }
        }
        let Ok(permit) = writers.clone().acquire_owned().await else {
            return;
        };
        let durable = durable.clone();
        tokio::spawn(async move {
            let _permit = permit;
            write_batch(&durable, batch).await;
        });
    }
}

/// Writes one batch, grouped by TTL (one TTL in practice), and answers every waiter.
async fn write_batch(durable: &Arc<dyn DedupeStore>, mut batch: Vec<Pending>) {
    while let Some(ttl) = batch.first().map(|p| p.ttl) {
        let (same, rest): (Vec<_>, Vec<_>) = batch.into_iter().partition(|p| p.ttl == ttl);
        batch = rest;
        let keys: Vec<String> = same.iter().map(|p| p.key.clone()).collect();
        let result = durable.mark_done_many(&keys, ttl).await;
        for pending in same {
            let _ = pending.stored.send(result.clone());
        }
    }
}

#[async_trait]
impl DedupeStore for RecentDedupe {
    // Values (receipt links, menus) are few and read rarely: straight to the store.
    async fn put_value(&self, key: &str, value: &str, ttl: Duration) -> PortResult<()> {
        self.durable.put_value(key, value, ttl).await
    }

    async fn get_value(&self, key: &str) -> PortResult<Option<String>> {
        self.durable.get_value(key).await
    }

    async fn is_done(&self, key: &str) -> PortResult<bool> {
        if self.known(key) == Known::Done {
            counter!(m::DEDUPE_CHECKS, "answered_by" => "memory").increment(1);
            return Ok(true);
        }
        counter!(m::DEDUPE_CHECKS, "answered_by" => "store").increment(1);
        self.durable.is_done(key).await
    }

    async fn is_done_on_first_receipt(&self, key: &str) -> PortResult<bool> {
        match self.known(key) {
            Known::Done => {
                counter!(m::DEDUPE_CHECKS, "answered_by" => "memory").increment(1);
                Ok(true)
            }
            Known::NeverMarked => {
                counter!(m::DEDUPE_CHECKS, "answered_by" => "first_receipt").increment(1);
                Ok(false)
            }
            Known::Maybe => {
                counter!(m::DEDUPE_CHECKS, "answered_by" => "store").increment(1);
                self.durable.is_done(key).await
            }
        }
    }

    async fn mark_done(&self, key: &str, ttl: Duration) -> PortResult<()> {
        self.remember(key);
        let (stored, answer) = oneshot::channel();
        let pending = Pending {
            key: key.to_string(),
            ttl,
            stored,
        };
        if self.writer().send(pending).is_err() {
            return self.durable.mark_done(key, ttl).await;
        }
        answer.await.unwrap_or_else(|_| {
            Err(PortError::new(
                ErrorKind::Transient,
                "dedupe",
                "MarkDone",
                "the batch writer stopped before writing",
            ))
        })
    }

    async fn mark_done_many(&self, keys: &[String], ttl: Duration) -> PortResult<()> {
        for key in keys {
            self.remember(key);
        }
        self.durable.mark_done_many(keys, ttl).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A durable store that counts its calls.
    #[derive(Default)]
    struct Counting {
        done: Mutex<HashSet<String>>,
        reads: AtomicUsize,
        batches: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl DedupeStore for Counting {
        async fn is_done(&self, key: &str) -> PortResult<bool> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.done.lock().unwrap().contains(key))
        }
        async fn mark_done(&self, key: &str, _: Duration) -> PortResult<()> {
            self.done.lock().unwrap().insert(key.into());
            Ok(())
        }
        async fn mark_done_many(&self, keys: &[String], _: Duration) -> PortResult<()> {
            self.batches.lock().unwrap().push(keys.len());
            self.done.lock().unwrap().extend(keys.iter().cloned());
            Ok(())
        }
        async fn put_value(&self, _: &str, _: &str, _: Duration) -> PortResult<()> {
            Ok(())
        }
        async fn get_value(&self, _: &str) -> PortResult<Option<String>> {
            Ok(None)
        }
    }

    const TTL: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_first_receipt_is_answered_without_the_store_and_a_redelivery_asks_it() {
        let durable = Arc::new(Counting::default());
        durable.done.lock().unwrap().insert("in#old".into());
        let dedupe = RecentDedupe::new(durable.clone());
        assert!(!dedupe.is_done_on_first_receipt("in#new").await.unwrap());
        assert_eq!(durable.reads.load(Ordering::SeqCst), 0);
        // Handled by another process: only a redelivery reaches the store, and finds it.
        assert!(dedupe.is_done("in#old").await.unwrap());
        assert_eq!(durable.reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn what_this_process_marked_is_done_at_once_and_durable_when_mark_done_returns() {
        let durable = Arc::new(Counting::default());
        let dedupe = RecentDedupe::new(durable.clone());
        dedupe.mark_done("in#a", TTL).await.unwrap();
        assert!(durable.done.lock().unwrap().contains("in#a"));
        assert!(dedupe.is_done_on_first_receipt("in#a").await.unwrap());
        assert!(dedupe.is_done("in#a").await.unwrap());
        assert_eq!(durable.reads.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn concurrent_records_share_batches() {
        let durable = Arc::new(Counting::default());
        let dedupe = Arc::new(RecentDedupe::new(durable.clone()));
        let marks = (0..60).map(|i| {
            let dedupe = dedupe.clone();
            tokio::spawn(async move { dedupe.mark_done(&format!("in#{i}"), TTL).await })
        });
        for mark in futures::future::join_all(marks).await {
            mark.unwrap().unwrap();
        }
        let batches = durable.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 60);
        assert!(batches.iter().all(|n| *n <= BATCH), "{batches:?}");
        assert!(batches.len() < 60, "some keys shared a batch: {batches:?}");
    }

    #[tokio::test]
    async fn a_key_evicted_from_the_recent_set_is_still_stopped_through_the_store() {
        let durable = Arc::new(Counting::default());
        let dedupe = RecentDedupe::with_capacity(durable.clone(), 2);
        for key in ["in#1", "in#2", "in#3"] {
            dedupe.mark_done(key, TTL).await.unwrap();
        }
        assert_eq!(durable.reads.load(Ordering::SeqCst), 0);
        // A new queue message carrying a key handled here long ago: the filter knows it
        // may be done, so the durable store is asked and stops it.
        assert!(dedupe.is_done_on_first_receipt("in#1").await.unwrap());
        assert_eq!(durable.reads.load(Ordering::SeqCst), 1);
        assert!(dedupe.is_done_on_first_receipt("in#3").await.unwrap());
        assert_eq!(
            durable.reads.load(Ordering::SeqCst),
            1,
            "in#3 is still recent"
        );
    }

    #[test]
    fn the_filter_never_forgets_a_key_and_rarely_claims_an_unknown_one() {
        let mut filter = Filter::new(1 << 16);
        for i in 0..3000 {
            filter.insert(&format!("in#wamid.{i}"));
        }
        assert!((0..3000).all(|i| filter.may_contain(&format!("in#wamid.{i}"))));
        let false_positives = (0..10_000)
            .filter(|i| filter.may_contain(&format!("in#other.{i}")))
            .count();
        // 65536 bits, 3000 keys, 7 hashes: about 0.2% expected.
        assert!(false_positives < 100, "{false_positives} of 10000");
    }
}

//! A Lambda function's work queue: a FIFO bounded by `maxQueueSize`.
//!
//! Messages are pushed from the publisher's task (the listener must not
//! block the broker's publish path), so a push never waits: when the queue
//! is full the new item is refused (tail drop, `lambda.md` §6.6 [I]),
//! counted, and reported in the component log at most once a second. The
//! item a worker is handling is no longer in the queue, so a pinned
//! function holds `maxQueueSize` waiting items plus the one in flight
//! (field case BR-26 asks that this be said).

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::logs::ComponentLog;

/// How often queue-full reports may be written.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// One message for the function.
#[derive(Debug, Clone)]
pub(crate) struct WorkItem {
    /// Invocation id (`context.aws_request_id`), UUID-shaped.
    pub(crate) id: String,
    /// The concrete topic the message was published to.
    pub(crate) topic: String,
    /// The message's bytes (a JSON message's text, or a binary message).
    pub(crate) payload: Bytes,
}

/// What became of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// In the queue.
    Queued,
    /// Refused: the queue was full.
    Full,
    /// Refused: the function is stopping.
    Closed,
}

#[derive(Debug, Default)]
struct Items {
    items: VecDeque<WorkItem>,
    closed: bool,
}

#[derive(Debug, Default)]
struct DropReport {
    last: Option<Instant>,
    unreported: u64,
    last_topic: String,
}

/// The bounded FIFO shared by a function's listeners and workers.
#[derive(Debug)]
pub(crate) struct WorkQueue {
    items: Mutex<Items>,
    /// Wakes a worker waiting for an item.
    available: Notify,
    /// Wakes the launcher, which may start an on-demand worker.
    grew: Notify,
    capacity: usize,
    dropped: AtomicU64,
    /// Pushes refused after `close`.
    refused_closed: AtomicU64,
    report: Mutex<DropReport>,
    log: ComponentLog,
    id_prefix: u64,
    next_id: AtomicU64,
}

impl WorkQueue {
    /// An empty queue holding at most `capacity` items; refusals are
    /// reported to `log`.
    pub(crate) fn new(capacity: usize, log: ComponentLog) -> Self {
        let mut seed = [0u8; 8];
        // Ids only need to be unique per queue, which the counter ensures;
        // the random part tells apart queues of successive starts, and a
        // failed read just makes it less varied.
        let _ = getrandom::fill(&mut seed);
        Self {
            items: Mutex::new(Items::default()),
            available: Notify::new(),
            grew: Notify::new(),
            capacity,
            dropped: AtomicU64::new(0),
            refused_closed: AtomicU64::new(0),
            report: Mutex::new(DropReport::default()),
            log,
            id_prefix: u64::from_be_bytes(seed),
            next_id: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Items> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A UUID-shaped (version 4 layout) invocation id.
    fn new_id(&self) -> String {
        let hi = self.id_prefix;
        let lo = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0x0fff,
            0x8000 | ((lo >> 48) & 0x3fff),
            lo & 0xffff_ffff_ffff
        )
    }

    /// Adds a message at the tail, unless the queue is full or closed.
    pub(crate) fn push(&self, topic: &str, payload: Bytes) -> Pushed {
        let mut items = self.lock();
        if items.closed {
            self.refused_closed.fetch_add(1, Ordering::Relaxed);
            return Pushed::Closed;
        }
        if items.items.len() >= self.capacity {
            drop(items);
            self.refused(topic);
            return Pushed::Full;
        }
        items.items.push_back(WorkItem {
            id: self.new_id(),
            topic: topic.to_owned(),
            payload,
        });
        drop(items);
        self.available.notify_one();
        self.grew.notify_one();
        Pushed::Queued
    }

    /// The next item, waiting for one; None once the queue is closed.
    pub(crate) async fn pop(&self) -> Option<WorkItem> {
        loop {
            let mut notified = pin!(self.available.notified());
            // Registered before looking, so a push between the look and the
            // wait is not missed.
            notified.as_mut().enable();
            {
                let mut items = self.lock();
                if let Some(item) = items.items.pop_front() {
                    let more = !items.items.is_empty();
                    drop(items);
                    if more {
                        // Another waiting worker may take the next one.
                        self.available.notify_one();
                    }
                    return Some(item);
                }
                if items.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Resolves when items were pushed since the last call.
    pub(crate) async fn grown(&self) {
        self.grew.notified().await;
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Refuses further pushes, wakes every waiting worker and returns the
    /// items that were still waiting.
    pub(crate) fn close(&self) -> Vec<WorkItem> {
        let mut items = self.lock();
        items.closed = true;
        let left = items.items.drain(..).collect();
        drop(items);
        self.available.notify_waiters();
        left
    }

    /// Pushes refused because the queue was closed.
    pub(crate) fn refused_closed(&self) -> u64 {
        self.refused_closed.load(Ordering::Relaxed)
    }

    /// Items refused because the queue was full, since the start.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn refused(&self, topic: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.unreported += 1;
        topic.clone_into(&mut report.last_topic);
        let due = report.last.is_none_or(|t| t.elapsed() >= REPORT_EVERY);
        if due {
            self.write_report(&mut report);
        }
    }

    /// Writes the refusals not yet reported (the launcher calls this once a
    /// second, so the last ones of a burst are reported too).
    pub(crate) fn report_drops(&self) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        if report.unreported > 0 {
            self.write_report(&mut report);
        }
    }

    fn write_report(&self, report: &mut DropReport) {
        let total = self.dropped().to_string();
        let count = report.unreported.to_string();
        let capacity = self.capacity.to_string();
        self.log.write(
            "WARN",
            "lambda",
            "lambda-queue-full",
            "work queue full: events refused",
            &[
                ("maxQueueSize", &capacity),
                ("refused", &count),
                ("refusedTotal", &total),
                ("lastTopic", &report.last_topic),
                ("serviceName", self.log.component()),
            ],
        );
        tracing::warn!(
            component = %self.log.component(),
            max_queue_size = self.capacity,
            refused = report.unreported,
            refused_total = self.dropped(),
            "Lambda work queue full: events refused"
        );
        report.unreported = 0;
        report.last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::logs::LogConfig;

    fn queue(capacity: usize) -> (tempfile::TempDir, Arc<WorkQueue>) {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            dir: dir.path().to_path_buf(),
            max_file_bytes: 1 << 20,
            max_total_bytes: 1 << 22,
            echo_stderr: false,
        };
        let log = ComponentLog::new(config, "com.example.Q");
        (dir, Arc::new(WorkQueue::new(capacity, log)))
    }

    #[tokio::test]
    async fn items_come_out_in_order_and_overflow_is_refused_counted_and_logged() {
        let (dir, q) = queue(2);
        assert_eq!(q.push("t/1", Bytes::from_static(b"1")), Pushed::Queued);
        assert_eq!(q.push("t/2", Bytes::from_static(b"2")), Pushed::Queued);
        assert_eq!(q.push("t/3", Bytes::from_static(b"3")), Pushed::Full);
        assert_eq!(q.push("t/4", Bytes::from_static(b"4")), Pushed::Full);
        assert_eq!(q.dropped(), 2);
        q.report_drops();
        let a = q.pop().await.unwrap();
        let b = q.pop().await.unwrap();
        assert_eq!((a.topic.as_str(), b.topic.as_str()), ("t/1", "t/2"));
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), 36);
        let log = std::fs::read_to_string(dir.path().join("com.example.Q.log")).unwrap();
        // The first refusal is written at once, the second by the report.
        assert_eq!(log.matches("lambda-queue-full").count(), 2, "{log}");
        assert!(log.contains("refusedTotal=2"), "{log}");
        assert!(log.contains("lastTopic=t/4"), "{log}");
    }

    #[tokio::test]
    async fn a_waiting_worker_is_woken_and_close_ends_the_wait() {
        let (_dir, q) = queue(10);
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await.map(|i| i.topic) }
        });
        tokio::task::yield_now().await;
        q.push("a", Bytes::new());
        assert_eq!(waiter.await.unwrap().as_deref(), Some("a"));
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.pop().await.map(|i| i.topic) }
        });
        tokio::task::yield_now().await;
        q.push("b", Bytes::new());
        q.push("c", Bytes::new());
        assert_eq!(waiter.await.unwrap().as_deref(), Some("b"));
        let left = q.close();
        assert_eq!(left.len(), 1);
        assert!(q.pop().await.is_none());
        assert_eq!(q.push("d", Bytes::new()), Pushed::Closed);
    }
}

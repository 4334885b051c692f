//! The bounded queue of frames waiting to be written to one connection.
//!
//! Publishers push events here and return at once; the connection's writer
//! task drains the queue with vectored writes. Nothing on the publish path
//! waits for a subscriber's socket.
//!
//! Two kinds of frame go in. Events (fan-out deliveries) count against
//! `event_limit`; past it the slow-subscriber policy applies: the event is
//! dropped and counted, or the connection is closed. Control frames
//! (responses, errors) are the answers to the client's own requests and are
//! never dropped, but a client that keeps asking without reading can only
//! grow the queue to `hard_limit` before it is disconnected.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ggipc_protocol::rpc::FrameParts;
use tokio::sync::Notify;

use crate::config::SlowSubscriber;

/// How often a connection's drops are logged at most.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Result of pushing an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for writing.
    Queued,
    /// The queue was full; the event was dropped and counted.
    Dropped,
    /// The connection is closed or was closed by this push (disconnect policy).
    Closed,
}

#[derive(Debug)]
struct Queue {
    frames: VecDeque<Bytes>,
    bytes: usize,
    closed: bool,
    dropped: u64,
    dropped_since_log: u64,
    last_drop_log: Option<Instant>,
}

/// One connection's outbound queue.
#[derive(Debug)]
pub struct Outbound {
    queue: Mutex<Queue>,
    wake_writer: Notify,
    /// Woken when the queue closes, so the reader stops too.
    closed: Notify,
    event_limit: usize,
    hard_limit: usize,
    policy: SlowSubscriber,
    component: Arc<str>,
}

impl Outbound {
    /// A queue holding at most `event_limit` bytes of events.
    pub fn new(event_limit: usize, policy: SlowSubscriber, component: Arc<str>) -> Self {
        Self {
            queue: Mutex::new(Queue {
                frames: VecDeque::new(),
                bytes: 0,
                closed: false,
                dropped: 0,
                dropped_since_log: 0,
                last_drop_log: None,
            }),
            wake_writer: Notify::new(),
            closed: Notify::new(),
            event_limit,
            // Responses are small; room for a few frames beyond the event
            // bound keeps a well-behaved client that is slow for a moment
            // from being cut off.
            hard_limit: event_limit.saturating_mul(2).max(1 << 20),
            policy,
            component,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves only plain data behind.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a control frame. Returns false when the connection is closed
    /// or this client has stopped reading its answers (then it is closed).
    pub fn push_control(&self, frame: Bytes) -> bool {
        let mut q = self.lock();
        if q.closed {
            return false;
        }
        if q.bytes + frame.len() > self.hard_limit {
            tracing::warn!(
                component = %self.component,
                queued = q.bytes,
                "client does not read its responses; closing the connection"
            );
            self.close_locked(&mut q);
            return false;
        }
        q.bytes += frame.len();
        let was_empty = q.frames.is_empty();
        q.frames.push_back(frame);
        drop(q);
        if was_empty {
            self.wake_writer.notify_one();
        }
        true
    }

    /// Queues an event.
    pub fn push_event(&self, parts: FrameParts) -> Pushed {
        let len = parts.len();
        let mut q = self.lock();
        if q.closed {
            return Pushed::Closed;
        }
        if q.bytes + len > self.event_limit {
            return match self.policy {
                SlowSubscriber::Drop => {
                    q.dropped += 1;
                    q.dropped_since_log += 1;
                    let now = Instant::now();
                    if q.last_drop_log
                        .is_none_or(|t| now.duration_since(t) >= DROP_LOG_INTERVAL)
                    {
                        tracing::warn!(
                            component = %self.component,
                            dropped = q.dropped_since_log,
                            dropped_total = q.dropped,
                            queued_bytes = q.bytes,
                            "subscriber is not reading; events dropped"
                        );
                        q.last_drop_log = Some(now);
                        q.dropped_since_log = 0;
                    }
                    Pushed::Dropped
                }
                SlowSubscriber::Disconnect => {
                    tracing::warn!(
                        component = %self.component,
                        queued_bytes = q.bytes,
                        "subscriber is not reading; closing its connection"
                    );
                    self.close_locked(&mut q);
                    Pushed::Closed
                }
            };
        }
        q.bytes += len;
        let was_empty = q.frames.is_empty();
        q.frames.extend(parts.into_iter_nonempty());
        drop(q);
        if was_empty {
            self.wake_writer.notify_one();
        }
        Pushed::Queued
    }

    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    fn close_locked(&self, q: &mut Queue) {
        if !q.closed {
            q.closed = true;
            q.frames.clear();
            q.bytes = 0;
            self.wake_writer.notify_one();
            self.closed.notify_waiters();
            self.closed.notify_one();
        }
    }

    /// Closes the queue: pending frames are discarded, later pushes refused.
    pub fn close(&self) {
        let mut q = self.lock();
        self.close_locked(&mut q);
    }

    /// Stops accepting frames but lets the writer flush what is queued.
    pub fn finish(&self) {
        let mut q = self.lock();
        if !q.closed {
            q.closed = true;
            drop(q);
            self.wake_writer.notify_one();
        }
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Resolves once the queue is closed.
    pub async fn wait_closed(&self) {
        loop {
            let notified = self.closed.notified();
            if self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Moves up to `max_bytes` of queued frames (at least one) into `batch`.
    /// Returns false when the queue is closed and empty: the writer is done.
    pub async fn next_batch(&self, batch: &mut Vec<Bytes>, max_bytes: usize) -> bool {
        loop {
            let notified = self.wake_writer.notified();
            {
                let mut q = self.lock();
                if !q.frames.is_empty() {
                    let mut taken = 0;
                    while let Some(frame) = q.frames.front() {
                        if taken > 0 && taken + frame.len() > max_bytes {
                            break;
                        }
                        taken += frame.len();
                        batch.push(q.frames.pop_front().unwrap_or_default());
                    }
                    q.bytes -= taken;
                    return true;
                }
                if q.closed {
                    return false;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize) -> FrameParts {
        FrameParts {
            head: Bytes::from(vec![1; n]),
            payload: Bytes::new(),
            trailer: Bytes::from_static(b"crc!"),
        }
    }

    #[tokio::test]
    async fn events_past_the_bound_are_dropped_and_counted_in_order() {
        let q = Outbound::new(100, SlowSubscriber::Drop, Arc::from("c"));
        assert_eq!(q.push_event(event(40)), Pushed::Queued);
        assert_eq!(q.push_event(event(40)), Pushed::Queued);
        assert_eq!(q.push_event(event(40)), Pushed::Dropped);
        assert_eq!(q.dropped(), 1);
        // Control frames still go through.
        assert!(q.push_control(Bytes::from_static(b"resp")));
        let mut batch = Vec::new();
        assert!(q.next_batch(&mut batch, usize::MAX).await);
        assert_eq!(batch.len(), 5);
        assert_eq!(batch[4].as_ref(), b"resp");
        // Room again once drained.
        assert_eq!(q.push_event(event(40)), Pushed::Queued);
    }

    #[tokio::test]
    async fn disconnect_policy_closes_and_discards() {
        let q = Outbound::new(50, SlowSubscriber::Disconnect, Arc::from("c"));
        assert_eq!(q.push_event(event(40)), Pushed::Queued);
        assert_eq!(q.push_event(event(40)), Pushed::Closed);
        assert!(q.is_closed());
        q.wait_closed().await;
        let mut batch = Vec::new();
        assert!(!q.next_batch(&mut batch, usize::MAX).await);
        assert!(!q.push_control(Bytes::from_static(b"x")));
    }

    #[tokio::test]
    async fn a_client_that_never_reads_responses_is_cut_off() {
        let q = Outbound::new(10, SlowSubscriber::Drop, Arc::from("c"));
        let frame = Bytes::from(vec![0; 64 * 1024]);
        let mut pushed = 0;
        while q.push_control(frame.clone()) {
            pushed += 1;
            assert!(pushed < 1000, "never cut off");
        }
        assert_eq!(pushed, 16);
        assert!(q.is_closed());
    }

    #[tokio::test]
    async fn finish_lets_the_writer_flush() {
        let q = Outbound::new(100, SlowSubscriber::Drop, Arc::from("c"));
        assert!(q.push_control(Bytes::from_static(b"a")));
        q.finish();
        let mut batch = Vec::new();
        assert!(q.next_batch(&mut batch, usize::MAX).await);
        assert_eq!(batch, [Bytes::from_static(b"a")]);
        assert!(!q.next_batch(&mut batch, usize::MAX).await);
    }

    #[tokio::test]
    async fn batches_respect_the_byte_cap_but_take_at_least_one_frame() {
        let q = Outbound::new(1 << 20, SlowSubscriber::Drop, Arc::from("c"));
        for _ in 0..3 {
            assert!(q.push_control(Bytes::from(vec![0; 1000])));
        }
        let mut batch = Vec::new();
        assert!(q.next_batch(&mut batch, 10).await);
        assert_eq!(batch.len(), 1);
        batch.clear();
        assert!(q.next_batch(&mut batch, 2000).await);
        assert_eq!(batch.len(), 2);
    }
}

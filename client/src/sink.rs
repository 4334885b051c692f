//! The receiving end of a subscription inside the client: a bounded buffer
//! the reader task fills without ever waiting, the reason the subscription
//! ended, and where it currently lives on the wire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use ggipc_protocol::RpcMessage;
use ggipc_protocol::model::Operation;
use tokio::sync::{Notify, mpsc};

use crate::config::SlowConsumer;
use crate::connection::Connection;
use crate::{Error, lock};

/// What became of an event handed to [`EventSink::deliver`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Buffered, or dropped and counted under [`SlowConsumer::DropNewest`].
    Kept,
    /// The buffer was full under [`SlowConsumer::End`]: the sink has ended
    /// and the stream must be terminated on the wire.
    Overflowed,
    /// Nobody listens any more: the subscription was dropped or ended.
    Gone,
}

#[derive(Debug)]
struct State {
    /// Dropped when the subscription ends, which ends the receiver's stream
    /// once it has drained the buffer.
    tx: Option<mpsc::Sender<RpcMessage>>,
    /// Reported after the buffered events; `None` for a close by the user.
    end: Option<Error>,
    /// The connection and stream id the subscription is open on (or being
    /// opened on); `None` while waiting to be re-opened, and once ended.
    location: Option<(Weak<Connection>, i32)>,
    /// Closed by the user or ended: never re-opened.
    finished: bool,
}

/// One subscription's channel and state, shared by the [`Connection`] slot
/// that feeds it, the user's [`Subscription`](crate::Subscription) and, with
/// reconnection, the client's list of subscriptions to re-open.
#[derive(Debug)]
pub(crate) struct EventSink {
    /// The operation and request payload, to re-open after a reconnect.
    pub(crate) operation: Operation,
    pub(crate) request: Bytes,
    /// With reconnection, told when the server terminates the stream so the
    /// supervisor re-opens it; without, such a stream simply ends.
    resubscribe: Option<Arc<Notify>>,
    policy: SlowConsumer,
    capacity: usize,
    dropped: AtomicU64,
    state: Mutex<State>,
}

impl EventSink {
    pub(crate) fn new(
        operation: Operation,
        request: Bytes,
        capacity: usize,
        policy: SlowConsumer,
        resubscribe: Option<Arc<Notify>>,
    ) -> (Arc<Self>, mpsc::Receiver<RpcMessage>) {
        let (tx, rx) = mpsc::channel(capacity);
        let sink = Self {
            operation,
            request,
            resubscribe,
            policy,
            capacity,
            dropped: AtomicU64::new(0),
            state: Mutex::new(State {
                tx: Some(tx),
                end: None,
                location: None,
                finished: false,
            }),
        };
        (Arc::new(sink), rx)
    }

    /// Records that the sink is being opened as `stream_id` on `conn`.
    /// False if it has finished in the meantime.
    pub(crate) fn attach(&self, conn: Weak<Connection>, stream_id: i32) -> bool {
        let mut state = lock(&self.state);
        if state.finished {
            return false;
        }
        state.location = Some((conn, stream_id));
        true
    }

    /// Forgets the location if it is still `stream_id` (an older stream's
    /// news must not detach a newer one).
    pub(crate) fn detach(&self, stream_id: i32) {
        let mut state = lock(&self.state);
        if matches!(&state.location, Some((_, id)) if *id == stream_id) {
            state.location = None;
        }
    }

    /// Buffers an event without waiting.
    pub(crate) fn deliver(&self, event: RpcMessage) -> Delivery {
        let mut state = lock(&self.state);
        let Some(tx) = &state.tx else {
            return Delivery::Gone;
        };
        match tx.try_send(event) {
            Ok(()) => Delivery::Kept,
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Gone,
            Err(mpsc::error::TrySendError::Full(_)) => match self.policy {
                SlowConsumer::DropNewest => {
                    let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::debug!(
                        operation = self.operation.name(),
                        dropped = n,
                        "subscriber too slow; event dropped"
                    );
                    Delivery::Kept
                }
                SlowConsumer::End => {
                    Self::finish(&mut state, Some(Error::Overflow(self.capacity)));
                    Delivery::Overflowed
                }
            },
        }
    }

    fn finish(state: &mut State, end: Option<Error>) {
        if state.finished {
            return;
        }
        state.finished = true;
        state.end = end;
        state.tx = None;
        state.location = None;
    }

    /// Ends the subscription; the user sees `end` after the buffered events.
    pub(crate) fn end(&self, end: Option<Error>) {
        Self::finish(&mut lock(&self.state), end);
    }

    /// The server terminated stream `stream_id` without an error.
    pub(crate) fn server_closed(&self, stream_id: i32) {
        match &self.resubscribe {
            Some(notify) => {
                self.detach(stream_id);
                notify.notify_one();
            }
            None => self.end(Some(Error::StreamClosed)),
        }
    }

    /// The connection carrying stream `stream_id` closed. With reconnection
    /// and unless `for_good`, the sink waits to be re-opened.
    pub(crate) fn connection_lost(&self, stream_id: i32, reason: &str, for_good: bool) {
        if self.resubscribe.is_some() && !for_good {
            self.detach(stream_id);
        } else {
            self.end(Some(Error::ConnectionClosed(reason.to_owned())));
        }
    }

    /// Closes on the user's behalf: nothing more is delivered or re-opened.
    /// Returns where the stream is open, to terminate it there.
    pub(crate) fn close(&self) -> Option<(Weak<Connection>, i32)> {
        let mut state = lock(&self.state);
        let location = state.location.take();
        Self::finish(&mut state, None);
        location
    }

    /// Why the subscription ended, once.
    pub(crate) fn take_end(&self) -> Option<Error> {
        lock(&self.state).end.take()
    }

    /// Whether the sink has finished (closed or ended).
    pub(crate) fn is_finished(&self) -> bool {
        lock(&self.state).finished
    }

    /// Whether the sink waits to be re-opened.
    pub(crate) fn is_detached(&self) -> bool {
        let state = lock(&self.state);
        !state.finished && state.location.is_none()
    }

    /// Events dropped so far under [`SlowConsumer::DropNewest`].
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

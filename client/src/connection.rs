//! One socket to the server: the handshake, a reader task routing every
//! message to the operation it belongs to, and a writer task.
//!
//! ```text
//!  callers ──start()──► table (stream id → slot) ◄──route── reader task ◄── socket
//!     │                    │ id allocated and frame queued      │
//!     └─────frames─────────┴──► unbounded queue ──► writer task ──► socket
//! ```
//!
//! A slot is `Pending` until the stream's first message (the response or an
//! error), then `Open` for a subscription until either side terminates it.
//! The reader never waits on anyone: responses go through oneshots and
//! events through each subscription's bounded buffer with `try_send`, so one
//! slow consumer cannot hold up the others, and a handler may call the
//! client from inside its own subscription loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use ggipc_protocol::frame::{self, DEFAULT_MAX_ENCODE_LEN};
use ggipc_protocol::model::{IpcError, Operation};
use ggipc_protocol::rpc;
use ggipc_protocol::{FrameCodec, Message, MessageType, RpcMessage, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, trace};

use crate::config::ClientBuilder;
use crate::sink::{Delivery, EventSink};
use crate::{Error, lock};

/// Frames written in one go at most.
const WRITE_BATCH: usize = 64;
/// How long a closing connection may take to flush frames already queued
/// (a final TERMINATE, a PROTOCOL_ERROR).
const CLOSE_FLUSH: Duration = Duration::from_secs(1);
/// Error payloads are quoted up to this many bytes.
const MAX_QUOTED: usize = 1024;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// A frame for the writer, with an optional "written" acknowledgement.
struct Outgoing {
    frame: Bytes,
    written: Option<oneshot::Sender<()>>,
}

enum Slot {
    Pending {
        operation: Operation,
        response: oneshot::Sender<Result<RpcMessage, Error>>,
        sink: Option<Arc<EventSink>>,
    },
    Open {
        sink: Arc<EventSink>,
    },
}

struct Table {
    /// The id the next stream gets. i64 so that running past i32::MAX is an
    /// error instead of a wrap.
    next_id: i64,
    /// Set once, when the connection closes.
    close_reason: Option<String>,
    streams: HashMap<i32, Slot>,
}

/// Why the reader stops.
enum Fatal {
    /// The server broke the protocol: answer PROTOCOL_ERROR, then close.
    Violation(String),
    /// The server reported an error of its own, or went away: just close.
    Gone(String),
}

/// An authenticated connection.
pub(crate) struct Connection {
    id: u64,
    table: Mutex<Table>,
    /// Unbounded so that queuing never waits under the table lock or in the
    /// reader. What it holds is bounded by the callers: every request has a
    /// caller waiting for its answer, and the rest are TERMINATEs and PING
    /// answers. Known shortcoming: a server that pings faster than it reads
    /// would grow it without limit; no real server pings (§3.7).
    tx: mpsc::UnboundedSender<Outgoing>,
    closed: CancellationToken,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("closed", &self.closed.is_cancelled())
            .finish_non_exhaustive()
    }
}

fn encode(message: &Message) -> Result<Bytes, Error> {
    frame::encode_to_bytes(message, DEFAULT_MAX_ENCODE_LEN).map_err(Error::Encode)
}

/// A payload as text for an error message, cut to a sane length.
fn quote(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(&payload[..payload.len().min(MAX_QUOTED)]);
    if payload.len() > MAX_QUOTED {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}

/// The error an APPLICATION_ERROR stands for.
pub(crate) fn error_from(rpc: &RpcMessage) -> Error {
    match &rpc.service_model_type {
        Some(shape) => match IpcError::from_payload(shape.as_str(), rpc.payload()) {
            Some(Ok(error)) => Error::Ipc(error),
            Some(Err(source)) => Error::Decode {
                shape: shape.as_str().to_owned(),
                source,
            },
            None => Error::Unmodeled(format!("{}: {}", shape.as_str(), quote(rpc.payload()))),
        },
        // The nucleus' `text/plain` InternalServerError and its JSON
        // "Unsupported Operation" both come without a shape (§3.6).
        None => Error::Unmodeled(quote(rpc.payload())),
    }
}

/// Judges the first message of a stream: its response, or why there is none.
fn first_message(operation: Operation, rpc: &RpcMessage) -> Result<(), Error> {
    if rpc.message_type == MessageType::ApplicationError {
        return Err(error_from(rpc));
    }
    match &rpc.service_model_type {
        // A bare TERMINATE_STREAM (§8.2 item 5).
        None => Err(Error::StreamClosed),
        Some(shape) if shape.as_str() == operation.response_shape() => Ok(()),
        Some(shape) => Err(Error::Protocol(format!(
            "{} answered with {}, expected {}",
            operation.name(),
            shape.as_str(),
            operation.response_shape()
        ))),
    }
}

impl Connection {
    /// Connects to the builder's socket and completes CONNECT, all within
    /// the connect timeout, then starts the reader and writer tasks.
    pub(crate) async fn open(config: &ClientBuilder) -> Result<Arc<Self>, Error> {
        let token = config.token.read()?;
        let path = config.socket.connect_path().to_path_buf();
        let handshake = async {
            let stream = UnixStream::connect(&path).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot connect to {}: {e}", path.display()),
                )
            })?;
            let (read, mut write) = stream.into_split();
            let mut frames = FramedRead::new(read, FrameCodec::new());
            write.write_all(&encode(&rpc::connect(&token))?).await?;
            let ack = match frames.next().await {
                None => {
                    return Err(Error::ConnectionClosed(
                        "the server closed the connection before answering CONNECT".into(),
                    ));
                }
                Some(Err(e)) => {
                    return Err(Error::Protocol(format!("unreadable CONNECT_ACK: {e}")));
                }
                Some(Ok(message)) => RpcMessage::parse(message)
                    .map_err(|e| Error::Protocol(format!("invalid CONNECT_ACK: {e}")))?,
            };
            if ack.message_type != MessageType::ConnectAck {
                let text = format!("expected CONNECT_ACK, got {:?}", ack.message_type);
                // As aws-c-event-stream does; the server closes anyway.
                if let Ok(frame) = encode(&rpc::protocol_error(&text)) {
                    let _ = write.write_all(&frame).await;
                }
                return Err(Error::Protocol(text));
            }
            if !ack.is_accepted_ack() {
                return Err(Error::AccessDenied);
            }
            Ok((frames, write))
        };
        let (frames, write) = tokio::time::timeout(config.connect_timeout, handshake)
            .await
            .map_err(|_| Error::Timeout(config.connect_timeout))??;

        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = Arc::new(Self {
            id,
            table: Mutex::new(Table {
                next_id: 1,
                close_reason: None,
                streams: HashMap::new(),
            }),
            tx,
            closed: CancellationToken::new(),
        });
        let span = tracing::debug_span!("ggipc_conn", id);
        tokio::spawn(read_loop(conn.clone(), frames).instrument(span.clone()));
        tokio::spawn(write_loop(conn.clone(), write, rx).instrument(span));
        debug!(conn = id, socket = %path.display(), "connected");
        Ok(conn)
    }

    /// Resolves when the connection has closed.
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    fn queue(&self, frame: Bytes, written: Option<oneshot::Sender<()>>) -> bool {
        self.tx.send(Outgoing { frame, written }).is_ok()
    }

    fn send(&self, message: &Message) {
        if let Ok(frame) = encode(message) {
            self.queue(frame, None);
        }
    }

    /// Opens stream `N+1` with a request. The id is allocated and the frame
    /// queued under one lock, so activations reach the wire in id order as
    /// the server requires (§3.5). With a sink, events after the response go
    /// to it.
    fn start(
        self: &Arc<Self>,
        operation: Operation,
        payload: Bytes,
        sink: Option<&Arc<EventSink>>,
    ) -> Result<(i32, oneshot::Receiver<Result<RpcMessage, Error>>), Error> {
        let mut table = lock(&self.table);
        if let Some(reason) = &table.close_reason {
            return Err(Error::ConnectionClosed(reason.clone()));
        }
        let id = i32::try_from(table.next_id).map_err(|_| {
            Error::Protocol("stream ids exhausted on this connection; connect again".into())
        })?;
        // Encoding under the lock costs a CRC pass over the payload while
        // other callers wait; the alternative, encoding first and patching
        // the id in, is not worth it for IPC-sized messages.
        let frame = encode(&rpc::request(
            id,
            StrBytes::from_static(operation.wire_name()),
            StrBytes::from_static(operation.request_shape()),
            payload,
        ))?;
        if let Some(sink) = sink
            && !sink.attach(Arc::downgrade(self), id)
        {
            return Err(Error::StreamClosed);
        }
        if !self.queue(frame, None) {
            // The writer has stopped and the close is on its way.
            if let Some(sink) = sink {
                sink.detach(id);
            }
            return Err(Error::ConnectionClosed("the connection is closing".into()));
        }
        table.next_id += 1;
        let (response, rx) = oneshot::channel();
        table.streams.insert(
            id,
            Slot::Pending {
                operation,
                response,
                sink: sink.cloned(),
            },
        );
        trace!(stream = id, operation = operation.name(), "request sent");
        Ok((id, rx))
    }

    /// Sends a request and waits for the first message of its stream.
    pub(crate) async fn call(
        self: &Arc<Self>,
        operation: Operation,
        payload: Bytes,
        sink: Option<&Arc<EventSink>>,
        timeout: Duration,
    ) -> Result<RpcMessage, Error> {
        let (id, rx) = self.start(operation, payload, sink)?;
        // Whatever ends the wait early — timeout, or the caller dropping this
        // future — the stream must not stay open on either side.
        let mut guard = Abandon {
            conn: self,
            id,
            armed: true,
        };
        let outcome = tokio::time::timeout(timeout, rx).await;
        match outcome {
            Err(_) => Err(Error::Timeout(timeout)),
            // The slot went without an answer: only a close of the
            // subscription being re-opened does that.
            Ok(Err(_)) => Err(Error::StreamClosed),
            Ok(Ok(result)) => {
                guard.armed = false;
                result
            }
        }
    }

    /// Terminates stream `id` on the wire if it is still open, and forgets
    /// it. With `ack`, the receiver resolves once the TERMINATE is written.
    pub(crate) fn terminate(&self, id: i32, ack: bool) -> Option<oneshot::Receiver<()>> {
        let table = &mut *lock(&self.table);
        if table.close_reason.is_some() {
            return None;
        }
        // Not in the table: the server terminated it already, and §3.5 says
        // not to answer that with a TERMINATE of our own.
        let slot = table.streams.remove(&id)?;
        if let Slot::Pending {
            sink: Some(sink), ..
        } = &slot
        {
            sink.detach(id);
        }
        let frame = encode(&rpc::terminate_stream(id)).ok()?;
        let (written, rx) = if ack {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        self.queue(frame, written);
        trace!(stream = id, "stream terminated by the client");
        rx
    }

    /// Waits until everything queued so far is written, or `limit` passes.
    pub(crate) async fn flush(&self, limit: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.queue(Bytes::new(), Some(tx)) {
            let _ = tokio::time::timeout(limit, rx).await;
        }
    }

    /// Closes the connection: pending operations fail and open subscriptions
    /// end with [`Error::ConnectionClosed`] — except, unless `for_good`,
    /// subscriptions of a reconnecting client, which wait to be re-opened.
    pub(crate) fn close(&self, reason: &str, for_good: bool) {
        let streams = {
            let mut table = lock(&self.table);
            if table.close_reason.is_some() {
                return;
            }
            table.close_reason = Some(reason.to_owned());
            std::mem::take(&mut table.streams)
        };
        debug!(conn = self.id, reason, "connection closed");
        for (id, slot) in streams {
            match slot {
                Slot::Pending { response, sink, .. } => {
                    if let Some(sink) = sink {
                        sink.detach(id);
                    }
                    let _ = response.send(Err(Error::ConnectionClosed(reason.to_owned())));
                }
                Slot::Open { sink } => sink.connection_lost(id, reason, for_good),
            }
        }
        self.closed.cancel();
    }

    /// Handles one message from the server.
    fn route(&self, rpc: RpcMessage) -> Result<(), Fatal> {
        match rpc.message_type {
            MessageType::Ping => {
                // Optional for clients (§3.7); the nucleus never pings.
                self.send(&rpc::ping_response(&rpc.message));
                Ok(())
            }
            MessageType::PingResponse => Ok(()),
            MessageType::ProtocolError | MessageType::InternalError => Err(Fatal::Gone(format!(
                "the server reported {:?}: {}",
                rpc.message_type,
                quote(rpc.payload())
            ))),
            MessageType::Connect | MessageType::ConnectAck => Err(Fatal::Violation(format!(
                "{:?} after the handshake",
                rpc.message_type
            ))),
            MessageType::ApplicationMessage | MessageType::ApplicationError => {
                self.stream_message(rpc)
            }
        }
    }

    fn stream_message(&self, rpc: RpcMessage) -> Result<(), Fatal> {
        let id = rpc.stream_id;
        let terminated = rpc.terminates();
        let mut table = lock(&self.table);
        if i64::from(id) >= table.next_id {
            return Err(Fatal::Violation(format!(
                "message on stream {id}, which this client has not opened"
            )));
        }
        let Some(slot) = table.streams.remove(&id) else {
            // Crossed our own TERMINATE, or came after a timeout.
            trace!(stream = id, "message for a closed stream dropped");
            return Ok(());
        };
        // Whether we must terminate the stream ourselves: it is over for us
        // but the server has not said it is over for it.
        let mut terminate = false;
        match slot {
            Slot::Pending {
                operation,
                response,
                sink,
            } => {
                let first = first_message(operation, &rpc);
                match (&first, sink) {
                    (Ok(()), Some(sink)) if !terminated => {
                        table.streams.insert(id, Slot::Open { sink });
                    }
                    (Ok(()), Some(sink)) => sink.server_closed(id),
                    (Err(_), Some(sink)) => {
                        sink.detach(id);
                        terminate = !terminated;
                    }
                    // A unary response always ends the stream for us.
                    (_, None) => terminate = !terminated,
                }
                let _ = response.send(first.map(|()| rpc));
            }
            Slot::Open { sink } => {
                if rpc.message_type == MessageType::ApplicationError {
                    sink.end(Some(error_from(&rpc)));
                    terminate = !terminated;
                } else if rpc.service_model_type.is_none() {
                    if terminated {
                        sink.server_closed(id);
                    } else {
                        sink.end(Some(Error::Protocol(format!(
                            "event without service-model-type on stream {id}"
                        ))));
                        terminate = true;
                    }
                } else {
                    match sink.deliver(rpc) {
                        Delivery::Kept if terminated => sink.server_closed(id),
                        Delivery::Kept => {
                            table.streams.insert(id, Slot::Open { sink });
                        }
                        Delivery::Overflowed => terminate = !terminated,
                        // The subscription was dropped; its drop terminates
                        // the stream unless it finds it gone, so do it here.
                        Delivery::Gone => terminate = !terminated,
                    }
                }
            }
        }
        drop(table);
        if terminate {
            self.send(&rpc::terminate_stream(id));
        }
        Ok(())
    }
}

/// Forgets a stream whose caller stopped waiting, terminating it on the wire.
struct Abandon<'a> {
    conn: &'a Arc<Connection>,
    id: i32,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.conn.terminate(self.id, false);
        }
    }
}

async fn read_loop(conn: Arc<Connection>, mut frames: FramedRead<OwnedReadHalf, FrameCodec>) {
    let reason = loop {
        let next = tokio::select! {
            () = conn.closed.cancelled() => return,
            next = frames.next() => next,
        };
        let message = match next {
            None => break "the server closed the connection".to_owned(),
            Some(Err(e)) => break format!("unreadable frame from the server: {e}"),
            Some(Ok(message)) => message,
        };
        let result = match RpcMessage::parse(message) {
            Ok(rpc) => conn.route(rpc),
            Err(e) => Err(Fatal::Violation(format!(
                "invalid message from the server: {e}"
            ))),
        };
        match result {
            Ok(()) => {}
            Err(Fatal::Violation(text)) => {
                conn.send(&rpc::protocol_error(&text));
                break format!("protocol violation: {text}");
            }
            Err(Fatal::Gone(text)) => break text,
        }
    };
    conn.close(&reason, false);
}

async fn write_loop(
    conn: Arc<Connection>,
    mut write: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut buf = BytesMut::new();
    let mut acks = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            first = rx.recv() => first,
            () = conn.closed.cancelled() => break,
        };
        // `conn` holds the sender, so the channel never ends first.
        let Some(first) = first else { break };
        buf.clear();
        let mut next = Some(first);
        let mut count = 0;
        while let Some(out) = next {
            buf.extend_from_slice(&out.frame);
            acks.extend(out.written);
            count += 1;
            next = if count < WRITE_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        // Biased: a write the socket takes completes even when the close
        // has come meanwhile; only a write stuck on a full socket is given up.
        let result = tokio::select! {
            biased;
            result = write.write_all(&buf) => result,
            () = conn.closed.cancelled() => {
                // Part of a frame may be out: nothing more can follow it.
                return;
            }
        };
        if let Err(e) = result {
            conn.close(&format!("cannot write to the server: {e}"), false);
            return;
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
    // Closing: what was queued before the close (a final TERMINATE, a
    // PROTOCOL_ERROR) still goes out if the socket takes it promptly.
    let _ = tokio::time::timeout(CLOSE_FLUSH, async {
        while let Ok(out) = rx.try_recv() {
            write.write_all(&out.frame).await?;
            if let Some(ack) = out.written {
                let _ = ack.send(());
            }
        }
        write.shutdown().await
    })
    .await;
}

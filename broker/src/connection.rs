//! One client connection: the handshake, the stream table, dispatch, and the
//! writer task that drains the outbound queue.
//!
//! ```text
//! AWAIT_CONNECT --CONNECT, good token--> send ACK(accepted) --> READY
//! AWAIT_CONNECT --CONNECT, bad token---> send ACK(rejected), close
//! AWAIT_CONNECT --anything else--------> PROTOCOL_ERROR, close
//! AWAIT_CONNECT --timeout--------------> close
//! READY --PING--> PING_RESPONSE        READY --new stream id = latest+1--> dispatch
//! READY --TERMINATE on open stream--> unsubscribe
//! READY --TERMINATE on old stream---> ignore
//! READY --any other violation-------> PROTOCOL_ERROR, close
//! ```
//! (`protocol.md` §3.10.)

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::IoSlice;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use ggipc_protocol::frame::{self, DEFAULT_MAX_ENCODE_LEN};
use ggipc_protocol::model::{IpcError, Operation};
use ggipc_protocol::rpc::{self, MessageType, PROTOCOL_VERSION, PreparedMessage, RpcMessage};
use ggipc_protocol::{FrameCodec, FrameError, Limits as FrameLimits, Message, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio_util::codec::FramedRead;
use tracing::{Instrument, debug, info, warn};

use crate::Broker;
use crate::outbound::Outbound;
use crate::outbound::Pushed;
use crate::pubsub::{self, Delivery, FanOut, Subscription, Target};
use crate::readbuf::{self, AdaptiveCodec};

type Frames = FramedRead<tokio::net::unix::OwnedReadHalf, AdaptiveCodec>;

/// The `{}` response of every operation, indexed by `Operation as usize`:
/// built once for the process rather than per connection.
static EMPTY_RESPONSES: LazyLock<Vec<PreparedMessage>> = LazyLock::new(|| {
    Operation::ALL
        .iter()
        .enumerate()
        .map(|(i, &operation)| {
            assert_eq!(
                i, operation as usize,
                "Operation::ALL is in declaration order"
            );
            PreparedMessage::new(
                &StrBytes::from_static(operation.response_shape()),
                Bytes::from_static(b"{}"),
                !operation.is_streaming(),
            )
        })
        .collect()
});

/// Most frames handed to one vectored write.
const MAX_IOVECS: usize = 64;

/// Most bytes handed to one vectored write.
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// What closing a stream that stays open after its response must undo
/// (unsubscribing, mostly). Run once, when the client or the broker closes
/// the stream or the connection ends.
pub(crate) type OpenStream = Box<dyn FnOnce() + Send>;

/// Why the connection ends.
#[derive(Debug)]
enum Close {
    /// Peer closed, or we finished cleanly.
    Done,
    /// A protocol violation: send PROTOCOL_ERROR with this text, then close.
    Protocol(String),
}

/// Serves one accepted connection until it closes.
pub(crate) async fn serve(broker: Arc<Broker>, stream: UnixStream, conn_id: u64) {
    let peer_pid = stream.peer_cred().ok().and_then(|c| c.pid()).unwrap_or(0);
    let span = tracing::info_span!("conn", id = conn_id, pid = peer_pid);
    async move {
        let (read, mut write) = stream.into_split();
        let limits = broker.limits();
        let mut frames = FramedRead::with_capacity(
            read,
            AdaptiveCodec::new(FrameCodec::with_limits(FrameLimits {
                max_decode_len: limits.max_frame_bytes,
                max_encode_len: DEFAULT_MAX_ENCODE_LEN,
            })),
            readbuf::IDLE_CAPACITY,
        );
        // Boxed: its timer and writes would otherwise stay in the task's
        // state, about 870 bytes, for the whole life of the connection.
        let Some(component) = Box::pin(handshake(&broker, &mut frames, &mut write)).await else {
            return;
        };
        tracing::Span::current().record("component", &*component);
        info!(component = %component, "connection opened");
        let outbound = Arc::new(Outbound::new(
            limits.outbound_queue_bytes,
            limits.slow_subscriber,
            component.clone(),
        ));
        let writer = tokio::spawn(write_loop(outbound.clone(), write).in_current_span());
        let mut session = Session {
            broker: broker.clone(),
            component: component.clone(),
            outbound: outbound.clone(),
            latest_stream: 0,
            streams: HashMap::new(),
            last_allowed: RefCell::default(),
        };
        let close = session.run(&mut frames).await;
        session.close_all_streams(matches!(close, Close::Done));
        match close {
            Close::Done => outbound.finish(),
            Close::Protocol(text) => {
                warn!(component = %component, reason = %text, "protocol violation; closing");
                let _ = outbound.push_control(encode(&rpc::protocol_error(&text)));
                outbound.finish();
            }
        }
        // The writer flushes what is queued, then shuts the socket down.
        let _ = writer.await;
        info!(
            component = %component,
            dropped = outbound.dropped(),
            "connection closed"
        );
    }
    .instrument(span)
    .await;
}

fn encode(message: &Message) -> Bytes {
    // Every message the broker builds is far below the limit; a failure here
    // would be our own bug, and an empty frame is what the peer then gets.
    frame::encode_to_bytes(message, DEFAULT_MAX_ENCODE_LEN).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot encode a broker message");
        Bytes::new()
    })
}

async fn write_frame(write: &mut OwnedWriteHalf, message: &Message) -> std::io::Result<()> {
    write.write_all(&encode(message)).await
}

/// Reads CONNECT and answers it. Returns the component on success.
async fn handshake(
    broker: &Broker,
    frames: &mut Frames,
    write: &mut OwnedWriteHalf,
) -> Option<Arc<str>> {
    let timeout = Duration::from_millis(broker.limits().connect_timeout_ms);
    let first = match tokio::time::timeout(timeout, frames.next()).await {
        Err(_) => {
            warn!(
                timeout_ms = timeout.as_millis() as u64,
                "no CONNECT in time; closing"
            );
            return None;
        }
        Ok(None) => {
            debug!("closed before CONNECT");
            return None;
        }
        Ok(Some(Err(e))) => {
            frame_error(write, &e).await;
            return None;
        }
        Ok(Some(Ok(message))) => message,
    };
    let rpc = match RpcMessage::parse(first) {
        Ok(rpc) if rpc.message_type == MessageType::Connect => rpc,
        Ok(rpc) => {
            warn!(message_type = ?rpc.message_type, "first message is not CONNECT");
            let _ = write_frame(write, &rpc::protocol_error("expected CONNECT first")).await;
            return None;
        }
        Err(e) => {
            warn!(error = %e, "malformed first message");
            let _ = write_frame(write, &rpc::protocol_error(&e.to_string())).await;
            return None;
        }
    };
    let component = authenticate(broker, &rpc);
    let accepted = component.is_some();
    if write_frame(write, &rpc::connect_ack(accepted))
        .await
        .is_err()
    {
        return None;
    }
    if !accepted {
        // No operation ever runs on this connection; the peer learns only
        // that it was refused, as from the nucleus.
        let _ = write.shutdown().await;
    }
    component
}

/// The component a CONNECT authenticates, if any. Logs why it fails, never
/// the token.
fn authenticate(broker: &Broker, rpc: &RpcMessage) -> Option<Arc<str>> {
    match rpc.version.as_ref() {
        Some(v) if v == PROTOCOL_VERSION => {}
        other => {
            warn!(version = ?other.map(StrBytes::as_str), "CONNECT refused: protocol version");
            return None;
        }
    }
    let token = serde_json::from_slice::<serde_json::Value>(rpc.payload())
        .ok()
        .and_then(|v| v.get("authToken")?.as_str().map(str::to_owned));
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        warn!("CONNECT refused: no authToken");
        return None;
    };
    let component = broker.component_of_token(&token);
    if component.is_none() {
        warn!("CONNECT refused: unknown token");
    }
    component
}

/// Framing errors close silently, as in aws-c-event-stream; a damaged
/// header block inside a frame with good CRCs gets INTERNAL_ERROR first.
async fn frame_error(write: &mut OwnedWriteHalf, error: &FrameError) {
    warn!(error = %error, "malformed frame; closing");
    if !error.is_framing() {
        let _ = write_frame(write, &rpc::internal_error(&error.to_string())).await;
    }
}

async fn write_loop(outbound: Arc<Outbound>, mut write: OwnedWriteHalf) {
    // Grows on the first event: a connection that only ever gets responses
    // keeps a small one.
    let mut batch: Vec<Bytes> = Vec::new();
    while outbound.next_batch(&mut batch, WRITE_BATCH_BYTES).await {
        coalesce_small(&mut batch);
        if let Err(e) = write_all_vectored(&mut write, &mut batch).await {
            debug!(error = %e, "write failed; closing");
            outbound.close();
            break;
        }
        batch.clear();
    }
    let _ = write.shutdown().await;
}

/// Frames up to this size are copied together before a write.
const COALESCE_UP_TO: usize = 512;

/// Copies each run of small frames in `batch` into one buffer, leaving the
/// rest of the run empty. The kernel's cost per iovec is far above that of
/// copying a few hundred bytes: perf put 19 % of the broker's CPU in
/// `_copy_from_iter` when 64 events of 100 bytes went out as 64 iovecs.
/// Large payloads stay where they are, shared by every subscriber.
fn coalesce_small(batch: &mut [Bytes]) {
    let mut i = 0;
    while i < batch.len() {
        let run = batch[i..]
            .iter()
            .take_while(|b| b.len() <= COALESCE_UP_TO)
            .count();
        if run >= 2 {
            let frames = &mut batch[i..i + run];
            let total = frames.iter().map(Bytes::len).sum();
            let mut merged = Vec::with_capacity(total);
            for frame in frames.iter_mut() {
                merged.extend_from_slice(frame);
                *frame = Bytes::new();
            }
            frames[0] = Bytes::from(merged);
        }
        i += run.max(1);
    }
}

async fn write_all_vectored(
    write: &mut OwnedWriteHalf,
    batch: &mut [Bytes],
) -> std::io::Result<()> {
    let mut first = 0;
    while first < batch.len() {
        // The slices live only in this synchronous block: held across an
        // await they would sit in every connection's writer task.
        let attempt = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            for frame in batch[first..].iter().filter(|b| !b.is_empty()) {
                if count == MAX_IOVECS {
                    break;
                }
                slices[count] = IoSlice::new(frame);
                count += 1;
            }
            if count == 0 {
                return Ok(());
            }
            write.try_write_vectored(&slices[..count])
        };
        let mut written = match attempt {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                write.writable().await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        while first < batch.len() && written >= batch[first].len() {
            written -= batch[first].len();
            first += 1;
        }
        if written > 0 {
            batch[first].advance(written);
        }
    }
    Ok(())
}

/// Events for one open stream, usable from any task.
#[derive(Debug, Clone)]
pub(crate) struct StreamSink {
    outbound: Arc<Outbound>,
    stream_id: i32,
}

impl StreamSink {
    /// Queues an event of shape `shape` (flags 0) on the stream.
    pub(crate) fn send_event(&self, shape: &'static str, payload: Bytes) -> Pushed {
        let event = PreparedMessage::new(&StrBytes::from_static(shape), payload, false);
        self.outbound.push_event(event.for_stream(self.stream_id))
    }

    /// Queues `operation`'s response carrying `payload` (ending the stream
    /// for unary operations), for handlers that answer after the session
    /// has moved on, e.g. once a file is written.
    pub(crate) fn respond(&self, operation: Operation, payload: Bytes) {
        let _ = self.outbound.push_control(encode(&rpc::application_message(
            self.stream_id,
            StrBytes::from_static(operation.response_shape()),
            payload,
            !operation.is_streaming(),
        )));
    }

    /// Queues a modeled error that ends the stream.
    pub(crate) fn send_error(&self, error: &IpcError) {
        let _ = self.outbound.push_control(encode(&rpc::modeled_error(
            self.stream_id,
            StrBytes::from_static(error.shape_id()),
            error.to_payload(),
        )));
    }
}

/// One authenticated connection's state. Operation handlers of every
/// service get it to answer, authorize and keep streams open.
pub(crate) struct Session {
    pub(crate) broker: Arc<Broker>,
    pub(crate) component: Arc<str>,
    outbound: Arc<Outbound>,
    latest_stream: i32,
    streams: HashMap<i32, OpenStream>,
    /// The last operation and resource allowed, with the policy generation
    /// it was decided under: a component publishing to one topic again and
    /// again is checked once per reload.
    last_allowed: RefCell<LastAllowed>,
}

#[derive(Debug, Default)]
struct LastAllowed {
    generation: u64,
    operation: Option<Operation>,
    resource: String,
}

impl Session {
    async fn run(&mut self, frames: &mut Frames) -> Close {
        let mut shutdown = self.broker.shutdown.subscribe();
        loop {
            let next = tokio::select! {
                next = frames.next() => next,
                () = self.outbound.wait_closed() => return Close::Done,
                _ = shutdown.changed() => return Close::Done,
            };
            let message = match next {
                None => return Close::Done,
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    warn!(component = %self.component, error = %e, "malformed frame; closing");
                    if !e.is_framing() {
                        let _ = self
                            .outbound
                            .push_control(encode(&rpc::internal_error(&e.to_string())));
                    }
                    return Close::Done;
                }
            };
            let rpc = match RpcMessage::parse(message) {
                Ok(rpc) => rpc,
                Err(e) => return Close::Protocol(e.to_string()),
            };
            if let Err(close) = self.handle(rpc) {
                return close;
            }
        }
    }

    fn reply(&self, message: &Message) {
        // A refused push means the queue closed; the select in `run` sees it.
        let _ = self.outbound.push_control(encode(message));
    }

    fn handle(&mut self, rpc: RpcMessage) -> Result<(), Close> {
        match rpc.message_type {
            MessageType::Ping => {
                self.reply(&rpc::ping_response(&rpc.message));
                Ok(())
            }
            MessageType::PingResponse => Ok(()),
            MessageType::Connect => Err(Close::Protocol("second CONNECT".into())),
            MessageType::ConnectAck => Err(Close::Protocol("CONNECT_ACK from a client".into())),
            MessageType::ProtocolError | MessageType::InternalError => {
                debug!(component = %self.component, payload = ?rpc.payload(), "client reported an error; closing");
                Err(Close::Done)
            }
            MessageType::ApplicationMessage | MessageType::ApplicationError => {
                self.stream_message(rpc)
            }
        }
    }

    fn stream_message(&mut self, rpc: RpcMessage) -> Result<(), Close> {
        let id = rpc.stream_id;
        if id > self.latest_stream {
            if id != self.latest_stream + 1 {
                return Err(Close::Protocol(format!(
                    "stream id {id} skips ahead of {}",
                    self.latest_stream
                )));
            }
            let Some(operation) = rpc.operation.clone().filter(|o| !o.is_empty()) else {
                return Err(Close::Protocol(format!(
                    "new stream {id} has no operation header"
                )));
            };
            self.latest_stream = id;
            // A stream closed by its own first message asks for nothing
            // (the nucleus does not call the handler either).
            if rpc.terminates() {
                return Ok(());
            }
            self.dispatch(id, &operation, rpc.payload());
            return Ok(());
        }
        if rpc.terminates() {
            // Closing an open stream unsubscribes; closing one that is
            // already closed crosses our own termination and is ignored.
            if let Some(cleanup) = self.streams.remove(&id) {
                cleanup();
            }
            return Ok(());
        }
        if self.streams.contains_key(&id) {
            // No GreengrassCoreIPC operation streams from the client.
            debug!(component = %self.component, stream = id, "ignoring data on a subscription stream");
            return Ok(());
        }
        Err(Close::Protocol(format!(
            "stream id {id} is lower than the last seen stream id {}",
            self.latest_stream
        )))
    }

    /// Answers `stream_id` with a modeled error, which ends the stream.
    pub(crate) fn error(&self, stream_id: i32, error: &IpcError) {
        self.reply(&rpc::modeled_error(
            stream_id,
            StrBytes::from_static(error.shape_id()),
            error.to_payload(),
        ));
    }

    /// Sends the `{}` response of `operation`. Publishes answer this on
    /// every call, so the frame is prepared once per connection.
    pub(crate) fn respond_empty(&mut self, stream_id: i32, operation: Operation) {
        let prepared = &EMPTY_RESPONSES[operation as usize];
        let _ = self
            .outbound
            .push_control(prepared.for_stream(stream_id).head);
    }

    /// Answers `stream_id` with `operation`'s response carrying `payload`
    /// (ending the stream for unary operations).
    pub(crate) fn respond(&self, stream_id: i32, operation: Operation, payload: Bytes) {
        self.reply(&rpc::application_message(
            stream_id,
            StrBytes::from_static(operation.response_shape()),
            payload,
            !operation.is_streaming(),
        ));
    }

    /// Keeps `stream_id` open after its response; `cleanup` runs when it
    /// closes. Call it after the response was queued, so that no event
    /// overtakes it.
    pub(crate) fn open_stream(&mut self, stream_id: i32, cleanup: OpenStream) {
        self.streams.insert(stream_id, cleanup);
    }

    /// A handle to send events on `stream_id`.
    pub(crate) fn stream_sink(&self, stream_id: i32) -> StreamSink {
        StreamSink {
            outbound: self.outbound.clone(),
            stream_id,
        }
    }

    /// The error to answer when this connection may open no more streams.
    pub(crate) fn stream_limit_error(&self) -> Option<IpcError> {
        let limit = self.broker.limits().max_streams_per_connection;
        if self.streams.len() < limit {
            return None;
        }
        warn!(component = %self.component, open = self.streams.len(), "stream limit reached");
        Some(IpcError::service(format!(
            "too many open streams on this connection (limit {limit})"
        )))
    }

    fn dispatch(&mut self, stream_id: i32, operation: &StrBytes, payload: &Bytes) {
        let Some(op) = Operation::from_wire_name(operation.as_str()) else {
            debug!(component = %self.component, operation = %operation, "unknown operation");
            self.reply(&rpc::unsupported_operation(stream_id, operation.as_str()));
            return;
        };
        match op {
            Operation::PublishToTopic => self.publish(stream_id, payload),
            Operation::SubscribeToTopic => self.subscribe(stream_id, payload),
            Operation::ValidateAuthorizationToken => self.validate_token(stream_id, payload),
            Operation::PublishToIoTCore => {
                crate::iotcore::handlers::publish(self, stream_id, payload);
            }
            Operation::SubscribeToIoTCore => {
                crate::iotcore::handlers::subscribe(self, stream_id, payload);
            }
            Operation::SubscribeToIoTCoreConnectionStatus => {
                crate::iotcore::handlers::connection_status(self, stream_id);
            }
            other if crate::lifecycle::handle(self, other, stream_id, payload) => {}
            other if crate::configstore::handle(self, other, stream_id, payload) => {}
            other if crate::updates::handle(self, other, stream_id, payload) => {}
            other => self.error(
                stream_id,
                &IpcError::service(format!(
                    "Operation {} is not supported by Greengrass",
                    other.wire_name()
                )),
            ),
        }
    }

    /// Checks the caller's policies for `operation` on `resource`; the error
    /// is the nucleus' `UnauthorizedError` text.
    pub(crate) fn authorize(&self, operation: Operation, resource: &str) -> Result<(), IpcError> {
        // Read before deciding: a reload that lands meanwhile leaves the
        // remembered decision under the old generation, never the new.
        let generation = self.broker.policy_generation();
        {
            let last = self.last_allowed.borrow();
            if last.generation == generation
                && last.operation == Some(operation)
                && last.resource == resource
            {
                return Ok(());
            }
        }
        let destination = operation.auth_service().unwrap_or_default();
        if self.broker.is_authorized(
            &self.component,
            destination,
            operation.wire_name(),
            resource,
        ) {
            let mut last = self.last_allowed.borrow_mut();
            last.generation = generation;
            last.operation = Some(operation);
            last.resource.clear();
            last.resource.push_str(resource);
            return Ok(());
        }
        let text = ggipc_protocol::policy::denial_message(
            &self.component,
            destination,
            operation.wire_name(),
            resource,
        );
        warn!(component = %self.component, operation = operation.name(), resource, "operation denied");
        Err(IpcError::unauthorized(text))
    }

    /// Only the stream manager may ask, as in the nucleus; a known token is
    /// valid, anything else is `InvalidTokenError` (never `isValid: false`).
    fn validate_token(&self, stream_id: i32, payload: &Bytes) {
        use ggipc_protocol::model::{
            Shape, ValidateAuthorizationTokenRequest, ValidateAuthorizationTokenResponse,
        };
        const STREAM_MANAGER: &str = "aws.greengrass.StreamManager";
        if &*self.component != STREAM_MANAGER {
            warn!(component = %self.component, "ValidateAuthorizationToken denied");
            return self.error(
                stream_id,
                &IpcError::unauthorized(format!(
                    "{} is not authorized to perform aws.greengrass#ValidateAuthorizationToken",
                    self.component
                )),
            );
        }
        let token = ValidateAuthorizationTokenRequest::from_payload(payload)
            .ok()
            .and_then(|r| r.token);
        match token.filter(|t| self.broker.component_of_token(t).is_some()) {
            Some(_) => self.respond(
                stream_id,
                Operation::ValidateAuthorizationToken,
                ValidateAuthorizationTokenResponse { is_valid: true }.to_payload(),
            ),
            None => self.error(stream_id, &IpcError::invalid_token("Invalid token")),
        }
    }

    fn publish(&mut self, stream_id: i32, payload: &Bytes) {
        let result = (|| -> Result<FanOut, IpcError> {
            let (topic, body) =
                pubsub::parse_publish(payload).map_err(|e| IpcError::invalid_arguments(e.0))?;
            if topic.is_empty() {
                return Err(IpcError::invalid_arguments(
                    "Publish topic must not be empty",
                ));
            }
            self.authorize(Operation::PublishToTopic, &topic)?;
            // The nucleus' sentence, which clients may already look for.
            ggipc_protocol::topic::validate_publish_topic(&topic).map_err(|e| {
                IpcError::invalid_arguments(format!(
                    "Publish topic must not contain a wildcard. ({e})"
                ))
            })?;
            let (event, message) = body
                .into_event(&topic)
                .map_err(|e| IpcError::invalid_arguments(e.0))?;
            if !event.fits(DEFAULT_MAX_ENCODE_LEN) {
                return Err(IpcError::invalid_arguments(format!(
                    "the event for this message would be {} bytes, over the {} byte frame limit",
                    event.encoded_len(),
                    DEFAULT_MAX_ENCODE_LEN
                )));
            }
            Ok(self.broker.fan_out(&Delivery {
                publisher: &self.component,
                topic: &topic,
                event: &event,
                message: &message,
            }))
        })();
        match result {
            Ok(_) => self.respond_empty(stream_id, Operation::PublishToTopic),
            Err(e) => self.error(stream_id, &e),
        }
    }

    fn subscribe(&mut self, stream_id: i32, payload: &Bytes) {
        let result = (|| -> Result<(String, bool), IpcError> {
            #[derive(serde::Deserialize)]
            struct Request {
                #[serde(default)]
                topic: Option<String>,
                #[serde(default, rename = "receiveMode")]
                receive_mode: Option<String>,
            }
            let request: Request = serde_json::from_slice(payload).map_err(|e| {
                IpcError::invalid_arguments(format!(
                    "request is not a SubscribeToTopicRequest: {e}"
                ))
            })?;
            let topic = request.topic.unwrap_or_default();
            if topic.is_empty() {
                return Err(IpcError::invalid_arguments(
                    "Subscribe topic must not be empty",
                ));
            }
            self.authorize(Operation::SubscribeToTopic, &topic)?;
            ggipc_protocol::topic::validate_filter(&topic)
                .map_err(|e| IpcError::invalid_arguments(e.to_string()))?;
            // Default as in the nucleus: others' messages only when the
            // filter has a wildcard.
            let from_others_only = match request.receive_mode.as_deref() {
                None => ggipc_protocol::topic::has_wildcard(&topic),
                Some("RECEIVE_MESSAGES_FROM_OTHERS") => true,
                Some("RECEIVE_ALL_MESSAGES") => false,
                Some(other) => {
                    return Err(IpcError::invalid_arguments(format!(
                        "unknown receiveMode {other:?}"
                    )));
                }
            };
            if let Some(e) = self.stream_limit_error() {
                return Err(e);
            }
            Ok((topic, from_others_only))
        })();
        match result {
            Ok((filter, from_others_only)) => {
                // The response is queued before the subscription exists, so
                // no event can overtake it on this connection's queue.
                self.respond_empty(stream_id, Operation::SubscribeToTopic);
                let id = self.broker.subscribe(
                    &filter,
                    Subscription {
                        target: Target::Stream {
                            outbound: self.outbound.clone(),
                            stream_id,
                        },
                        component: self.component.clone(),
                        from_others_only,
                    },
                );
                debug!(component = %self.component, stream = stream_id, filter = %filter, "subscribed");
                let broker = self.broker.clone();
                self.open_stream(stream_id, Box::new(move || broker.unsubscribe(&filter, id)));
            }
            Err(e) => self.error(stream_id, &e),
        }
    }

    /// Removes every subscription. On a clean close each open stream is also
    /// terminated on the wire, so clients see their streams end.
    fn close_all_streams(&mut self, notify: bool) {
        for (stream_id, cleanup) in std::mem::take(&mut self.streams) {
            cleanup();
            if notify {
                self.reply(&rpc::terminate_stream(stream_id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_keeps_every_byte_in_order_and_large_frames_apart() {
        let big = Bytes::from(vec![9u8; COALESCE_UP_TO + 1]);
        let mut batch: Vec<Bytes> = vec![
            Bytes::from_static(b"ab"),
            Bytes::from_static(b"cd"),
            Bytes::new(),
            Bytes::from_static(b"e"),
            big.clone(),
            Bytes::from_static(b"f"),
            big.clone(),
            Bytes::from_static(b"gh"),
            Bytes::from_static(b"ij"),
        ];
        let before: Vec<u8> = batch.iter().flat_map(|b| b.to_vec()).collect();
        coalesce_small(&mut batch);
        let after: Vec<u8> = batch.iter().flat_map(|b| b.to_vec()).collect();
        assert_eq!(before, after);
        let non_empty: Vec<usize> = batch
            .iter()
            .filter(|b| !b.is_empty())
            .map(Bytes::len)
            .collect();
        assert_eq!(non_empty, [5, big.len(), 1, big.len(), 4]);
        // The large frame is the caller's, not a copy.
        assert_eq!(batch[4].as_ptr(), big.as_ptr());
    }
}

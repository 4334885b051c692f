//! The client against a scripted server that checks every frame the client
//! sends and answers with what a test needs — including what the real
//! broker never sends (bare terminations, unmodeled errors, protocol
//! violations, silence).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use ggipc_client::{Client, ClientBuilder, Error, SlowConsumer};
use ggipc_protocol::frame::{self, DEFAULT_MAX_ENCODE_LEN};
use ggipc_protocol::model::{IpcError, Operation};
use ggipc_protocol::rpc;
use ggipc_protocol::{FrameCodec, Message, MessageType, RpcMessage, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::codec::FramedRead;

const WAIT: Duration = Duration::from_secs(5);
const EVENT: &str = "aws.greengrass#SubscriptionResponseMessage";

struct MockServer {
    listener: UnixListener,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl MockServer {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ggm")
            .tempdir_in("/tmp")
            .unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        Self {
            listener,
            path,
            _dir: dir,
        }
    }

    fn builder(&self) -> ClientBuilder {
        ClientBuilder::new(&self.path)
            .token("TOKEN")
            .operation_timeout(WAIT)
    }

    /// Accepts a client, checks its CONNECT and answers CONNECT_ACK.
    async fn accept(&self, accepted: bool) -> Peer {
        let (stream, _) = tokio::time::timeout(WAIT, self.listener.accept())
            .await
            .expect("client connects")
            .unwrap();
        let mut peer = Peer::new(stream);
        let connect = peer.recv().await;
        assert_eq!(connect.message_type, MessageType::Connect);
        let body: serde_json::Value = serde_json::from_slice(connect.payload()).unwrap();
        assert_eq!(body["authToken"], "TOKEN");
        peer.send(&rpc::connect_ack(accepted)).await;
        peer
    }

    /// Connects a client with `builder` and returns both ends.
    async fn connect(&self, builder: ClientBuilder) -> (Client, Peer) {
        let (client, peer) = tokio::join!(builder.connect(), self.accept(true));
        (client.unwrap(), peer)
    }
}

struct Peer {
    read: FramedRead<OwnedReadHalf, FrameCodec>,
    write: OwnedWriteHalf,
}

impl Peer {
    fn new(stream: UnixStream) -> Self {
        let (read, write) = stream.into_split();
        Self {
            read: FramedRead::new(read, FrameCodec::new()),
            write,
        }
    }

    async fn send(&mut self, message: &Message) {
        let bytes = frame::encode_to_bytes(message, DEFAULT_MAX_ENCODE_LEN).unwrap();
        self.write.write_all(&bytes).await.unwrap();
    }

    /// The next message from the client; `None` when it closed.
    async fn try_recv(&mut self) -> Option<RpcMessage> {
        let next = tokio::time::timeout(WAIT, self.read.next())
            .await
            .expect("the client sends something in time")?;
        Some(RpcMessage::parse(next.unwrap()).unwrap())
    }

    async fn recv(&mut self) -> RpcMessage {
        self.try_recv().await.expect("a message from the client")
    }

    /// Nothing arrives for a while.
    async fn quiet(&mut self) {
        let next = tokio::time::timeout(Duration::from_millis(300), self.read.next()).await;
        assert!(next.is_err(), "unexpected message: {next:?}");
    }

    async fn respond(&mut self, stream: i32, operation: Operation, terminate: bool) {
        self.send(&rpc::application_message(
            stream,
            StrBytes::from_static(operation.response_shape()),
            Bytes::from_static(b"{}"),
            terminate,
        ))
        .await;
    }

    async fn event(&mut self, stream: i32, n: u64) {
        let payload = serde_json::json!({"jsonMessage": {"message": {"n": n},
            "context": {"topic": "t"}}});
        self.send(&rpc::application_message(
            stream,
            StrBytes::from_static(EVENT),
            Bytes::from(payload.to_string()),
            false,
        ))
        .await;
    }

    /// Reads a request, checks its operation, and returns its stream id.
    async fn expect_request(&mut self, operation: Operation) -> i32 {
        let m = self.recv().await;
        assert_eq!(m.message_type, MessageType::ApplicationMessage);
        assert_eq!(
            m.operation.as_ref().map(|o| o.as_str()),
            Some(operation.wire_name())
        );
        assert_eq!(
            m.service_model_type.as_ref().map(|s| s.as_str()),
            Some(operation.request_shape())
        );
        assert_eq!(m.flags, 0);
        m.stream_id
    }

    /// Reads a bare TERMINATE, byte for byte the Python SDK's (§4.5).
    async fn expect_terminate(&mut self, stream: i32) {
        let m = self.recv().await;
        assert_eq!(m.message, rpc::terminate_stream(stream), "{m:?}");
    }
}

fn n_of(message: &ggipc_client::TopicMessage) -> u64 {
    message.json::<serde_json::Value>().unwrap()["n"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn concurrent_requests_reach_the_wire_in_stream_id_order() {
    let server = MockServer::new();
    let (client, mut peer) = server.connect(server.builder()).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.publish_binary("t", format!("{i}")).await })
        })
        .collect();
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(peer.expect_request(Operation::PublishToTopic).await);
    }
    assert_eq!(ids, (1..=50).collect::<Vec<_>>());
    // Answers in any order reach the right callers.
    for id in ids.iter().rev() {
        peer.respond(*id, Operation::PublishToTopic, true).await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    // A unary response carried TERMINATE, so the client sends none.
    peer.quiet().await;
}

#[tokio::test]
async fn dropping_or_closing_a_subscription_terminates_it_on_the_wire() {
    let server = MockServer::new();
    let (client, mut peer) = server.connect(server.builder()).await;
    let (sub, id) = tokio::join!(client.subscribe("t"), async {
        let id = peer.expect_request(Operation::SubscribeToTopic).await;
        peer.respond(id, Operation::SubscribeToTopic, false).await;
        id
    });
    let mut sub = sub.unwrap();
    peer.event(id, 7).await;
    assert_eq!(n_of(&sub.next().await.unwrap().unwrap()), 7);
    drop(sub);
    peer.expect_terminate(id).await;

    let (sub, id) = tokio::join!(client.subscribe("t"), async {
        let id = peer.expect_request(Operation::SubscribeToTopic).await;
        peer.respond(id, Operation::SubscribeToTopic, false).await;
        id
    });
    assert_eq!(id, 2);
    sub.unwrap().close().await;
    peer.expect_terminate(id).await;
    // Events crossing the termination are dropped without complaint.
    peer.event(id, 8).await;
    peer.quiet().await;
    assert!(client.is_connected());
}

#[tokio::test]
async fn a_stream_the_server_terminated_is_not_terminated_again() {
    let server = MockServer::new();
    let (client, mut peer) = server.connect(server.builder()).await;
    let (sub, id) = tokio::join!(client.subscribe("t"), async {
        let id = peer.expect_request(Operation::SubscribeToTopic).await;
        peer.respond(id, Operation::SubscribeToTopic, false).await;
        id
    });
    let mut sub = sub.unwrap();
    peer.event(id, 1).await;
    peer.send(&rpc::terminate_stream(id)).await;
    assert_eq!(n_of(&sub.next().await.unwrap().unwrap()), 1);
    assert!(matches!(sub.next().await, Some(Err(Error::StreamClosed))));
    assert!(sub.next().await.is_none());
    drop(sub);
    peer.quiet().await;
}

#[tokio::test]
async fn first_message_errors_are_typed() {
    let server = MockServer::new();
    let (client, mut peer) = server.connect(server.builder()).await;
    type Check = fn(&Error) -> bool;
    let cases: Vec<(Message, Check)> = vec![
        // Modeled, as the nucleus sends it.
        (
            rpc::modeled_error(
                1,
                StrBytes::from_static("aws.greengrass#UnauthorizedError"),
                IpcError::unauthorized("no").to_payload(),
            ),
            |e| matches!(e, Error::Ipc(IpcError::Unauthorized { message }) if message.as_deref() == Some("no")),
        ),
        // Greengrass Lite's body: only `_message`.
        (
            rpc::modeled_error(
                2,
                StrBytes::from_static("aws.greengrass#ServiceError"),
                Bytes::from_static(br#"{"_message":"lite","_errorCode":"ServiceError"}"#),
            ),
            |e| matches!(e, Error::Ipc(IpcError::Service { message, .. }) if message.as_deref() == Some("lite")),
        ),
        // The nucleus' unmodeled failure.
        (
            rpc::unmodeled_error(3),
            |e| matches!(e, Error::Unmodeled(text) if text == "InternalServerError"),
        ),
        // The nucleus' answer to an operation it does not know.
        (
            rpc::unsupported_operation(4, "aws.greengrass#X"),
            |e| matches!(e, Error::Unmodeled(text) if text.contains("Unsupported Operation")),
        ),
        // A bare TERMINATE instead of a response.
        (rpc::terminate_stream(5), |e| {
            matches!(e, Error::StreamClosed)
        }),
        // The wrong response shape.
        (
            rpc::application_message(
                6,
                StrBytes::from_static("aws.greengrass#ListComponentsResponse"),
                Bytes::from_static(b"{}"),
                true,
            ),
            |e| matches!(e, Error::Protocol(text) if text.contains("ListComponentsResponse")),
        ),
    ];
    for (answer, check) in cases {
        let (result, ()) = tokio::join!(client.publish_binary("t", "x"), async {
            peer.expect_request(Operation::PublishToTopic).await;
            peer.send(&answer).await;
        });
        let error = result.unwrap_err();
        assert!(check(&error), "unexpected {error:?}");
    }
    // All of them ended their stream; the connection is fine.
    peer.quiet().await;
    assert!(client.is_connected());
}

#[tokio::test]
async fn a_unary_response_without_terminate_is_terminated_by_the_client() {
    let server = MockServer::new();
    let (client, mut peer) = server.connect(server.builder()).await;
    let (result, ()) = tokio::join!(client.publish_binary("t", "x"), async {
        let id = peer.expect_request(Operation::PublishToTopic).await;
        peer.respond(id, Operation::PublishToTopic, false).await;
    });
    result.unwrap();
    peer.expect_terminate(1).await;
}

#[tokio::test]
async fn connection_loss_fails_pending_operations_and_ends_subscriptions() {
    let server = MockServer::new();
    let (client, mut peer) = server.connect(server.builder()).await;
    let (sub, id) = tokio::join!(client.subscribe("t"), async {
        let id = peer.expect_request(Operation::SubscribeToTopic).await;
        peer.respond(id, Operation::SubscribeToTopic, false).await;
        id
    });
    let mut sub = sub.unwrap();
    peer.event(id, 1).await;
    let (pending, ()) = tokio::join!(client.publish_binary("t", "x"), async {
        peer.expect_request(Operation::PublishToTopic).await;
        drop(peer);
    });
    assert!(
        matches!(&pending, Err(Error::ConnectionClosed(reason)) if reason.contains("server closed")),
        "{pending:?}"
    );
    // Events already received are still delivered, then the reason.
    assert_eq!(n_of(&sub.next().await.unwrap().unwrap()), 1);
    assert!(matches!(
        sub.next().await,
        Some(Err(Error::ConnectionClosed(_)))
    ));
    assert!(sub.next().await.is_none());
    assert!(!client.is_connected());
    assert!(matches!(
        client.publish_binary("t", "x").await,
        Err(Error::ConnectionClosed(_))
    ));
}

#[tokio::test]
async fn a_timed_out_operation_terminates_its_stream() {
    let server = MockServer::new();
    let builder = server
        .builder()
        .operation_timeout(Duration::from_millis(200));
    let (client, mut peer) = server.connect(builder).await;
    let (result, id) = tokio::join!(
        client.publish_binary("t", "x"),
        peer.expect_request(Operation::PublishToTopic)
    );
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    peer.expect_terminate(id).await;
    // A late answer is dropped; the connection carries on.
    peer.respond(id, Operation::PublishToTopic, true).await;
    let (result, ()) = tokio::join!(client.publish_binary("t", "y"), async {
        let id = peer.expect_request(Operation::PublishToTopic).await;
        assert_eq!(id, 2);
        peer.respond(id, Operation::PublishToTopic, true).await;
    });
    result.unwrap();
}

#[tokio::test]
async fn a_cancelled_operation_terminates_its_stream() {
    let server = MockServer::new();
    let (client, mut peer) = server.connect(server.builder()).await;
    let publish = client.publish_binary("t", "x");
    tokio::select! {
        _ = publish => panic!("no answer was sent"),
        id = peer.expect_request(Operation::PublishToTopic) => {
            assert_eq!(id, 1);
        }
    }
    peer.expect_terminate(1).await;
}

#[tokio::test]
async fn pings_are_answered() {
    let server = MockServer::new();
    let (_client, mut peer) = server.connect(server.builder()).await;
    let ping = rpc::ping(Vec::new(), Bytes::from_static(b"hello"));
    peer.send(&ping).await;
    let answer = peer.recv().await;
    assert_eq!(answer.message_type, MessageType::PingResponse);
    assert_eq!(answer.payload().as_ref(), b"hello");
}

#[tokio::test]
async fn a_refused_connect_is_access_denied() {
    let server = MockServer::new();
    let (client, _peer) = tokio::join!(server.builder().connect(), server.accept(false));
    let error = client.unwrap_err();
    assert!(matches!(error, Error::AccessDenied), "{error:?}");
    assert!(error.to_string().contains("access denied"));
}

#[tokio::test]
async fn a_silent_server_times_out_the_connect() {
    let server = MockServer::new();
    let builder = server.builder().connect_timeout(Duration::from_millis(200));
    let (client, _accepted) = tokio::join!(builder.connect(), server.listener.accept());
    assert!(matches!(client, Err(Error::Timeout(_))), "{client:?}");
}

#[tokio::test]
async fn a_message_on_a_stream_never_opened_breaks_the_connection() {
    let server = MockServer::new();
    let (client, mut peer) = server.connect(server.builder()).await;
    let (result, ()) = tokio::join!(client.publish_binary("t", "x"), async {
        peer.expect_request(Operation::PublishToTopic).await;
        peer.respond(9, Operation::PublishToTopic, true).await;
        let error = peer.recv().await;
        assert_eq!(error.message_type, MessageType::ProtocolError);
        assert!(peer.try_recv().await.is_none(), "the client closes");
    });
    assert!(
        matches!(&result, Err(Error::ConnectionClosed(r)) if r.contains("stream 9")),
        "{result:?}"
    );
}

/// Five events into a buffer of two, then a PING. Returns what the
/// subscriber read, the drop count, what the client sent until it answered
/// the PING (so while it routed the events), and the server's end for what
/// follows once the client is dropped.
async fn overflow(policy: SlowConsumer) -> (Vec<Result<u64, String>>, u64, Vec<RpcMessage>, Peer) {
    let server = MockServer::new();
    let builder = server.builder().event_buffer(2).slow_consumer(policy);
    let (client, mut peer) = server.connect(builder).await;
    let (sub, id) = tokio::join!(client.subscribe("t"), async {
        let id = peer.expect_request(Operation::SubscribeToTopic).await;
        peer.respond(id, Operation::SubscribeToTopic, false).await;
        id
    });
    let mut sub = sub.unwrap();
    for n in 0..5 {
        peer.event(id, n).await;
    }
    peer.send(&rpc::ping(Vec::new(), Bytes::new())).await;
    // The subscriber reads nothing until the reader has routed all five.
    let mut sent = Vec::new();
    while sent
        .last()
        .is_none_or(|m: &RpcMessage| m.message_type != MessageType::PingResponse)
    {
        sent.push(peer.recv().await);
    }
    let mut seen = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        seen.push(item.map(|m| n_of(&m)).map_err(|e| e.to_string()));
    }
    let dropped = sub.dropped_events();
    drop(sub);
    drop(client);
    (seen, dropped, sent, peer)
}

#[tokio::test]
async fn a_slow_subscriber_loses_the_newest_events_and_counts_them() {
    let (seen, dropped, sent, mut peer) = overflow(SlowConsumer::DropNewest).await;
    assert_eq!(seen, [Ok(0), Ok(1)]);
    assert_eq!(dropped, 3);
    // The subscription stayed open until it was dropped.
    assert_eq!(sent.len(), 1, "{sent:?}");
    peer.expect_terminate(1).await;
    assert!(peer.try_recv().await.is_none());
}

#[tokio::test]
async fn a_slow_subscriber_can_end_instead() {
    let (seen, dropped, sent, mut peer) = overflow(SlowConsumer::End).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[..2], [Ok(0), Ok(1)]);
    assert!(seen[2].as_ref().unwrap_err().contains("overflowed"));
    assert_eq!(dropped, 0);
    // Terminated on the wire at the overflow, and not again when dropped.
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].message, rpc::terminate_stream(1));
    assert!(peer.try_recv().await.is_none());
}

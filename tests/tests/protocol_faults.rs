//! Protocol rules and faults, driven with raw frames against the real broker:
//! the handshake, stream ids, pings, malformed input and limits. Each fault
//! closes only its own connection.

use std::time::Duration;

use bytes::Bytes;
use ggipc_protocol::rpc::{self, MessageType};
use ggipc_protocol::{Header, HeaderValue, Message, StrBytes};
use ggipc_tests::{BrokerProcess, ComponentSpec, RawConn};
use serde_json::{Value, json};

fn broker(settings: Value) -> BrokerProcess {
    BrokerProcess::start(&[ComponentSpec::pubsub_all("com.example.A")], settings)
}

fn json_of(payload: &Bytes) -> Value {
    serde_json::from_slice(payload).unwrap()
}

/// A neighbour that must keep working while others misbehave.
fn assert_neighbour_works(broker: &BrokerProcess) {
    let mut conn = RawConn::connect(&broker.socket, broker.token("com.example.A"));
    conn.send(&rpc::ping(vec![], Bytes::from_static(b"alive")));
    let pong = conn.recv().expect("ping response");
    assert_eq!(pong.message_type, MessageType::PingResponse);
}

fn expect_protocol_error_then_close(conn: &mut RawConn) -> String {
    let m = conn.recv().expect("PROTOCOL_ERROR before close");
    assert_eq!(m.message_type, MessageType::ProtocolError, "{m:?}");
    let text = json_of(m.payload())["message"].as_str().unwrap().to_owned();
    assert!(
        conn.recv().is_none(),
        "connection stays open after PROTOCOL_ERROR"
    );
    text
}

#[test]
fn handshake_refusals_ack_without_the_accepted_flag_then_close() {
    let b = broker(json!({}));
    let bad_version = {
        let mut m = rpc::connect(b.token("com.example.A"));
        m.headers[0].value = HeaderValue::String(StrBytes::from_static("0.2.0"));
        m
    };
    let no_token = Message {
        payload: Bytes::from_static(b"{}"),
        ..rpc::connect("x")
    };
    let not_json = Message {
        payload: Bytes::from_static(b"authToken"),
        ..rpc::connect("x")
    };
    for connect in [rpc::connect("NOTATOKEN"), bad_version, no_token, not_json] {
        let mut conn = RawConn::open(&b.socket);
        conn.send(&connect);
        let ack = conn.recv().expect("CONNECT_ACK");
        assert_eq!(ack.message_type, MessageType::ConnectAck);
        assert!(!ack.is_accepted_ack());
        assert!(conn.recv().is_none(), "refused connection left open");
    }
    assert_neighbour_works(&b);
}

#[test]
fn anything_but_connect_first_is_a_protocol_error() {
    let b = broker(json!({}));
    let mut conn = RawConn::open(&b.socket);
    conn.send(&rpc::ping(vec![], Bytes::new()));
    expect_protocol_error_then_close(&mut conn);
}

#[test]
fn connect_must_arrive_in_time() {
    let b = broker(json!({"connectTimeoutMs": 300}));
    let mut conn = RawConn::open(&b.socket);
    conn.set_timeout(Duration::from_secs(5));
    assert!(conn.recv().is_none(), "idle connection was not closed");
    assert!(b.log_text().contains("no CONNECT in time"));
}

#[test]
fn second_connect_is_a_protocol_error() {
    let b = broker(json!({}));
    let mut conn = RawConn::connect(&b.socket, b.token("com.example.A"));
    conn.send(&rpc::connect(b.token("com.example.A")));
    expect_protocol_error_then_close(&mut conn);
}

#[test]
fn ping_is_echoed_without_colon_headers() {
    let b = broker(json!({}));
    let mut conn = RawConn::connect(&b.socket, b.token("com.example.A"));
    conn.send(&rpc::ping(
        vec![Header::new(
            "k",
            HeaderValue::String(StrBytes::from_static("v")),
        )],
        Bytes::from_static(b"PP"),
    ));
    let pong = conn.recv().unwrap();
    assert_eq!(pong.message_type, MessageType::PingResponse);
    assert_eq!(
        pong.message.header("k"),
        Some(&HeaderValue::String(StrBytes::from_static("v")))
    );
    assert_eq!(pong.payload().as_ref(), b"PP");
}

#[test]
fn stream_ids_must_grow_by_one() {
    let b = broker(json!({}));
    let token = b.token("com.example.A").to_owned();
    // Skipping ahead.
    let mut conn = RawConn::connect(&b.socket, &token);
    conn.send(&rpc::request(
        2,
        StrBytes::from_static("aws.greengrass#PublishToTopic"),
        StrBytes::from_static("aws.greengrass#PublishToTopicRequest"),
        Bytes::from_static(b"{}"),
    ));
    assert!(expect_protocol_error_then_close(&mut conn).contains("skips ahead"));
    // A new stream without an operation.
    let mut conn = RawConn::connect(&b.socket, &token);
    let mut m = rpc::terminate_stream(1);
    m.headers[1].value = HeaderValue::Int32(0);
    conn.send(&m);
    assert!(expect_protocol_error_then_close(&mut conn).contains("no operation"));
    // Reusing a closed stream id with data.
    let mut conn = RawConn::connect(&b.socket, &token);
    let id = conn.request(
        "PublishToTopic",
        &json!({"topic": "t", "publishMessage": {"jsonMessage": {"message": {}}}}),
    );
    let resp = conn.recv().unwrap();
    assert!(resp.terminates());
    // Terminating an already closed stream is ignored...
    conn.send(&rpc::terminate_stream(id));
    conn.send(&rpc::ping(vec![], Bytes::new()));
    assert_eq!(conn.recv().unwrap().message_type, MessageType::PingResponse);
    // ...but data on it is a violation.
    conn.send(&rpc::request(
        id,
        StrBytes::from_static("aws.greengrass#PublishToTopic"),
        StrBytes::from_static("aws.greengrass#PublishToTopicRequest"),
        Bytes::from_static(b"{}"),
    ));
    assert!(expect_protocol_error_then_close(&mut conn).contains("lower than"));
    assert_neighbour_works(&b);
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let b = broker(json!({}));
    let token = b.token("com.example.A").to_owned();
    let valid =
        ggipc_protocol::frame::encode_to_bytes(&rpc::ping(vec![], Bytes::new()), 1 << 20).unwrap();
    let mut bad_prelude = valid.to_vec();
    bad_prelude[9] ^= 0xff;
    let mut bad_crc = valid.to_vec();
    *bad_crc.last_mut().unwrap() ^= 0xff;
    for garbage in [bad_prelude, bad_crc, vec![0u8; 32]] {
        let mut conn = RawConn::connect(&b.socket, &token);
        conn.send_raw(&garbage);
        assert!(conn.recv().is_none(), "malformed frame did not close");
    }
    // A damaged header block inside good CRCs gets INTERNAL_ERROR first.
    let mut conn = RawConn::connect(&b.socket, &token);
    let mut frame = vec![];
    let block = [1u8, b'x', 7, 0xff, 0xff];
    let total = (16 + block.len()) as u32;
    frame.extend_from_slice(&total.to_be_bytes());
    frame.extend_from_slice(&(block.len() as u32).to_be_bytes());
    let crc = crc32(&frame);
    frame.extend_from_slice(&crc.to_be_bytes());
    frame.extend_from_slice(&block);
    let crc = crc32(&frame);
    frame.extend_from_slice(&crc.to_be_bytes());
    conn.send_raw(&frame);
    let m = conn.recv().expect("INTERNAL_ERROR");
    assert_eq!(m.message_type, MessageType::InternalError);
    assert!(conn.recv().is_none());
    assert_neighbour_works(&b);
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE), so this test does not lean on the crate it checks.
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn frames_over_the_configured_limit_close_the_connection() {
    let b = broker(json!({"maxFrameBytes": 4096}));
    let mut conn = RawConn::connect(&b.socket, b.token("com.example.A"));
    let big =
        json!({"topic": "t", "publishMessage": {"binaryMessage": {"message": "A".repeat(8000)}}});
    conn.request("PublishToTopic", &big);
    assert!(conn.recv().is_none());
    assert_neighbour_works(&b);
}

#[test]
fn unknown_operations_get_the_nucleus_answer() {
    let b = broker(json!({}));
    let mut conn = RawConn::connect(&b.socket, b.token("com.example.A"));
    conn.request("NoSuchThing", &json!({}));
    let m = conn.recv().unwrap();
    assert_eq!(m.message_type, MessageType::ApplicationError);
    assert!(m.terminates());
    assert_eq!(json_of(m.payload())["error"], "Unsupported Operation");
}

#[test]
fn stream_limit_answers_service_error_and_keeps_the_connection() {
    let b = broker(json!({"maxStreamsPerConnection": 2}));
    let mut conn = RawConn::connect(&b.socket, b.token("com.example.A"));
    for i in 0..3 {
        conn.request("SubscribeToTopic", &json!({"topic": format!("t/{i}")}));
    }
    let answers: Vec<_> = (0..3).map(|_| conn.recv().unwrap()).collect();
    assert_eq!(answers[0].message_type, MessageType::ApplicationMessage);
    assert_eq!(answers[1].message_type, MessageType::ApplicationMessage);
    assert_eq!(answers[2].message_type, MessageType::ApplicationError);
    assert_eq!(
        answers[2].service_model_type.as_ref().unwrap(),
        "aws.greengrass#ServiceError"
    );
    assert!(b.log_text().contains("stream limit reached"));
    // Closing one makes room again.
    conn.send(&rpc::terminate_stream(1));
    conn.request("SubscribeToTopic", &json!({"topic": "t/again"}));
    assert_eq!(
        conn.recv().unwrap().message_type,
        MessageType::ApplicationMessage
    );
}

#[test]
fn connection_limit_refuses_extra_connections() {
    let b = broker(json!({"maxConnections": 2}));
    let token = b.token("com.example.A").to_owned();
    let _one = RawConn::connect(&b.socket, &token);
    let _two = RawConn::connect(&b.socket, &token);
    let mut three = RawConn::open(&b.socket);
    assert!(three.closed_by_peer());
    assert!(b.log_text().contains("connection limit reached"));
}

#[test]
fn response_precedes_events_and_unsubscribe_stops_them() {
    let b = broker(json!({}));
    let token = b.token("com.example.A").to_owned();
    let mut sub = RawConn::connect(&b.socket, &token);
    let mut publisher = RawConn::connect(&b.socket, &token);
    let pub_thread = std::thread::spawn(move || {
        for _ in 0..200 {
            publisher.request(
                "PublishToTopic",
                &json!({"topic": "race", "publishMessage": {"jsonMessage": {"message": {}}}}),
            );
        }
        for _ in 0..200 {
            assert!(publisher.recv().unwrap().terminates());
        }
        publisher
    });
    let id = sub.request(
        "SubscribeToTopic",
        &json!({"topic": "race", "receiveMode": "RECEIVE_ALL_MESSAGES"}),
    );
    let first = sub.recv().unwrap();
    assert_eq!(
        first.service_model_type.as_ref().unwrap(),
        "aws.greengrass#SubscribeToTopicResponse"
    );
    assert!(!first.terminates());
    let mut publisher = pub_thread.join().unwrap();
    sub.send(&rpc::terminate_stream(id));
    sub.send(&rpc::ping(vec![], Bytes::new()));
    // Events until the ping's answer, then nothing for this stream.
    loop {
        let m = sub.recv().unwrap();
        if m.message_type == MessageType::PingResponse {
            break;
        }
        assert_eq!(
            m.service_model_type.as_ref().unwrap(),
            "aws.greengrass#SubscriptionResponseMessage"
        );
    }
    publisher.request(
        "PublishToTopic",
        &json!({"topic": "race", "publishMessage": {"jsonMessage": {"message": {}}}}),
    );
    assert!(publisher.recv().unwrap().terminates());
    sub.send(&rpc::ping(vec![], Bytes::new()));
    assert_eq!(sub.recv().unwrap().message_type, MessageType::PingResponse);
}

#[test]
fn graceful_stop_terminates_open_streams_and_removes_the_socket() {
    let mut b = broker(json!({}));
    let mut conn = RawConn::connect(&b.socket, b.token("com.example.A"));
    let ids: Vec<i32> = (0..3)
        .map(|i| conn.request("SubscribeToTopic", &json!({"topic": format!("s/{i}")})))
        .collect();
    for _ in &ids {
        assert_eq!(
            conn.recv().unwrap().message_type,
            MessageType::ApplicationMessage
        );
    }
    let status = b.terminate();
    assert!(status.success(), "{status}");
    let mut terminated = Vec::new();
    while let Some(m) = conn.recv() {
        assert!(m.terminates());
        terminated.push(m.stream_id);
    }
    terminated.sort_unstable();
    assert_eq!(terminated, ids);
    assert!(!b.socket.exists(), "socket left behind");
}

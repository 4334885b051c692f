//! Conformance: the event-stream vectors in `shared/conformance/eventstream`
//! and the frames captured from the Python SDK in `protocol.md` §4.

mod common;

use bytes::{Bytes, BytesMut};
use common::{hex, shared_dir};
use ggipc_protocol::frame::{self, DEFAULT_MAX_DECODE_LEN, DEFAULT_MAX_ENCODE_LEN};
use ggipc_protocol::frame_json::JsonFrame;
use ggipc_protocol::rpc::{self, MessageType, RpcMessage};
use ggipc_protocol::{FrameCodec, FrameError, Header, HeaderValue, Message, StrBytes};
use serde::Deserialize;
use tokio_util::codec::Decoder;

#[derive(Deserialize)]
struct Cases {
    positive: Vec<Positive>,
    negative: Vec<Negative>,
}

#[derive(Deserialize)]
struct Positive {
    file: String,
    #[serde(flatten)]
    expected: JsonFrame,
}

#[derive(Deserialize)]
struct Negative {
    file: String,
    why: String,
}

fn load_cases() -> (std::path::PathBuf, Cases) {
    let dir = shared_dir().join("conformance/eventstream");
    let text = std::fs::read_to_string(dir.join("cases.json")).expect("cases.json is readable");
    (dir, serde_json::from_str(&text).expect("cases.json parses"))
}

#[test]
fn every_positive_case_decodes_to_its_listed_headers_and_reencodes_identically() {
    let (dir, cases) = load_cases();
    assert!(cases.positive.len() >= 10, "the vector set shrank");
    for case in &cases.positive {
        let bytes = Bytes::from(std::fs::read(dir.join(&case.file)).unwrap());
        let (message, info) = frame::decode(bytes.clone(), DEFAULT_MAX_DECODE_LEN)
            .unwrap_or_else(|e| panic!("{}: {e}", case.file));
        let got = JsonFrame::from_message(&message, Some(info));
        assert_eq!(got, case.expected, "{}", case.file);

        // The listed JSON, turned back into a message, is the same message.
        assert_eq!(
            case.expected.to_message().unwrap(),
            message,
            "{}",
            case.file
        );

        let again = frame::encode_to_bytes(&message, DEFAULT_MAX_ENCODE_LEN).unwrap();
        assert_eq!(again, bytes, "{} re-encodes differently", case.file);

        // The streaming codec agrees with the whole-frame decoder.
        let mut src = BytesMut::from(&bytes[..]);
        assert_eq!(FrameCodec::new().decode(&mut src).unwrap(), Some(message));
        assert!(src.is_empty());
    }
}

#[test]
fn every_negative_case_is_rejected_with_the_matching_error() {
    let (dir, cases) = load_cases();
    assert!(!cases.negative.is_empty());
    for case in &cases.negative {
        let bytes = Bytes::from(std::fs::read(dir.join(&case.file)).unwrap());
        let err = frame::decode(bytes.clone(), DEFAULT_MAX_DECODE_LEN).unwrap_err();
        let matches = if case.why.contains("prelude checksum") {
            matches!(err, FrameError::PreludeChecksum { .. })
        } else if case.why.contains("message checksum") {
            matches!(err, FrameError::MessageChecksum { .. })
        } else {
            panic!("{}: no expectation for {:?}", case.file, case.why)
        };
        assert!(matches, "{}: {:?} gave {err:?}", case.file, case.why);

        // The streaming decoder fails the same way, never yielding a message.
        let mut src = BytesMut::from(&bytes[..]);
        assert_eq!(
            std::mem::discriminant(&FrameCodec::new().decode(&mut src).unwrap_err()),
            std::mem::discriminant(&err),
            "{}",
            case.file
        );
    }
}

// ===== Frames captured from awsiotsdk 1.31.0 / awscrt 0.36.1 (protocol.md §4) =====

/// §4.1: CONNECT with token `ABCDEFGHJKLMNP23`, JSON written with a space.
const CONNECT: &str = "0000007900000048e9e79475083a76657273696f6e070005302e312e300d3a6d6573736167652d7479706504\
    000000040e3a6d6573736167652d666c61677304000000000a3a73747265616d2d696404000000007b226175\
    7468546f6b656e223a202241424344454647484a4b4c4d4e503233227dd82735c6";
/// §4.2: CONNECT_ACK, accepted.
const CONNECT_ACK: &str = "0000004700000037374cfe3f0d3a6d6573736167652d7479706504000000050e3a6d6573736167652d666c61\
    677304000000010a3a73747265616d2d69640400000000e237e27d";
/// §4.3: PublishToTopic request on stream 1, JSON message.
const PUBLISH_REQUEST: &str = "0000011b000000bc7b9955f80d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f\
    6e12736572766963652d6d6f64656c2d747970650700246177732e677265656e6772617373235075626c6973\
    68546f546f706963526571756573740d3a6d6573736167652d7479706504000000000e3a6d6573736167652d\
    666c61677304000000000a3a73747265616d2d69640400000001096f7065726174696f6e07001d6177732e67\
    7265656e6772617373235075626c697368546f546f7069637b22746f706963223a20226d792f746f70696322\
    2c20227075626c6973684d657373616765223a207b226a736f6e4d657373616765223a207b226d6573736167\
    65223a207b2261223a20317d7d7d7d98d5672d";
/// §4.4: PublishToTopic response on stream 1, payload `{}`.
const PUBLISH_RESPONSE: &str = "000000a500000093b4e30d710d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f\
    6e12736572766963652d6d6f64656c2d747970650700256177732e677265656e6772617373235075626c6973\
    68546f546f706963526573706f6e73650d3a6d6573736167652d7479706504000000000e3a6d657373616765\
    2d666c61677304000000020a3a73747265616d2d696404000000017b7d9023df3b";
/// §4.5: SubscribeToTopic response on stream 3 (flags 0, stream stays open).
const SUBSCRIBE_RESPONSE: &str = "000000a7000000952740fb240d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f\
    6e12736572766963652d6d6f64656c2d747970650700276177732e677265656e677261737323537562736372\
    696265546f546f706963526573706f6e73650d3a6d6573736167652d7479706504000000000e3a6d65737361\
    67652d666c61677304000000000a3a73747265616d2d696404000000037b7dc5818982";
/// §4.5: the client closing stream 3.
const TERMINATE_3: &str = "0000004700000037374cfe3f0d3a6d6573736167652d7479706504000000000e3a6d6573736167652d666c61\
    677304000000020a3a73747265616d2d69640400000003c607a9e3";
/// §4.6: client PING with header k="v" and payload "PP".
const PING: &str = "0000004f0000003de7e95ce0016b070001760d3a6d6573736167652d7479706504000000020e3a6d65737361\
    67652d666c61677304000000000a3a73747265616d2d696404000000005050fd75ccd3";
/// §4.6: the nucleus-style PING_RESPONSE.
const PING_RESPONSE: &str = "0000004f0000003de7e95ce0016b070001760d3a6d6573736167652d7479706504000000030e3a6d65737361\
    67652d666c61677304000000000a3a73747265616d2d696404000000005050b3fcc77a";
/// §2.6: every header type in one CONNECT.
const ALL_TYPES_CONNECT: &str = "000000c00000009e9b8089f1083a76657273696f6e070005302e312e30017400016601016202fe017303fed4\
    01690400011170016c05fffffffffffffffb0362756606000201020373747207000668c3a96c6c6f02747308\
    000000006553f10001750900112233445566778899aabbccddeeff0d3a6d6573736167652d74797065040000\
    00040e3a6d6573736167652d666c61677304000000000a3a73747265616d2d696404000000007b2261757468\
    546f6b656e223a202258227d5b34d351";

fn decode_rpc(hex_text: &str) -> (Bytes, RpcMessage) {
    let bytes = Bytes::from(hex(hex_text));
    let (message, info) = frame::decode(bytes.clone(), DEFAULT_MAX_DECODE_LEN).unwrap();
    assert_eq!(info.total_length as usize, bytes.len());
    (bytes, RpcMessage::parse(message).unwrap())
}

fn encode(message: &Message) -> Bytes {
    frame::encode_to_bytes(message, DEFAULT_MAX_ENCODE_LEN).unwrap()
}

fn json(payload: &Bytes) -> serde_json::Value {
    serde_json::from_slice(payload).unwrap()
}

#[test]
fn captured_connect_decodes_with_version_and_token() {
    let (bytes, rpc) = decode_rpc(CONNECT);
    assert_eq!(bytes.len(), 121);
    assert_eq!(rpc.message_type, MessageType::Connect);
    assert_eq!((rpc.flags, rpc.stream_id), (0, 0));
    assert_eq!(rpc.version.as_ref().unwrap(), "0.1.0");
    assert_eq!(rpc.content_type, None);
    assert_eq!(json(rpc.payload())["authToken"], "ABCDEFGHJKLMNP23");
    // Our CONNECT differs only in JSON spacing (`{"authToken":"…"}`, as the
    // Java SDK writes it): same headers, same token.
    let ours = RpcMessage::parse(rpc::connect("ABCDEFGHJKLMNP23")).unwrap();
    assert_eq!(ours.message.headers, rpc.message.headers);
    assert_eq!(json(ours.payload()), json(rpc.payload()));
}

#[test]
fn connect_ack_builder_reproduces_the_captured_bytes() {
    let (bytes, rpc) = decode_rpc(CONNECT_ACK);
    assert!(rpc.is_accepted_ack());
    assert!(rpc.payload().is_empty());
    assert_eq!(encode(&rpc::connect_ack(true)), bytes);
    let rejected = RpcMessage::parse(rpc::connect_ack(false)).unwrap();
    assert_eq!(rejected.message_type, MessageType::ConnectAck);
    assert!(!rejected.is_accepted_ack());
}

#[test]
fn captured_publish_request_decodes_and_the_request_builder_matches_it() {
    let (bytes, rpc) = decode_rpc(PUBLISH_REQUEST);
    assert_eq!(bytes.len(), 283);
    assert_eq!(rpc.message_type, MessageType::ApplicationMessage);
    assert_eq!((rpc.flags, rpc.stream_id), (0, 1));
    assert_eq!(
        rpc.operation.as_ref().unwrap(),
        "aws.greengrass#PublishToTopic"
    );
    assert_eq!(
        rpc.service_model_type.as_ref().unwrap(),
        "aws.greengrass#PublishToTopicRequest"
    );
    assert_eq!(rpc.content_type.as_ref().unwrap(), "application/json");
    let body = json(rpc.payload());
    assert_eq!(body["topic"], "my/topic");
    assert_eq!(body["publishMessage"]["jsonMessage"]["message"]["a"], 1);

    let rebuilt = rpc::request(
        1,
        StrBytes::from_static("aws.greengrass#PublishToTopic"),
        StrBytes::from_static("aws.greengrass#PublishToTopicRequest"),
        rpc.payload().clone(),
    );
    assert_eq!(encode(&rebuilt), bytes);
}

#[test]
fn binary_publish_variant_has_the_captured_crcs() {
    let payload =
        br#"{"topic": "my/topic", "publishMessage": {"binaryMessage": {"message": "aGVsbG8="}}}"#;
    let message = rpc::request(
        2,
        StrBytes::from_static("aws.greengrass#PublishToTopic"),
        StrBytes::from_static("aws.greengrass#PublishToTopicRequest"),
        Bytes::from_static(payload),
    );
    let bytes = encode(&message);
    assert_eq!(bytes.len(), 287);
    assert_eq!(bytes[8..12], [0x8e, 0x19, 0xf3, 0x38]);
    assert_eq!(bytes[283..], [0x73, 0xfc, 0x87, 0xd1]);
}

#[test]
fn response_builder_reproduces_the_captured_publish_response() {
    let (bytes, rpc) = decode_rpc(PUBLISH_RESPONSE);
    assert_eq!(bytes.len(), 165);
    assert!(rpc.terminates());
    assert_eq!(
        rpc.service_model_type.as_ref().unwrap(),
        "aws.greengrass#PublishToTopicResponse"
    );
    let ours = rpc::application_message(
        1,
        StrBytes::from_static("aws.greengrass#PublishToTopicResponse"),
        Bytes::from_static(b"{}"),
        true,
    );
    assert_eq!(encode(&ours), bytes);
}

#[test]
fn streaming_response_builder_reproduces_the_captured_subscribe_response() {
    let (bytes, rpc) = decode_rpc(SUBSCRIBE_RESPONSE);
    assert_eq!(bytes.len(), 167);
    assert!(!rpc.terminates());
    assert_eq!(rpc.stream_id, 3);
    let ours = rpc::application_message(
        3,
        StrBytes::from_static("aws.greengrass#SubscribeToTopicResponse"),
        Bytes::from_static(b"{}"),
        false,
    );
    assert_eq!(encode(&ours), bytes);
}

#[test]
fn termination_builder_reproduces_the_captured_close() {
    let (bytes, rpc) = decode_rpc(TERMINATE_3);
    assert_eq!(bytes.len(), 71);
    assert!(rpc.terminates());
    assert_eq!(rpc.service_model_type, None);
    assert_eq!(encode(&rpc::terminate_stream(3)), bytes);
}

#[test]
fn ping_response_builder_reproduces_the_captured_reply() {
    let (ping_bytes, ping) = decode_rpc(PING);
    assert_eq!(ping_bytes.len(), 79);
    assert_eq!(ping.message_type, MessageType::Ping);
    let (pong_bytes, _) = decode_rpc(PING_RESPONSE);
    assert_eq!(encode(&rpc::ping_response(&ping.message)), pong_bytes);
    // And the ping builder rebuilds the client's ping.
    let rebuilt = rpc::ping(
        vec![Header::new(
            "k",
            HeaderValue::String(StrBytes::from_static("v")),
        )],
        Bytes::from_static(b"PP"),
    );
    assert_eq!(encode(&rebuilt), ping_bytes);
}

#[test]
fn captured_frame_with_every_header_type_decodes() {
    let bytes = Bytes::from(hex(ALL_TYPES_CONNECT));
    let (message, _) = frame::decode(bytes.clone(), DEFAULT_MAX_DECODE_LEN).unwrap();
    let get = |name: &str| message.header(name).cloned().unwrap();
    assert_eq!(get("t"), HeaderValue::Bool(true));
    assert_eq!(get("f"), HeaderValue::Bool(false));
    assert_eq!(get("b"), HeaderValue::Byte(-2));
    assert_eq!(get("s"), HeaderValue::Int16(-300));
    assert_eq!(get("i"), HeaderValue::Int32(70000));
    assert_eq!(get("l"), HeaderValue::Int64(-5));
    assert_eq!(get("buf"), HeaderValue::Bytes(Bytes::from_static(&[1, 2])));
    assert_eq!(
        get("str"),
        HeaderValue::String(StrBytes::from_static("héllo"))
    );
    assert_eq!(get("ts"), HeaderValue::Timestamp(1_700_000_000));
    assert_eq!(
        get("u"),
        HeaderValue::Uuid([
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff
        ])
    );
    assert_eq!(encode(&message), bytes);
}

#[test]
fn modeled_error_builder_sets_terminate_and_shape() {
    let payload = Bytes::from_static(
        br#"{"message":"Key not found","_service":"aws.greengrass#GreengrassCoreIPC","_message":"Key not found","_errorCode":"ResourceNotFoundError"}"#,
    );
    let m = rpc::modeled_error(
        5,
        StrBytes::from_static("aws.greengrass#ResourceNotFoundError"),
        payload.clone(),
    );
    let names: Vec<&str> = m.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        [
            ":content-type",
            "service-model-type",
            ":message-type",
            ":message-flags",
            ":stream-id"
        ]
    );
    let rpc = RpcMessage::parse(m).unwrap();
    assert_eq!(rpc.message_type, MessageType::ApplicationError);
    assert!(rpc.terminates());
    assert_eq!(rpc.stream_id, 5);
    assert_eq!(rpc.payload(), &payload);
}

#[test]
fn connection_level_errors_carry_json_messages_on_stream_zero() {
    for (m, ty) in [
        (
            rpc::protocol_error("bad stream id"),
            MessageType::ProtocolError,
        ),
        (rpc::internal_error("oops"), MessageType::InternalError),
    ] {
        let rpc = RpcMessage::parse(m).unwrap();
        assert_eq!(rpc.message_type, ty);
        assert_eq!((rpc.stream_id, rpc.flags), (0, 0));
        assert_eq!(rpc.content_type.as_ref().unwrap(), "application/json");
        assert!(json(rpc.payload())["message"].is_string());
    }
    let unmodeled = RpcMessage::parse(rpc::unmodeled_error(4)).unwrap();
    assert_eq!(unmodeled.content_type.as_ref().unwrap(), "text/plain");
    assert_eq!(unmodeled.payload().as_ref(), b"InternalServerError");
    assert_eq!(unmodeled.service_model_type, None);
    let unknown = RpcMessage::parse(rpc::unsupported_operation(4, "aws.greengrass#Nope")).unwrap();
    assert_eq!(unknown.message_type, MessageType::ApplicationError);
    assert_eq!(json(unknown.payload())["error"], "Unsupported Operation");
    assert!(
        json(unknown.payload())["message"]
            .as_str()
            .unwrap()
            .contains("aws.greengrass#Nope")
    );
}

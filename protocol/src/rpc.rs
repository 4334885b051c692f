//! The eventstream-RPC layer (`protocol.md` §3): message types, flags,
//! reserved headers, a typed view of received messages and builders for every
//! message a server or client sends.
//!
//! Builders emit headers in the order the CES-based reference stacks do
//! (caller headers first, then `:message-type`, `:message-flags`,
//! `:stream-id`, and `operation` last on a request), so their output is byte
//! for byte what the nucleus or the Python SDK sends for the same content.

use bytes::Bytes;

use crate::error::RpcError;
use crate::frame::{Header, HeaderValue, Message, StrBytes};

/// `:message-type`.
pub const MESSAGE_TYPE: &str = ":message-type";
/// `:message-flags`.
pub const MESSAGE_FLAGS: &str = ":message-flags";
/// `:stream-id`.
pub const STREAM_ID: &str = ":stream-id";
/// `operation`, on the first message of a stream.
pub const OPERATION: &str = "operation";
/// `:content-type`.
pub const CONTENT_TYPE: &str = ":content-type";
/// `service-model-type`: the shape id of the payload.
pub const SERVICE_MODEL_TYPE: &str = "service-model-type";
/// `:version`, on CONNECT only.
pub const VERSION: &str = ":version";

/// The only protocol version there is.
pub const PROTOCOL_VERSION: &str = "0.1.0";
/// Content type of modeled payloads.
pub const APPLICATION_JSON: &str = "application/json";
/// Content type of the nucleus' unmodeled internal error.
pub const TEXT_PLAIN: &str = "text/plain";

/// Flag on CONNECT_ACK: the connection was accepted.
pub const CONNECTION_ACCEPTED: i32 = 0x1;
/// Flag on a stream message: the last message of the stream, both ways.
pub const TERMINATE_STREAM: i32 = 0x2;

/// `:message-type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum MessageType {
    /// Request, response or event on a stream.
    ApplicationMessage = 0,
    /// Error on a stream.
    ApplicationError = 1,
    /// Connection-level ping.
    Ping = 2,
    /// Answer to a ping.
    PingResponse = 3,
    /// The client's first message.
    Connect = 4,
    /// The server's answer to CONNECT.
    ConnectAck = 5,
    /// A peer broke the protocol; the sender closes.
    ProtocolError = 6,
    /// The sender failed internally; it closes.
    InternalError = 7,
}

impl MessageType {
    /// The type for a wire value.
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => Self::ApplicationMessage,
            1 => Self::ApplicationError,
            2 => Self::Ping,
            3 => Self::PingResponse,
            4 => Self::Connect,
            5 => Self::ConnectAck,
            6 => Self::ProtocolError,
            7 => Self::InternalError,
            _ => return None,
        })
    }

    /// Whether this type travels on a stream (id ≥ 1) rather than stream 0.
    pub fn is_stream_message(self) -> bool {
        matches!(self, Self::ApplicationMessage | Self::ApplicationError)
    }
}

/// A received message with its RPC headers extracted.
///
/// Reserved names are matched case-insensitively, as aws-c-event-stream and
/// the Python SDK do; a header with the right name but the wrong type is
/// ignored, and the first matching occurrence wins. `:version` is the
/// exception: the nucleus matches it case-sensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcMessage {
    /// `:message-type`.
    pub message_type: MessageType,
    /// `:message-flags`.
    pub flags: i32,
    /// `:stream-id`; 0 for connection-level messages.
    pub stream_id: i32,
    /// `operation` (STRING), if present.
    pub operation: Option<StrBytes>,
    /// `:content-type` (STRING), if present.
    pub content_type: Option<StrBytes>,
    /// `service-model-type` (STRING), if present.
    pub service_model_type: Option<StrBytes>,
    /// `:version` (STRING, exact name), if present.
    pub version: Option<StrBytes>,
    /// The whole message, for its payload and any other header.
    pub message: Message,
}

impl RpcMessage {
    /// Extracts the RPC view. Fails when a required header is missing, the
    /// type is unknown, or the type does not belong on the stream id.
    pub fn parse(message: Message) -> Result<Self, RpcError> {
        let mut message_type = None;
        let mut flags = None;
        let mut stream_id = None;
        let mut operation = None;
        let mut content_type = None;
        let mut service_model_type = None;
        let mut version = None;
        for header in &message.headers {
            let name = header.name.as_bytes();
            let slot_i32 = |slot: &mut Option<i32>| {
                if slot.is_none() {
                    *slot = header.value.as_i32();
                }
            };
            let slot_str = |slot: &mut Option<StrBytes>| {
                if slot.is_none() {
                    *slot = header.value.as_str_bytes().cloned();
                }
            };
            if name.eq_ignore_ascii_case(MESSAGE_TYPE.as_bytes()) {
                slot_i32(&mut message_type);
            } else if name.eq_ignore_ascii_case(MESSAGE_FLAGS.as_bytes()) {
                slot_i32(&mut flags);
            } else if name.eq_ignore_ascii_case(STREAM_ID.as_bytes()) {
                slot_i32(&mut stream_id);
            } else if name.eq_ignore_ascii_case(OPERATION.as_bytes()) {
                slot_str(&mut operation);
            } else if name.eq_ignore_ascii_case(CONTENT_TYPE.as_bytes()) {
                slot_str(&mut content_type);
            } else if name.eq_ignore_ascii_case(SERVICE_MODEL_TYPE.as_bytes()) {
                slot_str(&mut service_model_type);
            } else if name == VERSION.as_bytes() {
                slot_str(&mut version);
            }
        }
        let raw_type = message_type.ok_or(RpcError::MissingHeader(MESSAGE_TYPE))?;
        let flags = flags.ok_or(RpcError::MissingHeader(MESSAGE_FLAGS))?;
        let stream_id = stream_id.ok_or(RpcError::MissingHeader(STREAM_ID))?;
        let message_type =
            MessageType::from_i32(raw_type).ok_or(RpcError::UnknownMessageType(raw_type))?;
        if stream_id < 0 {
            return Err(RpcError::NegativeStreamId(stream_id));
        }
        if message_type.is_stream_message() != (stream_id > 0) {
            return Err(RpcError::WrongStream {
                message_type: raw_type,
                stream_id,
            });
        }
        Ok(Self {
            message_type,
            flags,
            stream_id,
            operation,
            content_type,
            service_model_type,
            version,
            message,
        })
    }

    /// The payload.
    pub fn payload(&self) -> &Bytes {
        &self.message.payload
    }

    /// Whether TERMINATE_STREAM is set.
    pub fn terminates(&self) -> bool {
        self.flags & TERMINATE_STREAM != 0
    }

    /// Whether this is a CONNECT_ACK with CONNECTION_ACCEPTED set.
    pub fn is_accepted_ack(&self) -> bool {
        self.message_type == MessageType::ConnectAck && self.flags & CONNECTION_ACCEPTED != 0
    }
}

fn rpc_headers(headers: &mut Vec<Header>, message_type: MessageType, flags: i32, stream_id: i32) {
    headers.push(Header::new(
        MESSAGE_TYPE,
        HeaderValue::Int32(message_type as i32),
    ));
    headers.push(Header::new(MESSAGE_FLAGS, HeaderValue::Int32(flags)));
    headers.push(Header::new(STREAM_ID, HeaderValue::Int32(stream_id)));
}

fn static_str(s: &'static str) -> HeaderValue {
    HeaderValue::String(StrBytes::from_static(s))
}

/// A JSON body `{"message": …}` for connection-level errors.
fn message_json(text: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "message": text }).to_string())
}

/// CONNECT with `{"authToken": …}` (client → server).
pub fn connect(auth_token: &str) -> Message {
    let mut headers = Vec::with_capacity(4);
    headers.push(Header::new(VERSION, static_str(PROTOCOL_VERSION)));
    rpc_headers(&mut headers, MessageType::Connect, 0, 0);
    Message {
        headers,
        payload: Bytes::from(serde_json::json!({ "authToken": auth_token }).to_string()),
    }
}

/// CONNECT_ACK (server → client); the reference sends no payload.
pub fn connect_ack(accepted: bool) -> Message {
    let mut headers = Vec::with_capacity(3);
    let flags = if accepted { CONNECTION_ACCEPTED } else { 0 };
    rpc_headers(&mut headers, MessageType::ConnectAck, flags, 0);
    Message {
        headers,
        payload: Bytes::new(),
    }
}

/// The first message of a stream (client → server): an operation request.
///
/// `operation` and `request_shape` are full ids such as
/// `aws.greengrass#PublishToTopic` and `aws.greengrass#PublishToTopicRequest`.
pub fn request(
    stream_id: i32,
    operation: StrBytes,
    request_shape: StrBytes,
    payload: Bytes,
) -> Message {
    let mut headers = Vec::with_capacity(6);
    headers.push(Header::new(CONTENT_TYPE, static_str(APPLICATION_JSON)));
    headers.push(Header::new(
        SERVICE_MODEL_TYPE,
        HeaderValue::String(request_shape),
    ));
    rpc_headers(&mut headers, MessageType::ApplicationMessage, 0, stream_id);
    headers.push(Header::new(OPERATION, HeaderValue::String(operation)));
    Message { headers, payload }
}

/// A modeled APPLICATION_MESSAGE: a response (`terminate` for unary
/// operations) or an event (`terminate` false).
pub fn application_message(
    stream_id: i32,
    shape: StrBytes,
    payload: Bytes,
    terminate: bool,
) -> Message {
    let mut headers = Vec::with_capacity(5);
    headers.push(Header::new(CONTENT_TYPE, static_str(APPLICATION_JSON)));
    headers.push(Header::new(SERVICE_MODEL_TYPE, HeaderValue::String(shape)));
    let flags = if terminate { TERMINATE_STREAM } else { 0 };
    rpc_headers(
        &mut headers,
        MessageType::ApplicationMessage,
        flags,
        stream_id,
    );
    Message { headers, payload }
}

/// A bare stream termination: APPLICATION_MESSAGE with TERMINATE_STREAM, no
/// other header, empty payload. Both sides close streams this way.
pub fn terminate_stream(stream_id: i32) -> Message {
    let mut headers = Vec::with_capacity(3);
    rpc_headers(
        &mut headers,
        MessageType::ApplicationMessage,
        TERMINATE_STREAM,
        stream_id,
    );
    Message {
        headers,
        payload: Bytes::new(),
    }
}

/// A modeled error: APPLICATION_ERROR with TERMINATE_STREAM, the error's
/// shape id and its JSON body (see [`crate::model`] for the bodies).
pub fn modeled_error(stream_id: i32, error_shape: StrBytes, payload: Bytes) -> Message {
    let mut headers = Vec::with_capacity(5);
    headers.push(Header::new(CONTENT_TYPE, static_str(APPLICATION_JSON)));
    headers.push(Header::new(
        SERVICE_MODEL_TYPE,
        HeaderValue::String(error_shape),
    ));
    rpc_headers(
        &mut headers,
        MessageType::ApplicationError,
        TERMINATE_STREAM,
        stream_id,
    );
    Message { headers, payload }
}

/// The nucleus' unmodeled failure: APPLICATION_ERROR, `text/plain`, no shape,
/// payload `InternalServerError`. The Python SDK reports it as a closed stream.
pub fn unmodeled_error(stream_id: i32) -> Message {
    let mut headers = Vec::with_capacity(4);
    headers.push(Header::new(CONTENT_TYPE, static_str(TEXT_PLAIN)));
    rpc_headers(
        &mut headers,
        MessageType::ApplicationError,
        TERMINATE_STREAM,
        stream_id,
    );
    Message {
        headers,
        payload: Bytes::from_static(b"InternalServerError"),
    }
}

/// The nucleus' answer to an operation it has no handler for
/// (`protocol.md` §3.6): APPLICATION_ERROR, JSON without a shape id.
pub fn unsupported_operation(stream_id: i32, operation: &str) -> Message {
    let mut headers = Vec::with_capacity(4);
    headers.push(Header::new(CONTENT_TYPE, static_str(APPLICATION_JSON)));
    rpc_headers(
        &mut headers,
        MessageType::ApplicationError,
        TERMINATE_STREAM,
        stream_id,
    );
    let body = serde_json::json!({
        "error": "Unsupported Operation",
        "message": format!("Unsupported operation: {operation}"),
    });
    Message {
        headers,
        payload: Bytes::from(body.to_string()),
    }
}

/// PING (either side; the server never initiates one).
pub fn ping(extra_headers: Vec<Header>, payload: Bytes) -> Message {
    let mut headers = extra_headers;
    rpc_headers(&mut headers, MessageType::Ping, 0, 0);
    Message { headers, payload }
}

/// PING_RESPONSE echoing every header of `ping` whose name does not start
/// with `:`, and its payload, as the nucleus does.
pub fn ping_response(ping: &Message) -> Message {
    let mut headers: Vec<Header> = ping
        .headers
        .iter()
        .filter(|h| !h.name.as_bytes().starts_with(b":"))
        .cloned()
        .collect();
    rpc_headers(&mut headers, MessageType::PingResponse, 0, 0);
    Message {
        headers,
        payload: ping.payload.clone(),
    }
}

fn connection_error(message_type: MessageType, text: &str) -> Message {
    let mut headers = Vec::with_capacity(4);
    headers.push(Header::new(CONTENT_TYPE, static_str(APPLICATION_JSON)));
    rpc_headers(&mut headers, message_type, 0, 0);
    Message {
        headers,
        payload: message_json(text),
    }
}

/// PROTOCOL_ERROR with `{"message": text}`; the sender closes afterwards.
pub fn protocol_error(text: &str) -> Message {
    connection_error(MessageType::ProtocolError, text)
}

/// INTERNAL_ERROR with `{"message": text}`; the sender closes afterwards.
pub fn internal_error(text: &str) -> Message {
    connection_error(MessageType::InternalError, text)
}

/// Payloads up to this size are copied into each stream's frame: one
/// contiguous buffer and a plain CRC cost less than the extra buffers and the
/// CRC combination that sharing needs.
const SHARE_PAYLOAD_FROM: usize = 2048;

/// One encoded frame as up to three buffers written back to back: a head
/// (prelude and headers), a shared payload, and the message CRC. Small
/// frames are wholly in `head` and the other two are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameParts {
    /// Prelude and headers, or the whole frame.
    pub head: Bytes,
    /// The shared payload, or empty.
    pub payload: Bytes,
    /// The message CRC, or empty.
    pub trailer: Bytes,
}

impl FrameParts {
    /// Total length.
    pub fn len(&self) -> usize {
        self.head.len() + self.payload.len() + self.trailer.len()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The parts that hold bytes, in wire order.
    pub fn into_iter_nonempty(self) -> impl Iterator<Item = Bytes> {
        [self.head, self.payload, self.trailer]
            .into_iter()
            .filter(|b| !b.is_empty())
    }
}

/// A modeled APPLICATION_MESSAGE whose payload is encoded once and sent on
/// any number of streams.
///
/// Fan-out sends the same `SubscriptionResponseMessage` to every subscriber,
/// and every publish gets the same `{}` response; only `:stream-id` differs.
/// The payload (and for large payloads its CRC) is computed once; each stream
/// gets its own head and trailer, the message CRC being the head's CRC
/// combined with the payload's.
#[derive(Debug, Clone)]
pub struct PreparedMessage {
    /// Prelude and headers with stream id 0; patched per stream.
    head: Bytes,
    payload: Bytes,
    /// CRC state of the payload, when it is shared rather than copied.
    payload_crc: Option<crc32fast::Hasher>,
}

/// Encoded size of a STRING header.
fn string_header_len(name: &str, value: &[u8]) -> usize {
    1 + name.len() + 1 + 2 + value.len()
}

fn put_string_header(dst: &mut bytes::BytesMut, name: &str, value: &[u8]) {
    use bytes::BufMut;
    dst.put_u8(name.len() as u8);
    dst.put_slice(name.as_bytes());
    dst.put_u8(7);
    dst.put_u16(value.len() as u16);
    dst.put_slice(value);
}

fn put_int32_header(dst: &mut bytes::BytesMut, name: &str, value: i32) {
    use bytes::BufMut;
    dst.put_u8(name.len() as u8);
    dst.put_slice(name.as_bytes());
    dst.put_u8(4);
    dst.put_i32(value);
}

/// The three RPC headers: 1 + name + 1 + 4 bytes each.
const RPC_HEADERS_LEN: usize = (1 + 13 + 5) + (1 + 14 + 5) + (1 + 10 + 5);

impl PreparedMessage {
    /// Prepares an APPLICATION_MESSAGE of shape `shape` (flags 0, or
    /// TERMINATE_STREAM when `terminate`), byte for byte what
    /// [`application_message`] encodes.
    ///
    /// `shape` must fit a header value (at most 32 767 bytes).
    pub fn new(shape: &StrBytes, payload: Bytes, terminate: bool) -> Self {
        let headers_len = string_header_len(CONTENT_TYPE, APPLICATION_JSON.as_bytes())
            + string_header_len(SERVICE_MODEL_TYPE, shape.as_bytes())
            + RPC_HEADERS_LEN;
        let total = crate::frame::MIN_MESSAGE_LEN + headers_len + payload.len();
        let shared = payload.len() >= SHARE_PAYLOAD_FROM;
        let mut head = bytes::BytesMut::with_capacity(crate::frame::PRELUDE_LEN + headers_len);
        head.extend_from_slice(&(total as u32).to_be_bytes());
        head.extend_from_slice(&(headers_len as u32).to_be_bytes());
        head.extend_from_slice(&crc32fast::hash(&head).to_be_bytes());
        put_string_header(&mut head, CONTENT_TYPE, APPLICATION_JSON.as_bytes());
        put_string_header(&mut head, SERVICE_MODEL_TYPE, shape.as_bytes());
        put_int32_header(
            &mut head,
            MESSAGE_TYPE,
            MessageType::ApplicationMessage as i32,
        );
        let flags = if terminate { TERMINATE_STREAM } else { 0 };
        put_int32_header(&mut head, MESSAGE_FLAGS, flags);
        put_int32_header(&mut head, STREAM_ID, 0);
        let payload_crc = shared.then(|| {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&payload);
            crc
        });
        Self {
            head: head.freeze(),
            payload,
            payload_crc,
        }
    }

    /// Total encoded length of one copy.
    pub fn encoded_len(&self) -> usize {
        self.head.len() + self.payload.len() + crate::frame::TRAILER_LEN
    }

    /// Whether the encoded message fits in `max_len` bytes.
    pub fn fits(&self, max_len: usize) -> bool {
        self.encoded_len() <= max_len
    }

    /// The message for `stream_id`. The concatenated parts are exactly what
    /// [`application_message`] encodes to.
    pub fn for_stream(&self, stream_id: i32) -> FrameParts {
        let id_at = self.head.len() - 4;
        match &self.payload_crc {
            None => {
                let mut frame = bytes::BytesMut::with_capacity(self.encoded_len());
                frame.extend_from_slice(&self.head[..id_at]);
                frame.extend_from_slice(&stream_id.to_be_bytes());
                frame.extend_from_slice(&self.payload);
                let crc = crc32fast::hash(&frame);
                frame.extend_from_slice(&crc.to_be_bytes());
                FrameParts {
                    head: frame.freeze(),
                    ..FrameParts::default()
                }
            }
            Some(payload_crc) => {
                let mut head = bytes::BytesMut::with_capacity(self.head.len() + 4);
                head.extend_from_slice(&self.head[..id_at]);
                head.extend_from_slice(&stream_id.to_be_bytes());
                let mut crc = crc32fast::Hasher::new();
                crc.update(&head);
                crc.combine(payload_crc);
                // The trailer rides in the head's allocation.
                head.extend_from_slice(&crc.finalize().to_be_bytes());
                let mut head = head.freeze();
                let trailer = head.split_off(head.len() - 4);
                FrameParts {
                    head,
                    payload: self.payload.clone(),
                    trailer,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_token_is_json_escaped() {
        let m = connect("a\"b");
        let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
        assert_eq!(v["authToken"], "a\"b");
    }

    #[test]
    fn parse_rejects_missing_and_mistyped_headers() {
        let mut m = connect_ack(true);
        m.headers.remove(1);
        assert_eq!(
            RpcMessage::parse(m).unwrap_err(),
            RpcError::MissingHeader(MESSAGE_FLAGS)
        );
        // Right name, wrong type: counts as missing.
        let mut m = connect_ack(true);
        m.headers[2].value = HeaderValue::Int64(0);
        assert_eq!(
            RpcMessage::parse(m).unwrap_err(),
            RpcError::MissingHeader(STREAM_ID)
        );
    }

    #[test]
    fn parse_matches_reserved_names_in_any_case_but_version_exactly() {
        let mut m = connect("t");
        m.headers[1].name = StrBytes::from_static(":Message-Type");
        m.headers[0].name = StrBytes::from_static(":Version");
        let rpc = RpcMessage::parse(m).unwrap();
        assert_eq!(rpc.message_type, MessageType::Connect);
        assert_eq!(rpc.version, None);
    }

    #[test]
    fn first_occurrence_wins() {
        let mut m = terminate_stream(3);
        m.headers
            .push(Header::new(STREAM_ID, HeaderValue::Int32(9)));
        assert_eq!(RpcMessage::parse(m).unwrap().stream_id, 3);
    }

    #[test]
    fn parse_checks_type_against_stream() {
        let mut m = connect_ack(true);
        m.headers[2].value = HeaderValue::Int32(4);
        assert_eq!(
            RpcMessage::parse(m).unwrap_err(),
            RpcError::WrongStream {
                message_type: 5,
                stream_id: 4
            }
        );
        let m = application_message(0, StrBytes::from_static("x"), Bytes::new(), false);
        assert!(matches!(
            RpcMessage::parse(m),
            Err(RpcError::WrongStream { .. })
        ));
        let mut m = connect_ack(true);
        m.headers[0].value = HeaderValue::Int32(8);
        assert_eq!(
            RpcMessage::parse(m).unwrap_err(),
            RpcError::UnknownMessageType(8)
        );
        let mut m = terminate_stream(1);
        m.headers[2].value = HeaderValue::Int32(-1);
        assert_eq!(
            RpcMessage::parse(m).unwrap_err(),
            RpcError::NegativeStreamId(-1)
        );
    }

    #[test]
    fn prepared_message_matches_the_plain_encoding_on_every_stream() {
        let shape = StrBytes::from_static("aws.greengrass#SubscriptionResponseMessage");
        let sizes = [0, 1, SHARE_PAYLOAD_FROM - 1, SHARE_PAYLOAD_FROM, 70_000];
        for (payload, terminate) in sizes.iter().flat_map(|n| {
            [
                (Bytes::from(vec![7u8; *n]), false),
                (Bytes::from(vec![9u8; *n]), true),
            ]
        }) {
            let prepared = PreparedMessage::new(&shape, payload.clone(), terminate);
            for stream_id in [1, 2, 255, 65_536, i32::MAX] {
                let parts = prepared.for_stream(stream_id);
                assert_eq!(parts.len(), prepared.encoded_len());
                let shared = !parts.payload.is_empty();
                assert_eq!(shared, payload.len() >= SHARE_PAYLOAD_FROM);
                let joined: Vec<u8> = parts.into_iter_nonempty().flatten().collect();
                let plain = crate::frame::encode_to_bytes(
                    &application_message(stream_id, shape.clone(), payload.clone(), terminate),
                    usize::MAX,
                )
                .unwrap();
                assert_eq!(joined, plain.as_ref());
            }
        }
    }

    #[test]
    fn ping_response_drops_colon_headers() {
        let p = ping(
            vec![
                Header::new(":x", HeaderValue::Int32(1)),
                Header::new("k", HeaderValue::Int32(2)),
            ],
            Bytes::from_static(b"PP"),
        );
        let r = RpcMessage::parse(ping_response(&p)).unwrap();
        assert_eq!(r.message_type, MessageType::PingResponse);
        assert!(r.message.header(":x").is_none());
        assert_eq!(r.message.header("k"), Some(&HeaderValue::Int32(2)));
        assert_eq!(r.payload().as_ref(), b"PP");
    }
}

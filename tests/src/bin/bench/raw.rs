//! Raw protocol clients: prepared frames with only the stream id, the
//! stamp and the CRC patched per message, written in batches; subscribers
//! that parse no more than they must to find the stamp. They cost the load
//! generator little, so the broker is what they measure — the client
//! libraries cannot keep a broker busy from one core (see the README).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use ggipc_protocol::frame::{self, DEFAULT_MAX_DECODE_LEN};
use ggipc_protocol::rpc::{self, MessageType, RpcMessage};
use ggipc_protocol::{FrameCodec, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tokio_util::codec::FramedRead;

use crate::stamp::{self, HEADER, Stamp};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// The stamp's base64 length: 24 bytes are exactly 32 characters, so the
/// filler's encoding after it never changes.
const STAMP_B64: usize = HEADER / 3 * 4;
const MESSAGE_KEY: &[u8] = br#""message":""#;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn request(stream_id: i32, operation: &str, payload: String) -> Bytes {
    let message = rpc::request(
        stream_id,
        StrBytes::from(format!("aws.greengrass#{operation}")),
        StrBytes::from(format!("aws.greengrass#{operation}Request")),
        Bytes::from(payload),
    );
    frame::encode_to_bytes(&message, DEFAULT_MAX_DECODE_LEN).expect("encodable request")
}

/// Connects and completes CONNECT.
async fn ggipc_connect(
    socket: &Path,
    token: &str,
) -> (FramedRead<OwnedReadHalf, FrameCodec>, OwnedWriteHalf) {
    let stream = UnixStream::connect(socket).await.expect("connect to ggipc");
    let (read, mut write) = stream.into_split();
    let mut frames = FramedRead::new(read, FrameCodec::new());
    let connect = frame::encode_to_bytes(&rpc::connect(token), DEFAULT_MAX_DECODE_LEN)
        .expect("encodable CONNECT");
    write.write_all(&connect).await.expect("send CONNECT");
    let ack = frames
        .next()
        .await
        .expect("CONNECT_ACK")
        .expect("valid frame");
    let ack = RpcMessage::parse(ack).expect("valid CONNECT_ACK");
    assert!(ack.is_accepted_ack(), "CONNECT refused");
    (frames, write)
}

/// A ggipc publisher writing prepared `PublishToTopic` frames.
#[derive(Debug)]
pub(crate) struct GgipcPub {
    write: OwnedWriteHalf,
    template: Vec<u8>,
    /// Offset of the stream id's 4 bytes in the template.
    id_at: usize,
    /// Offset of the stamp's base64 in the template.
    stamp_at: usize,
    next_id: i32,
    batch: BytesMut,
    sent: u64,
    /// Responses read by the reader task.
    pub(crate) answered: Arc<AtomicU64>,
    pub(crate) errors: Arc<AtomicU64>,
    pub(crate) wake: Arc<Notify>,
    reader: tokio::task::JoinHandle<()>,
}

impl GgipcPub {
    pub(crate) async fn connect(socket: &Path, token: &str, topic: &str, size: usize) -> Self {
        let (mut frames, write) = ggipc_connect(socket, token).await;
        // A recognisable stream id and stamp to find in the encoding.
        const MARK_ID: i32 = 0x5a5a_5a5a;
        let body = stamp::payload(
            size,
            Stamp {
                publisher: 0,
                seq: 0,
                sent_ns: 0,
            },
        );
        let payload = format!(
            r#"{{"topic":{},"publishMessage":{{"binaryMessage":{{"message":"{}"}}}}}}"#,
            serde_json::Value::from(topic),
            B64.encode(&body)
        );
        let template = request(MARK_ID, "PublishToTopic", payload).to_vec();
        let id_at = find(&template, &MARK_ID.to_be_bytes()).expect("stream id in the frame");
        let stamp_at =
            find(&template, MESSAGE_KEY).expect("message in the frame") + MESSAGE_KEY.len();
        let answered = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let wake = Arc::new(Notify::new());
        let reader = {
            let (answered, errors, wake) = (answered.clone(), errors.clone(), wake.clone());
            tokio::spawn(async move {
                while let Some(Ok(m)) = frames.next().await {
                    match RpcMessage::parse(m).map(|r| r.message_type) {
                        Ok(MessageType::ApplicationMessage) => {}
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                    wake.notify_one();
                }
            })
        };
        Self {
            write,
            template,
            id_at,
            stamp_at,
            next_id: 1,
            batch: BytesMut::new(),
            sent: 0,
            answered,
            errors,
            wake,
            reader,
        }
    }

    pub(crate) fn queue(&mut self, s: Stamp) {
        let start = self.batch.len();
        self.batch.extend_from_slice(&self.template);
        let frame = &mut self.batch[start..];
        frame[self.id_at..self.id_at + 4].copy_from_slice(&self.next_id.to_be_bytes());
        let mut header = [0u8; HEADER];
        stamp::write_stamp(&mut header, s);
        B64.encode_slice(header, &mut frame[self.stamp_at..self.stamp_at + STAMP_B64])
            .expect("room for the stamp");
        let crc_at = frame.len() - frame::TRAILER_LEN;
        let crc = crc32fast::hash(&frame[..crc_at]);
        frame[crc_at..].copy_from_slice(&crc.to_be_bytes());
        self.next_id += 1;
        self.sent += 1;
    }

    pub(crate) async fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.write
                .write_all(&self.batch)
                .await
                .expect("write to ggipc");
            self.batch.clear();
        }
    }

    pub(crate) fn unanswered(&self) -> u64 {
        self.sent - self.answered.load(Ordering::Relaxed)
    }
}

impl Drop for GgipcPub {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// A ggipc subscriber that decodes frames and the stamp's base64, nothing
/// else.
#[derive(Debug)]
pub(crate) struct GgipcSub {
    frames: FramedRead<OwnedReadHalf, FrameCodec>,
    _write: OwnedWriteHalf,
}

impl GgipcSub {
    pub(crate) async fn connect(socket: &Path, token: &str, filter: &str) -> Self {
        let (mut frames, mut write) = ggipc_connect(socket, token).await;
        let payload = serde_json::json!({"topic": filter}).to_string();
        write
            .write_all(&request(1, "SubscribeToTopic", payload))
            .await
            .expect("send SubscribeToTopic");
        let response = frames.next().await.expect("response").expect("valid frame");
        let response = RpcMessage::parse(response).expect("valid response");
        assert_eq!(
            response.message_type,
            MessageType::ApplicationMessage,
            "{response:?}"
        );
        Self {
            frames,
            _write: write,
        }
    }

    /// The stamp bytes of the next event.
    pub(crate) async fn next(&mut self) -> Option<Bytes> {
        loop {
            let m = self.frames.next().await?.ok()?;
            let payload = &m.payload[..];
            let Some(at) = find(payload, MESSAGE_KEY).map(|i| i + MESSAGE_KEY.len()) else {
                continue;
            };
            let mut header = [0u8; HEADER];
            let text = payload.get(at..at + STAMP_B64)?;
            if B64.decode_slice(text, &mut header).is_ok() {
                return Some(Bytes::copy_from_slice(&header));
            }
        }
    }
}

// ===== MQTT 3.1.1 =====

fn put_remaining_length(buf: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if len == 0 {
            break;
        }
    }
}

fn put_str(buf: &mut BytesMut, s: &str) {
    buf.put_u16(s.len() as u16);
    buf.put_slice(s.as_bytes());
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Connects with a clean session and no keep-alive, and waits for CONNACK.
async fn mqtt_connect(socket: &Path) -> UnixStream {
    let mut stream = UnixStream::connect(socket)
        .await
        .expect("connect to mosquitto");
    let id = format!("raw-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let mut body = BytesMut::new();
    put_str(&mut body, "MQTT");
    body.put_u8(4); // protocol level 3.1.1
    body.put_u8(0x02); // clean session
    body.put_u16(0); // keep-alive off
    put_str(&mut body, &id);
    let mut packet = BytesMut::new();
    packet.put_u8(0x10);
    put_remaining_length(&mut packet, body.len());
    packet.put_slice(&body);
    stream.write_all(&packet).await.expect("send CONNECT");
    let mut ack = [0u8; 4];
    stream.read_exact(&mut ack).await.expect("CONNACK");
    assert_eq!(ack, [0x20, 2, 0, 0], "CONNECT refused");
    stream
}

/// An MQTT publisher writing prepared QoS 0 PUBLISH packets.
#[derive(Debug)]
pub(crate) struct MqttPub {
    stream: UnixStream,
    template: Vec<u8>,
    stamp_at: usize,
    batch: BytesMut,
}

impl MqttPub {
    pub(crate) async fn connect(socket: &Path, topic: &str, size: usize) -> Self {
        let stream = mqtt_connect(socket).await;
        let body = stamp::payload(
            size,
            Stamp {
                publisher: 0,
                seq: 0,
                sent_ns: 0,
            },
        );
        let mut packet = BytesMut::new();
        packet.put_u8(0x30);
        put_remaining_length(&mut packet, 2 + topic.len() + body.len());
        put_str(&mut packet, topic);
        let stamp_at = packet.len();
        packet.put_slice(&body);
        Self {
            stream,
            template: packet.to_vec(),
            stamp_at,
            batch: BytesMut::new(),
        }
    }

    pub(crate) fn queue(&mut self, s: Stamp) {
        let start = self.batch.len();
        self.batch.extend_from_slice(&self.template);
        let at = start + self.stamp_at;
        stamp::write_stamp(&mut self.batch[at..at + HEADER], s);
    }

    pub(crate) async fn flush(&mut self) {
        if !self.batch.is_empty() {
            self.stream
                .write_all(&self.batch)
                .await
                .expect("write to mosquitto");
            self.batch.clear();
        }
    }
}

/// An MQTT subscriber that splits packets and returns PUBLISH payloads.
#[derive(Debug)]
pub(crate) struct MqttSub {
    stream: UnixStream,
    buf: BytesMut,
}

impl MqttSub {
    pub(crate) async fn connect(socket: &Path, filter: &str) -> Self {
        let mut stream = mqtt_connect(socket).await;
        let mut body = BytesMut::new();
        body.put_u16(1); // packet id
        put_str(&mut body, filter);
        body.put_u8(0); // QoS 0
        let mut packet = BytesMut::new();
        packet.put_u8(0x82);
        put_remaining_length(&mut packet, body.len());
        packet.put_slice(&body);
        stream.write_all(&packet).await.expect("send SUBSCRIBE");
        let mut ack = [0u8; 5];
        stream.read_exact(&mut ack).await.expect("SUBACK");
        assert_eq!(ack, [0x90, 3, 0, 1, 0], "SUBSCRIBE refused");
        Self {
            stream,
            buf: BytesMut::with_capacity(128 * 1024),
        }
    }

    /// One whole packet from the buffer: its first byte and its body.
    fn packet(&mut self) -> Option<(u8, Bytes)> {
        let mut len = 0usize;
        let mut shift = 0;
        let mut i = 1;
        loop {
            let byte = *self.buf.get(i)?;
            len |= usize::from(byte & 0x7f) << shift;
            i += 1;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        if self.buf.len() < i + len {
            self.buf.reserve(i + len - self.buf.len());
            return None;
        }
        let kind = self.buf[0];
        self.buf.advance(i);
        Some((kind, self.buf.split_to(len).freeze()))
    }

    pub(crate) async fn next(&mut self) -> Option<Bytes> {
        loop {
            while let Some((kind, mut body)) = self.packet() {
                if kind >> 4 != 3 {
                    continue;
                }
                let topic_len = usize::from(body.get_u16());
                body.advance(topic_len);
                if (kind >> 1) & 3 != 0 {
                    body.advance(2); // packet id
                }
                return Some(body);
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(64 * 1024);
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

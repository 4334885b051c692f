//! Property tests of the framing layer: round trips, arbitrary input, and
//! independence from how bytes are split across reads.

use bytes::{Bytes, BytesMut};
use ggipc_protocol::frame::{
    self, DEFAULT_MAX_DECODE_LEN, DEFAULT_MAX_ENCODE_LEN, MIN_MESSAGE_LEN,
};
use ggipc_protocol::rpc::RpcMessage;
use ggipc_protocol::{FrameCodec, Header, HeaderValue, Message, StrBytes};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Int16),
        any::<i32>().prop_map(HeaderValue::Int32),
        any::<i64>().prop_map(HeaderValue::Int64),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|v| HeaderValue::Bytes(Bytes::from(v))),
        ".{0,40}".prop_map(|s| HeaderValue::String(StrBytes::from(s))),
        any::<i64>().prop_map(HeaderValue::Timestamp),
        any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    // 1..=60 chars of any script keeps names within 255 bytes.
    (".{1,60}", header_value()).prop_map(|(name, value)| Header {
        name: StrBytes::from(name),
        value,
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop::collection::vec(header(), 0..12),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(headers, payload)| Message {
            headers,
            payload: Bytes::from(payload),
        })
}

fn decode_stream(chunks: &[&[u8]]) -> (Vec<Message>, bool) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

proptest! {
    #[test]
    fn any_message_round_trips(m in message()) {
        let bytes = frame::encode_to_bytes(&m, DEFAULT_MAX_ENCODE_LEN).unwrap();
        prop_assert_eq!(bytes.len(), m.encoded_len());
        let (decoded, info) = frame::decode(bytes.clone(), DEFAULT_MAX_DECODE_LEN).unwrap();
        prop_assert_eq!(info.total_length as usize, bytes.len());
        prop_assert_eq!(info.headers_length as usize, m.headers_len());
        prop_assert_eq!(decoded, m);
    }

    #[test]
    fn any_bytes_decode_or_error_without_panicking(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = frame::decode(Bytes::from(data.clone()), DEFAULT_MAX_DECODE_LEN);
        let (messages, _) = decode_stream(&[&data]);
        for m in messages {
            let _ = RpcMessage::parse(m);
        }
    }

    #[test]
    fn a_valid_prelude_with_garbage_after_it_never_panics(
        headers_len in 0u32..64,
        body in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        // Random bytes almost never pass the prelude CRC; give the header
        // parser real work by making the prelude valid and the message CRC too.
        let total = (MIN_MESSAGE_LEN + body.len()) as u32;
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&total.to_be_bytes());
        frame.extend_from_slice(&headers_len.min(body.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&frame);
        frame.extend_from_slice(&crc.to_be_bytes());
        frame.extend_from_slice(&body);
        let crc = crc32fast::hash(&frame);
        frame.extend_from_slice(&crc.to_be_bytes());
        if let Ok((m, _)) = frame::decode(frame.freeze(), DEFAULT_MAX_DECODE_LEN) {
            prop_assert!(m.payload.len() <= body.len());
        }
    }

    #[test]
    fn splitting_a_stream_at_every_boundary_yields_the_same_messages(
        ms in prop::collection::vec(message(), 1..4),
    ) {
        let mut stream = BytesMut::new();
        for m in &ms {
            frame::encode(m, DEFAULT_MAX_ENCODE_LEN, &mut stream).unwrap();
        }
        for cut in 0..=stream.len() {
            let (got, failed) = decode_stream(&[&stream[..cut], &stream[cut..]]);
            prop_assert!(!failed);
            prop_assert_eq!(&got, &ms, "split at {}", cut);
        }
        // One byte at a time, too.
        let singles: Vec<&[u8]> = stream.chunks(1).collect();
        let (got, failed) = decode_stream(&singles);
        prop_assert!(!failed);
        prop_assert_eq!(got, ms);
    }
}

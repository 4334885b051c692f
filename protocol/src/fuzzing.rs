//! Entry points shared by the fuzz targets in `fuzz/` and the corpus replay
//! test, so that both exercise exactly the same checks. Each function panics
//! only when an invariant of this crate is broken.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

use crate::frame::{self, DEFAULT_MAX_DECODE_LEN, DEFAULT_MAX_ENCODE_LEN, FrameCodec, Message};
use crate::model::{self, IpcError, Operation};
use crate::rpc::RpcMessage;

/// Decodes every frame in `data` through the codec, fed whole and fed in two
/// pieces split at a point taken from the data; both ways must agree, and a
/// decoded frame must re-encode to the bytes it came from.
pub fn frame_decode(data: &[u8]) {
    let whole = decode_all(&[data]);
    let split = data.first().map_or(0, |b| *b as usize * data.len() / 256);
    let pieces = decode_all(&[&data[..split], &data[split..]]);
    assert_eq!(whole, pieces, "decoding depends on how the bytes arrive");
    let mut offset = 0;
    for message in whole.0 {
        let len = message.encoded_len();
        let original = &data[offset..offset + len];
        offset += len;
        // Empty header names decode (as in aws-c-event-stream) but are never
        // encoded, so such frames cannot round-trip.
        if message.headers.iter().any(|h| h.name.is_empty()) {
            continue;
        }
        let encoded = frame::encode_to_bytes(&message, DEFAULT_MAX_DECODE_LEN)
            .expect("a decoded message re-encodes");
        assert_eq!(encoded.as_ref(), original, "re-encoding changed the bytes");
    }
}

/// Messages decoded, and whether decoding stopped on an error.
fn decode_all(pieces: &[&[u8]]) -> (Vec<Message>, bool) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
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

/// An encodable message must decode to itself.
pub fn frame_roundtrip(message: &Message) {
    let Ok(bytes) = frame::encode_to_bytes(message, DEFAULT_MAX_ENCODE_LEN) else {
        return;
    };
    assert_eq!(bytes.len(), message.encoded_len());
    let (decoded, info) =
        frame::decode(bytes.clone(), DEFAULT_MAX_DECODE_LEN).expect("encoded frame decodes");
    assert_eq!(&decoded, message);
    assert_eq!(info.total_length as usize, bytes.len());
}

/// Any frame in `data` goes through the RPC view without panicking, and a
/// message that parses keeps its fields when re-encoded and parsed again.
pub fn rpc_view(data: &[u8]) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::from(data);
    while let Ok(Some(message)) = codec.decode(&mut buf) {
        let Ok(rpc) = RpcMessage::parse(message.clone()) else {
            continue;
        };
        if message.headers.iter().any(|h| h.name.is_empty()) {
            continue;
        }
        let bytes: Bytes = frame::encode_to_bytes(&message, DEFAULT_MAX_DECODE_LEN)
            .expect("a decoded message re-encodes");
        let (again, _) = frame::decode(bytes, DEFAULT_MAX_DECODE_LEN).expect("decodes");
        assert_eq!(RpcMessage::parse(again).expect("parses again"), rpc);
    }
}

/// JSON bytes into every request shape's parser and the error parser: none
/// may panic, and whatever decodes must re-serialize to a payload that
/// decodes to the same value.
pub fn request_json(data: &[u8]) {
    for op in Operation::ALL {
        let Ok(request) = model::decode_request(op, data) else {
            continue;
        };
        assert_eq!(request.operation(), op);
        // Only its not panicking matters here; the verdict is the handler's.
        let _ = request.validate();
        let payload = request.to_payload();
        let again = model::decode_request(op, &payload).expect("a re-serialized request decodes");
        assert_eq!(
            again, request,
            "{op} changed in a round trip through {payload:?}"
        );
    }
    for name in IpcError::SHAPE_NAMES {
        let shape_id = format!("{}{name}", model::NAMESPACE);
        let Some(Ok(error)) = IpcError::from_payload(&shape_id, data) else {
            continue;
        };
        assert_eq!(error.shape_id(), shape_id);
        let payload = error.to_payload();
        let again = IpcError::from_payload(&shape_id, &payload)
            .expect("an error shape id")
            .expect("a re-serialized error decodes");
        assert_eq!(
            again, error,
            "{name} changed in a round trip through {payload:?}"
        );
    }
}

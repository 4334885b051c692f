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

/// A topic filter and a topic, split at the first NUL of `data`: the matcher
/// agrees with the plain reference, validation does not panic, and an index
/// holding the filter (and the topic as a filter) visits the topic exactly
/// as the reference says, then frees every node on removal.
pub fn topic_match(data: &[u8]) {
    use crate::topic::{self, TopicIndex};

    let (filter, topic_name) = split_at_nul(data);
    let _ = topic::validate_filter(&filter);
    let _ = topic::validate_publish_topic(&topic_name);
    let _ = topic::has_wildcard(&filter);
    let expected = topic::reference::filter_matches(&filter, &topic_name);
    assert_eq!(
        topic::filter_matches(&filter, &topic_name),
        expected,
        "filter {filter:?} vs topic {topic_name:?}"
    );

    let mut index = TopicIndex::new();
    index.insert(&filter, 1, ());
    index.insert(&topic_name, 2, ());
    let (mut first, mut second) = (0, 0);
    index.visit(&topic_name, |id, ()| match id {
        1 => first += 1,
        2 => second += 1,
        _ => panic!("visited an id never inserted: {id}"),
    });
    assert_eq!(
        first,
        usize::from(expected),
        "index vs filter_matches for {filter:?}"
    );
    let self_match = topic::reference::filter_matches(&topic_name, &topic_name);
    assert_eq!(
        second,
        usize::from(self_match),
        "index vs reference for {topic_name:?}"
    );
    assert_eq!(index.remove(&filter, 1), Some(()));
    assert_eq!(index.remove(&topic_name, 2), Some(()));
    assert_eq!(index.node_count(), 0, "removal left nodes behind");
}

/// A policy resource and a requested resource, split at the first NUL of
/// `data`: in both match styles the compiled pattern accepts the same
/// resources as the plain reference and is valid exactly when it is. When the
/// whole input is JSON it is also compiled as an `accessControl` value.
pub fn policy_match(data: &[u8]) {
    use crate::policy::{ComponentPolicies, MatchStyle, ResourcePattern, reference};

    let (pattern, resource) = split_at_nul(data);
    for style in [MatchStyle::Standard, MatchStyle::MqttStyle] {
        let fast = ResourcePattern::compile(&pattern, style)
            .ok()
            .map(|p| p.matches(&resource));
        assert_eq!(
            fast,
            reference::matches(&pattern, style, &resource),
            "{style:?} pattern {pattern:?} vs {resource:?}"
        );
    }
    if let Ok(value) = serde_json::from_slice(data) {
        let (policies, _) = ComponentPolicies::compile(&value, &|v| Some(v.to_owned()));
        let _ = policies.is_authorized("aws.greengrass.ipc.mqttproxy", "*", Some(&resource));
    }
}

/// Before and after the first NUL byte (all of it and nothing without one),
/// as lossy UTF-8.
fn split_at_nul(data: &[u8]) -> (String, String) {
    let (a, b) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    (
        String::from_utf8_lossy(a).into_owned(),
        String::from_utf8_lossy(b).into_owned(),
    )
}

//! Decoding allocates per frame, not per header: names, string and byte
//! values are slices of the frame's `Bytes`, and the header list is sized
//! once. Counted with `allocation-counter`, whose global allocator tallies
//! the current thread's allocations; it lives in its own test binary so that
//! it replaces the allocator of no other test.

use bytes::{Bytes, BytesMut};
use ggipc_protocol::frame::{self, DEFAULT_MAX_DECODE_LEN, DEFAULT_MAX_ENCODE_LEN};
use ggipc_protocol::{FrameCodec, Header, HeaderValue, Message, StrBytes};
use tokio_util::codec::Decoder;

/// A message with `n` headers cycling through every value type, so that each
/// kind of header is decoded at least once when `n` ≥ 10.
fn message(n: usize) -> Message {
    let headers = (0..n)
        .map(|i| {
            let value = match i % 10 {
                0 => HeaderValue::String(StrBytes::from(format!("value {i}"))),
                1 => HeaderValue::Bytes(Bytes::from(vec![i as u8; 12])),
                2 => HeaderValue::Int32(i as i32),
                3 => HeaderValue::Bool(true),
                4 => HeaderValue::Bool(false),
                5 => HeaderValue::Byte(-1),
                6 => HeaderValue::Int16(-2),
                7 => HeaderValue::Int64(-3),
                8 => HeaderValue::Timestamp(1_704_164_645_678),
                _ => HeaderValue::Uuid([i as u8; 16]),
            };
            Header {
                name: StrBytes::from(format!("header-{i}")),
                value,
            }
        })
        .collect();
    Message {
        headers,
        payload: Bytes::from_static(br#"{"message":"hello"}"#),
    }
}

/// Allocations made by `frame::decode` on a freshly encoded frame, which
/// includes turning the frame's buffer into a shared one on the first slice.
fn decode_allocations(n: usize) -> u64 {
    let bytes = frame::encode_to_bytes(&message(n), DEFAULT_MAX_ENCODE_LEN).unwrap();
    let mut decoded = None;
    let info = allocation_counter::measure(|| {
        decoded = Some(frame::decode(bytes, DEFAULT_MAX_DECODE_LEN).unwrap());
    });
    let (decoded, _) = decoded.unwrap();
    assert_eq!(decoded, message(n));
    info.count_total
}

#[test]
fn decode_allocations_do_not_grow_with_headers() {
    let one = decode_allocations(1);
    let twenty = decode_allocations(20);
    assert_eq!(
        one, twenty,
        "1 header: {one} allocations, 20 headers: {twenty}"
    );
    // The header list, plus the shared buffer the frame's slices point into.
    assert!(one <= 2, "{one} allocations for one header");
}

/// The streaming path: frames split off a read buffer share its allocation.
#[test]
fn codec_allocations_do_not_grow_with_headers() {
    let count = |n: usize| {
        let frame = frame::encode_to_bytes(&message(n), DEFAULT_MAX_ENCODE_LEN).unwrap();
        let mut src = BytesMut::with_capacity(frame.len() * 2);
        src.extend_from_slice(&frame);
        src.extend_from_slice(&frame);
        let mut codec = FrameCodec::new();
        // The first frame pays for turning the read buffer into a shared one.
        codec.decode(&mut src).unwrap().unwrap();
        let mut decoded = None;
        let info = allocation_counter::measure(|| {
            decoded = codec.decode(&mut src).unwrap();
        });
        assert_eq!(decoded, Some(message(n)));
        info.count_total
    };
    let one = count(1);
    let twenty = count(20);
    assert_eq!(
        one, twenty,
        "1 header: {one} allocations, 20 headers: {twenty}"
    );
    assert!(one <= 1, "{one} allocations for one header");
}

//! Differential tests of the frame codec against `aws-smithy-eventstream`,
//! the AWS SDK's own Rust implementation of the same framing.
//!
//! On inputs inside both implementations' limits the two must accept the same
//! buffers and decode them to the same message. The limits differ by design
//! (`dependencies.md` C.3): smithy has no maximum message size, accepts string
//! and byte-array values up to 65 535 bytes where the CRTs stop at 32 767, and
//! has no cap on the number of headers. Inputs that smithy decodes into a
//! message outside our limits are therefore left out of the comparison; the
//! divergences themselves are pinned by the `smithy_accepts_*` tests below so
//! that a change on either side is noticed.
//!
//! `read_message_from` decodes the first frame of a buffer and leaves any
//! bytes after it, while `frame::decode` takes exactly one frame. Each input is
//! compared both ways: as an exact frame (smithy must have consumed the whole
//! buffer) and as the head of a stream (against [`FrameCodec`]).

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::DateTime;
use aws_smithy_types::event_stream as smithy;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use ggipc_protocol::frame::{
    self, DEFAULT_MAX_DECODE_LEN, DEFAULT_MAX_ENCODE_LEN, MAX_HEADER_NAME_LEN,
    MAX_HEADER_VALUE_LEN, MAX_HEADERS, PRELUDE_LEN,
};
use ggipc_protocol::{FrameCodec, Header, HeaderValue, Message, StrBytes};
use proptest::prelude::*;
use proptest::sample::Index;
use tokio_util::codec::Decoder;

// ===== conversions =====

fn to_smithy(message: &Message) -> smithy::Message {
    let headers = message
        .headers
        .iter()
        .map(|h| {
            let value = match &h.value {
                HeaderValue::Bool(v) => smithy::HeaderValue::Bool(*v),
                HeaderValue::Byte(v) => smithy::HeaderValue::Byte(*v),
                HeaderValue::Int16(v) => smithy::HeaderValue::Int16(*v),
                HeaderValue::Int32(v) => smithy::HeaderValue::Int32(*v),
                HeaderValue::Int64(v) => smithy::HeaderValue::Int64(*v),
                HeaderValue::Bytes(v) => smithy::HeaderValue::ByteArray(v.clone()),
                HeaderValue::String(v) => smithy::HeaderValue::String(
                    v.as_bytes()
                        .clone()
                        .try_into()
                        .expect("our strings are UTF-8"),
                ),
                HeaderValue::Timestamp(v) => {
                    smithy::HeaderValue::Timestamp(DateTime::from_millis(*v))
                }
                HeaderValue::Uuid(v) => smithy::HeaderValue::Uuid(u128::from_be_bytes(*v)),
            };
            let name: aws_smithy_types::str_bytes::StrBytes =
                h.name.as_bytes().clone().try_into().expect("UTF-8 name");
            smithy::Header::new(name, value)
        })
        .collect();
    smithy::Message::new_from_parts(headers, message.payload.clone())
}

fn from_smithy(message: &smithy::Message) -> Message {
    let headers = message
        .headers()
        .iter()
        .map(|h| {
            let value = match h.value() {
                smithy::HeaderValue::Bool(v) => HeaderValue::Bool(*v),
                smithy::HeaderValue::Byte(v) => HeaderValue::Byte(*v),
                smithy::HeaderValue::Int16(v) => HeaderValue::Int16(*v),
                smithy::HeaderValue::Int32(v) => HeaderValue::Int32(*v),
                smithy::HeaderValue::Int64(v) => HeaderValue::Int64(*v),
                smithy::HeaderValue::ByteArray(v) => HeaderValue::Bytes(v.clone()),
                smithy::HeaderValue::String(v) => HeaderValue::String(
                    StrBytes::try_from_bytes(v.as_bytes().clone()).expect("smithy checked UTF-8"),
                ),
                // Every i64 of milliseconds survives DateTime and back; a
                // failure here would itself be a divergence worth seeing.
                smithy::HeaderValue::Timestamp(t) => {
                    HeaderValue::Timestamp(t.to_millis().expect("millis round-trip"))
                }
                smithy::HeaderValue::Uuid(v) => HeaderValue::Uuid(v.to_be_bytes()),
                other => panic!("header type unknown to this test: {other:?}"),
            };
            Header {
                name: StrBytes::try_from_bytes(h.name().as_bytes().clone())
                    .expect("smithy checked UTF-8"),
                value,
            }
        })
        .collect();
    Message {
        headers,
        payload: message.payload().clone(),
    }
}

/// Whether a message smithy decoded is one our decoder is meant to accept.
/// Name lengths need no check: the wire field is one byte.
fn within_common_limits(message: &Message, frame_len: usize) -> bool {
    message.headers.len() <= MAX_HEADERS
        && frame_len <= DEFAULT_MAX_DECODE_LEN
        && message.headers.iter().all(|h| match &h.value {
            HeaderValue::Bytes(b) => b.len() <= MAX_HEADER_VALUE_LEN,
            HeaderValue::String(s) => s.len() <= MAX_HEADER_VALUE_LEN,
            _ => true,
        })
}

// ===== the comparison =====

fn fail(reason: String) -> TestCaseError {
    TestCaseError::fail(reason)
}

/// A message short enough for a failure report: 70 KB payloads are not.
fn brief(message: &Message) -> String {
    let payload = &message.payload;
    format!(
        "{{ headers: {:?}, payload: {} bytes starting {:?} }}",
        message.headers,
        payload.len(),
        &payload[..payload.len().min(16)]
    )
}

/// Decodes `bytes` both ways with both implementations and fails on any
/// disagreement inside the common limits.
fn compare(bytes: &Bytes) -> Result<(), TestCaseError> {
    let mut rest = bytes.clone();
    let theirs = read_message_from(&mut rest).map(|m| from_smithy(&m));
    let theirs_len = bytes.len() - rest.remaining();
    if let Ok(m) = &theirs
        && !within_common_limits(m, theirs_len)
    {
        return Ok(());
    }

    // As an exact frame: smithy's answer counts as acceptance only when the
    // frame it read was the whole buffer.
    let ours = frame::decode(bytes.clone(), DEFAULT_MAX_DECODE_LEN).map(|(m, _)| m);
    match (&ours, &theirs) {
        (Ok(ours), Ok(theirs)) if rest.is_empty() => {
            prop_assert_eq!(ours, theirs, "decoded messages differ");
        }
        (Ok(ours), Ok(_)) => {
            return Err(fail(format!(
                "we accept {}, smithy leaves {} bytes",
                brief(ours),
                rest.remaining()
            )));
        }
        (Ok(ours), Err(e)) => {
            return Err(fail(format!(
                "we accept {}, smithy rejects: {e}",
                brief(ours)
            )));
        }
        (Err(e), Ok(theirs)) if rest.is_empty() => {
            return Err(fail(format!(
                "smithy accepts {}, we reject: {e}",
                brief(theirs)
            )));
        }
        (Err(_), _) => {}
    }

    // As the head of a stream: our codec's first frame against smithy's. The
    // codec answers "need more bytes" where smithy reports an error; neither
    // yields a message.
    let mut src = BytesMut::from(&bytes[..]);
    match (FrameCodec::new().decode(&mut src), &theirs) {
        (Ok(Some(ours)), Ok(theirs)) => {
            prop_assert_eq!(&ours, theirs, "first messages differ");
            prop_assert_eq!(src.len(), rest.remaining(), "consumed lengths differ");
        }
        (Ok(Some(ours)), Err(e)) => {
            return Err(fail(format!(
                "codec yields {}, smithy rejects: {e}",
                brief(&ours)
            )));
        }
        (ours, Ok(theirs)) => {
            return Err(fail(format!(
                "smithy reads {} first, codec gives {ours:?}",
                brief(theirs)
            )));
        }
        (Ok(None) | Err(_), Err(_)) => {}
    }
    Ok(())
}

// ===== inputs =====

fn name() -> impl Strategy<Value = StrBytes> {
    prop_oneof![
        // Reserved-looking ASCII names, up to the exact byte limit.
        4 => proptest::string::string_regex(&format!("[a-z:-]{{1,{MAX_HEADER_NAME_LEN}}}"))
            .expect("valid regex"),
        // Any Unicode, cut to the limit on a character boundary.
        1 => proptest::collection::vec(any::<char>(), 1..=80).prop_map(|chars| {
            let mut s = String::new();
            for c in chars {
                if s.len() + c.len_utf8() > MAX_HEADER_NAME_LEN {
                    break;
                }
                s.push(c);
            }
            s
        }),
    ]
    .prop_map(StrBytes::from)
}

/// A byte that is often a header type (0..=9), just past one, or a short length.
fn small_or_any() -> impl Strategy<Value = u8> {
    prop_oneof![0..=12u8, any::<u8>()]
}

fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        9 => proptest::collection::vec(any::<u8>(), 0..64),
        // Near the 32 767-byte limit both implementations share on encode.
        1 => proptest::collection::vec(any::<u8>(), MAX_HEADER_VALUE_LEN - 8..=MAX_HEADER_VALUE_LEN),
    ]
}

fn value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        any::<bool>().prop_map(HeaderValue::Bool),
        any::<i8>().prop_map(HeaderValue::Byte),
        any::<i16>().prop_map(HeaderValue::Int16),
        any::<i32>().prop_map(HeaderValue::Int32),
        any::<i64>().prop_map(HeaderValue::Int64),
        value_bytes().prop_map(|v| HeaderValue::Bytes(Bytes::from(v))),
        value_bytes().prop_map(|v| {
            // Valid UTF-8 of the same length: map every byte into ASCII.
            let s: String = v.iter().map(|b| char::from(b & 0x7f)).collect();
            HeaderValue::String(StrBytes::from(s))
        }),
        "\\PC{0,20}".prop_map(|s| HeaderValue::String(StrBytes::from(s))),
        any::<i64>().prop_map(HeaderValue::Timestamp),
        any::<[u8; 16]>().prop_map(HeaderValue::Uuid),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let headers = proptest::collection::vec(
        (name(), value()).prop_map(|(name, value)| Header { name, value }),
        0..12,
    );
    // Small byte values in the payload matter: a mutation that shortens the
    // headers block makes the payload's first bytes a type byte or a length.
    let payload = prop_oneof![
        19 => proptest::collection::vec(small_or_any(), 0..256),
        // Past the 64 KiB a read buffer commonly holds, without slowing the
        // suite down much.
        1 => proptest::collection::vec(any::<u8>(), 60_000..70_000),
    ];
    (headers, payload).prop_map(|(headers, payload)| Message {
        headers,
        payload: Bytes::from(payload),
    })
}

/// One edit to an encoded frame.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// Overwrite one byte, often with a header type byte or a small length.
    Set(Index, u8),
    /// Cut the buffer short.
    Truncate(Index),
    /// Append bytes, which may make a second, partial frame.
    Append(Vec<u8>),
    /// Move `total_length` by a small amount.
    NudgeTotal(i8),
    /// Move `headers_length` by a small amount.
    NudgeHeaders(i8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 1..=u8::MAX).prop_map(|(i, m)| Mutation::Flip(i, m)),
        3 => (any::<Index>(), small_or_any()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Append),
        2 => nudge().prop_map(Mutation::NudgeTotal),
        2 => nudge().prop_map(Mutation::NudgeHeaders),
    ]
}

fn nudge() -> impl Strategy<Value = i8> {
    prop_oneof![3 => -4..=4i8, 1 => any::<i8>()]
}

fn apply(frame: &mut Vec<u8>, mutation: &Mutation) {
    let nudge = |frame: &mut Vec<u8>, at: usize, by: i8| {
        if frame.len() >= at + 4 {
            let field = &mut frame[at..at + 4];
            let v = u32::from_be_bytes(field.try_into().expect("4 bytes"));
            field.copy_from_slice(&v.wrapping_add_signed(i32::from(by)).to_be_bytes());
        }
    };
    let len = frame.len();
    match mutation {
        Mutation::Flip(i, mask) if len > 0 => frame[i.index(len)] ^= mask,
        Mutation::Set(i, v) if len > 0 => frame[i.index(len)] = *v,
        Mutation::Truncate(i) => frame.truncate(i.index(len + 1)),
        Mutation::Append(tail) => frame.extend_from_slice(tail),
        Mutation::NudgeTotal(by) => nudge(frame, 0, *by),
        Mutation::NudgeHeaders(by) => nudge(frame, 4, *by),
        Mutation::Flip(..) | Mutation::Set(..) => {}
    }
}

/// Recomputes the prelude CRC, and the message CRC where `total_length` says
/// it is, so that a mutation reaches the parsing behind the checksums.
fn fix_crcs(frame: &mut [u8]) {
    if frame.len() < PRELUDE_LEN {
        return;
    }
    let crc = crc32fast::hash(&frame[..8]);
    frame[8..12].copy_from_slice(&crc.to_be_bytes());
    let total = u32::from_be_bytes(frame[..4].try_into().expect("4 bytes")) as usize;
    if (PRELUDE_LEN + 4..=frame.len()).contains(&total) {
        let crc = crc32fast::hash(&frame[..total - 4]);
        frame[total - 4..total].copy_from_slice(&crc.to_be_bytes());
    }
}

/// A frame with correct lengths and CRCs around arbitrary header-block bytes.
fn framed(headers: &[u8], payload: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u32((PRELUDE_LEN + headers.len() + payload.len() + 4) as u32);
    b.put_u32(headers.len() as u32);
    b.put_u32(crc32fast::hash(&b));
    b.put_slice(headers);
    b.put_slice(payload);
    b.put_u32(crc32fast::hash(&b));
    b.freeze()
}

// ===== properties =====

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Well-formed messages: both encoders write the same bytes and both
    /// decoders read back the message.
    #[test]
    fn valid_frames_agree(message in message()) {
        let ours = frame::encode_to_bytes(&message, DEFAULT_MAX_ENCODE_LEN).expect("encodable");
        let mut theirs = Vec::new();
        write_message_to(&to_smithy(&message), &mut theirs).expect("smithy encodes");
        prop_assert_eq!(ours.as_ref(), &theirs[..], "encoders differ");
        let (decoded, _) = frame::decode(ours.clone(), DEFAULT_MAX_DECODE_LEN).expect("decodes");
        prop_assert_eq!(&decoded, &message);
        compare(&ours)?;
    }

    /// Every small change to either length field, checksums repaired: the
    /// boundaries between headers, payload and trailer are where parsers go
    /// wrong, and random edits rarely land exactly on them.
    #[test]
    fn length_edits_agree(message in message()) {
        let encoded = frame::encode_to_bytes(&message, DEFAULT_MAX_ENCODE_LEN).expect("encodable");
        for field in [0, 4] {
            for by in -20..=20 {
                let mut bytes = encoded.to_vec();
                apply(&mut bytes, &if field == 0 {
                    Mutation::NudgeTotal(by)
                } else {
                    Mutation::NudgeHeaders(by)
                });
                fix_crcs(&mut bytes);
                compare(&Bytes::from(bytes))?;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Encoded frames after a few edits, with the checksums repaired or not.
    #[test]
    fn mutated_frames_agree(
        message in message(),
        mutations in proptest::collection::vec(mutation(), 1..4),
        repair in any::<bool>(),
    ) {
        let mut bytes = frame::encode_to_bytes(&message, DEFAULT_MAX_ENCODE_LEN)
            .expect("encodable")
            .to_vec();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        if repair {
            fix_crcs(&mut bytes);
        }
        compare(&Bytes::from(bytes))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Header blocks of random bytes, biased towards small name lengths and
    /// valid type bytes, behind correct checksums.
    #[test]
    fn random_header_blocks_agree(
        block in proptest::collection::vec(small_or_any(), 0..64),
        payload in proptest::collection::vec(small_or_any(), 0..8),
    ) {
        compare(&framed(&block, &payload))?;
    }

    /// Whole buffers of random bytes, mostly rejected by both at the prelude.
    #[test]
    fn random_bytes_agree(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        compare(&Bytes::from(bytes))?;
    }
}

// ===== documented divergences =====

/// The one place the limits differ on value length: 32 768..=65 535 bytes.
#[test]
fn smithy_accepts_values_over_the_crt_limit() {
    let len = MAX_HEADER_VALUE_LEN + 1;
    let mut block = vec![1, b'v', 6];
    block.extend_from_slice(&(len as u16).to_be_bytes());
    block.resize(block.len() + len, 0xab);
    let bytes = framed(&block, b"");
    let theirs = read_message_from(bytes.clone()).expect("smithy accepts");
    assert_eq!(theirs.headers().len(), 1);
    assert!(matches!(
        frame::decode(bytes, DEFAULT_MAX_DECODE_LEN),
        Err(ggipc_protocol::FrameError::HeaderValueTooLong { len: 32768, .. })
    ));
}

#[test]
fn smithy_accepts_more_headers_than_the_crt() {
    let block: Vec<u8> = std::iter::repeat_n([1u8, b'h', 0], MAX_HEADERS + 1)
        .flatten()
        .collect();
    let bytes = framed(&block, b"");
    let theirs = read_message_from(bytes.clone()).expect("smithy accepts");
    assert_eq!(theirs.headers().len(), MAX_HEADERS + 1);
    assert!(matches!(
        frame::decode(bytes, DEFAULT_MAX_DECODE_LEN),
        Err(ggipc_protocol::FrameError::TooManyHeaders { .. })
    ));
    // One fewer is inside both limits, and both read it.
    let block = &block[..block.len() - 3];
    compare(&framed(block, b"")).expect("agree at the limit");
}

#[test]
fn smithy_has_no_maximum_size() {
    let payload = vec![0; 64];
    let bytes = framed(&[], &payload);
    assert!(read_message_from(bytes.clone()).is_ok());
    assert!(matches!(
        frame::decode(bytes.clone(), bytes.len() - 1),
        Err(ggipc_protocol::FrameError::MessageTooLong { .. })
    ));
}

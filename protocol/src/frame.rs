//! AWS event-stream binary framing (`protocol.md` §2).
//!
//! ```text
//! +--------------+----------------+-------------+---------+---------+-------------+
//! | total_length | headers_length | prelude_crc | headers | payload | message_crc |
//! |   u32 BE     |     u32 BE     | crc32 [0,8) |         |         | crc32 [0,-4)|
//! +--------------+----------------+-------------+---------+---------+-------------+
//!  <------------- prelude: 12 bytes ----------->                      <- 4 bytes ->
//! ```
//!
//! Decoding is zero-copy: a decoded [`Message`] holds slices of the frame's
//! buffer, so header names, string values and the payload share one allocation.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::FrameError;

/// Length of the prelude: total length, headers length, prelude CRC.
pub const PRELUDE_LEN: usize = 12;
/// Length of the trailing message CRC.
pub const TRAILER_LEN: usize = 4;
/// The smallest legal message: a prelude and a trailer, no headers, no payload.
pub const MIN_MESSAGE_LEN: usize = PRELUDE_LEN + TRAILER_LEN;
/// The largest message aws-c-event-stream accepts since March 2025 (24 MiB).
pub const DEFAULT_MAX_DECODE_LEN: usize = 24 * 1024 * 1024;
/// What we send at most: peers built before 2025 refuse anything over 16 MiB.
pub const DEFAULT_MAX_ENCODE_LEN: usize = 16 * 1024 * 1024;
/// Header names carry a one-byte length.
pub const MAX_HEADER_NAME_LEN: usize = u8::MAX as usize;
/// String and byte-buffer values: the field is a u16, but every current CRT
/// refuses more than `i16::MAX` in both directions.
pub const MAX_HEADER_VALUE_LEN: usize = i16::MAX as usize;
/// aws-c-event-stream v0.7.1 refuses messages with more headers than this.
pub const MAX_HEADERS: usize = 1024;

const TYPE_BOOL_TRUE: u8 = 0;
const TYPE_BOOL_FALSE: u8 = 1;
const TYPE_BYTE: u8 = 2;
const TYPE_INT16: u8 = 3;
const TYPE_INT32: u8 = 4;
const TYPE_INT64: u8 = 5;
const TYPE_BYTES: u8 = 6;
const TYPE_STRING: u8 = 7;
const TYPE_TIMESTAMP: u8 = 8;
const TYPE_UUID: u8 = 9;

/// UTF-8 text held in a shared [`Bytes`] buffer.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct StrBytes(Bytes);

impl StrBytes {
    /// Wraps a static string without copying it.
    pub const fn from_static(s: &'static str) -> Self {
        Self(Bytes::from_static(s.as_bytes()))
    }

    /// Checks that `bytes` is UTF-8 and wraps it without copying.
    pub fn try_from_bytes(bytes: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Every constructor checks or guarantees UTF-8; the check here costs a
        // scan but keeps the crate free of `unsafe`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for StrBytes {
    fn from(s: String) -> Self {
        Self(Bytes::from(s))
    }
}

impl From<&str> for StrBytes {
    fn from(s: &str) -> Self {
        Self(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl PartialEq<str> for StrBytes {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for StrBytes {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for StrBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for StrBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A header value: one of the ten wire types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 and 1: the value is the type byte itself.
    Bool(bool),
    /// Type 2, signed.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4; every eventstream-RPC header that is not a string has this type.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6, at most [`MAX_HEADER_VALUE_LEN`] bytes.
    Bytes(Bytes),
    /// Type 7, UTF-8, at most [`MAX_HEADER_VALUE_LEN`] bytes.
    String(StrBytes),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: 16 bytes in RFC 4122 order.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The type byte written on the wire.
    pub fn type_byte(&self) -> u8 {
        match self {
            Self::Bool(true) => TYPE_BOOL_TRUE,
            Self::Bool(false) => TYPE_BOOL_FALSE,
            Self::Byte(_) => TYPE_BYTE,
            Self::Int16(_) => TYPE_INT16,
            Self::Int32(_) => TYPE_INT32,
            Self::Int64(_) => TYPE_INT64,
            Self::Bytes(_) => TYPE_BYTES,
            Self::String(_) => TYPE_STRING,
            Self::Timestamp(_) => TYPE_TIMESTAMP,
            Self::Uuid(_) => TYPE_UUID,
        }
    }

    /// The type's name as `cases.json` and `ggipc decode` spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Bool(true) => "bool_true",
            Self::Bool(false) => "bool_false",
            Self::Byte(_) => "byte",
            Self::Int16(_) => "int16",
            Self::Int32(_) => "int32",
            Self::Int64(_) => "int64",
            Self::Bytes(_) => "bytes",
            Self::String(_) => "string",
            Self::Timestamp(_) => "timestamp",
            Self::Uuid(_) => "uuid",
        }
    }

    /// The value if it is an INT32.
    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Self::Int32(v) => Some(*v),
            _ => None,
        }
    }

    /// The value if it is a STRING.
    pub fn as_str_bytes(&self) -> Option<&StrBytes> {
        match self {
            Self::String(v) => Some(v),
            _ => None,
        }
    }

    fn encoded_len(&self) -> usize {
        1 + match self {
            Self::Bool(_) => 0,
            Self::Byte(_) => 1,
            Self::Int16(_) => 2,
            Self::Int32(_) => 4,
            Self::Int64(_) | Self::Timestamp(_) => 8,
            Self::Bytes(b) => 2 + b.len(),
            Self::String(s) => 2 + s.len(),
            Self::Uuid(_) => 16,
        }
    }
}

/// One header: a name and a typed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name; 1 to 255 bytes when encoding (decoding accepts 0, as CES does).
    pub name: StrBytes,
    /// The typed value.
    pub value: HeaderValue,
}

impl Header {
    /// A header with a static name.
    pub fn new(name: &'static str, value: HeaderValue) -> Self {
        Self {
            name: StrBytes::from_static(name),
            value,
        }
    }

    fn encoded_len(&self) -> usize {
        1 + self.name.len() + self.value.encoded_len()
    }
}

/// One event-stream message: headers in wire order and a payload.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Message {
    /// Headers in the order they appear on the wire; duplicates are kept.
    pub headers: Vec<Header>,
    /// The payload, possibly empty.
    pub payload: Bytes,
}

impl Message {
    /// The first header whose name equals `name` exactly.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers
            .iter()
            .find(|h| h.name == *name)
            .map(|h| &h.value)
    }

    /// The encoded size of the headers block.
    pub fn headers_len(&self) -> usize {
        self.headers.iter().map(Header::encoded_len).sum()
    }

    /// The encoded size of the whole message.
    pub fn encoded_len(&self) -> usize {
        MIN_MESSAGE_LEN + self.headers_len() + self.payload.len()
    }
}

/// The prelude and trailer fields of a decoded frame, for tools that show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// `total_length` from the prelude.
    pub total_length: u32,
    /// `headers_length` from the prelude.
    pub headers_length: u32,
    /// The prelude CRC as received (and verified).
    pub prelude_crc: u32,
    /// The message CRC as received (and verified).
    pub message_crc: u32,
}

/// The limits a decoder or encoder enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `total_length` accepted when decoding.
    pub max_decode_len: usize,
    /// Largest message produced when encoding.
    pub max_encode_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_decode_len: DEFAULT_MAX_DECODE_LEN,
            max_encode_len: DEFAULT_MAX_ENCODE_LEN,
        }
    }
}

/// The checked contents of a prelude.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prelude {
    /// Length of the whole message.
    pub total_length: u32,
    /// Length of the headers block.
    pub headers_length: u32,
    /// CRC of the first 8 bytes.
    pub prelude_crc: u32,
}

/// Checks the first 12 bytes of a message: CRC, minimum and maximum length,
/// and that the headers fit. Nothing past the prelude is looked at, so a
/// caller can refuse a frame before buffering its body.
pub fn check_prelude(bytes: &[u8; PRELUDE_LEN], max_len: usize) -> Result<Prelude, FrameError> {
    let total_length = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let headers_length = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let prelude_crc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let computed = crc32fast::hash(&bytes[..8]);
    if computed != prelude_crc {
        return Err(FrameError::PreludeChecksum {
            expected: prelude_crc,
            computed,
        });
    }
    let total = total_length as usize;
    if total < MIN_MESSAGE_LEN {
        return Err(FrameError::MessageTooShort { total_length });
    }
    if total > max_len {
        return Err(FrameError::MessageTooLong {
            total_length: total as u64,
            max: max_len,
        });
    }
    if headers_length as usize > total - MIN_MESSAGE_LEN {
        return Err(FrameError::HeadersLength {
            headers_length,
            total_length,
        });
    }
    Ok(Prelude {
        total_length,
        headers_length,
        prelude_crc,
    })
}

/// Decodes exactly one whole frame held in `frame`.
///
/// `frame` must be the complete message and nothing more; use [`FrameCodec`]
/// on a byte stream.
pub fn decode(frame: Bytes, max_len: usize) -> Result<(Message, FrameInfo), FrameError> {
    let Some(prelude_bytes) = frame.first_chunk::<PRELUDE_LEN>() else {
        return Err(FrameError::Truncated {
            needed: PRELUDE_LEN,
            available: frame.len(),
        });
    };
    let prelude = check_prelude(prelude_bytes, max_len)?;
    let total = prelude.total_length as usize;
    if frame.len() != total {
        return Err(FrameError::Truncated {
            needed: total,
            available: frame.len(),
        });
    }
    decode_body(frame, prelude)
}

/// Decodes a frame whose prelude has already been checked by
/// [`check_prelude`]; `frame.len()` must equal `prelude.total_length`.
fn decode_body(frame: Bytes, prelude: Prelude) -> Result<(Message, FrameInfo), FrameError> {
    let total = frame.len();
    let crc_at = total - TRAILER_LEN;
    let message_crc = u32::from_be_bytes([
        frame[crc_at],
        frame[crc_at + 1],
        frame[crc_at + 2],
        frame[crc_at + 3],
    ]);
    let computed = crc32fast::hash(&frame[..crc_at]);
    if computed != message_crc {
        return Err(FrameError::MessageChecksum {
            expected: message_crc,
            computed,
        });
    }
    let headers_end = PRELUDE_LEN + prelude.headers_length as usize;
    let headers = decode_headers(&frame, PRELUDE_LEN, headers_end)?;
    let payload = frame.slice(headers_end..crc_at);
    Ok((
        Message { headers, payload },
        FrameInfo {
            total_length: prelude.total_length,
            headers_length: prelude.headers_length,
            prelude_crc: prelude.prelude_crc,
            message_crc,
        },
    ))
}

/// Counts the headers in a headers block without checking them, so that the
/// list is allocated once at its final size. A header running past the block
/// or an unknown type ends the count early; the parse that follows reports
/// it. The count stops at [`MAX_HEADERS`], which the parse refuses to exceed,
/// so the reservation is bounded by the block's length and by that cap.
fn count_headers(block: &[u8]) -> usize {
    let mut at = 0;
    let mut count = 0;
    while at < block.len() && count < MAX_HEADERS {
        // Skip the name length byte and the name; `at` is then the type byte.
        at += 1 + block[at] as usize;
        let Some(&type_byte) = block.get(at) else {
            break;
        };
        let value_len = match type_byte {
            TYPE_BOOL_TRUE | TYPE_BOOL_FALSE => 0,
            TYPE_BYTE => 1,
            TYPE_INT16 => 2,
            TYPE_INT32 => 4,
            TYPE_INT64 | TYPE_TIMESTAMP => 8,
            TYPE_UUID => 16,
            TYPE_BYTES | TYPE_STRING => match block.get(at + 1..at + 3) {
                Some(len) => 2 + u16::from_be_bytes([len[0], len[1]]) as usize,
                None => break,
            },
            _ => break,
        };
        at += 1 + value_len;
        count += 1;
    }
    count
}

/// The names and values the RPC layer puts in nearly every frame, as
/// statics. Decoded to a static [`StrBytes`], they skip the UTF-8 check and
/// the atomic reference count a slice of the frame costs on every clone and
/// drop: about a tenth of the broker's CPU on small publishes (perf).
fn interned(raw: &[u8]) -> Option<&'static str> {
    use crate::rpc::{
        APPLICATION_JSON, CONTENT_TYPE, MESSAGE_FLAGS, MESSAGE_TYPE, OPERATION, PROTOCOL_VERSION,
        SERVICE_MODEL_TYPE, STREAM_ID, VERSION,
    };
    const KNOWN: [&str; 9] = [
        MESSAGE_TYPE,
        MESSAGE_FLAGS,
        STREAM_ID,
        OPERATION,
        CONTENT_TYPE,
        SERVICE_MODEL_TYPE,
        VERSION,
        PROTOCOL_VERSION,
        APPLICATION_JSON,
    ];
    if let Some(known) = KNOWN.iter().find(|k| k.as_bytes() == raw) {
        return Some(known);
    }
    let name = raw.strip_prefix(b"aws.greengrass#")?;
    let operation = crate::model::Operation::from_name(std::str::from_utf8(name).ok()?)?;
    Some(operation.wire_name())
}

/// Parses the headers block `frame[start..end]`. Values are slices of `frame`.
fn decode_headers(frame: &Bytes, start: usize, end: usize) -> Result<Vec<Header>, FrameError> {
    let mut headers = Vec::with_capacity(count_headers(&frame[start..end]));
    let mut at = start;
    while at < end {
        if headers.len() == MAX_HEADERS {
            return Err(FrameError::TooManyHeaders { max: MAX_HEADERS });
        }
        let name_len = frame[at] as usize;
        at += 1;
        let name_end = at + name_len;
        // The type byte must follow the name inside the block.
        if name_end >= end {
            return Err(FrameError::HeaderTruncated { offset: at - 1 });
        }
        let name = match interned(&frame[at..name_end]) {
            Some(known) => StrBytes::from_static(known),
            None => StrBytes::try_from_bytes(frame.slice(at..name_end))
                .map_err(|_| FrameError::InvalidUtf8 { offset: at })?,
        };
        let type_byte = frame[name_end];
        at = name_end + 1;
        let fixed = |len: usize| -> Result<&[u8], FrameError> {
            frame
                .get(at..at + len)
                .filter(|_| at + len <= end)
                .ok_or(FrameError::HeaderTruncated { offset: at })
        };
        let (value, consumed) = match type_byte {
            TYPE_BOOL_TRUE => (HeaderValue::Bool(true), 0),
            TYPE_BOOL_FALSE => (HeaderValue::Bool(false), 0),
            TYPE_BYTE => (HeaderValue::Byte(fixed(1)?[0] as i8), 1),
            TYPE_INT16 => (HeaderValue::Int16(fixed(2)?.get_i16()), 2),
            TYPE_INT32 => (HeaderValue::Int32(fixed(4)?.get_i32()), 4),
            TYPE_INT64 => (HeaderValue::Int64(fixed(8)?.get_i64()), 8),
            TYPE_TIMESTAMP => (HeaderValue::Timestamp(fixed(8)?.get_i64()), 8),
            TYPE_UUID => {
                let mut uuid = [0u8; 16];
                uuid.copy_from_slice(fixed(16)?);
                (HeaderValue::Uuid(uuid), 16)
            }
            TYPE_BYTES | TYPE_STRING => {
                let len = fixed(2)?.get_u16() as usize;
                if len > MAX_HEADER_VALUE_LEN {
                    return Err(FrameError::HeaderValueTooLong {
                        len,
                        max: MAX_HEADER_VALUE_LEN,
                    });
                }
                let value_start = at + 2;
                let value_end = value_start + len;
                if value_end > end {
                    return Err(FrameError::HeaderTruncated { offset: at });
                }
                let raw = &frame[value_start..value_end];
                let value = if type_byte == TYPE_STRING {
                    HeaderValue::String(match interned(raw) {
                        Some(known) => StrBytes::from_static(known),
                        None => StrBytes::try_from_bytes(frame.slice(value_start..value_end))
                            .map_err(|_| FrameError::InvalidUtf8 {
                                offset: value_start,
                            })?,
                    })
                } else {
                    HeaderValue::Bytes(frame.slice(value_start..value_end))
                };
                (value, 2 + len)
            }
            other => {
                return Err(FrameError::UnknownHeaderType {
                    type_byte: other,
                    offset: name_end,
                });
            }
        };
        at += consumed;
        headers.push(Header { name, value });
    }
    Ok(headers)
}

/// Checks that `message` can be encoded within `max_len` and returns its
/// encoded length and headers length.
pub fn check_encodable(message: &Message, max_len: usize) -> Result<(usize, usize), FrameError> {
    if message.headers.len() > MAX_HEADERS {
        return Err(FrameError::TooManyHeaders { max: MAX_HEADERS });
    }
    let mut headers_len = 0;
    for header in &message.headers {
        let name_len = header.name.len();
        if name_len == 0 || name_len > MAX_HEADER_NAME_LEN {
            return Err(FrameError::HeaderNameLength { len: name_len });
        }
        let value_len = match &header.value {
            HeaderValue::Bytes(b) => b.len(),
            HeaderValue::String(s) => s.len(),
            _ => 0,
        };
        if value_len > MAX_HEADER_VALUE_LEN {
            return Err(FrameError::HeaderValueTooLong {
                len: value_len,
                max: MAX_HEADER_VALUE_LEN,
            });
        }
        headers_len += header.encoded_len();
    }
    let total = MIN_MESSAGE_LEN as u64 + headers_len as u64 + message.payload.len() as u64;
    if total > max_len as u64 {
        return Err(FrameError::MessageTooLong {
            total_length: total,
            max: max_len,
        });
    }
    Ok((total as usize, headers_len))
}

/// Appends the encoded `message` to `dst`. On error nothing is written.
pub fn encode(message: &Message, max_len: usize, dst: &mut BytesMut) -> Result<(), FrameError> {
    let (total, headers_len) = check_encodable(message, max_len)?;
    dst.reserve(total);
    let start = dst.len();
    // Both lengths fit in u32: `check_encodable` bounds them by `max_len`,
    // and a caller asking for more than 4 GiB gets the checked error below.
    let total32 = u32::try_from(total).map_err(|_| FrameError::MessageTooLong {
        total_length: total as u64,
        max: u32::MAX as usize,
    })?;
    dst.put_u32(total32);
    dst.put_u32(headers_len as u32);
    let prelude_crc = crc32fast::hash(&dst[start..start + 8]);
    dst.put_u32(prelude_crc);
    for header in &message.headers {
        put_header(dst, header);
    }
    dst.put_slice(&message.payload);
    let message_crc = crc32fast::hash(&dst[start..]);
    dst.put_u32(message_crc);
    debug_assert_eq!(dst.len() - start, total);
    Ok(())
}

/// Encodes `message` into a new buffer.
pub fn encode_to_bytes(message: &Message, max_len: usize) -> Result<Bytes, FrameError> {
    let mut dst = BytesMut::new();
    encode(message, max_len, &mut dst)?;
    Ok(dst.freeze())
}

pub(crate) fn put_header(dst: &mut BytesMut, header: &Header) {
    dst.put_u8(header.name.len() as u8);
    dst.put_slice(header.name.as_bytes());
    dst.put_u8(header.value.type_byte());
    match &header.value {
        HeaderValue::Bool(_) => {}
        HeaderValue::Byte(v) => dst.put_i8(*v),
        HeaderValue::Int16(v) => dst.put_i16(*v),
        HeaderValue::Int32(v) => dst.put_i32(*v),
        HeaderValue::Int64(v) | HeaderValue::Timestamp(v) => dst.put_i64(*v),
        HeaderValue::Bytes(b) => {
            dst.put_u16(b.len() as u16);
            dst.put_slice(b);
        }
        HeaderValue::String(s) => {
            dst.put_u16(s.len() as u16);
            dst.put_slice(s.as_bytes());
        }
        HeaderValue::Uuid(u) => dst.put_slice(u),
    }
}

/// A `tokio_util` codec for event-stream messages.
///
/// The decoder is a two-state machine:
///
/// | state         | input                 | action                                     |
/// |---------------|-----------------------|--------------------------------------------|
/// | `Prelude`     | fewer than 12 bytes   | wait                                       |
/// | `Prelude`     | 12 bytes              | check CRC and limits, reserve body → `Body`|
/// | `Body(p)`     | fewer than total bytes| wait                                       |
/// | `Body(p)`     | total bytes           | check message CRC, parse → `Prelude`       |
///
/// A prelude that fails its CRC or exceeds the limit is refused before any
/// memory is reserved for the body. After an error the stream cannot be
/// resynchronised; the connection must be closed.
#[derive(Debug, Clone, Default)]
pub struct FrameCodec {
    limits: Limits,
    state: DecodeState,
}

#[derive(Debug, Clone, Copy, Default)]
enum DecodeState {
    #[default]
    Prelude,
    Body(Prelude),
}

impl FrameCodec {
    /// A codec with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A codec with the given limits.
    pub fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            state: DecodeState::Prelude,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Like [`tokio_util::codec::Decoder::decode`] but also returns the
    /// prelude and trailer fields.
    pub fn decode_with_info(
        &mut self,
        src: &mut BytesMut,
    ) -> Result<Option<(Message, FrameInfo)>, FrameError> {
        let prelude = match self.state {
            DecodeState::Body(prelude) => prelude,
            DecodeState::Prelude => {
                let Some(bytes) = src.first_chunk::<PRELUDE_LEN>() else {
                    return Ok(None);
                };
                let prelude = check_prelude(bytes, self.limits.max_decode_len)?;
                self.state = DecodeState::Body(prelude);
                prelude
            }
        };
        let total = prelude.total_length as usize;
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        self.state = DecodeState::Prelude;
        let frame = src.split_to(total).freeze();
        decode_body(frame, prelude).map(Some)
    }
}

impl tokio_util::codec::Decoder for FrameCodec {
    type Item = Message;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, FrameError> {
        Ok(self.decode_with_info(src)?.map(|(message, _)| message))
    }
}

impl tokio_util::codec::Encoder<&Message> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &Message, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode(item, self.limits.max_encode_len, dst)
    }
}

impl tokio_util::codec::Encoder<Message> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Message, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode(&item, self.limits.max_encode_len, dst)
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::codec::Decoder;

    use super::*;
    use crate::model::Operation;

    fn sample() -> Message {
        Message {
            headers: vec![
                Header::new("s", HeaderValue::String(StrBytes::from_static("x"))),
                Header::new("i", HeaderValue::Int32(7)),
            ],
            payload: Bytes::from_static(b"payload"),
        }
    }

    #[test]
    fn reserved_names_and_known_values_decode_to_statics_others_to_the_frame() {
        let message = Message {
            headers: vec![
                Header::new(
                    crate::rpc::OPERATION,
                    HeaderValue::String(StrBytes::from("aws.greengrass#PublishToTopic")),
                ),
                Header::new(
                    crate::rpc::SERVICE_MODEL_TYPE,
                    HeaderValue::String(StrBytes::from("aws.greengrass#NoSuchOperation")),
                ),
                Header::new("x-custom", HeaderValue::String(StrBytes::from("é"))),
            ],
            payload: Bytes::new(),
        };
        let bytes = encode_to_bytes(&message, DEFAULT_MAX_ENCODE_LEN).unwrap();
        let frame = bytes.as_ptr_range();
        let (decoded, _) = decode(bytes.clone(), usize::MAX).unwrap();
        assert_eq!(decoded, message);
        let in_frame = |s: &StrBytes| frame.contains(&s.as_bytes().as_ptr());
        let HeaderValue::String(op) = &decoded.headers[0].value else {
            panic!()
        };
        assert!(!in_frame(&decoded.headers[0].name) && !in_frame(op));
        assert_eq!(
            op.as_bytes().as_ptr(),
            Operation::PublishToTopic.wire_name().as_ptr()
        );
        let HeaderValue::String(unknown) = &decoded.headers[1].value else {
            panic!()
        };
        assert!(!in_frame(&decoded.headers[1].name) && in_frame(unknown));
        assert!(in_frame(&decoded.headers[2].name));
    }

    #[test]
    fn empty_message_matches_spec_vector() {
        let bytes = encode_to_bytes(&Message::default(), DEFAULT_MAX_ENCODE_LEN).unwrap();
        assert_eq!(
            bytes.as_ref(),
            [
                0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98,
                0xc8, 0xff
            ]
        );
    }

    #[test]
    fn oversized_prelude_is_refused_before_the_body_arrives() {
        let mut codec = FrameCodec::with_limits(Limits {
            max_decode_len: 100,
            max_encode_len: 100,
        });
        let mut prelude = BytesMut::new();
        prelude.put_u32(101);
        prelude.put_u32(0);
        let crc = crc32fast::hash(&prelude);
        prelude.put_u32(crc);
        let capacity_before = prelude.capacity();
        let err = codec.decode(&mut prelude).unwrap_err();
        assert!(matches!(
            err,
            FrameError::MessageTooLong {
                total_length: 101,
                max: 100
            }
        ));
        assert_eq!(prelude.capacity(), capacity_before);
    }

    #[test]
    fn huge_total_length_with_good_crc_reserves_nothing() {
        let mut src = BytesMut::new();
        src.put_u32(u32::MAX);
        src.put_u32(0);
        let crc = crc32fast::hash(&src);
        src.put_u32(crc);
        let err = FrameCodec::new().decode(&mut src).unwrap_err();
        assert!(matches!(err, FrameError::MessageTooLong { .. }));
        assert!(src.capacity() < 1024);
    }

    #[test]
    fn decoder_waits_for_the_whole_frame() {
        let bytes = encode_to_bytes(&sample(), DEFAULT_MAX_ENCODE_LEN).unwrap();
        let mut codec = FrameCodec::new();
        let mut src = BytesMut::new();
        for (i, b) in bytes.iter().enumerate() {
            src.put_u8(*b);
            let out = codec.decode(&mut src).unwrap();
            if i + 1 < bytes.len() {
                assert!(out.is_none(), "decoded early at byte {i}");
            } else {
                assert_eq!(out, Some(sample()));
            }
        }
        assert!(src.is_empty());
    }

    #[test]
    fn encoder_refuses_empty_and_long_names_and_long_values() {
        let mut m = sample();
        m.headers[0].name = StrBytes::from_static("");
        assert!(matches!(
            encode_to_bytes(&m, DEFAULT_MAX_ENCODE_LEN),
            Err(FrameError::HeaderNameLength { len: 0 })
        ));
        m.headers[0].name = StrBytes::from("n".repeat(256));
        assert!(matches!(
            encode_to_bytes(&m, DEFAULT_MAX_ENCODE_LEN),
            Err(FrameError::HeaderNameLength { len: 256 })
        ));
        m.headers[0].name = StrBytes::from_static("n");
        m.headers[0].value = HeaderValue::Bytes(Bytes::from(vec![0; MAX_HEADER_VALUE_LEN + 1]));
        assert!(matches!(
            encode_to_bytes(&m, DEFAULT_MAX_ENCODE_LEN),
            Err(FrameError::HeaderValueTooLong { len: 32768, .. })
        ));
        m.headers[0].value = HeaderValue::Bytes(Bytes::from(vec![0; MAX_HEADER_VALUE_LEN]));
        assert!(encode_to_bytes(&m, DEFAULT_MAX_ENCODE_LEN).is_ok());
    }

    #[test]
    fn encoder_refuses_messages_over_its_limit() {
        let m = Message {
            headers: vec![],
            payload: Bytes::from(vec![0; 100]),
        };
        assert!(matches!(
            encode_to_bytes(&m, 115),
            Err(FrameError::MessageTooLong {
                total_length: 116,
                max: 115
            })
        ));
        assert_eq!(encode_to_bytes(&m, 116).unwrap().len(), 116);
    }

    #[test]
    fn too_many_headers_are_refused_both_ways() {
        let h = Header::new("t", HeaderValue::Bool(true));
        let mut m = Message {
            headers: vec![h; MAX_HEADERS],
            payload: Bytes::new(),
        };
        let ok = encode_to_bytes(&m, DEFAULT_MAX_ENCODE_LEN).unwrap();
        assert_eq!(decode(ok, DEFAULT_MAX_DECODE_LEN).unwrap().0, m);
        m.headers.push(m.headers[0].clone());
        assert!(matches!(
            encode_to_bytes(&m, DEFAULT_MAX_ENCODE_LEN),
            Err(FrameError::TooManyHeaders { .. })
        ));
        // Build the over-long frame by hand to check the decoder's side.
        let block: Vec<u8> = std::iter::repeat_n([1u8, b't', 0], MAX_HEADERS + 1)
            .flatten()
            .collect();
        let frame = raw_frame(&block, b"");
        assert!(matches!(
            decode(frame, DEFAULT_MAX_DECODE_LEN),
            Err(FrameError::TooManyHeaders { .. })
        ));
    }

    /// A frame with valid CRCs around an arbitrary headers block.
    fn raw_frame(headers: &[u8], payload: &[u8]) -> Bytes {
        let mut b = BytesMut::new();
        b.put_u32((MIN_MESSAGE_LEN + headers.len() + payload.len()) as u32);
        b.put_u32(headers.len() as u32);
        let crc = crc32fast::hash(&b);
        b.put_u32(crc);
        b.put_slice(headers);
        b.put_slice(payload);
        let crc = crc32fast::hash(&b);
        b.put_u32(crc);
        b.freeze()
    }

    #[test]
    fn malformed_header_blocks_give_typed_errors() {
        type Check = fn(&FrameError) -> bool;
        let cases: &[(&[u8], Check)] = &[
            // name runs past the block
            (&[5, b'a'], |e| {
                matches!(e, FrameError::HeaderTruncated { .. })
            }),
            // name with no type byte
            (&[1, b'a'], |e| {
                matches!(e, FrameError::HeaderTruncated { .. })
            }),
            // int32 value cut short
            (&[1, b'a', 4, 0, 0], |e| {
                matches!(e, FrameError::HeaderTruncated { .. })
            }),
            // string length beyond the block
            (&[1, b'a', 7, 0, 9, b'x'], |e| {
                matches!(e, FrameError::HeaderTruncated { .. })
            }),
            // string over 32 767 bytes
            (&[1, b'a', 7, 0x80, 0x00], |e| {
                matches!(e, FrameError::HeaderValueTooLong { len: 32768, .. })
            }),
            // type byte 10
            (&[1, b'a', 10], |e| {
                matches!(e, FrameError::UnknownHeaderType { type_byte: 10, .. })
            }),
            // invalid UTF-8 in a string value
            (&[1, b'a', 7, 0, 1, 0xff], |e| {
                matches!(e, FrameError::InvalidUtf8 { .. })
            }),
            // invalid UTF-8 in a name
            (&[1, 0xff, 0], |e| {
                matches!(e, FrameError::InvalidUtf8 { .. })
            }),
        ];
        for (block, check) in cases {
            let err = decode(raw_frame(block, b"tail"), DEFAULT_MAX_DECODE_LEN).unwrap_err();
            assert!(check(&err), "block {block:?} gave {err:?}");
        }
    }

    #[test]
    fn empty_header_name_is_accepted_on_decode() {
        let frame = raw_frame(&[0, 0], b"");
        let (m, _) = decode(frame, DEFAULT_MAX_DECODE_LEN).unwrap();
        assert_eq!(m.headers[0].name, "");
        assert_eq!(m.headers[0].value, HeaderValue::Bool(true));
    }

    #[test]
    fn prelude_errors_are_distinguished() {
        let good = encode_to_bytes(&sample(), DEFAULT_MAX_ENCODE_LEN).unwrap();
        let mut bad = BytesMut::from(&good[..]);
        bad[11] ^= 1;
        assert!(matches!(
            decode(bad.freeze(), DEFAULT_MAX_DECODE_LEN),
            Err(FrameError::PreludeChecksum { .. })
        ));
        let mut bad = BytesMut::from(&good[..]);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            decode(bad.freeze(), DEFAULT_MAX_DECODE_LEN),
            Err(FrameError::MessageChecksum { .. })
        ));
        // total below 16 with a valid prelude CRC
        let mut short = BytesMut::new();
        short.put_u32(15);
        short.put_u32(0);
        let crc = crc32fast::hash(&short);
        short.put_u32(crc);
        assert!(matches!(
            FrameCodec::new().decode(&mut short),
            Err(FrameError::MessageTooShort { total_length: 15 })
        ));
        // headers longer than the frame allows
        let mut hl = BytesMut::new();
        hl.put_u32(20);
        hl.put_u32(5);
        let crc = crc32fast::hash(&hl);
        hl.put_u32(crc);
        assert!(matches!(
            FrameCodec::new().decode(&mut hl),
            Err(FrameError::HeadersLength {
                headers_length: 5,
                total_length: 20
            })
        ));
    }
}

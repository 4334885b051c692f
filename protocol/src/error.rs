//! Errors of the framing and RPC layers.

use std::io;

/// A frame could not be decoded or encoded.
///
/// Every variant is fatal for a byte stream: after it the reader cannot find
/// the next frame boundary, so the connection must be closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The prelude CRC does not match the first eight bytes.
    #[error("prelude checksum mismatch: frame says {expected:#010x}, bytes give {computed:#010x}")]
    PreludeChecksum {
        /// The CRC carried by the frame.
        expected: u32,
        /// The CRC of the bytes received.
        computed: u32,
    },
    /// The message CRC does not match the frame's contents.
    #[error("message checksum mismatch: frame says {expected:#010x}, bytes give {computed:#010x}")]
    MessageChecksum {
        /// The CRC carried by the frame.
        expected: u32,
        /// The CRC of the bytes received.
        computed: u32,
    },
    /// `total_length` is below the 16-byte minimum.
    #[error("total length {total_length} is below the 16-byte minimum")]
    MessageTooShort {
        /// The length the prelude declares.
        total_length: u32,
    },
    /// The message is larger than the configured limit.
    #[error("message of {total_length} bytes exceeds the limit of {max} bytes")]
    MessageTooLong {
        /// The length declared (decoding) or required (encoding).
        total_length: u64,
        /// The limit in force.
        max: usize,
    },
    /// `headers_length` does not fit inside `total_length`.
    #[error("headers length {headers_length} does not fit in a message of {total_length} bytes")]
    HeadersLength {
        /// The declared headers length.
        headers_length: u32,
        /// The declared total length.
        total_length: u32,
    },
    /// A buffer handed to the whole-frame decoder is not exactly one frame.
    #[error("expected {needed} bytes of frame, got {available}")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// A header runs past the end of the headers block.
    #[error("header at offset {offset} runs past the end of the headers block")]
    HeaderTruncated {
        /// Offset in the frame where the damaged header part starts.
        offset: usize,
    },
    /// A string or byte-buffer value is longer than 32 767 bytes.
    #[error("header value of {len} bytes exceeds the limit of {max}")]
    HeaderValueTooLong {
        /// The value's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A header name is empty or longer than 255 bytes (encoding only).
    #[error("header name of {len} bytes is outside 1..=255")]
    HeaderNameLength {
        /// The name's length.
        len: usize,
    },
    /// More than 1024 headers.
    #[error("more than {max} headers")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// A header type byte outside 0..=9.
    #[error("unknown header value type {type_byte} at offset {offset}")]
    UnknownHeaderType {
        /// The type byte.
        type_byte: u8,
        /// Its offset in the frame.
        offset: usize,
    },
    /// A header name or string value is not UTF-8.
    #[error("header text at offset {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Offset of the text in the frame.
        offset: usize,
    },
    /// The underlying transport failed (codec use only).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// Whether the error was found in the prelude or CRCs, which
    /// aws-c-event-stream answers by dropping the connection silently, as
    /// opposed to a damaged headers block, which its RPC layer answers with an
    /// INTERNAL_ERROR message first (`protocol.md` §2.5).
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            Self::PreludeChecksum { .. }
                | Self::MessageChecksum { .. }
                | Self::MessageTooShort { .. }
                | Self::MessageTooLong { .. }
                | Self::HeadersLength { .. }
                | Self::Truncated { .. }
                | Self::Io(_)
        )
    }
}

/// A well-framed message breaks the eventstream-RPC rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// One of `:message-type`, `:message-flags`, `:stream-id` is absent or not INT32.
    #[error("required header {0} is missing or not an int32")]
    MissingHeader(&'static str),
    /// `:message-type` is outside 0..=7.
    #[error("unknown message type {0}")]
    UnknownMessageType(i32),
    /// `:stream-id` is negative.
    #[error("negative stream id {0}")]
    NegativeStreamId(i32),
    /// A message type that only belongs on stream 0 arrived on a stream, or
    /// the other way round.
    #[error("message type {message_type} is not allowed on stream {stream_id}")]
    WrongStream {
        /// The type received.
        message_type: i32,
        /// The stream it came on.
        stream_id: i32,
    },
}

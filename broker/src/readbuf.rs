//! The read buffer of a connection, sized by how the connection behaves.
//!
//! `FramedRead`'s default 8 KiB buffer was 56 % of an idle connection's
//! memory, yet a publisher streaming small frames needs reads that large to
//! take many frames per system call. So a connection starts with a small
//! buffer, grows it to [`BUSY_CAPACITY`] once one read has brought more than
//! one frame, and drops back to a small one when it goes quiet. The decoder
//! is the only place that sees both the buffer and the frame boundaries, so
//! the policy wraps it; `FramedRead` then only ever calls `reserve(1)`,
//! which finds room already there.

use bytes::BytesMut;
use ggipc_protocol::{FrameCodec, FrameError, Message};
use tokio_util::codec::Decoder;

/// Buffer of a connection that sends one frame at a time. A CONNECT or a
/// subscribe from the SDKs fits; a larger frame reserves its full length as
/// soon as its prelude is in.
pub(crate) const IDLE_CAPACITY: usize = 256;

/// Buffer of a connection that pipelines frames: room for about 60
/// 100-byte publishes per read.
pub(crate) const BUSY_CAPACITY: usize = 8 * 1024;

/// [`FrameCodec`] with the buffer policy above.
#[derive(Debug)]
pub(crate) struct AdaptiveCodec {
    inner: FrameCodec,
    /// Frames decoded since the decoder last ran out of bytes.
    since_refill: u32,
    /// Whether the buffer was last sized for a busy connection. (`BytesMut`
    /// tells only the room left after its split-off frames, not the size
    /// of its allocation.)
    large: bool,
}

impl AdaptiveCodec {
    pub(crate) fn new(inner: FrameCodec) -> Self {
        Self {
            inner,
            since_refill: 0,
            large: false,
        }
    }
}

impl Decoder for AdaptiveCodec {
    type Item = Message;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, FrameError> {
        let decoded = self.inner.decode(src)?;
        if decoded.is_some() {
            self.since_refill = self.since_refill.saturating_add(1);
            return Ok(decoded);
        }
        let busy = self.since_refill > 1;
        self.since_refill = 0;
        if src.is_empty() && !busy && self.large {
            // Frames already handed out keep the old allocation alive only
            // as long as they live.
            *src = BytesMut::with_capacity(IDLE_CAPACITY);
            self.large = false;
            return Ok(None);
        }
        // The inner codec has reserved the rest of a partial frame; this
        // only adds read-ahead. `reserve` of a buffer whose frames were all
        // handed out would otherwise size it by its first capacity.
        let want = if busy { BUSY_CAPACITY } else { IDLE_CAPACITY };
        let spare = src.capacity() - src.len();
        if spare < want / 2 {
            src.reserve(want);
        }
        // A frame larger than a busy buffer leaves its whole allocation
        // behind for reuse: give it back too once the connection is quiet.
        self.large |= busy || src.capacity() > BUSY_CAPACITY;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes};
    use ggipc_protocol::frame::{DEFAULT_MAX_ENCODE_LEN, encode_to_bytes};

    use super::*;

    fn frame(payload_len: usize) -> Bytes {
        let message = Message {
            headers: Vec::new(),
            payload: Bytes::from(vec![7u8; payload_len]),
        };
        encode_to_bytes(&message, DEFAULT_MAX_ENCODE_LEN).unwrap()
    }

    /// Decodes everything in `buf`, as `FramedRead` does after a read.
    fn drain(codec: &mut AdaptiveCodec, buf: &mut BytesMut) -> usize {
        let mut n = 0;
        while let Some(m) = codec.decode(buf).unwrap() {
            drop(m);
            n += 1;
        }
        n
    }

    /// A fresh connection that has read the first `len` bytes of `bytes`,
    /// too few for the frame.
    fn first_piece_of(bytes: &[u8], len: usize) -> (AdaptiveCodec, BytesMut) {
        let mut codec = AdaptiveCodec::new(FrameCodec::new());
        let mut buf = BytesMut::with_capacity(IDLE_CAPACITY);
        buf.put_slice(&bytes[..len]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        (codec, buf)
    }

    #[test]
    fn one_frame_at_a_time_keeps_the_buffer_small() {
        let mut codec = AdaptiveCodec::new(FrameCodec::new());
        let mut buf = BytesMut::with_capacity(IDLE_CAPACITY);
        for _ in 0..10 {
            buf.put_slice(&frame(100));
            assert_eq!(drain(&mut codec, &mut buf), 1);
            assert!(buf.capacity() <= IDLE_CAPACITY * 2, "{}", buf.capacity());
        }
    }

    #[test]
    fn pipelined_frames_grow_it_and_quiet_shrinks_it_back() {
        let mut codec = AdaptiveCodec::new(FrameCodec::new());
        let mut buf = BytesMut::with_capacity(IDLE_CAPACITY);
        buf.put_slice(&frame(20));
        buf.put_slice(&frame(20));
        assert_eq!(drain(&mut codec, &mut buf), 2);
        assert!(buf.capacity() >= BUSY_CAPACITY, "{}", buf.capacity());
        // A burst that fills the buffer keeps it large.
        for _ in 0..40 {
            buf.put_slice(&frame(100));
        }
        assert_eq!(drain(&mut codec, &mut buf), 40);
        assert!(buf.capacity() >= BUSY_CAPACITY / 2);
        // Then a single frame per read: the connection is quiet again.
        buf.put_slice(&frame(10));
        assert_eq!(drain(&mut codec, &mut buf), 1);
        assert!(buf.capacity() <= IDLE_CAPACITY, "{}", buf.capacity());
    }

    #[test]
    fn a_single_large_frame_does_not_keep_its_buffer_once_quiet() {
        let bytes = frame(1 << 20);
        let (mut codec, mut buf) = first_piece_of(&bytes, 64);
        buf.put_slice(&bytes[64..]);
        // The frame is handed out and dropped, as the connection does.
        assert_eq!(drain(&mut codec, &mut buf), 1);
        // Quiet: the next small frame arrives alone.
        buf.put_slice(&frame(10));
        assert_eq!(drain(&mut codec, &mut buf), 1);
        assert!(buf.capacity() <= IDLE_CAPACITY, "{}", buf.capacity());
    }

    #[test]
    fn a_large_frame_arriving_in_pieces_is_reserved_whole() {
        let bytes = frame(64 * 1024);
        let (mut codec, mut buf) = first_piece_of(&bytes, 100);
        assert!(buf.capacity() >= bytes.len(), "{}", buf.capacity());
        buf.put_slice(&bytes[100..]);
        let m = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(m.payload.len(), 64 * 1024);
    }
}

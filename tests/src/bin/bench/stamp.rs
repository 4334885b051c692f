//! What every benchmark message carries, and what a receiver learns from it.
//!
//! The first [`HEADER`] bytes of a payload are the publisher's index, its
//! sequence number and the send time; the rest is filler up to the payload
//! size. The same bytes travel through ggipc (as a `binaryMessage`), through
//! mosquitto (as the MQTT payload) and over the floor's socket pair.

use std::sync::OnceLock;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use hdrhistogram::Histogram;

/// Bytes of a payload taken by the stamp: publisher (u32), magic (u32),
/// sequence number (u64), send time in ns (u64), all big-endian.
pub(crate) const HEADER: usize = 24;
const MAGIC: u32 = 0x6767_6270;
const FILLER: u8 = 0x5a;

/// Nanoseconds on the monotonic clock since the first call in this process.
/// Publishers and subscribers live in one process, so their readings
/// compare directly.
pub(crate) fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One message's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) publisher: u32,
    pub(crate) seq: u64,
    pub(crate) sent_ns: u64,
}

/// A payload of `size` bytes (at least [`HEADER`]) stamped with `stamp`.
pub(crate) fn payload(size: usize, stamp: Stamp) -> Bytes {
    let mut buf = BytesMut::with_capacity(size.max(HEADER));
    buf.put_u32(stamp.publisher);
    buf.put_u32(MAGIC);
    buf.put_u64(stamp.seq);
    buf.put_u64(stamp.sent_ns);
    buf.resize(size.max(HEADER), FILLER);
    buf.freeze()
}

/// Writes `stamp` into the first [`HEADER`] bytes of `buf`.
pub(crate) fn write_stamp(buf: &mut [u8], stamp: Stamp) {
    buf[0..4].copy_from_slice(&stamp.publisher.to_be_bytes());
    buf[4..8].copy_from_slice(&MAGIC.to_be_bytes());
    buf[8..16].copy_from_slice(&stamp.seq.to_be_bytes());
    buf[16..24].copy_from_slice(&stamp.sent_ns.to_be_bytes());
}

/// The stamp of a received payload; `None` if it is not one of ours.
pub(crate) fn read_stamp(payload: &[u8]) -> Option<Stamp> {
    let header = payload.get(..HEADER)?;
    let word = |r: std::ops::Range<usize>| -> [u8; 8] { header[r].try_into().unwrap_or([0; 8]) };
    let publisher = u32::from_be_bytes(header[0..4].try_into().ok()?);
    let magic = u32::from_be_bytes(header[4..8].try_into().ok()?);
    (magic == MAGIC).then(|| Stamp {
        publisher,
        seq: u64::from_be_bytes(word(8..16)),
        sent_ns: u64::from_be_bytes(word(16..24)),
    })
}

/// Which sequence numbers of one publisher arrived, and in what order.
#[derive(Debug, Default)]
struct PublisherTrack {
    /// One bit per sequence number seen.
    seen: Vec<u64>,
    distinct: u64,
    duplicates: u64,
    /// Arrivals below the highest sequence number already seen.
    reordered: u64,
    highest: Option<u64>,
}

/// What one subscriber received: latency, and loss, duplication and
/// reordering per publisher.
#[derive(Debug)]
pub(crate) struct Receipts {
    publishers: Vec<PublisherTrack>,
    /// Send-to-receive latency in ns.
    pub(crate) latency: Histogram<u64>,
    /// Payloads without a stamp.
    pub(crate) foreign: u64,
    /// When the last stamped message arrived (ns, [`now_ns`]).
    pub(crate) last_ns: u64,
}

/// A histogram for nanosecond latencies up to a minute, 3 significant
/// digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

impl Receipts {
    pub(crate) fn new() -> Self {
        Self {
            publishers: Vec::new(),
            latency: latency_histogram(),
            foreign: 0,
            last_ns: 0,
        }
    }

    /// Records one received payload; returns its stamp if it has one.
    pub(crate) fn record(&mut self, payload: &[u8]) -> Option<Stamp> {
        let now = now_ns();
        let Some(stamp) = read_stamp(payload) else {
            self.foreign += 1;
            return None;
        };
        self.latency
            .saturating_record(now.saturating_sub(stamp.sent_ns).max(1));
        self.last_ns = now;
        let index = stamp.publisher as usize;
        if self.publishers.len() <= index {
            self.publishers
                .resize_with(index + 1, PublisherTrack::default);
        }
        let track = &mut self.publishers[index];
        let (word, bit) = ((stamp.seq / 64) as usize, stamp.seq % 64);
        if track.seen.len() <= word {
            track.seen.resize(word + 1, 0);
        }
        if track.seen[word] & (1 << bit) != 0 {
            track.duplicates += 1;
            return Some(stamp);
        }
        track.seen[word] |= 1 << bit;
        track.distinct += 1;
        match track.highest {
            Some(h) if stamp.seq < h => track.reordered += 1,
            _ => track.highest = Some(stamp.seq),
        }
        Some(stamp)
    }

    /// Distinct messages received from every publisher together.
    pub(crate) fn distinct(&self) -> u64 {
        self.publishers.iter().map(|p| p.distinct).sum()
    }

    /// Loss, duplicates and reorderings against what each publisher sent.
    pub(crate) fn delivery(&self, sent: &[u64]) -> Delivery {
        let mut d = Delivery::default();
        for (i, &n) in sent.iter().enumerate() {
            let track = self.publishers.get(i);
            let distinct = track.map_or(0, |t| t.distinct);
            d.lost += n.saturating_sub(distinct);
            d.duplicates += track.map_or(0, |t| t.duplicates);
            d.reordered += track.map_or(0, |t| t.reordered);
        }
        d.foreign = self.foreign;
        d
    }
}

/// Delivery faults seen by one or more subscribers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) reordered: u64,
    pub(crate) foreign: u64,
}

impl Delivery {
    pub(crate) fn add(&mut self, other: Self) {
        self.lost += other.lost;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.foreign += other.foreign;
    }
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lost {} dup {} reordered {} foreign {}",
            self.lost, self.duplicates, self.reordered, self.foreign
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_faults_are_counted() {
        let stamp = Stamp {
            publisher: 1,
            seq: 3,
            sent_ns: 5,
        };
        let p = payload(100, stamp);
        assert_eq!(p.len(), 100);
        assert_eq!(read_stamp(&p), Some(stamp));
        let mut buf = p.to_vec();
        write_stamp(&mut buf, Stamp { seq: 4, ..stamp });
        assert_eq!(read_stamp(&buf).unwrap().seq, 4);

        let mut r = Receipts::new();
        for seq in [0, 2, 1, 2, 4] {
            r.record(&payload(30, Stamp { seq, ..stamp }));
        }
        r.record(b"not ours");
        let d = r.delivery(&[0, 6]);
        assert_eq!(
            d,
            Delivery {
                lost: 2,
                duplicates: 1,
                reordered: 1,
                foreign: 1
            }
        );
    }
}

//! The offline spool (`semantics.md` §4.2): every publish to IoT Core waits
//! here until it is on the wire (QoS 0) or acknowledged (QoS 1), in order.
//!
//! Admission follows the nucleus' in-memory spooler: a message larger than
//! the whole spool is refused; otherwise queued QoS 0 messages are evicted
//! oldest first until it fits, and if it still does not fit it is refused.
//! QoS 1 messages are never evicted. While offline, QoS 0 messages are
//! refused unless `keepQos0WhenOffline` is set, and those queued when the
//! link drops are purged.
//!
//! One difference: a message counts its topic and a fixed overhead besides
//! its payload (the nucleus counts the payload only), so that a flood of
//! empty payloads is bounded too.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

/// Bytes a message costs on top of its payload and topic: the entry and
/// its bookkeeping, roughly.
const ENTRY_OVERHEAD: usize = 64;

/// MQTT 5 properties of an outgoing message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishProperties {
    /// User properties, in order.
    pub user_properties: Vec<(String, String)>,
    /// Message expiry interval, seconds.
    pub message_expiry_interval: Option<u32>,
    /// Correlation data.
    pub correlation_data: Option<Bytes>,
    /// Response topic.
    pub response_topic: Option<String>,
    /// Payload format indicator: 0 bytes, 1 UTF-8.
    pub payload_format: Option<u8>,
    /// Content type.
    pub content_type: Option<String>,
}

impl PublishProperties {
    /// Whether no property is set (nothing MQTT 5 specific to send).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    fn cost(&self) -> usize {
        self.user_properties
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + self.correlation_data.as_ref().map_or(0, Bytes::len)
            + self.response_topic.as_ref().map_or(0, String::len)
            + self.content_type.as_ref().map_or(0, String::len)
    }
}

/// A message on its way to IoT Core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The topic, already checked against IoT Core's rules.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// QoS 0 or 1.
    pub qos: u8,
    /// The retain flag.
    pub retain: bool,
    /// MQTT 5 properties (dropped on an MQTT 3.1.1 link).
    pub properties: PublishProperties,
}

impl OutgoingMessage {
    /// What the message counts against the spool's size.
    pub fn cost(&self) -> usize {
        self.payload.len() + self.topic.len() + self.properties.cost() + ENTRY_OVERHEAD
    }
}

/// Why a message was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpoolError {
    /// Offline, QoS 0, `keepQos0WhenOffline` not set (the nucleus' text).
    #[error("Device is offline. Dropping QoS 0 message.")]
    OfflineQos0,
    /// Larger than the whole spool.
    #[error("Message is larger than the size of message spool ({cost} > {max} bytes).")]
    LargerThanSpool {
        /// What the message would count.
        cost: usize,
        /// The spool's size.
        max: usize,
    },
    /// No room even after evicting QoS 0 messages.
    #[error("Message spool is full. Message could not be added. ({used} of {max} bytes held)")]
    Full {
        /// Bytes held.
        used: usize,
        /// The spool's size.
        max: usize,
    },
}

/// A spooled message and its id (ids grow with arrival).
#[derive(Debug, Clone)]
pub struct Entry {
    /// Arrival order.
    pub id: u64,
    /// The message.
    pub message: Arc<OutgoingMessage>,
    /// Times it was sent and failed with a retryable reason.
    pub retries: u32,
}

/// The spool.
#[derive(Debug)]
pub struct Spool {
    max_bytes: usize,
    keep_qos0_offline: bool,
    /// Waiting to be sent, oldest first.
    queue: VecDeque<Entry>,
    /// Handed to the MQTT client, waiting for the write (QoS 0) or the
    /// PUBACK (QoS 1).
    in_flight: BTreeMap<u64, Entry>,
    bytes: usize,
    next_id: u64,
    evicted: u64,
}

impl Spool {
    /// An empty spool of `max_bytes`.
    pub fn new(max_bytes: usize, keep_qos0_offline: bool) -> Self {
        Self {
            max_bytes,
            keep_qos0_offline,
            queue: VecDeque::new(),
            in_flight: BTreeMap::new(),
            bytes: 0,
            next_id: 1,
            evicted: 0,
        }
    }

    /// Admits `message`; `online` says whether the link is up now.
    pub fn push(&mut self, message: OutgoingMessage, online: bool) -> Result<u64, SpoolError> {
        if !online && message.qos == 0 && !self.keep_qos0_offline {
            return Err(SpoolError::OfflineQos0);
        }
        let cost = message.cost();
        if cost > self.max_bytes {
            return Err(SpoolError::LargerThanSpool {
                cost,
                max: self.max_bytes,
            });
        }
        while self.bytes + cost > self.max_bytes {
            let Some(pos) = self.queue.iter().position(|e| e.message.qos == 0) else {
                return Err(SpoolError::Full {
                    used: self.bytes,
                    max: self.max_bytes,
                });
            };
            if let Some(old) = self.queue.remove(pos) {
                self.bytes -= old.message.cost();
                self.evicted += 1;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.bytes += cost;
        self.queue.push_back(Entry {
            id,
            message: Arc::new(message),
            retries: 0,
        });
        Ok(id)
    }

    /// Moves the oldest waiting message in flight and returns it.
    pub fn take_next(&mut self) -> Option<Entry> {
        let entry = self.queue.pop_front()?;
        self.in_flight.insert(entry.id, entry.clone());
        Some(entry)
    }

    /// Puts back a message `take_next` gave but that could not be handed
    /// to the client, ahead of everything else.
    pub fn untake(&mut self, id: u64) {
        if let Some(entry) = self.in_flight.remove(&id) {
            self.queue.push_front(entry);
        }
    }

    /// Forgets a message that is done (written at QoS 0, acknowledged at
    /// QoS 1, or refused for good).
    pub fn done(&mut self, id: u64) -> Option<Entry> {
        let entry = self.in_flight.remove(&id)?;
        self.bytes -= entry.message.cost();
        Some(entry)
    }

    /// Sends a message that failed with a retryable reason again, first.
    /// Returns false, and forgets it, once it failed `max_retries` times
    /// (negative: retry forever).
    pub fn retry(&mut self, id: u64, max_retries: i64) -> bool {
        let Some(mut entry) = self.in_flight.remove(&id) else {
            return false;
        };
        entry.retries += 1;
        if max_retries >= 0 && i64::from(entry.retries) > max_retries {
            self.bytes -= entry.message.cost();
            return false;
        }
        self.queue.push_front(entry);
        true
    }

    /// The link dropped: everything in flight waits again, in its order,
    /// ahead of newer messages; QoS 0 ones are purged unless kept.
    /// Returns how many QoS 0 messages were purged.
    pub fn link_down(&mut self) -> usize {
        while let Some((_, entry)) = self.in_flight.pop_last() {
            self.queue.push_front(entry);
        }
        if self.keep_qos0_offline {
            return 0;
        }
        let before = self.queue.len();
        let mut freed = 0;
        self.queue.retain(|e| {
            let keep = e.message.qos != 0;
            if !keep {
                freed += e.message.cost();
            }
            keep
        });
        self.bytes -= freed;
        before - self.queue.len()
    }

    /// Messages waiting to be sent.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Bytes held (waiting and in flight).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// QoS 0 messages evicted to make room, since the start.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, qos: u8, len: usize) -> OutgoingMessage {
        OutgoingMessage {
            topic: topic.to_owned(),
            payload: Bytes::from(vec![7; len]),
            qos,
            retain: false,
            properties: PublishProperties::default(),
        }
    }

    fn cost(len: usize) -> usize {
        msg("t", 0, len).cost()
    }

    #[test]
    fn offline_qos0_is_refused_unless_kept() {
        let mut spool = Spool::new(10_000, false);
        assert_eq!(
            spool.push(msg("t", 0, 1), false),
            Err(SpoolError::OfflineQos0)
        );
        assert!(spool.push(msg("t", 1, 1), false).is_ok());
        assert!(spool.push(msg("t", 0, 1), true).is_ok());
        let mut kept = Spool::new(10_000, true);
        assert!(kept.push(msg("t", 0, 1), false).is_ok());
    }

    #[test]
    fn full_spool_evicts_qos0_first_then_refuses() {
        let mut spool = Spool::new(cost(100) * 3, false);
        spool.push(msg("t", 1, 100), true).unwrap();
        spool.push(msg("t", 0, 100), true).unwrap();
        spool.push(msg("t", 1, 100), true).unwrap();
        // Room for one more only by evicting the QoS 0 one.
        spool.push(msg("t", 1, 100), true).unwrap();
        assert_eq!(spool.evicted(), 1);
        assert_eq!(spool.waiting(), 3);
        assert!(matches!(
            spool.push(msg("t", 1, 100), true),
            Err(SpoolError::Full { .. })
        ));
        assert!(matches!(
            spool.push(msg("t", 1, 10_000), true),
            Err(SpoolError::LargerThanSpool { .. })
        ));
        assert_eq!(spool.bytes(), cost(100) * 3);
    }

    #[test]
    fn order_is_kept_across_a_link_drop() {
        let mut spool = Spool::new(1 << 20, false);
        for i in 0..5 {
            spool.push(msg(&format!("t{i}"), 1, 1), true).unwrap();
        }
        spool.push(msg("q0", 0, 1), true).unwrap();
        let a = spool.take_next().unwrap();
        let b = spool.take_next().unwrap();
        assert_eq!((a.id, b.id), (1, 2));
        spool.done(a.id);
        assert_eq!(spool.link_down(), 1);
        let order: Vec<String> = std::iter::from_fn(|| spool.take_next())
            .map(|e| e.message.topic.clone())
            .collect();
        assert_eq!(order, ["t1", "t2", "t3", "t4"]);
    }

    #[test]
    fn retries_go_first_and_end() {
        let mut spool = Spool::new(1 << 20, false);
        spool.push(msg("a", 1, 1), true).unwrap();
        spool.push(msg("b", 1, 1), true).unwrap();
        let a = spool.take_next().unwrap();
        assert!(spool.retry(a.id, 1));
        assert_eq!(spool.take_next().unwrap().message.topic, "a");
        assert!(!spool.retry(a.id, 1));
        assert_eq!(spool.take_next().unwrap().message.topic, "b");
        assert_eq!(spool.bytes(), cost(1));
    }

    #[test]
    fn untake_restores_the_head() {
        let mut spool = Spool::new(1 << 20, false);
        spool.push(msg("a", 1, 1), true).unwrap();
        spool.push(msg("b", 1, 1), true).unwrap();
        let a = spool.take_next().unwrap();
        spool.untake(a.id);
        assert_eq!(spool.take_next().unwrap().message.topic, "a");
    }
}

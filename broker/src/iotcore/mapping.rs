//! `mqttTopicMapping` (`semantics.md` §4.6, field case BR-23): messages
//! cross between local pub/sub and IoT Core once, and never loop.
//!
//! - Pubsub → IotCore: a broker listener on the source filter, under the
//!   bridge's own identity and in receive-from-others mode, so messages the
//!   bridge itself injects locally are never sent back up. Messages go up
//!   at QoS 1 with retain cleared, as the MQTT bridge component does.
//! - IotCore → Pubsub: an [`IotCoreListener`] on the source filter at
//!   QoS 1; messages arrive locally as `binaryMessage`.
//! - The peer echoes a message the bridge sent up back down when an
//!   IotCore → Pubsub mapping also covers its topic. Each message sent up
//!   under such a mapping is remembered (topic and payload, for
//!   [`ECHO_WINDOW`]) and its first echo is swallowed, so local
//!   subscribers get the message once. The shortcoming: a different cloud
//!   message with the same topic and payload arriving inside that window
//!   before the echo is the one swallowed; and one that waited in the
//!   spool for longer than the window (offline) has its echo delivered
//!   locally.

use std::collections::VecDeque;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ggipc_protocol::topic::filter_matches;

use super::config::{Side, TopicMapping};
use super::spool::{OutgoingMessage, PublishProperties};
use super::{IncomingMessage, IotCore, IotCoreListener};
use crate::Broker;
use crate::pubsub::{LocalListener, LocalMessage};

/// The identity the bridge publishes and subscribes locally under.
pub(crate) const BRIDGE_COMPONENT: &str = "aws.greengrass.clientdevices.mqtt.Bridge";

/// How long a message sent up waits for its echo.
pub(crate) const ECHO_WINDOW: Duration = Duration::from_secs(30);

/// Most echoes awaited at once; the oldest expectation goes first.
const MAX_ECHOES: usize = 4096;

#[derive(Debug, Default)]
struct Echoes(Mutex<VecDeque<(String, u64, Instant)>>);

fn digest(payload: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

impl Echoes {
    fn expect(&self, topic: &str, payload: &[u8]) {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= MAX_ECHOES {
            q.pop_front();
        }
        q.push_back((topic.to_owned(), digest(payload), Instant::now()));
    }

    fn forget(&self, topic: &str, payload: &[u8]) {
        let d = digest(payload);
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pos) = q.iter().rposition(|(t, h, _)| t == topic && *h == d) {
            q.remove(pos);
        }
    }

    /// Whether `topic`/`payload` is the echo of a message sent up.
    fn take(&self, topic: &str, payload: &[u8]) -> bool {
        let mut q = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while q
            .front()
            .is_some_and(|(_, _, at)| now.duration_since(*at) > ECHO_WINDOW)
        {
            q.pop_front();
        }
        if q.is_empty() {
            return false;
        }
        let d = digest(payload);
        match q.iter().position(|(t, h, _)| t == topic && *h == d) {
            Some(pos) => {
                q.remove(pos);
                true
            }
            None => false,
        }
    }
}

/// Logs a dropped message at most once a second per mapping.
#[derive(Debug, Default)]
struct RateLimit(AtomicU64);

impl RateLimit {
    fn allow(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.0.swap(now, Ordering::Relaxed) != now
    }
}

#[derive(Debug)]
struct ToCloud {
    iot: Weak<IotCore>,
    mapping: TopicMapping,
    /// Source filters of IotCore → Pubsub mappings: a message sent up to a
    /// topic they match will come back down.
    echo_filters: Vec<String>,
    echoes: Arc<Echoes>,
    log: RateLimit,
}

impl LocalListener for ToCloud {
    fn on_message(&self, _publisher: &str, topic: &str, message: &LocalMessage) {
        let Some(iot) = self.iot.upgrade() else {
            return;
        };
        let payload = match message {
            LocalMessage::Json(b) | LocalMessage::Binary(b) => b.clone(),
        };
        let target = format!("{}{topic}", self.mapping.target_topic_prefix);
        let echo = self.echo_filters.iter().any(|f| filter_matches(f, &target));
        if echo {
            self.echoes.expect(&target, &payload);
        }
        let result = iot.publish(OutgoingMessage {
            topic: target.clone(),
            payload: payload.clone(),
            qos: 1,
            retain: false,
            properties: PublishProperties::default(),
        });
        if let Err(e) = result {
            if echo {
                self.echoes.forget(&target, &payload);
            }
            if self.log.allow() {
                tracing::warn!(
                    mapping = %self.mapping.name,
                    topic = %target,
                    error = %e,
                    "mqttTopicMapping: a message for IoT Core was dropped"
                );
            }
        }
    }
}

#[derive(Debug)]
struct ToLocal {
    broker: Weak<Broker>,
    mapping: TopicMapping,
    echoes: Arc<Echoes>,
}

impl IotCoreListener for ToLocal {
    fn on_message(&self, message: &IncomingMessage) {
        if self.echoes.take(&message.topic, &message.payload) {
            tracing::trace!(topic = %message.topic, "mqttTopicMapping: own message echoed back; not injected");
            return;
        }
        let Some(broker) = self.broker.upgrade() else {
            return;
        };
        let target = format!("{}{}", self.mapping.target_topic_prefix, message.topic);
        broker.publish_local(
            BRIDGE_COMPONENT,
            &target,
            &LocalMessage::Binary(Bytes::clone(&message.payload)),
        );
    }

    fn on_subscription_failed(&self, filter: &str, reason: &str) {
        tracing::error!(
            mapping = %self.mapping.name,
            filter,
            reason,
            "mqttTopicMapping: IoT Core refused the subscription; this mapping carries nothing"
        );
    }
}

/// Sets up every mapping of the bridge's configuration.
pub(super) fn start(broker: &Arc<Broker>, iot: &Arc<IotCore>) {
    let echoes = Arc::new(Echoes::default());
    let echo_filters: Vec<String> = iot
        .config()
        .mappings
        .iter()
        .filter(|m| m.source == Side::IotCore)
        .map(|m| m.topic.clone())
        .collect();
    for mapping in &iot.config().mappings {
        match mapping.source {
            Side::Pubsub => {
                let listener = Arc::new(ToCloud {
                    iot: Arc::downgrade(iot),
                    mapping: mapping.clone(),
                    echo_filters: echo_filters.clone(),
                    echoes: echoes.clone(),
                    log: RateLimit::default(),
                });
                broker.subscribe_listener(
                    &mapping.topic,
                    Arc::from(BRIDGE_COMPONENT),
                    true,
                    listener,
                );
            }
            Side::IotCore => {
                let listener = Arc::new(ToLocal {
                    broker: Arc::downgrade(broker),
                    mapping: mapping.clone(),
                    echoes: echoes.clone(),
                });
                match iot.subscribe_listener(&mapping.topic, 1, listener) {
                    Ok(handle) => iot
                        .mappings
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(handle),
                    // The configuration was checked with the same rules.
                    Err(e) => {
                        tracing::error!(mapping = %mapping.name, error = %e, "mqttTopicMapping: bad source filter");
                    }
                }
            }
        }
        tracing::info!(
            mapping = %mapping.name,
            topic = %mapping.topic,
            source = ?mapping.source,
            target = ?mapping.target,
            prefix = %mapping.target_topic_prefix,
            "mqttTopicMapping active"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_is_taken_once() {
        let e = Echoes::default();
        e.expect("cmd/ping", b"x");
        assert!(!e.take("cmd/ping", b"y"));
        assert!(!e.take("cmd/pong", b"x"));
        assert!(e.take("cmd/ping", b"x"));
        assert!(!e.take("cmd/ping", b"x"));
        e.expect("cmd/ping", b"x");
        e.forget("cmd/ping", b"x");
        assert!(!e.take("cmd/ping", b"x"));
    }
}

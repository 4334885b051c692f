//! The IoT Core bridge: the broker's one MQTT connection to AWS IoT Core
//! (or any MQTT broker standing in for it), serving PublishToIoTCore,
//! SubscribeToIoTCore and SubscribeToIoTCoreConnectionStatus
//! (`semantics.md` §4, `protocol.md` §7.4.3, §7.4.4, §7.4.16), topic
//! mappings between local pub/sub and the cloud (§4.6), and an API for
//! subscribers inside the broker ([`IotCore::subscribe_listener`]), which
//! the Lambda launcher's `IOT_CORE` event sources are meant to use.
//!
//! - [`config`]: the `iotCore` section of the deployment.
//! - [`topics`]: AWS IoT Core's topic rules and filter containment.
//! - [`spool`]: the bounded offline spool.
//! - `state`: subscriptions, the spool's drain, and rumqttc's events, under
//!   one lock and free of I/O.
//! - `link`: the rumqttc connection, reconnection and TLS.
//! - `mapping`: `mqttTopicMapping`.
//! - `handlers`: the IPC operations.
//!
//! Started by [`start`] with the broker; without an `iotCore` section the
//! operations answer that the device is not configured for the cloud.
//! The section is read once: a reload (SIGHUP) does not change the link.

pub mod config;
pub(crate) mod handlers;
mod link;
mod mapping;
pub mod spool;
mod state;
pub mod topics;

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use ggipc_protocol::model::{
    ConnectionStatus, ConnectionStatusEvent, IoTCoreConnectionStatusEvent, IoTCoreMessage,
    Operation, Shape,
};

use crate::Broker;
use crate::connection::StreamSink;
use config::{Endpoint, IotCoreConfig};
use spool::{OutgoingMessage, PublishProperties, SpoolError};
pub use state::Stats;
use state::{Attached, Effect, LinkEvent, Sink, State, Wire};
use topics::TopicRuleError;

/// A message received from IoT Core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// The topic it was published to.
    pub topic: String,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it arrived with.
    pub qos: u8,
    /// The retain flag.
    pub retain: bool,
    /// MQTT 5 properties (empty under MQTT 3.1.1).
    pub properties: PublishProperties,
    /// MQTT 5 subscription identifiers it carried.
    pub subscription_ids: Vec<usize>,
}

/// A subscriber inside the broker. Called on the link's task, one message
/// at a time and in order: it must only queue the message and return.
pub trait IotCoreListener: Send + Sync + std::fmt::Debug {
    /// A message on a topic matching the listener's filter.
    fn on_message(&self, message: &IncomingMessage);

    /// The subscription ended: the peer refused it or its SUBACK never
    /// came. No more messages follow.
    fn on_subscription_failed(&self, filter: &str, reason: &str) {
        tracing::warn!(
            filter,
            reason,
            "IoT Core subscription of a broker listener failed"
        );
    }
}

/// Why a publish was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The topic breaks AWS IoT Core's rules.
    #[error("{0}")]
    Topic(#[from] TopicRuleError),
    /// The payload is over `maxMessageSizeInBytes`.
    #[error(
        "the payload is {size} bytes, over the maximum of {max} bytes \
         (iotCore.maxMessageSizeInBytes)"
    )]
    TooLarge {
        /// Payload bytes.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The spool did not take it.
    #[error("{0}")]
    Spool(#[from] SpoolError),
}

/// The bridge. One per broker, shared by the IPC handlers, the mappings
/// and the link task.
#[derive(Debug)]
pub struct IotCore {
    config: Arc<IotCoreConfig>,
    state: Mutex<State>,
    /// Subscriptions of the mappings, held for the broker's life.
    mappings: Mutex<Vec<ListenerSubscription>>,
}

/// A listener's subscription; dropping it unsubscribes.
#[derive(Debug)]
pub struct ListenerSubscription {
    iot: Weak<IotCore>,
    id: u64,
}

impl Drop for ListenerSubscription {
    fn drop(&mut self) {
        if let Some(iot) = self.iot.upgrade() {
            iot.unsubscribe(self.id);
        }
    }
}

impl IotCore {
    /// A bridge for `config`, offline until [`start`] runs its link.
    pub fn new(config: IotCoreConfig) -> Self {
        Self {
            state: Mutex::new(State::new(&config)),
            config: Arc::new(config),
            mappings: Mutex::new(Vec::new()),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &IotCoreConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is plain data updated in small steps; a panic while
        // holding it leaves nothing a later reader would misread badly.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the link is up.
    pub fn is_online(&self) -> bool {
        self.lock().is_online()
    }

    /// Counters since the start.
    pub fn stats(&self) -> Stats {
        self.lock().stats()
    }

    /// Messages waiting, in flight, and bytes held in the spool.
    pub fn spool_usage(&self) -> (usize, usize, usize) {
        self.lock().spool_usage()
    }

    /// Upstream subscriptions: filter, acknowledged QoS, riders.
    pub fn upstream_subscriptions(&self) -> Vec<(String, Option<u8>, usize)> {
        self.lock().carriers()
    }

    /// Checks `message` against IoT Core's rules and the size limit, then
    /// spools it. Success means accepted for delivery, as in the nucleus.
    pub fn publish(&self, message: OutgoingMessage) -> Result<(), PublishError> {
        topics::check_publish(&message.topic, self.config.mqtt5)?;
        if message.payload.len() > self.config.max_message_bytes {
            return Err(PublishError::TooLarge {
                size: message.payload.len(),
                max: self.config.max_message_bytes,
            });
        }
        let effects = self.lock().publish(message)?;
        self.run_effects(effects);
        Ok(())
    }

    /// Subscribes `listener` to `filter` at `qos` (0 or 1). Messages flow
    /// once the peer acknowledged the subscription; a refusal comes to
    /// [`IotCoreListener::on_subscription_failed`]. Dropping the returned
    /// handle unsubscribes. This is the entry point for the Lambda
    /// launcher's `IOT_CORE` event sources.
    pub fn subscribe_listener(
        self: &Arc<Self>,
        filter: &str,
        qos: u8,
        listener: Arc<dyn IotCoreListener>,
    ) -> Result<ListenerSubscription, TopicRuleError> {
        topics::check_subscribe(filter, self.config.mqtt5)?;
        let (attached, effects) =
            self.lock()
                .subscribe(filter, qos.min(1), Sink::Listener(listener));
        let id = match attached {
            Attached::Ready(id) => {
                self.lock().activate(id);
                id
            }
            Attached::Pending(id) => id,
        };
        self.run_effects(effects);
        Ok(ListenerSubscription {
            iot: Arc::downgrade(self),
            id,
        })
    }

    /// Subscribes an IPC stream; see `handlers`.
    fn subscribe_stream(&self, filter: &str, qos: u8, sink: StreamSink) -> Attached {
        let (attached, effects) = self.lock().subscribe(filter, qos, Sink::Stream(sink));
        self.run_effects(effects);
        attached
    }

    fn activate(&self, id: u64) {
        self.lock().activate(id);
    }

    fn unsubscribe(&self, id: u64) {
        let effects = self.lock().unsubscribe(id);
        self.run_effects(effects);
    }

    /// Adds a connection-status watcher and sends it the status now, under
    /// the lock, so no transition overtakes it.
    fn watch_status(&self, sink: StreamSink) -> u64 {
        let mut state = self.lock();
        let (id, online) = state.watch(sink.clone());
        let _ = sink.send_event(IoTCoreConnectionStatusEvent::ID, status_payload(online));
        id
    }

    fn unwatch_status(&self, id: u64) {
        self.lock().unwatch(id);
    }

    fn link_up(&self, wire: Box<dyn Wire>, subscription_ids: bool, receive_maximum: Option<u16>) {
        let effects = self
            .lock()
            .connected(wire, subscription_ids, receive_maximum);
        self.run_effects(effects);
    }

    /// Returns true when the link must reconnect.
    fn link_event(&self, event: LinkEvent) -> bool {
        let (effects, reset) = {
            let mut state = self.lock();
            let effects = state.event(event);
            (effects, state.needs_reset())
        };
        self.run_effects(effects);
        reset
    }

    fn link_down(&self) {
        let effects = self.lock().disconnected();
        self.run_effects(effects);
    }

    fn tick(&self) {
        let effects = self.lock().tick(std::time::Instant::now());
        self.run_effects(effects);
    }

    /// Does what the state asked for, outside its lock.
    fn run_effects(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Respond(sink, id) => {
                    // A control frame: never dropped, so the subscription
                    // cannot start without its response.
                    sink.respond(Operation::SubscribeToIoTCore, Bytes::from_static(b"{}"));
                    self.activate(id);
                }
                Effect::Fail(Sink::Stream(sink), _, error) => sink.send_error(&error),
                Effect::Fail(Sink::Listener(listener), filter, error) => {
                    listener.on_subscription_failed(&filter, error.message().unwrap_or_default());
                }
                Effect::Deliver(message, sinks) => {
                    let mut payload = None;
                    for sink in sinks {
                        match sink {
                            Sink::Stream(sink) => {
                                let payload = payload
                                    .get_or_insert_with(|| state::event_payload(&message))
                                    .clone();
                                // A full queue drops the event; the
                                // connection counts and logs it.
                                let _ = sink.send_event(IoTCoreMessage::ID, payload);
                            }
                            Sink::Listener(listener) => listener.on_message(&message),
                        }
                    }
                }
                Effect::Status(sinks, online) => {
                    let payload = status_payload(online);
                    for sink in sinks {
                        let _ = sink.send_event(IoTCoreConnectionStatusEvent::ID, payload.clone());
                    }
                }
            }
        }
    }
}

fn status_payload(online: bool) -> Bytes {
    IoTCoreConnectionStatusEvent::from(ConnectionStatusEvent {
        status: if online {
            ConnectionStatus::Connected
        } else {
            ConnectionStatus::Disconnected
        },
    })
    .to_payload()
}

impl Broker {
    /// The IoT Core bridge, when the deployment configures one.
    pub fn iot_core(&self) -> Option<&Arc<IotCore>> {
        self.iot_core.get()
    }
}

/// Reads the deployment's `iotCore` section and, if there is one, starts
/// the bridge: its link task, its mappings, and the IPC operations. Must
/// run inside the broker's tokio runtime. Errors name the file and key.
pub fn start(broker: &Arc<Broker>) -> Result<(), String> {
    let deployment = broker.deployment();
    let Some((config, warnings)) =
        config::from_deployment(&deployment).map_err(|e| e.to_string())?
    else {
        tracing::debug!(
            "no iotCore section: IoT Core operations answer that the device is offline"
        );
        return Ok(());
    };
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let tls = match &config.endpoint {
        Endpoint::Tls {
            host,
            port,
            certificate,
            private_key,
            root_ca,
        } => Some(
            link::tls_config(host, *port, certificate, private_key, root_ca)
                .map_err(|e| format!("{}: iotCore.{e}", deployment.file.display()))?,
        ),
        _ => None,
    };
    let target = link::Target::new(&config, tls);
    tracing::info!(
        endpoint = %config.endpoint,
        client_id = %config.client_id,
        mappings = config.mappings.len(),
        "IoT Core bridge starting"
    );
    let iot = Arc::new(IotCore::new(config));
    if broker.iot_core.set(iot.clone()).is_err() {
        return Err("the IoT Core bridge is already started".to_owned());
    }
    mapping::start(broker, &iot);
    tokio::spawn(link::run(iot.clone(), target));
    tokio::spawn(link::tick(Arc::downgrade(&iot)));
    Ok(())
}

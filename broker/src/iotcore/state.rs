//! The bridge's state, behind one lock: the spool, the upstream
//! subscriptions and the local subscriptions they carry, and the
//! bookkeeping that ties rumqttc's events back to them.
//!
//! Nothing here does I/O: requests go to a [`Wire`] (rumqttc's request
//! channel, or a recording fake in the tests) and everything the outside
//! world must hear about comes back as [`Effect`]s, which the caller runs
//! after releasing the lock, so a listener may call back into the bridge.
//!
//! # Upstream subscriptions ("carriers")
//!
//! A local subscription (an IPC stream, a mapping, a Lambda source) rides
//! on exactly one upstream MQTT subscription, its carrier: the upstream
//! subscription of the same filter, or else one whose filter covers it with
//! at least its QoS, or else a new one. So overlapping filters of several
//! components share one subscription on the peer, and a carrier is
//! unsubscribed when its last rider goes.
//!
//! Each received PUBLISH is handed once to every active local subscription
//! whose filter matches its topic. When the peer supports MQTT 5
//! subscription identifiers, each carrier has one and a PUBLISH goes only
//! to the riders of the carriers it names: a peer that sends one copy per
//! matching subscription (mosquitto does under MQTT 5) then still gives
//! each local subscription exactly one copy. Without identifiers (MQTT
//! 3.1.1, or AWS IoT Core, which does not offer them) that is exact only if
//! the peer sends one copy per message when two of our subscriptions
//! overlap without one covering the other (`a/+/c` and `a/b/+`); mosquitto
//! does under 3.1.1, and a peer that does not would duplicate such
//! messages.
//!
//! All of it rides on one MQTT connection. The nucleus opens another
//! connection (`<thing>#2`, …) past 50 subscriptions, AWS IoT Core's limit
//! per connection; here the cloud refuses the 51st distinct upstream filter
//! and its subscribers get that refusal as a `ServiceError`.
//!
//! # Matching rumqttc's events to requests
//!
//! rumqttc numbers packets itself and reports `Outgoing::Publish(pkid)`,
//! `Outgoing::Subscribe(pkid)` and `Outgoing::Unsubscribe(pkid)` in the
//! order it takes requests from its channel. The link makes a new client
//! and event loop for every connection, so that channel only ever holds
//! this connection's requests, and `sent` lists them in the same order:
//! each such event is matched to the head of `sent`. The in-flight window
//! stays below rumqttc's packet-id range, so packet ids never collide
//! (a collision would reorder events); a mismatch anyway asks the link to
//! reconnect, which resends from the spool.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ggipc_protocol::model::IpcError;
use ggipc_protocol::topic::TopicIndex;

#[cfg(test)]
use super::spool::PublishProperties;
use super::spool::{OutgoingMessage, Spool, SpoolError};
use super::topics::covers;
use super::{IncomingMessage, IotCoreListener};
use crate::connection::StreamSink;

/// Drops of the link while a SUBSCRIBE that worked before was unanswered,
/// in a row, after which that subscription is given up (field case BR-16:
/// a peer that closes the connection on a refused SUBSCRIBE must not make
/// the bridge reconnect and resubscribe forever).
const MAX_SUBSCRIBE_STRIKES: u8 = 3;

/// Largest MQTT subscription identifier (a variable byte integer).
const MAX_SUBSCRIPTION_ID: u64 = 268_435_455;

/// Where a local subscription's messages go.
#[derive(Debug, Clone)]
pub(crate) enum Sink {
    /// Events on an IPC stream.
    Stream(StreamSink),
    /// A listener inside the broker (a mapping, a Lambda event source).
    Listener(Arc<dyn IotCoreListener>),
}

/// What the MQTT client made of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Queued for the wire.
    Queued,
    /// Its channel is full (or gone): ask again later.
    Busy,
    /// It will never take this request (a topic it considers invalid).
    Refused,
}

/// Requests to the MQTT client.
pub(crate) trait Wire: Send + Sync + std::fmt::Debug {
    /// Queues a PUBLISH.
    fn publish(&self, message: &OutgoingMessage) -> Taken;
    /// Queues a SUBSCRIBE with an optional subscription identifier.
    fn subscribe(&self, filter: &str, qos: u8, id: Option<usize>) -> Taken;
    /// Queues an UNSUBSCRIBE.
    fn unsubscribe(&self, filter: &str) -> Taken;
}

/// What the link saw, translated from rumqttc's two protocol versions.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// A PUBLISH went on the wire; pkid 0 for QoS 0.
    WrotePublish(u16),
    /// A SUBSCRIBE went on the wire.
    WroteSubscribe(u16),
    /// An UNSUBSCRIBE went on the wire.
    WroteUnsubscribe,
    /// rumqttc holds a publish back for an unacknowledged packet id; never
    /// expected (see the module documentation).
    Collision(u16),
    /// PUBACK; `Err` with the MQTT 5 reason and whether it is final.
    PubAck(u16, Result<(), (String, bool)>),
    /// SUBACK for one filter: the granted QoS or the refusal's reason.
    SubAck(u16, Result<u8, String>),
    /// A message from the peer.
    Message(IncomingMessage),
    /// Nothing the bridge tracks.
    Other,
}

/// Something to do once the lock is released.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Send a SubscribeToIoTCore response on the stream; local subscription
    /// `id` is active from now on.
    Respond(StreamSink, u64),
    /// Tell the subscriber that its subscription ended with `error`.
    Fail(Sink, String, IpcError),
    /// Deliver a message.
    Deliver(Arc<IncomingMessage>, Vec<Sink>),
    /// Tell connection-status watchers.
    Status(Vec<StreamSink>, bool),
}

/// How a subscription request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attached {
    /// An acknowledged upstream subscription already carries it: answer
    /// now, then call [`State::activate`].
    Ready(u64),
    /// It waits for a SUBACK (and perhaps for the link); the answer comes
    /// as an effect.
    Pending(u64),
}

#[derive(Debug)]
struct InflightSubscribe {
    qos: u8,
    /// When the SUBSCRIBE was written; `None` while still in rumqttc's
    /// channel.
    written_at: Option<Instant>,
    /// The operation timeout already failed the riders waiting for it.
    timed_out: bool,
}

#[derive(Debug)]
struct Carrier {
    uid: u64,
    filter: String,
    /// Highest QoS a rider asked for.
    wanted_qos: u8,
    /// The QoS the peer acknowledged on this connection, if subscribed.
    acked_qos: Option<u8>,
    ever_acked: bool,
    inflight: Option<InflightSubscribe>,
    strikes: u8,
    riders: Vec<u64>,
}

#[derive(Debug)]
struct Local {
    /// The filter as requested.
    filter: String,
    /// What topics it matches on the wire (without a `$share/g/` prefix).
    match_filter: String,
    qos: u8,
    carrier: String,
    sink: Sink,
    active: bool,
}

/// Counters for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Successful connections.
    pub connects: u64,
    /// Lost connections.
    pub disconnects: u64,
    /// Messages done upstream (QoS 0 written, QoS 1 acknowledged).
    pub published: u64,
    /// Messages the peer refused for good, or that ran out of retries.
    pub publish_failures: u64,
    /// Messages received from the peer.
    pub received: u64,
    /// Received messages no local subscription took.
    pub unrouted: u64,
    /// QoS 0 messages purged from the spool when the link dropped.
    pub purged_qos0: u64,
    /// SUBSCRIBE packets sent.
    pub subscribes_sent: u64,
    /// UNSUBSCRIBE packets sent.
    pub unsubscribes_sent: u64,
}

#[derive(Debug)]
enum Sent {
    Publish(u64, u8),
    Subscribe(u64),
    Unsubscribe,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct State {
    mqtt5: bool,
    max_in_flight: usize,
    max_publish_retry: i64,
    operation_timeout: Duration,
    wire: Option<Box<dyn Wire>>,
    use_subscription_ids: bool,
    window: usize,
    sent: VecDeque<Sent>,
    publish_pkids: HashMap<u16, u64>,
    subscribe_pkids: HashMap<u16, u64>,
    in_flight: usize,
    spool: Spool,
    carriers: HashMap<String, Carrier>,
    locals: HashMap<u64, Local>,
    index: TopicIndex<()>,
    unsubscribes: VecDeque<String>,
    /// Some carrier may need a SUBSCRIBE.
    scan: bool,
    watchers: HashMap<u64, StreamSink>,
    next_id: u64,
    needs_reset: bool,
    stats: Stats,
}

/// The error a refused or failed subscription ends with, in the nucleus'
/// words ("Subscribe to topic <t> failed with error <reason>").
fn subscribe_error(filter: &str, reason: &str) -> IpcError {
    IpcError::service_with_context(
        format!("Subscribe to topic {filter} failed with error {reason}"),
        serde_json::json!({"reasonString": reason}),
    )
}

impl State {
    /// An offline bridge with an empty spool.
    pub(crate) fn new(config: &super::config::IotCoreConfig) -> Self {
        Self {
            mqtt5: config.mqtt5,
            max_in_flight: usize::from(config.max_in_flight),
            max_publish_retry: config.max_publish_retry,
            operation_timeout: config.operation_timeout,
            wire: None,
            use_subscription_ids: false,
            window: usize::from(config.max_in_flight),
            sent: VecDeque::new(),
            publish_pkids: HashMap::new(),
            subscribe_pkids: HashMap::new(),
            in_flight: 0,
            spool: Spool::new(config.spool_bytes, config.keep_qos0_offline),
            carriers: HashMap::new(),
            locals: HashMap::new(),
            index: TopicIndex::new(),
            unsubscribes: VecDeque::new(),
            scan: false,
            watchers: HashMap::new(),
            next_id: 1,
            needs_reset: false,
            stats: Stats::default(),
        }
    }

    /// Whether the link is up.
    pub(crate) fn is_online(&self) -> bool {
        self.wire.is_some()
    }

    /// Counters.
    pub(crate) fn stats(&self) -> Stats {
        self.stats
    }

    /// Messages in the spool (waiting, in flight) and its bytes.
    pub(crate) fn spool_usage(&self) -> (usize, usize, usize) {
        (
            self.spool.waiting(),
            self.spool.in_flight(),
            self.spool.bytes(),
        )
    }

    /// Upstream subscriptions: filter, acknowledged QoS and rider count.
    pub(crate) fn carriers(&self) -> Vec<(String, Option<u8>, usize)> {
        let mut out: Vec<_> = self
            .carriers
            .values()
            .map(|c| (c.filter.clone(), c.acked_qos, c.riders.len()))
            .collect();
        out.sort();
        out
    }

    /// Whether rumqttc's events no longer match our requests; the link
    /// then starts a new connection.
    pub(crate) fn needs_reset(&self) -> bool {
        self.needs_reset
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Admits a publish into the spool and sends what the window allows.
    pub(crate) fn publish(&mut self, message: OutgoingMessage) -> Result<Vec<Effect>, SpoolError> {
        let online = self.is_online();
        self.spool.push(message, online)?;
        Ok(self.pump())
    }

    /// Adds a local subscription on `filter` (already checked).
    pub(crate) fn subscribe(
        &mut self,
        filter: &str,
        qos: u8,
        sink: Sink,
    ) -> (Attached, Vec<Effect>) {
        let id = self.new_id();
        let carrier_filter = self.choose_carrier(filter, qos);
        let uid = self.new_id();
        let carrier = self
            .carriers
            .entry(carrier_filter.clone())
            .or_insert_with(|| Carrier {
                uid,
                filter: carrier_filter.clone(),
                wanted_qos: qos,
                acked_qos: None,
                ever_acked: false,
                inflight: None,
                strikes: 0,
                riders: Vec::new(),
            });
        carrier.wanted_qos = carrier.wanted_qos.max(qos);
        carrier.riders.push(id);
        let ready = carrier.acked_qos.is_some_and(|q| q >= qos);
        let match_filter = self.match_filter(filter).to_owned();
        self.index.insert(&match_filter, id, ());
        self.locals.insert(
            id,
            Local {
                filter: filter.to_owned(),
                match_filter,
                qos,
                carrier: carrier_filter,
                sink,
                active: false,
            },
        );
        if ready {
            return (Attached::Ready(id), Vec::new());
        }
        self.scan = true;
        (Attached::Pending(id), self.pump())
    }

    /// The filter topics are matched with: a shared subscription
    /// `$share/<group>/<filter>` receives topics of `<filter>`.
    fn match_filter<'f>(&self, filter: &'f str) -> &'f str {
        if self.mqtt5
            && let Some(rest) = filter.strip_prefix("$share/")
            && let Some((_, inner)) = rest.split_once('/')
        {
            return inner;
        }
        filter
    }

    fn choose_carrier(&self, filter: &str, qos: u8) -> String {
        if self.carriers.contains_key(filter) {
            return filter.to_owned();
        }
        // Only an acknowledged covering subscription is shared: riding on
        // a pending one would make this subscription fail if the peer
        // refused the wider filter, though it may well allow this one.
        self.carriers
            .values()
            .filter(|c| c.acked_qos.is_some_and(|q| q >= qos) && covers(&c.filter, filter))
            .map(|c| c.filter.clone())
            .min()
            .unwrap_or_else(|| filter.to_owned())
    }

    /// Starts delivering to local subscription `id` (after its response
    /// was queued).
    pub(crate) fn activate(&mut self, id: u64) {
        if let Some(local) = self.locals.get_mut(&id) {
            local.active = true;
        }
    }

    /// Removes local subscription `id`; its carrier goes when it was the
    /// last rider. Unknown ids are ignored (the subscription may have
    /// failed already).
    pub(crate) fn unsubscribe(&mut self, id: u64) -> Vec<Effect> {
        let Some(local) = self.locals.remove(&id) else {
            return Vec::new();
        };
        self.index.remove(&local.match_filter, id);
        let Some(carrier) = self.carriers.get_mut(&local.carrier) else {
            return Vec::new();
        };
        carrier.riders.retain(|r| *r != id);
        if carrier.riders.is_empty()
            && let Some(carrier) = self.carriers.remove(&local.carrier)
        {
            // Offline, nothing is subscribed on the peer (every connection
            // starts a clean session), so a carrier dropped now never
            // reaches it.
            if self.is_online() && (carrier.acked_qos.is_some() || carrier.inflight.is_some()) {
                self.unsubscribes.push_back(carrier.filter);
            }
        }
        self.pump()
    }

    /// Adds a connection-status watcher; returns its id and the status now.
    pub(crate) fn watch(&mut self, sink: StreamSink) -> (u64, bool) {
        let id = self.new_id();
        self.watchers.insert(id, sink);
        (id, self.is_online())
    }

    /// Removes a watcher.
    pub(crate) fn unwatch(&mut self, id: u64) {
        self.watchers.remove(&id);
    }

    /// The link is up with a fresh session.
    pub(crate) fn connected(
        &mut self,
        wire: Box<dyn Wire>,
        subscription_ids: bool,
        receive_maximum: Option<u16>,
    ) -> Vec<Effect> {
        self.wire = Some(wire);
        self.use_subscription_ids = subscription_ids;
        // Half the peer's receive maximum keeps packet ids far from
        // wrapping onto an unacknowledged one (module documentation).
        self.window = match receive_maximum {
            Some(r) => self.max_in_flight.min(usize::from(r / 2).max(1)),
            None => self.max_in_flight,
        };
        self.needs_reset = false;
        self.stats.connects += 1;
        self.scan = true;
        let mut effects = vec![Effect::Status(
            self.watchers.values().cloned().collect(),
            true,
        )];
        effects.extend(self.pump());
        effects
    }

    /// The link is down (or never came up).
    pub(crate) fn disconnected(&mut self) -> Vec<Effect> {
        let was_online = self.wire.take().is_some();
        self.sent.clear();
        self.publish_pkids.clear();
        self.subscribe_pkids.clear();
        self.unsubscribes.clear();
        self.in_flight = 0;
        self.needs_reset = false;
        let purged = self.spool.link_down();
        self.stats.purged_qos0 += purged as u64;
        let mut effects = Vec::new();
        if !was_online {
            return effects;
        }
        self.stats.disconnects += 1;
        let mut give_up = Vec::new();
        for carrier in self.carriers.values_mut() {
            let unanswered = carrier
                .inflight
                .take()
                .is_some_and(|s| s.written_at.is_some() && !s.timed_out);
            let was_subscribed = carrier.acked_qos.take().is_some();
            if !unanswered || was_subscribed {
                continue;
            }
            // A new subscription of a component fails at once: the
            // component hears why and may ask again. One that worked
            // before, or that only the broker's own listeners (mappings,
            // Lambda sources) ride, gets a few more connections.
            let streams = carrier.riders.iter().any(|id| {
                self.locals
                    .get(id)
                    .is_some_and(|l| matches!(l.sink, Sink::Stream(_)))
            });
            let limit = if carrier.ever_acked || !streams {
                MAX_SUBSCRIBE_STRIKES
            } else {
                1
            };
            carrier.strikes += 1;
            if carrier.strikes >= limit {
                give_up.push(carrier.filter.clone());
            }
        }
        for filter in give_up {
            tracing::warn!(
                filter = %filter,
                "IoT Core: the connection closed while a SUBSCRIBE was unanswered; \
                 the peer may refuse this subscription, so it is not sent again"
            );
            self.fail_carrier(
                &filter,
                &subscribe_error(
                    &filter,
                    "the connection closed before the SUBACK arrived (the peer may refuse \
                     this subscription; it is not sent again)",
                ),
                true,
                &mut effects,
            );
        }
        self.scan = true;
        effects.push(Effect::Status(
            self.watchers.values().cloned().collect(),
            false,
        ));
        effects
    }

    /// Handles one event of the link.
    pub(crate) fn event(&mut self, event: LinkEvent) -> Vec<Effect> {
        let mut effects = Vec::new();
        match event {
            LinkEvent::WrotePublish(pkid) => match self.sent.pop_front() {
                Some(Sent::Publish(id, 0)) => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.spool.done(id);
                    self.stats.published += 1;
                }
                Some(Sent::Publish(id, _)) => {
                    self.publish_pkids.insert(pkid, id);
                }
                other => self.mismatch("PUBLISH", other.as_ref()),
            },
            LinkEvent::WroteSubscribe(pkid) => match self.sent.pop_front() {
                Some(Sent::Subscribe(uid)) => {
                    self.subscribe_pkids.insert(pkid, uid);
                    if let Some(carrier) = self.carriers.values_mut().find(|c| c.uid == uid)
                        && let Some(inflight) = &mut carrier.inflight
                    {
                        inflight.written_at = Some(Instant::now());
                    }
                }
                other => self.mismatch("SUBSCRIBE", other.as_ref()),
            },
            LinkEvent::WroteUnsubscribe => match self.sent.pop_front() {
                Some(Sent::Unsubscribe) => {}
                other => self.mismatch("UNSUBSCRIBE", other.as_ref()),
            },
            LinkEvent::Collision(pkid) => {
                tracing::error!(
                    pkid,
                    "IoT Core: packet id collision in the MQTT client; reconnecting"
                );
                self.needs_reset = true;
            }
            LinkEvent::PubAck(pkid, result) => self.puback(pkid, result),
            LinkEvent::SubAck(pkid, result) => self.suback(pkid, result, &mut effects),
            LinkEvent::Message(message) => self.route(message, &mut effects),
            LinkEvent::Other => {}
        }
        effects.extend(self.pump());
        effects
    }

    fn mismatch(&mut self, what: &str, head: Option<&Sent>) {
        tracing::error!(
            event = what,
            expected = ?head,
            "IoT Core: the MQTT client reported a packet we did not send next; reconnecting"
        );
        self.needs_reset = true;
    }

    fn puback(&mut self, pkid: u16, result: Result<(), (String, bool)>) {
        let Some(id) = self.publish_pkids.remove(&pkid) else {
            return;
        };
        self.in_flight = self.in_flight.saturating_sub(1);
        match result {
            Ok(()) => {
                self.spool.done(id);
                self.stats.published += 1;
            }
            Err((reason, true)) => {
                if let Some(entry) = self.spool.done(id) {
                    tracing::warn!(
                        topic = %entry.message.topic,
                        reason = %reason,
                        "IoT Core refused a publish; it is dropped"
                    );
                }
                self.stats.publish_failures += 1;
            }
            Err((reason, false)) => {
                if !self.spool.retry(id, self.max_publish_retry) {
                    tracing::warn!(
                        reason = %reason,
                        retries = self.max_publish_retry,
                        "IoT Core: a publish failed too often; it is dropped"
                    );
                    self.stats.publish_failures += 1;
                }
            }
        }
    }

    fn suback(&mut self, pkid: u16, result: Result<u8, String>, effects: &mut Vec<Effect>) {
        let Some(uid) = self.subscribe_pkids.remove(&pkid) else {
            return;
        };
        // The carrier may be gone (its riders left); then its UNSUBSCRIBE
        // is already queued behind this SUBSCRIBE.
        let Some(filter) = self
            .carriers
            .values()
            .find(|c| c.uid == uid)
            .map(|c| c.filter.clone())
        else {
            return;
        };
        let Some(carrier) = self.carriers.get_mut(&filter) else {
            return;
        };
        let Some(inflight) = carrier.inflight.take() else {
            return;
        };
        match result {
            Ok(granted) => {
                if granted < inflight.qos {
                    tracing::info!(
                        filter = %filter,
                        asked = inflight.qos,
                        granted,
                        "IoT Core granted a lower QoS"
                    );
                }
                carrier.acked_qos = Some(inflight.qos);
                carrier.ever_acked = true;
                carrier.strikes = 0;
                if carrier.wanted_qos > inflight.qos {
                    self.scan = true;
                }
                let riders = carrier.riders.clone();
                for id in riders {
                    let Some(local) = self.locals.get_mut(&id) else {
                        continue;
                    };
                    if local.active || local.qos > inflight.qos {
                        continue;
                    }
                    match &local.sink {
                        Sink::Stream(sink) => effects.push(Effect::Respond(sink.clone(), id)),
                        Sink::Listener(_) => local.active = true,
                    }
                }
            }
            Err(reason) => {
                tracing::warn!(filter = %filter, reason = %reason, "IoT Core refused a subscription");
                let error = subscribe_error(&filter, &reason);
                match carrier.acked_qos {
                    // A QoS upgrade was refused: the subscription stays at
                    // the old QoS; only those who asked for more fail.
                    Some(acked) => {
                        carrier.wanted_qos = acked;
                        let riders = carrier.riders.clone();
                        for id in riders {
                            if self.locals.get(&id).is_some_and(|l| l.qos > acked) {
                                self.fail_local(id, &error, effects);
                            }
                        }
                    }
                    None => self.fail_carrier(&filter, &error, false, effects),
                }
            }
        }
    }

    /// Ends every rider of `filter`'s carrier with `error` and forgets it.
    fn fail_carrier(
        &mut self,
        filter: &str,
        error: &IpcError,
        offline: bool,
        effects: &mut Vec<Effect>,
    ) {
        let Some(carrier) = self.carriers.remove(filter) else {
            return;
        };
        for id in carrier.riders {
            if let Some(local) = self.locals.remove(&id) {
                self.index.remove(&local.match_filter, id);
                effects.push(Effect::Fail(local.sink, local.filter, error.clone()));
            }
        }
        // A SUBSCRIBE may still be answered on this connection; make sure
        // the peer ends up unsubscribed.
        if !offline && self.is_online() && carrier.inflight.is_some() {
            self.unsubscribes.push_back(carrier.filter);
        }
    }

    fn fail_local(&mut self, id: u64, error: &IpcError, effects: &mut Vec<Effect>) {
        let Some(local) = self.locals.remove(&id) else {
            return;
        };
        self.index.remove(&local.match_filter, id);
        if let Some(carrier) = self.carriers.get_mut(&local.carrier) {
            carrier.riders.retain(|r| *r != id);
            if carrier.riders.is_empty()
                && let Some(carrier) = self.carriers.remove(&local.carrier)
                && self.wire.is_some()
                && (carrier.acked_qos.is_some() || carrier.inflight.is_some())
            {
                self.unsubscribes.push_back(carrier.filter);
            }
        }
        effects.push(Effect::Fail(local.sink, local.filter, error.clone()));
    }

    fn route(&mut self, message: IncomingMessage, effects: &mut Vec<Effect>) {
        self.stats.received += 1;
        let by_id = self.use_subscription_ids && !message.subscription_ids.is_empty();
        let mut sinks = Vec::new();
        let locals = &self.locals;
        let carriers = &self.carriers;
        self.index.visit(&message.topic, |id, ()| {
            let Some(local) = locals.get(&id) else {
                return;
            };
            if !local.active {
                return;
            }
            if by_id {
                let Some(carrier) = carriers.get(&local.carrier) else {
                    return;
                };
                if !message
                    .subscription_ids
                    .contains(&subscription_id(carrier.uid))
                {
                    return;
                }
            }
            sinks.push(local.sink.clone());
        });
        if sinks.is_empty() {
            self.stats.unrouted += 1;
            return;
        }
        effects.push(Effect::Deliver(Arc::new(message), sinks));
    }

    /// Fails subscriptions whose SUBACK is overdue.
    pub(crate) fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        let mut overdue = Vec::new();
        for carrier in self.carriers.values_mut() {
            if let Some(inflight) = &mut carrier.inflight
                && !inflight.timed_out
                && inflight
                    .written_at
                    .is_some_and(|t| now.duration_since(t) >= self.operation_timeout)
            {
                inflight.timed_out = true;
                overdue.push((carrier.filter.clone(), inflight.qos, carrier.riders.clone()));
            }
        }
        for (filter, qos, riders) in overdue {
            let error = IpcError::service(format!(
                "Subscribe to topic {filter} failed: no SUBACK within {} ms",
                self.operation_timeout.as_millis()
            ));
            tracing::warn!(filter = %filter, "IoT Core: SUBACK overdue");
            for id in riders {
                if self
                    .locals
                    .get(&id)
                    .is_some_and(|l| !l.active && l.qos <= qos)
                {
                    self.fail_local(id, &error, &mut effects);
                }
            }
        }
        effects.extend(self.pump());
        effects
    }

    /// Hands the wire what it can take: UNSUBSCRIBEs, SUBSCRIBEs, then
    /// publishes up to the window.
    fn pump(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        let Some(wire) = self.wire.as_deref() else {
            return effects;
        };
        while let Some(filter) = self.unsubscribes.front() {
            match wire.unsubscribe(filter) {
                Taken::Busy => return effects,
                Taken::Queued => {
                    self.sent.push_back(Sent::Unsubscribe);
                    self.stats.unsubscribes_sent += 1;
                }
                Taken::Refused => {}
            }
            self.unsubscribes.pop_front();
        }
        if self.scan {
            let mut refused = Vec::new();
            for carrier in self.carriers.values_mut() {
                if carrier.inflight.is_some()
                    || carrier.acked_qos.is_some_and(|q| q >= carrier.wanted_qos)
                {
                    continue;
                }
                let id = self
                    .use_subscription_ids
                    .then(|| subscription_id(carrier.uid));
                match wire.subscribe(&carrier.filter, carrier.wanted_qos, id) {
                    Taken::Busy => return effects,
                    Taken::Refused => refused.push(carrier.filter.clone()),
                    Taken::Queued => {
                        carrier.inflight = Some(InflightSubscribe {
                            qos: carrier.wanted_qos,
                            written_at: None,
                            timed_out: false,
                        });
                        self.sent.push_back(Sent::Subscribe(carrier.uid));
                        self.stats.subscribes_sent += 1;
                    }
                }
            }
            self.scan = false;
            for filter in refused {
                let error = subscribe_error(&filter, "the MQTT client refused the filter");
                self.fail_carrier(&filter, &error, false, &mut effects);
            }
        }
        let Some(wire) = self.wire.as_deref() else {
            return effects;
        };
        while self.in_flight < self.window {
            let Some(entry) = self.spool.take_next() else {
                break;
            };
            match wire.publish(&entry.message) {
                Taken::Busy => {
                    self.spool.untake(entry.id);
                    break;
                }
                Taken::Refused => {
                    tracing::warn!(topic = %entry.message.topic, "IoT Core: the MQTT client refused a publish; it is dropped");
                    self.spool.done(entry.id);
                    self.stats.publish_failures += 1;
                }
                Taken::Queued => {
                    self.sent
                        .push_back(Sent::Publish(entry.id, entry.message.qos));
                    self.in_flight += 1;
                }
            }
        }
        effects
    }
}

/// The MQTT 5 subscription identifier of carrier `uid`.
fn subscription_id(uid: u64) -> usize {
    usize::try_from(uid % MAX_SUBSCRIPTION_ID + 1).unwrap_or(1)
}

/// An incoming message as an `IoTCoreMessage` event payload.
pub(crate) fn event_payload(message: &IncomingMessage) -> Bytes {
    use ggipc_protocol::model::{
        Blob, IoTCoreMessage, MqttMessage, PayloadFormat, Shape, UserProperty,
    };
    let p = &message.properties;
    let event = IoTCoreMessage::from(MqttMessage {
        topic_name: message.topic.clone(),
        payload: Some(Blob(message.payload.clone())),
        retain: Some(message.retain),
        user_properties: (!p.user_properties.is_empty()).then(|| {
            p.user_properties
                .iter()
                .map(|(k, v)| UserProperty {
                    key: Some(k.clone()),
                    value: Some(v.clone()),
                })
                .collect()
        }),
        message_expiry_interval_seconds: p.message_expiry_interval.map(i64::from),
        correlation_data: p.correlation_data.clone().map(Blob),
        response_topic: p.response_topic.clone(),
        payload_format: Some(if p.payload_format == Some(1) {
            PayloadFormat::Utf8
        } else {
            PayloadFormat::Bytes
        }),
        content_type: p.content_type.clone(),
    });
    event.to_payload()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::super::config::{Endpoint, IotCoreConfig};
    use super::*;

    #[derive(Debug, Default)]
    struct Log {
        requests: Mutex<Vec<String>>,
        refuse: Mutex<bool>,
    }

    #[derive(Debug)]
    struct FakeWire(Arc<Log>);

    impl Wire for FakeWire {
        fn publish(&self, m: &OutgoingMessage) -> Taken {
            self.push(format!("PUB {} q{}", m.topic, m.qos))
        }
        fn subscribe(&self, filter: &str, qos: u8, id: Option<usize>) -> Taken {
            self.push(format!("SUB {filter} q{qos} id{}", id.unwrap_or(0)))
        }
        fn unsubscribe(&self, filter: &str) -> Taken {
            self.push(format!("UNSUB {filter}"))
        }
    }

    impl FakeWire {
        fn push(&self, s: String) -> Taken {
            if *self.0.refuse.lock().unwrap() {
                return Taken::Busy;
            }
            self.0.requests.lock().unwrap().push(s);
            Taken::Queued
        }
    }

    impl Log {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.requests.lock().unwrap())
        }
    }

    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<String>>);

    impl IotCoreListener for Collect {
        fn on_message(&self, message: &IncomingMessage) {
            self.0.lock().unwrap().push(message.topic.clone());
        }
    }

    fn state(mqtt5: bool) -> (State, Arc<Log>) {
        let mut config = IotCoreConfig::new(Endpoint::Unix("/nowhere".into()), "test");
        config.mqtt5 = mqtt5;
        (State::new(&config), Arc::new(Log::default()))
    }

    fn msg(topic: &str, qos: u8) -> OutgoingMessage {
        OutgoingMessage {
            topic: topic.into(),
            payload: Bytes::from_static(b"x"),
            qos,
            retain: false,
            properties: PublishProperties {
                content_type: Some("text/plain".into()),
                ..PublishProperties::default()
            },
        }
    }

    fn incoming(topic: &str, ids: Vec<usize>) -> LinkEvent {
        LinkEvent::Message(IncomingMessage {
            topic: topic.into(),
            payload: Bytes::from_static(b"m"),
            qos: 1,
            retain: false,
            properties: PublishProperties::default(),
            subscription_ids: ids,
        })
    }

    fn listener() -> (Arc<Collect>, Sink) {
        let c = Arc::new(Collect::default());
        (c.clone(), Sink::Listener(c))
    }

    fn run(effects: Vec<Effect>) {
        for e in effects {
            if let Effect::Deliver(m, sinks) = e {
                for s in sinks {
                    if let Sink::Listener(l) = s {
                        l.on_message(&m);
                    }
                }
            }
        }
    }

    #[test]
    fn publishes_wait_offline_and_go_in_order_within_the_window() {
        let (mut s, log) = state(true);
        for i in 0..8 {
            s.publish(msg(&format!("t/{i}"), 1)).unwrap();
        }
        assert!(matches!(
            s.publish(msg("q0", 0)),
            Err(SpoolError::OfflineQos0)
        ));
        s.connected(Box::new(FakeWire(log.clone())), true, None);
        assert_eq!(
            log.take(),
            [
                "PUB t/0 q1",
                "PUB t/1 q1",
                "PUB t/2 q1",
                "PUB t/3 q1",
                "PUB t/4 q1"
            ]
        );
        for pkid in 1..=5 {
            s.event(LinkEvent::WrotePublish(pkid));
        }
        s.event(LinkEvent::PubAck(1, Ok(())));
        assert_eq!(log.take(), ["PUB t/5 q1"]);
        // The link drops with four unacknowledged: they go again, first.
        s.disconnected();
        s.connected(Box::new(FakeWire(log.clone())), true, None);
        assert_eq!(
            log.take(),
            [
                "PUB t/1 q1",
                "PUB t/2 q1",
                "PUB t/3 q1",
                "PUB t/4 q1",
                "PUB t/5 q1"
            ]
        );
        assert_eq!(s.stats().published, 1);
    }

    #[test]
    fn overlapping_filters_share_one_upstream_subscription() {
        let (mut s, log) = state(false);
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        let (a, sink_a) = listener();
        let Attached::Pending(_) = s.subscribe("dup/#", 1, sink_a).0 else {
            panic!("first subscription waits for its SUBACK");
        };
        assert_eq!(log.take(), ["SUB dup/# q1 id0"]);
        s.event(LinkEvent::WroteSubscribe(1));
        s.event(LinkEvent::SubAck(1, Ok(1)));
        let (b, sink_b) = listener();
        let Attached::Ready(b_id) = s.subscribe("dup/x", 1, sink_b).0 else {
            panic!("covered by an acknowledged subscription");
        };
        s.activate(b_id);
        assert!(log.take().is_empty(), "no second SUBSCRIBE");
        run(s.event(incoming("dup/x", vec![])));
        run(s.event(incoming("dup/y", vec![])));
        assert_eq!(*a.0.lock().unwrap(), ["dup/x", "dup/y"]);
        assert_eq!(*b.0.lock().unwrap(), ["dup/x"]);
        // The wide one leaves: the narrow one still rides on it.
        s.unsubscribe(1);
        assert!(log.take().is_empty());
        s.unsubscribe(b_id);
        assert_eq!(log.take(), ["UNSUB dup/#"]);
    }

    #[test]
    fn subscription_ids_give_one_copy_per_rider() {
        let (mut s, log) = state(true);
        s.connected(Box::new(FakeWire(log.clone())), true, None);
        let (narrow, sink_n) = listener();
        s.subscribe("dup/x", 1, sink_n);
        let (wide, sink_w) = listener();
        s.subscribe("dup/#", 1, sink_w);
        let subs = log.take();
        assert_eq!(subs.len(), 2, "{subs:?}");
        s.event(LinkEvent::WroteSubscribe(1));
        s.event(LinkEvent::WroteSubscribe(2));
        s.event(LinkEvent::SubAck(1, Ok(1)));
        s.event(LinkEvent::SubAck(2, Ok(1)));
        let id_of = |f: &str| -> usize {
            let line = subs
                .iter()
                .find(|l| l.starts_with(&format!("SUB {f} ")))
                .unwrap();
            line.rsplit("id").next().unwrap().parse().unwrap()
        };
        // The peer sends one copy per matching subscription.
        run(s.event(incoming("dup/x", vec![id_of("dup/x")])));
        run(s.event(incoming("dup/x", vec![id_of("dup/#")])));
        assert_eq!(narrow.0.lock().unwrap().len(), 1);
        assert_eq!(wide.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_pending_wider_filter_is_not_shared() {
        let (mut s, log) = state(false);
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        let (_, wide) = listener();
        s.subscribe("#", 1, wide);
        let (got, narrow) = listener();
        s.subscribe("a/b", 1, narrow);
        assert_eq!(log.take(), ["SUB # q1 id0", "SUB a/b q1 id0"]);
        s.event(LinkEvent::WroteSubscribe(1));
        s.event(LinkEvent::WroteSubscribe(2));
        let effects = s.event(LinkEvent::SubAck(1, Err("NotAuthorized".into())));
        assert!(matches!(&effects[..], [Effect::Fail(_, f, _)] if f == "#"));
        s.event(LinkEvent::SubAck(2, Ok(1)));
        run(s.event(incoming("a/b", vec![])));
        assert_eq!(*got.0.lock().unwrap(), ["a/b"]);
    }

    #[test]
    fn a_subscription_dropped_offline_never_reaches_the_peer() {
        let (mut s, log) = state(false);
        let (_, sink) = listener();
        let Attached::Pending(id) = s.subscribe("gone/#", 0, sink).0 else {
            panic!()
        };
        let (_, keep) = listener();
        s.subscribe("kept", 0, keep);
        s.unsubscribe(id);
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        assert_eq!(log.take(), ["SUB kept q0 id0"]);
    }

    #[test]
    fn refused_subscriptions_fail_and_are_not_resent() {
        let (mut s, log) = state(false);
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        let (_, sink) = listener();
        s.subscribe("forbidden/#", 1, sink);
        s.event(LinkEvent::WroteSubscribe(1));
        let effects = s.event(LinkEvent::SubAck(1, Err("Failure".into())));
        assert!(matches!(&effects[..], [Effect::Fail(_, f, _)] if f == "forbidden/#"));
        log.take();
        s.disconnected();
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        assert!(log.take().is_empty());
    }

    #[test]
    fn a_connection_closed_on_subscribe_does_not_loop() {
        let (mut s, log) = state(false);
        // A listener's subscription gets a few connections before it is
        // given up.
        let (_, sink) = listener();
        s.subscribe("forbidden/#", 1, sink);
        for round in 1..=MAX_SUBSCRIBE_STRIKES {
            s.connected(Box::new(FakeWire(log.clone())), false, None);
            assert_eq!(log.take(), ["SUB forbidden/# q1 id0"], "round {round}");
            s.event(LinkEvent::WroteSubscribe(1));
            let effects = s.disconnected();
            let failed = effects.iter().any(|e| matches!(e, Effect::Fail(..)));
            assert_eq!(failed, round == MAX_SUBSCRIBE_STRIKES, "round {round}");
        }
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        assert!(log.take().is_empty());
    }

    #[test]
    fn subscriptions_are_restored_after_a_reconnect() {
        let (mut s, log) = state(false);
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        let (got, sink) = listener();
        s.subscribe("a/+", 1, sink);
        s.event(LinkEvent::WroteSubscribe(1));
        s.event(LinkEvent::SubAck(1, Ok(1)));
        log.take();
        s.disconnected();
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        assert_eq!(log.take(), ["SUB a/+ q1 id0"]);
        s.event(LinkEvent::WroteSubscribe(1));
        s.event(LinkEvent::SubAck(1, Ok(1)));
        run(s.event(incoming("a/b", vec![])));
        assert_eq!(got.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_full_channel_is_retried_on_the_next_event() {
        let (mut s, log) = state(false);
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        *log.refuse.lock().unwrap() = true;
        s.publish(msg("a", 1)).unwrap();
        assert!(log.take().is_empty());
        *log.refuse.lock().unwrap() = false;
        s.event(LinkEvent::Other);
        assert_eq!(log.take(), ["PUB a q1"]);
    }

    #[test]
    fn a_mismatched_event_asks_for_a_reset() {
        let (mut s, log) = state(false);
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        s.publish(msg("a", 1)).unwrap();
        s.event(LinkEvent::WroteSubscribe(1));
        assert!(s.needs_reset());
    }

    #[test]
    fn overdue_subacks_fail_the_waiting_subscribers() {
        let (mut s, log) = state(false);
        s.connected(Box::new(FakeWire(log.clone())), false, None);
        let (_, sink) = listener();
        s.subscribe("slow", 1, sink);
        s.event(LinkEvent::WroteSubscribe(1));
        let later = Instant::now() + Duration::from_secs(31);
        let effects = s.tick(later);
        assert!(matches!(&effects[..], [Effect::Fail(..)]));
        assert_eq!(log.take().last().map(String::as_str), Some("UNSUB slow"));
    }
}

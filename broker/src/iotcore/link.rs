//! The MQTT connection: rumqttc for MQTT 3.1.1 or 5 over TCP, TLS or a
//! Unix socket, reconnection with capped exponential backoff and jitter,
//! and the translation of rumqttc's events for [`State`](super::state).
//!
//! Every connection attempt gets a new rumqttc client and event loop: when
//! a connection drops, requests still in the old client's channel die with
//! it, and the bridge resends from its own spool and subscription table
//! (each connection is a clean session, so every live subscription is
//! restored after a reconnect). The task only ever awaits `poll()` and
//! never cancels it: rumqttc may be halfway through writing a packet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5 as v5b;
use rumqttc::{Outgoing, TlsConfiguration, Transport};

use super::IncomingMessage;
use super::IotCore;
use super::config::{Endpoint, IotCoreConfig, Reconnect};
use super::spool::{OutgoingMessage, PublishProperties};
use super::state::{LinkEvent, Taken, Wire};

/// Requests rumqttc's channel holds beyond the publish window: room for a
/// burst of SUBSCRIBEs after a reconnect. When full, the bridge retries on
/// the next event.
const CHANNEL_SLACK: usize = 256;

/// Bytes an MQTT packet may have beyond its payload (topic, properties).
const PACKET_OVERHEAD: usize = 64 * 1024;

/// ALPN protocol AWS IoT Core wants for MQTT with client certificates on
/// port 443.
const AWS_ALPN: &[u8] = b"x-amzn-mqtt-ca";

/// Builds the rustls configuration for mutual TLS. Called at start, so a
/// missing or malformed file stops the broker with the key at fault; errors
/// name the file, never its content.
pub(crate) fn tls_config(
    host: &str,
    port: u16,
    certificate: &std::path::Path,
    private_key: &std::path::Path,
    root_ca: &std::path::Path,
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let certs = CertificateDer::pem_file_iter(certificate)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| {
            format!(
                "certificateFilePath: cannot read {}: {e}",
                certificate.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "certificateFilePath: no certificate in {}",
            certificate.display()
        ));
    }
    // The error of a key file says what went wrong reading it (missing,
    // no PEM key section); it never includes the key.
    let key = PrivateKeyDer::from_pem_file(private_key).map_err(|e| {
        format!(
            "privateKeyPath: cannot read a private key from {}: {e}",
            private_key.display()
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_file_iter(root_ca)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("rootCaPath: cannot read {}: {e}", root_ca.display()))?;
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| format!("rootCaPath: bad certificate in {}: {e}", root_ca.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "rootCaPath: no certificate in {}",
            root_ca.display()
        ));
    }
    ServerName::try_from(host.to_owned())
        .map_err(|e| format!("endpoint: {host:?} is not a valid server name: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("privateKeyPath: the key does not suit the certificate: {e}"))?;
    if port == 443 {
        config.alpn_protocols = vec![AWS_ALPN.to_vec()];
    }
    Ok(Arc::new(config))
}

/// How to reach the peer, prepared once.
#[derive(Clone)]
pub(crate) struct Target {
    host: String,
    port: u16,
    transport: Transport,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The transport for `config`; `tls` is the prepared TLS configuration
    /// for an `mqtts` endpoint.
    pub(crate) fn new(config: &IotCoreConfig, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        match (&config.endpoint, tls) {
            (Endpoint::Tls { host, port, .. }, Some(tls)) => Self {
                host: host.clone(),
                port: *port,
                transport: Transport::Tls(TlsConfiguration::Rustls(tls)),
            },
            (Endpoint::Tcp { host, port } | Endpoint::Tls { host, port, .. }, _) => Self {
                host: host.clone(),
                port: *port,
                transport: Transport::Tcp,
            },
            (Endpoint::Unix(path), _) => Self {
                host: path.display().to_string(),
                port: 0,
                transport: Transport::Unix,
            },
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::V4(_) => "Client::V4",
            Self::V5(_) => "Client::V5",
        })
    }
}

/// rumqttc's client of either protocol version.
enum Client {
    V4(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

// Boxed: the two event loops differ in size, and there is one per
// connection attempt.
enum Events {
    V4(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

fn qos4(qos: u8) -> rumqttc::QoS {
    if qos == 0 {
        rumqttc::QoS::AtMostOnce
    } else {
        rumqttc::QoS::AtLeastOnce
    }
}

fn qos5(qos: u8) -> rumqttc::v5::mqttbytes::QoS {
    if qos == 0 {
        rumqttc::v5::mqttbytes::QoS::AtMostOnce
    } else {
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce
    }
}

fn taken<E>(result: Result<(), E>) -> Taken {
    match result {
        Ok(()) => Taken::Queued,
        Err(_) => Taken::Busy,
    }
}

impl Wire for Client {
    fn publish(&self, m: &OutgoingMessage) -> Taken {
        // rumqttc refuses wildcards in topics (and we never send one); a
        // refusal for that reason must not look like a full channel.
        if m.topic.contains(['+', '#']) {
            return Taken::Refused;
        }
        match self {
            Self::V4(c) => taken(c.try_publish(
                m.topic.as_str(),
                qos4(m.qos),
                m.retain,
                Vec::from(m.payload.clone()),
            )),
            Self::V5(c) => {
                let p = &m.properties;
                if p.is_empty() {
                    return taken(c.try_publish(
                        m.topic.as_str(),
                        qos5(m.qos),
                        m.retain,
                        m.payload.clone(),
                    ));
                }
                let properties = v5b::PublishProperties {
                    payload_format_indicator: p.payload_format,
                    message_expiry_interval: p.message_expiry_interval,
                    topic_alias: None,
                    response_topic: p.response_topic.clone(),
                    correlation_data: p.correlation_data.clone(),
                    user_properties: p.user_properties.clone(),
                    subscription_identifiers: Vec::new(),
                    content_type: p.content_type.clone(),
                };
                taken(c.try_publish_with_properties(
                    m.topic.as_str(),
                    qos5(m.qos),
                    m.retain,
                    m.payload.clone(),
                    properties,
                ))
            }
        }
    }

    fn subscribe(&self, filter: &str, qos: u8, id: Option<usize>) -> Taken {
        if !rumqttc::valid_filter(filter) {
            return Taken::Refused;
        }
        match self {
            Self::V4(c) => taken(c.try_subscribe(filter, qos4(qos))),
            Self::V5(c) => match id {
                Some(id) => taken(c.try_subscribe_with_properties(
                    filter,
                    qos5(qos),
                    v5b::SubscribeProperties {
                        id: Some(id),
                        user_properties: Vec::new(),
                    },
                )),
                None => taken(c.try_subscribe(filter, qos5(qos))),
            },
        }
    }

    fn unsubscribe(&self, filter: &str) -> Taken {
        match self {
            Self::V4(c) => taken(c.try_unsubscribe(filter)),
            Self::V5(c) => taken(c.try_unsubscribe(filter)),
        }
    }
}

impl Clone for Client {
    fn clone(&self) -> Self {
        match self {
            Self::V4(c) => Self::V4(c.clone()),
            Self::V5(c) => Self::V5(c.clone()),
        }
    }
}

/// What one `poll()` gave.
enum Polled {
    Connected {
        subscription_ids: bool,
        receive_maximum: Option<u16>,
    },
    /// The peer said why it closes (MQTT 5 DISCONNECT).
    Closing(String),
    Event(LinkEvent),
}

fn outgoing(o: Outgoing) -> LinkEvent {
    match o {
        Outgoing::Publish(pkid) => LinkEvent::WrotePublish(pkid),
        Outgoing::Subscribe(pkid) => LinkEvent::WroteSubscribe(pkid),
        Outgoing::Unsubscribe(_) => LinkEvent::WroteUnsubscribe,
        Outgoing::AwaitAck(pkid) => LinkEvent::Collision(pkid),
        _ => LinkEvent::Other,
    }
}

impl Events {
    async fn poll(&mut self) -> Result<Polled, String> {
        match self {
            Self::V4(events) => {
                use rumqttc::{Event, Packet, SubscribeReasonCode};
                let event = events.poll().await.map_err(|e| e.to_string())?;
                Ok(match event {
                    Event::Incoming(Packet::ConnAck(_)) => Polled::Connected {
                        subscription_ids: false,
                        receive_maximum: None,
                    },
                    Event::Incoming(Packet::Publish(p)) => {
                        Polled::Event(LinkEvent::Message(IncomingMessage {
                            topic: p.topic,
                            payload: p.payload,
                            qos: u8::from(p.qos != rumqttc::QoS::AtMostOnce),
                            retain: p.retain,
                            properties: PublishProperties::default(),
                            subscription_ids: Vec::new(),
                        }))
                    }
                    Event::Incoming(Packet::PubAck(ack)) => {
                        Polled::Event(LinkEvent::PubAck(ack.pkid, Ok(())))
                    }
                    Event::Incoming(Packet::SubAck(ack)) => {
                        let result = match ack.return_codes.first() {
                            Some(SubscribeReasonCode::Success(q)) => {
                                Ok(u8::from(*q != rumqttc::QoS::AtMostOnce))
                            }
                            Some(SubscribeReasonCode::Failure) => Err("Failure (0x80)".to_owned()),
                            None => Err("an empty SUBACK".to_owned()),
                        };
                        Polled::Event(LinkEvent::SubAck(ack.pkid, result))
                    }
                    Event::Incoming(_) => Polled::Event(LinkEvent::Other),
                    Event::Outgoing(o) => Polled::Event(outgoing(o)),
                })
            }
            Self::V5(events) => {
                use rumqttc::v5::Event;
                use v5b::{Packet, PubAckReason, SubscribeReasonCode};
                let event = events.poll().await.map_err(|e| e.to_string())?;
                Ok(match event {
                    Event::Incoming(Packet::ConnAck(ack)) => {
                        let props = ack.properties.as_ref();
                        Polled::Connected {
                            // Absent means available (MQTT 5 §3.2.2.3.12).
                            subscription_ids: props
                                .and_then(|p| p.subscription_identifiers_available)
                                .is_none_or(|v| v != 0),
                            receive_maximum: props.and_then(|p| p.receive_max),
                        }
                    }
                    Event::Incoming(Packet::Publish(p)) => {
                        let Ok(topic) = String::from_utf8(p.topic.to_vec()) else {
                            tracing::warn!(
                                "IoT Core: a message with a topic that is not UTF-8; dropped"
                            );
                            return Ok(Polled::Event(LinkEvent::Other));
                        };
                        let (properties, subscription_ids) = match p.properties {
                            Some(pp) => (
                                PublishProperties {
                                    user_properties: pp.user_properties,
                                    message_expiry_interval: pp.message_expiry_interval,
                                    correlation_data: pp.correlation_data,
                                    response_topic: pp.response_topic,
                                    payload_format: pp.payload_format_indicator,
                                    content_type: pp.content_type,
                                },
                                pp.subscription_identifiers,
                            ),
                            None => (PublishProperties::default(), Vec::new()),
                        };
                        Polled::Event(LinkEvent::Message(IncomingMessage {
                            topic,
                            payload: p.payload,
                            qos: u8::from(p.qos != rumqttc::v5::mqttbytes::QoS::AtMostOnce),
                            retain: p.retain,
                            properties,
                            subscription_ids,
                        }))
                    }
                    Event::Incoming(Packet::PubAck(ack)) => {
                        // The nucleus takes these as final (semantics.md
                        // §4.2); the others are retried.
                        let result = match ack.reason {
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                            r @ (PubAckReason::TopicNameInvalid
                            | PubAckReason::PayloadFormatInvalid
                            | PubAckReason::NotAuthorized) => Err((format!("{r:?}"), true)),
                            r => Err((format!("{r:?}"), false)),
                        };
                        Polled::Event(LinkEvent::PubAck(ack.pkid, result))
                    }
                    Event::Incoming(Packet::SubAck(ack)) => {
                        let reason_string = ack
                            .properties
                            .as_ref()
                            .and_then(|p| p.reason_string.clone());
                        let result = match ack.return_codes.first() {
                            Some(SubscribeReasonCode::Success(q)) => {
                                Ok(u8::from(*q != rumqttc::v5::mqttbytes::QoS::AtMostOnce))
                            }
                            Some(code) => Err(match reason_string {
                                Some(text) => format!("{code:?} ({text})"),
                                None => format!("{code:?}"),
                            }),
                            None => Err("an empty SUBACK".to_owned()),
                        };
                        Polled::Event(LinkEvent::SubAck(ack.pkid, result))
                    }
                    Event::Incoming(Packet::Disconnect(d)) => {
                        let text = d.properties.and_then(|p| p.reason_string);
                        Polled::Closing(match text {
                            Some(t) => format!("{:?}: {t}", d.reason_code),
                            None => format!("{:?}", d.reason_code),
                        })
                    }
                    Event::Incoming(_) => Polled::Event(LinkEvent::Other),
                    Event::Outgoing(o) => Polled::Event(outgoing(o)),
                })
            }
        }
    }
}

fn connection(config: &IotCoreConfig, target: &Target) -> (Client, Events) {
    let packet_limit = config.max_message_bytes.saturating_add(PACKET_OVERHEAD);
    // Above the window and below the packet-id range: see state.rs.
    let window = config.max_in_flight;
    let inflight_limit = window.saturating_mul(2).saturating_add(2);
    let capacity = usize::from(window) + CHANNEL_SLACK;
    let timeout_secs = config.connect_timeout.as_secs().max(1);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(timeout_secs);
    if config.mqtt5 {
        let mut options = rumqttc::v5::MqttOptions::new(
            config.client_id.clone(),
            target.host.clone(),
            target.port,
        );
        options
            .set_transport(target.transport.clone())
            .set_keep_alive(config.keep_alive)
            .set_clean_start(true)
            .set_connection_timeout(timeout_secs)
            .set_max_packet_size(Some(u32::try_from(packet_limit).unwrap_or(u32::MAX)))
            .set_outgoing_inflight_upper_limit(inflight_limit)
            .set_network_options(network);
        let (client, events) = rumqttc::v5::AsyncClient::new(options, capacity);
        (Client::V5(client), Events::V5(Box::new(events)))
    } else {
        let mut options =
            rumqttc::MqttOptions::new(config.client_id.clone(), target.host.clone(), target.port);
        options
            .set_transport(target.transport.clone())
            .set_keep_alive(config.keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(packet_limit, packet_limit)
            .set_inflight(inflight_limit);
        let (client, mut events) = rumqttc::AsyncClient::new(options, capacity);
        events.set_network_options(network);
        (Client::V4(client), Events::V4(Box::new(events)))
    }
}

/// Capped exponential backoff with jitter.
#[derive(Debug)]
pub(crate) struct Backoff {
    reconnect: Reconnect,
    attempts: u32,
    attempts_before_connect: u32,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(reconnect: Reconnect) -> Self {
        let mut seed = [0u8; 8];
        // Without randomness every broker of a fleet would retry in step,
        // which jitter is there to avoid; a fixed seed still works.
        let _ = getrandom::fill(&mut seed);
        Self {
            reconnect,
            attempts: 0,
            attempts_before_connect: 0,
            rng: u64::from_le_bytes(seed) | 1,
        }
    }

    /// A connection came up.
    pub(crate) fn connected(&mut self) {
        self.attempts_before_connect = self.attempts;
        self.attempts = 0;
    }

    /// The delay before the next attempt; `lasted` is how long the
    /// connection that just ended was up (`None`: it never came up). A
    /// connection that did not last `stable_after` does not reset the
    /// delay, so a peer that accepts and then drops at once is not
    /// hammered.
    pub(crate) fn next_delay(&mut self, lasted: Option<Duration>) -> Duration {
        match lasted {
            Some(up) if up >= self.reconnect.stable_after => self.attempts = 0,
            Some(_) => self.attempts = self.attempts_before_connect + 1,
            None => self.attempts += 1,
        }
        let exp = self.attempts.saturating_sub(1).min(20);
        let ceiling = self
            .reconnect
            .min_delay
            .saturating_mul(1 << exp)
            .min(self.reconnect.max_delay);
        // Equal jitter: half fixed, half random, so the delay still grows.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = ceiling / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if nanos == 0 { 0 } else { self.rng % nanos })
    }
}

/// Runs the link until the broker exits.
pub(crate) async fn run(iot: Arc<IotCore>, target: Target) {
    let config = iot.config.clone();
    let mut backoff = Backoff::new(config.reconnect);
    loop {
        let (client, mut events) = connection(&config, &target);
        let mut connected_at = None;
        let mut closing = None;
        let reason = loop {
            match events.poll().await {
                Ok(Polled::Connected {
                    subscription_ids,
                    receive_maximum,
                }) => {
                    connected_at = Some(Instant::now());
                    backoff.connected();
                    tracing::info!(
                        endpoint = %config.endpoint,
                        client_id = %config.client_id,
                        mqtt5 = config.mqtt5,
                        subscription_ids,
                        "IoT Core connected"
                    );
                    iot.link_up(Box::new(client.clone()), subscription_ids, receive_maximum);
                }
                Ok(Polled::Closing(why)) => closing = Some(why),
                Ok(Polled::Event(event)) => {
                    if iot.link_event(event) {
                        break "the MQTT client's events no longer match the requests".to_owned();
                    }
                }
                Err(e) => {
                    break closing
                        .take()
                        .map_or(e.clone(), |why| format!("{why} ({e})"));
                }
            }
        };
        drop(events);
        let lasted = connected_at.map(|t: Instant| t.elapsed());
        iot.link_down();
        let delay = backoff.next_delay(lasted);
        if lasted.is_some() {
            tracing::warn!(
                endpoint = %config.endpoint,
                reason = %reason,
                retry_in_ms = delay.as_millis() as u64,
                "IoT Core disconnected"
            );
        } else {
            tracing::warn!(
                endpoint = %config.endpoint,
                reason = %reason,
                retry_in_ms = delay.as_millis() as u64,
                "IoT Core connection failed"
            );
        }
        tokio::time::sleep(delay).await;
    }
}

/// Fails overdue subscriptions, checking once a second (an idle broker
/// should wake rarely).
pub(crate) async fn tick(iot: std::sync::Weak<IotCore>) {
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(iot) = iot.upgrade() else {
            return;
        };
        iot.tick();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS IoT Core takes MQTT on 443 only with its ALPN name; elsewhere
    /// none is offered.
    #[test]
    fn port_443_offers_the_aws_alpn_name_and_8883_none() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-keyout", "key.pem", "-out", "cert.pem", "-days", "1"])
            .args(["-subj", "/CN=thing"])
            .current_dir(dir.path())
            .output()
            .expect("openssl");
        assert!(out.status.success(), "{out:?}");
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let host = "abc123-ats.iot.eu-west-1.amazonaws.com";
        let on_443 = tls_config(host, 443, &cert, &key, &cert).unwrap();
        assert_eq!(on_443.alpn_protocols, [b"x-amzn-mqtt-ca".to_vec()]);
        let on_8883 = tls_config(host, 8883, &cert, &key, &cert).unwrap();
        assert!(on_8883.alpn_protocols.is_empty());
    }

    #[test]
    fn backoff_grows_to_the_cap_and_resets_after_a_stable_connection() {
        let mut b = Backoff::new(Reconnect {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            stable_after: Duration::from_secs(30),
        });
        let first = b.next_delay(None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let mut last = first;
        for _ in 0..10 {
            last = b.next_delay(None);
        }
        assert!(last >= Duration::from_millis(500) && last <= Duration::from_millis(1000));
        b.connected();
        // Dropped at once: the delay keeps growing from where it was.
        let quick = b.next_delay(Some(Duration::from_millis(10)));
        assert!(quick >= Duration::from_millis(500));
        b.connected();
        let stable = b.next_delay(Some(Duration::from_secs(60)));
        assert!(stable <= Duration::from_millis(100));
    }
}

//! The brokers under test — ggipc through `ggipc-client`, mosquitto through
//! `rumqttc` over its Unix socket listener — behind one interface: start a
//! fresh process, connect publishers and subscribers, and read its /proc.

use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use ggipc_client::{Client, Subscription, TopicMessage};
use ggipc_tests::{BrokerProcess, ComponentSpec, RawConn};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, Transport};
use serde_json::json;

use crate::stamp::{self, Stamp};
use crate::{pin, raw};

/// Which broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Ggipc,
    Mosquitto,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ggipc => "ggipc",
            Self::Mosquitto => "mosquitto",
        }
    }
}

/// How brokers are started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Launch {
    /// The CPU the broker is pinned to, if any.
    pub(crate) broker_cpu: Option<usize>,
    /// mosquitto's `max_queued_messages` (per client).
    pub(crate) mosquitto_max_queued: u64,
    /// QoS of mosquitto publishes (subscriptions are QoS 0).
    pub(crate) qos: QoS,
}

const PUB: &str = "bench.Pub";
const SUB: &str = "bench.Sub";

/// A running broker, stopped when dropped.
#[derive(Debug)]
pub(crate) enum Server {
    Ggipc(BrokerProcess),
    Mosquitto(Mosquitto, QoS),
}

impl Server {
    pub(crate) fn start(kind: Kind, launch: Launch) -> Self {
        match kind {
            Kind::Ggipc => {
                let components = [
                    ComponentSpec::pubsub_all(PUB),
                    ComponentSpec::pubsub_all(SUB),
                ];
                // Room for the connection-scale scenario; every other
                // setting is the default.
                let settings = json!({"maxConnections": 4096});
                Self::Ggipc(pin::spawning_on(launch.broker_cpu, || {
                    BrokerProcess::start(&components, settings)
                }))
            }
            Kind::Mosquitto => Self::Mosquitto(Mosquitto::start(launch), launch.qos),
        }
    }

    /// Stops the broker: SIGTERM for ggipc, so that it shuts down as in
    /// production (and a profiler wrapping it writes its output).
    pub(crate) fn stop(self) {
        if let Self::Ggipc(mut b) = self {
            b.terminate();
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        match self {
            Self::Ggipc(b) => b.pid(),
            Self::Mosquitto(m, _) => m.child.id(),
        }
    }

    /// A publisher of `size`-byte messages to `topic`.
    pub(crate) async fn publisher(&self, raw: bool, topic: &str, size: usize) -> Publisher {
        let conn = match (self, raw) {
            (Self::Ggipc(b), false) => PublisherConn::Ggipc(ggipc_client(b, PUB).await),
            (Self::Ggipc(b), true) => PublisherConn::GgipcRaw(Box::new(
                raw::GgipcPub::connect(&b.socket, b.token(PUB), topic, size).await,
            )),
            (Self::Mosquitto(m, qos), false) => {
                let (client, mut events) = mqtt_connect(&m.socket, 1024, true).await;
                // QoS 1 acknowledgements and keep-alives need the event
                // loop polled; nothing else comes in.
                let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
                PublisherConn::Mqtt {
                    client,
                    qos: *qos,
                    driver,
                }
            }
            (Self::Mosquitto(m, _), true) => PublisherConn::MqttRaw(Box::new(
                raw::MqttPub::connect(&m.socket, topic, size).await,
            )),
        };
        Publisher {
            conn,
            topic: Arc::from(topic),
            size,
            pending: FuturesUnordered::new(),
            errors: 0,
        }
    }

    /// A subscriber on its own connection.
    pub(crate) async fn subscriber(&self, raw: bool, filter: &str) -> Subscriber {
        match (self, raw) {
            (Self::Ggipc(b), true) => Subscriber::GgipcRaw(Box::new(
                raw::GgipcSub::connect(&b.socket, b.token(SUB), filter).await,
            )),
            (Self::Mosquitto(m, _), true) => {
                Subscriber::MqttRaw(Box::new(raw::MqttSub::connect(&m.socket, filter).await))
            }
            (Self::Ggipc(b), false) => {
                let client = ggipc_client(b, SUB).await;
                let sub = client.subscribe(filter).await.expect("subscribe");
                Subscriber::Ggipc(sub)
            }
            (Self::Mosquitto(m, _), false) => {
                let (client, mut events) = mqtt_connect(&m.socket, 16, false).await;
                mqtt_subscribe(&client, &mut events, &[filter.to_owned()]).await;
                Subscriber::Mqtt {
                    _client: client,
                    events: Events(Box::new(events)),
                }
            }
        }
    }

    /// One connection holding subscriptions to `filters`, never read: an
    /// idle component, or a stalled subscriber.
    pub(crate) async fn idle_subscriber(&self, filters: &[String]) -> Held {
        match self {
            Self::Ggipc(b) => {
                let client = ggipc_client(b, SUB).await;
                let mut subs = Vec::with_capacity(filters.len());
                for f in filters {
                    subs.push(client.subscribe(f).await.expect("subscribe"));
                }
                Held::Ggipc(client, subs)
            }
            Self::Mosquitto(m, _) => {
                let (client, mut events) = mqtt_connect(&m.socket, 1024, false).await;
                mqtt_subscribe(&client, &mut events, filters).await;
                Held::Mqtt(client, Events(Box::new(events)))
            }
        }
    }

    /// A subscriber that stops reading its socket once subscribed, so the
    /// broker's queue for it fills.
    pub(crate) async fn stalled_subscriber(&self, filter: &str) -> Held {
        match self {
            Self::Ggipc(b) => {
                // The client crate reads its socket whatever the
                // application does, so the stalled reader is a raw
                // connection.
                let mut raw = RawConn::connect(&b.socket, b.token(SUB));
                raw.request("SubscribeToTopic", &json!({"topic": filter}));
                let response = raw.recv().expect("SubscribeToTopic response");
                assert!(
                    response
                        .service_model_type
                        .as_ref()
                        .is_some_and(|s| s.as_str().ends_with("SubscribeToTopicResponse")),
                    "{response:?}"
                );
                Held::Raw(raw)
            }
            Self::Mosquitto(..) => self.idle_subscriber(&[filter.to_owned()]).await,
        }
    }

    /// One connect, subscribe and close, as a short-lived component does.
    pub(crate) async fn churn_once(&self, filter: &str) {
        match self {
            Self::Ggipc(b) => {
                let client = ggipc_client(b, SUB).await;
                let sub = client.subscribe(filter).await.expect("subscribe");
                sub.close().await;
                client.close().await;
            }
            Self::Mosquitto(m, _) => {
                let (client, mut events) = mqtt_connect(&m.socket, 16, false).await;
                mqtt_subscribe(&client, &mut events, &[filter.to_owned()]).await;
                client.disconnect().await.expect("queue DISCONNECT");
                loop {
                    match events.poll().await {
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
        }
    }
}

async fn ggipc_client(broker: &BrokerProcess, component: &str) -> Client {
    Client::builder(&broker.socket)
        .token(broker.token(component))
        // Deep enough that the client never drops an event in the
        // closed-loop runs (their windows are smaller).
        .event_buffer(1 << 16)
        .connect()
        .await
        .expect("connect to ggipc")
}

static NEXT_MQTT_ID: AtomicU64 = AtomicU64::new(1);

async fn mqtt_connect(socket: &Path, requests: usize, publisher: bool) -> (AsyncClient, EventLoop) {
    let id = format!("bench-{}", NEXT_MQTT_ID.fetch_add(1, Ordering::Relaxed));
    let mut options = MqttOptions::new(id, socket.to_str().expect("UTF-8 socket path"), 0);
    options
        .set_transport(Transport::Unix)
        .set_keep_alive(Duration::from_secs(60))
        .set_max_packet_size(1 << 20, 1 << 20);
    // rumqttc sizes a table by the in-flight limit up front, so only
    // publishers get a large one (QoS 1 runs keep up to the window in
    // flight; the default is 100).
    if publisher {
        options.set_inflight(4096);
    }
    let (client, mut events) = AsyncClient::new(options, requests);
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(e) => panic!("connect to mosquitto: {e}"),
        }
    }
    (client, events)
}

/// Subscribes to each filter (one SUBSCRIBE each) and waits for every
/// SUBACK.
async fn mqtt_subscribe(client: &AsyncClient, events: &mut EventLoop, filters: &[String]) {
    for chunk in filters.chunks(512) {
        for f in chunk {
            client
                .subscribe(f.as_str(), QoS::AtMostOnce)
                .await
                .expect("queue SUBSCRIBE");
        }
        let mut acked = 0;
        while acked < chunk.len() {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("subscribe on mosquitto: {e}"),
            }
        }
    }
}

type Pending = FuturesUnordered<Pin<Box<dyn Future<Output = bool> + Send>>>;

/// A publishing connection. Library clients publish through futures kept
/// in `pending`; raw ones batch prepared frames and count answers.
#[derive(Debug)]
pub(crate) struct Publisher {
    conn: PublisherConn,
    topic: Arc<str>,
    size: usize,
    pending: Pending,
    errors: u64,
}

#[derive(Debug)]
enum PublisherConn {
    Ggipc(Client),
    Mqtt {
        client: AsyncClient,
        qos: QoS,
        driver: tokio::task::JoinHandle<()>,
    },
    GgipcRaw(Box<raw::GgipcPub>),
    MqttRaw(Box<raw::MqttPub>),
}

impl Publisher {
    /// Queues one message; it goes out at the next [`flush`](Self::flush).
    pub(crate) fn queue(&mut self, stamp: Stamp) {
        match &mut self.conn {
            PublisherConn::Ggipc(client) => {
                let (client, topic) = (client.clone(), self.topic.clone());
                let payload = stamp::payload(self.size, stamp);
                self.pending.push(Box::pin(async move {
                    client.publish_binary(&topic, payload).await.is_ok()
                }));
            }
            PublisherConn::Mqtt { client, qos, .. } => {
                let (client, topic, qos) = (client.clone(), self.topic.to_string(), *qos);
                let payload = stamp::payload(self.size, stamp);
                self.pending.push(Box::pin(async move {
                    client
                        .publish_bytes(topic, qos, false, payload)
                        .await
                        .is_ok()
                }));
            }
            PublisherConn::GgipcRaw(p) => p.queue(stamp),
            PublisherConn::MqttRaw(p) => p.queue(stamp),
        }
    }

    /// Sends what is queued, and collects answers that have arrived,
    /// without waiting for any.
    pub(crate) async fn flush(&mut self) {
        match &mut self.conn {
            PublisherConn::GgipcRaw(p) => p.flush().await,
            PublisherConn::MqttRaw(p) => p.flush().await,
            PublisherConn::Ggipc(_) | PublisherConn::Mqtt { .. } => {}
        }
        // Polling a new library future is what sends its message.
        while let Some(Some(ok)) = self.pending.next().now_or_never() {
            self.errors += u64::from(!ok);
        }
    }

    /// Messages sent and not answered yet (MQTT QoS 0 has no answer; the
    /// library's QoS 1 acknowledgements stay inside rumqttc).
    pub(crate) fn unanswered(&self) -> u64 {
        match &self.conn {
            PublisherConn::GgipcRaw(p) => p.unanswered(),
            _ => self.pending.len() as u64,
        }
    }

    /// Waits for the next answer (forever if none can come).
    pub(crate) async fn answer(&mut self) {
        match &self.conn {
            PublisherConn::GgipcRaw(p) => p.wake.notified().await,
            _ if self.pending.is_empty() => std::future::pending().await,
            _ => {
                if let Some(ok) = self.pending.next().await {
                    self.errors += u64::from(!ok);
                }
            }
        }
    }

    /// Waits for every answer; returns the publish errors.
    pub(crate) async fn finish(&mut self) -> u64 {
        self.flush().await;
        while self.unanswered() > 0 {
            self.answer().await;
        }
        match &self.conn {
            PublisherConn::GgipcRaw(p) => p.errors.load(Ordering::Relaxed),
            _ => self.errors,
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let PublisherConn::Mqtt { driver, .. } = &self.conn {
            driver.abort();
        }
    }
}

/// A subscribing connection read by the benchmark.
#[derive(Debug)]
pub(crate) enum Subscriber {
    Ggipc(Subscription<TopicMessage>),
    Mqtt {
        _client: AsyncClient,
        events: Events,
    },
    GgipcRaw(Box<raw::GgipcSub>),
    MqttRaw(Box<raw::MqttSub>),
}

/// rumqttc's event loop, which has no `Debug`.
pub(crate) struct Events(Box<EventLoop>);

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventLoop")
    }
}

impl Subscriber {
    /// The next message's payload; `None` when the connection ends.
    pub(crate) async fn next(&mut self) -> Option<Bytes> {
        match self {
            Self::Ggipc(sub) => loop {
                match sub.recv().await? {
                    Ok(m) => return Some(m.to_bytes()),
                    Err(e) => {
                        eprintln!("bench: ggipc subscription: {e}");
                    }
                }
            },
            Self::Mqtt { events, .. } => loop {
                match events.0.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => return Some(p.payload),
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("bench: mosquitto subscriber: {e}");
                        return None;
                    }
                }
            },
            Self::GgipcRaw(sub) => sub.next().await,
            Self::MqttRaw(sub) => sub.next().await,
        }
    }

    /// Events the client library dropped because the application was
    /// behind (ggipc-client's bounded buffer); 0 for MQTT.
    pub(crate) fn client_dropped(&self) -> u64 {
        match self {
            Self::Ggipc(sub) => sub.dropped_events(),
            _ => 0,
        }
    }
}

/// Connections kept open and never read.
#[derive(Debug)]
#[allow(dead_code, reason = "held for their connections, never read")]
pub(crate) enum Held {
    Ggipc(Client, Vec<Subscription<TopicMessage>>),
    Mqtt(AsyncClient, Events),
    Raw(RawConn),
}

/// mosquitto run by hand with a generated configuration (never the
/// packaged service).
#[derive(Debug)]
pub(crate) struct Mosquitto {
    child: Child,
    pub(crate) socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    fn write_config(launch: Launch) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix("mq")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let socket = dir.path().join("mosq.sock");
        let config = dir.path().join("mosq.conf");
        // `user root`: we run as root, and mosquitto would otherwise drop
        // to user `mosquitto`, which cannot create the socket here.
        std::fs::write(
            &config,
            format!(
                "listener 0 {}\nallow_anonymous true\npersistence false\nuser root\n\
                 max_queued_messages {}\n",
                socket.display(),
                launch.mosquitto_max_queued
            ),
        )
        .expect("write mosquitto config");
        (dir, config, socket)
    }

    fn spawn(launch: Launch, config: &Path, dir: &Path) -> Child {
        pin::spawning_on(launch.broker_cpu, || {
            Command::new("mosquitto")
                .arg("-c")
                .arg(config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("mosq.log")).expect("log file"))
                .spawn()
                .expect("start mosquitto (apt-get install mosquitto)")
        })
    }

    pub(crate) fn start(launch: Launch) -> Self {
        let (dir, config, socket) = Self::write_config(launch);
        let child = Self::spawn(launch, &config, dir.path());
        let mut m = Self { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while mqtt_probe(&m.socket).is_none() {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("mosquitto exited with {status}:\n{}", m.log());
            }
            assert!(
                Instant::now() < deadline,
                "mosquitto not ready:\n{}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        m
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosq.log")).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects with a hand-written MQTT 3.1.1 CONNECT and waits for an
/// accepting CONNACK; disconnects again. `None` if not (yet) possible.
fn mqtt_probe(socket: &Path) -> Option<()> {
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    // CONNECT: protocol "MQTT" level 4, clean session, keep-alive 60 s,
    // client id "probe".
    let connect = [
        0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'p', b'r', b'o', b'b', b'e',
    ];
    s.write_all(&connect).ok()?;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).ok()?;
    (ack == [0x20, 2, 0, 0]).then_some(())?;
    s.write_all(&[0xe0, 0]).ok()?;
    Some(())
}

/// Time from exec to the first accepted connection, and the fresh process
/// for the idle measurements.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) ready: Duration,
    pub(crate) pid: u32,
    guard: StartedGuard,
}

#[derive(Debug)]
#[allow(dead_code, reason = "kept to stop the process when dropped")]
enum StartedGuard {
    Child(Child, Option<tempfile::TempDir>),
}

impl Drop for StartedGuard {
    fn drop(&mut self) {
        let Self::Child(child, _) = self;
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Started {
    pub(crate) fn stop(self) {
        drop(self.guard);
    }
}

/// Starts brokers of `kind` again and again from one prepared
/// configuration, timing exec → accepted CONNECT.
#[derive(Debug)]
pub(crate) enum Starter {
    /// The deployment a [`BrokerProcess`] wrote (the process itself has
    /// been stopped); kept for its temporary folder.
    Ggipc {
        template: BrokerProcess,
        deployment: PathBuf,
        token_file: PathBuf,
    },
    Mosquitto(Launch),
}

impl Starter {
    pub(crate) fn new(kind: Kind, launch: Launch) -> Self {
        match kind {
            Kind::Ggipc => {
                let Server::Ggipc(mut template) = Server::start(kind, launch) else {
                    unreachable!("started ggipc");
                };
                template.terminate();
                let dir = template
                    .root
                    .parent()
                    .expect("root in temp dir")
                    .to_path_buf();
                Self::Ggipc {
                    template,
                    deployment: dir.join("deployment.json"),
                    token_file: dir.join("tokens").join(SUB),
                }
            }
            Kind::Mosquitto => Self::Mosquitto(launch),
        }
    }

    pub(crate) fn start(&self, broker_cpu: Option<usize>) -> Started {
        match self {
            Self::Ggipc {
                template,
                deployment,
                token_file,
            } => {
                // The broker writes a fresh token at start: wait for it,
                // then for the socket to answer CONNECT.
                let _ = std::fs::remove_file(token_file);
                let started = Instant::now();
                let child = pin::spawning_on(broker_cpu, || {
                    Command::new(ggipc_tests::workspace_bin("ggipc-broker"))
                        .arg("--deployment")
                        .arg(deployment)
                        .env("RUST_LOG", "info")
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .expect("start ggipc-broker")
                });
                let deadline = started + Duration::from_secs(10);
                let ready = loop {
                    assert!(Instant::now() < deadline, "ggipc-broker not ready in 10 s");
                    let token = std::fs::read_to_string(token_file).unwrap_or_default();
                    if token.is_empty() {
                        std::hint::spin_loop();
                        continue;
                    }
                    let Ok(mut raw) = RawConn::try_open(&template.socket) else {
                        continue;
                    };
                    raw.send(&ggipc_protocol::rpc::connect(token.trim()));
                    if raw.recv().is_some_and(|ack| ack.is_accepted_ack()) {
                        break started.elapsed();
                    }
                };
                Started {
                    ready,
                    pid: child.id(),
                    guard: StartedGuard::Child(child, None),
                }
            }
            Self::Mosquitto(launch) => {
                let (dir, config, socket) = Mosquitto::write_config(*launch);
                let started = Instant::now();
                let child = Mosquitto::spawn(
                    Launch {
                        broker_cpu,
                        ..*launch
                    },
                    &config,
                    dir.path(),
                );
                let deadline = started + Duration::from_secs(10);
                while mqtt_probe(&socket).is_none() {
                    assert!(Instant::now() < deadline, "mosquitto not ready in 10 s");
                }
                Started {
                    ready: started.elapsed(),
                    pid: child.id(),
                    guard: StartedGuard::Child(child, Some(dir)),
                }
            }
        }
    }
}

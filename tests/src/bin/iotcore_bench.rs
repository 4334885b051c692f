//! IoT Core bridge benchmark: forwarded messages per second local→MQTT and
//! MQTT→local through a real mosquitto, and the latency the bridge adds
//! over a direct mosquitto client, all in the same run.
//!
//! ```text
//! cargo build --release --workspace --bins
//! ./target/release/iotcore_bench [--messages N] [--size B] [--runs R] [--samples K]
//!     [--mqtt mqtt5|mqtt3] [--in-flight N]
//! ```
//!
//! - **direct**: an MQTT publisher → mosquitto → an MQTT subscriber
//!   (rumqttc, MQTT 3.1.1, QoS 1): the floor both bridge paths stand on.
//! - **local→MQTT**: a component pipelines `PublishToIoTCore` (QoS 1, up to
//!   256 unanswered) → broker → mosquitto → the MQTT subscriber.
//! - **MQTT→local**: the MQTT publisher → mosquitto → broker → a
//!   component's `SubscribeToIoTCore` stream.
//!
//! Rates count messages received, from the first send to the last receipt,
//! and check their order. Latency sends one message at a time and times it
//! from send to receipt in this process; "added" is a bridge path's median
//! minus the direct median. The broker runs with its defaults (MQTT 5, 5
//! QoS 1 publishes in flight; `--mqtt`, `--in-flight` change them) but a
//! spool large enough for a whole run.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use ggipc_client::{Client, ClientBuilder};
use ggipc_protocol::model::{Blob, PublishToIoTCoreRequest, Qos, SubscribeToIoTCoreRequest};
use ggipc_tests::mosquitto::Mosquitto;
use ggipc_tests::{BrokerProcess, ComponentSpec};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use tokio::sync::mpsc;

struct Options {
    messages: u64,
    size: usize,
    runs: usize,
    samples: usize,
    mqtt: String,
    in_flight: u16,
}

fn parse_args() -> Options {
    let mut o = Options {
        messages: 20_000,
        size: 100,
        runs: 5,
        samples: 1000,
        mqtt: "mqtt5".to_owned(),
        in_flight: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--messages" => o.messages = value.parse().expect("--messages N"),
            "--size" => o.size = value.parse().expect("--size BYTES"),
            "--runs" => o.runs = value.parse().expect("--runs N"),
            "--samples" => o.samples = value.parse().expect("--samples K"),
            "--mqtt" => o.mqtt = value,
            "--in-flight" => o.in_flight = value.parse().expect("--in-flight N"),
            other => panic!("unknown option {other}"),
        }
    }
    assert!(
        o.size >= 8,
        "--size must be at least 8 (the sequence number)"
    );
    o
}

fn payload(seq: u64, size: usize) -> Vec<u8> {
    let mut p = vec![0x5a; size];
    p[..8].copy_from_slice(&seq.to_be_bytes());
    p
}

fn seq_of(payload: &[u8]) -> u64 {
    u64::from_be_bytes(payload[..8].try_into().expect("8 bytes"))
}

/// An MQTT client whose received messages (sequence number, arrival)
/// come out of a channel.
async fn mqtt_client(
    port: u16,
    id: &str,
    subscribe: Option<&str>,
) -> (AsyncClient, mpsc::UnboundedReceiver<(u64, Instant)>) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut events) = AsyncClient::new(options, 1024);
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready = Some(ready_tx);
    let filter = subscribe.map(str::to_owned);
    let sub_client = client.clone();
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => match &filter {
                    Some(f) => sub_client
                        .subscribe(f.as_str(), QoS::AtLeastOnce)
                        .await
                        .unwrap(),
                    None => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                },
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((seq_of(&p.payload), Instant::now())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                // The run is over (the client disconnected) or mosquitto
                // went away; the receiver's timeout reports a short run.
                Err(_) => return,
            }
        }
    });
    ready_rx.await.expect("MQTT client ready");
    (client, rx)
}

/// Receives `n` messages; returns the time of the last and whether they
/// came in order.
async fn receive(rx: &mut mpsc::UnboundedReceiver<(u64, Instant)>, n: u64) -> (Instant, bool) {
    let mut last_seq = None;
    let mut in_order = true;
    let mut last = Instant::now();
    for _ in 0..n {
        let (seq, at) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("a message within 60 s")
            .expect("receiver open");
        if last_seq.is_some_and(|l| seq <= l) {
            in_order = false;
        }
        last_seq = Some(seq);
        last = at;
    }
    (last, in_order)
}

/// IPC events of a SubscribeToIoTCore stream as (sequence, arrival).
fn ipc_events(
    mut sub: ggipc_client::Subscription<ggipc_protocol::model::IoTCoreMessage>,
) -> mpsc::UnboundedReceiver<(u64, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = sub.next().await {
            let event = event.expect("IoTCoreMessage");
            let at = Instant::now();
            let payload = event.message.and_then(|m| m.payload).expect("a payload");
            if tx.send((seq_of(&payload), at)).is_err() {
                return;
            }
        }
    });
    rx
}

fn ipc_publish(topic: &str, seq: u64, size: usize) -> PublishToIoTCoreRequest {
    PublishToIoTCoreRequest {
        topic_name: Some(topic.to_owned()),
        qos: Some(Qos::AtLeastOnce),
        payload: Some(Blob(Bytes::from(payload(seq, size)))),
        ..Default::default()
    }
}

/// Messages an MQTT publisher may have sent that were not received yet.
/// Without a bound it outruns the receiving component, whose events the
/// broker then drops at its outbound queue limit (the slow-subscriber
/// policy), and the run never completes.
const WINDOW: u64 = 1000;

/// Publishes `o.messages` to `topic` with at most [`WINDOW`] unreceived;
/// returns the time to the last receipt and whether order was kept.
async fn windowed(
    publisher: &AsyncClient,
    topic: &str,
    rx: &mut mpsc::UnboundedReceiver<(u64, Instant)>,
    o: &Options,
) -> (Duration, bool) {
    let start = Instant::now();
    let (mut sent, mut received) = (0, 0);
    let mut last_seq = None;
    let mut in_order = true;
    while received < o.messages {
        while sent < o.messages && sent - received < WINDOW {
            publisher
                .publish(topic, QoS::AtLeastOnce, false, payload(sent, o.size))
                .await
                .unwrap();
            sent += 1;
        }
        let (seq, _) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("a message within 60 s")
            .expect("receiver open");
        if last_seq.is_some_and(|l| seq <= l) {
            in_order = false;
        }
        last_seq = Some(seq);
        received += 1;
    }
    (start.elapsed(), in_order)
}

struct Rates {
    direct: f64,
    up: f64,
    down: f64,
    in_order: bool,
}

async fn rates(ipc: &Client, port: u16, o: &Options, run: usize) -> Rates {
    let n = o.messages;
    let (publisher, _) = mqtt_client(port, &format!("bench-pub-{run}"), None).await;
    let (_watcher, mut direct_rx) =
        mqtt_client(port, &format!("bench-direct-{run}"), Some("bench/direct")).await;
    let (_up_watcher, mut up_rx) =
        mqtt_client(port, &format!("bench-up-{run}"), Some("bench/up")).await;
    let sub = ipc
        .subscribe_to_iot_core(&SubscribeToIoTCoreRequest {
            topic_name: Some("bench/down".into()),
            qos: Some(Qos::AtLeastOnce),
        })
        .await
        .expect("SubscribeToIoTCore");
    let mut down_rx = ipc_events(sub);
    let mut in_order = true;

    let (elapsed, ordered) = windowed(&publisher, "bench/direct", &mut direct_rx, o).await;
    in_order &= ordered;
    let direct = n as f64 / elapsed.as_secs_f64();

    let start = Instant::now();
    let sends = futures_util::stream::iter(0..n)
        .map(|seq| {
            let request = ipc_publish("bench/up", seq, o.size);
            async move { ipc.publish_to_iot_core(&request).await }
        })
        .buffered(256);
    let (sent, received) = tokio::join!(
        sends.for_each(|r| async move {
            r.expect("PublishToIoTCore");
        }),
        receive(&mut up_rx, n)
    );
    let () = sent;
    in_order &= received.1;
    let up = n as f64 / received.0.duration_since(start).as_secs_f64();

    let (elapsed, ordered) = windowed(&publisher, "bench/down", &mut down_rx, o).await;
    in_order &= ordered;
    let down = n as f64 / elapsed.as_secs_f64();
    let _ = publisher.disconnect().await;
    Rates {
        direct,
        up,
        down,
        in_order,
    }
}

struct Latency {
    direct: Vec<Duration>,
    up: Vec<Duration>,
    down: Vec<Duration>,
}

async fn latency(ipc: &Client, port: u16, o: &Options) -> Latency {
    let (publisher, _) = mqtt_client(port, "lat-pub", None).await;
    let (_w, mut direct_rx) = mqtt_client(port, "lat-direct", Some("lat/direct")).await;
    let (_u, mut up_rx) = mqtt_client(port, "lat-up", Some("lat/up")).await;
    let sub = ipc
        .subscribe_to_iot_core(&SubscribeToIoTCoreRequest {
            topic_name: Some("lat/down".into()),
            qos: Some(Qos::AtLeastOnce),
        })
        .await
        .expect("SubscribeToIoTCore");
    let mut down_rx = ipc_events(sub);
    let mut l = Latency {
        direct: Vec::new(),
        up: Vec::new(),
        down: Vec::new(),
    };
    // Interleaved, so that each path sees the same machine state.
    for seq in 0..o.samples as u64 {
        let t = Instant::now();
        publisher
            .publish("lat/direct", QoS::AtLeastOnce, false, payload(seq, o.size))
            .await
            .unwrap();
        l.direct.push(direct_rx.recv().await.unwrap().1 - t);

        let t = Instant::now();
        ipc.publish_to_iot_core(&ipc_publish("lat/up", seq, o.size))
            .await
            .unwrap();
        l.up.push(up_rx.recv().await.unwrap().1 - t);

        let t = Instant::now();
        publisher
            .publish("lat/down", QoS::AtLeastOnce, false, payload(seq, o.size))
            .await
            .unwrap();
        l.down.push(down_rx.recv().await.unwrap().1 - t);
    }
    l
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let o = parse_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let m = Mosquitto::start();
    let component = ComponentSpec::new(
        "bench.Component",
        json!({"aws.greengrass.ipc.mqttproxy": {"bench:1": {"operations": ["*"], "resources": ["*"]}}}),
    );
    let broker = BrokerProcess::start_with_document(
        &[component],
        json!({"iotCore": {
            "endpoint": m.url(),
            "clientId": "ggipc-bench",
            "mqttVersion": o.mqtt,
            "maxInFlightPublishes": o.in_flight,
            // A publisher pipelining at full speed outruns the link; a
            // spool that holds a whole run keeps this a measure of the
            // drain, not of the refusals past the default 2.5 MB.
            "spooler": {"maxSizeInBytes": 64 << 20},
        }}),
    );
    m.wait_connections("ggipc-bench", 1, Duration::from_secs(10));
    runtime.block_on(async {
        let ipc = ClientBuilder::new(&broker.socket)
            .token(broker.token("bench.Component"))
            .operation_timeout(Duration::from_secs(60))
            // Room for the whole window: a burst must not be dropped by
            // the client while this thread is busy publishing.
            .event_buffer(2 * WINDOW as usize)
            .slow_consumer(ggipc_client::SlowConsumer::End)
            .connect()
            .await
            .expect("IPC connection");
        let mut direct = Vec::new();
        let mut up = Vec::new();
        let mut down = Vec::new();
        let mut in_order = true;
        for run in 0..o.runs {
            let r = rates(&ipc, m.port, &o, run).await;
            println!(
                "run {run}: direct {:.0} msg/s, local→MQTT {:.0} msg/s, MQTT→local {:.0} msg/s{}",
                r.direct,
                r.up,
                r.down,
                if r.in_order { "" } else { " (OUT OF ORDER)" }
            );
            direct.push(r.direct);
            up.push(r.up);
            down.push(r.down);
            in_order &= r.in_order;
        }
        let mut l = latency(&ipc, m.port, &o).await;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!();
        println!(
            "{} messages of {} B, QoS 1, {}, {} in flight, median of {} runs (min–max); \
             order kept: {in_order}",
            o.messages, o.size, o.mqtt, o.in_flight, o.runs
        );
        for (name, v) in [
            ("direct MQTT", &mut direct),
            ("local→MQTT", &mut up),
            ("MQTT→local", &mut down),
        ] {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(0.0, f64::max);
            println!("| {name} | {:.0} msg/s | {min:.0}–{max:.0} |", median(v));
        }
        println!();
        println!("latency, {} samples, one message at a time:", o.samples);
        let direct_p50 = us(percentile(&mut l.direct, 0.5));
        for (name, v) in [
            ("direct MQTT", &mut l.direct),
            ("local→MQTT", &mut l.up),
            ("MQTT→local", &mut l.down),
        ] {
            let p50 = us(percentile(v, 0.5));
            let p99 = us(percentile(v, 0.99));
            println!(
                "| {name} | p50 {p50:.0} µs | p99 {p99:.0} µs | added p50 {:.0} µs |",
                p50 - direct_p50
            );
        }
        println!();
        println!("broker RSS after the run: {} KiB", broker.rss_kib());
        ipc.close().await;
    });
}

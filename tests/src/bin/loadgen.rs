//! Load generator for the broker: 1→N fan-out throughput of small binary
//! messages through the real broker binary, and the broker's idle RSS.
//!
//! ```text
//! cargo run --release -p ggipc-tests --bin loadgen -- [--messages N] [--size B]
//!     [--window W] [--fanout 1,10] [--runs R]
//! ```
//!
//! Publishers pipeline `PublishToTopic` requests with at most `window`
//! unanswered; each subscriber counts events and checks sequence order. The
//! rate is deliveries (events received by all subscribers together) per
//! second, from the first publish to the last delivery.

use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use ggipc_protocol::rpc::{self, MessageType, RpcMessage};
use ggipc_protocol::{FrameCodec, StrBytes};
use ggipc_tests::{BrokerProcess, ComponentSpec};
use serde_json::json;
use tokio::net::UnixStream;
use tokio_util::codec::Framed;

struct Options {
    messages: u64,
    size: usize,
    window: u64,
    fanouts: Vec<usize>,
    runs: usize,
}

fn parse_args() -> Options {
    let mut o = Options {
        messages: 200_000,
        size: 100,
        window: 256,
        fanouts: vec![1, 10],
        runs: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--messages" => o.messages = value.parse().expect("--messages N"),
            "--size" => o.size = value.parse().expect("--size BYTES"),
            "--window" => o.window = value.parse().expect("--window N"),
            "--fanout" => {
                o.fanouts = value
                    .split(',')
                    .map(|v| v.parse().expect("--fanout 1,10"))
                    .collect();
            }
            "--runs" => o.runs = value.parse().expect("--runs N"),
            other => panic!("unknown option {other}"),
        }
    }
    o
}

type Conn = Framed<UnixStream, FrameCodec>;

async fn connect(broker: &BrokerProcess, component: &str) -> Conn {
    let stream = UnixStream::connect(&broker.socket).await.expect("connect");
    let mut conn = Framed::new(stream, FrameCodec::new());
    conn.send(rpc::connect(broker.token(component)))
        .await
        .unwrap();
    let ack = RpcMessage::parse(conn.next().await.unwrap().unwrap()).unwrap();
    assert!(ack.is_accepted_ack());
    conn
}

fn request(stream_id: i32, operation: &str, payload: String) -> ggipc_protocol::Message {
    rpc::request(
        stream_id,
        StrBytes::from(format!("aws.greengrass#{operation}")),
        StrBytes::from(format!("aws.greengrass#{operation}Request")),
        Bytes::from(payload),
    )
}

/// Subscribes and returns a task counting `expected` events in order.
async fn subscriber(
    broker: &BrokerProcess,
    expected: u64,
) -> tokio::task::JoinHandle<(u64, bool, Instant)> {
    let mut conn = connect(broker, "bench.Sub").await;
    conn.send(request(
        1,
        "SubscribeToTopic",
        json!({"topic": "bench/t"}).to_string(),
    ))
    .await
    .unwrap();
    let resp = RpcMessage::parse(conn.next().await.unwrap().unwrap()).unwrap();
    assert_eq!(resp.message_type, MessageType::ApplicationMessage);
    tokio::spawn(async move {
        let mut count = 0u64;
        let mut in_order = true;
        let mut last = None;
        let b64 = base64::engine::general_purpose::STANDARD;
        while count < expected {
            let Some(Ok(m)) = conn.next().await else {
                break;
            };
            count += 1;
            // The sequence number is the first 8 bytes of the message; a
            // cheap parse of the fixed event layout finds its base64.
            let text = &m.payload[..];
            let start = memchr_str(text, b"\"message\":\"").map(|i| i + 11);
            if let Some(s) = start {
                let chunk = &text[s..s + 12];
                if let Ok(bytes) = b64.decode(chunk) {
                    let seq = u64::from_be_bytes(bytes[..8].try_into().unwrap());
                    if last.is_some_and(|l| seq <= l) {
                        in_order = false;
                    }
                    last = Some(seq);
                }
            }
        }
        (count, in_order, Instant::now())
    })
}

fn memchr_str(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn publish(broker: &BrokerProcess, messages: u64, size: usize, window: u64) -> Instant {
    let conn = connect(broker, "bench.Pub").await;
    let (mut sink, mut stream) = conn.split();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(window as usize);
    for _ in 0..window {
        tx.send(()).await.unwrap();
    }
    let reader = tokio::spawn(async move {
        for _ in 0..messages {
            let m = stream.next().await.unwrap().unwrap();
            let rpc = RpcMessage::parse(m).unwrap();
            assert_eq!(rpc.message_type, MessageType::ApplicationMessage, "{rpc:?}");
            let _ = tx.try_send(());
        }
    });
    let b64 = base64::engine::general_purpose::STANDARD;
    let filler = vec![0x42u8; size.saturating_sub(8)];
    let started = Instant::now();
    for seq in 0..messages {
        rx.recv().await.unwrap();
        let mut data = seq.to_be_bytes().to_vec();
        data.extend_from_slice(&filler);
        let payload = format!(
            r#"{{"topic":"bench/t","publishMessage":{{"binaryMessage":{{"message":"{}"}}}}}}"#,
            b64.encode(&data)
        );
        sink.feed(request(seq as i32 + 1, "PublishToTopic", payload))
            .await
            .unwrap();
        if rx.is_empty() {
            sink.flush().await.unwrap();
        }
    }
    sink.flush().await.unwrap();
    reader.await.unwrap();
    started
}

struct RunResult {
    deliveries_per_sec: f64,
    /// Share of one core the broker used during the run.
    broker_cpu: f64,
}

async fn run_fanout(broker: &BrokerProcess, o: &Options, fanout: usize) -> RunResult {
    let mut subs = Vec::new();
    for _ in 0..fanout {
        subs.push(subscriber(broker, o.messages).await);
    }
    let cpu_before = broker.cpu_time();
    let started = publish(broker, o.messages, o.size, o.window).await;
    let mut last = started;
    for s in subs {
        let (count, in_order, done) = tokio::time::timeout(Duration::from_secs(120), s)
            .await
            .expect("subscriber finished")
            .unwrap();
        assert_eq!(count, o.messages, "lost messages");
        assert!(in_order, "reordered messages");
        last = last.max(done);
    }
    let secs = last.duration_since(started).as_secs_f64();
    RunResult {
        deliveries_per_sec: (o.messages * fanout as u64) as f64 / secs,
        broker_cpu: (broker.cpu_time() - cpu_before).as_secs_f64() / secs,
    }
}

fn summarize(values: &mut [f64]) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn main() {
    let o = parse_args();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let components = [
        ComponentSpec::pubsub_all("bench.Pub"),
        ComponentSpec::pubsub_all("bench.Sub"),
    ];
    // Idle RSS: a fresh broker, nothing connected.
    let mut idle = Vec::new();
    for _ in 0..o.runs {
        let broker = BrokerProcess::start(&components, json!({"outboundQueueBytes": 64 << 20}));
        std::thread::sleep(Duration::from_millis(300));
        idle.push(broker.rss_kib() as f64);
    }
    let (med, min, max) = summarize(&mut idle);
    println!("| scenario | median | min | max | broker CPU |");
    println!("|---|---|---|---|---|");
    println!("| idle RSS | {med:.0} KiB | {min:.0} | {max:.0} | |");
    for &fanout in &o.fanouts {
        let mut rates = Vec::new();
        let mut cpu = Vec::new();
        for _ in 0..o.runs {
            let broker = BrokerProcess::start(&components, json!({"outboundQueueBytes": 64 << 20}));
            let r = runtime.block_on(run_fanout(&broker, &o, fanout));
            rates.push(r.deliveries_per_sec);
            cpu.push(r.broker_cpu * 100.0);
        }
        let (med, min, max) = summarize(&mut rates);
        let (cpu_med, _, _) = summarize(&mut cpu);
        println!(
            "| 1→{fanout} fan-out, {} B, window {} | {med:.0} deliveries/s | {min:.0} | {max:.0} | {cpu_med:.0} % |",
            o.size, o.window
        );
    }
}

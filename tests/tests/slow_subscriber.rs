//! A subscriber that stops reading costs only its own messages: the others
//! get everything in order, the publisher carries on, and the broker's memory
//! stays bounded (field case BR-14).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ggipc_protocol::rpc::MessageType;
use ggipc_tests::{BrokerProcess, ComponentSpec, RawConn, python_command};
use serde_json::{Value, json};

const MESSAGES: u64 = 50_000;
const QUEUE_BYTES: u64 = 8 * 1024 * 1024;
/// How far the publisher may run ahead of the slower reader. The readers are
/// Python processes that a busy machine can starve for a while; 3 000 events
/// of ~1.4 KiB stay well inside their 8 MiB queues, so a reader loses a
/// message only if the broker drops one it must not.
const MAX_LAG: u64 = 3_000;
const PROGRESS_EVERY: u64 = 500;

#[test]
fn one_stuck_subscriber_loses_only_its_own_messages() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Fast"),
            ComponentSpec::pubsub_all("com.example.Stuck"),
            ComponentSpec::pubsub_all("com.example.Pub"),
        ],
        json!({"outboundQueueBytes": QUEUE_BYTES}),
    );

    // Two real SDK subscribers that read everything.
    let count = MESSAGES.to_string();
    let fast: Vec<_> = (0..2)
        .map(|_| {
            let mut child = python_command(
                &broker,
                "com.example.Fast",
                "ipc_scenarios.py",
                &[
                    "subscribe",
                    "bulk/x",
                    &count,
                    "--summary",
                    "--progress",
                    &PROGRESS_EVERY.to_string(),
                    "--timeout",
                    "300",
                ],
            )
            .spawn()
            .unwrap();
            let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            assert!(line.contains("subscribed"), "{line}");
            // Progress lines feed the counter; the last line is the summary.
            let progress = Arc::new(AtomicU64::new(0));
            let reader = {
                let progress = progress.clone();
                thread::spawn(move || {
                    let mut last = String::new();
                    for line in std::io::BufRead::lines(stdout) {
                        last = line.unwrap();
                        if let Some(n) = serde_json::from_str::<Value>(&last)
                            .ok()
                            .and_then(|v| v["progress"].as_u64())
                        {
                            progress.store(n, Ordering::Relaxed);
                        }
                    }
                    last
                })
            };
            (child, progress, reader)
        })
        .collect();

    // One that subscribes and never reads again.
    let mut stuck = RawConn::connect(&broker.socket, broker.token("com.example.Stuck"));
    stuck.request("SubscribeToTopic", &json!({"topic": "bulk/x"}));
    assert_eq!(
        stuck.recv().unwrap().message_type,
        MessageType::ApplicationMessage
    );

    let baseline = broker.rss_kib();
    let peak = Arc::new(AtomicU64::new(baseline));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop, pid) = (peak.clone(), stop.clone(), broker.pid());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    && let Some(kib) = s
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // The publisher pipelines requests, a window at a time, and times them;
    // it waits only for the readers (MAX_LAG), never for the stuck one.
    let mut publisher = RawConn::connect(&broker.socket, broker.token("com.example.Pub"));
    let filler = vec![0x5au8; 1024 - 8];
    let started = Instant::now();
    let window = 32;
    let mut worst_window = Duration::ZERO;
    let mut seq = 0u64;
    while seq < MESSAGES {
        let stalled = Instant::now() + Duration::from_secs(60);
        while fast
            .iter()
            .any(|(_, p, _)| seq.saturating_sub(p.load(Ordering::Relaxed)) > MAX_LAG)
        {
            assert!(
                Instant::now() < stalled,
                "a reader made no progress for 60 s"
            );
            thread::sleep(Duration::from_millis(1));
        }
        let t = Instant::now();
        let batch = window.min(MESSAGES - seq);
        for _ in 0..batch {
            let mut data = seq.to_be_bytes().to_vec();
            data.extend_from_slice(&filler);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
            publisher.request(
                "PublishToTopic",
                &json!({"topic": "bulk/x", "publishMessage": {"binaryMessage": {"message": b64}}}),
            );
            seq += 1;
        }
        for _ in 0..batch {
            let m = publisher.recv().unwrap();
            assert_eq!(
                m.service_model_type.as_ref().unwrap(),
                "aws.greengrass#PublishToTopicResponse"
            );
        }
        worst_window = worst_window.max(t.elapsed());
    }
    let publish_time = started.elapsed();

    let mut results: Vec<Value> = Vec::new();
    for (mut child, _, reader) in fast {
        let last = reader.join().unwrap();
        assert!(child.wait().unwrap().success());
        results.push(serde_json::from_str(&last).unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    for r in &results {
        assert_eq!(r["count"], MESSAGES, "{r}");
        assert_eq!(r["in_order"], true, "{r}");
        assert_eq!(r["last_seq"], MESSAGES - 1, "{r}");
    }
    let growth_kib = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    // The stuck subscriber may hold one queue's worth; the readers' queues
    // drain as they go. Everything else is constant overhead.
    let bound_kib = 3 * QUEUE_BYTES / 1024 + 16 * 1024;
    assert!(
        growth_kib < bound_kib,
        "broker grew by {growth_kib} KiB (bound {bound_kib} KiB)"
    );
    let log = broker.log_text();
    assert!(log.contains("events dropped"), "no drop logged:\n{log}");
    assert!(log.contains("com.example.Stuck"));
    eprintln!(
        "published {MESSAGES} in {publish_time:?} (worst window of {window}: {worst_window:?}); \
         RSS grew {growth_kib} KiB"
    );
    drop(stuck);
}

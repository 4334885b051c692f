//! A Lambda function's work queue and timeout (field case BR-26, `lambda.md`
//! §8 rows 17 and 21): FIFO up to `maxQueueSize` with the item in flight
//! not counted, overflow refused and reported while publishers carry on, a
//! handler past its timeout killed and replaced with the queue intact,
//! payload encodings honoured and a wildcard source exposing the concrete
//! topic.

mod lambda_common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use ggipc_tests::BrokerProcess;
use lambda_common::*;
use serde_json::{Value, json};

/// Sleeps 1 s per event, 10 s for `{"slow": true}`; records the start and
/// end of each event and, at import, the worker's start.
const SLOW: &str = r#"import json, os, time

with open(os.environ["OUT"], "a") as f:
    f.write(json.dumps({"init": os.getpid()}) + "\n")


def record(**kw):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(kw) + "\n")


def handler(event, context):
    subject = context.client_context.custom["subject"]
    record(start=event.get("seq"), subject=subject, pid=os.getpid())
    time.sleep(10 if event.get("slow") else 1)
    record(end=event.get("seq"))
"#;

const BINARY: &str = r#"import base64, json, os


def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"b64": base64.b64encode(event).decode()}) + "\n")
"#;

fn seqs(records: &[Value], key: &str) -> Vec<i64> {
    records
        .iter()
        .filter_map(|r| r.get(key)?.as_i64())
        .collect()
}

#[test]
fn slow_handler_queue_overflow_timeout_encodings_and_wildcard_source() {
    let slow = Code::new(&[("fn.py", SLOW)]);
    let bin = Code::new(&[("fn.py", BINARY)]);
    let broker = BrokerProcess::start(
        &[
            lambda(
                "com.example.Slow",
                &slow,
                json!({
                    "eventSources": [{"topic": "jobs/+/run", "type": "PUB_SUB"}],
                    "maxQueueSize": 5,
                    "timeoutInSeconds": 3
                }),
            ),
            lambda(
                "com.example.Bin",
                &bin,
                json!({
                    "eventSources": [{"topic": "bin", "type": "PUB_SUB"}],
                    "inputPayloadEncodingType": "binary"
                }),
            ),
            publisher(),
        ],
        json!({}),
    );
    // Ready, not only imported: the first event must go in flight at
    // once, or it would take a queue place and shift the refusals.
    broker.wait_component_log("com.example.Slow", "lambda-worker-ready", 1);
    let mut conn = connect_publisher(&broker);

    // (a) 10 events in 100 ms: one in flight and five queued are handled
    // in order; the other four are refused, and every publish succeeds.
    for seq in 0..10 {
        publish_json(&mut conn, "jobs/a/run", &json!({"seq": seq}));
        std::thread::sleep(Duration::from_millis(10));
    }
    let records = slow.wait_count(
        &broker,
        "com.example.Slow",
        "end",
        6,
        Duration::from_secs(20),
    );
    assert_eq!(seqs(&records, "start"), [0, 1, 2, 3, 4, 5]);
    assert_eq!(seqs(&records, "end"), [0, 1, 2, 3, 4, 5]);
    assert!(
        records
            .iter()
            .filter(|r| r.get("subject").is_some())
            .all(|r| r["subject"] == "jobs/a/run"),
        "the concrete topic: {records:?}"
    );
    let log = broker.wait_component_log("com.example.Slow", "refusedTotal=4", 1);
    assert!(log.contains("maxQueueSize=5"), "{log}");

    // (b) a slow event is cut at 3 s; the worker is replaced (its module
    // runs again) and the three events queued behind it are handled in order.
    let before = Instant::now();
    publish_json(&mut conn, "jobs/b/run", &json!({"seq": 100, "slow": true}));
    for seq in 101..104 {
        publish_json(&mut conn, "jobs/b/run", &json!({"seq": seq}));
    }
    let records = slow.wait_count(
        &broker,
        "com.example.Slow",
        "end",
        9,
        Duration::from_secs(20),
    );
    let elapsed = before.elapsed();
    assert!(
        // Without the cut 100 would take 10 s and the rest 3 more: the
        // upper bound leaves room for a new worker's start on a busy machine.
        elapsed >= Duration::from_secs(6) && elapsed < Duration::from_secs(12),
        "3 s timeout then 3 × 1 s: {elapsed:?}"
    );
    assert_eq!(seqs(&records, "start")[6..], [100, 101, 102, 103]);
    assert_eq!(
        seqs(&records, "end")[6..],
        [101, 102, 103],
        "100 never ends"
    );
    let inits = seqs(&records, "init");
    assert_eq!(inits.len(), 2, "a new worker: {records:?}");
    assert_ne!(inits[0], inits[1]);
    assert!(
        alive_after(&[inits[0] as u64], Duration::from_secs(5)).is_empty(),
        "the timed-out worker is gone"
    );
    let log = broker.component_log("com.example.Slow");
    let timeout_line = log
        .lines()
        .find(|l| l.contains("lambda-invoke-timeout"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        timeout_line.contains("timeoutInSeconds (3 s)"),
        "{timeout_line}"
    );
    assert!(timeout_line.contains("topic=jobs/b/run"), "{timeout_line}");

    // (c) a binary function gets exactly its three bytes.
    publish_binary(&mut conn, "bin", &[0x00, 0xff, 0x10]);
    let records = bin.wait_count(
        &broker,
        "com.example.Bin",
        "b64",
        1,
        Duration::from_secs(20),
    );
    assert_eq!(
        records[0]["b64"],
        base64::engine::general_purpose::STANDARD.encode([0x00, 0xff, 0x10])
    );

    // (d) invalid JSON for the json function: logged, nothing crashes, the
    // next event is handled by the same worker.
    publish_binary(&mut conn, "jobs/c/run", b"{\"seq\": ");
    publish_json(&mut conn, "jobs/c/run", &json!({"seq": 200}));
    let records = slow.wait_count(
        &broker,
        "com.example.Slow",
        "end",
        10,
        Duration::from_secs(20),
    );
    assert_eq!(seqs(&records, "start").last(), Some(&200));
    assert_eq!(seqs(&records, "init").len(), 2, "no new worker");
    let log = broker.component_log("com.example.Slow");
    assert!(
        log.contains("the payload on topic jobs/c/run is not JSON"),
        "{log}"
    );
}

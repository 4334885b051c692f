//! Lambda functions that use IPC themselves, with the Python SDK: their
//! publishes are allowed or denied by their component's policy, on-demand
//! instances act as the component (`lambda.md` §8 row 6), and a redeployed
//! function's new version publishes without a broker restart, each event
//! handled by one version only (field case BR-24).
//!
//! The workers run the repository's virtualenv Python (scripts/setup
//! installs awsiotsdk there), found through the broker's `PATH`.

mod lambda_common;

use std::time::{Duration, Instant};

use ggipc_tests::{BrokerProcess, ComponentSpec, RawConn};
use lambda_common::*;
use serde_json::{Value, json};

/// Publishes `{"seq", "version"}` to the event's `to` topic and records
/// the outcome.
fn publishing_handler(version: &str) -> String {
    format!(
        r#"import json, os
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc import model

VERSION = "{version}"
client = GreengrassCoreIPCClientV2()


def handler(event, context):
    record = {{"seq": event["seq"], "version": VERSION, "pid": os.getpid()}}
    try:
        client.publish_to_topic(
            topic=event["to"],
            publish_message=model.PublishMessage(
                json_message=model.JsonMessage(message={{"seq": event["seq"], "version": VERSION}})))
        record["published"] = True
    except Exception as e:
        record["error"] = type(e).__name__
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(record) + "\n")
"#
    )
}

/// A function allowed to publish to `out/allowed` only.
fn publishing_lambda(name: &str, code: &Code, params: Value, version: &str) -> ComponentSpec {
    let mut spec = lambda(name, code, params);
    spec.entry_extra["componentVersion"] = json!(version);
    spec.entry_extra["configurationUpdate"] = json!({"merge": {"accessControl": {
        "aws.greengrass.ipc.pubsub": {
            format!("{name}:pubsub:1"): {
                "operations": ["aws.greengrass#PublishToTopic"],
                "resources": ["out/allowed", "out/fn"]
            }
        }
    }}});
    spec
}

fn subscribe(broker: &BrokerProcess, filter: &str) -> RawConn {
    let mut conn = connect_publisher(broker);
    conn.request(
        "SubscribeToTopic",
        &json!({"topic": filter, "receiveMode": "RECEIVE_ALL_MESSAGES"}),
    );
    let answer = conn.recv().expect("subscribe answer");
    assert_eq!(
        answer.service_model_type.as_ref().map(|s| s.as_str()),
        Some("aws.greengrass#SubscribeToTopicResponse"),
        "{answer:?}"
    );
    conn
}

/// The JSON messages of the next `n` events on `conn`.
fn events(conn: &mut RawConn, n: usize) -> Vec<Value> {
    conn.set_timeout(Duration::from_secs(20));
    (0..n)
        .map(|_| {
            let event = conn.recv().expect("event");
            let body: Value = serde_json::from_slice(event.payload()).unwrap();
            body["jsonMessage"]["message"].clone()
        })
        .collect()
}

#[test]
fn a_lambda_publishing_over_ipc_is_held_to_its_policy() {
    let pinned = Code::new(&[("fn.py", &publishing_handler("1"))]);
    let on_demand = Code::new(&[("fn.py", &publishing_handler("1"))]);
    let path = venv_path();
    let broker = BrokerProcess::start_with_env(
        &[
            publishing_lambda(
                "com.example.Pub",
                &pinned,
                json!({"eventSources": [{"topic": "in/pinned", "type": "PUB_SUB"}]}),
                "1.0.0",
            ),
            publishing_lambda(
                "com.example.PubOnDemand",
                &on_demand,
                json!({"eventSources": [{"topic": "in/demand", "type": "PUB_SUB"}], "pinned": false}),
                "1.0.0",
            ),
            publisher(),
        ],
        json!({}),
        &[("PATH", &path)],
    );
    let mut watcher = subscribe(&broker, "out/#");
    let mut conn = connect_publisher(&broker);
    for topic in ["in/pinned", "in/demand"] {
        publish_json(&mut conn, topic, &json!({"seq": 1, "to": "out/allowed"}));
        publish_json(&mut conn, topic, &json!({"seq": 2, "to": "out/denied"}));
    }
    for (code, component) in [
        (&pinned, "com.example.Pub"),
        (&on_demand, "com.example.PubOnDemand"),
    ] {
        let records = code.wait_count(&broker, component, "seq", 2, Duration::from_secs(30));
        // On-demand workers may take the two in either order.
        let by_seq = |n: i64| records.iter().find(|r| r["seq"] == n).unwrap();
        assert_eq!(by_seq(1)["published"], true, "{component}: {records:?}");
        assert_eq!(
            by_seq(2)["error"],
            "UnauthorizedError",
            "{component}: {records:?}"
        );
    }
    // Exactly the two allowed publishes arrive before a marker sent after
    // all four handlers had ended.
    publish_json(&mut conn, "out/marker", &json!({"marker": true}));
    let got = events(&mut watcher, 3);
    assert!(got[..2].iter().all(|m| m["seq"] == 1), "{got:?}");
    assert_eq!(got[2], json!({"marker": true}));
}

#[test]
fn a_redeployed_lambda_publishes_from_its_new_version_and_no_event_runs_twice() {
    let v1 = Code::new(&[("fn.py", &publishing_handler("1"))]);
    let v2 = Code::new(&[("fn.py", &publishing_handler("2"))]);
    let params = json!({"eventSources": [{"topic": "in/fn", "type": "PUB_SUB"}]});
    let path = venv_path();
    let mut broker = BrokerProcess::start_with_env(
        &[
            publishing_lambda("com.example.Fn", &v1, params.clone(), "1.0.0"),
            publisher(),
        ],
        json!({}),
        &[("PATH", &path)],
    );
    let mut watcher = subscribe(&broker, "out/fn");
    let mut conn = connect_publisher(&broker);
    for seq in 0..10 {
        publish_json(&mut conn, "in/fn", &json!({"seq": seq, "to": "out/fn"}));
    }
    let first = v1.wait_count(
        &broker,
        "com.example.Fn",
        "seq",
        10,
        Duration::from_secs(30),
    );
    let v1_pid = first[0]["pid"].as_u64().unwrap();
    // Events every 200 ms while the new version is deployed.
    let socket = broker.socket.clone();
    let token = broker.token(PUBLISHER).to_owned();
    let sender = std::thread::spawn(move || {
        let mut conn = RawConn::connect(&socket, &token);
        let mut sent = 10;
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            publish_json(&mut conn, "in/fn", &json!({"seq": sent, "to": "out/fn"}));
            sent += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        sent
    });
    std::thread::sleep(Duration::from_secs(1));
    broker.redeploy(&[
        publishing_lambda("com.example.Fn", &v2, params, "1.0.1"),
        publisher(),
    ]);
    let sent = sender.join().unwrap();
    // The last event sent has been handled by the new version.
    let last = sent - 1;
    v2.wait_records(&broker, "com.example.Fn", Duration::from_secs(20), |r| {
        r.iter().any(|v| v["seq"] == last)
    });
    let mut handled: Vec<Value> = v1.records();
    handled.extend(v2.records());
    let mut seqs: Vec<i64> = handled.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    seqs.sort_unstable();
    let before = seqs.len();
    seqs.dedup();
    assert_eq!(before, seqs.len(), "an event handled twice: {handled:?}");
    assert!(
        handled.iter().all(|r| r["published"] == true),
        "every publish succeeds: {handled:?}"
    );
    let v2_records = v2.records();
    assert!(!v2_records.is_empty());
    assert!(
        alive_after(&[v1_pid], Duration::from_secs(5)).is_empty(),
        "the old version's worker is gone"
    );
    // Events not handled were said not to be.
    let missing = (sent as usize) - seqs.len();
    let log = broker.component_log("com.example.Fn");
    let reported: usize = log
        .lines()
        .filter(|l| l.contains("lambda-queue-discarded"))
        .filter_map(|l| {
            l.split("count=")
                .nth(1)?
                .split([',', '}'])
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert!(
        missing <= reported,
        "{missing} missing, {reported} reported:\n{log}"
    );
    // The watcher saw every publish, the old version's before the new one's.
    let got = events(&mut watcher, seqs.len());
    let first_v2 = got
        .iter()
        .position(|m| m["version"] == "2")
        .expect("v2 published");
    assert!(
        got[first_v2..].iter().all(|m| m["version"] == "2"),
        "{got:?}"
    );
    assert!(!broker.log_text().to_lowercase().contains("protocol error"));
}

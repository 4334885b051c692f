//! Lambda functions with `IOT_CORE` event sources, through the IoT Core
//! bridge to a real mosquitto standing in for AWS IoT Core
//! (tests/src/mosquitto.rs): an `IOT_CORE` wildcard source and a `PUB_SUB`
//! source on one function both fire with the concrete topic (`lambda.md` §8
//! row 24), and a function started while the cloud is unreachable gets all
//! its local events, then its cloud ones once the cloud is back (field
//! case BR-25).

mod lambda_common;

use std::time::Duration;

use ggipc_tests::BrokerProcess;
use ggipc_tests::mosquitto::Mosquitto;
use lambda_common::*;
use serde_json::{Value, json};

/// The bridge's MQTT client id.
const CLIENT: &str = "ggipc-lambda-bridge";

const RECORD: &str = r#"import json, os


def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"event": event,
                            "subject": context.client_context.custom["subject"]}) + "\n")
"#;

fn offline_function(code: &Code) -> ggipc_tests::ComponentSpec {
    lambda(
        "com.example.Offline",
        code,
        json!({
            "eventSources": [
                {"topic": "local/evt", "type": "PUB_SUB"},
                {"topic": "cloud/#", "type": "IOT_CORE"}
            ],
            "timeoutInSeconds": 3
        }),
    )
}

#[test]
fn a_function_started_offline_gets_local_events_then_cloud_ones_once_online() {
    let mut cloud = Mosquitto::start();
    // Unreachable from the broker's start.
    cloud.stop();
    let code = Code::new(&[("fn.py", RECORD)]);
    let broker = BrokerProcess::start_with_document(
        &[offline_function(&code), publisher()],
        json!({"iotCore": {
            "endpoint": cloud.url(),
            "clientId": CLIENT,
            "minimumReconnectDelayMs": 100,
            "maximumReconnectDelayMs": 400
        }}),
    );
    let mut conn = connect_publisher(&broker);
    for seq in 0..20 {
        publish_json(&mut conn, "local/evt", &json!({"seq": seq}));
    }
    let records = code.wait_count(
        &broker,
        "com.example.Offline",
        "event",
        20,
        Duration::from_secs(20),
    );
    let seqs: Vec<Value> = records.iter().map(|r| r["event"]["seq"].clone()).collect();
    assert_eq!(seqs, (0..20).map(|i| json!(i)).collect::<Vec<_>>());
    assert!(records.iter().all(|r| r["subject"] == "local/evt"));
    // The cloud comes back: the bridge subscribes the function's source and
    // its messages arrive with their own topic.
    cloud.restart();
    cloud.wait_subscriptions(CLIENT, &["cloud/#"], Duration::from_secs(20));
    cloud.publish("cloud/a/b", br#"{"from": "cloud"}"#, 1);
    publish_json(&mut conn, "local/evt", &json!({"seq": 20}));
    let records = code.wait_count(
        &broker,
        "com.example.Offline",
        "event",
        22,
        Duration::from_secs(20),
    );
    let cloud_record = records
        .iter()
        .find(|r| r["event"]["from"] == "cloud")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(cloud_record["subject"], "cloud/a/b");
    assert!(records.iter().any(|r| r["event"]["seq"] == 20));
    let log = broker.component_log("com.example.Offline");
    assert!(!log.contains("is not served"), "{log}");
}

#[test]
fn without_an_iot_core_section_iot_core_sources_are_said_not_served() {
    let code = Code::new(&[("fn.py", RECORD)]);
    let broker = BrokerProcess::start(&[offline_function(&code), publisher()], json!({}));
    let log = broker.wait_component_log("com.example.Offline", "lambda-launch", 1);
    let line = log
        .lines()
        .find(|l| l.contains("lambda-source"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(
            "IOT_CORE event source cloud/# is not served: the deployment has no iotCore section"
        ),
        "{line}"
    );
    // The local source is served all the same.
    let mut conn = connect_publisher(&broker);
    publish_json(&mut conn, "local/evt", &json!({"seq": 1}));
    code.wait_count(
        &broker,
        "com.example.Offline",
        "event",
        1,
        Duration::from_secs(20),
    );
}

//! Deployments brought by SIGHUP: subscribers of component updates hear of
//! them first and may defer them; a failed deployment with the ROLLBACK
//! policy puts the previous one back.

use std::time::{Duration, Instant};

use ggipc_protocol::rpc::MessageType;
use ggipc_tests::{BrokerProcess, ComponentSpec, RawConn};
use serde_json::{Value, json};

fn runs(name: &str, script: &str) -> ComponentSpec {
    ComponentSpec::new(name, json!({})).with_recipe(json!({
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"run": script}}]
    }))
}

#[test]
fn subscribers_hear_of_an_update_and_a_deferral_postpones_it() {
    let watcher = ComponentSpec::new("com.example.Watcher", json!({}));
    let mut broker = BrokerProcess::start(
        &[
            watcher.clone(),
            runs("com.example.App", "echo v1; sleep 300"),
        ],
        json!({}),
    );
    let mut conn = RawConn::connect(&broker.socket, broker.token("com.example.Watcher"));
    let sub = conn.request("SubscribeToComponentUpdates", &json!({}));
    let response = conn.recv().unwrap();
    assert_eq!(
        response.service_model_type.as_ref().unwrap(),
        "aws.greengrass#SubscribeToComponentUpdatesResponse"
    );
    assert!(!response.terminates());
    // Not waiting for any update: a deferral is refused.
    conn.request("DeferComponentUpdate", &json!({"deploymentId": "nope"}));
    assert_eq!(
        conn.recv().unwrap().service_model_type.unwrap().as_str(),
        "aws.greengrass#ServiceError"
    );

    let answerer = std::thread::spawn(move || {
        let mut events = Vec::new();
        let mut first_seen = None;
        while events.len() < 3 {
            let m = conn.recv().expect("event");
            if m.stream_id != sub {
                assert_eq!(m.message_type, MessageType::ApplicationMessage);
                continue;
            }
            let body: Value = serde_json::from_slice(m.payload()).unwrap();
            if let Some(pre) = body.get("preUpdateEvent") {
                let id = pre["deploymentId"].as_str().unwrap().to_owned();
                assert_eq!(pre["isGgcRestarting"], false);
                // Defer the first time, let it go the second.
                let recheck = if first_seen.is_none() { 1000 } else { 0 };
                first_seen.get_or_insert(Instant::now());
                conn.request(
                    "DeferComponentUpdate",
                    &json!({"deploymentId": id, "message": "busy", "recheckAfterMs": recheck}),
                );
            }
            events.push((Instant::now(), body));
        }
        (events, first_seen.unwrap())
    });
    broker.redeploy(&[watcher, runs("com.example.App", "echo v2; sleep 300")]);
    let reloaded_at = Instant::now();
    let (events, first_pre) = answerer.join().unwrap();
    assert!(events[0].1.get("preUpdateEvent").is_some());
    assert!(events[1].1.get("preUpdateEvent").is_some());
    assert_eq!(
        events[0].1["preUpdateEvent"]["deploymentId"],
        events[1].1["preUpdateEvent"]["deploymentId"]
    );
    assert!(
        events[1].0 - first_pre >= Duration::from_millis(900),
        "deferral not honoured"
    );
    assert!(reloaded_at - first_pre >= Duration::from_millis(900));
    assert_eq!(
        events[2].1["postUpdateEvent"]["deploymentId"],
        events[0].1["preUpdateEvent"]["deploymentId"]
    );
    // The new version was started before postUpdate; its output follows.
    broker.wait_component_log("com.example.App", "stdout. v2", 1);
}

#[test]
fn a_failed_deployment_with_rollback_restores_the_previous_components() {
    let operator = ComponentSpec::new(
        "com.example.Operator",
        json!({"aws.greengrass.Cli": {"op": {"operations": ["*"], "resources": ["*"]}}}),
    );
    let good = runs("com.example.App", "echo good; sleep 300");
    let mut broker = BrokerProcess::start(&[operator.clone(), good.clone()], json!({}));
    // The first run prints before the reload stops it, so the count of
    // "good" below is two only if the previous version comes back.
    broker.wait_component_log("com.example.App", "stdout. good", 1);
    broker.redeploy_with(
        &[
            operator,
            runs("com.example.App", "echo bad; exit 1"),
            runs("com.example.New", "sleep 300"),
        ],
        json!({"deploymentPolicies": {
            "failureHandlingPolicy": "ROLLBACK",
            "componentUpdatePolicy": {"timeoutInSeconds": 20, "action": "NOTIFY_COMPONENTS"}
        }}),
    );
    broker.wait_log("deployment rolled back", 1);
    let mut op = RawConn::connect(&broker.socket, broker.token("com.example.Operator"));
    op.request("ListComponents", &json!({}));
    let body: Value = serde_json::from_slice(op.recv().unwrap().payload()).unwrap();
    let names: Vec<&str> = body["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["componentName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["com.example.App", "com.example.Operator"],
        "the added component is gone"
    );
    // The previous version runs again: "rolled back" is logged once it is
    // started, and its output follows.
    broker.wait_component_log("com.example.App", "stdout. good", 2);
    // Back once, not twice.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        broker.component_log_count("com.example.App", "stdout. good"),
        2
    );
}

//! The configuration operations through the real broker with the unmodified
//! Python SDK: GetConfiguration, UpdateConfiguration,
//! SubscribeToConfigurationUpdate and the validation pair, allowed and
//! refused. None needs a policy, as in the nucleus; the components here
//! have none.

use std::time::{SystemTime, UNIX_EPOCH};

use ggipc_tests::{
    BrokerProcess, ComponentSpec, PythonScenario, json_lines, python_command, run_python,
};
use serde_json::{Value, json};

const A: &str = "com.example.A";
const B: &str = "com.example.B";

/// A component with this recipe `DefaultConfiguration` and no policies.
fn component(name: &str, configuration: Value) -> ComponentSpec {
    ComponentSpec::new(name, json!({}))
        .with_recipe(json!({"ComponentConfiguration": {"DefaultConfiguration": configuration}}))
}

fn start() -> BrokerProcess {
    BrokerProcess::start(
        &[
            component(
                A,
                json!({"mqtt": {"port": 8883, "host": "h"}, "list": [1, 2], "_private": 1}),
            ),
            component(B, json!({"b": {"c": true}})),
        ],
        json!({}),
    )
}

fn ops(broker: &BrokerProcess, component: &str, spec: Value) -> Vec<Value> {
    json_lines(&run_python(
        broker,
        component,
        "config_scenarios.py",
        &["ops", &spec.to_string()],
    ))
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn error(name: &str, message: &str, op: &str) -> Value {
    json!({"op": op, "error": name, "message": message})
}

fn got(component: &str, value: Value) -> Value {
    json!({"op": "get", "ok": true, "componentName": component, "value": value})
}

fn updated() -> Value {
    json!({"op": "update", "ok": true})
}

#[test]
fn get_configuration_reads_by_key_path_in_any_component() {
    let broker = start();
    let results = ops(
        &broker,
        A,
        json!([
            {"op": "get", "args": {"key_path": []}},
            {"op": "get", "args": {}},
            {"op": "get", "args": {"key_path": ["mqtt", "port"]}},
            {"op": "get", "args": {"key_path": ["mqtt"]}},
            {"op": "get", "args": {"key_path": ["list"]}},
            {"op": "get", "args": {"key_path": ["MQTT", "Port"]}},
            {"op": "get", "args": {"key_path": ["_private"]}},
            {"op": "get", "args": {"component_name": B, "key_path": ["b"]}},
            {"op": "get", "args": {"component_name": B, "key_path": ["b", "c"]}},
            {"op": "get", "args": {"key_path": ["mqtt", "nope"]}},
            {"op": "get", "args": {"key_path": ["list", "0"]}},
            {"op": "get", "args": {"component_name": "com.example.Missing", "key_path": []}},
        ]),
    );
    let whole = json!({"mqtt": {"port": 8883, "host": "h"}, "list": [1, 2]});
    let not_found = error("ResourceNotFoundError", "Key not found", "get");
    assert_eq!(
        results,
        vec![
            // Keys starting with `_` are hidden from a container's value, as
            // the nucleus' toPOJO hides them.
            got(A, whole.clone()),
            got(A, whole),
            got(A, json!({"port": 8883})),
            got(A, json!({"port": 8883, "host": "h"})),
            got(A, json!({"list": [1, 2]})),
            // Keys compare without case; the leaf's key is as stored.
            got(A, json!({"port": 8883})),
            got(A, json!({"_private": 1})),
            got(B, json!({"c": true})),
            got(B, json!({"c": true})),
            not_found.clone(),
            not_found.clone(),
            not_found,
        ]
    );
}

#[test]
fn update_configuration_merges_into_the_callers_configuration() {
    let broker = start();
    let results = ops(
        &broker,
        A,
        json!([
            {"op": "update", "args": {"key_path": ["mqtt"], "timestamp": "now",
                                      "value_to_merge": {"port": 443, "tls": {"on": true}}}},
            {"op": "update", "args": {"timestamp": "now", "value_to_merge": {"new": [1, "x"]}}},
            {"op": "update", "args": {"key_path": ["fresh", "path"], "timestamp": "now",
                                      "value_to_merge": {"k": null}}},
            {"op": "get", "args": {"key_path": []}},
        ]),
    );
    assert_eq!(
        results,
        vec![
            updated(),
            updated(),
            updated(),
            got(
                A,
                json!({
                    "mqtt": {"port": 443, "host": "h", "tls": {"on": true}},
                    "list": [1, 2],
                    "new": [1, "x"],
                    "fresh": {"path": {"k": null}},
                })
            ),
        ]
    );
    // Another component sees the change; its own configuration is untouched.
    let results = ops(
        &broker,
        B,
        json!([
            {"op": "get", "args": {"component_name": A, "key_path": ["mqtt", "port"]}},
            {"op": "get", "args": {"key_path": []}},
        ]),
    );
    assert_eq!(
        results,
        vec![
            got(A, json!({"port": 443})),
            got(B, json!({"b": {"c": true}}))
        ]
    );
}

#[test]
fn update_configuration_refuses_what_the_nucleus_refuses() {
    let broker = start();
    let t = now();
    let refused = "Config update is not allowed for following fields [accessControl]";
    let results = ops(
        &broker,
        A,
        json!([
            {"op": "update", "args": {"timestamp": t, "value_to_merge": {"accessControl": {}}}},
            {"op": "update", "args": {"key_path": ["accessControl", "x"], "timestamp": t,
                                      "value_to_merge": {"y": 1}}},
            {"op": "update", "args": {"value_to_merge": {"x": 1}}},
            {"op": "update", "args": {"timestamp": t}},
            {"op": "update", "args": {"key_path": ["mqtt", "port"], "timestamp": t,
                                      "value_to_merge": {"x": 1}}},
            {"op": "update", "args": {"key_path": ["mqtt"], "timestamp": t,
                                      "value_to_merge": {"host": {"x": 1}}}},
            // A write at t, then one from 100 s earlier: stale.
            {"op": "update", "args": {"key_path": ["mqtt"], "timestamp": t,
                                      "value_to_merge": {"port": 1}}},
            {"op": "update", "args": {"key_path": ["mqtt"], "timestamp": t - 100.0,
                                      "value_to_merge": {"port": 2, "host": "old"}}},
            {"op": "get", "args": {"key_path": ["mqtt"]}},
            // The same time is not stale.
            {"op": "update", "args": {"key_path": ["mqtt"], "timestamp": t,
                                      "value_to_merge": {"port": 3}}},
            {"op": "get", "args": {"key_path": ["mqtt", "port"]}},
        ]),
    );
    assert_eq!(
        results,
        vec![
            error("InvalidArgumentsError", refused, "update"),
            error("InvalidArgumentsError", refused, "update"),
            error("InvalidArgumentsError", "Timestamp is required", "update"),
            error(
                "InvalidArgumentsError",
                "ValueToMerge is required",
                "update"
            ),
            error(
                "InvalidArgumentsError",
                "mqtt.port is already a leaf, cannot become a container",
                "update"
            ),
            error(
                "InvalidArgumentsError",
                "mqtt.host is already a leaf, cannot become a container",
                "update"
            ),
            updated(),
            error(
                "FailedUpdateConditionCheckError",
                "Proposed timestamp is older than the config's latest modified timestamp",
                "update"
            ),
            // The refused update changed nothing.
            got(A, json!({"port": 1, "host": "h"})),
            updated(),
            got(A, json!({"port": 3})),
        ]
    );
}

/// A watcher in the background, done once it sees the event for `until`.
fn watcher(broker: &BrokerProcess, component: &str, args: &[&str]) -> PythonScenario {
    let mut full = vec!["watch"];
    full.extend_from_slice(args);
    PythonScenario::start_command(
        broker,
        python_command(broker, component, "config_scenarios.py", &full),
    )
}

fn event(component: &str, key_path: &[&str]) -> Value {
    json!({"componentName": component, "keyPath": key_path})
}

#[test]
fn subscribers_hear_of_each_changed_key_at_or_below_their_node() {
    let broker = start();
    // A watches its whole configuration; B watches A's `mqtt` node, which
    // needs no policy, as in the nucleus.
    let own = watcher(&broker, A, &["--until", "done"]);
    let other = watcher(
        &broker,
        B,
        &[
            "--component",
            A,
            "--key-path",
            r#"["mqtt"]"#,
            "--until",
            "mqtt/done",
        ],
    );
    let results = ops(
        &broker,
        A,
        json!([
            {"op": "update", "args": {"key_path": ["mqtt"], "timestamp": "now",
                                      "value_to_merge": {"port": 1, "host": "h"}}},
            {"op": "update", "args": {"timestamp": "now",
                                      "value_to_merge": {"list": [3], "n": {"deep": 1, "e": {}}}}},
            // The same value again: no event.
            {"op": "update", "args": {"timestamp": "now", "value_to_merge": {"list": [3]}}},
            {"op": "update", "args": {"key_path": ["mqtt"], "timestamp": "now",
                                      "value_to_merge": {"done": true}}},
            {"op": "update", "args": {"timestamp": "now", "value_to_merge": {"done": true}}},
        ]),
    );
    assert!(
        results.iter().all(|r| r["ok"] == json!(true)),
        "{results:?}"
    );
    let done = json!({"event": "done", "reached_until": true});
    assert_eq!(
        own.finish(),
        vec![
            event(A, &["mqtt", "port"]),
            event(A, &["list"]),
            event(A, &["n", "deep"]),
            event(A, &["mqtt", "done"]),
            event(A, &["done"]),
            done.clone(),
        ]
    );
    assert_eq!(
        other.finish(),
        vec![
            event(A, &["mqtt", "port"]),
            event(A, &["mqtt", "done"]),
            done
        ]
    );
}

#[test]
fn subscribing_to_a_missing_key_or_component_is_not_found() {
    let broker = start();
    let results = ops(
        &broker,
        A,
        json!([
            {"op": "watch", "args": {"key_path": ["mqtt", "nope"]}},
            {"op": "watch", "args": {"component_name": "com.example.Missing", "key_path": []}},
            {"op": "watch", "args": {"key_path": ["mqtt", "port"]}},
            {"op": "watch", "args": {"component_name": B, "key_path": []}},
        ]),
    );
    let not_found = error("ResourceNotFoundError", "Key not found", "watch");
    let ok = json!({"op": "watch", "ok": true, "events": []});
    assert_eq!(results, vec![not_found.clone(), not_found, ok.clone(), ok]);
}

#[test]
fn validation_subscriptions_stay_open_and_unrequested_reports_are_refused() {
    let broker = start();
    let results = ops(
        &broker,
        A,
        json!([
            {"op": "validate", "args": {}},
            {"op": "report", "args": {"status": "ACCEPTED", "deployment_id": "d-1"}},
        ]),
    );
    assert_eq!(
        results,
        vec![
            json!({"op": "validate", "ok": true, "events": [], "closed_by_broker": false}),
            error(
                "InvalidArgumentsError",
                "Validation request either timed out or was never made",
                "report"
            ),
        ]
    );
}

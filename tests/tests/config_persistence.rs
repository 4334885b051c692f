//! Configuration updates made over IPC outlive the broker: a clean restart,
//! a crash right after the answer, and a reloaded deployment, which wins
//! only for the keys it changed.

use std::os::unix::fs::PermissionsExt;
use std::time::{SystemTime, UNIX_EPOCH};

use ggipc_tests::{
    BrokerProcess, ComponentSpec, PythonScenario, json_lines, python_command, run_python,
};
use serde_json::{Value, json};

const A: &str = "com.example.A";

fn component(configuration: Value) -> ComponentSpec {
    ComponentSpec::new(A, json!({}))
        .with_recipe(json!({"ComponentConfiguration": {"DefaultConfiguration": configuration}}))
}

fn ops(broker: &BrokerProcess, spec: Value) -> Vec<Value> {
    json_lines(&run_python(
        broker,
        A,
        "config_scenarios.py",
        &["ops", &spec.to_string()],
    ))
}

fn get_all(broker: &BrokerProcess) -> Value {
    let results = ops(broker, json!([{"op": "get", "args": {"key_path": []}}]));
    assert_eq!(results[0]["ok"], json!(true), "{results:?}");
    results[0]["value"].clone()
}

fn update(broker: &BrokerProcess, key_path: &[&str], timestamp: Value, value: Value) -> Value {
    let results = ops(
        broker,
        json!([{"op": "update", "args": {
            "key_path": key_path, "timestamp": timestamp, "value_to_merge": value}}]),
    );
    results[0].clone()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn ok() -> Value {
    json!({"op": "update", "ok": true})
}

#[test]
fn an_update_survives_a_restart_with_its_time() {
    let mut broker = BrokerProcess::start(&[component(json!({"a": {"x": 1}}))], json!({}));
    let t = now();
    assert_eq!(
        update(&broker, &["a"], json!(t), json!({"x": 2, "y": "new"})),
        ok()
    );
    let file = broker.root.join("config/ipc-configuration.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", file.display());

    assert!(broker.terminate().success());
    broker.restart();
    assert_eq!(get_all(&broker), json!({"a": {"x": 2, "y": "new"}}));
    // The write's time was kept: an older one is still stale.
    assert_eq!(
        update(&broker, &["a"], json!(t - 10.0), json!({"x": 3}))["error"],
        json!("FailedUpdateConditionCheckError")
    );
}

#[test]
fn an_answered_update_survives_a_crash() {
    let mut broker = BrokerProcess::start(&[component(json!({"k": 1}))], json!({}));
    assert_eq!(update(&broker, &[], json!("now"), json!({"k": 2})), ok());
    // SIGKILL right after the answer: the answer came after the file was
    // on disk.
    broker.crash_and_restart();
    assert_eq!(get_all(&broker), json!({"k": 2}));
}

#[test]
fn a_redeploy_wins_for_the_keys_it_changed_and_watchers_hear_of_them() {
    let mut broker = BrokerProcess::start(&[component(json!({"a": 1, "b": 1}))], json!({}));
    assert_eq!(
        update(&broker, &[], json!("now"), json!({"a": 5, "b": 5})),
        ok()
    );
    let watcher = PythonScenario::start_command(
        &broker,
        python_command(
            &broker,
            A,
            "config_scenarios.py",
            &["watch", "--until", "c"],
        ),
    );
    // The deployment changes a, leaves b as it was, and adds c.
    broker.redeploy(&[component(json!({"a": 2, "b": 1, "c": 1}))]);
    assert_eq!(
        watcher.finish(),
        vec![
            json!({"componentName": A, "keyPath": ["a"]}),
            json!({"componentName": A, "keyPath": ["c"]}),
            json!({"event": "done", "reached_until": true}),
        ]
    );
    assert_eq!(get_all(&broker), json!({"a": 2, "b": 5, "c": 1}));

    // The same after a restart: the overridden write is forgotten.
    assert!(broker.terminate().success());
    broker.restart();
    assert_eq!(get_all(&broker), json!({"a": 2, "b": 5, "c": 1}));
}

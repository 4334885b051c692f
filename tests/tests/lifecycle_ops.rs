//! Lifecycle operations over IPC: UpdateState from a component about
//! itself, and ListComponents / GetComponentDetails / RestartComponent /
//! StopComponent for operators, allowed or denied by `aws.greengrass.Cli`
//! policies. Driven by the Python SDK and by raw frames.

use std::time::{Duration, Instant};

use ggipc_tests::{BrokerProcess, ComponentSpec, RawConn, json_lines, run_python};
use serde_json::{Value, json};

fn operator() -> ComponentSpec {
    ComponentSpec::new(
        "com.example.Operator",
        json!({"aws.greengrass.Cli": {"op:1": {
            "operations": [
                "aws.greengrass#ListComponents", "aws.greengrass#GetComponentDetails",
                "aws.greengrass#RestartComponent", "aws.greengrass#StopComponent"
            ],
            "resources": ["*"]
        }}}),
    )
}

fn worker() -> ComponentSpec {
    ComponentSpec::new("com.example.Worker", json!({})).with_recipe(json!({
        "ComponentConfiguration": {"DefaultConfiguration": {"accessControl": {}, "speed": 3}},
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"run": "echo run-started; sleep 300"}}]
    }))
}

fn starter() -> ComponentSpec {
    ComponentSpec::new("com.example.Starter", json!({})).with_recipe(json!({
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"startup": "sleep 300"}}]
    }))
}

fn call(conn: &mut RawConn, op: &str, payload: Value) -> (String, Value) {
    conn.request(op, &payload);
    let m = conn.recv().expect("answer");
    assert!(m.terminates());
    let shape = m.service_model_type.as_ref().unwrap().to_string();
    (shape, serde_json::from_slice(m.payload()).unwrap())
}

fn state_of(conn: &mut RawConn, name: &str) -> String {
    let (_, body) = call(conn, "GetComponentDetails", json!({"componentName": name}));
    body["componentDetails"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// UpdateState from `component` with the Python SDK; its result record.
fn report_state(broker: &BrokerProcess, component: &str, state: &str) -> Value {
    let spec = json!([{"op": "update_state", "args": {"state": state}}]);
    let out = run_python(
        broker,
        component,
        "ipc_scenarios.py",
        &["ops", &spec.to_string()],
    );
    json_lines(&out).remove(0)
}

fn wait_state(conn: &mut RawConn, name: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while state_of(conn, name) != state {
        assert!(Instant::now() < deadline, "{name} never {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn operators_list_inspect_restart_and_stop_components() {
    let broker = BrokerProcess::start(
        &[
            operator(),
            worker(),
            ComponentSpec::new("com.example.NoRights", json!({})),
        ],
        json!({}),
    );
    let mut op = RawConn::connect(&broker.socket, broker.token("com.example.Operator"));
    wait_state(&mut op, "com.example.Worker", "RUNNING");
    broker.wait_component_log("com.example.Worker", "stdout. run-started", 1);

    let (shape, body) = call(&mut op, "ListComponents", json!({}));
    assert_eq!(shape, "aws.greengrass#ListComponentsResponse");
    let names: Vec<&str> = body["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["componentName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "com.example.NoRights",
            "com.example.Operator",
            "com.example.Worker"
        ]
    );
    let worker = &body["components"][2];
    assert_eq!(worker["version"], "1.0.0");
    assert_eq!(worker["state"], "RUNNING");
    assert_eq!(worker["configuration"]["speed"], 3);

    let (shape, body) = call(
        &mut op,
        "GetComponentDetails",
        json!({"componentName": "nope"}),
    );
    assert_eq!(shape, "aws.greengrass#ResourceNotFoundError");
    assert_eq!(
        body["message"],
        "Component with name nope not found in Greengrass"
    );
    let (shape, body) = call(&mut op, "GetComponentDetails", json!({"componentName": ""}));
    assert_eq!(shape, "aws.greengrass#InvalidArgumentsError");
    assert_eq!(body["message"], "Component name cannot be empty");

    let (shape, body) = call(
        &mut op,
        "RestartComponent",
        json!({"componentName": "com.example.Worker"}),
    );
    assert_eq!(shape, "aws.greengrass#RestartComponentResponse");
    assert_eq!(body["restartStatus"], "SUCCEEDED");
    broker.wait_component_log("com.example.Worker", "stdout. run-started", 2);
    let (_, body) = call(
        &mut op,
        "StopComponent",
        json!({"componentName": "com.example.Worker"}),
    );
    assert_eq!(body["stopStatus"], "SUCCEEDED");
    wait_state(&mut op, "com.example.Worker", "FINISHED");
    let (shape, body) = call(&mut op, "StopComponent", json!({"componentName": "nope"}));
    assert_eq!(shape, "aws.greengrass#ResourceNotFoundError");
    assert_eq!(
        body["message"],
        "Component with name nope not found in Greengrass"
    );

    // Without a policy: UnauthorizedError naming the operation.
    let mut none = RawConn::connect(&broker.socket, broker.token("com.example.NoRights"));
    for (op_name, payload) in [
        ("ListComponents", json!({})),
        (
            "GetComponentDetails",
            json!({"componentName": "com.example.Worker"}),
        ),
        (
            "RestartComponent",
            json!({"componentName": "com.example.Worker"}),
        ),
        (
            "StopComponent",
            json!({"componentName": "com.example.Worker"}),
        ),
    ] {
        let (shape, body) = call(&mut none, op_name, payload);
        assert_eq!(shape, "aws.greengrass#UnauthorizedError", "{op_name}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("aws.greengrass.Cli:aws.greengrass#{op_name}"))
        );
    }
}

/// UpdateState ERRORED from a running component is a failure like an exit
/// (`semantics.md` §5.1): the component is restarted, and the third report
/// within the hour makes it BROKEN. The first one goes through the Python
/// SDK, the others as raw frames.
#[test]
fn a_component_reporting_errored_is_restarted_and_broken_on_the_third() {
    let broker = BrokerProcess::start(&[operator(), worker()], json!({}));
    let mut op = RawConn::connect(&broker.socket, broker.token("com.example.Operator"));
    broker.wait_component_log("com.example.Worker", "stdout. run-started", 1);
    let report = report_state(&broker, "com.example.Worker", "ERRORED");
    assert_eq!(report["ok"], true, "{report}");
    broker.wait_component_log("com.example.Worker", "stdout. run-started", 2);
    assert!(
        broker
            .component_log("com.example.Worker")
            .contains("the component reported ERRORED")
    );
    for attempt in 2..=3 {
        // Its state is RUNNING again before the next report counts.
        wait_state(&mut op, "com.example.Worker", "RUNNING");
        let mut me = RawConn::connect(&broker.socket, broker.token("com.example.Worker"));
        let (shape, _) = call(&mut me, "UpdateState", json!({"state": "ERRORED"}));
        assert_eq!(shape, "aws.greengrass#UpdateStateResponse");
        if attempt == 2 {
            broker.wait_component_log("com.example.Worker", "stdout. run-started", 3);
        }
    }
    wait_state(&mut op, "com.example.Worker", "BROKEN");
}

/// A stop that arrives while a restart is still stopping the old process
/// waits for the restart and then stops the new one; it is not lost.
#[test]
fn a_stop_during_a_restart_stops_the_restarted_component() {
    // SIGTERM takes 3 s to handle (within the 5 s grace), so the restart is
    // still stopping the old process when the stop comes.
    let slow_to_stop = ComponentSpec::new("com.example.Worker", json!({})).with_recipe(json!({
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {
            "run": "trap 'sleep 3; exit 0' TERM; echo run-started; sleep 300 & wait"
        }}]
    }));
    let broker = BrokerProcess::start(&[operator(), slow_to_stop], json!({}));
    let mut op = RawConn::connect(&broker.socket, broker.token("com.example.Operator"));
    broker.wait_component_log("com.example.Worker", "stdout. run-started", 1);
    let worker = json!({"componentName": "com.example.Worker"});
    let (_, body) = call(&mut op, "RestartComponent", worker.clone());
    assert_eq!(body["restartStatus"], "SUCCEEDED");
    let (_, body) = call(&mut op, "StopComponent", worker);
    assert_eq!(body["stopStatus"], "SUCCEEDED");
    // The restart happened (the new process may be stopped before it
    // prints anything), and then the stop. Between the two runs the state
    // is FINISHED for a moment too, so both are waited for together.
    let runs = |log: String| {
        log.lines()
            .filter(|l| l.contains("com.example.Worker") && l.contains("to=RUNNING"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while runs(broker.log_text()) < 2 || state_of(&mut op, "com.example.Worker") != "FINISHED" {
        assert!(
            Instant::now() < deadline,
            "not restarted and then stopped:\n{}",
            broker.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And nothing starts it after.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state_of(&mut op, "com.example.Worker"), "FINISHED");
    assert_eq!(runs(broker.log_text()), 2);
}

#[test]
fn the_python_sdk_decodes_the_lifecycle_answers() {
    let broker = BrokerProcess::start(&[operator(), worker(), starter()], json!({}));
    let mut op = RawConn::connect(&broker.socket, broker.token("com.example.Operator"));
    wait_state(&mut op, "com.example.Worker", "RUNNING");
    let out = run_python(
        &broker,
        "com.example.Operator",
        "ipc_scenarios.py",
        &[
            "ops",
            &json!([
                {"op": "list_components"},
                {"op": "get_component_details", "args": {"component_name": "com.example.Worker"}},
                {"op": "restart_component", "args": {"component_name": "com.example.Worker"}},
                {"op": "get_component_details", "args": {"component_name": "missing"}},
            ])
            .to_string(),
        ],
    );
    let r = json_lines(&out);
    assert_eq!(r[0]["ok"], true, "{r:?}");
    assert!(
        r[0]["response"]
            .as_str()
            .unwrap()
            .contains("component_name='com.example.Worker'")
    );
    assert!(
        r[1]["response"]
            .as_str()
            .unwrap()
            .contains("state='RUNNING'"),
        "{}",
        r[1]
    );
    assert!(
        r[2]["response"].as_str().unwrap().contains("SUCCEEDED"),
        "{}",
        r[2]
    );
    assert_eq!(r[3]["error"], "ResourceNotFoundError");
}

#[test]
fn update_state_moves_the_caller_only_along_allowed_transitions() {
    let broker = BrokerProcess::start(&[operator(), starter()], json!({}));
    let mut op = RawConn::connect(&broker.socket, broker.token("com.example.Operator"));
    wait_state(&mut op, "com.example.Starter", "STARTING");
    let report = report_state(&broker, "com.example.Starter", "RUNNING");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(state_of(&mut op, "com.example.Starter"), "RUNNING");
    // The operator is FINISHED (nothing to run): RUNNING is not a transition
    // it may report, so nothing changes, and the call still succeeds.
    let (shape, _) = call(&mut op, "UpdateState", json!({"state": "RUNNING"}));
    assert_eq!(shape, "aws.greengrass#UpdateStateResponse");
    assert_eq!(state_of(&mut op, "com.example.Operator"), "FINISHED");
    let (shape, _) = call(&mut op, "UpdateState", json!({"state": "BROKEN"}));
    assert_eq!(shape, "aws.greengrass#InvalidArgumentsError");
}

#[test]
fn every_lifecycle_operation_through_the_python_sdk_allowed_and_denied() {
    let broker = BrokerProcess::start(
        &[
            operator(),
            worker(),
            ComponentSpec::new("com.example.NoRights", json!({})),
            ComponentSpec::new("aws.greengrass.StreamManager", json!({})),
        ],
        json!({}),
    );
    let mut op = RawConn::connect(&broker.socket, broker.token("com.example.Operator"));
    wait_state(&mut op, "com.example.Worker", "RUNNING");
    let py = |component: &str, spec: Value| {
        json_lines(&run_python(
            &broker,
            component,
            "ipc_scenarios.py",
            &["ops", &spec.to_string()],
        ))
    };

    let allowed = py(
        "com.example.Operator",
        json!([
            {"op": "subscribe_to_component_updates"},
            {"op": "defer_component_update", "args": {"deployment_id": "d1", "recheck_after_ms": 0}},
            {"op": "stop_component", "args": {"component_name": "com.example.Worker"}},
        ]),
    );
    assert_eq!(allowed[0]["ok"], true, "{allowed:?}");
    // Subscribed (the first call's stream is still open), but no update is
    // waiting for an answer.
    assert_eq!(allowed[1]["error"], "ServiceError", "{}", allowed[1]);
    assert!(
        allowed[2]["response"]
            .as_str()
            .unwrap()
            .contains("SUCCEEDED"),
        "{}",
        allowed[2]
    );
    wait_state(&mut op, "com.example.Worker", "FINISHED");

    let denied = py(
        "com.example.NoRights",
        json!([
            {"op": "list_components"},
            {"op": "get_component_details", "args": {"component_name": "com.example.Worker"}},
            {"op": "restart_component", "args": {"component_name": "com.example.Worker"}},
            {"op": "stop_component", "args": {"component_name": "com.example.Worker"}},
            {"op": "validate_authorization_token", "args": {"token": "x"}},
            {"op": "defer_component_update", "args": {"deployment_id": "d1"}},
        ]),
    );
    for r in &denied[..5] {
        assert_eq!(r["error"], "UnauthorizedError", "{r}");
    }
    assert_eq!(denied[5]["error"], "InvalidArgumentsError", "{}", denied[5]);

    let sm_token = broker.token("com.example.Worker").to_owned();
    let sm = py(
        "aws.greengrass.StreamManager",
        json!([
            {"op": "validate_authorization_token", "args": {"token": sm_token}},
            {"op": "validate_authorization_token", "args": {"token": "nope"}},
        ]),
    );
    assert!(
        sm[0]["response"]
            .as_str()
            .unwrap()
            .contains("is_valid=True"),
        "{}",
        sm[0]
    );
    assert_eq!(sm[1]["error"], "InvalidTokenError");
}

//! The unmodified Python SDK (`awsiotsdk`, GreengrassCoreIPCClientV2)
//! publishing and subscribing through the real broker binary.

use std::thread;

use base64::Engine as _;
use ggipc_tests::{
    BrokerProcess, ComponentSpec, PythonScenario, RawConn, json_lines, python_command, run_python,
};
use serde_json::{Value, json};

/// A Python subscriber running in the background.
struct Subscriber;

impl Subscriber {
    fn start(broker: &BrokerProcess, component: &str, args: &[&str]) -> PythonScenario {
        let mut full = vec!["subscribe"];
        full.extend_from_slice(args);
        PythonScenario::start(broker, component, &full)
    }
}

fn publish(broker: &BrokerProcess, component: &str, args: &[&str]) -> Value {
    let mut full = vec!["publish"];
    full.extend_from_slice(args);
    let lines = json_lines(&run_python(broker, component, "ipc_scenarios.py", &full));
    lines
        .into_iter()
        .last()
        .expect("publisher printed a result")
}

fn ops(broker: &BrokerProcess, component: &str, spec: Value) -> Vec<Value> {
    json_lines(&run_python(
        broker,
        component,
        "ipc_scenarios.py",
        &["ops", &spec.to_string()],
    ))
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[test]
fn json_and_binary_messages_arrive_as_published_with_the_topic() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Sub"),
            ComponentSpec::pubsub_all("com.example.Pub"),
        ],
        json!({}),
    );
    let sub = Subscriber::start(&broker, "com.example.Sub", &["test/#", "3"]);
    let binary = [0xffu8, 0x00, 0xc3, 0x28];
    assert_eq!(
        publish(
            &broker,
            "com.example.Pub",
            &["test/a", "--json", r#"{"a": 1, "b": [1, 2], "é": "ü"}"#]
        ),
        json!({"ok": true})
    );
    assert_eq!(
        publish(
            &broker,
            "com.example.Pub",
            &["test/b/c", "--binary-b64", &b64(&binary)]
        ),
        json!({"ok": true})
    );
    // `#` also matches its parent level, as in MQTT.
    assert_eq!(
        publish(&broker, "com.example.Pub", &["test", "--json", "{}"]),
        json!({"ok": true})
    );
    let got = sub.finish();
    assert_eq!(
        got,
        vec![
            json!({"topic": "test/a", "json": {"a": 1, "b": [1, 2], "é": "ü"}}),
            json!({"topic": "test/b/c", "binary_b64": b64(&binary)}),
            json!({"topic": "test", "json": {}}),
            json!({"event": "done", "count": 3, "in_order": true, "last_seq": -1}),
        ]
    );
}

#[test]
fn wildcard_filters_route_only_matching_topics() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Sub"),
            ComponentSpec::pubsub_all("com.example.Pub"),
        ],
        json!({}),
    );
    let plus = Subscriber::start(
        &broker,
        "com.example.Sub",
        &["s/+/t", "2", "--timeout", "30"],
    );
    let unicode = Subscriber::start(
        &broker,
        "com.example.Sub",
        &["センサー/#", "1", "--timeout", "30"],
    );
    for topic in [
        "s/1/t",
        "s/1/2/t",
        "s/t",
        "s//t",
        "センサー/温度/1",
        "other",
    ] {
        assert_eq!(
            publish(&broker, "com.example.Pub", &[topic, "--json", "{}"]),
            json!({"ok": true}),
            "{topic}"
        );
    }
    let topics = |v: Vec<Value>| -> Vec<String> {
        v.iter()
            .filter_map(|r| r.get("topic").and_then(Value::as_str).map(str::to_owned))
            .collect()
    };
    assert_eq!(topics(plus.finish()), ["s/1/t", "s//t"]);
    assert_eq!(topics(unicode.finish()), ["センサー/温度/1"]);
}

#[test]
fn receive_mode_defaults_and_own_messages() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Self"),
            ComponentSpec::pubsub_all("com.example.Other"),
        ],
        json!({}),
    );
    // Each subscriber ends at Other's last message, the end marker, so no
    // wait is cut short by a timeout on a busy machine.
    // Wildcard filter: by default only others' messages.
    let wildcard = Subscriber::start(
        &broker,
        "com.example.Self",
        &["m/#", "2", "--timeout", "30"],
    );
    // Exact filter: by default everything, own messages too.
    let exact = Subscriber::start(
        &broker,
        "com.example.Self",
        &["m/x", "3", "--timeout", "30"],
    );
    let all = Subscriber::start(
        &broker,
        "com.example.Self",
        &[
            "m/#",
            "3",
            "--timeout",
            "30",
            "--receive-mode",
            "RECEIVE_ALL_MESSAGES",
        ],
    );
    // Identity is the component, not the connection: another process with
    // the same token counts as "self".
    publish(
        &broker,
        "com.example.Self",
        &["m/x", "--json", r#"{"from": "self"}"#],
    );
    publish(
        &broker,
        "com.example.Other",
        &["m/x", "--json", r#"{"from": "other"}"#],
    );
    publish(
        &broker,
        "com.example.Other",
        &["m/x", "--json", r#"{"from": "end"}"#],
    );
    let froms = |v: Vec<Value>| -> Vec<String> {
        v.iter()
            .filter_map(|r| {
                r.pointer("/json/from")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect()
    };
    assert_eq!(froms(wildcard.finish()), ["other", "end"]);
    assert_eq!(froms(exact.finish()), ["self", "other", "end"]);
    assert_eq!(froms(all.finish()), ["self", "other", "end"]);
}

#[test]
fn denied_operations_answer_unauthorized_and_deliver_nothing() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::new(
                "com.example.Limited",
                json!({"aws.greengrass.ipc.pubsub": {
                    "com.example.Limited:pubsub:1": {
                        "operations": ["aws.greengrass#PublishToTopic"],
                        "resources": ["allowed/*"]
                    },
                    "com.example.Limited:pubsub:2": {
                        "operations": ["aws.greengrass#SubscribeToTopic"],
                        "resources": ["demo", "demo/request"]
                    }
                }}),
            ),
            ComponentSpec::pubsub_all("com.example.Watcher"),
        ],
        json!({}),
    );
    let watcher = Subscriber::start(
        &broker,
        "com.example.Watcher",
        &["#", "1", "--timeout", "30"],
    );
    let results = ops(
        &broker,
        "com.example.Limited",
        json!([
            {"op": "publish_to_topic", "args": {"topic": "denied/x", "publish_message": {"json": {"n": 1}}}},
            {"op": "subscribe_to_topic", "args": {"topic": "demo"}},
            {"op": "subscribe_to_topic", "args": {"topic": "demo/request"}},
            {"op": "subscribe_to_topic", "args": {"topic": "demo/other"}},
            {"op": "publish_to_topic", "args": {"topic": "allowed/x/y", "publish_message": {"json": {"n": 2}}}},
        ]),
    );
    assert_eq!(results[0]["error"], "UnauthorizedError");
    assert_eq!(
        results[0]["message"],
        "Principal com.example.Limited is not authorized to perform \
         aws.greengrass.ipc.pubsub:aws.greengrass#PublishToTopic on resource denied/x"
    );
    // Two policies of one component combine (field case BR-04).
    assert_eq!(results[1]["ok"], true);
    assert_eq!(results[2]["ok"], true);
    assert_eq!(results[3]["error"], "UnauthorizedError");
    assert_eq!(results[4]["ok"], true, "{results:?}");
    // Only the allowed publish reached the watcher.
    let seen = watcher.finish();
    assert_eq!(seen[0]["topic"], "allowed/x/y");
    assert_eq!(seen.last().unwrap()["count"], 1);
    assert!(broker.log_text().contains("operation denied"));
}

#[test]
fn bad_arguments_get_modeled_errors_on_their_own_stream() {
    let broker = BrokerProcess::start(&[ComponentSpec::pubsub_all("com.example.V")], json!({}));
    let mut spec = Vec::new();
    for topic in ["a/+/b", "a/#", "a/*", "temp+hum"] {
        spec.push(json!({"op": "publish_to_topic", "args": {"topic": topic, "publish_message": {"json": {}}}}));
    }
    spec.push(json!({"op": "publish_to_topic", "args": {"topic": "t", "publish_message": {}}}));
    spec.push(json!({"op": "publish_to_topic", "args": {"topic": "t", "publish_message": {"json": [1, 2, 3]}}}));
    spec.push(json!({"op": "subscribe_to_topic", "args": {"topic": ""}}));
    spec.push(json!({"op": "subscribe_to_topic", "args": {"topic": "a/#/b"}}));
    spec.push(json!({"op": "get_secret_value", "args": {"secret_id": "s"}}));
    // The connection survives all of the above.
    spec.push(json!({"op": "publish_to_topic", "args": {"topic": "t", "publish_message": {"json": {"ok": 1}}}}));
    let results = ops(&broker, "com.example.V", Value::Array(spec));
    assert_eq!(results.len(), 10);
    for r in &results[..8] {
        assert_eq!(r["error"], "InvalidArgumentsError", "{r}");
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}");
    }
    assert!(results[0]["message"].as_str().unwrap().contains("wildcard"));
    assert!(
        results[5]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object")
    );
    assert_eq!(results[8]["error"], "ServiceError");
    assert!(
        results[8]["message"]
            .as_str()
            .unwrap()
            .contains("not supported")
    );
    assert_eq!(results[9]["ok"], true);
}

#[test]
fn unknown_missing_and_borrowed_tokens() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::new(
                "com.example.A",
                json!({"aws.greengrass.ipc.pubsub": {"A:1": {"operations": ["*"], "resources": ["a/*"]}}}),
            ),
            ComponentSpec::new("com.example.B", json!({})),
        ],
        json!({}),
    );
    let out = python_command(&broker, "com.example.A", "ipc_scenarios.py", &["connect"])
        .env("SVCUID", "NOTATOKEN")
        .output()
        .unwrap();
    let r = &json_lines(&out)[0];
    assert_eq!(r["connected"], false, "{r}");
    // The refusal is answered, not left to the SDK's connect timeout.
    let seconds = r["seconds"].as_f64().unwrap();
    assert!(seconds < 5.0, "refusal took {seconds} s");
    // B's token: accepted, but acting as B, which has no policy.
    let r = ops(
        &broker,
        "com.example.B",
        json!([{"op": "publish_to_topic", "args": {"topic": "a/1", "publish_message": {"json": {}}}}]),
    );
    assert_eq!(r[0]["error"], "UnauthorizedError");
    assert!(r[0]["message"].as_str().unwrap().contains("com.example.B"));
    // A's token from any process acts as A.
    let r = ops(
        &broker,
        "com.example.A",
        json!([{"op": "publish_to_topic", "args": {"topic": "a/1", "publish_message": {"json": {}}}}]),
    );
    assert_eq!(r[0]["ok"], true);
    // No token ever appears in the log.
    let log = broker.log_text();
    for c in ["com.example.A", "com.example.B"] {
        assert!(!log.contains(broker.token(c)), "token of {c} logged");
    }
    assert!(log.contains("unknown token"));
}

#[test]
fn a_client_sending_garbage_does_not_disturb_a_neighbour() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Sub"),
            ComponentSpec::pubsub_all("com.example.Pub"),
        ],
        json!({}),
    );
    let sub = Subscriber::start(
        &broker,
        "com.example.Sub",
        &["n/t", "20", "--timeout", "10"],
    );
    let socket = broker.socket.clone();
    let token = broker.token("com.example.Pub").to_owned();
    let vandal = thread::spawn(move || {
        for i in 0..20u8 {
            let mut conn = RawConn::connect(&socket, &token);
            conn.send_raw(&[i; 64]);
            assert!(conn.closed_by_peer());
        }
    });
    let publisher = publish(
        &broker,
        "com.example.Pub",
        &["n/t", "--json", "{}", "--count", "20"],
    );
    vandal.join().unwrap();
    assert_eq!(publisher, json!({"ok": true}));
    let got = sub.finish();
    assert_eq!(got.last().unwrap()["count"], 20);
    assert_eq!(got.last().unwrap()["in_order"], true);
}

#[test]
fn the_first_generation_client_works_too() {
    let broker = BrokerProcess::start(&[ComponentSpec::pubsub_all("com.example.V1")], json!({}));
    let lines = json_lines(&run_python(
        &broker,
        "com.example.V1",
        "ipc_scenarios.py",
        &["v1_roundtrip", "v1/#", "v1/x"],
    ));
    assert_eq!(
        lines,
        vec![
            json!({"topic": "v1/x", "json": {"v": 1}}),
            json!({"topic": "v1/x", "binary_b64": b64(b"\x00v1")}),
        ]
    );
}

//! Lambda functions run on local publishes: the handler's event and
//! context, the log lines its prints make, binary and JSON encodings,
//! payloads that are not JSON, exceptions, its environment and the
//! configuration the device shows for it.

mod lambda_common;

use std::time::Duration;

use base64::Engine as _;
use ggipc_tests::{BrokerProcess, RawConn};
use lambda_common::*;
use serde_json::{Value, json};

/// The Greengrass example's handler, line for line where it matters: the
/// print is on line 4, as in `lambda_function.py:4,Event : .`.
const EXAMPLE_HANDLER: &str = r#"import json

def lambda_handler(event, context):
    print('Event : ', json.dumps(event))
    import os
    record = {
        "event": event,
        "subject": context.client_context.custom["subject"],
        "function_name": context.function_name,
        "function_version": context.function_version,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "memory": context.memory_limit_in_mb,
        "remaining": context.get_remaining_time_in_millis(),
        "pid": os.getpid(),
    }
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(record) + "\n")
"#;

#[test]
fn a_local_publish_reaches_the_handler_with_its_context_and_greengrass_log_lines() {
    let code = Code::new(&[("lambda_function.py", EXAMPLE_HANDLER)]);
    // The CDK example's parameters (pinned, queue 1000, 100 instances,
    // timeout 3 s, 16 MB), the numbers in the forms devices print them.
    let lambda = lambda_with(
        "com.example.lambda",
        &code,
        json!({
            "eventSources": [{"topic": "local/topic", "type": "PUB_SUB"}],
            "maxQueueSize": 1000.0,
            "maxInstancesCount": "100",
            "timeoutInSeconds": "3",
            "linuxProcessParams": {
                "isolationMode": "NoContainer",
                "containerParams": {"memorySizeInKb": 16384}
            }
        }),
        json!({"handler": "lambda_function.lambda_handler"}),
    );
    let broker = BrokerProcess::start(&[lambda, publisher()], json!({}));
    let mut conn = connect_publisher(&broker);
    // As the publisher sample sends it: JSON text in a binary message.
    publish_binary(&mut conn, "local/topic", br#"{"key1": "hello"}"#);
    publish_json(
        &mut conn,
        "local/topic",
        &json!({"key1": "again", "n": [1, 2.5]}),
    );
    let records = code.wait_count(
        &broker,
        "com.example.lambda",
        "event",
        2,
        Duration::from_secs(20),
    );
    assert_eq!(records[0]["event"], json!({"key1": "hello"}));
    assert_eq!(records[1]["event"], json!({"key1": "again", "n": [1, 2.5]}));
    for r in &records {
        assert_eq!(r["subject"], "local/topic");
        assert_eq!(r["function_name"], "com.example.lambda");
        assert_eq!(r["function_version"], "1");
        assert_eq!(
            r["arn"],
            "arn:aws:lambda:local:000000000000:function:com.example.lambda:1"
        );
        assert_eq!(r["memory"], 16);
        let remaining = r["remaining"].as_u64().unwrap();
        assert!(remaining > 2000 && remaining <= 3000, "{r}");
        assert_eq!(r["request_id"].as_str().unwrap().len(), 36, "{r}");
    }
    assert_ne!(records[0]["request_id"], records[1]["request_id"]);
    assert_eq!(records[0]["pid"], records[1]["pid"], "one pinned worker");
    let log = broker.component_log("com.example.lambda");
    // `print('Event : ', s)` is three writes, hence three lines.
    let tail = "{serviceInstance=0, serviceName=com.example.lambda, currentState=RUNNING}";
    for text in [
        "lambda_function.py:4,Event : . ",
        "lambda_function.py:4, . ",
        r#"lambda_function.py:4,{"key1": "hello"}. "#,
    ] {
        let expected = format!("[INFO] (worker-0) com.example.lambda: {text}{tail}");
        assert!(
            log.lines().any(|l| l.ends_with(&expected)),
            "{expected}\n{log}"
        );
    }
    wait_state(
        &broker,
        "com.example.lambda",
        "RUNNING",
        Duration::from_secs(1),
    );
}

const RECORD_BINARY: &str = r#"import base64, json, os


def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"type": type(event).__name__,
                            "b64": base64.b64encode(event).decode()}) + "\n")
"#;

#[test]
fn a_binary_function_gets_the_exact_bytes() {
    let code = Code::new(&[("fn.py", RECORD_BINARY)]);
    let lambda = lambda(
        "com.example.Bin",
        &code,
        json!({
            "eventSources": [{"topic": "bin/in", "type": "PUB_SUB"}],
            "inputPayloadEncodingType": "binary"
        }),
    );
    let broker = BrokerProcess::start(&[lambda, publisher()], json!({}));
    let mut conn = connect_publisher(&broker);
    let all: Vec<u8> = (0..=255).collect();
    publish_binary(&mut conn, "bin/in", &[0x00, 0xff, 0x10]);
    publish_binary(&mut conn, "bin/in", &all);
    publish_binary(&mut conn, "bin/in", b"");
    // A JSON message reaches a binary function as its text.
    publish_json(&mut conn, "bin/in", &json!({"a": 1}));
    let records = code.wait_count(
        &broker,
        "com.example.Bin",
        "b64",
        4,
        Duration::from_secs(20),
    );
    let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
    assert_eq!(
        records[0],
        json!({"type": "bytes", "b64": b64(&[0, 0xff, 0x10])})
    );
    assert_eq!(records[1], json!({"type": "bytes", "b64": b64(&all)}));
    assert_eq!(records[2], json!({"type": "bytes", "b64": ""}));
    assert_eq!(
        records[3],
        json!({"type": "bytes", "b64": b64(br#"{"a":1}"#)})
    );
}

const RECORD_JSON: &str = r#"import json, os


def handler(event, context):
    if isinstance(event, dict) and event.get("raise"):
        raise ValueError("boom " + str(event["raise"]))
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"event": event, "pid": os.getpid()}) + "\n")
"#;

#[test]
fn a_json_function_given_non_json_logs_the_topic_and_lives_on() {
    let code = Code::new(&[("fn.py", RECORD_JSON)]);
    let lambda = lambda(
        "com.example.Json",
        &code,
        json!({"eventSources": [{"topic": "json/+", "type": "PUB_SUB"}]}),
    );
    let broker = BrokerProcess::start(&[lambda, publisher()], json!({}));
    let mut conn = connect_publisher(&broker);
    publish_json(&mut conn, "json/a", &json!({"n": 1}));
    publish_binary(&mut conn, "json/b", b"hello");
    publish_binary(&mut conn, "json/c", &[0xff, 0xfe, b'{']);
    // An empty payload is JSON null.
    publish_binary(&mut conn, "json/d", b"");
    publish_json(&mut conn, "json/e", &json!({"n": 2}));
    let records = code.wait_count(
        &broker,
        "com.example.Json",
        "event",
        3,
        Duration::from_secs(20),
    );
    assert_eq!(
        records
            .iter()
            .map(|r| r["event"].clone())
            .collect::<Vec<_>>(),
        [json!({"n": 1}), Value::Null, json!({"n": 2})],
        "the handler is not called for what is not JSON"
    );
    assert!(
        records.iter().all(|r| r["pid"] == records[0]["pid"]),
        "the worker lived on: {records:?}"
    );
    let log = broker.component_log("com.example.Json");
    for topic in ["json/b", "json/c"] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("the payload on topic {topic} is not JSON")))
            .unwrap_or_else(|| panic!("no error for {topic}:\n{log}"));
        assert!(line.contains("[ERROR]"), "{line}");
        assert!(line.contains(&format!("topic={topic}")), "{line}");
    }
}

#[test]
fn a_handler_exception_is_logged_with_its_traceback_and_the_next_event_is_handled() {
    let code = Code::new(&[("fn.py", RECORD_JSON)]);
    let lambda = lambda(
        "com.example.Raises",
        &code,
        json!({"eventSources": [{"topic": "r", "type": "PUB_SUB"}]}),
    );
    let broker = BrokerProcess::start(&[lambda, publisher()], json!({}));
    let mut conn = connect_publisher(&broker);
    publish_json(&mut conn, "r", &json!({"raise": 7}));
    publish_json(&mut conn, "r", &json!({"n": 1}));
    code.wait_count(
        &broker,
        "com.example.Raises",
        "event",
        1,
        Duration::from_secs(20),
    );
    let log = broker.wait_component_log(
        "com.example.Raises",
        "the handler raised ValueError: boom 7",
        1,
    );
    let error_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("[ERROR] (worker-0)"))
        .collect();
    let text = error_lines.join("\n");
    assert!(text.contains("Traceback (most recent call last):"), "{log}");
    assert!(
        text.contains(r#"raise ValueError("boom " + str(event["raise"]))"#),
        "{log}"
    );
    assert!(text.contains("ValueError: boom 7"), "{log}");
}

const RECORD_ENV: &str = r#"import json, os, sys


def handler(event, context):
    keys = ["LEVEL", "NUM", "SVCUID", "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT",
            "AWS_GREENGRASS_LAMBDA_FUNCTION_HANDLER", "AWS_GREENGRASS_LAMBDA_ENCODING_TYPE",
            "AWS_GREENGRASS_LAMBDA_ARN", "AWS_LAMBDA_FUNCTION_NAME"]
    record = {k: os.environ.get(k) for k in keys}
    record["cwd"] = os.getcwd()
    record["argv"] = sys.argv[1:]
    # The work channel is not the function's standard input.
    record["stdin"] = os.read(0, 10).decode()
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps(record) + "\n")
"#;

#[test]
fn environment_variables_identity_and_work_folder_reach_the_handler() {
    let code = Code::new(&[("fn.py", RECORD_ENV)]);
    let lambda = lambda(
        "com.example.Env",
        &code,
        json!({
            "eventSources": [{"topic": "env", "type": "PUB_SUB"}],
            "environmentVariables": {"LEVEL": "debug", "NUM": 7},
            "execArgs": ["--flag", "x"]
        }),
    );
    let broker = BrokerProcess::start(&[lambda, publisher()], json!({}));
    let mut conn = connect_publisher(&broker);
    publish_json(&mut conn, "env", &json!({}));
    let records = code.wait_count(
        &broker,
        "com.example.Env",
        "LEVEL",
        1,
        Duration::from_secs(20),
    );
    let r = &records[0];
    assert_eq!(r["LEVEL"], "debug");
    assert_eq!(r["NUM"], "7");
    assert_eq!(r["SVCUID"].as_str().unwrap().len(), 26, "{r}");
    assert_eq!(
        r["AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"],
        broker.socket.display().to_string()
    );
    assert_eq!(r["AWS_GREENGRASS_LAMBDA_FUNCTION_HANDLER"], "fn.handler");
    assert_eq!(r["AWS_GREENGRASS_LAMBDA_ENCODING_TYPE"], "json");
    assert_eq!(r["AWS_LAMBDA_FUNCTION_NAME"], "com.example.Env");
    assert_eq!(
        r["cwd"],
        broker
            .root
            .join("work/com.example.Env")
            .display()
            .to_string()
    );
    assert_eq!(r["argv"], json!(["--handler=fn.handler", "--flag", "x"]));
    assert_eq!(r["stdin"], "");
}

#[test]
fn get_configuration_shows_the_device_form_with_the_deployment_merge() {
    let code = Code::new(&[("fn.py", RECORD_JSON)]);
    let mut lambda = lambda(
        "com.example.Config",
        &code,
        json!({
            "eventSources": [
                {"topic": "a/+", "type": "PUB_SUB"},
                {"topic": "cloud/#", "type": "IOT_CORE"}
            ],
            "environmentVariables": {"LEVEL": "debug"},
            "maxQueueSize": "50",
            "linuxProcessParams": {
                "isolationMode": "GreengrassContainer",
                "containerParams": {"memorySizeInKB": 65536.0}
            }
        }),
    );
    lambda.entry_extra["configurationUpdate"] = json!({"merge": {"timeoutInSeconds": 10}});
    let broker = BrokerProcess::start(&[lambda], json!({}));
    let mut conn = RawConn::connect(&broker.socket, broker.token("com.example.Config"));
    conn.request("GetConfiguration", &json!({"keyPath": []}));
    let answer = conn.recv().expect("answer");
    let value: Value = serde_json::from_slice(answer.payload()).unwrap();
    let config = &value["value"];
    assert_eq!(
        config["pubsubTopics"],
        json!({"0": {"topic": "a/+", "type": "PUB_SUB"}, "1": {"topic": "cloud/#", "type": "IOT_CORE"}}),
        "{value}"
    );
    assert_eq!(config["containerMode"], "GreengrassContainer");
    assert_eq!(config["containerParams"]["memorySize"], 65536);
    assert_eq!(
        config["lambdaExecutionParameters"]["EnvironmentVariables"]["LEVEL"],
        "debug"
    );
    assert_eq!(config["maxQueueSize"], 50);
    assert_eq!(config["timeoutInSeconds"], 10);
    assert_eq!(config["pinned"], true);
    // The IoT Core source is said not to be served, and the merged timeout
    // is the one in force.
    let log = broker.wait_component_log("com.example.Config", "lambda-launch", 1);
    assert!(
        log.contains("IOT_CORE event source cloud/# is not served"),
        "{log}"
    );
    assert!(
        log.contains("timeoutInSeconds=10, maxQueueSize=50"),
        "{log}"
    );
}

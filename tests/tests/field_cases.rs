//! Failures real Greengrass users hit (`shared/docs/field-cases.md`), as
//! behaviour of the local broker: large and odd payloads, publishing from a
//! callback, overlapping subscriptions, restarts, socket paths and
//! permissions, and subscription churn.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use ggipc_protocol::rpc::{self, MessageType};
use ggipc_tests::{BrokerProcess, ComponentSpec, PythonScenario, RawConn, json_lines, run_python};
use serde_json::{Value, json};

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn publish_binary(conn: &mut RawConn, topic: &str, data: &[u8]) -> ggipc_protocol::RpcMessage {
    conn.request(
        "PublishToTopic",
        &json!({"topic": topic, "publishMessage": {"binaryMessage": {"message": b64(data)}}}),
    );
    conn.recv().expect("publish answer")
}

fn two_components() -> BrokerProcess {
    BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Sub"),
            ComponentSpec::pubsub_all("com.example.Pub"),
        ],
        json!({"outboundQueueBytes": 64 << 20}),
    )
}

/// BR-09 (local part): payloads up to the frame limit arrive byte-exact; one
/// over it is refused with a reason and the connection carries on.
#[test]
fn large_binary_payloads_arrive_byte_exact_and_oversize_is_refused() {
    let broker = two_components();
    let sizes = [64 << 10, 1 << 20, 8 << 20];
    let sub = PythonScenario::start(
        &broker,
        "com.example.Sub",
        &[
            "subscribe",
            "blob/x",
            &sizes.len().to_string(),
            "--timeout",
            "60",
        ],
    );
    let mut publisher = RawConn::connect(&broker.socket, broker.token("com.example.Pub"));
    let payloads: Vec<Vec<u8>> = sizes
        .iter()
        .map(|&n| (0..n).map(|i| (i * 31 % 251) as u8).collect())
        .collect();
    for p in &payloads {
        let answer = publish_binary(&mut publisher, "blob/x", p);
        assert_eq!(
            answer.message_type,
            MessageType::ApplicationMessage,
            "{answer:?}"
        );
    }
    // 12 MiB of data is 16 MiB of base64: the request fits the 24 MiB the
    // broker accepts, the event would not fit the 16 MiB it sends.
    let answer = publish_binary(&mut publisher, "blob/x", &vec![1u8; 12 << 20]);
    assert_eq!(answer.message_type, MessageType::ApplicationError);
    let body: Value = serde_json::from_slice(answer.payload()).unwrap();
    assert_eq!(body["_errorCode"], "InvalidArgumentsError");
    assert!(
        body["message"].as_str().unwrap().contains("frame limit"),
        "{body}"
    );
    // Same connection still works.
    let answer = publish_binary(&mut publisher, "other", b"ok");
    assert_eq!(answer.message_type, MessageType::ApplicationMessage);

    let got = sub.finish();
    for (record, sent) in got.iter().zip(&payloads) {
        assert_eq!(record["binary_b64"], b64(sent));
    }
    assert_eq!(got.last().unwrap()["count"], sizes.len());
}

/// BR-10: binary stays binary (even when it is JSON text or not UTF-8),
/// JSON objects stay JSON; non-object JSON gets a modeled error.
#[test]
fn binary_and_json_keep_their_form() {
    let broker = two_components();
    let sub = PythonScenario::start(
        &broker,
        "com.example.Sub",
        &["subscribe", "data/#", "3", "--timeout", "30"],
    );
    let results = json_lines(&run_python(
        &broker,
        "com.example.Pub",
        "ipc_scenarios.py",
        &[
            "ops",
            &json!([
                {"op": "publish_to_topic", "args": {"topic": "data/1", "publish_message": {"json": {"a": 1, "b": [1, 2]}}}},
                {"op": "publish_to_topic", "args": {"topic": "data/2", "publish_message": {"json": "text"}}},
                {"op": "publish_to_topic", "args": {"topic": "data/3", "publish_message": {"binary_b64": b64(&[0xff, 0x00, 0xc3, 0x28])}}},
                {"op": "publish_to_topic", "args": {"topic": "data/4", "publish_message": {"binary_b64": b64(br#"{"k": 1}"#)}}},
            ])
            .to_string(),
        ],
    ));
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[1]["error"], "InvalidArgumentsError");
    assert_eq!(results[2]["ok"], true);
    assert_eq!(results[3]["ok"], true);
    let got = sub.finish();
    assert_eq!(
        got[0],
        json!({"topic": "data/1", "json": {"a": 1, "b": [1, 2]}})
    );
    assert_eq!(
        got[1],
        json!({"topic": "data/3", "binary_b64": b64(&[0xff, 0x00, 0xc3, 0x28])})
    );
    assert_eq!(
        got[2],
        json!({"topic": "data/4", "binary_b64": b64(br#"{"k": 1}"#)})
    );
}

/// BR-08 (local part): UTF-8 topics are routed byte-exact and `+` matches a
/// multi-byte level.
#[test]
fn unicode_topics_route_byte_exact() {
    let broker = two_components();
    let sub = PythonScenario::start(
        &broker,
        "com.example.Sub",
        &[
            "subscribe",
            "capteurs/température/+",
            "2",
            "--timeout",
            "10",
        ],
    );
    let mut publisher = RawConn::connect(&broker.socket, broker.token("com.example.Pub"));
    for topic in [
        "capteurs/température/°C",
        "capteurs/temperature/x",
        "capteurs/température/🌡️",
    ] {
        assert!(publish_binary(&mut publisher, topic, b"t").terminates());
    }
    let got = sub.finish();
    assert_eq!(got[0]["topic"], "capteurs/température/°C");
    assert_eq!(got[1]["topic"], "capteurs/température/🌡️");
    assert_eq!(got[2]["count"], 2);
}

/// BR-13: a handler that publishes from inside its own subscription callback
/// does not deadlock.
#[test]
fn publishing_from_inside_a_subscription_callback() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Responder"),
            ComponentSpec::pubsub_all("com.example.Requester"),
        ],
        json!({}),
    );
    let requests = 200;
    let responder = PythonScenario::start(
        &broker,
        "com.example.Responder",
        &["respond", "req/#", &requests.to_string()],
    );
    let mut requester = RawConn::connect(&broker.socket, broker.token("com.example.Requester"));
    requester.request("SubscribeToTopic", &json!({"topic": "resp/#"}));
    assert!(!requester.recv().unwrap().terminates());
    for i in 0..requests {
        requester.request(
            "PublishToTopic",
            &json!({"topic": format!("req/{i}"), "publishMessage": {"jsonMessage": {"message": {"i": i}}}}),
        );
    }
    let (mut answers, mut responses) = (0, 0);
    while answers < requests || responses < requests {
        let m = requester.recv().expect("broker open");
        match m.service_model_type.as_ref().map(|s| s.as_str()) {
            Some("aws.greengrass#PublishToTopicResponse") => answers += 1,
            Some("aws.greengrass#SubscriptionResponseMessage") => responses += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    let stats = &responder.finish()[0];
    assert_eq!(stats["handled"], requests, "{stats}");
    assert_eq!(stats["errors"], 0, "{stats}");
    // A deadlock would never answer; the bound is loose for a busy machine.
    assert!(stats["max_ms"].as_f64().unwrap() < 5000.0, "{stats}");
}

/// BR-18 (local part): overlapping subscriptions each get one copy.
#[test]
fn overlapping_subscriptions_get_one_copy_each() {
    let broker = two_components();
    let mut sub = RawConn::connect(&broker.socket, broker.token("com.example.Sub"));
    let exact = sub.request("SubscribeToTopic", &json!({"topic": "dup/x"}));
    let wild = sub.request("SubscribeToTopic", &json!({"topic": "dup/#"}));
    let plus = sub.request("SubscribeToTopic", &json!({"topic": "dup/+"}));
    for _ in 0..3 {
        assert!(!sub.recv().unwrap().terminates());
    }
    let mut publisher = RawConn::connect(&broker.socket, broker.token("com.example.Pub"));
    for i in 0..100u8 {
        assert!(publish_binary(&mut publisher, "dup/x", &[i]).terminates());
    }
    let mut per_stream = std::collections::HashMap::new();
    for _ in 0..300 {
        let m = sub.recv().unwrap();
        *per_stream.entry(m.stream_id).or_insert(0) += 1;
    }
    assert_eq!(per_stream.len(), 3);
    for id in [exact, wild, plus] {
        assert_eq!(per_stream[&id], 100, "stream {id}");
    }
    // Nothing more arrives.
    sub.send(&rpc::ping(vec![], Bytes::new()));
    assert_eq!(sub.recv().unwrap().message_type, MessageType::PingResponse);
}

/// BR-19: when the broker stops, clients see their streams close and the
/// connection drop at once; after a restart they reconnect and resubscribe,
/// and nothing published meanwhile is replayed.
#[test]
fn broker_stop_closes_streams_and_restart_needs_resubscribe() {
    let mut broker = two_components();
    let watcher = PythonScenario::start(
        &broker,
        "com.example.Sub",
        &["watch_close", "a/1", "a/2", "b/#"],
    );
    let stopped_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(broker.terminate().success());
    let report = &watcher.finish()[0];
    assert_eq!(report["closed"], 3, "{report}");
    assert_eq!(report["disconnected"], true, "{report}");
    let lag = report["last_closed_at"].as_f64().unwrap() - stopped_at;
    // `watch_close` gives up after 10 s: well under that means the broker
    // closed them, with room for a busy machine.
    assert!(lag < 5.0, "streams closed {lag:.3} s after the stop");

    broker.restart();
    // Published before anyone resubscribed: not kept.
    let mut publisher = RawConn::connect(&broker.socket, broker.token("com.example.Pub"));
    assert!(publish_binary(&mut publisher, "a/1", b"lost").terminates());
    let mut sub = RawConn::connect(&broker.socket, broker.token("com.example.Sub"));
    sub.request("SubscribeToTopic", &json!({"topic": "a/1"}));
    assert!(!sub.recv().unwrap().terminates());
    assert!(publish_binary(&mut publisher, "a/1", b"kept").terminates());
    let event = sub.recv().unwrap();
    let body: Value = serde_json::from_slice(event.payload()).unwrap();
    assert_eq!(body["binaryMessage"]["message"], b64(b"kept"));
}

/// BR-20 (b): a socket file left by a crash is replaced at the next start.
#[test]
fn restart_after_a_crash_replaces_the_stale_socket() {
    let mut broker = two_components();
    let socket = broker.socket.clone();
    broker.crash_and_restart();
    assert!(socket.exists());
    assert!(broker.log_text().contains("removing stale socket"));
    RawConn::connect(&broker.socket, broker.token("com.example.Sub"));
}

/// BR-20 (a): a root too long for `sun_path` still gives components a
/// connectable path.
#[test]
fn long_root_path_gets_a_connectable_socket_path() {
    let long = format!("{}/{}", "r".repeat(70), "s".repeat(60));
    let broker = BrokerProcess::start_with_system(
        &[ComponentSpec::pubsub_all("com.example.Sub")],
        json!({}),
        json!({"rootPath": long}),
    );
    assert!(broker.root.join("ipc.socket").exists());
    assert!(
        broker.socket.as_os_str().len() < 108,
        "{}",
        broker.socket.display()
    );
    let out = run_python(&broker, "com.example.Sub", "ipc_scenarios.py", &["connect"]);
    assert_eq!(json_lines(&out)[0]["connected"], true);
}

/// BR-20 (d): a relocated socket is created exactly where configured.
#[test]
fn relocated_socket_is_created_where_configured() {
    // Outside the harness' folder, as a device would have it; the pid keeps
    // two runs on one host apart.
    let relocated = format!("/tmp/ggipc-relocated-{}.sock", std::process::id());
    let broker = BrokerProcess::start_with_system(
        &[ComponentSpec::pubsub_all("com.example.Sub")],
        json!({}),
        json!({"ipcSocketPath": relocated}),
    );
    assert_eq!(broker.socket.to_str().unwrap(), relocated);
    let out = run_python(&broker, "com.example.Sub", "ipc_scenarios.py", &["connect"]);
    assert_eq!(json_lines(&out)[0]["connected"], true);
}

/// BR-20 (c): a component running as another, unprivileged user can reach
/// the socket, and still needs a valid token.
#[test]
fn unprivileged_user_connects_with_its_token() {
    let broker = two_components();
    // The harness' temporary folder is private; a device's root is not.
    let mut dir = broker.root.clone();
    while dir
        .parent()
        .is_some_and(|p| p != std::path::Path::new("/tmp"))
    {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir = dir.parent().unwrap().to_path_buf();
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run_as_nobody = |token: &str| -> String {
        let out = std::process::Command::new(ggipc_tests::workspace_bin("connect_probe"))
            .env(
                "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT",
                &broker.socket,
            )
            .env("SVCUID", token)
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(run_as_nobody(broker.token("com.example.Sub")), "connected");
    assert_eq!(run_as_nobody("WRONGTOKEN"), "refused");
}

/// Subscribing and closing many times leaves the broker where it started.
#[test]
fn subscription_churn_returns_memory() {
    let broker = two_components();
    let token = broker.token("com.example.Sub").to_owned();
    let churn = |rounds: usize| {
        for i in 0..rounds {
            let mut conn = RawConn::connect(&broker.socket, &token);
            for j in 0..5 {
                conn.request(
                    "SubscribeToTopic",
                    &json!({"topic": format!("churn/{i}/{j}/+")}),
                );
            }
            for _ in 0..5 {
                assert!(!conn.recv().unwrap().terminates());
            }
            // Close some streams explicitly, the rest by hanging up.
            conn.send(&rpc::terminate_stream(1));
            conn.send(&rpc::terminate_stream(2));
        }
    };
    // Warm up allocator pools, then measure.
    churn(500);
    std::thread::sleep(Duration::from_millis(300));
    let baseline = broker.rss_kib();
    churn(3000);
    // The broker notices the hang-ups at its own pace: give it up to 10 s
    // to get back under the bound rather than one fixed pause.
    let bound = baseline + baseline / 20 + 256;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = broker.rss_kib();
    while after > bound && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = broker.rss_kib();
    }
    assert!(
        after <= bound,
        "RSS {baseline} KiB before churn, {after} KiB after"
    );
}

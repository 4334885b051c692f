//! The IoT Core bridge against a real mosquitto standing in for AWS IoT
//! Core: each test starts its own mosquitto (tests/src/mosquitto.rs) and a
//! broker whose `iotCore` section points at it, then drives IPC with the
//! Python SDK or the Rust client and watches the MQTT side with
//! `mosquitto_sub`/`mosquitto_pub` and mosquitto's log.

use std::time::Duration;

use futures_util::StreamExt;
use ggipc_client::{Client, ClientBuilder, Error};
use ggipc_protocol::model::*;
use ggipc_tests::mosquitto::{Mosquitto, Options};
use ggipc_tests::{
    BrokerProcess, ComponentSpec, PythonScenario, json_lines, python_command, run_python,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);
/// The bridge's MQTT client id in every test.
const CLIENT: &str = "ggipc-bridge";
const SCRIPT: &str = "iotcore_scenarios.py";

/// A component allowed every IoT Core and local pub/sub operation.
fn iot_all(name: &str) -> ComponentSpec {
    ComponentSpec::new(
        name,
        json!({
            "aws.greengrass.ipc.mqttproxy": {
                format!("{name}:mqttproxy:1"): {"operations": ["*"], "resources": ["*"]}
            },
            "aws.greengrass.ipc.pubsub": {
                format!("{name}:pubsub:1"): {"operations": ["*"], "resources": ["*"]}
            }
        }),
    )
}

/// Starts a broker bridged to `m` under MQTT `version` ("mqtt3"/"mqtt5"),
/// with `extra` keys merged into `iotCore`, and waits for the connection.
fn bridge(
    m: &Mosquitto,
    version: &str,
    components: &[ComponentSpec],
    extra: Value,
) -> BrokerProcess {
    let mut iot = json!({
        "endpoint": m.url(),
        "clientId": CLIENT,
        "mqttVersion": version,
        "minimumReconnectDelayMs": 100,
        "maximumReconnectDelayMs": 400,
    });
    if let (Some(iot), Some(extra)) = (iot.as_object_mut(), extra.as_object()) {
        iot.extend(extra.clone());
    }
    let broker = BrokerProcess::start_with_document(components, json!({"iotCore": iot}));
    m.wait_connections(CLIENT, 1, WAIT);
    broker.wait_log("IoT Core connected", 1);
    broker
}

async fn client(broker: &BrokerProcess, component: &str) -> Client {
    ClientBuilder::new(&broker.socket)
        .token(broker.token(component))
        .operation_timeout(WAIT)
        .connect()
        .await
        .unwrap()
}

async fn subscribe(
    client: &Client,
    filter: &str,
) -> Result<ggipc_client::Subscription<IoTCoreMessage>, Error> {
    client
        .subscribe_to_iot_core(&SubscribeToIoTCoreRequest {
            topic_name: Some(filter.to_owned()),
            qos: Some(Qos::AtLeastOnce),
        })
        .await
}

async fn publish(client: &Client, topic: &str, payload: &[u8], qos: Qos) -> Result<(), Error> {
    client
        .publish_to_iot_core(&PublishToIoTCoreRequest {
            topic_name: Some(topic.to_owned()),
            qos: Some(qos),
            payload: Some(Blob::new(payload.to_vec())),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// The next message's topic and payload.
async fn next(sub: &mut ggipc_client::Subscription<IoTCoreMessage>) -> (String, Vec<u8>) {
    let event = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("the subscription is open")
        .expect("a valid event");
    let m = event.message.expect("IoTCoreMessage.message");
    (
        m.topic_name,
        m.payload.map(|p| p.to_vec()).unwrap_or_default(),
    )
}

/// Asserts nothing more arrives within `quiet`.
async fn nothing_more(sub: &mut ggipc_client::Subscription<IoTCoreMessage>, quiet: Duration) {
    if let Ok(Some(extra)) = tokio::time::timeout(quiet, sub.next()).await {
        panic!("unexpected extra message: {extra:?}");
    }
}

fn service_error(e: Error) -> String {
    match e {
        Error::Ipc(IpcError::Service { message, .. }) => message.unwrap_or_default(),
        other => panic!("expected ServiceError, got {other:?}"),
    }
}

#[test]
fn python_sdk_publishes_and_subscribes_both_ways() {
    for version in ["mqtt3", "mqtt5"] {
        let m = Mosquitto::start();
        let broker = bridge(&m, version, &[iot_all("com.example.A")], json!({}));

        // Cloud to component: wildcard filter, order and payload kept.
        let sub = PythonScenario::start_command(
            &broker,
            python_command(
                &broker,
                "com.example.A",
                SCRIPT,
                &["subscribe", "cloud/+/cmd", "3"],
            ),
        );
        for (topic, payload) in [
            ("cloud/a/cmd", "one"),
            ("cloud/a/b/cmd", "no"),
            ("cloud/b/cmd", "two"),
            ("cloud/c/cmd", "three"),
        ] {
            m.publish(topic, payload.as_bytes(), 1);
        }
        let got = sub.finish();
        let messages: Vec<(String, String)> = got
            .iter()
            .filter_map(|r| {
                Some((
                    r["topic"].as_str()?.to_owned(),
                    r["payload"].as_str()?.to_owned(),
                ))
            })
            .collect();
        assert_eq!(
            messages,
            [
                ("cloud/a/cmd", "one"),
                ("cloud/b/cmd", "two"),
                ("cloud/c/cmd", "three")
            ]
            .map(|(t, p)| (t.to_owned(), p.to_owned())),
            "{version}: {got:?}"
        );

        // Component to cloud: QoS 1, in order.
        let observer = m.subscriber(&["up/#"], 3, WAIT);
        let out = json_lines(&run_python(
            &broker,
            "com.example.A",
            SCRIPT,
            &["publish", "up/x", "hello", "--count", "3"],
        ));
        assert_eq!(out, [json!({"ok": true, "count": 3})], "{version}");
        assert_eq!(
            observer.lines(),
            ["up/x hello-0", "up/x hello-1", "up/x hello-2"],
            "{version}"
        );
    }
}

#[tokio::test]
async fn overlapping_filters_share_one_upstream_subscription() {
    let m = Mosquitto::start();
    let broker = bridge(
        &m,
        "mqtt3",
        &[iot_all("com.example.A"), iot_all("com.example.B")],
        json!({}),
    );
    let a = client(&broker, "com.example.A").await;
    let b = client(&broker, "com.example.B").await;
    let mut wide = subscribe(&a, "w/#").await.unwrap();
    let mut plus = subscribe(&b, "w/+/x").await.unwrap();
    let mut exact = subscribe(&b, "w/a/x").await.unwrap();
    m.wait_subscriptions(CLIENT, &["w/#"], WAIT);
    for topic in ["w/a/x", "w/b/x", "w/b/y", "w"] {
        m.publish(topic, topic.as_bytes(), 1);
    }
    for want in ["w/a/x", "w/b/x", "w/b/y", "w"] {
        assert_eq!(next(&mut wide).await.0, want);
    }
    assert_eq!(next(&mut plus).await.0, "w/a/x");
    assert_eq!(next(&mut plus).await.0, "w/b/x");
    assert_eq!(next(&mut exact).await.0, "w/a/x");
    nothing_more(&mut plus, Duration::from_millis(300)).await;
    nothing_more(&mut exact, Duration::from_millis(10)).await;
    // One SUBSCRIBE in all; the last rider leaving unsubscribes.
    assert_eq!(m.subscription_log(CLIENT), [(true, "w/#".to_owned())]);
    wide.close().await;
    plus.close().await;
    exact.close().await;
    m.wait_subscriptions(CLIENT, &[], WAIT);
}

/// BR-08 (IoT Core part) and BR-09 (IoT Core part): IoT Core's topic
/// limits in UTF-8 bytes and slashes, and the payload limit, are enforced
/// before anything goes upstream.
#[test]
fn topic_rules_and_sizes_are_refused_before_anything_is_sent() {
    let m = Mosquitto::start();
    let broker = bridge(&m, "mqtt3", &[iot_all("com.example.A")], json!({}));
    // Three accepted messages and the end marker; the marker, published
    // last, bounds the wait without a timeout that a busy machine outruns.
    let observer = m.subscriber_with(&["#", "$aws/#"], 4, Duration::from_secs(60), &[]);
    let try_publish = |topic: &str, size: usize| -> Value {
        let out = run_python(
            &broker,
            "com.example.A",
            SCRIPT,
            &["try_publish", topic, "--size", &size.to_string()],
        );
        json_lines(&out).remove(0)
    };
    let two_byte = "é".repeat(200);
    let ascii_256 = "a".repeat(256);
    let cases = [
        (two_byte.as_str(), 1, Some("400 bytes")),
        ("1/2/3/4/5/6/7/8/9", 1, Some("slashes")),
        ("a/+/b", 1, Some("wildcard")),
        ("$aws/rules/rule1/a/b/c/d/e/f/g/h", 1, None),
        (ascii_256.as_str(), 1, None),
        ("big/ok", 131_072, None),
        ("big/no", 131_073, Some("131072")),
    ];
    for (topic, size, refusal) in cases {
        let result = try_publish(topic, size);
        match refusal {
            None => assert_eq!(result, json!({"ok": true}), "{topic}"),
            Some(words) => {
                assert_eq!(result["error"], "ServiceError", "{topic}: {result}");
                let message = result["message"].as_str().unwrap();
                assert!(message.contains(words), "{topic}: {message}");
                assert!(
                    message.starts_with(&format!("Publish to topic {topic} failed")),
                    "{message}"
                );
            }
        }
    }
    assert_eq!(try_publish("end", 1), json!({"ok": true}));
    let topics: Vec<String> = observer
        .lines()
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        topics,
        [
            "$aws/rules/rule1/a/b/c/d/e/f/g/h",
            ascii_256.as_str(),
            "big/ok",
            "end"
        ],
        "only accepted messages reach the peer"
    );
}

/// QoS 1 publishes made while the peer is down wait in the spool and go out
/// in order once it is back; the publisher's answers come at once. QoS 0
/// ones are refused while offline.
#[test]
fn qos1_publishes_while_offline_arrive_in_order_after_restart() {
    let mut m = Mosquitto::start_with(Options {
        persistence: true,
        ..Options::default()
    });
    let broker = bridge(&m, "mqtt5", &[iot_all("com.example.A")], json!({}));
    // A persistent observer session keeps what arrives while it is away.
    let session = ["-c", "-i", "observer"];
    drop(m.subscriber_with(&["spool/#"], 1, Duration::from_secs(1), &session));
    m.stop();
    broker.wait_log("IoT Core disconnected", 1);

    let out = json_lines(&run_python(
        &broker,
        "com.example.A",
        SCRIPT,
        &["publish", "spool/t", "m", "--count", "50", "--timed"],
    ));
    assert_eq!(
        (&out[0]["ok"], &out[0]["count"]),
        (&json!(true), &json!(50))
    );
    // Waiting for the link would take until the peer is back (never, here)
    // or the SDK's timeout of each call.
    let seconds = out[0]["seconds"].as_f64().unwrap();
    assert!(
        seconds < 5.0,
        "answers must not wait for the link: {seconds} s"
    );
    let q0 = json_lines(&run_python(
        &broker,
        "com.example.A",
        SCRIPT,
        &["try_publish", "spool/q0", "--qos", "0"],
    ));
    assert_eq!(q0[0]["error"], "ServiceError");
    assert!(
        q0[0]["message"]
            .as_str()
            .unwrap()
            .contains("Device is offline. Dropping QoS 0 message.")
    );

    m.restart();
    broker.wait_log("IoT Core connected", 2);
    let observer = m.subscriber_with(&["spool/#"], 50, WAIT, &session);
    let want: Vec<String> = (0..50).map(|i| format!("spool/t m-{i}")).collect();
    assert_eq!(observer.lines(), want);
}

/// `spooler` from the deployment: a full spool refuses a QoS 1 publish with
/// the nucleus' ServiceError and keeps what it holds; with
/// `keepQos0WhenOffline` a QoS 0 publish made offline is kept and goes out
/// after the QoS 1 ones once the peer is back.
#[test]
fn a_full_spool_refuses_and_kept_qos0_goes_out_after_reconnect() {
    let mut m = Mosquitto::start_with(Options {
        persistence: true,
        // The observer's session is offline too while mosquitto is down.
        extra: vec!["queue_qos0_messages true".to_owned()],
        ..Options::default()
    });
    // Each 500-byte message on spool/a costs 500 + 7 + 64 (the entry's
    // overhead) = 571 bytes: three fit in 2 000, a fourth does not.
    let broker = bridge(
        &m,
        "mqtt5",
        &[iot_all("com.example.A")],
        json!({"spooler": {"maxSizeInBytes": 2000, "keepQos0WhenOffline": true}}),
    );
    let session = ["-c", "-i", "spool-observer"];
    drop(m.subscriber_with(&["spool/#"], 1, Duration::from_secs(1), &session));
    m.stop();
    broker.wait_log("IoT Core disconnected", 1);

    let try_publish = |topic: &str, size: usize, qos: &str| -> Value {
        let out = run_python(
            &broker,
            "com.example.A",
            SCRIPT,
            &[
                "try_publish",
                topic,
                "--size",
                &size.to_string(),
                "--qos",
                qos,
            ],
        );
        json_lines(&out).remove(0)
    };
    for _ in 0..3 {
        assert_eq!(try_publish("spool/a", 500, "1"), json!({"ok": true}));
    }
    let full = try_publish("spool/a", 500, "1");
    assert_eq!(full["error"], "ServiceError", "{full}");
    assert!(
        full["message"]
            .as_str()
            .unwrap()
            .contains("Message spool is full"),
        "{full}"
    );
    assert_eq!(try_publish("spool/zero", 1, "0"), json!({"ok": true}));

    m.restart();
    broker.wait_log("IoT Core connected", 2);
    let observer = m.subscriber_with(&["spool/#"], 4, WAIT, &session);
    let got: Vec<(String, usize)> = observer
        .lines()
        .iter()
        .map(|l| {
            let (topic, payload) = l.split_once(' ').unwrap();
            (topic.to_owned(), payload.len())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("spool/a".to_owned(), 500),
            ("spool/a".to_owned(), 500),
            ("spool/a".to_owned(), 500),
            ("spool/zero".to_owned(), 1)
        ],
        "the three held, then the kept QoS 0 one; not the refused one"
    );
}

/// After the peer restarts, every live subscription is subscribed again;
/// SubscribeToIoTCoreConnectionStatus reports each change.
#[tokio::test]
async fn subscriptions_are_restored_and_status_is_reported() {
    let mut m = Mosquitto::start();
    let broker = bridge(&m, "mqtt3", &[iot_all("com.example.A")], json!({}));
    let status = PythonScenario::start_command(
        &broker,
        python_command(
            &broker,
            "com.example.A",
            SCRIPT,
            &["status", "3", "--timeout", "20"],
        ),
    );
    let a = client(&broker, "com.example.A").await;
    let mut sub = subscribe(&a, "r/+").await.unwrap();
    m.wait_subscriptions(CLIENT, &["r/+"], WAIT);
    m.restart();
    m.wait_connections(CLIENT, 2, WAIT);
    m.wait_subscriptions(CLIENT, &["r/+"], WAIT);
    m.publish("r/x", b"after", 1);
    assert_eq!(next(&mut sub).await, ("r/x".to_owned(), b"after".to_vec()));
    let events: Vec<Value> = status
        .finish()
        .into_iter()
        .filter(|r| r.get("status").is_some())
        .collect();
    assert_eq!(
        events,
        [
            json!({"status": "CONNECTED"}),
            json!({"status": "DISCONNECTED"}),
            json!({"status": "CONNECTED"})
        ]
    );
}

/// A subscription requested while the peer is down waits for the link; if
/// its stream closes before the link is back, the peer never sees it.
#[tokio::test]
async fn a_stream_closed_while_offline_leaves_no_subscription() {
    let mut m = Mosquitto::start();
    let broker = bridge(&m, "mqtt3", &[iot_all("com.example.A")], json!({}));
    let a = client(&broker, "com.example.A").await;
    let _kept = subscribe(&a, "keep/#").await.unwrap();
    m.wait_subscriptions(CLIENT, &["keep/#"], WAIT);
    m.stop();
    broker.wait_log("IoT Core disconnected", 1);
    // The client gives up after its operation timeout and closes the stream.
    let impatient = ClientBuilder::new(&broker.socket)
        .token(broker.token("com.example.A"))
        .operation_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    assert!(matches!(
        subscribe(&impatient, "gone/#").await,
        Err(Error::Timeout(_))
    ));
    // Let the client's writer send the TERMINATE (the waits below block
    // this runtime's only thread).
    tokio::time::sleep(Duration::from_millis(300)).await;
    m.restart();
    m.wait_connections(CLIENT, 2, WAIT);
    m.wait_subscriptions(CLIENT, &["keep/#"], WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !m.subscription_log(CLIENT)
            .iter()
            .any(|(_, f)| f == "gone/#"),
        "{:?}",
        m.subscription_log(CLIENT)
    );
}

/// BR-16: the peer refuses a SUBSCRIBE. The caller alone gets a
/// ServiceError with the reason; the subscription is not sent again; the
/// link stays up and other traffic flows.
#[tokio::test]
async fn a_refused_subscription_fails_without_a_reconnect_loop() {
    for (version, reason) in [("mqtt3", "Failure (0x80)"), ("mqtt5", "NotAuthorized")] {
        let m = Mosquitto::start_with(Options {
            deny_subscribe: vec!["forbidden/#".to_owned()],
            ..Options::default()
        });
        let broker = bridge(
            &m,
            version,
            &[iot_all("com.example.N"), iot_all("com.example.O")],
            json!({}),
        );
        let n = client(&broker, "com.example.N").await;
        let o = client(&broker, "com.example.O").await;
        let mut ok = subscribe(&o, "ok/x").await.unwrap();
        let observer = m.subscriber(&["ok/y"], 3, WAIT);
        let message = service_error(subscribe(&n, "forbidden/#").await.unwrap_err());
        assert_eq!(
            message,
            format!("Subscribe to topic forbidden/# failed with error {reason}"),
            "{version}"
        );
        for i in 0..3 {
            publish(&o, "ok/y", format!("{i}").as_bytes(), Qos::AtLeastOnce)
                .await
                .unwrap();
        }
        assert_eq!(
            observer.lines(),
            ["ok/y 0", "ok/y 1", "ok/y 2"],
            "{version}"
        );
        m.publish("ok/x", b"still", 1);
        assert_eq!(next(&mut ok).await.1, b"still", "{version}");
        // N asks again: refused again, one more SUBSCRIBE, still one
        // connection.
        assert!(subscribe(&n, "forbidden/#").await.is_err());
        let sent: Vec<_> = m
            .subscription_log(CLIENT)
            .into_iter()
            .filter(|(_, f)| f == "forbidden/#")
            .collect();
        assert_eq!(sent.len(), 2, "{version}: {sent:?}");
        assert_eq!(
            m.log_text().matches(&format!(" as {CLIENT} (")).count(),
            1,
            "{version}"
        );
    }
}

/// BR-03: an mqttproxy policy of `*` operations on `*` allows everything;
/// MQTT wildcards in resources are evaluated, `logs/#` covering `logs`.
#[tokio::test]
async fn mqttproxy_policies_evaluate_mqtt_wildcards() {
    let m = Mosquitto::start();
    let m2 = ComponentSpec::new(
        "com.example.M2",
        json!({"aws.greengrass.ipc.mqttproxy": {"com.example.M2:mqttproxy:1": {
            "operations": ["aws.greengrass#PublishToIoTCore"],
            "resources": ["fleet/+/status", "logs/#"]
        }}}),
    );
    let broker = bridge(&m, "mqtt3", &[iot_all("com.example.M1"), m2], json!({}));
    let m1 = client(&broker, "com.example.M1").await;
    publish(&m1, "site/dev-1/heartbeat", b"x", Qos::AtLeastOnce)
        .await
        .unwrap();
    subscribe(&m1, "cmd/#").await.unwrap();
    let m2 = client(&broker, "com.example.M2").await;
    for (topic, allowed) in [
        ("fleet/a/status", true),
        ("fleet/a/b/status", false),
        ("logs", true),
        ("logs/x/y", true),
    ] {
        match publish(&m2, topic, b"x", Qos::AtLeastOnce).await {
            Ok(()) => assert!(allowed, "{topic} should be denied"),
            Err(Error::Ipc(IpcError::Unauthorized { message })) => {
                assert!(!allowed, "{topic} should be allowed");
                assert_eq!(message.as_deref(), Some("Not Authorized"));
            }
            Err(e) => panic!("{topic}: {e:?}"),
        }
    }
    assert!(matches!(
        subscribe(&m2, "logs/#").await,
        Err(Error::Ipc(IpcError::Unauthorized { .. }))
    ));
}

/// BR-18: a subscription retried on a new stream without closing the first,
/// plus an overlapping wider one: each stream gets each message exactly
/// once, and the peer holds one subscription per distinct filter. Under
/// MQTT 5 mosquitto sends one copy per matching subscription, each with its
/// subscription identifier; under 3.1.1 it sends one copy.
#[tokio::test]
async fn each_stream_gets_one_copy_of_each_message() {
    for version in ["mqtt3", "mqtt5"] {
        let m = Mosquitto::start();
        let broker = bridge(&m, version, &[iot_all("com.example.Y")], json!({}));
        let y = client(&broker, "com.example.Y").await;
        let mut first = subscribe(&y, "dup/x").await.unwrap();
        let mut retry = subscribe(&y, "dup/x").await.unwrap();
        let mut wide = subscribe(&y, "dup/#").await.unwrap();
        m.wait_subscriptions(CLIENT, &["dup/#", "dup/x"], WAIT);
        let numbers: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        m.publish_lines("dup/x", &numbers, 1);
        for sub in [&mut first, &mut retry, &mut wide] {
            for want in &numbers {
                let (topic, payload) = next(sub).await;
                assert_eq!(
                    (topic.as_str(), payload),
                    ("dup/x", want.as_bytes().to_vec()),
                    "{version}"
                );
            }
        }
        for sub in [&mut first, &mut retry, &mut wide] {
            nothing_more(sub, Duration::from_millis(300)).await;
        }
        let subscribes: Vec<_> = m
            .subscription_log(CLIENT)
            .into_iter()
            .filter(|(s, _)| *s)
            .collect();
        assert_eq!(subscribes.len(), 2, "{version}: {subscribes:?}");
        // Closing one stream leaves the others served.
        first.close().await;
        m.publish("dup/x", b"last", 1);
        assert_eq!(next(&mut retry).await.1, b"last");
        assert_eq!(next(&mut wide).await.1, b"last");
    }
}

/// BR-23: `cmd/#` mapped both ways and `sensors/+/temp` up with a prefix:
/// every message crosses once, nothing echoes back, the counts stay put.
#[tokio::test]
async fn mappings_cross_once_and_never_loop() {
    let m = Mosquitto::start();
    let mapping = json!({"mqttTopicMapping": {
        "M1": {"topic": "cmd/#", "source": "IotCore", "target": "Pubsub"},
        "M2": {"topic": "cmd/#", "source": "Pubsub", "target": "IotCore"},
        "M3": {"topic": "sensors/+/temp", "source": "Pubsub", "target": "IotCore", "targetTopicPrefix": "site1/"}
    }});
    let broker = bridge(
        &m,
        "mqtt5",
        &[iot_all("com.example.A"), iot_all("com.example.B")],
        mapping,
    );
    m.wait_subscriptions(CLIENT, &["cmd/#"], WAIT);
    // Ends at the marker the test sends last (1.5 s after the last local
    // check); a message that looped within that time takes a place before it.
    let observer = m.subscriber_with(&["#"], 4, Duration::from_secs(60), &["-F", "%t %r %p"]);
    let a = client(&broker, "com.example.A").await;
    let b = client(&broker, "com.example.B").await;
    let mut local = b.subscribe("cmd/#").await.unwrap();

    // (a) from the cloud: once locally, as binary, nothing back up.
    m.publish("cmd/reboot", b"now", 1);
    let got = tokio::time::timeout(WAIT, local.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.topic, "cmd/reboot");
    assert_eq!(
        got.payload,
        ggipc_client::Payload::Binary(bytes::Bytes::from_static(b"now"))
    );
    // (b) from a component: once up, and not again locally from the echo.
    a.publish_json("cmd/ping", &json!({"n": 1})).await.unwrap();
    let got = tokio::time::timeout(WAIT, local.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.topic, "cmd/ping");
    // (c) prefix and filter: temp goes up as site1/…, hum does not.
    a.publish_binary("sensors/s1/temp", &b"21.5"[..])
        .await
        .unwrap();
    a.publish_binary("sensors/s1/hum", &b"40"[..])
        .await
        .unwrap();
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_millis(1500), local.next()).await {
        panic!("a message came back locally: {extra:?}");
    }
    m.publish("zz/end", b"end", 0);
    let lines = observer.lines();
    assert_eq!(
        lines,
        [
            "cmd/reboot 0 now",
            "cmd/ping 0 {\"n\":1}",
            "site1/sensors/s1/temp 0 21.5",
            "zz/end 0 end"
        ],
        "each message once on the peer, retain cleared"
    );
}

/// MQTT 5 properties go up with a publish and come down with a message.
#[test]
fn mqtt5_properties_cross_both_ways() {
    let m = Mosquitto::start();
    let broker = bridge(&m, "mqtt5", &[iot_all("com.example.A")], json!({}));
    let mut cmd = std::process::Command::new("mosquitto_sub");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &m.port.to_string(),
        "-V",
        "mqttv5",
        "-C",
        "1",
        "-W",
        "10",
    ])
    // Every field PublishToIoTCore carries, retain as published.
    .args([
        "-i",
        "props-observer",
        "-t",
        "props/up",
        "--retain-as-published",
    ])
    .args(["-F", "%t|%r|%C|%P|%D|%R|%F|%E|%p"]);
    let observer = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    m.wait_subscriptions("props-observer", &["props/up"], WAIT);
    let out = json_lines(&run_python(
        &broker,
        "com.example.A",
        SCRIPT,
        &[
            "publish",
            "props/up",
            "body",
            "--content-type",
            "text/plain",
            "--retain",
            "--user-property",
            "site=north",
            "--correlation-data",
            "req-7",
            "--response-topic",
            "props/reply",
            "--payload-format",
            "1",
            "--expiry",
            "3600",
        ],
    ));
    assert_eq!(out, [json!({"ok": true, "count": 1})]);
    let seen = String::from_utf8(observer.wait_with_output().unwrap().stdout).unwrap();
    let fields: Vec<&str> = seen.trim().split('|').collect();
    assert_eq!(
        fields[..7],
        [
            "props/up",
            "1",
            "text/plain",
            "site:north",
            "req-7",
            "props/reply",
            "1"
        ],
        "{seen}"
    );
    // The expiry counts down while the message waits in mosquitto.
    let expiry: u32 = fields[7].parse().unwrap();
    assert!((3590..=3600).contains(&expiry), "{seen}");
    assert_eq!(fields[8], "body");

    let sub = PythonScenario::start_command(
        &broker,
        python_command(
            &broker,
            "com.example.A",
            SCRIPT,
            &["subscribe", "props/down", "1"],
        ),
    );
    let status = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &m.port.to_string(),
            "-V",
            "mqttv5",
            "-q",
            "1",
        ])
        .args([
            "-t",
            "props/down",
            "-m",
            "hi",
            "-D",
            "publish",
            "content-type",
            "application/x-test",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let got = sub.finish();
    assert_eq!(got[0]["payload"], "hi");
    assert_eq!(got[0]["content_type"], "application/x-test");
}

/// Over MQTT 3.1.1 the MQTT 5 fields have nowhere to go: the publish still
/// succeeds and arrives, and `retain` still holds (a later subscriber gets
/// the message).
#[test]
fn a_3_1_1_link_takes_a_publish_with_mqtt5_fields_and_keeps_retain() {
    let m = Mosquitto::start();
    let broker = bridge(&m, "mqtt3", &[iot_all("com.example.A")], json!({}));
    let out = json_lines(&run_python(
        &broker,
        "com.example.A",
        SCRIPT,
        &[
            "publish",
            "v3/up",
            "body",
            "--retain",
            "--content-type",
            "text/plain",
            "--user-property",
            "site=north",
            "--expiry",
            "3600",
        ],
    ));
    assert_eq!(out, [json!({"ok": true, "count": 1})]);
    // Subscribed only now: what arrives is the retained message.
    let later = m.subscriber(&["v3/up"], 1, WAIT);
    assert_eq!(later.lines(), ["v3/up body"]);
}

/// `keepAliveTimeoutMs` is the keep-alive the bridge asks for in CONNECT
/// (mosquitto logs it as `k<seconds>`), on both protocol versions.
#[test]
fn the_keep_alive_setting_reaches_the_peer() {
    // mosquitto numbers 3.1.1 as p2.
    for (version, protocol) in [("mqtt5", "p5"), ("mqtt3", "p2")] {
        let m = Mosquitto::start();
        let _broker = bridge(
            &m,
            version,
            &[iot_all("com.example.A")],
            json!({"keepAliveTimeoutMs": 37000}),
        );
        let log = m.log_text();
        let connect = log
            .lines()
            .find(|l| l.contains(&format!("as {CLIENT} ")))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(
            connect.contains(&format!("({protocol}, ")) && connect.contains(", k37"),
            "{version}: {connect}"
        );
    }
}

/// The bridge reaches a broker on a Unix socket (`unix://`).
#[tokio::test]
async fn a_unix_socket_endpoint_works() {
    let m = Mosquitto::start_with(Options {
        unix_socket: true,
        ..Options::default()
    });
    let socket = m.socket.clone().unwrap();
    let broker = BrokerProcess::start_with_document(
        &[iot_all("com.example.A")],
        json!({"iotCore": {"endpoint": format!("unix://{}", socket.display()), "clientId": CLIENT}}),
    );
    m.wait_connections(CLIENT, 1, WAIT);
    // QoS 0 is refused until the bridge has its CONNACK.
    broker.wait_log("IoT Core connected", 1);
    let observer = m.subscriber(&["sock/t"], 1, WAIT);
    let a = client(&broker, "com.example.A").await;
    publish(&a, "sock/t", b"via socket", Qos::AtMostOnce)
        .await
        .unwrap();
    assert_eq!(observer.lines(), ["sock/t via socket"]);
}

/// Without an `iotCore` section the operations say the device is not
/// configured for the cloud, and the status is DISCONNECTED.
#[tokio::test]
async fn without_iot_core_the_operations_say_so() {
    let broker = BrokerProcess::start(&[iot_all("com.example.A")], json!({}));
    let a = client(&broker, "com.example.A").await;
    let message = service_error(publish(&a, "t", b"x", Qos::AtLeastOnce).await.unwrap_err());
    assert!(
        message.contains("not configured to connect to AWS IoT Core"),
        "{message}"
    );
    let message = service_error(subscribe(&a, "t").await.unwrap_err());
    assert!(message.contains("not configured"), "{message}");
    let mut status = a
        .subscribe_with(&SubscribeToIoTCoreConnectionStatusRequest {})
        .await
        .unwrap();
    let event = tokio::time::timeout(WAIT, status.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        event.connection_status_event.unwrap().status,
        ConnectionStatus::Disconnected
    );
}

/// Bad requests get modeled errors in the nucleus' order and words.
#[tokio::test]
async fn bad_requests_get_the_nucleus_errors() {
    let m = Mosquitto::start();
    let broker = bridge(&m, "mqtt3", &[iot_all("com.example.A")], json!({}));
    let a = client(&broker, "com.example.A").await;
    let invalid = |e: Error| match e {
        Error::Ipc(IpcError::InvalidArguments { message }) => message.unwrap_or_default(),
        other => panic!("expected InvalidArgumentsError, got {other:?}"),
    };
    let no_topic = PublishToIoTCoreRequest {
        qos: Some(Qos::AtLeastOnce),
        payload: Some(Blob::new(b"x".to_vec())),
        ..Default::default()
    };
    assert_eq!(
        invalid(a.publish_to_iot_core(&no_topic).await.unwrap_err()),
        "Topic is required"
    );
    let no_payload = PublishToIoTCoreRequest {
        topic_name: Some("t".into()),
        qos: Some(Qos::AtLeastOnce),
        ..Default::default()
    };
    assert_eq!(
        invalid(a.publish_to_iot_core(&no_payload).await.unwrap_err()),
        "Payload is required"
    );
    let bad_qos = PublishToIoTCoreRequest {
        topic_name: Some("t".into()),
        qos: Some(Qos::from_wire("2")),
        payload: Some(Blob::new(b"x".to_vec())),
        ..Default::default()
    };
    assert_eq!(
        invalid(a.publish_to_iot_core(&bad_qos).await.unwrap_err()),
        "Invalid QoS value: 2"
    );
    let no_qos = SubscribeToIoTCoreRequest {
        topic_name: Some("t".into()),
        qos: None,
    };
    assert_eq!(
        invalid(a.subscribe_to_iot_core(&no_qos).await.unwrap_err()),
        "QoS is required"
    );
    let bad_filter = service_error(subscribe(&a, "a/#/b").await.unwrap_err());
    assert!(
        bad_filter.starts_with("Subscribe to topic a/#/b failed"),
        "{bad_filter}"
    );
}

/// Makes a CA, a server certificate for `localhost` and a client
/// certificate in `dir` with the openssl command.
fn make_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ggipc test CA",
        ],
    ]
    .concat());
    for (name, cn, ext) in [
        (
            "server",
            "localhost",
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "ggipc-thing", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

/// Mutual TLS: the bridge presents its client certificate and checks the
/// server's against `rootCaPath`; mosquitto requires the certificate.
#[tokio::test]
async fn mutual_tls_connects_with_the_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = |f: &str| certs.path().join(f).display().to_string();
    let m = Mosquitto::start_with(Options {
        extra: vec![
            format!("listener {tls_port} 127.0.0.1"),
            format!("cafile {}", p("ca.pem")),
            format!("certfile {}", p("server.pem")),
            format!("keyfile {}", p("server.key")),
            "require_certificate true".to_owned(),
        ],
        ..Options::default()
    });
    let broker = BrokerProcess::start_with_document(
        &[iot_all("com.example.A")],
        json!({"iotCore": {
            "endpoint": format!("mqtts://localhost:{tls_port}"),
            "clientId": CLIENT,
            "certificateFilePath": p("client.pem"),
            "privateKeyPath": p("client.key"),
            "rootCaPath": p("ca.pem"),
        }}),
    );
    m.wait_connections(CLIENT, 1, WAIT);
    let observer = m.subscriber(&["tls/t"], 1, WAIT);
    let a = client(&broker, "com.example.A").await;
    publish(&a, "tls/t", b"sealed", Qos::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(observer.lines(), ["tls/t sealed"]);
    assert!(
        !broker.log_text().contains("BEGIN"),
        "no key material in logs"
    );
}

/// A bad `iotCore` section stops the broker with the file and the key; a
/// key file's content never appears in the message.
#[test]
fn a_bad_key_file_stops_the_broker_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "TOP-SECRET-NOT-A-PEM-KEY";
    std::fs::write(dir.path().join("key.pem"), secret).unwrap();
    std::fs::write(dir.path().join("cert.pem"), "").unwrap();
    make_certificates(dir.path());
    let doc = json!({
        "system": {"rootPath": "root"},
        "iotCore": {
            "endpoint": "mqtts://localhost:8883",
            "clientId": "t",
            "certificateFilePath": "client.pem",
            "privateKeyPath": "key.pem",
            "rootCaPath": "ca.pem",
        }
    });
    let file = dir.path().join("deployment.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new(ggipc_tests::workspace_bin("ggipc-broker"))
        .arg("--deployment")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("iotCore.privateKeyPath"), "{stderr}");
    assert!(stderr.contains("key.pem"), "{stderr}");
    assert!(!stderr.contains(secret), "{stderr}");
}

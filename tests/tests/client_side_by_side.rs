//! The Rust client next to the Python SDK (`awsiotsdk`,
//! GreengrassCoreIPCClientV2): one scripted sequence of operations
//! (`tests/python/side_by_side.py` and [`rust_sequence`]) run by each
//! against its own broker with the same deployment, through a recording
//! proxy. Both must get the same results, and send the same frames: the
//! same headers in the same order with the same values, and payloads equal
//! as JSON with their members in the same order. Stream ids are compared
//! only as "the stream the n-th request opened"; spacing not at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::BytesMut;
use ggipc_client::{Client, ClientBuilder, Error, Payload, TopicMessage};
use ggipc_protocol::model::*;
use ggipc_protocol::{FrameCodec, HeaderValue, Message};
use ggipc_tests::{BrokerProcess, ComponentSpec, python_command};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::codec::Decoder;

const WAIT: Duration = Duration::from_secs(10);
const SIDE: &str = "com.example.Side";
/// Seconds; after the broker's start, so the update wins.
const TIMESTAMP: f64 = 4_102_444_800.25;

// ===== the recording proxy =====

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Direction {
    ToServer,
    ToClient,
}

#[derive(Debug)]
struct Recorded {
    direction: Direction,
    message: Message,
}

#[derive(Debug, Default)]
struct Log {
    frames: Vec<Recorded>,
    /// Connections whose client side has closed.
    finished: usize,
}

/// A Unix socket in front of the broker's that forwards bytes untouched in
/// both directions and decodes a copy of every frame. Serves one
/// connection.
struct Recorder {
    path: PathBuf,
    log: Arc<Mutex<Log>>,
    _dir: tempfile::TempDir,
}

impl Recorder {
    fn start(upstream: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rec")
            .tempdir_in("/tmp")
            .unwrap();
        let path = dir.path().join("proxy.socket");
        let listener = UnixListener::bind(&path).unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let upstream = upstream.to_path_buf();
        let shared = log.clone();
        tokio::spawn(async move {
            let (client, _) = listener.accept().await.unwrap();
            let server = UnixStream::connect(&upstream).await.unwrap();
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            let up = tokio::spawn(pump(
                client_read,
                server_write,
                Direction::ToServer,
                shared.clone(),
            ));
            tokio::spawn(pump(
                server_read,
                client_write,
                Direction::ToClient,
                shared.clone(),
            ));
            up.await.unwrap();
            shared.lock().unwrap().finished += 1;
        });
        Self {
            path,
            log,
            _dir: dir,
        }
    }

    /// Waits until the client has closed its connection, then returns every
    /// frame seen, in the order each direction carried them.
    async fn finish(&self) -> Vec<Recorded> {
        let deadline = Instant::now() + WAIT;
        while self.log.lock().unwrap().finished == 0 {
            assert!(Instant::now() < deadline, "the client never disconnected");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::mem::take(&mut self.log.lock().unwrap().frames)
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    log: Arc<Mutex<Log>>,
) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        while let Some(message) = codec
            .decode(&mut buf)
            .unwrap_or_else(|e| panic!("{direction:?}: undecodable frame: {e}"))
        {
            log.lock()
                .unwrap()
                .frames
                .push(Recorded { direction, message });
        }
        if to.write_all(&chunk[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

// ===== frames made comparable =====

/// A frame with what may differ between the two clients taken out.
#[derive(Debug, PartialEq)]
struct Normalized {
    /// (name, type byte, value); `:stream-id` as the ordinal of the stream.
    headers: Vec<(String, u8, String)>,
    /// The payload as JSON, or as text if it is not JSON.
    payload: Option<Value>,
    /// Object member names in document order (see [`member_order`]).
    members: Vec<String>,
}

fn header_value(value: &HeaderValue) -> String {
    match value {
        HeaderValue::String(s) => s.as_str().to_owned(),
        HeaderValue::Int32(n) => n.to_string(),
        other => format!("{other:?}"),
    }
}

/// Normalizes one direction of a recording: stream ids become 0 for the
/// connection and n for the n-th stream opened, so that a termination still
/// has to name the right stream.
fn normalize(frames: &[Recorded], direction: Direction) -> Vec<(i32, Normalized)> {
    let mut ordinals = BTreeMap::from([(0, 0)]);
    frames
        .iter()
        .filter(|f| f.direction == direction)
        .map(|f| {
            let message = &f.message;
            let stream = message
                .headers
                .iter()
                .find(|h| h.name.as_str() == ":stream-id")
                .and_then(|h| match h.value {
                    HeaderValue::Int32(n) => Some(n),
                    _ => None,
                })
                .expect("every frame has :stream-id");
            let next = ordinals.len() as i32;
            let ordinal = *ordinals.entry(stream).or_insert(next);
            let headers = message
                .headers
                .iter()
                .map(|h| {
                    let value = if h.name.as_str() == ":stream-id" {
                        format!("stream #{ordinal}")
                    } else {
                        header_value(&h.value)
                    };
                    (h.name.as_str().to_owned(), h.value.type_byte(), value)
                })
                .collect();
            let text = String::from_utf8_lossy(&message.payload);
            let payload = (!message.payload.is_empty()).then(|| {
                serde_json::from_slice(&message.payload)
                    .unwrap_or_else(|_| Value::String(text.clone().into_owned()))
            });
            let members = member_order(&text);
            (
                ordinal,
                Normalized {
                    headers,
                    payload,
                    members,
                },
            )
        })
        .collect()
}

/// The member names of every object in `json`, in document order. For two
/// texts that parse to equal values, equal lists mean every object lists
/// its members in the same order (serde_json's `Value` sorts them).
fn member_order(json: &str) -> Vec<String> {
    let bytes = json.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        i += 1;
        let string = &json[start..i.min(json.len())];
        let after = json[i.min(json.len())..].trim_start();
        if after.starts_with(':') {
            names.push(serde_json::from_str(string).unwrap_or_else(|_| string.to_owned()));
        }
    }
    names
}

// ===== the two runs =====

fn side_component() -> ComponentSpec {
    let access = json!({
        "aws.greengrass.ipc.pubsub": {"side:pubsub:1": {
            "operations": ["aws.greengrass#PublishToTopic", "aws.greengrass#SubscribeToTopic"],
            "resources": ["side/*"]
        }},
        "aws.greengrass.Cli": {"side:cli:1": {
            "operations": ["aws.greengrass#ListComponents", "aws.greengrass#GetComponentDetails"],
            "resources": ["*"]
        }},
        "aws.greengrass.ipc.mqttproxy": {"side:mqtt:1": {
            "operations": ["aws.greengrass#PublishToIoTCore"],
            "resources": ["side/*"]
        }}
    });
    ComponentSpec::new(SIDE, access.clone()).with_recipe(json!({
        "ComponentConfiguration": {"DefaultConfiguration": {
            "accessControl": access,
            "settings": {"speed": 3, "mode": "fast"}
        }}
    }))
}

fn broker() -> BrokerProcess {
    BrokerProcess::start(
        &[
            side_component(),
            ComponentSpec::pubsub_all("com.example.Other"),
        ],
        json!({}),
    )
}

fn result<T: Shape>(step: &str, outcome: Result<T, Error>) -> Value {
    match outcome {
        Ok(response) => json!({"step": step, "response": response}),
        Err(Error::Ipc(e)) => {
            json!({"step": step, "error": e.shape_name(), "message": e.message()})
        }
        Err(other) => json!({"step": step, "error": format!("not modeled: {other:?}")}),
    }
}

/// PublishToTopicResponse is empty; the convenience methods return `()`.
fn published(outcome: Result<(), Error>) -> Result<PublishToTopicResponse, Error> {
    outcome.map(|()| PublishToTopicResponse {})
}

fn event(step: &str, message: TopicMessage) -> Value {
    let mut record = json!({"topic": message.topic});
    match message.payload {
        Payload::Json(value) => record["json"] = value,
        Payload::Binary(bytes) => {
            record["binary_b64"] = base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into();
        }
    }
    json!({"step": step, "event": record})
}

async fn next(sub: &mut ggipc_client::Subscription<TopicMessage>) -> TopicMessage {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("an event in time")
        .expect("the subscription is open")
        .expect("a valid event")
}

/// The steps of `side_by_side.py`, through the Rust client.
async fn rust_sequence(client: &Client) -> Vec<Value> {
    let mut out = Vec::new();
    // Members in an order of their own, as a struct would have them (the
    // tests crate has no serde derive; RawValue serializes as written).
    let message = serde_json::value::RawValue::from_string(
        r#"{"zeta": "héllo", "alpha": [1, 2.5, null, true], "nested": {"b": 1, "a": {"x": "y"}}}"#
            .to_owned(),
    )
    .unwrap();
    out.push(result(
        "publish_json",
        published(client.publish_json("side/json", &message).await),
    ));
    out.push(result(
        "publish_binary",
        published(
            client
                .publish_binary("side/bin", b"\x00\x01hi\xff".as_slice())
                .await,
        ),
    ));

    let mut sub = client.subscribe("side/sub").await.unwrap();
    // The client keeps the (empty) response to itself; the frame comparison
    // checks the broker sent both the same.
    out.push(json!({"step": "subscribe", "response": {}}));
    out.push(result(
        "publish_to_subscription_json",
        published(client.publish_json("side/sub", &json!({"n": 1})).await),
    ));
    out.push(event("event_json", next(&mut sub).await));
    out.push(result(
        "publish_to_subscription_binary",
        published(client.publish_binary("side/sub", "bytes").await),
    ));
    out.push(event("event_binary", next(&mut sub).await));
    sub.close().await;

    let key_path = |keys: &[&str]| Some(keys.iter().map(|k| (*k).to_owned()).collect());
    out.push(result(
        "get_configuration",
        client
            .get_configuration(&GetConfigurationRequest {
                component_name: None,
                key_path: key_path(&["settings"]),
            })
            .await,
    ));
    out.push(result(
        "update_configuration",
        client
            .update_configuration(&UpdateConfigurationRequest {
                key_path: key_path(&["settings"]),
                timestamp: Some(Timestamp::from_secs_f64(TIMESTAMP)),
                // A Value sorts its members: written sorted in Python too.
                value_to_merge: Some(json!({"mode": "slow", "speed": 4})),
            })
            .await,
    ));
    out.push(result(
        "get_configuration_updated",
        client
            .get_configuration(&GetConfigurationRequest {
                component_name: Some(SIDE.into()),
                key_path: key_path(&["settings", "speed"]),
            })
            .await,
    ));
    out.push(result(
        "get_configuration_missing",
        client
            .get_configuration(&GetConfigurationRequest {
                component_name: None,
                key_path: key_path(&["nope"]),
            })
            .await,
    ));
    out.push(result("list_components", client.list_components().await));
    out.push(result(
        "get_component_details",
        client
            .get_component_details(&GetComponentDetailsRequest {
                component_name: Some(SIDE.into()),
            })
            .await,
    ));
    out.push(result(
        "get_component_details_missing",
        client
            .get_component_details(&GetComponentDetailsRequest {
                component_name: Some("com.example.Missing".into()),
            })
            .await,
    ));
    out.push(result(
        "update_state",
        client
            .update_state(&UpdateStateRequest {
                state: Some(ReportedLifecycleState::Running),
            })
            .await,
    ));
    out.push(result(
        "unauthorized",
        published(client.publish_json("denied/topic", &json!({"x": 1})).await),
    ));
    out.push(result(
        "invalid_arguments",
        published(client.publish_binary("side/+", "x").await),
    ));
    out.push(result(
        "publish_to_iot_core",
        client
            .publish_to_iot_core(&PublishToIoTCoreRequest {
                topic_name: Some("side/iot".into()),
                qos: Some(Qos::AtLeastOnce),
                payload: Some(Blob::from(b"iot".as_slice())),
                ..Default::default()
            })
            .await,
    ));
    client.close().await;
    out
}

struct Run {
    results: Vec<Value>,
    frames: Vec<Recorded>,
    token: String,
}

async fn run_rust() -> Run {
    let broker = broker();
    let recorder = Recorder::start(&broker.socket);
    let client = ClientBuilder::new(&recorder.path)
        .token(broker.token(SIDE))
        .operation_timeout(WAIT)
        .connect()
        .await
        .unwrap();
    let results = rust_sequence(&client).await;
    Run {
        results,
        frames: recorder.finish().await,
        token: broker.token(SIDE).to_owned(),
    }
}

async fn run_python() -> Run {
    let broker = broker();
    let recorder = Recorder::start(&broker.socket);
    let mut command = python_command(&broker, SIDE, "side_by_side.py", &[]);
    command.env(
        "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT",
        &recorder.path,
    );
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::from(command).output(),
    )
    .await
    .expect("the Python sequence ends within a minute")
    .unwrap();
    assert!(
        output.status.success(),
        "python failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let results = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    Run {
        results,
        frames: recorder.finish().await,
        token: broker.token(SIDE).to_owned(),
    }
}

/// The CONNECT payload with the token (different per broker) taken out.
fn without_token(frame: &mut Normalized, token: &str) {
    let payload = frame.payload.as_mut().expect("CONNECT has a payload");
    assert_eq!(payload, &json!({"authToken": token}));
    payload["authToken"] = json!("<token>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_gets_the_same_results_and_sends_the_same_frames_as_python() {
    let rust = run_rust().await;
    let python = run_python().await;

    // Results, step by step.
    assert_eq!(
        rust.results.len(),
        python.results.len(),
        "rust: {:#?}\npython: {:#?}",
        rust.results,
        python.results
    );
    for (r, p) in rust.results.iter().zip(&python.results) {
        assert_eq!(r, p, "the same step gave different results");
    }
    // The sequence exercised what it claims to, in both.
    let errors: Vec<&str> = rust
        .results
        .iter()
        .filter_map(|r| r["error"].as_str())
        .collect();
    assert!(errors.contains(&"UnauthorizedError"), "{errors:?}");
    assert!(errors.contains(&"InvalidArgumentsError"), "{errors:?}");
    assert!(errors.contains(&"ResourceNotFoundError"), "{errors:?}");

    // Client → server: every frame, in order.
    let mut sent_rust = normalize(&rust.frames, Direction::ToServer);
    let mut sent_python = normalize(&python.frames, Direction::ToServer);
    without_token(&mut sent_rust[0].1, &rust.token);
    without_token(&mut sent_python[0].1, &python.token);
    let operations = |frames: &[(i32, Normalized)]| -> Vec<String> {
        frames
            .iter()
            .map(|(stream, f)| {
                let op = f.headers.iter().find(|h| h.0 == "operation");
                format!("#{stream} {}", op.map_or("-", |h| h.2.as_str()))
            })
            .collect()
    };
    assert_eq!(
        operations(&sent_rust),
        operations(&sent_python),
        "the same frames in the same order"
    );
    // CONNECT, 16 requests (one of them the subscription), its termination.
    assert_eq!(sent_rust.len(), 18, "{:#?}", operations(&sent_rust));
    for ((stream, r), (_, p)) in sent_rust.iter().zip(&sent_python) {
        assert_eq!(
            r.headers, p.headers,
            "headers of a frame on stream #{stream}"
        );
        assert_eq!(
            r.payload, p.payload,
            "payload of a frame on stream #{stream}"
        );
        assert_eq!(
            r.members, p.members,
            "member order of a payload on stream #{stream}"
        );
    }

    // Server → client: the same answers on each stream. Across streams the
    // order may differ (an event and the publish response that caused it).
    let by_stream = |frames: Vec<(i32, Normalized)>| {
        let mut streams: BTreeMap<i32, Vec<Normalized>> = BTreeMap::new();
        for (stream, frame) in frames {
            streams.entry(stream).or_default().push(frame);
        }
        streams
    };
    let answers_rust = by_stream(normalize(&rust.frames, Direction::ToClient));
    let answers_python = by_stream(normalize(&python.frames, Direction::ToClient));
    assert_eq!(
        answers_rust.keys().collect::<Vec<_>>(),
        answers_python.keys().collect::<Vec<_>>()
    );
    for (stream, r) in &answers_rust {
        let p = &answers_python[stream];
        assert_eq!(r.len(), p.len(), "messages on stream #{stream}");
        for (r, p) in r.iter().zip(p) {
            assert_eq!(r.headers, p.headers, "answer headers on stream #{stream}");
            assert_eq!(r.payload, p.payload, "answer on stream #{stream}");
        }
    }
}

//! The Rust client against the real broker binary: publish and subscribe in
//! both message forms, typed errors, access denial, concurrency on one
//! connection, publishing from a subscription loop, and subscriptions ending
//! on the wire when dropped or closed.

use std::time::Duration;

use futures_util::StreamExt;
use ggipc_client::{Client, ClientBuilder, Error, Payload, TopicMessage};
use ggipc_protocol::model::*;
use ggipc_tests::{BrokerProcess, ComponentSpec};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn builder(broker: &BrokerProcess, component: &str) -> ClientBuilder {
    ClientBuilder::new(&broker.socket)
        .token(broker.token(component))
        .operation_timeout(WAIT)
}

async fn client(broker: &BrokerProcess, component: &str) -> Client {
    builder(broker, component).connect().await.unwrap()
}

async fn next<T>(sub: &mut ggipc_client::Subscription<T>) -> T {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("an event in time")
        .expect("the subscription is open")
        .expect("a valid event")
}

/// A component allowed to publish and subscribe under `allowed/` only.
fn limited(name: &str) -> ComponentSpec {
    ComponentSpec::new(
        name,
        json!({"aws.greengrass.ipc.pubsub": {
            format!("{name}:pubsub:1"): {
                "operations": ["aws.greengrass#PublishToTopic", "aws.greengrass#SubscribeToTopic"],
                "resources": ["allowed/*"]
            }
        }}),
    )
}

#[tokio::test]
async fn json_and_binary_messages_arrive_with_their_topic() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Pub"),
            ComponentSpec::pubsub_all("com.example.Sub"),
        ],
        json!({}),
    );
    let publisher = client(&broker, "com.example.Pub").await;
    let subscriber = client(&broker, "com.example.Sub").await;
    let mut messages = subscriber.subscribe("sensors/+").await.unwrap();

    publisher
        .publish_json("sensors/t1", &json!({"celsius": 21.5, "ok": true}))
        .await
        .unwrap();
    let binary = vec![0u8, 1, 2, 255];
    publisher
        .publish_binary("sensors/raw", binary.clone())
        .await
        .unwrap();

    let m = next(&mut messages).await;
    assert_eq!(m.topic, "sensors/t1");
    assert_eq!(
        m.payload,
        Payload::Json(json!({"celsius": 21.5, "ok": true}))
    );
    let m = next(&mut messages).await;
    assert_eq!(
        m,
        TopicMessage {
            topic: "sensors/raw".into(),
            payload: Payload::Binary(binary.into()),
        }
    );

    // The model-level calls see the same messages as the service has them.
    let mut raw = subscriber
        .subscribe_to_topic(&SubscribeToTopicRequest {
            topic: Some("sensors/t1".into()),
            receive_mode: Some(ReceiveMode::ReceiveAllMessages),
        })
        .await
        .unwrap();
    publisher
        .publish_to_topic(&PublishToTopicRequest {
            topic: Some("sensors/t1".into()),
            publish_message: Some(PublishMessage::from(BinaryMessage {
                message: Some(Blob::from(b"x".as_slice())),
                context: None,
            })),
        })
        .await
        .unwrap();
    let event = next(&mut raw).await;
    let binary = event.binary_message.expect("a binary message");
    assert_eq!(binary.message.unwrap().as_ref(), b"x");
    assert_eq!(binary.context.unwrap().topic.as_deref(), Some("sensors/t1"));
}

#[tokio::test]
async fn server_errors_are_typed_and_carry_their_message() {
    let broker = BrokerProcess::start(
        &[
            limited("com.example.Limited"),
            ComponentSpec::pubsub_all("com.example.All"),
        ],
        json!({}),
    );
    let client = client(&broker, "com.example.Limited").await;

    let denied = client.publish_json("denied/topic", &json!({})).await;
    match denied {
        Err(Error::Ipc(IpcError::Unauthorized { message: Some(m) })) => {
            assert!(m.contains("com.example.Limited"), "{m}");
            assert!(m.contains("denied/topic"), "{m}");
        }
        other => panic!("expected UnauthorizedError, got {other:?}"),
    }
    let denied = client.subscribe("denied/#").await;
    assert!(
        matches!(&denied, Err(Error::Ipc(IpcError::Unauthorized { .. }))),
        "{denied:?}"
    );

    // Allowed, but not a topic one can publish to.
    let all = self::client(&broker, "com.example.All").await;
    let invalid = all.publish_binary("allowed/+", "x").await;
    match invalid {
        Err(Error::Ipc(e @ IpcError::InvalidArguments { .. })) => {
            assert!(e.message().unwrap().contains("wildcard"), "{e}");
            assert!(e.to_string().starts_with("InvalidArgumentsError: "), "{e}");
        }
        other => panic!("expected InvalidArgumentsError, got {other:?}"),
    }
    // Errors end only their own stream.
    client.publish_json("allowed/ok", &json!({})).await.unwrap();
    assert!(client.is_connected());
}

#[tokio::test]
async fn a_bad_token_is_access_denied() {
    let broker = BrokerProcess::start(&[ComponentSpec::pubsub_all("com.example.A")], json!({}));
    let refused = ClientBuilder::new(&broker.socket)
        .token("NOT-A-TOKEN")
        .connect()
        .await;
    assert!(matches!(refused, Err(Error::AccessDenied)), "{refused:?}");
    let missing = ClientBuilder::new(&broker.socket).connect().await;
    assert!(matches!(missing, Err(Error::Config(_))), "{missing:?}");
    let nowhere = ClientBuilder::new(broker.root.join("no.socket"))
        .token("T")
        .connect()
        .await;
    assert!(matches!(nowhere, Err(Error::Io(_))), "{nowhere:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_operations_run_concurrently_on_one_connection() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Pub"),
            ComponentSpec::pubsub_all("com.example.Sub"),
        ],
        json!({}),
    );
    let publisher = client(&broker, "com.example.Pub").await;
    let subscriber = client(&broker, "com.example.Sub").await;
    // Several subscriptions on the one connection, opened concurrently too.
    let subs = futures_util::future::join_all((0..4).map(|i| {
        let subscriber = subscriber.clone();
        async move { subscriber.subscribe(&format!("load/{i}")).await.unwrap() }
    }))
    .await;
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let publisher = publisher.clone();
            tokio::spawn(async move {
                publisher
                    .publish_json(&format!("load/{}", n % 4), &json!({"n": n}))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let mut total = 0;
    for (i, mut sub) in subs.into_iter().enumerate() {
        let mut seen = Vec::new();
        for _ in 0..50 {
            let m = next(&mut sub).await;
            assert_eq!(m.topic, format!("load/{i}"));
            seen.push(
                m.json::<serde_json::Value>().unwrap()["n"]
                    .as_u64()
                    .unwrap(),
            );
        }
        seen.sort_unstable();
        let expected: Vec<u64> = (0..200).filter(|n| n % 4 == i as u64).collect();
        assert_eq!(seen, expected);
        assert_eq!(sub.dropped_events(), 0);
        total += seen.len();
    }
    assert_eq!(total, 200);
}

#[tokio::test]
async fn a_handler_publishes_from_inside_its_subscription_loop() {
    // Field case BR-13: a component answering each message with a publish
    // from its own subscription callback must not deadlock.
    const ROUNDS: u64 = 200;
    let broker = BrokerProcess::start(&[ComponentSpec::pubsub_all("com.example.Echo")], json!({}));
    let client = client(&broker, "com.example.Echo").await;
    // Without a wildcard the subscriber receives its own messages.
    let mut sub = client.subscribe("echo/ping").await.unwrap();
    client
        .publish_json("echo/ping", &json!({"n": 0}))
        .await
        .unwrap();
    let looped = tokio::time::timeout(Duration::from_secs(60), async {
        let mut last = 0;
        while let Some(m) = sub.next().await {
            let n = m.unwrap().json::<serde_json::Value>().unwrap()["n"]
                .as_u64()
                .unwrap();
            assert_eq!(n, last, "messages in order, none lost");
            if n + 1 == ROUNDS {
                return n + 1;
            }
            last = n + 1;
            client
                .publish_json("echo/ping", &json!({"n": n + 1}))
                .await
                .unwrap();
        }
        panic!("the subscription ended");
    })
    .await
    .expect("200 nested round trips within a minute");
    assert_eq!(looped, ROUNDS);
}

#[tokio::test]
async fn dropped_and_closed_subscriptions_end_on_the_broker() {
    // With room for two open streams, a third subscription is refused unless
    // dropping and closing really terminate the earlier ones on the broker.
    let broker = BrokerProcess::start(
        &[ComponentSpec::pubsub_all("com.example.A")],
        json!({"maxStreamsPerConnection": 2}),
    );
    let client = client(&broker, "com.example.A").await;
    let keep = client.subscribe("churn/keep").await.unwrap();
    let extra = client.subscribe("churn/x").await.unwrap();
    let refused = client.subscribe("churn/y").await;
    assert!(
        matches!(&refused, Err(Error::Ipc(IpcError::Service { .. }))),
        "the limit is in force: {refused:?}"
    );
    drop(extra);
    for i in 0..5 {
        let sub = client.subscribe(&format!("churn/{i}")).await.unwrap();
        if i % 2 == 0 {
            drop(sub);
        } else {
            sub.close().await;
        }
    }
    // Still one free slot, and the subscription kept open still delivers.
    let _last = client.subscribe("churn/last").await.unwrap();
    let refused = client.subscribe("churn/over").await;
    assert!(refused.is_err(), "two open again: {refused:?}");
    let mut keep = keep;
    client
        .publish_json("churn/keep", &json!({"k": 1}))
        .await
        .unwrap();
    assert_eq!(
        next(&mut keep).await.payload,
        Payload::Json(json!({"k": 1}))
    );
}

//! Stream churn on one connection of the Rust client: 32 tasks subscribing,
//! receiving and closing over and over, concurrently, against a broker that
//! allows exactly 32 open streams per connection — so a single stream left
//! open on the broker would make a later subscription fail.

use std::time::Duration;

use ggipc_client::{Client, ClientBuilder, Error, Payload, Subscription, TopicMessage};
use ggipc_protocol::model::{IpcError, ReceiveMode, SubscribeToTopicRequest};
use ggipc_tests::{BrokerProcess, ComponentSpec};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const TASKS: usize = 32;
const ROUNDS: usize = 25;
const LIMIT_REACHED: &str = "stream limit reached";

async fn subscribe(client: &Client, topic: &str) -> Result<Subscription<TopicMessage>, Error> {
    client
        .subscribe_messages(&SubscribeToTopicRequest {
            topic: Some(topic.to_owned()),
            receive_mode: Some(ReceiveMode::ReceiveAllMessages),
        })
        .await
}

/// Opens 32 subscriptions at once, which must all succeed, and checks a
/// 33rd is refused for the limit.
async fn fill(client: &Client, prefix: &str) -> Vec<Subscription<TopicMessage>> {
    let held = futures_util::future::join_all((0..TASKS).map(|i| async move {
        subscribe(client, &format!("{prefix}/{i}"))
            .await
            .unwrap_or_else(|e| panic!("{prefix}: slot {i} is not free: {e:?}"))
    }))
    .await;
    match subscribe(client, &format!("{prefix}/over")).await {
        Err(Error::Ipc(IpcError::Service {
            message: Some(m), ..
        })) if m.contains("too many open streams on this connection (limit 32)") => {}
        other => panic!("{prefix}: the 33rd stream was not refused: {other:?}"),
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_tasks_open_and_close_streams_concurrently_on_one_connection() {
    let broker = BrokerProcess::start(
        &[ComponentSpec::pubsub_all("com.example.A")],
        json!({"maxStreamsPerConnection": TASKS}),
    );
    let client = ClientBuilder::new(&broker.socket)
        .token(broker.token("com.example.A"))
        .operation_timeout(WAIT)
        .connect()
        .await
        .unwrap();

    // The limit bites at exactly 32 streams on this connection.
    drop(fill(&client, "before").await);
    assert_eq!(broker.log_text().matches(LIMIT_REACHED).count(), 1);

    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                for r in 0..ROUNDS {
                    let topic = format!("churn/{t}/{r}");
                    let mut sub = subscribe(&client, &topic)
                        .await
                        .unwrap_or_else(|e| panic!("task {t} round {r}: {e:?}"));
                    client
                        .publish_json(&topic, &json!({"t": t, "r": r}))
                        .await
                        .unwrap();
                    let m = tokio::time::timeout(WAIT, sub.recv())
                        .await
                        .unwrap_or_else(|_| panic!("task {t} round {r}: no message"))
                        .expect("open")
                        .expect("a message");
                    assert_eq!(m.topic, topic);
                    assert_eq!(m.payload, Payload::Json(json!({"t": t, "r": r})));
                    // Both ways of ending a subscription.
                    if r % 2 == 0 {
                        sub.close().await;
                    } else {
                        drop(sub);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    // All 800 streams ended on the broker: the 32 slots are free again, and
    // no subscription was refused on the way.
    let held = fill(&client, "after").await;
    assert_eq!(
        broker.log_text().matches(LIMIT_REACHED).count(),
        2,
        "{}",
        broker.log_text()
    );
    // The connection survived it all and the last streams deliver.
    let mut first = held.into_iter().next().unwrap();
    client
        .publish_json("after/0", &json!({"done": true}))
        .await
        .unwrap();
    let m = tokio::time::timeout(WAIT, first.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.payload, Payload::Json(json!({"done": true})));
}

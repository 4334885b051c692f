//! The Rust client when the broker goes away: what fails and how, and the
//! opt-in reconnection that re-opens subscriptions on a restarted broker.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ggipc_client::{
    Client, ClientBuilder, Error, Payload, ReconnectPolicy, Subscription, TopicMessage,
};
use ggipc_tests::{BrokerProcess, ComponentSpec};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn broker() -> BrokerProcess {
    BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Pub"),
            ComponentSpec::pubsub_all("com.example.Sub"),
        ],
        json!({}),
    )
}

async fn publisher(broker: &BrokerProcess) -> Client {
    ClientBuilder::new(&broker.socket)
        .token(broker.token("com.example.Pub"))
        .connect()
        .await
        .unwrap()
}

fn reconnecting(broker: &BrokerProcess) -> ClientBuilder {
    let mut policy = ReconnectPolicy::default();
    policy.initial_delay = Duration::from_millis(50);
    policy.max_delay = Duration::from_millis(500);
    // The broker issues new tokens at every start and rewrites this file.
    ClientBuilder::new(&broker.socket)
        .token_file(broker.token_file("com.example.Sub"))
        .operation_timeout(WAIT)
        .reconnect(policy)
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes `n` from a fresh client until `sub` receives it: after a
/// reconnect the subscription is re-opened shortly after the connection.
async fn publish_until_received(
    broker: &BrokerProcess,
    sub: &mut Subscription<TopicMessage>,
    n: u64,
) {
    let publisher = publisher(broker).await;
    let deadline = Instant::now() + WAIT;
    loop {
        publisher
            .publish_json("re/topic", &json!({"n": n}))
            .await
            .unwrap();
        match tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            Err(_) => assert!(Instant::now() < deadline, "message {n} never arrived"),
            Ok(Some(Ok(m))) => {
                assert_eq!(m.payload, Payload::Json(json!({"n": n})));
                // Drain the copies of earlier attempts that were in flight.
                while let Ok(Some(extra)) =
                    tokio::time::timeout(Duration::from_millis(200), sub.next()).await
                {
                    assert_eq!(extra.unwrap().payload, Payload::Json(json!({"n": n})));
                }
                return;
            }
            Ok(other) => panic!("the subscription ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_crash_fails_operations_and_ends_subscriptions_with_connection_closed() {
    let mut broker = broker();
    let client = ClientBuilder::new(&broker.socket)
        .token(broker.token("com.example.Sub"))
        .connect()
        .await
        .unwrap();
    let mut sub = client.subscribe("re/topic").await.unwrap();
    // Operations in flight when the broker dies resolve, none hangs.
    let busy = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = client.publish_json("busy/topic", &json!({})).await {
                    return e;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    broker.crash_and_restart();
    let error = tokio::time::timeout(WAIT, busy)
        .await
        .expect("the publishing task sees the loss in time")
        .unwrap();
    assert!(matches!(error, Error::ConnectionClosed(_)), "{error:?}");
    let end = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
    assert!(
        matches!(&end, Some(Err(Error::ConnectionClosed(_)))),
        "{end:?}"
    );
    assert!(sub.next().await.is_none());
    // Without reconnection the client stays down, even with the broker back.
    assert!(!client.is_connected());
    let later = client.publish_json("re/topic", &json!({})).await;
    assert!(
        matches!(later, Err(Error::ConnectionClosed(_))),
        "{later:?}"
    );
}

#[tokio::test]
async fn a_clean_broker_shutdown_ends_subscriptions() {
    let mut broker = broker();
    let client = ClientBuilder::new(&broker.socket)
        .token(broker.token("com.example.Sub"))
        .connect()
        .await
        .unwrap();
    let mut sub = client.subscribe("re/topic").await.unwrap();
    assert!(broker.terminate().success());
    // ggipc-broker terminates open streams before it closes connections, so
    // the subscription may see either first.
    let end = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
    assert!(
        matches!(
            &end,
            Some(Err(Error::StreamClosed | Error::ConnectionClosed(_)))
        ),
        "{end:?}"
    );
    assert!(sub.next().await.is_none());
    wait_until("the client sees the close", || !client.is_connected()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnection_reopens_subscriptions_on_a_restarted_broker() {
    let mut broker = broker();
    let client = reconnecting(&broker).connect().await.unwrap();
    let mut sub = client.subscribe("re/topic").await.unwrap();
    publish_until_received(&broker, &mut sub, 0).await;

    // A clean shutdown: streams terminated, then the connection closed.
    assert!(broker.terminate().success());
    wait_until("the client sees the shutdown", || !client.is_connected()).await;
    // While disconnected, operations fail at once instead of queueing.
    let offline = client.publish_json("re/topic", &json!({})).await;
    assert!(
        matches!(offline, Err(Error::ConnectionClosed(_))),
        "{offline:?}"
    );
    broker.restart();
    wait_until("the client reconnects", || client.is_connected()).await;
    publish_until_received(&broker, &mut sub, 1).await;

    // A crash: the connection just drops.
    broker.crash_and_restart();
    publish_until_received(&broker, &mut sub, 2).await;

    // The reconnected client works for everything, and no event was lost
    // to overflow on the way.
    client
        .publish_json("re/topic", &json!({"n": 3}))
        .await
        .unwrap();
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.unwrap().payload, Payload::Json(json!({"n": 3})));
    assert_eq!(sub.dropped_events(), 0);
}

#[tokio::test]
async fn reconnection_gives_up_after_its_attempts_and_ends_subscriptions() {
    let mut broker = broker();
    let mut policy = ReconnectPolicy::default();
    policy.initial_delay = Duration::from_millis(20);
    policy.max_attempts = Some(3);
    let client = ClientBuilder::new(&broker.socket)
        .token_file(broker.token_file("com.example.Sub"))
        .reconnect(policy)
        .connect()
        .await
        .unwrap();
    let mut sub = client.subscribe("re/topic").await.unwrap();
    assert!(broker.terminate().success());
    let end = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
    match end {
        Some(Err(Error::ConnectionClosed(reason))) => {
            assert!(reason.contains("after 3 attempts"), "{reason}");
        }
        other => panic!("expected the subscription to end: {other:?}"),
    }
    assert!(sub.next().await.is_none());
    assert!(!client.is_connected());
}

#[tokio::test]
async fn closing_the_client_ends_everything() {
    let broker = broker();
    let client = reconnecting(&broker).connect().await.unwrap();
    let mut sub = client.subscribe("re/topic").await.unwrap();
    client.close().await;
    let end = tokio::time::timeout(WAIT, sub.next()).await.unwrap();
    assert!(
        matches!(&end, Some(Err(Error::ConnectionClosed(r))) if r.contains("closed by the client")),
        "{end:?}"
    );
    assert!(sub.next().await.is_none());
    assert!(!client.is_connected());
    // It stays closed: no reconnection after an explicit close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!client.is_connected());
}

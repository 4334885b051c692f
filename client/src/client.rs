//! The client: operations on the current connection, and the supervisor
//! that reconnects when asked to.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use ggipc_protocol::model::*;
use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug};

use crate::config::{ClientBuilder, ReconnectPolicy};
use crate::connection::Connection;
use crate::message::TopicMessage;
use crate::operations::{StreamingRequest, UnaryRequest};
use crate::sink::EventSink;
use crate::subscription::{Decode, Subscription, decode_event};
use crate::{Error, lock};

/// How long [`Client::close`] waits for queued frames to be written.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// Subscriptions to re-open after a reconnect.
#[derive(Debug)]
struct Durable {
    policy: ReconnectPolicy,
    sinks: Mutex<Vec<Weak<EventSink>>>,
    /// Woken when the server terminates a subscription it should keep.
    resubscribe: Arc<Notify>,
}

impl Durable {
    fn register(&self, sink: &Arc<EventSink>) {
        let mut sinks = lock(&self.sinks);
        sinks.retain(|s| s.upgrade().is_some_and(|s| !s.is_finished()));
        sinks.push(Arc::downgrade(sink));
    }

    fn detached(&self) -> Vec<Arc<EventSink>> {
        lock(&self.sinks)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|s| s.is_detached())
            .collect()
    }

    fn end_all(&self, reason: &str) {
        for sink in lock(&self.sinks).drain(..).filter_map(|s| s.upgrade()) {
            sink.end(Some(Error::ConnectionClosed(reason.to_owned())));
        }
    }
}

/// What every [`Client`] handle and [`Subscription`] share.
#[derive(Debug)]
pub(crate) struct ClientInner {
    config: ClientBuilder,
    /// The current connection; a closed one while reconnecting or after
    /// the end, so operations fail at once with its close reason.
    current: Mutex<Arc<Connection>>,
    durable: Option<Durable>,
    /// Stops the supervisor.
    shutdown: CancellationToken,
}

impl ClientInner {
    fn connection(&self) -> Arc<Connection> {
        lock(&self.current).clone()
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.shutdown.cancel();
        lock(&self.current).close("the client was dropped", true);
    }
}

/// A connection to a Greengrass IPC server — the nucleus or `ggipc-broker`
/// — with one async method per operation.
///
/// Cheap to clone: clones share the connection, and operations from any
/// number of tasks run concurrently on it. The connection closes when the
/// last clone and the last [`Subscription`] are dropped, or at
/// [`close`](Self::close).
///
/// ```no_run
/// use futures_util::StreamExt;
/// use serde_json::json;
///
/// # async fn demo() -> Result<(), ggipc_client::Error> {
/// // Socket and token from the environment Greengrass gives a component.
/// let client = ggipc_client::connect().await?;
///
/// let mut messages = client.subscribe("sensors/+").await?;
/// client.publish_json("sensors/t1", &json!({"celsius": 21.5})).await?;
/// while let Some(message) = messages.next().await {
///     let message = message?;
///     println!("{}: {:?}", message.topic, message.payload);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<ClientInner>,
}

/// Connects with the socket and token Greengrass gives a component in its
/// environment (see [`ClientBuilder::from_env`]) and default options.
pub async fn connect() -> Result<Client, Error> {
    ClientBuilder::from_env()?.connect().await
}

impl Client {
    /// The same as [`connect`](crate::connect).
    pub async fn connect() -> Result<Self, Error> {
        connect().await
    }

    /// A builder for an explicit socket path, token and options.
    pub fn builder(socket_path: impl Into<std::path::PathBuf>) -> ClientBuilder {
        ClientBuilder::new(socket_path)
    }

    pub(crate) async fn from_builder(config: ClientBuilder) -> Result<Self, Error> {
        let conn = Connection::open(&config).await?;
        let durable = config.reconnect.map(|policy| Durable {
            policy,
            sinks: Mutex::new(Vec::new()),
            resubscribe: Arc::new(Notify::new()),
        });
        let inner = Arc::new(ClientInner {
            config,
            current: Mutex::new(conn),
            durable,
            shutdown: CancellationToken::new(),
        });
        if inner.durable.is_some() {
            tokio::spawn(
                supervise(Arc::downgrade(&inner), inner.shutdown.clone())
                    .instrument(tracing::debug_span!("ggipc_reconnect")),
            );
        }
        Ok(Self { inner })
    }

    /// Whether the client is connected right now.
    pub fn is_connected(&self) -> bool {
        !self.inner.connection().is_closed()
    }

    /// Closes the connection and stops reconnecting. Pending operations fail
    /// and subscriptions end with [`Error::ConnectionClosed`]; frames already
    /// queued are written first if the socket takes them within a second.
    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        let conn = self.inner.connection();
        conn.flush(CLOSE_FLUSH).await;
        conn.close("closed by the client", true);
        if let Some(durable) = &self.inner.durable {
            durable.end_all("closed by the client");
        }
    }

    /// Runs any unary operation: sends `request`, waits for the response.
    ///
    /// ```no_run
    /// # async fn demo(client: ggipc_client::Client) -> Result<(), ggipc_client::Error> {
    /// use ggipc_protocol::model::GetThingShadowRequest;
    ///
    /// let shadow = client
    ///     .call(&GetThingShadowRequest {
    ///         thing_name: Some("my-thing".into()),
    ///         ..Default::default()
    ///     })
    ///     .await?;
    /// # drop(shadow);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<R: UnaryRequest>(&self, request: &R) -> Result<R::Response, Error> {
        self.call_payload::<R>(request.to_payload()).await
    }

    /// Runs the unary operation of `R` with a payload already serialized.
    async fn call_payload<R: UnaryRequest>(&self, payload: Bytes) -> Result<R::Response, Error> {
        let conn = self.inner.connection();
        let rpc = conn
            .call(
                R::OPERATION,
                payload,
                None,
                self.inner.config.operation_timeout,
            )
            .await?;
        R::Response::from_payload(rpc.payload()).map_err(|source| Error::Decode {
            shape: <R::Response as Shape>::ID.to_owned(),
            source,
        })
    }

    /// Opens any streaming operation: sends `request`, waits for the
    /// response, and returns the stream of events that follows.
    pub async fn subscribe_with<R: StreamingRequest>(
        &self,
        request: &R,
    ) -> Result<Subscription<R::Event>, Error> {
        self.open(R::OPERATION, request.to_payload(), decode_event::<R::Event>)
            .await
    }

    async fn open<T>(
        &self,
        operation: Operation,
        payload: Bytes,
        decode: Decode<T>,
    ) -> Result<Subscription<T>, Error> {
        let config = &self.inner.config;
        let (sink, rx) = EventSink::new(
            operation,
            payload.clone(),
            config.event_buffer,
            config.slow_consumer,
            self.inner.durable.as_ref().map(|d| d.resubscribe.clone()),
        );
        // Registered before it is opened, so that a connection lost right
        // after the response cannot leave it out of the re-open.
        if let Some(durable) = &self.inner.durable {
            durable.register(&sink);
        }
        let conn = self.inner.connection();
        match conn
            .call(operation, payload, Some(&sink), config.operation_timeout)
            .await
        {
            Ok(_) => Ok(Subscription::new(rx, sink, decode, self.inner.clone())),
            Err(e) => {
                sink.end(None);
                Err(e)
            }
        }
    }

    // ===== local publish/subscribe =====

    /// PublishToTopic: publishes to local subscribers.
    pub async fn publish_to_topic(
        &self,
        request: &PublishToTopicRequest,
    ) -> Result<PublishToTopicResponse, Error> {
        self.call(request).await
    }

    /// Publishes `message` as a JSON message to `topic`.
    ///
    /// `message` is written straight into the request, so the members of a
    /// struct reach the wire in the order they are declared, as those of a
    /// dict do from the Python SDK. (A `serde_json::Value` holds its members
    /// sorted by name, and sends them so.)
    ///
    /// ```no_run
    /// # async fn demo(client: ggipc_client::Client) -> Result<(), ggipc_client::Error> {
    /// #[derive(serde::Serialize)]
    /// struct Reading { celsius: f64 }
    ///
    /// client.publish_json("sensors/t1", &Reading { celsius: 21.5 }).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish_json<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        message: &T,
    ) -> Result<(), Error> {
        let payload = json_publish_payload(topic, message)?;
        self.call_payload::<PublishToTopicRequest>(payload)
            .await
            .map(drop)
    }

    /// Publishes `message` as a binary message to `topic`.
    pub async fn publish_binary(
        &self,
        topic: &str,
        message: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let request = PublishToTopicRequest {
            topic: Some(topic.to_owned()),
            publish_message: Some(PublishMessage::from(BinaryMessage {
                message: Some(Blob(message.into())),
                context: None,
            })),
        };
        self.call(&request).await.map(drop)
    }

    /// SubscribeToTopic: events as the model has them.
    pub async fn subscribe_to_topic(
        &self,
        request: &SubscribeToTopicRequest,
    ) -> Result<Subscription<SubscriptionResponseMessage>, Error> {
        self.subscribe_with(request).await
    }

    /// Subscribes to `filter` (`+` and a trailing `#` are wildcards) with the
    /// server's default receive mode, delivering [`TopicMessage`]s.
    pub async fn subscribe(&self, filter: &str) -> Result<Subscription<TopicMessage>, Error> {
        let request = SubscribeToTopicRequest {
            topic: Some(filter.to_owned()),
            receive_mode: None,
        };
        self.subscribe_messages(&request).await
    }

    /// Like [`subscribe`](Self::subscribe), with every member of the request
    /// (the receive mode) under your control.
    pub async fn subscribe_messages(
        &self,
        request: &SubscribeToTopicRequest,
    ) -> Result<Subscription<TopicMessage>, Error> {
        fn decode(rpc: &ggipc_protocol::RpcMessage) -> Result<TopicMessage, Error> {
            let shape = rpc.service_model_type.as_ref().map(|s| s.as_str());
            if shape == Some(SubscriptionResponseMessage::ID)
                && let Some(message) = TopicMessage::from_plain_binary_event(rpc.payload())
            {
                return Ok(message);
            }
            TopicMessage::try_from(decode_event::<SubscriptionResponseMessage>(rpc)?)
        }
        self.open(Operation::SubscribeToTopic, request.to_payload(), decode)
            .await
    }

    // ===== AWS IoT Core =====

    /// PublishToIoTCore: publishes an MQTT message to AWS IoT Core.
    pub async fn publish_to_iot_core(
        &self,
        request: &PublishToIoTCoreRequest,
    ) -> Result<PublishToIoTCoreResponse, Error> {
        self.call(request).await
    }

    /// SubscribeToIoTCore: MQTT messages from AWS IoT Core.
    pub async fn subscribe_to_iot_core(
        &self,
        request: &SubscribeToIoTCoreRequest,
    ) -> Result<Subscription<IoTCoreMessage>, Error> {
        self.subscribe_with(request).await
    }

    // ===== lifecycle and configuration =====

    /// UpdateState: reports the caller's lifecycle state.
    pub async fn update_state(
        &self,
        request: &UpdateStateRequest,
    ) -> Result<UpdateStateResponse, Error> {
        self.call(request).await
    }

    /// GetConfiguration: reads a component's configuration.
    pub async fn get_configuration(
        &self,
        request: &GetConfigurationRequest,
    ) -> Result<GetConfigurationResponse, Error> {
        self.call(request).await
    }

    /// UpdateConfiguration: merges into the caller's configuration.
    pub async fn update_configuration(
        &self,
        request: &UpdateConfigurationRequest,
    ) -> Result<UpdateConfigurationResponse, Error> {
        self.call(request).await
    }

    /// SubscribeToConfigurationUpdate: notifications of configuration
    /// changes (they name the key; read the value with GetConfiguration).
    pub async fn subscribe_to_configuration_update(
        &self,
        request: &SubscribeToConfigurationUpdateRequest,
    ) -> Result<Subscription<ConfigurationUpdateEvents>, Error> {
        self.subscribe_with(request).await
    }

    // ===== Greengrass CLI operations =====

    /// ListComponents: every component and its state.
    pub async fn list_components(&self) -> Result<ListComponentsResponse, Error> {
        self.call(&ListComponentsRequest {}).await
    }

    /// GetComponentDetails: one component and its state.
    pub async fn get_component_details(
        &self,
        request: &GetComponentDetailsRequest,
    ) -> Result<GetComponentDetailsResponse, Error> {
        self.call(request).await
    }

    /// RestartComponent.
    pub async fn restart_component(
        &self,
        request: &RestartComponentRequest,
    ) -> Result<RestartComponentResponse, Error> {
        self.call(request).await
    }

    /// StopComponent.
    pub async fn stop_component(
        &self,
        request: &StopComponentRequest,
    ) -> Result<StopComponentResponse, Error> {
        self.call(request).await
    }

    /// ValidateAuthorizationToken: checks another client's token (only
    /// `aws.greengrass.StreamManager` may call it on the nucleus).
    pub async fn validate_authorization_token(
        &self,
        request: &ValidateAuthorizationTokenRequest,
    ) -> Result<ValidateAuthorizationTokenResponse, Error> {
        self.call(request).await
    }
}

/// The payload of a PublishToTopic request with a JSON message, serialized
/// from `message` without a detour through `serde_json::Value`, which would
/// sort the members of every object in it. The same JSON as
/// [`PublishToTopicRequest`] writes, member for member.
fn json_publish_payload<T: Serialize + ?Sized>(topic: &str, message: &T) -> Result<Bytes, Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Request<'a, T: ?Sized> {
        topic: &'a str,
        publish_message: Union<'a, T>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Union<'a, T: ?Sized> {
        json_message: Body<'a, T>,
    }
    #[derive(Serialize)]
    struct Body<'a, T: ?Sized> {
        message: &'a T,
    }

    let request = Request {
        topic,
        publish_message: Union {
            json_message: Body { message },
        },
    };
    serde_json::to_vec(&request)
        .map(Bytes::from)
        .map_err(Error::Serialize)
}

// ===== reconnection =====

/// Waits for the connection to drop and reconnects, or for the server to
/// terminate a subscription and re-opens it. Holds the client only weakly,
/// so dropping the client ends it.
async fn supervise(client: Weak<ClientInner>, shutdown: CancellationToken) {
    loop {
        let (conn, policy, resubscribe) = {
            let Some(inner) = client.upgrade() else {
                return;
            };
            let Some(durable) = &inner.durable else {
                return;
            };
            (
                inner.connection(),
                durable.policy,
                durable.resubscribe.clone(),
            )
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = conn.closed() => {
                let Some(new) = reconnect(&client, &shutdown, policy).await else { return };
                reopen(&client, &new).await;
            }
            () = resubscribe.notified() => {
                // The server terminated a subscription. A server that is
                // shutting down does that just before it closes the
                // connection, so wait a little: then the reconnect path
                // re-opens it, on the next connection.
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(policy.initial_delay) => {}
                }
                if !conn.is_closed() {
                    reopen(&client, &conn).await;
                }
            }
        }
    }
}

/// Connects again with backoff; installs and returns the new connection.
/// `None` when the client is gone or reconnection gave up.
async fn reconnect(
    client: &Weak<ClientInner>,
    shutdown: &CancellationToken,
    policy: ReconnectPolicy,
) -> Option<Arc<Connection>> {
    let mut delay = policy.initial_delay;
    let mut attempt = 0u32;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(jitter(delay)) => {}
        }
        attempt += 1;
        let inner = client.upgrade()?;
        let result = tokio::select! {
            () = shutdown.cancelled() => return None,
            result = Connection::open(&inner.config) => result,
        };
        match result {
            Ok(conn) => {
                debug!(attempt, "reconnected");
                *lock(&inner.current) = conn.clone();
                return Some(conn);
            }
            Err(e) => {
                debug!(attempt, error = %e, "reconnect failed");
                if policy.max_attempts.is_some_and(|max| attempt >= max) {
                    let reason = format!("gave up reconnecting after {attempt} attempts: {e}");
                    if let Some(durable) = &inner.durable {
                        durable.end_all(&reason);
                    }
                    return None;
                }
            }
        }
        delay = (delay * 2).min(policy.max_delay);
    }
}

/// Up to 20 % less than `delay`, from the clock, so that components
/// reconnecting after the same restart spread out without a random number
/// generator.
fn jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    delay.mul_f64(1.0 - f64::from(nanos % 200) / 1000.0)
}

/// Re-opens every subscription waiting for a connection, concurrently.
async fn reopen(client: &Weak<ClientInner>, conn: &Arc<Connection>) {
    let Some((sinks, timeout, resubscribe)) = client.upgrade().and_then(|inner| {
        let durable = inner.durable.as_ref()?;
        Some((
            durable.detached(),
            inner.config.operation_timeout,
            durable.resubscribe.clone(),
        ))
    }) else {
        return;
    };
    let attempts = sinks.iter().map(|sink| {
        let resubscribe = &resubscribe;
        async move {
            let result = conn
                .call(sink.operation, sink.request.clone(), Some(sink), timeout)
                .await;
            match result {
                Ok(_) => debug!(operation = sink.operation.name(), "subscription re-opened"),
                // Closed by its user meanwhile.
                Err(_) if sink.is_finished() => {}
                // Next connection.
                Err(Error::ConnectionClosed(_)) => {}
                // Try again after a while on this connection.
                Err(Error::Timeout(_)) => resubscribe.notify_one(),
                // The server refuses it now (a policy change, say): that
                // ends it.
                Err(e) => sink.end(Some(e)),
            }
        }
    });
    futures_util::future::join_all(attempts).await;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_json_publish_is_the_model_request_with_members_in_declared_order() {
        let message = json!({"b": [1, 2.5, null], "a": {"é": true}});
        let model = PublishToTopicRequest {
            topic: Some("a/b".into()),
            publish_message: Some(PublishMessage::from(JsonMessage {
                message: Some(message.clone()),
                context: None,
            })),
        };
        assert_eq!(
            json_publish_payload("a/b", &message).unwrap(),
            model.to_payload()
        );

        #[derive(Serialize)]
        struct Reading {
            zeta: u8,
            alpha: u8,
        }
        assert_eq!(
            json_publish_payload("t", &Reading { zeta: 1, alpha: 2 })
                .unwrap()
                .as_ref(),
            br#"{"topic":"t","publishMessage":{"jsonMessage":{"message":{"zeta":1,"alpha":2}}}}"#
        );
    }

    #[test]
    fn a_message_json_cannot_hold_is_a_serialize_error() {
        let keys = std::collections::BTreeMap::from([((1, 2), 3)]);
        assert!(matches!(
            json_publish_payload("t", &keys),
            Err(Error::Serialize(_))
        ));
    }
}

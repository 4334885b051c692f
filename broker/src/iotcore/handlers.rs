//! PublishToIoTCore, SubscribeToIoTCore and SubscribeToIoTCoreConnectionStatus
//! over IPC (`protocol.md` §7.4.3, §7.4.4, §7.4.16).
//!
//! Checks come in the nucleus' order (`MqttProxyIPCAgent`): topic present,
//! authorization, payload present, QoS valid; then the bridge's own checks
//! (IoT Core's topic rules, size, spool), whose failures are
//! `ServiceError`s naming the topic, as the nucleus words them.

use bytes::Bytes;
use ggipc_protocol::model::{
    IpcError, Operation, PayloadFormat, PublishToIoTCoreRequest, Qos, Shape,
    SubscribeToIoTCoreRequest,
};

use super::spool::{OutgoingMessage, PublishProperties};
use super::state::Attached;
use super::topics;
use crate::connection::Session;

/// What a component hears when the broker has no `iotCore` section.
const NOT_CONFIGURED: &str = "the device is not configured to connect to AWS IoT Core (no iotCore section in the deployment)";

/// The nucleus answers every IoT Core authorization failure with this
/// fixed text; the reason is logged (by `Session::authorize`).
fn authorize(session: &Session, operation: Operation, resource: &str) -> Result<(), IpcError> {
    session
        .authorize(operation, resource)
        .map_err(|_| IpcError::unauthorized("Not Authorized"))
}

fn qos(value: Option<Qos>) -> Result<u8, IpcError> {
    match value {
        None => Err(IpcError::invalid_arguments("QoS is required")),
        Some(Qos::AtMostOnce) => Ok(0),
        Some(Qos::AtLeastOnce) => Ok(1),
        Some(Qos::Unknown(v)) => Err(IpcError::invalid_arguments(format!(
            "Invalid QoS value: {v}"
        ))),
    }
}

/// Answers PublishToIoTCore: `{}` once the message is in the spool.
pub(crate) fn publish(session: &mut Session, stream_id: i32, payload: &Bytes) {
    match check_and_publish(session, payload) {
        Ok(()) => session.respond_empty(stream_id, Operation::PublishToIoTCore),
        Err(e) => session.error(stream_id, &e),
    }
}

fn check_and_publish(session: &Session, payload: &Bytes) -> Result<(), IpcError> {
    let request = PublishToIoTCoreRequest::from_payload(payload).map_err(|e| {
        IpcError::invalid_arguments(format!("request is not a PublishToIoTCoreRequest: {e}"))
    })?;
    let Some(topic) = request.topic_name else {
        return Err(IpcError::invalid_arguments("Topic is required"));
    };
    authorize(session, Operation::PublishToIoTCore, &topic)?;
    let Some(body) = request.payload else {
        return Err(IpcError::invalid_arguments("Payload is required"));
    };
    let qos = qos(request.qos)?;
    let payload_format = match request.payload_format {
        None => None,
        Some(PayloadFormat::Bytes) => Some(0),
        Some(PayloadFormat::Utf8) => Some(1),
        Some(PayloadFormat::Unknown(v)) => {
            return Err(IpcError::invalid_arguments(format!(
                "Invalid payloadFormat value: {v}"
            )));
        }
    };
    let message_expiry_interval = match request.message_expiry_interval_seconds {
        None => None,
        Some(s) => Some(u32::try_from(s).map_err(|_| {
            IpcError::invalid_arguments(format!(
                "messageExpiryIntervalSeconds must be from 0 to {}, found {s}",
                u32::MAX
            ))
        })?),
    };
    let mut user_properties = Vec::new();
    for p in request.user_properties.unwrap_or_default() {
        match (p.key, p.value) {
            (Some(k), Some(v)) => user_properties.push((k, v)),
            _ => {
                return Err(IpcError::invalid_arguments(
                    "every userProperties entry needs a key and a value",
                ));
            }
        }
    }
    let failed = |reason: &dyn std::fmt::Display| {
        IpcError::service(format!("Publish to topic {topic} failed: {reason}"))
    };
    let Some(iot) = session.broker.iot_core() else {
        return Err(failed(&NOT_CONFIGURED));
    };
    iot.publish(OutgoingMessage {
        topic: topic.clone(),
        payload: body.into_bytes(),
        qos,
        retain: request.retain.unwrap_or(false),
        // Under MQTT 3.1.1 these cannot be carried and are dropped, as in
        // the nucleus configured for mqtt3.
        properties: PublishProperties {
            user_properties,
            message_expiry_interval,
            correlation_data: request.correlation_data.map(|b| b.into_bytes()),
            response_topic: request.response_topic,
            payload_format,
            content_type: request.content_type,
        },
    })
    .map_err(|e| failed(&e))
}

/// Answers SubscribeToIoTCore: the response comes once the peer
/// acknowledged the subscription (at once if one already carries it);
/// closing the stream unsubscribes.
pub(crate) fn subscribe(session: &mut Session, stream_id: i32, payload: &Bytes) {
    let checked = (|| -> Result<(String, u8), IpcError> {
        let request = SubscribeToIoTCoreRequest::from_payload(payload).map_err(|e| {
            IpcError::invalid_arguments(format!("request is not a SubscribeToIoTCoreRequest: {e}"))
        })?;
        let Some(filter) = request.topic_name else {
            return Err(IpcError::invalid_arguments("Topic is required"));
        };
        authorize(session, Operation::SubscribeToIoTCore, &filter)?;
        let qos = qos(request.qos)?;
        let Some(iot) = session.broker.iot_core() else {
            return Err(IpcError::service(format!(
                "Subscribe to topic {filter} failed: {NOT_CONFIGURED}"
            )));
        };
        topics::check_subscribe(&filter, iot.config().mqtt5)
            .map_err(|e| IpcError::service(format!("Subscribe to topic {filter} failed: {e}")))?;
        if let Some(e) = session.stream_limit_error() {
            return Err(e);
        }
        Ok((filter, qos))
    })();
    let (filter, qos) = match checked {
        Ok(c) => c,
        Err(e) => return session.error(stream_id, &e),
    };
    let Some(iot) = session.broker.iot_core().cloned() else {
        return;
    };
    let sink = session.stream_sink(stream_id);
    let id = match iot.subscribe_stream(&filter, qos, sink) {
        Attached::Ready(id) => {
            // Queued before the subscription delivers anything.
            session.respond_empty(stream_id, Operation::SubscribeToIoTCore);
            iot.activate(id);
            id
        }
        Attached::Pending(id) => id,
    };
    tracing::debug!(component = %session.component, stream = stream_id, filter = %filter, "subscribed to IoT Core");
    session.open_stream(stream_id, Box::new(move || iot.unsubscribe(id)));
}

/// Answers SubscribeToIoTCoreConnectionStatus: `{}`, then the status now,
/// then one event per change. No policy is needed (as in Greengrass Lite).
/// Without an `iotCore` section the link is down for good.
pub(crate) fn connection_status(session: &mut Session, stream_id: i32) {
    if let Some(e) = session.stream_limit_error() {
        return session.error(stream_id, &e);
    }
    session.respond_empty(stream_id, Operation::SubscribeToIoTCoreConnectionStatus);
    let sink = session.stream_sink(stream_id);
    match session.broker.iot_core().cloned() {
        Some(iot) => {
            let id = iot.watch_status(sink);
            session.open_stream(stream_id, Box::new(move || iot.unwatch_status(id)));
        }
        None => {
            let _ = sink.send_event(
                ggipc_protocol::model::IoTCoreConnectionStatusEvent::ID,
                super::status_payload(false),
            );
            session.open_stream(stream_id, Box::new(|| {}));
        }
    }
}

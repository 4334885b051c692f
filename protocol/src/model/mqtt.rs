//! AWS IoT Core through the nucleus' MQTT connection: PublishToIoTCore,
//! SubscribeToIoTCore and SubscribeToIoTCoreConnectionStatus (`protocol.md`
//! §7.4.3, §7.4.4, §7.4.16).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use serde::Serialize;

use super::{Blob, ConnectionStatus, PayloadFormat, Qos, Shape, ShapeError, check_union, missing};

/// Publishes an MQTT message to AWS IoT Core.
///
/// Structure `aws.greengrass#PublishToIoTCoreRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishToIoTCoreRequest {
    /// Required. The MQTT topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Required. The MQTT QoS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<Qos>,
    /// The payload; the nucleus refuses a request without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Blob>,
    /// The MQTT retain flag; absent means false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain: Option<bool>,
    /// MQTT 5 user properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_properties: Option<Vec<UserProperty>>,
    /// MQTT 5 message expiry interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expiry_interval_seconds: Option<i64>,
    /// MQTT 5 correlation data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_data: Option<Blob>,
    /// MQTT 5 response topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<String>,
    /// MQTT 5 payload format indicator; absent means bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_format: Option<PayloadFormat>,
    /// MQTT 5 content type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

deserialize_object!(PublishToIoTCoreRequest {
    "topicName" => topic_name: opt,
    "qos" => qos: opt,
    "payload" => payload: opt,
    "retain" => retain: opt,
    "userProperties" => user_properties: opt,
    "messageExpiryIntervalSeconds" => message_expiry_interval_seconds: opt,
    "correlationData" => correlation_data: opt,
    "responseTopic" => response_topic: opt,
    "payloadFormat" => payload_format: opt,
    "contentType" => content_type: opt,
});

impl Shape for PublishToIoTCoreRequest {
    const ID: &'static str = "aws.greengrass#PublishToIoTCoreRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.topic_name.is_none() {
            return Err(missing("PublishToIoTCoreRequest", "topicName"));
        }
        if self.qos.is_none() {
            return Err(missing("PublishToIoTCoreRequest", "qos"));
        }
        Ok(())
    }
}

/// Empty answer to PublishToIoTCore.
///
/// Structure `aws.greengrass#PublishToIoTCoreResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PublishToIoTCoreResponse {}

deserialize_object!(PublishToIoTCoreResponse {});

impl Shape for PublishToIoTCoreResponse {
    const ID: &'static str = "aws.greengrass#PublishToIoTCoreResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Subscribes to an MQTT topic filter on AWS IoT Core.
///
/// Structure `aws.greengrass#SubscribeToIoTCoreRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeToIoTCoreRequest {
    /// Required. The MQTT topic filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
    /// Required. The MQTT QoS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<Qos>,
}

deserialize_object!(SubscribeToIoTCoreRequest {
    "topicName" => topic_name: opt,
    "qos" => qos: opt,
});

impl Shape for SubscribeToIoTCoreRequest {
    const ID: &'static str = "aws.greengrass#SubscribeToIoTCoreRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.topic_name.is_none() {
            return Err(missing("SubscribeToIoTCoreRequest", "topicName"));
        }
        if self.qos.is_none() {
            return Err(missing("SubscribeToIoTCoreRequest", "qos"));
        }
        Ok(())
    }
}

/// Empty answer to SubscribeToIoTCore, sent once the subscription is acknowledged.
///
/// Structure `aws.greengrass#SubscribeToIoTCoreResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscribeToIoTCoreResponse {}

deserialize_object!(SubscribeToIoTCoreResponse {});

impl Shape for SubscribeToIoTCoreResponse {
    const ID: &'static str = "aws.greengrass#SubscribeToIoTCoreResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Event of SubscribeToIoTCore.
///
/// Union `aws.greengrass#IoTCoreMessage`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IoTCoreMessage {
    /// The received MQTT message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<MqttMessage>,
}

deserialize_object!(IoTCoreMessage {
    "message" => message: opt,
});

impl Shape for IoTCoreMessage {
    const ID: &'static str = "aws.greengrass#IoTCoreMessage";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union("IoTCoreMessage", &[self.message.is_some()])?;
        Ok(())
    }
}

impl From<MqttMessage> for IoTCoreMessage {
    /// Sets `message` as the only member.
    fn from(member: MqttMessage) -> Self {
        Self {
            message: Some(member),
        }
    }
}

/// An MQTT message received from AWS IoT Core.
///
/// Structure `aws.greengrass#MQTTMessage`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MqttMessage {
    /// The topic it was published to.
    pub topic_name: String,
    /// The payload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Blob>,
    /// The MQTT retain flag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain: Option<bool>,
    /// MQTT 5 user properties.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_properties: Option<Vec<UserProperty>>,
    /// MQTT 5 message expiry interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_expiry_interval_seconds: Option<i64>,
    /// MQTT 5 correlation data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_data: Option<Blob>,
    /// MQTT 5 response topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_topic: Option<String>,
    /// MQTT 5 payload format indicator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload_format: Option<PayloadFormat>,
    /// MQTT 5 content type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

deserialize_object!(MqttMessage {
    "topicName" => topic_name: req,
    "payload" => payload: opt,
    "retain" => retain: opt,
    "userProperties" => user_properties: opt,
    "messageExpiryIntervalSeconds" => message_expiry_interval_seconds: opt,
    "correlationData" => correlation_data: opt,
    "responseTopic" => response_topic: opt,
    "payloadFormat" => payload_format: opt,
    "contentType" => content_type: opt,
});

impl Shape for MqttMessage {
    const ID: &'static str = "aws.greengrass#MQTTMessage";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// An MQTT 5 user property.
///
/// Structure `aws.greengrass#UserProperty`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserProperty {
    /// The name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

deserialize_object!(UserProperty {
    "key" => key: opt,
    "value" => value: opt,
});

impl Shape for UserProperty {
    const ID: &'static str = "aws.greengrass#UserProperty";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Subscribes to the state of the connection to AWS IoT Core.
///
/// Structure `aws.greengrass#SubscribeToIoTCoreConnectionStatusRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscribeToIoTCoreConnectionStatusRequest {}

deserialize_object!(SubscribeToIoTCoreConnectionStatusRequest {});

impl Shape for SubscribeToIoTCoreConnectionStatusRequest {
    const ID: &'static str = "aws.greengrass#SubscribeToIoTCoreConnectionStatusRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Empty answer to SubscribeToIoTCoreConnectionStatus, sent before any event.
///
/// Structure `aws.greengrass#SubscribeToIoTCoreConnectionStatusResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscribeToIoTCoreConnectionStatusResponse {}

deserialize_object!(SubscribeToIoTCoreConnectionStatusResponse {});

impl Shape for SubscribeToIoTCoreConnectionStatusResponse {
    const ID: &'static str = "aws.greengrass#SubscribeToIoTCoreConnectionStatusResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Event of SubscribeToIoTCoreConnectionStatus.
///
/// Union `aws.greengrass#IoTCoreConnectionStatusEvent`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IoTCoreConnectionStatusEvent {
    /// The new state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_status_event: Option<ConnectionStatusEvent>,
}

deserialize_object!(IoTCoreConnectionStatusEvent {
    "connectionStatusEvent" => connection_status_event: opt,
});

impl Shape for IoTCoreConnectionStatusEvent {
    const ID: &'static str = "aws.greengrass#IoTCoreConnectionStatusEvent";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union(
            "IoTCoreConnectionStatusEvent",
            &[self.connection_status_event.is_some()],
        )?;
        Ok(())
    }
}

impl From<ConnectionStatusEvent> for IoTCoreConnectionStatusEvent {
    /// Sets `connectionStatusEvent` as the only member.
    fn from(member: ConnectionStatusEvent) -> Self {
        Self {
            connection_status_event: Some(member),
        }
    }
}

/// The state of the connection to AWS IoT Core.
///
/// Structure `aws.greengrass#ConnectionStatusEvent`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStatusEvent {
    /// Connected or disconnected.
    pub status: ConnectionStatus,
}

deserialize_object!(ConnectionStatusEvent {
    "status" => status: req,
});

impl Shape for ConnectionStatusEvent {
    const ID: &'static str = "aws.greengrass#ConnectionStatusEvent";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

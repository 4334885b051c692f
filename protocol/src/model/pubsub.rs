//! Local publish/subscribe: PublishToTopic and SubscribeToTopic (`protocol.md`
//! §7.4.1–§7.4.2).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use serde::Serialize;

use super::{Blob, Document, ReceiveMode, Shape, ShapeError, check_union, missing};

/// Publishes a message to local subscribers.
///
/// Structure `aws.greengrass#PublishToTopicRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishToTopicRequest {
    /// Required. The topic; wildcards are not allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Required. The message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_message: Option<PublishMessage>,
}

deserialize_object!(PublishToTopicRequest {
    "topic" => topic: opt,
    "publishMessage" => publish_message: opt,
});

impl Shape for PublishToTopicRequest {
    const ID: &'static str = "aws.greengrass#PublishToTopicRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.topic.is_none() {
            return Err(missing("PublishToTopicRequest", "topic"));
        }
        if self.publish_message.is_none() {
            return Err(missing("PublishToTopicRequest", "publishMessage"));
        }
        if let Some(v) = &self.publish_message {
            v.validate()?;
        }
        Ok(())
    }
}

/// Empty answer to PublishToTopic.
///
/// Structure `aws.greengrass#PublishToTopicResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PublishToTopicResponse {}

deserialize_object!(PublishToTopicResponse {});

impl Shape for PublishToTopicResponse {
    const ID: &'static str = "aws.greengrass#PublishToTopicResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Subscribes to local messages.
///
/// Structure `aws.greengrass#SubscribeToTopicRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeToTopicRequest {
    /// Required. The topic filter; `+` and a trailing `#` are wildcards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Whether the caller receives its own messages; when absent the broker picks by filter
    /// (§7.4.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receive_mode: Option<ReceiveMode>,
}

deserialize_object!(SubscribeToTopicRequest {
    "topic" => topic: opt,
    "receiveMode" => receive_mode: opt,
});

impl Shape for SubscribeToTopicRequest {
    const ID: &'static str = "aws.greengrass#SubscribeToTopicRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.topic.is_none() {
            return Err(missing("SubscribeToTopicRequest", "topic"));
        }
        Ok(())
    }
}

/// Answer to SubscribeToTopic, sent before any event.
///
/// Structure `aws.greengrass#SubscribeToTopicResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeToTopicResponse {
    /// Deprecated and unused; the nucleus never sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<String>,
}

deserialize_object!(SubscribeToTopicResponse {
    "topicName" => topic_name: opt,
});

impl Shape for SubscribeToTopicResponse {
    const ID: &'static str = "aws.greengrass#SubscribeToTopicResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// The message of a PublishToTopic request.
///
/// Union `aws.greengrass#PublishMessage`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishMessage {
    /// A JSON message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_message: Option<JsonMessage>,
    /// A binary message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_message: Option<BinaryMessage>,
}

deserialize_object!(PublishMessage {
    "jsonMessage" => json_message: opt,
    "binaryMessage" => binary_message: opt,
});

impl Shape for PublishMessage {
    const ID: &'static str = "aws.greengrass#PublishMessage";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union(
            "PublishMessage",
            &[self.json_message.is_some(), self.binary_message.is_some()],
        )?;
        Ok(())
    }
}

impl From<JsonMessage> for PublishMessage {
    /// Sets `jsonMessage` as the only member.
    fn from(member: JsonMessage) -> Self {
        Self {
            json_message: Some(member),
            ..Self::default()
        }
    }
}

impl From<BinaryMessage> for PublishMessage {
    /// Sets `binaryMessage` as the only member.
    fn from(member: BinaryMessage) -> Self {
        Self {
            binary_message: Some(member),
            ..Self::default()
        }
    }
}

/// Event of SubscribeToTopic: one delivered message, in the branch it was published in.
///
/// Union `aws.greengrass#SubscriptionResponseMessage`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionResponseMessage {
    /// A JSON message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json_message: Option<JsonMessage>,
    /// A binary message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_message: Option<BinaryMessage>,
}

deserialize_object!(SubscriptionResponseMessage {
    "jsonMessage" => json_message: opt,
    "binaryMessage" => binary_message: opt,
});

impl Shape for SubscriptionResponseMessage {
    const ID: &'static str = "aws.greengrass#SubscriptionResponseMessage";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union(
            "SubscriptionResponseMessage",
            &[self.json_message.is_some(), self.binary_message.is_some()],
        )?;
        Ok(())
    }
}

impl From<JsonMessage> for SubscriptionResponseMessage {
    /// Sets `jsonMessage` as the only member.
    fn from(member: JsonMessage) -> Self {
        Self {
            json_message: Some(member),
            ..Self::default()
        }
    }
}

impl From<BinaryMessage> for SubscriptionResponseMessage {
    /// Sets `binaryMessage` as the only member.
    fn from(member: BinaryMessage) -> Self {
        Self {
            binary_message: Some(member),
            ..Self::default()
        }
    }
}

/// A JSON message and where it was published.
///
/// Structure `aws.greengrass#JsonMessage`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonMessage {
    /// The JSON value; in practice an object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Document>,
    /// Set by the broker on delivery; ignored when publishing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
}

deserialize_object!(JsonMessage {
    "message" => message: opt,
    "context" => context: opt,
});

impl Shape for JsonMessage {
    const ID: &'static str = "aws.greengrass#JsonMessage";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// A binary message and where it was published.
///
/// Structure `aws.greengrass#BinaryMessage`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BinaryMessage {
    /// The bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Blob>,
    /// Set by the broker on delivery; ignored when publishing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
}

deserialize_object!(BinaryMessage {
    "message" => message: opt,
    "context" => context: opt,
});

impl Shape for BinaryMessage {
    const ID: &'static str = "aws.greengrass#BinaryMessage";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Where a delivered message was published.
///
/// Structure `aws.greengrass#MessageContext`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageContext {
    /// The concrete topic it was published to, not the subscription filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

deserialize_object!(MessageContext {
    "topic" => topic: opt,
});

impl Shape for MessageContext {
    const ID: &'static str = "aws.greengrass#MessageContext";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

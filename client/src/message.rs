//! Local pub/sub messages as the common case wants them: JSON or bytes,
//! and the topic they were published to.

use bytes::Bytes;
use ggipc_protocol::model::{Document, SubscriptionResponseMessage};
use serde::de::DeserializeOwned;

use crate::Error;

/// A message body: JSON (`jsonMessage`) or bytes (`binaryMessage`).
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A JSON message. Through the Java nucleus, integers inside may come
    /// back as doubles (`1` as `1.0`) — its Gson reads numbers that way.
    Json(Document),
    /// A binary message.
    Binary(Bytes),
}

/// A message delivered by [`Client::subscribe`](crate::Client::subscribe).
#[derive(Clone, Debug, PartialEq)]
pub struct TopicMessage {
    /// The topic it was published to (not the filter it matched); empty if
    /// the server left `context.topic` out, which neither the nucleus nor
    /// `ggipc-broker` does.
    pub topic: String,
    /// The body.
    pub payload: Payload,
}

impl TopicMessage {
    /// Deserializes the body: a JSON message directly, a binary one parsed
    /// as JSON text.
    ///
    /// ```
    /// # use ggipc_client::{Payload, TopicMessage};
    /// #[derive(serde::Deserialize)]
    /// struct Reading { celsius: f64 }
    ///
    /// let m = TopicMessage {
    ///     topic: "sensors/t1".into(),
    ///     payload: Payload::Binary(br#"{"celsius": 21.5}"#.as_slice().into()),
    /// };
    /// assert_eq!(m.json::<Reading>().unwrap().celsius, 21.5);
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match &self.payload {
            Payload::Json(value) => T::deserialize(value),
            Payload::Binary(bytes) => serde_json::from_slice(bytes),
        }
    }

    /// The body as bytes: a binary message as is, a JSON message as compact
    /// JSON text.
    pub fn to_bytes(&self) -> Bytes {
        match &self.payload {
            Payload::Json(value) => Bytes::from(value.to_string()),
            Payload::Binary(bytes) => bytes.clone(),
        }
    }
}

impl TopicMessage {
    /// The message of a binary event laid out exactly as `ggipc-broker`
    /// writes it, `{"binaryMessage":{"message":"…","context":{"topic":"…"}}}`
    /// with no escapes, read without building the model's types: at high
    /// rates the generic path (serde into the model, then base64 into a
    /// fresh buffer) is most of a subscriber's CPU. `None` for anything
    /// else, which the generic path then reads; both give the same result
    /// (a test holds them together).
    pub(crate) fn from_plain_binary_event(payload: &[u8]) -> Option<Self> {
        use base64::Engine as _;
        let rest = payload.strip_prefix(br#"{"binaryMessage":{"message":""#)?;
        let end = memchr::memchr(b'"', rest)?;
        let (b64, rest) = rest.split_at(end);
        let rest = rest.strip_prefix(br#"","context":{"topic":""#)?;
        let topic = rest.strip_suffix(br#""}}}"#)?;
        if memchr::memchr2(b'"', b'\\', topic).is_some() || topic.iter().any(|&b| b < 0x20) {
            return None;
        }
        let topic = std::str::from_utf8(topic).ok()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Some(Self {
            topic: topic.to_owned(),
            payload: Payload::Binary(Bytes::from(bytes)),
        })
    }
}

impl TryFrom<SubscriptionResponseMessage> for TopicMessage {
    type Error = Error;

    /// Takes the JSON member if set, else the binary one; an event with
    /// neither is a protocol error.
    fn try_from(event: SubscriptionResponseMessage) -> Result<Self, Error> {
        if let Some(json) = event.json_message {
            return Ok(Self {
                topic: json.context.and_then(|c| c.topic).unwrap_or_default(),
                // A JSON message without `message` carries JSON null.
                payload: Payload::Json(json.message.unwrap_or_default()),
            });
        }
        if let Some(binary) = event.binary_message {
            return Ok(Self {
                topic: binary.context.and_then(|c| c.topic).unwrap_or_default(),
                payload: Payload::Binary(binary.message.map(|b| b.0).unwrap_or_default()),
            });
        }
        Err(Error::Protocol(
            "SubscriptionResponseMessage with neither jsonMessage nor binaryMessage".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use ggipc_protocol::model::{BinaryMessage, Blob, JsonMessage, MessageContext, Shape};
    use serde_json::json;

    use super::*;

    /// The fast path against the generic one, on events as the broker
    /// writes them and on ones it must leave to the generic path.
    #[test]
    fn plain_binary_events_read_fast_as_they_read_slow() {
        use base64::Engine as _;
        let slow = |payload: &[u8]| {
            TopicMessage::try_from(SubscriptionResponseMessage::from_payload(payload).unwrap())
                .unwrap()
        };
        for (topic, body) in [
            ("a/b", b"hello".as_slice()),
            ("", b"".as_slice()),
            ("t\u{e9}/\u{1f600}", &[0u8, 255, 10, 34, 92][..]),
            ("x", &[7u8; 1000][..]),
        ] {
            let b64 = base64::engine::general_purpose::STANDARD.encode(body);
            let payload = format!(
                r#"{{"binaryMessage":{{"message":"{b64}","context":{{"topic":{}}}}}}}"#,
                serde_json::to_string(topic).unwrap()
            );
            let fast = TopicMessage::from_plain_binary_event(payload.as_bytes())
                .unwrap_or_else(|| panic!("{payload}"));
            assert_eq!(fast, slow(payload.as_bytes()));
            assert_eq!(fast.topic, topic);
            assert_eq!(fast.to_bytes().as_ref(), body);
        }
        for payload in [
            // Escapes, other spacing or order, JSON messages, bad base64:
            // all for the generic path.
            r#"{"binaryMessage":{"message":"aGk=","context":{"topic":"a\"b"}}}"#,
            r#"{"binaryMessage":{"message":"aGk=","context":{"topic":"a\u0062"}}}"#,
            r#"{"binaryMessage": {"message":"aGk=","context":{"topic":"a"}}}"#,
            r#"{"binaryMessage":{"context":{"topic":"a"},"message":"aGk="}}"#,
            r#"{"binaryMessage":{"message":"aGk=","context":{"topic":"a"}}} "#,
            r#"{"jsonMessage":{"message":{},"context":{"topic":"a"}}}"#,
            r#"{"binaryMessage":{"message":"aGk","context":{"topic":"a"}}}"#,
        ] {
            assert_eq!(
                TopicMessage::from_plain_binary_event(payload.as_bytes()),
                None,
                "{payload}"
            );
        }
    }

    #[test]
    fn json_and_binary_events_become_payloads_with_their_topic() {
        let event = SubscriptionResponseMessage::from(JsonMessage {
            message: Some(json!({"a": 1.0})),
            context: Some(MessageContext {
                topic: Some("t/1".into()),
            }),
        });
        let m = TopicMessage::try_from(event).unwrap();
        assert_eq!(m.topic, "t/1");
        assert_eq!(m.payload, Payload::Json(json!({"a": 1.0})));
        // Integers the nucleus turned into doubles still read as integers.
        #[derive(serde::Deserialize)]
        struct A {
            a: f64,
        }
        assert_eq!(m.json::<A>().unwrap().a, 1.0);

        let event = SubscriptionResponseMessage::from(BinaryMessage {
            message: Some(Blob::from(b"\x00\x01".as_slice())),
            context: None,
        });
        let m = TopicMessage::try_from(event).unwrap();
        assert_eq!(m.topic, "");
        assert_eq!(m.to_bytes().as_ref(), b"\x00\x01");
    }

    #[test]
    fn an_empty_union_is_refused() {
        let event = SubscriptionResponseMessage::from_payload(b"{}").unwrap();
        assert!(matches!(
            TopicMessage::try_from(event),
            Err(Error::Protocol(_))
        ));
    }
}

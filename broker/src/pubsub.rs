//! Local publish/subscribe: request parsing for the hot path, the event
//! payload, and fan-out into subscribers' outbound queues.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::sync::Arc;

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};
use ggipc_protocol::StrBytes;
use ggipc_protocol::rpc::PreparedMessage;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::outbound::{Outbound, Pushed};

/// Shape id of pub/sub events.
pub const SUBSCRIPTION_EVENT: StrBytes =
    StrBytes::from_static("aws.greengrass#SubscriptionResponseMessage");

/// A message as published locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalMessage {
    /// A `jsonMessage`: the text of its JSON object, as the publisher wrote it.
    Json(Bytes),
    /// A `binaryMessage`: the decoded bytes.
    Binary(Bytes),
}

/// A subscriber inside the broker (the Lambda launcher, the IoT Core
/// bridge). It is called on the publisher's task, so it must only queue the
/// message and return.
pub trait LocalListener: Send + Sync + std::fmt::Debug {
    /// A message published to a topic matching the listener's filter.
    fn on_message(&self, publisher: &str, topic: &str, message: &LocalMessage);
}

/// Where a subscription's messages go.
#[derive(Debug)]
pub enum Target {
    /// Events on an IPC stream.
    Stream {
        /// The subscriber connection's queue.
        outbound: Arc<Outbound>,
        /// The stream events go out on.
        stream_id: i32,
    },
    /// A listener inside the broker.
    Listener(Arc<dyn LocalListener>),
}

/// One subscription.
#[derive(Debug)]
pub struct Subscription {
    /// Where matching messages go.
    pub target: Target,
    /// The subscribing component, for `RECEIVE_MESSAGES_FROM_OTHERS`.
    pub component: Arc<str>,
    /// Whether the component's own publishes are skipped.
    pub from_others_only: bool,
}

// The publish request is parsed into borrowed raw pieces rather than the
// model's owned types: the JSON message and the base64 text are copied into
// the event exactly as the publisher sent them, so a publish costs one scan
// of the payload and no re-serialization.

#[derive(Deserialize)]
struct PublishRequest<'a> {
    #[serde(borrow, default)]
    topic: Option<Cow<'a, str>>,
    #[serde(rename = "publishMessage", borrow, default)]
    publish_message: Option<PublishMessage<'a>>,
}

#[derive(Deserialize)]
struct PublishMessage<'a> {
    #[serde(rename = "jsonMessage", borrow, default)]
    json: Option<RawMessage<'a>>,
    #[serde(rename = "binaryMessage", borrow, default)]
    binary: Option<RawMessage<'a>>,
}

#[derive(Deserialize)]
struct RawMessage<'a> {
    #[serde(borrow, default)]
    message: Option<&'a RawValue>,
}

/// What is wrong with a publish request, for `InvalidArgumentsError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPublish(pub String);

/// A publish request checked and turned into its event.
#[derive(Debug)]
pub struct Publish {
    /// The topic published to.
    pub topic: String,
    /// The event every subscriber gets.
    pub event: PreparedMessage,
}

/// Reads a PublishToTopic request; the topic is returned separately so it
/// can be authorized before the message is looked at.
pub fn parse_publish(payload: &[u8]) -> Result<(String, PublishBody<'_>), InvalidPublish> {
    let request: PublishRequest<'_> = serde_json::from_slice(payload)
        .map_err(|e| InvalidPublish(format!("request is not a PublishToTopicRequest: {e}")))?;
    let topic = request.topic.map(Cow::into_owned).unwrap_or_default();
    Ok((
        topic,
        PublishBody {
            message: request.publish_message,
        },
    ))
}

/// The message part of a publish, still unchecked.
pub struct PublishBody<'a> {
    message: Option<PublishMessage<'a>>,
}

impl std::fmt::Debug for PublishBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublishBody")
    }
}

impl<'a> PublishBody<'a> {
    /// Checks the message and builds the event for `topic`. The message as
    /// listeners inside the broker see it is built only if one of them
    /// asks: most publishes reach IPC streams only, which get the base64
    /// text as it came.
    pub fn into_event(
        self,
        topic: &str,
    ) -> Result<(PreparedMessage, LazyMessage<'a>), InvalidPublish> {
        let message = self
            .message
            .ok_or_else(|| InvalidPublish("publishMessage is required".to_owned()))?;
        let (branch, raw, local) = match (message.json, message.binary) {
            (Some(json), None) => {
                let raw = json
                    .message
                    .ok_or_else(|| InvalidPublish("jsonMessage.message is required".to_owned()))?;
                // The model types the JSON message as an object; the
                // nucleus fails on anything else with an unmodeled error,
                // we say why instead (field case BR-10).
                if !raw.get().trim_start().starts_with('{') {
                    return Err(InvalidPublish(
                        "jsonMessage.message must be a JSON object".to_owned(),
                    ));
                }
                ("jsonMessage", raw.get(), Source::Json(raw.get()))
            }
            (None, Some(binary)) => match binary.message {
                Some(raw) => {
                    let text = raw.get();
                    let local = match base64_string(text) {
                        // Checked now, decoded only if a listener asks.
                        Some(b64) => Source::Base64(b64),
                        // Escapes, not a string or not base64: the slow
                        // path decodes the first or says which of the others.
                        None => {
                            Source::Owned(LocalMessage::Binary(Bytes::from(decode_base64(raw)?)))
                        }
                    };
                    ("binaryMessage", text, local)
                }
                None => (
                    "binaryMessage",
                    "\"\"",
                    Source::Owned(LocalMessage::Binary(Bytes::new())),
                ),
            },
            (None, None) => {
                return Err(InvalidPublish(
                    "publishMessage must set jsonMessage or binaryMessage".to_owned(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(InvalidPublish(
                    "publishMessage must set only one of jsonMessage and binaryMessage".to_owned(),
                ));
            }
        };
        Ok((
            prepare_event(branch, raw, topic),
            LazyMessage {
                source: local,
                built: OnceCell::new(),
            },
        ))
    }
}

/// A published message, turned into a [`LocalMessage`] on first use.
#[derive(Debug)]
pub struct LazyMessage<'a> {
    source: Source<'a>,
    built: OnceCell<LocalMessage>,
}

#[derive(Debug)]
enum Source<'a> {
    Borrowed(&'a LocalMessage),
    Owned(LocalMessage),
    /// The text of a JSON object.
    Json(&'a str),
    /// Checked padded base64 without escapes.
    Base64(&'a str),
}

impl<'a> LazyMessage<'a> {
    /// A message already built.
    pub fn ready(message: &'a LocalMessage) -> Self {
        Self {
            source: Source::Borrowed(message),
            built: OnceCell::new(),
        }
    }

    /// The message.
    pub fn get(&self) -> &LocalMessage {
        match &self.source {
            Source::Borrowed(m) => m,
            Source::Owned(m) => m,
            Source::Json(text) => self
                .built
                .get_or_init(|| LocalMessage::Json(Bytes::copy_from_slice(text.as_bytes()))),
            Source::Base64(text) => self.built.get_or_init(|| {
                // Checked by `is_padded_base64`, which accepts exactly what
                // this decoder does (a test holds the two together).
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .unwrap_or_default();
                LocalMessage::Binary(Bytes::from(bytes))
            }),
        }
    }
}

/// The contents of JSON string `raw` if they are padded base64 as written,
/// with no escapes. One pass: neither `\` nor `"` is in the alphabet, so
/// the base64 check also rules out escapes.
fn base64_string(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    is_padded_base64(inner.as_bytes()).then_some(inner)
}

fn bad_base64() -> InvalidPublish {
    InvalidPublish("binaryMessage.message is not valid padded base64".into())
}

/// The 6-bit value of a base64 character.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Whether the standard padded base64 decoder accepts `text`: whole
/// quadruples of the alphabet, at most two `=` at the end, and zero bits
/// where the padding leaves some unused. Checking costs no allocation,
/// where decoding costs one and a write per byte.
pub fn is_padded_base64(text: &[u8]) -> bool {
    if !text.len().is_multiple_of(4) {
        return false;
    }
    let Some(last) = text.last_chunk::<4>() else {
        return true;
    };
    let body = &text[..text.len() - 4];
    // Range tests without an early exit per byte, so that the compiler
    // turns them into vector compares; a table lookup per byte with a
    // branch was a third of the broker's CPU at 1 KiB messages (perf).
    let alphabet = |b: u8| {
        b.is_ascii_uppercase()
            | b.is_ascii_lowercase()
            | b.is_ascii_digit()
            | (b == b'+')
            | (b == b'/')
    };
    for chunk in body.chunks(256) {
        if !chunk.iter().fold(true, |ok, &b| ok & alphabet(b)) {
            return false;
        }
    }
    let [a, b, c, d] = last.map(sextet);
    match last {
        [_, _, b'=', b'='] => a.is_some() && b.is_some_and(|b| b & 0x0f == 0),
        [_, _, _, b'='] => a.is_some() && b.is_some() && c.is_some_and(|c| c & 0x03 == 0),
        _ => a.is_some() && b.is_some() && c.is_some() && d.is_some(),
    }
}

/// The event for a message given as raw JSON (`branch` is `jsonMessage` or
/// `binaryMessage`, `raw` the JSON text of its `message`).
fn prepare_event(branch: &str, raw: &str, topic: &str) -> PreparedMessage {
    PreparedMessage::new(
        &SUBSCRIPTION_EVENT,
        event_payload(branch, raw, topic),
        false,
    )
}

/// The event carrying a message published inside the broker.
pub fn event_for(topic: &str, message: &LocalMessage) -> PreparedMessage {
    match message {
        LocalMessage::Json(text) => {
            prepare_event("jsonMessage", &String::from_utf8_lossy(text), topic)
        }
        LocalMessage::Binary(bytes) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            prepare_event("binaryMessage", &format!("\"{b64}\""), topic)
        }
    }
}

fn decode_base64(raw: &RawValue) -> Result<Vec<u8>, InvalidPublish> {
    let text: Cow<'_, str> = serde_json::from_str(raw.get())
        .map_err(|_| InvalidPublish("binaryMessage.message must be a base64 string".into()))?;
    // Subscribers decode with a strict, padded base64 decoder; refuse here
    // what would fail there.
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|_| bad_base64())
}

/// `{"<branch>":{"message":<raw>,"context":{"topic":<topic>}}}`.
fn event_payload(branch: &str, raw_message: &str, topic: &str) -> Bytes {
    let topic_json = serde_json::to_string(topic).unwrap_or_else(|_| "\"\"".to_owned());
    let mut out = BytesMut::with_capacity(raw_message.len() + topic_json.len() + 48);
    out.put_slice(b"{\"");
    out.put_slice(branch.as_bytes());
    out.put_slice(b"\":{\"message\":");
    out.put_slice(raw_message.as_bytes());
    out.put_slice(b",\"context\":{\"topic\":");
    out.put_slice(topic_json.as_bytes());
    out.put_slice(b"}}}");
    out.freeze()
}

/// Counts of one fan-out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FanOut {
    /// Events queued.
    pub queued: usize,
    /// Events dropped at full queues.
    pub dropped: usize,
}

/// One publish on its way to subscribers.
#[derive(Debug)]
pub struct Delivery<'a> {
    /// The publishing component.
    pub publisher: &'a str,
    /// The topic published to.
    pub topic: &'a str,
    /// The event IPC subscribers get.
    pub event: &'a PreparedMessage,
    /// The message, for listeners inside the broker.
    pub message: &'a LazyMessage<'a>,
}

/// Hands `delivery` to `subscription` unless it is the publisher's own and
/// the subscription asked for others' messages only.
pub fn deliver(subscription: &Subscription, delivery: &Delivery<'_>, counts: &mut FanOut) {
    if subscription.from_others_only && &*subscription.component == delivery.publisher {
        return;
    }
    match &subscription.target {
        Target::Stream {
            outbound,
            stream_id,
        } => match outbound.push_event(delivery.event.for_stream(*stream_id)) {
            Pushed::Queued => counts.queued += 1,
            Pushed::Dropped => counts.dropped += 1,
            // The subscriber is going away; its reader removes the
            // subscription.
            Pushed::Closed => {}
        },
        Target::Listener(listener) => {
            listener.on_message(delivery.publisher, delivery.topic, delivery.message.get());
            counts.queued += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_json(payload: &str, topic: &str) -> Result<serde_json::Value, InvalidPublish> {
        let (t, body) = parse_publish(payload.as_bytes())?;
        assert_eq!(t, topic);
        let (event, _) = body.into_event(&t)?;
        let frame = event
            .for_stream(1)
            .into_iter_nonempty()
            .flatten()
            .collect::<Vec<u8>>();
        let (message, _) = ggipc_protocol::frame::decode(frame.into(), usize::MAX).unwrap();
        Ok(serde_json::from_slice(&message.payload).unwrap())
    }

    #[test]
    fn json_and_binary_keep_their_branch_and_get_the_topic() {
        let v = event_json(
            r#"{"topic": "a/b", "publishMessage": {"jsonMessage": {"message": {"h\u00e9": [1, 2.5, null, true]}, "context": {"topic": "ignored"}}}}"#,
            "a/b",
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"jsonMessage": {"message": {"hé": [1, 2.5, null, true]}, "context": {"topic": "a/b"}}})
        );
        let v = event_json(
            r#"{"topic": "t\"q", "publishMessage": {"binaryMessage": {"message": "aGVsbG8\u003d"}}}"#,
            "t\"q",
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"binaryMessage": {"message": "aGVsbG8=", "context": {"topic": "t\"q"}}})
        );
    }

    proptest::proptest! {
        // The fast check and the decoder subscribers use must agree on
        // every input, or a publish would be accepted that a subscriber
        // cannot read (or refused that it could).
        #[test]
        fn the_base64_check_accepts_exactly_what_the_decoder_does(
            text in "[A-Za-z0-9+/=\\-_ ]{0,12}",
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..12),
        ) {
            let decoder = base64::engine::general_purpose::STANDARD;
            proptest::prop_assert_eq!(
                is_padded_base64(text.as_bytes()),
                decoder.decode(text.as_bytes()).is_ok(),
                "{:?}", text
            );
            let encoded = decoder.encode(&bytes);
            proptest::prop_assert!(is_padded_base64(encoded.as_bytes()));
            // Every one-byte change of a valid text, too.
            for i in 0..encoded.len() {
                for b in [b'=', b'A', b'B', b'/', b'-', 0u8, 0xc3] {
                    let mut changed = encoded.clone().into_bytes();
                    changed[i] = b;
                    proptest::prop_assert_eq!(
                        is_padded_base64(&changed),
                        decoder.decode(&changed).is_ok(),
                        "{:?}", changed
                    );
                }
            }
        }
    }

    #[test]
    fn listeners_get_the_decoded_message_escaped_or_not() {
        for payload in [
            r#"{"topic": "t", "publishMessage": {"binaryMessage": {"message": "aGVsbG8="}}}"#,
            r#"{"topic": "t", "publishMessage": {"binaryMessage": {"message": "aGVsbG8\u003d"}}}"#,
        ] {
            let (_, body) = parse_publish(payload.as_bytes()).unwrap();
            let (_, message) = body.into_event("t").unwrap();
            assert_eq!(
                message.get(),
                &LocalMessage::Binary(Bytes::from_static(b"hello"))
            );
        }
        let (_, body) = parse_publish(
            br#"{"topic": "t", "publishMessage": {"jsonMessage": {"message": {"a": 1}}}}"#,
        )
        .unwrap();
        let (_, message) = body.into_event("t").unwrap();
        assert_eq!(
            message.get(),
            &LocalMessage::Json(Bytes::from_static(br#"{"a": 1}"#))
        );
    }

    #[test]
    fn bad_messages_are_refused_with_a_reason() {
        let cases = [
            (r#"{"topic": "t"}"#, "publishMessage is required"),
            (
                r#"{"topic": "t", "publishMessage": {}}"#,
                "must set jsonMessage or binaryMessage",
            ),
            (
                r#"{"topic": "t", "publishMessage": {"jsonMessage": {"message": {}}, "binaryMessage": {"message": ""}}}"#,
                "only one",
            ),
            (
                r#"{"topic": "t", "publishMessage": {"jsonMessage": {"message": [1]}}}"#,
                "JSON object",
            ),
            (
                r#"{"topic": "t", "publishMessage": {"jsonMessage": {"message": "s"}}}"#,
                "JSON object",
            ),
            (
                r#"{"topic": "t", "publishMessage": {"jsonMessage": {}}}"#,
                "is required",
            ),
            (
                r#"{"topic": "t", "publishMessage": {"binaryMessage": {"message": "abc"}}}"#,
                "base64",
            ),
            (
                r#"{"topic": "t", "publishMessage": {"binaryMessage": {"message": 5}}}"#,
                "base64",
            ),
            (
                r#"{"topic": "t", "publishMessage": {"binaryMessage": {"message": "aGVsbG9="}}}"#,
                "base64",
            ),
            (
                r#"{"topic": "t", "publishMessage": {"binaryMessage": {"message": "aGVs\nbG8="}}}"#,
                "base64",
            ),
            ("[1]", "not a PublishToTopicRequest"),
        ];
        for (payload, reason) in cases {
            let err = event_json(payload, "t").unwrap_err();
            assert!(err.0.contains(reason), "{payload}: {err:?}");
        }
    }
}

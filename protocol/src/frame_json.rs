//! Frames as JSON: the representation of `cases.json`, printed by
//! `ggipc decode` and read by `ggipc encode`.
//!
//! ```json
//! {"headers": [{"name": ":stream-id", "type": "int32", "value": 1}],
//!  "payload_base64": "e30=", "total_length": 60, "headers_length": 16,
//!  "prelude_crc": 1, "message_crc": 2}
//! ```
//!
//! `bytes` and `uuid` values are base64; `timestamp` is milliseconds since
//! the epoch; the two bool types carry `true`/`false`. When encoding, the
//! length and CRC fields are ignored (they are computed).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::frame::{FrameInfo, Header, HeaderValue, Message, StrBytes};

/// One header as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonHeader {
    /// Header name.
    pub name: String,
    /// Type name: `bool_true`, `bool_false`, `byte`, `int16`, `int32`,
    /// `int64`, `bytes`, `string`, `timestamp`, `uuid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The value in the type's JSON form.
    pub value: Value,
}

/// One frame as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonFrame {
    /// Headers in wire order.
    pub headers: Vec<JsonHeader>,
    /// The payload, standard base64.
    pub payload_base64: String,
    /// Prelude field (output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_length: Option<u32>,
    /// Prelude field (output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_length: Option<u32>,
    /// Prelude CRC (output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prelude_crc: Option<u32>,
    /// Message CRC (output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_crc: Option<u32>,
}

/// Why a JSON frame cannot become a [`Message`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonFrameError {
    /// Unknown type name.
    #[error("header {name:?}: unknown type {kind:?}")]
    UnknownType {
        /// Header name.
        name: String,
        /// The type given.
        kind: String,
    },
    /// The value does not fit the type.
    #[error("header {name:?}: value {value} is not a valid {kind}")]
    BadValue {
        /// Header name.
        name: String,
        /// Type name.
        kind: String,
        /// The value given.
        value: Value,
    },
    /// `payload_base64` is not base64.
    #[error("payload_base64 is not valid base64: {0}")]
    Payload(base64::DecodeError),
}

impl JsonHeader {
    /// The JSON form of a header.
    pub fn from_header(header: &Header) -> Self {
        let value = match &header.value {
            HeaderValue::Bool(b) => Value::Bool(*b),
            HeaderValue::Byte(v) => Value::from(*v),
            HeaderValue::Int16(v) => Value::from(*v),
            HeaderValue::Int32(v) => Value::from(*v),
            HeaderValue::Int64(v) | HeaderValue::Timestamp(v) => Value::from(*v),
            HeaderValue::Bytes(b) => Value::String(B64.encode(b)),
            HeaderValue::String(s) => Value::String(s.as_str().to_owned()),
            HeaderValue::Uuid(u) => Value::String(B64.encode(u)),
        };
        Self {
            name: header.name.as_str().to_owned(),
            kind: header.value.type_name().to_owned(),
            value,
        }
    }

    /// The header this JSON describes.
    pub fn to_header(&self) -> Result<Header, JsonFrameError> {
        let bad = || JsonFrameError::BadValue {
            name: self.name.clone(),
            kind: self.kind.clone(),
            value: self.value.clone(),
        };
        let int = |lo: i64, hi: i64| -> Result<i64, JsonFrameError> {
            self.value
                .as_i64()
                .filter(|v| (lo..=hi).contains(v))
                .ok_or_else(bad)
        };
        let b64 = || -> Result<Vec<u8>, JsonFrameError> {
            let s = self.value.as_str().ok_or_else(bad)?;
            B64.decode(s).map_err(|_| bad())
        };
        let value = match self.kind.as_str() {
            "bool_true" => HeaderValue::Bool(true),
            "bool_false" => HeaderValue::Bool(false),
            "byte" => HeaderValue::Byte(int(i8::MIN.into(), i8::MAX.into())? as i8),
            "int16" => HeaderValue::Int16(int(i16::MIN.into(), i16::MAX.into())? as i16),
            "int32" => HeaderValue::Int32(int(i32::MIN.into(), i32::MAX.into())? as i32),
            "int64" => HeaderValue::Int64(int(i64::MIN, i64::MAX)?),
            "timestamp" => HeaderValue::Timestamp(int(i64::MIN, i64::MAX)?),
            "bytes" => HeaderValue::Bytes(Bytes::from(b64()?)),
            "string" => HeaderValue::String(StrBytes::from(self.value.as_str().ok_or_else(bad)?)),
            "uuid" => HeaderValue::Uuid(b64()?.try_into().map_err(|_| bad())?),
            _ => {
                return Err(JsonFrameError::UnknownType {
                    name: self.name.clone(),
                    kind: self.kind.clone(),
                });
            }
        };
        Ok(Header {
            name: StrBytes::from(self.name.as_str()),
            value,
        })
    }
}

impl JsonFrame {
    /// The JSON form of a decoded frame.
    pub fn from_message(message: &Message, info: Option<FrameInfo>) -> Self {
        Self {
            headers: message
                .headers
                .iter()
                .map(JsonHeader::from_header)
                .collect(),
            payload_base64: B64.encode(&message.payload),
            total_length: info.map(|i| i.total_length),
            headers_length: info.map(|i| i.headers_length),
            prelude_crc: info.map(|i| i.prelude_crc),
            message_crc: info.map(|i| i.message_crc),
        }
    }

    /// The message this JSON describes; length and CRC fields are ignored.
    pub fn to_message(&self) -> Result<Message, JsonFrameError> {
        let headers = self
            .headers
            .iter()
            .map(JsonHeader::to_header)
            .collect::<Result<_, _>>()?;
        let payload = B64
            .decode(&self.payload_base64)
            .map_err(JsonFrameError::Payload)?;
        Ok(Message {
            headers,
            payload: Bytes::from(payload),
        })
    }
}

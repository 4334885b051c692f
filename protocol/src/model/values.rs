//! Simple member types: blobs, timestamps, documents and the enums of
//! `protocol.md` §6.2 and §7.3.

use std::fmt;
use std::ops::Deref;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Smithy document: any JSON value, in practice an object.
///
/// `null` in a document member reads as an absent member (the nucleus treats
/// both alike), so a `Some(Document)` is never `Value::Null` after decoding;
/// nulls nested inside a document are kept.
pub type Document = serde_json::Value;

/// A Smithy blob: bytes that travel as standard, padded base64 (RFC 4648 §4).
///
/// Decoding requires the padding, as the Python SDK and aws-c-common do; the
/// nucleus' `\u003d` escapes of `=` are undone by the JSON parser first.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Blob(pub Bytes);

impl Blob {
    /// Wraps bytes.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }

    /// The bytes, shared.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Blob {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Bytes> for Blob {
    fn from(bytes: Bytes) -> Self {
        Self(bytes)
    }
}

impl From<Vec<u8>> for Blob {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Bytes::from(bytes))
    }
}

impl From<&'static [u8]> for Blob {
    fn from(bytes: &'static [u8]) -> Self {
        Self(Bytes::from_static(bytes))
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({:?})", self.0)
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Base64;

        impl Visitor<'_> for Base64 {
            type Value = Blob;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64 string")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Blob, E> {
                // The error names the fault, not the text: a blob may be
                // megabytes long.
                STANDARD
                    .decode(v)
                    .map(Blob::from)
                    .map_err(|e| E::custom(format_args!("invalid base64 blob: {e}")))
            }
        }

        deserializer.deserialize_str(Base64)
    }
}

/// A Smithy timestamp: seconds since the Unix epoch, fractional, as a JSON
/// number — even where the Smithy docs say milliseconds (§6.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub f64);

impl Timestamp {
    /// Seconds since the epoch. JSON cannot carry NaN or infinities, so only
    /// finite values round-trip; serde_json would write others as `null`.
    pub const fn from_secs_f64(secs: f64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn as_secs_f64(self) -> f64 {
        self.0
    }
}

/// Reads an enum's wire text: a JSON string, or with `numbers` also a JSON
/// number, taken by its decimal text.
struct EnumText {
    numbers: bool,
}

impl Visitor<'_> for EnumText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.numbers {
            "a string or a number"
        } else {
            "a string"
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        if self.numbers {
            Ok(v.to_string())
        } else {
            Err(E::invalid_type(Unexpected::Unsigned(v), &self))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        if self.numbers {
            Ok(v.to_string())
        } else {
            Err(E::invalid_type(Unexpected::Signed(v), &self))
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        if self.numbers {
            // Rust prints 1.0 as "1", so a float that is a whole number maps
            // to the same value as the integer, as Gson's coercion would.
            Ok(v.to_string())
        } else {
            Err(E::invalid_type(Unexpected::Float(v), &self))
        }
    }
}

/// Defines a string enum of §7.3 with an `Unknown` variant, so that a value
/// this model does not know decodes and the handler decides, as in the
/// nucleus (§6.2: stored as raw string).
macro_rules! string_enum {
    (
        $(#[$doc:meta])*
        $name:ident, numbers: $numbers:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            /// A value outside the model, kept verbatim. Decoding never puts a
            /// known value here; build values with [`Self::from_wire`].
            Unknown(String),
        }

        impl $name {
            /// Every known value, in model order.
            pub const KNOWN: &[Self] = &[$(Self::$variant),+];

            /// The wire text.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(s) => s,
                }
            }

            /// The value for a wire text; unknown text becomes `Unknown`.
            pub fn from_wire(s: &str) -> Self {
                match s {
                    $($wire => Self::$variant,)+
                    _ => Self::Unknown(s.to_owned()),
                }
            }

            /// Whether the value is one the model defines.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = deserializer.deserialize_any(EnumText { numbers: $numbers })?;
                Ok(Self::from_wire(&text))
            }
        }
    };
}

string_enum! {
    /// Enum `aws.greengrass#ReceiveMode`: whether a subscriber gets its own
    /// messages.
    ReceiveMode, numbers: false {
        /// `RECEIVE_ALL_MESSAGES`.
        ReceiveAllMessages = "RECEIVE_ALL_MESSAGES",
        /// `RECEIVE_MESSAGES_FROM_OTHERS`.
        ReceiveMessagesFromOthers = "RECEIVE_MESSAGES_FROM_OTHERS",
    }
}

string_enum! {
    /// Enum `aws.greengrass#QOS`: the MQTT QoS, written as the strings `"0"`
    /// and `"1"`; the numbers 0 and 1 are accepted on input (§8 item 11).
    Qos, numbers: true {
        /// `"0"`.
        AtMostOnce = "0",
        /// `"1"`.
        AtLeastOnce = "1",
    }
}

string_enum! {
    /// Enum `aws.greengrass#PayloadFormat`: the MQTT 5 payload format
    /// indicator, written as the strings `"0"` and `"1"`; numbers are accepted
    /// on input.
    PayloadFormat, numbers: true {
        /// `"0"`: unspecified bytes.
        Bytes = "0",
        /// `"1"`: UTF-8 text.
        Utf8 = "1",
    }
}

string_enum! {
    /// Enum `aws.greengrass#LifecycleState`: a component's state.
    LifecycleState, numbers: false {
        /// `RUNNING`.
        Running = "RUNNING",
        /// `ERRORED`.
        Errored = "ERRORED",
        /// `NEW`.
        New = "NEW",
        /// `FINISHED`.
        Finished = "FINISHED",
        /// `INSTALLED`.
        Installed = "INSTALLED",
        /// `BROKEN`.
        Broken = "BROKEN",
        /// `STARTING`.
        Starting = "STARTING",
        /// `STOPPING`.
        Stopping = "STOPPING",
    }
}

string_enum! {
    /// Enum `aws.greengrass#ReportedLifecycleState`: the states a component
    /// may report about itself.
    ReportedLifecycleState, numbers: false {
        /// `RUNNING`.
        Running = "RUNNING",
        /// `ERRORED`.
        Errored = "ERRORED",
    }
}

string_enum! {
    /// Enum `aws.greengrass#RequestStatus`: whether a request was accepted.
    RequestStatus, numbers: false {
        /// `SUCCEEDED`.
        Succeeded = "SUCCEEDED",
        /// `FAILED`.
        Failed = "FAILED",
    }
}

string_enum! {
    /// Enum `aws.greengrass#ConfigurationValidityStatus`.
    ConfigurationValidityStatus, numbers: false {
        /// `ACCEPTED`.
        Accepted = "ACCEPTED",
        /// `REJECTED`.
        Rejected = "REJECTED",
    }
}

string_enum! {
    /// Enum `aws.greengrass#DeploymentStatus`.
    DeploymentStatus, numbers: false {
        /// `QUEUED`.
        Queued = "QUEUED",
        /// `IN_PROGRESS`.
        InProgress = "IN_PROGRESS",
        /// `SUCCEEDED`.
        Succeeded = "SUCCEEDED",
        /// `FAILED`.
        Failed = "FAILED",
        /// `CANCELED`.
        Canceled = "CANCELED",
    }
}

string_enum! {
    /// Enum `aws.greengrass#DetailedDeploymentStatus`.
    DetailedDeploymentStatus, numbers: false {
        /// `SUCCESSFUL`.
        Successful = "SUCCESSFUL",
        /// `FAILED_NO_STATE_CHANGE`.
        FailedNoStateChange = "FAILED_NO_STATE_CHANGE",
        /// `FAILED_ROLLBACK_NOT_REQUESTED`.
        FailedRollbackNotRequested = "FAILED_ROLLBACK_NOT_REQUESTED",
        /// `FAILED_ROLLBACK_COMPLETE`.
        FailedRollbackComplete = "FAILED_ROLLBACK_COMPLETE",
        /// `REJECTED`.
        Rejected = "REJECTED",
    }
}

string_enum! {
    /// Enum `aws.greengrass#FailureHandlingPolicy`.
    FailureHandlingPolicy, numbers: false {
        /// `ROLLBACK`.
        Rollback = "ROLLBACK",
        /// `DO_NOTHING`.
        DoNothing = "DO_NOTHING",
    }
}

string_enum! {
    /// Enum `aws.greengrass#CertificateType`.
    CertificateType, numbers: false {
        /// `SERVER`.
        Server = "SERVER",
    }
}

string_enum! {
    /// Enum `aws.greengrass#MetricUnitType`.
    MetricUnitType, numbers: false {
        /// `BYTES`.
        Bytes = "BYTES",
        /// `BYTES_PER_SECOND`.
        BytesPerSecond = "BYTES_PER_SECOND",
        /// `COUNT`.
        Count = "COUNT",
        /// `COUNT_PER_SECOND`.
        CountPerSecond = "COUNT_PER_SECOND",
        /// `MEGABYTES`.
        Megabytes = "MEGABYTES",
        /// `SECONDS`.
        Seconds = "SECONDS",
    }
}

string_enum! {
    /// Enum `aws.greengrass#ConnectionStatus`: the state of the connection to
    /// AWS IoT Core.
    ConnectionStatus, numbers: false {
        /// `CONNECTED`.
        Connected = "CONNECTED",
        /// `DISCONNECTED`.
        Disconnected = "DISCONNECTED",
    }
}

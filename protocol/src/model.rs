//! The GreengrassCoreIPC service model (`protocol.md` §6–§7): operations,
//! request, response, event and error shapes as serde types with their exact
//! JSON member names.
//!
//! # Conventions
//!
//! - **Optional members** are `Option<T>`: omitted when `None`, never written
//!   as `null`; an incoming `null` reads as `None`, as in the nucleus (§6.3).
//! - **Required members.** Shapes a client sends — requests and everything
//!   nested in them — make *every* member optional, because the nucleus
//!   decodes a missing or `null` required member as absent and lets the
//!   handler complain. [`Shape::validate`] reports the first missing one
//!   (their docs start with "Required."). Shapes only the server builds —
//!   responses and events — hold Smithy-required members as plain fields, so
//!   a server cannot forget them, except the two the reference itself omits
//!   (`ComponentDetails.version`, `DeploymentStatusDetails.detailedDeploymentStatus`).
//! - **Objects only.** A shape decodes from a JSON object and nothing else;
//!   unknown members are ignored (§8 item 16) and of duplicate members the
//!   last wins, as with Gson in the nucleus.
//! - **Unions** are structs with one `Option` per member, so that a payload
//!   with none or several members still decodes and the broker can answer as
//!   it chooses (`InvalidArgumentsError` per §6.1); [`Shape::validate`]
//!   reports both cases. `From` builds a union from its member.
//! - **Enums** keep values they do not know in an `Unknown(String)` variant:
//!   the nucleus stores the raw string and only some handlers check it, so
//!   rejecting is the handler's call. `QOS` and `PayloadFormat` are written
//!   as the strings `"0"`/`"1"` and also read from JSON numbers.
//! - **Blobs** are [`Blob`]s (padded standard base64), **timestamps**
//!   [`Timestamp`]s (float seconds), **documents** [`Document`]s. Integers
//!   are `i64` whatever their Smithy width, so no value a client sends is
//!   refused before the handler sees it.
//! - **Payloads.** An empty (or all-whitespace) payload reads as `{}`, the
//!   only sensible reading for an absent body; output is compact JSON.

use std::fmt;

use bytes::Bytes;
use serde::de::{DeserializeOwned, DeserializeSeed, Visitor};
use serde::{Deserializer, Serialize};

/// Implements `Deserialize` for a shape struct: from a JSON object only (not
/// from the positional array serde's derive would also take), unknown
/// members skipped, the last of duplicate members winning as in Gson. `opt`
/// members read `null` as `None`; `req` members must be present.
macro_rules! deserialize_object {
    ($ty:ident {}) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                struct ObjectVisitor;

                impl<'de> ::serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($ty), " object"))
                    }

                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        mut access: A,
                    ) -> Result<$ty, A::Error> {
                        use ::serde::de::IgnoredAny;
                        while access.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                        Ok($ty {})
                    }
                }

                deserializer.deserialize_map(ObjectVisitor)
            }
        }
    };
    ($ty:ident { $($json:literal => $field:ident: $kind:ident,)+ }) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                struct ObjectVisitor;

                impl<'de> ::serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $ty;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($ty), " object"))
                    }

                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        mut access: A,
                    ) -> Result<$ty, A::Error> {
                        $(let mut $field = None;)+
                        let names = $crate::model::MemberName(&[$($json),+]);
                        while let Some(name) = access.next_key_seed(names)? {
                            match name {
                                $(Some($json) => member_value!($kind, access, $field),)+
                                _ => {
                                    access.next_value::<::serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok($ty {
                            $($field: member_finish!($kind, $field, $json, A),)+
                        })
                    }
                }

                deserializer.deserialize_map(ObjectVisitor)
            }
        }
    };
}

/// Stores a member's value as it is read (see `deserialize_object!`).
macro_rules! member_value {
    (opt, $access:ident, $field:ident) => {
        $field = $access.next_value()?
    };
    (req, $access:ident, $field:ident) => {
        $field = Some($access.next_value()?)
    };
}

/// A member's final value (see `deserialize_object!`).
macro_rules! member_finish {
    (opt, $field:ident, $json:literal, $access:ident) => {
        $field
    };
    (req, $field:ident, $json:literal, $access:ident) => {
        $field.ok_or_else(|| <$access::Error as ::serde::de::Error>::missing_field($json))?
    };
}

mod cli;
mod client_devices;
mod config;
mod errors;
mod lifecycle;
mod metrics;
mod mqtt;
mod operation;
mod pubsub;
mod secrets;
mod shadow;
mod token;
mod values;

pub use cli::*;
pub use client_devices::*;
pub use config::*;
pub use errors::IpcError;
pub use lifecycle::*;
pub use metrics::*;
pub use mqtt::*;
pub use operation::*;
pub use pubsub::*;
pub use secrets::*;
pub use shadow::*;
pub use token::*;
pub use values::*;

/// The service's shape id; appears on the wire only as `_service` in errors.
pub const SERVICE_ID: &str = "aws.greengrass#GreengrassCoreIPC";
/// Prefix of every operation and shape id.
pub const NAMESPACE: &str = "aws.greengrass#";

/// A modeled structure or union that can be a payload or part of one.
pub trait Shape: Serialize + DeserializeOwned {
    /// The shape id, e.g. `aws.greengrass#PublishToTopicRequest`.
    const ID: &'static str;

    /// Checks what serde leaves to the handler: required members present and
    /// unions with exactly one member, recursively.
    fn validate(&self) -> Result<(), ShapeError>;

    /// The JSON payload, compact.
    fn to_payload(&self) -> Bytes {
        to_payload(self)
    }

    /// Reads a payload; an empty one counts as `{}`.
    fn from_payload(payload: &[u8]) -> Result<Self, serde_json::Error> {
        from_payload(payload)
    }
}

/// A decoded shape breaks a rule serde does not check (see [`Shape::validate`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// A Smithy-required member is absent or `null`.
    #[error("{member} is required in {shape}")]
    MissingMember {
        /// The shape's bare name, e.g. `PublishToTopicRequest`.
        shape: &'static str,
        /// The member's JSON name, e.g. `topic`.
        member: &'static str,
    },
    /// A union has no member set.
    #[error("{shape} must have exactly one member set, found none")]
    EmptyUnion {
        /// The union's bare name.
        shape: &'static str,
    },
    /// A union has more than one member set; the nucleus refuses such
    /// requests before its handler runs.
    #[error("{shape} must have exactly one member set, found {count}")]
    MultipleUnionMembers {
        /// The union's bare name.
        shape: &'static str,
        /// How many members are set.
        count: usize,
    },
}

/// Looks an object key up among a shape's member names without allocating:
/// `Some(name)` for a member, `None` for a key to skip.
#[derive(Clone, Copy)]
struct MemberName(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for MemberName {
    type Value = Option<&'static str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for MemberName {
    type Value = Option<&'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().copied().find(|name| *name == v))
    }
}

fn missing(shape: &'static str, member: &'static str) -> ShapeError {
    ShapeError::MissingMember { shape, member }
}

fn check_union(shape: &'static str, present: &[bool]) -> Result<(), ShapeError> {
    match present.iter().filter(|p| **p).count() {
        1 => Ok(()),
        0 => Err(ShapeError::EmptyUnion { shape }),
        count => Err(ShapeError::MultipleUnionMembers { shape, count }),
    }
}

fn to_payload<T: Serialize + ?Sized>(value: &T) -> Bytes {
    // Serialization cannot fail: every map key is a string and no Serialize
    // impl in the model returns an error.
    Bytes::from(serde_json::to_vec(value).expect("model types always serialize"))
}

fn from_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, serde_json::Error> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        serde_json::from_slice(b"{}")
    } else {
        serde_json::from_slice(payload)
    }
}

//! Bytes in, typed Greengrass IPC messages out.
//!
//! Three layers, each usable alone, none doing I/O or reading a clock:
//!
//! - [`frame`]: AWS event-stream framing — prelude, ten header types, CRCs,
//!   limits — and a `tokio_util` codec.
//! - [`rpc`]: the eventstream-RPC layer — message types, flags, reserved
//!   headers, a typed view of received messages, builders for sent ones.
//! - [`model`]: the GreengrassCoreIPC service — operations, request, response,
//!   event and error shapes as serde types with their exact JSON names.
//!
//! [`frame_json`] renders frames as the JSON that `ggipc decode` prints and
//! `ggipc encode` reads.

pub mod error;
pub mod frame;
pub mod frame_json;
pub mod model;
pub mod policy;
pub mod rpc;
pub mod topic;

#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "arbitrary")]
mod arbitrary_impls;

pub use error::{FrameError, RpcError};
pub use frame::{FrameCodec, FrameInfo, Header, HeaderValue, Limits, Message, StrBytes};
pub use rpc::{MessageType, RpcMessage};

//! Greengrass IPC for Rust components.
//!
//! [`Client`] talks to the IPC socket of an AWS IoT Greengrass nucleus — or
//! of `ggipc-broker`, which speaks the same protocol — with one async method
//! per operation, typed with the request, response and event shapes of
//! [`ggipc_protocol::model`] and failing with a typed [`Error`].
//!
//! ```no_run
//! use ggipc_client::{Error, Payload};
//! use ggipc_protocol::model::IpcError;
//! use serde_json::json;
//!
//! # async fn demo() -> Result<(), Error> {
//! // Socket and SVCUID token from the component's environment.
//! let client = ggipc_client::connect().await?;
//!
//! // Messages arrive on a Stream; the same client keeps publishing.
//! let mut messages = client.subscribe("local/topic").await?;
//! client.publish_json("local/topic", &json!({"key1": "value1"})).await?;
//! if let Some(message) = messages.recv().await {
//!     match message?.payload {
//!         Payload::Json(value) => println!("json: {value}"),
//!         Payload::Binary(bytes) => println!("{} bytes", bytes.len()),
//!     }
//! }
//!
//! // Modeled errors from the server are typed.
//! match client.publish_binary("not/allowed", "x").await {
//!     Err(Error::Ipc(IpcError::Unauthorized { message })) => {
//!         eprintln!("denied: {}", message.unwrap_or_default());
//!     }
//!     other => other?,
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Connection model
//!
//! One [`Client`] is one connection, shared by its clones. Any number of
//! operations may be in flight at once from any number of tasks; a
//! subscription handler may publish from inside its own loop. When the
//! connection drops, pending operations fail with
//! [`Error::ConnectionClosed`] and subscriptions end with it — unless
//! [`ClientBuilder::reconnect`] is set, which reconnects with backoff and
//! re-opens the subscriptions still held.
//!
//! The crate also builds two binaries: `ggipc`, a command-line tool, and
//! `ggipc-publisher-sample`, the sample component of
//! `recipes/com.example.Publisher-1.0.0.yaml`.

mod client;
mod config;
mod connection;
mod error;
mod message;
mod operations;
pub mod publisher_sample;
mod sink;
mod subscription;

pub use client::{Client, connect};
pub use config::{ClientBuilder, ReconnectPolicy, SOCKET_ENV, SlowConsumer, TOKEN_ENV};
pub use error::Error;
pub use message::{Payload, TopicMessage};
pub use operations::{StreamingRequest, UnaryRequest};
pub use subscription::Subscription;

/// Locks a mutex, ignoring poisoning: every critical section here leaves
/// the data consistent even if it panics half-way (they only insert, remove
/// and set), so a panic elsewhere must not take the connection down.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

//! The one error type of the client.

use std::io;
use std::time::Duration;

use ggipc_protocol::FrameError;
use ggipc_protocol::model::IpcError;

/// Why an operation, a subscription or a connection attempt failed.
///
/// Match on [`Error::Ipc`] for the server's modeled answers
/// (`UnauthorizedError`, `InvalidArgumentsError`, `ServiceError`, …); the
/// other variants are about the connection and the protocol. Display texts
/// are for people and may change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a modeled GreengrassCoreIPC error.
    #[error("{0}")]
    Ipc(#[from] IpcError),
    /// The server refused the connection's token: CONNECT_ACK came without
    /// CONNECTION_ACCEPTED. The server gives no reason.
    #[error("access denied: the server refused the authentication token")]
    AccessDenied,
    /// The connection is gone, or was never there: the server closed it, a
    /// read or write failed, or the client was closed. Operations pending at
    /// that moment fail with it, and subscriptions end with it.
    #[error("connection closed: {0}")]
    ConnectionClosed(String),
    /// No answer in the configured time. The operation's stream is
    /// terminated on the wire; the server may still have acted on it.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The socket could not be reached.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The client is not configured well enough to connect: a missing
    /// environment variable, no token, an unreadable token file.
    #[error("{0}")]
    Config(String),
    /// The server closed the stream without an answer or error (a bare
    /// TERMINATE_STREAM), as the nucleus does for operations it does not
    /// know.
    #[error("the server closed the stream")]
    StreamClosed,
    /// The server failed outside the service model: the nucleus'
    /// `text/plain` `InternalServerError`, its "Unsupported Operation"
    /// JSON, or an error shape this client does not know. Holds the payload
    /// as text.
    #[error("the server failed outside the service model: {0}")]
    Unmodeled(String),
    /// A payload from the server is not valid JSON for its shape.
    #[error("cannot decode {shape}: {source}")]
    Decode {
        /// The shape id the payload was read as.
        shape: String,
        /// What serde_json found.
        source: serde_json::Error,
    },
    /// A value given to [`Client::publish_json`](crate::Client::publish_json)
    /// cannot be serialized to JSON.
    #[error("cannot serialize the message: {0}")]
    Serialize(serde_json::Error),
    /// The request cannot be sent, most likely because it exceeds the
    /// 16 MiB frame limit.
    #[error("cannot encode the request: {0}")]
    Encode(FrameError),
    /// The server broke the eventstream-RPC rules, for one stream or (if
    /// the connection also closed) for the connection.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The subscription's event buffer was full and
    /// [`SlowConsumer::End`](crate::SlowConsumer::End) is in force: the
    /// subscription was terminated.
    #[error("subscription ended: its buffer of {0} events overflowed")]
    Overflow(usize),
}

impl Error {
    /// The modeled server error, if this is one.
    pub fn ipc(&self) -> Option<&IpcError> {
        match self {
            Self::Ipc(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the connection, not the request, failed: retrying on a new
    /// connection may succeed.
    pub fn is_connection_error(&self) -> bool {
        matches!(self, Self::ConnectionClosed(_) | Self::Io(_))
    }
}

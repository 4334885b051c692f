//! The user's end of a subscription: a `Stream` of events.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::Stream;
use ggipc_protocol::RpcMessage;
use ggipc_protocol::model::Shape;
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::client::ClientInner;
use crate::sink::EventSink;

/// Turns an event message into the subscription's item type.
pub(crate) type Decode<T> = fn(&RpcMessage) -> Result<T, Error>;

/// Decodes an event of shape `E`, checking its `service-model-type`.
pub(crate) fn decode_event<E: Shape>(rpc: &RpcMessage) -> Result<E, Error> {
    let shape = rpc.service_model_type.as_ref().map(|s| s.as_str());
    if shape != Some(E::ID) {
        return Err(Error::Protocol(format!(
            "expected an event of shape {}, got {}",
            E::ID,
            shape.unwrap_or("none")
        )));
    }
    E::from_payload(rpc.payload()).map_err(|source| Error::Decode {
        shape: E::ID.to_owned(),
        source,
    })
}

/// An open subscription: a [`Stream`] of events, each `Ok(event)` or an
/// `Err` for one that could not be decoded.
///
/// The stream ends (`None`) after one final `Err` saying why — the server
/// closed the stream ([`Error::StreamClosed`]) or sent an error
/// ([`Error::Ipc`]), the connection was lost ([`Error::ConnectionClosed`]),
/// or the buffer overflowed under
/// [`SlowConsumer::End`](crate::SlowConsumer::End). With
/// [`reconnect`](crate::ClientBuilder::reconnect) a lost connection does not
/// end it: it is re-opened on the next connection.
///
/// Dropping it, or [`close`](Self::close), terminates the stream on the
/// wire, so the server stops sending. It keeps the client's connection open
/// even when every [`Client`](crate::Client) handle is gone.
///
/// Events wait in a bounded buffer ([`ClientBuilder::event_buffer`]); see
/// [`SlowConsumer`](crate::SlowConsumer) for what happens when it is full.
///
/// ```no_run
/// # async fn demo(client: ggipc_client::Client) -> Result<(), ggipc_client::Error> {
/// use ggipc_protocol::model::SubscribeToConfigurationUpdateRequest;
///
/// let mut updates = client
///     .subscribe_to_configuration_update(&SubscribeToConfigurationUpdateRequest::default())
///     .await?;
/// // Handle ten changes, then stop listening.
/// for _ in 0..10 {
///     match updates.recv().await {
///         Some(Ok(event)) => println!("changed: {:?}", event.configuration_update_event),
///         Some(Err(e)) => eprintln!("{e}"),
///         None => break,
///     }
/// }
/// updates.close().await;
/// # Ok(())
/// # }
/// ```
///
/// [`ClientBuilder::event_buffer`]: crate::ClientBuilder::event_buffer
pub struct Subscription<T> {
    rx: mpsc::Receiver<RpcMessage>,
    sink: Arc<EventSink>,
    decode: Decode<T>,
    ended: bool,
    _client: Arc<ClientInner>,
}

impl<T> Subscription<T> {
    pub(crate) fn new(
        rx: mpsc::Receiver<RpcMessage>,
        sink: Arc<EventSink>,
        decode: Decode<T>,
        client: Arc<ClientInner>,
    ) -> Self {
        Self {
            rx,
            sink,
            decode,
            ended: false,
            _client: client,
        }
    }

    /// The next event; `None` once the subscription has ended. The same as
    /// `StreamExt::next`, without the import.
    pub async fn recv(&mut self) -> Option<Result<T, Error>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Events dropped so far because the buffer was full (under
    /// [`SlowConsumer::DropNewest`](crate::SlowConsumer::DropNewest)).
    pub fn dropped_events(&self) -> u64 {
        self.sink.dropped()
    }

    /// Terminates the subscription on the wire and waits (up to a second)
    /// until the termination is written to the socket. Events still
    /// buffered are discarded.
    pub async fn close(mut self) {
        if let Some(written) = self.terminate(true) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), written).await;
        }
    }

    fn terminate(&mut self, ack: bool) -> Option<oneshot::Receiver<()>> {
        let (conn, id) = self.sink.close()?;
        conn.upgrade()?.terminate(id, ack)
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match ready!(self.rx.poll_recv(cx)) {
            Some(event) => Poll::Ready(Some((self.decode)(&event))),
            None => {
                self.ended = true;
                Poll::Ready(self.sink.take_end().map(Err))
            }
        }
    }
}

impl<T> Stream for Subscription<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.terminate(false);
    }
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("operation", &self.sink.operation)
            .field("buffered", &self.rx.len())
            .field("dropped_events", &self.sink.dropped())
            .field("ended", &self.ended)
            .finish()
    }
}

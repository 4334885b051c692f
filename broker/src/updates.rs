//! Component updates (`semantics.md` §5.3, `protocol.md` §7.4.13–14): a
//! deployment brought by SIGHUP that changes components first tells every
//! `SubscribeToComponentUpdates` stream (`preUpdateEvent`), waits for their
//! `DeferComponentUpdate` answers within the policy's timeout, honours the
//! longest deferral, applies the change, then sends `postUpdateEvent`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ggipc_protocol::model::{
    ComponentUpdatePolicyEvents, DeferComponentUpdateRequest, IpcError, Operation,
    PostComponentUpdateEvent, PreComponentUpdateEvent, Shape,
};

use crate::connection::{Session, StreamSink};

/// How many times a deployment may be deferred before it goes ahead
/// anyway: a component that always defers must not block updates forever.
const MAX_DEFERRALS: u32 = 10;

#[derive(Debug, Default)]
struct Pending {
    deployment_id: String,
    /// Subscribers (by subscription id) that have answered, with their
    /// `recheckAfterMs`.
    answers: HashMap<u64, i64>,
}

/// Subscribers and the update under way.
#[derive(Debug, Default)]
pub struct ComponentUpdates {
    subscribers: Mutex<HashMap<u64, (Arc<str>, StreamSink)>>,
    pending: Mutex<Option<Pending>>,
    answered: tokio::sync::Notify,
    next_id: AtomicU64,
}

impl ComponentUpdates {
    fn send(&self, event: &ComponentUpdatePolicyEvents) {
        let payload = event.to_payload();
        for (_, sink) in self
            .subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            let _ = sink.send_event(
                "aws.greengrass#ComponentUpdatePolicyEvents",
                payload.clone(),
            );
        }
    }

    fn subscriber_ids(&self) -> Vec<u64> {
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Tells subscribers `deployment_id` is coming and waits until every
    /// one has answered or `timeout` passed; repeats while someone defers.
    pub async fn before_update(&self, deployment_id: &str, timeout: Duration) {
        for round in 0..=MAX_DEFERRALS {
            let expected = self.subscriber_ids();
            if expected.is_empty() {
                return;
            }
            *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(Pending {
                deployment_id: deployment_id.to_owned(),
                answers: HashMap::new(),
            });
            self.send(&ComponentUpdatePolicyEvents {
                pre_update_event: Some(PreComponentUpdateEvent {
                    deployment_id: deployment_id.to_owned(),
                    is_ggc_restarting: false,
                }),
                post_update_event: None,
            });
            let deadline = tokio::time::Instant::now() + timeout;
            let longest = loop {
                let notified = self.answered.notified();
                let answers = self
                    .pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map(|p| p.answers.clone())
                    .unwrap_or_default();
                let everyone = expected.iter().all(|id| answers.contains_key(id));
                if everyone || tokio::time::timeout_at(deadline, notified).await.is_err() {
                    break answers.values().copied().max().unwrap_or(0);
                }
            };
            *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = None;
            if longest <= 0 || round == MAX_DEFERRALS {
                return;
            }
            tracing::info!(
                deployment = deployment_id,
                defer_ms = longest,
                "update deferred"
            );
            tokio::time::sleep(Duration::from_millis(longest as u64)).await;
        }
    }

    /// Tells subscribers `deployment_id` was applied.
    pub fn after_update(&self, deployment_id: &str) {
        self.send(&ComponentUpdatePolicyEvents {
            pre_update_event: None,
            post_update_event: Some(PostComponentUpdateEvent {
                deployment_id: deployment_id.to_owned(),
            }),
        });
    }
}

/// Handles SubscribeToComponentUpdates and DeferComponentUpdate; returns
/// false for any other operation.
pub(crate) fn handle(
    session: &mut Session,
    op: Operation,
    stream_id: i32,
    payload: &Bytes,
) -> bool {
    let updates = session.broker.component_updates().clone();
    match op {
        Operation::SubscribeToComponentUpdates => {
            if let Some(e) = session.stream_limit_error() {
                session.error(stream_id, &e);
                return true;
            }
            session.respond(stream_id, op, Bytes::from_static(b"{}"));
            let id = updates.next_id.fetch_add(1, Ordering::Relaxed);
            updates
                .subscribers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    id,
                    (session.component.clone(), session.stream_sink(stream_id)),
                );
            let updates2 = updates.clone();
            session.open_stream(
                stream_id,
                Box::new(move || {
                    updates2
                        .subscribers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&id);
                }),
            );
        }
        Operation::DeferComponentUpdate => match defer(&updates, session, payload) {
            Ok(()) => session.respond(stream_id, op, Bytes::from_static(b"{}")),
            Err(e) => session.error(stream_id, &e),
        },
        _ => return false,
    }
    true
}

fn defer(updates: &ComponentUpdates, session: &Session, payload: &Bytes) -> Result<(), IpcError> {
    let request = DeferComponentUpdateRequest::from_payload(payload)
        .map_err(|e| IpcError::invalid_arguments(e.to_string()))?;
    let ids: Vec<u64> = updates
        .subscribers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(_, (c, _))| *c == session.component)
        .map(|(id, _)| *id)
        .collect();
    if ids.is_empty() {
        return Err(IpcError::invalid_arguments(
            "Component is not subscribed to component update events",
        ));
    }
    let deployment_id = request
        .deployment_id
        .filter(|d| !d.is_empty())
        .ok_or_else(|| IpcError::invalid_arguments("deploymentId is required"))?;
    let mut pending = updates.pending.lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = pending
        .as_mut()
        .filter(|p| p.deployment_id == deployment_id)
    else {
        return Err(IpcError::service(format!(
            "no update of deployment {deployment_id} is waiting for an answer"
        )));
    };
    let recheck = request.recheck_after_ms.unwrap_or(0).max(0);
    if let Some(message) = &request.message {
        tracing::info!(component = %session.component, deployment = %deployment_id, recheck, message = %message, "update deferral");
    }
    for id in ids {
        p.answers.insert(id, recheck);
    }
    drop(pending);
    updates.answered.notify_waiters();
    Ok(())
}

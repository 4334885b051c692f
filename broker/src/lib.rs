//! The ggipc broker: a Greengrass IPC socket server with authentication,
//! `accessControl` authorization and local publish/subscribe.
//!
//! [`Broker`] holds the state every connection shares; [`server`] binds the
//! socket and accepts; [`connection`] speaks the protocol with one client.

pub mod config;
mod connection;
pub mod lambda;
pub mod logs;
pub mod outbound;
pub mod pubsub;
pub mod server;
pub mod states;
pub mod supervisor;
pub mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ggipc_protocol::policy::ComponentPolicies;
use ggipc_protocol::topic::TopicIndex;

use crate::config::{Deployment, Limits};
use crate::pubsub::{Delivery, FanOut, LocalListener, LocalMessage, Subscription, Target};
use crate::tokens::{Token, TokenStore};

/// State shared by all connections.
#[derive(Debug)]
pub struct Broker {
    deployment: Deployment,
    tokens: TokenStore,
    policies: HashMap<Arc<str>, ComponentPolicies>,
    topics: RwLock<TopicIndex<Subscription>>,
    next_subscription: AtomicU64,
    /// Flips to true when the broker stops; connections then close cleanly.
    shutdown: tokio::sync::watch::Sender<bool>,
}

impl Broker {
    /// Builds the broker for `deployment`: issues a token per component,
    /// writes requested token files and compiles every component's policies.
    pub fn new(deployment: Deployment) -> std::io::Result<Self> {
        let mut tokens = TokenStore::default();
        let mut policies = HashMap::new();
        for (name, component) in &deployment.components {
            let name: Arc<str> = Arc::from(name.as_str());
            let token = Token::generate()?;
            if let Some(path) = &component.token_file {
                token.write_to(path).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cannot write the token file {}: {e}", path.display()),
                    )
                })?;
            }
            tokens.insert(token, name.clone());
            let access = component
                .configuration
                .get("accessControl")
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            let interpolate = |var: &str| recipe_variable(&deployment, &name, var);
            let (compiled, warnings) = ComponentPolicies::compile(&access, &interpolate);
            for warning in warnings {
                tracing::warn!(component = %name, "accessControl: {warning}");
            }
            policies.insert(name, compiled);
        }
        Ok(Self {
            deployment,
            tokens,
            policies,
            topics: RwLock::new(TopicIndex::new()),
            next_subscription: AtomicU64::new(1),
            shutdown: tokio::sync::watch::channel(false).0,
        })
    }

    /// The deployment in force.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.deployment.limits
    }

    /// The token issued to `component`.
    pub fn token_of(&self, component: &str) -> Option<&Token> {
        self.tokens.token_of(component)
    }

    /// Asks every connection to close cleanly.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    fn is_authorized(
        &self,
        component: &str,
        destination: &str,
        operation: &str,
        resource: &str,
    ) -> bool {
        self.policies
            .get(component)
            .is_some_and(|p| p.is_authorized(destination, operation, Some(resource)))
    }

    fn subscribe(&self, filter: &str, subscription: Subscription) -> u64 {
        let id = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        self.topics_write().insert(filter, id, subscription);
        id
    }

    /// Subscribes a listener inside the broker to local `filter` (already
    /// validated) on behalf of `component`; returns the id to unsubscribe.
    pub fn subscribe_listener(
        &self,
        filter: &str,
        component: Arc<str>,
        from_others_only: bool,
        listener: Arc<dyn LocalListener>,
    ) -> u64 {
        self.subscribe(
            filter,
            Subscription {
                target: Target::Listener(listener),
                component,
                from_others_only,
            },
        )
    }

    /// Removes subscription `id` of `filter`.
    pub fn unsubscribe(&self, filter: &str, id: u64) {
        self.topics_write().remove(filter, id);
    }

    /// Publishes `message` to local `topic` as `publisher`, from inside the
    /// broker (the IoT Core bridge's mapping, for one). The topic is not
    /// authorized here; the caller decides what may cross.
    pub fn publish_local(&self, publisher: &str, topic: &str, message: &LocalMessage) -> FanOut {
        let event = pubsub::event_for(topic, message);
        self.fan_out(&Delivery {
            publisher,
            topic,
            event: &event,
            message,
        })
    }

    fn topics_write(&self) -> std::sync::RwLockWriteGuard<'_, TopicIndex<Subscription>> {
        // The index holds plain data; a panic elsewhere cannot leave it torn
        // in a way later readers would misread.
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `delivery` to every subscription matching its topic.
    fn fan_out(&self, delivery: &Delivery<'_>) -> FanOut {
        let mut counts = FanOut::default();
        let topics = self.topics.read().unwrap_or_else(|e| e.into_inner());
        topics.visit(delivery.topic, |_, subscription| {
            pubsub::deliver(subscription, delivery, &mut counts);
        });
        counts
    }

    /// Subscriptions currently open, over all connections.
    pub fn subscription_count(&self) -> usize {
        self.topics.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Values of recipe variables in policies (`{iot:thingName}` and the like).
fn recipe_variable(deployment: &Deployment, component: &str, var: &str) -> Option<String> {
    match var {
        "iot:thingName" => deployment.thing_name.clone(),
        "kernel:rootPath" => Some(deployment.root.display().to_string()),
        "work:path" => Some(
            deployment
                .root
                .join("work")
                .join(component)
                .display()
                .to_string(),
        ),
        _ => None,
    }
}

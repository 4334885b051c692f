//! The ggipc broker: a Greengrass IPC socket server with authentication,
//! `accessControl` authorization and local publish/subscribe.
//!
//! [`Broker`] holds the state every connection shares; [`server`] binds the
//! socket and accepts; [`connection`] speaks the protocol with one client.

mod cli_identity;
pub mod config;
pub mod configstore;
mod connection;
pub mod iotcore;
pub mod lambda;
mod lifecycle;
pub mod logs;
pub mod outbound;
pub mod pubsub;
mod readbuf;
pub mod server;
pub mod states;
pub mod supervisor;
pub mod tokens;
pub mod updates;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use ggipc_protocol::policy::ComponentPolicies;
use ggipc_protocol::topic::TopicIndex;

use crate::config::{Deployment, Limits};
use crate::pubsub::{Delivery, FanOut, LocalListener, LocalMessage, Subscription, Target};
use crate::tokens::{Token, TokenStore};

/// What a deployment load produces: the document, each component's token
/// and compiled policies. Replaced whole on SIGHUP.
#[derive(Debug)]
struct Loaded {
    deployment: Arc<Deployment>,
    tokens: TokenStore,
    policies: HashMap<Arc<str>, ComponentPolicies>,
    /// Operator identities and their tokens (see `cli_identity`).
    cli: Vec<(cli_identity::CliIdentity, String)>,
}

/// What a reload changed, for the supervisor.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Components new in the deployment.
    pub added: Vec<String>,
    /// Components no longer in it.
    pub removed: Vec<String>,
    /// Components whose version, recipe, configuration or user changed.
    pub changed: Vec<String>,
}

impl ReloadPlan {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// State shared by all connections.
#[derive(Debug)]
pub struct Broker {
    loaded: RwLock<Arc<Loaded>>,
    /// Bumped after every reload, so connections know when the decisions
    /// they remember may have changed.
    policy_generation: AtomicU64,
    /// Limits are read on every operation and fixed for the broker's life:
    /// a reload does not change them.
    limits: Limits,
    topics: RwLock<TopicIndex<Subscription>>,
    next_subscription: AtomicU64,
    /// Flips to true when the broker stops; connections then close cleanly.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// The supervisor's side, for the lifecycle operations; set once at
    /// start (the supervisor holds the broker, so this side is weak).
    runtime: std::sync::OnceLock<Runtime>,
    /// Components' configuration for the configuration operations; apart
    /// from the deployment so that publishing never touches its lock.
    config_store: configstore::ConfigStore,
    /// SubscribeToComponentUpdates subscribers and the update under way.
    component_updates: Arc<updates::ComponentUpdates>,
    /// The IoT Core bridge, set once at start when configured.
    iot_core: std::sync::OnceLock<Arc<iotcore::IotCore>>,
}

/// Component states and the supervisor, as the lifecycle operations see them.
#[derive(Debug, Clone)]
pub(crate) struct Runtime {
    pub(crate) states: Arc<states::ComponentStates>,
    pub(crate) supervisor: std::sync::Weak<supervisor::Supervisor>,
}

impl Loaded {
    /// Issues tokens (keeping those of `previous` for components that stay),
    /// writes token files and compiles policies.
    fn build(deployment: Deployment, previous: Option<&Self>) -> std::io::Result<Self> {
        let mut tokens = TokenStore::default();
        let mut policies = HashMap::new();
        for (name, component) in &deployment.components {
            let name: Arc<str> = Arc::from(name.as_str());
            // A component that stays keeps its token: its running processes
            // hold it in SVCUID.
            let token = match previous.and_then(|p| p.tokens.token_of(&name)) {
                Some(t) => t.clone(),
                None => Token::generate()?,
            };
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
        let mut cli = Vec::new();
        let (cli_policies, _) =
            ComponentPolicies::compile(&cli_identity::access_control(), &|_| None);
        for identity in cli_identity::identities(&deployment) {
            let principal: Arc<str> = Arc::from(identity.principal.as_str());
            let token = match previous.and_then(|p| p.tokens.token_of(&principal)) {
                Some(t) => t.clone(),
                None => Token::generate()?,
            };
            cli.push((identity, token.expose().to_owned()));
            tokens.insert(token, principal.clone());
            policies.insert(principal, cli_policies.clone());
        }
        Ok(Self {
            deployment: Arc::new(deployment),
            tokens,
            policies,
            cli,
        })
    }
}

impl Broker {
    /// Builds the broker for `deployment`: issues a token per component,
    /// writes requested token files and compiles every component's policies.
    pub fn new(deployment: Deployment) -> std::io::Result<Self> {
        let limits = deployment.limits.clone();
        let config_store = configstore::ConfigStore::open(&deployment);
        Ok(Self {
            loaded: RwLock::new(Arc::new(Loaded::build(deployment, None)?)),
            policy_generation: AtomicU64::new(0),
            limits,
            topics: RwLock::new(TopicIndex::new()),
            next_subscription: AtomicU64::new(1),
            shutdown: tokio::sync::watch::channel(false).0,
            runtime: std::sync::OnceLock::new(),
            config_store,
            component_updates: Arc::default(),
            iot_core: std::sync::OnceLock::new(),
        })
    }

    /// Connects the lifecycle operations to the supervisor. Without it they
    /// answer that no component is known.
    pub fn attach(&self, supervisor: &Arc<supervisor::Supervisor>) {
        let _ = self.runtime.set(Runtime {
            states: supervisor.context().states.clone(),
            supervisor: Arc::downgrade(supervisor),
        });
    }

    /// Component update subscribers, for a reload to notify.
    pub fn component_updates(&self) -> &Arc<updates::ComponentUpdates> {
        &self.component_updates
    }

    /// Components' configuration as the configuration operations see it.
    pub fn config_store(&self) -> &configstore::ConfigStore {
        &self.config_store
    }

    pub(crate) fn runtime(&self) -> Option<&Runtime> {
        self.runtime.get()
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the deployment: components that stay keep their tokens, new
    /// ones get tokens, removed ones lose theirs (their connections can no
    /// longer be opened), and every policy is recompiled, so live
    /// connections are checked against the new ones from their next
    /// operation. Returns what changed, for the supervisor.
    pub fn reload(&self, deployment: Deployment) -> std::io::Result<ReloadPlan> {
        let old = self.loaded();
        let plan = self.plan(&deployment);
        let new = Loaded::build(deployment, Some(&old))?;
        if new.deployment.limits != self.limits {
            tracing::warn!("broker limits changed in the deployment; they apply at the next start");
        }
        self.config_store.reload(&new.deployment);
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        self.policy_generation.fetch_add(1, Ordering::Release);
        Ok(plan)
    }

    /// Writes the operator identity files under `<root>/cli_ipc_info/`,
    /// naming `socket` as the path to connect to.
    pub fn write_cli_identity(&self, socket: &std::path::Path) -> std::io::Result<()> {
        let loaded = self.loaded();
        cli_identity::write_files(&loaded.deployment.root, socket, &loaded.cli)
    }

    /// What replacing the deployment with `deployment` would change.
    pub fn plan(&self, deployment: &Deployment) -> ReloadPlan {
        let old = self.deployment();
        let mut plan = ReloadPlan::default();
        for (name, component) in &deployment.components {
            match old.components.get(name) {
                None => plan.added.push(name.clone()),
                Some(previous) if previous != component => plan.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        for name in old.components.keys() {
            if !deployment.components.contains_key(name) {
                plan.removed.push(name.clone());
            }
        }
        plan
    }

    /// The deployment in force.
    pub fn deployment(&self) -> Arc<Deployment> {
        self.loaded().deployment.clone()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The token issued to `component`.
    pub fn token_of(&self, component: &str) -> Option<Token> {
        self.loaded().tokens.token_of(component).cloned()
    }

    /// The component `token` belongs to.
    pub fn component_of_token(&self, token: &str) -> Option<Arc<str>> {
        self.loaded().tokens.lookup(token)
    }

    /// Asks every connection to close cleanly.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Changes whenever the policies may have.
    pub(crate) fn policy_generation(&self) -> u64 {
        self.policy_generation.load(Ordering::Acquire)
    }

    fn is_authorized(
        &self,
        component: &str,
        destination: &str,
        operation: &str,
        resource: &str,
    ) -> bool {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        loaded
            .policies
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
            message: &pubsub::LazyMessage::ready(message),
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

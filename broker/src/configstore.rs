//! Component configuration over IPC (`semantics.md` §5.4, `protocol.md`
//! §7.4.10–§7.4.12): GetConfiguration, UpdateConfiguration,
//! SubscribeToConfigurationUpdate, and the validation pair
//! SubscribeToValidateConfigurationUpdates / SendConfigurationValidityReport.
//!
//! [`ConfigStore`] keeps each component's configuration as the nucleus does
//! (see [`tree`]): the recipe's `DefaultConfiguration` with the
//! deployment's merge, every node stamped with the deployment document's
//! modification time (the nucleus stamps deployed values with the
//! deployment's time), and over it the writes made with UpdateConfiguration,
//! stamped with their request's timestamp.
//!
//! None of these operations is authorized, as in the nucleus (§2.6): any
//! component may read and watch any other's configuration, and each writes
//! only its own. Issue 6 asked for a policy to watch another component; the
//! nucleus has none (ConfigStoreIPCEventStreamAgent makes no `isAuthorized`
//! call), and since GetConfiguration reads any component's configuration
//! freely, a policy on watching would protect nothing while breaking
//! components written for the nucleus.
//!
//! Writes survive restarts in `<root>/config/ipc-configuration.json` (see
//! [`persist`]). Each kept write remembers the deployment's value at its key
//! when it was made. When the broker starts, or SIGHUP reloads the
//! deployment, each kept write is applied over the deployment's
//! configuration again if the deployment still has that value there; if
//! the deployment has changed the key since, the deployment's value wins
//! and the write is forgotten. Timestamps do not decide this: the deployment
//! document is re-read whole, so its time says only that something in it
//! changed, not which key.

mod persist;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ggipc_protocol::model::{
    ConfigurationUpdateEvent, ConfigurationUpdateEvents, GetConfigurationRequest,
    GetConfigurationResponse, IpcError, Operation, Shape, SubscribeToConfigurationUpdateRequest,
    Timestamp, UpdateConfigurationRequest,
};
use serde_json::{Map, Value};
use tracing::{debug, info, warn};

use self::persist::{StateFile, Update, Updates};
use self::tree::{Change, Container, Millis, NodeRef};
use crate::config::Deployment;
use crate::connection::Session;

/// The kept writes' file, under `<root>/config/`.
pub const FILE_NAME: &str = "ipc-configuration.json";

/// The nucleus' answer for an unknown component or key.
const KEY_NOT_FOUND: &str = "Key not found";

/// The nucleus' answer to a stale UpdateConfiguration.
const STALE: &str = "Proposed timestamp is older than the config's latest modified timestamp";

/// The top-level keys UpdateConfiguration may not touch.
const RESTRICTED: &str = "accessControl";

/// Hands a `ConfigurationUpdateEvents` payload to one watcher's stream.
type Deliver = Box<dyn Fn(Bytes) + Send>;

/// Every component's configuration, the writes to keep, and who watches.
pub struct ConfigStore {
    inner: Mutex<Inner>,
    file: StateFile,
}

#[derive(Debug, Default)]
struct Inner {
    components: BTreeMap<String, ComponentConfig>,
    watchers: BTreeMap<u64, Watcher>,
    next_watcher: u64,
    /// Bumped by every change to the kept writes; the file's version.
    generation: u64,
}

#[derive(Debug)]
struct ComponentConfig {
    /// What the component reads: the deployment's configuration with the
    /// writes made over IPC.
    tree: Container,
    /// The deployment's configuration alone: what a write's key held in the
    /// deployment is recorded from it.
    deployment: Container,
    /// Writes made over IPC, by key path with case folded.
    updates: BTreeMap<Vec<String>, Update>,
}

struct Watcher {
    /// The component watched, as the store names it.
    component: String,
    /// The component as the watcher spelled it, echoed in events as the
    /// nucleus does.
    event_component: String,
    /// The watched node, keys as stored.
    path: Vec<String>,
    deliver: Deliver,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("component", &self.component)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for ConfigStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigStore")
            .field("file", &self.file.path())
            .finish_non_exhaustive()
    }
}

/// The clock, in milliseconds since the epoch.
fn now_ms() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
    })
}

/// The deployment document's modification time: the time of every value
/// the deployment sets. 0 when there is no file (the built-in demo).
fn deployed_at(deployment: &Deployment) -> Millis {
    std::fs::metadata(&deployment.file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| {
            Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
        })
}

/// A request timestamp (float seconds) in milliseconds. Python sends
/// `datetime.timestamp()`, microseconds in a double, so round to the
/// microsecond before truncating to the millisecond as Java's
/// `Instant.toEpochMilli` does; otherwise `x.001` may read as `x.000`.
fn to_millis(timestamp: Timestamp) -> Millis {
    let micros = (timestamp.as_secs_f64() * 1e6).round() as i64;
    micros.div_euclid(1000)
}

fn folded(path: &[String]) -> Vec<String> {
    path.iter().map(|k| tree::fold(k)).collect()
}

fn key_not_found() -> IpcError {
    IpcError::resource_not_found(KEY_NOT_FOUND)
}

impl Inner {
    /// The store's name for `component`: exactly, else ignoring case as the
    /// nucleus' service lookup does.
    fn resolve(&self, component: &str) -> Option<&str> {
        if let Some((name, _)) = self.components.get_key_value(component) {
            return Some(name);
        }
        let wanted = tree::fold(component);
        self.components
            .keys()
            .find(|name| tree::fold(name) == wanted)
            .map(String::as_str)
    }

    /// Every kept write, for the file.
    fn updates(&self) -> Updates {
        self.components
            .iter()
            .filter(|(_, c)| !c.updates.is_empty())
            .map(|(name, c)| (name.clone(), c.updates.values().cloned().collect()))
            .collect()
    }

    /// Sets every component of `deployment` up with the kept writes that
    /// still apply. Returns whether any write was forgotten.
    fn load(&mut self, deployment: &Deployment, mut kept: Updates) -> bool {
        let time = deployed_at(deployment);
        let mut forgot = false;
        self.components = deployment
            .components
            .iter()
            .map(|(name, component)| {
                let updates = kept.remove(name).unwrap_or_default();
                let (config, dropped) =
                    ComponentConfig::build(name, &component.configuration, time, updates);
                forgot |= dropped;
                (name.clone(), config)
            })
            .collect();
        for (name, updates) in kept {
            info!(
                component = %name,
                updates = updates.len(),
                "configuration updates forgotten: the component is no longer deployed"
            );
            forgot = true;
        }
        forgot
    }
}

impl ComponentConfig {
    /// The deployment's `configuration` with the kept writes over it; drops
    /// the writes whose key the deployment has changed since, or that no
    /// longer fit. Returns whether any was dropped.
    fn build(
        component: &str,
        configuration: &Value,
        time: Millis,
        updates: Vec<Update>,
    ) -> (Self, bool) {
        let empty = Map::new();
        let deployment = Container::from_json(configuration.as_object().unwrap_or(&empty), time);
        let mut tree = deployment.clone();
        let mut kept = BTreeMap::new();
        let mut dropped = false;
        for update in updates {
            if deployment.value_at(&update.key_path) != update.deployment_value {
                info!(
                    component,
                    key = ?update.key_path,
                    "the deployment changed this key after an IPC update of it; the deployment's value applies"
                );
                dropped = true;
                continue;
            }
            if let Err(e) = tree.replay(&update.key_path, &update.value, update.modified_ms) {
                info!(
                    component,
                    key = ?update.key_path,
                    "an IPC update no longer fits the deployment's configuration ({e}); forgotten"
                );
                dropped = true;
                continue;
            }
            kept.insert(folded(&update.key_path), update);
        }
        let config = Self {
            tree,
            deployment,
            updates: kept,
        };
        (config, dropped)
    }
}

/// Tells `component`'s watchers about `changes`: one event per changed or
/// removed node at or below the watched node, `keyPath` from the
/// configuration root. A watcher whose node lies inside a removed subtree
/// hears of its own node. (The nucleus' watcher stays on the detached node
/// and hears nothing more; here watching is by path, so events resume if
/// the key comes back.)
fn notify(watchers: &BTreeMap<u64, Watcher>, component: &str, changes: &[Change]) {
    for watcher in watchers.values().filter(|w| w.component == component) {
        for change in changes {
            let path = if tree::is_within(&change.path, &watcher.path) {
                &change.path
            } else if change.removed && tree::is_within(&watcher.path, &change.path) {
                &watcher.path
            } else {
                continue;
            };
            let event = ConfigurationUpdateEvents::from(ConfigurationUpdateEvent {
                component_name: watcher.event_component.clone(),
                key_path: path.clone(),
            });
            (watcher.deliver)(event.to_payload());
        }
    }
}

impl ConfigStore {
    /// The configuration of `deployment`'s components with the writes kept
    /// under its root. A file that cannot be read is set aside (renamed
    /// `….bad`) with a warning: the broker starts from the deployment's
    /// configuration rather than not at all.
    pub fn open(deployment: &Deployment) -> Self {
        let file = StateFile::new(deployment.root.join("config").join(FILE_NAME));
        let kept = match persist::read(file.path()) {
            Ok(kept) => kept.unwrap_or_default(),
            Err(e) => {
                set_aside(file.path(), &e);
                Updates::new()
            }
        };
        let mut inner = Inner::default();
        let forgot = inner.load(deployment, kept);
        let store = Self {
            inner: Mutex::new(inner),
            file,
        };
        if forgot {
            store.save_now();
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change is made whole before anything that could panic, so a
        // poisoned lock guards a consistent store.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stages the kept writes as a new generation and writes them now,
    /// blocking; failures are logged.
    fn save_now(&self) {
        let generation = {
            let mut inner = self.lock();
            inner.generation += 1;
            self.file
                .stage(inner.generation, persist::encode(inner.updates()));
            inner.generation
        };
        if let Err(e) = self.file.persist(generation) {
            warn!(
                file = %self.file.path().display(),
                error = %e,
                "cannot save configuration updates"
            );
        }
    }

    /// Applies a reloaded deployment: each component's configuration is
    /// rebuilt as at a start, watchers hear of every node that changed or
    /// went, and components no longer deployed lose their configuration and
    /// kept writes.
    pub fn reload(&self, deployment: &Deployment) {
        let forgot = {
            let mut guard = self.lock();
            let inner = &mut *guard;
            let kept = inner.updates();
            let old = std::mem::take(&mut inner.components);
            let forgot = inner.load(deployment, kept);
            let empty = Container::default();
            let names: BTreeSet<&String> = old.keys().chain(inner.components.keys()).collect();
            for name in names {
                let before = old.get(name).map_or(&empty, |c| &c.tree);
                let after = inner.components.get(name).map_or(&empty, |c| &c.tree);
                notify(&inner.watchers, name, &Container::diff(before, after));
            }
            forgot
        };
        if forgot {
            self.save_now();
        }
    }

    /// GetConfiguration's `value` for `component` at `key_path`: a
    /// container's contents, or `{<key>: <value>}` for a leaf. `None` when
    /// the component or the key is unknown.
    pub fn get(&self, component: &str, key_path: &[String]) -> Option<Value> {
        let inner = self.lock();
        let name = inner.resolve(component)?;
        match inner.components[name].tree.find(key_path)? {
            (_, NodeRef::Container(c)) => Some(c.to_visible_json()),
            (stored, NodeRef::Leaf(value)) => {
                let key = stored.last()?.clone();
                Some(Value::Object(Map::from_iter([(key, value.clone())])))
            }
        }
    }

    /// UpdateConfiguration for `component`'s own configuration, already
    /// validated. Returns the generation to persist before answering, or
    /// `None` when nothing changed.
    ///
    /// As the nucleus: a missing node at `key_path` is created, and its
    /// writes take the broker's clock instead of `timestamp`; a node
    /// modified after `timestamp` refuses the update. Unlike the nucleus,
    /// which applies the keys that are not newer before refusing, a refused
    /// update changes nothing.
    pub(crate) fn update(
        &self,
        component: &str,
        key_path: &[String],
        timestamp: Millis,
        value: &Map<String, Value>,
    ) -> Result<Option<u64>, IpcError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(config) = inner.components.get_mut(component) else {
            return Err(IpcError::invalid_arguments(format!(
                "Component config not found for component {component}"
            )));
        };
        let modtime = match config.tree.find(key_path) {
            Some((_, NodeRef::Container(node))) if node.modtime() > timestamp => {
                return Err(IpcError::failed_update_condition_check(STALE));
            }
            Some(_) => timestamp,
            None => now_ms(),
        };
        let written = config
            .tree
            .merge(key_path, value, modtime)
            .map_err(|e| IpcError::invalid_arguments(e.to_string()))?;
        if written.is_empty() {
            return Ok(None);
        }
        let mut changes = Vec::with_capacity(written.len());
        for w in written {
            if !w.value.is_object() {
                changes.push(Change {
                    path: w.path.clone(),
                    removed: false,
                });
            }
            let deployment_value = config.deployment.value_at(&w.path);
            config.updates.insert(
                folded(&w.path),
                Update {
                    key_path: w.path,
                    value: w.value,
                    modified_ms: modtime,
                    deployment_value,
                },
            );
        }
        notify(&inner.watchers, component, &changes);
        inner.generation += 1;
        self.file
            .stage(inner.generation, persist::encode(inner.updates()));
        Ok(Some(inner.generation))
    }

    /// Returns once generation `generation` of the kept writes, or a later
    /// one, is on disk. Blocks on file I/O.
    pub(crate) fn persist(&self, generation: u64) -> std::io::Result<()> {
        self.file.persist(generation)
    }

    /// Watches `key_path` of `component` (which must exist) for changes.
    /// `before` runs once the watch is sure to succeed and before any event
    /// can be delivered: it sends the response.
    fn watch(
        &self,
        component: &str,
        key_path: &[String],
        deliver: Deliver,
        before: impl FnOnce(),
    ) -> Result<u64, IpcError> {
        let mut inner = self.lock();
        let name = inner.resolve(component).ok_or_else(key_not_found)?;
        let (path, _) = inner.components[name]
            .tree
            .find(key_path)
            .ok_or_else(key_not_found)?;
        let name = name.to_owned();
        before();
        inner.next_watcher += 1;
        let id = inner.next_watcher;
        inner.watchers.insert(
            id,
            Watcher {
                component: name,
                event_component: component.to_owned(),
                path,
                deliver,
            },
        );
        Ok(id)
    }

    fn unwatch(&self, id: u64) {
        self.lock().watchers.remove(&id);
    }

    /// Where the kept writes are saved.
    pub fn file_path(&self) -> &Path {
        self.file.path()
    }
}

/// Renames an unreadable file out of the way, so the next save does not
/// silently destroy what an operator may want to recover.
fn set_aside(path: &Path, error: &str) {
    let mut bad = path.as_os_str().to_owned();
    bad.push(".bad");
    let renamed = std::fs::rename(path, &bad);
    warn!(
        file = %path.display(),
        error,
        set_aside_as = %Path::new(&bad).display(),
        moved = renamed.is_ok(),
        "cannot read the saved configuration updates; starting from the deployment's configuration"
    );
}

/// Serves `operation` if it is one of this module's; returns whether it was.
pub(crate) fn handle(
    session: &mut Session,
    operation: Operation,
    stream_id: i32,
    payload: &Bytes,
) -> bool {
    match operation {
        Operation::GetConfiguration => get_configuration(session, stream_id, payload),
        Operation::UpdateConfiguration => update_configuration(session, stream_id, payload),
        Operation::SubscribeToConfigurationUpdate => {
            subscribe_to_configuration_update(session, stream_id, payload);
        }
        Operation::SubscribeToValidateConfigurationUpdates => {
            subscribe_to_validate_configuration_updates(session, stream_id);
        }
        Operation::SendConfigurationValidityReport => {
            send_configuration_validity_report(session, stream_id);
        }
        _ => return false,
    }
    true
}

fn parse<T: Shape>(payload: &Bytes) -> Result<T, IpcError> {
    T::from_payload(payload).map_err(|e| {
        let name = T::ID.trim_start_matches("aws.greengrass#");
        IpcError::invalid_arguments(format!("request is not a {name}: {e}"))
    })
}

/// GetConfiguration: the caller's or any other component's configuration,
/// no authorization (the nucleus has none). A missing `keyPath` reads the
/// whole configuration, as in the nucleus, though the model requires it.
fn get_configuration(session: &Session, stream_id: i32, payload: &Bytes) {
    let request = match parse::<GetConfigurationRequest>(payload) {
        Ok(r) => r,
        Err(e) => return session.error(stream_id, &e),
    };
    let component = request
        .component_name
        .unwrap_or_else(|| session.component.to_string());
    let key_path = request.key_path.unwrap_or_default();
    match session.broker.config_store().get(&component, &key_path) {
        Some(value) => session.respond(
            stream_id,
            Operation::GetConfiguration,
            GetConfigurationResponse {
                component_name: Some(component),
                value: Some(value),
            }
            .to_payload(),
        ),
        None => session.error(stream_id, &key_not_found()),
    }
}

/// Whether an update at `key_path` of `value` touches a restricted
/// top-level key. The nucleus compares case-sensitively although its store
/// is not, so `AccessControl` slips through there and rewrites the
/// policies' node; here the comparison ignores case.
fn touches_restricted(key_path: &[String], value: &Map<String, Value>) -> bool {
    match key_path.first() {
        Some(first) => first.eq_ignore_ascii_case(RESTRICTED),
        None => value.keys().any(|k| k.eq_ignore_ascii_case(RESTRICTED)),
    }
}

/// UpdateConfiguration: merges into the caller's own configuration and
/// answers once the change is on disk, so an answered update survives even
/// a crash. The file is written off the runtime thread.
fn update_configuration(session: &mut Session, stream_id: i32, payload: &Bytes) {
    let request = match parse::<UpdateConfigurationRequest>(payload) {
        Ok(r) => r,
        Err(e) => return session.error(stream_id, &e),
    };
    // The nucleus' checks, in its order and words.
    let Some(timestamp) = request.timestamp else {
        return session.error(
            stream_id,
            &IpcError::invalid_arguments("Timestamp is required"),
        );
    };
    let value = match request.value_to_merge {
        None => {
            return session.error(
                stream_id,
                &IpcError::invalid_arguments("ValueToMerge is required"),
            );
        }
        Some(Value::Object(map)) => map,
        Some(_) => {
            return session.error(
                stream_id,
                &IpcError::invalid_arguments("ValueToMerge must be a JSON object"),
            );
        }
    };
    let key_path = request.key_path.unwrap_or_default();
    if touches_restricted(&key_path, &value) {
        return session.error(
            stream_id,
            &IpcError::invalid_arguments(format!(
                "Config update is not allowed for following fields [{RESTRICTED}]"
            )),
        );
    }
    let store = session.broker.config_store();
    match store.update(&session.component, &key_path, to_millis(timestamp), &value) {
        Err(e) => {
            debug!(component = %session.component, error = %e, "UpdateConfiguration refused");
            session.error(stream_id, &e);
        }
        Ok(None) => session.respond_empty(stream_id, Operation::UpdateConfiguration),
        Ok(Some(generation)) => {
            let broker = session.broker.clone();
            let sink = session.stream_sink(stream_id);
            let component = session.component.clone();
            tokio::task::spawn_blocking(move || match broker.config_store().persist(generation) {
                Ok(()) => sink.respond(Operation::UpdateConfiguration, Bytes::from_static(b"{}")),
                Err(e) => {
                    warn!(
                        component = %component,
                        file = %broker.config_store().file_path().display(),
                        error = %e,
                        "cannot save a configuration update"
                    );
                    sink.send_error(&IpcError::service(format!(
                        "the configuration was updated but could not be saved, so a restart \
                             would lose it: {e}"
                    )));
                }
            });
        }
    }
}

/// SubscribeToConfigurationUpdate: the caller's or another component's
/// node (no policy needed, as in the nucleus; see the module docs). The
/// response goes out before the watch exists, so no event precedes it.
fn subscribe_to_configuration_update(session: &mut Session, stream_id: i32, payload: &Bytes) {
    let request = match parse::<SubscribeToConfigurationUpdateRequest>(payload) {
        Ok(r) => r,
        Err(e) => return session.error(stream_id, &e),
    };
    if let Some(e) = session.stream_limit_error() {
        return session.error(stream_id, &e);
    }
    let component = request
        .component_name
        .unwrap_or_else(|| session.component.to_string());
    let key_path = request.key_path.unwrap_or_default();
    let sink = session.stream_sink(stream_id);
    let deliver: Deliver = Box::new(move |payload| {
        // A full queue drops or disconnects as for pub/sub; the store
        // carries on either way.
        let _ = sink.send_event(ConfigurationUpdateEvents::ID, payload);
    });
    let broker = session.broker.clone();
    let watched = broker
        .config_store()
        .watch(&component, &key_path, deliver, || {
            session.respond_empty(stream_id, Operation::SubscribeToConfigurationUpdate);
        });
    match watched {
        Ok(id) => {
            debug!(component = %session.component, watched = %component, key = ?key_path, "watching configuration");
            session.open_stream(
                stream_id,
                Box::new(move || broker.config_store().unwatch(id)),
            );
        }
        Err(e) => session.error(stream_id, &e),
    }
}

/// SubscribeToValidateConfigurationUpdates: accepted, no policy needed.
/// Validation events come only with deployments that ask components to
/// validate, which ggipc never makes, so the stream stays open and silent
/// until the client closes it.
fn subscribe_to_validate_configuration_updates(session: &mut Session, stream_id: i32) {
    if let Some(e) = session.stream_limit_error() {
        return session.error(stream_id, &e);
    }
    session.respond_empty(
        stream_id,
        Operation::SubscribeToValidateConfigurationUpdates,
    );
    session.open_stream(stream_id, Box::new(|| {}));
}

/// SendConfigurationValidityReport: with no validation ever pending, the
/// nucleus' answer for a report nobody asked for.
fn send_configuration_validity_report(session: &Session, stream_id: i32) {
    session.error(
        stream_id,
        &IpcError::invalid_arguments("Validation request either timed out or was never made"),
    );
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::config;

    /// A deployment under `dir` whose components have these default
    /// configurations.
    fn deployment(dir: &Path, components: &[(&str, Value)]) -> Deployment {
        let recipes = dir.join("recipes");
        std::fs::create_dir_all(&recipes).unwrap();
        let mut doc = String::from("recipeDir: recipes\ncomponents:\n");
        for (name, defaults) in components {
            let recipe = json!({
                "RecipeFormatVersion": "2020-01-25",
                "ComponentName": name,
                "ComponentVersion": "1.0.0",
                "ComponentConfiguration": {"DefaultConfiguration": defaults},
            });
            std::fs::write(
                recipes.join(format!("{name}-1.0.0.json")),
                recipe.to_string(),
            )
            .unwrap();
            doc.push_str(&format!("  {name}:\n    componentVersion: 1.0.0\n"));
        }
        config::from_text(&doc, Path::new("<test>"), dir, Some(&dir.join("root"))).unwrap()
    }

    fn path(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    /// Watches and collects the events' `keyPath`s as `a/b` strings.
    fn watch(store: &ConfigStore, component: &str, keys: &[&str]) -> Arc<Mutex<Vec<String>>> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let expected_component = component.to_owned();
        store
            .watch(
                component,
                &path(keys),
                Box::new(move |payload: Bytes| {
                    let event: Value = serde_json::from_slice(&payload).unwrap();
                    let event = &event["configurationUpdateEvent"];
                    assert_eq!(event["componentName"], json!(expected_component));
                    let keys: Vec<&str> = event["keyPath"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|k| k.as_str().unwrap())
                        .collect();
                    sink.lock().unwrap().push(keys.join("/"));
                }),
                || {},
            )
            .unwrap();
        events
    }

    fn taken(events: &Mutex<Vec<String>>) -> Vec<String> {
        std::mem::take(&mut *events.lock().unwrap())
    }

    #[test]
    fn get_wraps_a_leaf_and_shows_a_container_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(
            dir.path(),
            &[(
                "com.example.A",
                json!({"mqtt": {"port": 8883, "_secret": 1}, "n": [1]}),
            )],
        );
        let store = ConfigStore::open(&d);
        assert_eq!(
            store.get("com.example.A", &path(&["mqtt", "port"])),
            Some(json!({"port": 8883}))
        );
        assert_eq!(
            store.get("com.example.A", &path(&["MQTT"])),
            Some(json!({"port": 8883}))
        );
        assert_eq!(
            store.get("COM.example.a", &[]),
            Some(json!({"mqtt": {"port": 8883}, "n": [1]}))
        );
        assert_eq!(store.get("com.example.A", &path(&["mqtt", "host"])), None);
        assert_eq!(store.get("com.example.Other", &[]), None);
    }

    #[test]
    fn updates_merge_and_watchers_hear_of_nodes_at_or_below_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(
            dir.path(),
            &[
                ("c.A", json!({"a": {"x": 1, "leaf": 1}, "b": 1})),
                ("c.B", json!({})),
            ],
        );
        let store = ConfigStore::open(&d);
        let root = watch(&store, "c.A", &[]);
        let below_a = watch(&store, "c.A", &["A"]);
        let leaf = watch(&store, "c.A", &["a", "leaf"]);
        let other = watch(&store, "c.A", &["b"]);
        let other_component = watch(&store, "c.B", &[]);
        let generation = store
            .update(
                "c.A",
                &path(&["a"]),
                2_000,
                &map(json!({"x": 2, "new": {"y": true}, "leaf": 1, "empty": {}})),
            )
            .unwrap();
        assert_eq!(generation, Some(1));
        assert_eq!(
            store.get("c.A", &[]),
            Some(json!({"a": {"x": 2, "leaf": 1, "new": {"y": true}, "empty": {}}, "b": 1}))
        );
        // Serde's map is ordered, so the leaves come in key order; the
        // container created empty is no event.
        assert_eq!(taken(&root), ["a/new/y", "a/x"].map(String::from));
        assert_eq!(taken(&below_a), ["a/new/y", "a/x"].map(String::from));
        assert!(taken(&leaf).is_empty(), "the leaf kept its value");
        assert!(taken(&other).is_empty());
        assert!(taken(&other_component).is_empty());
        store
            .update("c.A", &path(&["a"]), 2_001, &map(json!({"leaf": 2})))
            .unwrap();
        assert_eq!(taken(&leaf), ["a/leaf"]);
        assert_eq!(taken(&root), ["a/leaf"]);
        // Nothing changed: no event, no new generation.
        assert_eq!(
            store
                .update("c.A", &[], 2_002, &map(json!({"b": 1})))
                .unwrap(),
            None
        );
        assert!(taken(&root).is_empty());
    }

    #[test]
    fn an_update_is_an_event_of_its_own_keys_only_once_empty_containers_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(dir.path(), &[("c.A", json!({}))]);
        let store = ConfigStore::open(&d);
        let root = watch(&store, "c.A", &[]);
        store
            .update("c.A", &[], 1, &map(json!({"box": {}})))
            .unwrap();
        assert!(taken(&root).is_empty(), "an empty container is no event");
    }

    #[test]
    fn a_stale_update_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(dir.path(), &[("c.A", json!({"a": {"x": 1, "y": 1}}))]);
        let store = ConfigStore::open(&d);
        store
            .update("c.A", &path(&["a"]), 5_000, &map(json!({"x": 2})))
            .unwrap();
        let err = store
            .update("c.A", &path(&["a"]), 4_000, &map(json!({"y": 3})))
            .unwrap_err();
        assert_eq!(err, IpcError::failed_update_condition_check(STALE));
        // Applied nothing, although y itself is older than the request.
        assert_eq!(store.get("c.A", &path(&["a", "y"])), Some(json!({"y": 1})));
        // A newer update of another branch is not stale for this one.
        store
            .update("c.A", &[], 6_000, &map(json!({"b": 1})))
            .unwrap();
        assert!(
            store
                .update("c.A", &path(&["a"]), 5_000, &map(json!({"y": 3})))
                .is_ok()
        );
        // At the root it is.
        assert!(
            store
                .update("c.A", &[], 5_500, &map(json!({"y": 3})))
                .is_err()
        );
    }

    #[test]
    fn a_created_node_takes_the_broker_clock() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(dir.path(), &[("c.A", json!({}))]);
        let store = ConfigStore::open(&d);
        let before = now_ms();
        store
            .update("c.A", &path(&["new"]), 1, &map(json!({"x": 1})))
            .unwrap();
        // The node now carries the clock's time, so the same old timestamp
        // is stale, as in the nucleus.
        let err = store
            .update("c.A", &path(&["new"]), before - 1, &map(json!({"x": 2})))
            .unwrap_err();
        assert_eq!(err, IpcError::failed_update_condition_check(STALE));
        assert!(
            store
                .update("c.A", &path(&["new"]), now_ms() + 1, &map(json!({"x": 2})))
                .is_ok()
        );
    }

    #[test]
    fn a_kind_change_or_an_unknown_component_is_an_invalid_argument() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(dir.path(), &[("c.A", json!({"leaf": 1}))]);
        let store = ConfigStore::open(&d);
        let err = store
            .update("c.A", &path(&["leaf"]), 10, &map(json!({"x": 1})))
            .unwrap_err();
        assert_eq!(
            err,
            IpcError::invalid_arguments("leaf is already a leaf, cannot become a container")
        );
        let err = store.update("c.B", &[], 10, &map(json!({}))).unwrap_err();
        assert_eq!(
            err,
            IpcError::invalid_arguments("Component config not found for component c.B")
        );
    }

    #[test]
    fn watching_a_missing_node_fails_before_the_response() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(dir.path(), &[("c.A", json!({"a": 1}))]);
        let store = ConfigStore::open(&d);
        let mut responded = false;
        let err = store
            .watch("c.A", &path(&["b"]), Box::new(|_| {}), || responded = true)
            .unwrap_err();
        assert_eq!(err, key_not_found());
        assert!(!responded);
        let err = store
            .watch("c.Z", &[], Box::new(|_| {}), || responded = true)
            .unwrap_err();
        assert_eq!(err, key_not_found());
        let id = store
            .watch("c.A", &path(&["A"]), Box::new(|_| {}), || responded = true)
            .unwrap();
        assert!(responded);
        store.unwatch(id);
        assert!(store.lock().watchers.is_empty());
    }

    #[test]
    fn updates_survive_reopening_with_their_times_in_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(dir.path(), &[("c.A", json!({"a": {"x": 1}}))]);
        let store = ConfigStore::open(&d);
        assert!(
            !store.file_path().exists(),
            "nothing written before an update"
        );
        let generation = store
            .update("c.A", &path(&["a"]), 9_000, &map(json!({"x": 2, "e": {}})))
            .unwrap()
            .unwrap();
        store.persist(generation).unwrap();
        let mode = std::fs::metadata(store.file_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(store);

        let store = ConfigStore::open(&d);
        assert_eq!(store.get("c.A", &[]), Some(json!({"a": {"x": 2, "e": {}}})));
        // The time came back too: an older update is still stale.
        assert!(
            store
                .update("c.A", &path(&["a"]), 8_000, &map(json!({"x": 3})))
                .is_err()
        );
    }

    #[test]
    fn a_key_the_deployment_changed_takes_its_value_and_others_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let first = deployment(dir.path(), &[("c.A", json!({"a": 1, "b": 1}))]);
        let store = ConfigStore::open(&first);
        let generation = store
            .update("c.A", &[], 100, &map(json!({"a": 5, "b": 5, "c": 5})))
            .unwrap()
            .unwrap();
        store.persist(generation).unwrap();
        drop(store);

        let second = deployment(dir.path(), &[("c.A", json!({"a": 2, "b": 1}))]);
        let store = ConfigStore::open(&second);
        assert_eq!(store.get("c.A", &[]), Some(json!({"a": 2, "b": 5, "c": 5})));
        // The forgotten write is gone from the file as well.
        let kept = persist::read(store.file_path()).unwrap().unwrap();
        let keys: Vec<&Vec<String>> = kept["c.A"].iter().map(|u| &u.key_path).collect();
        assert_eq!(keys, [&path(&["b"]), &path(&["c"])]);
        // Back to the first deployment: a differs from the recorded value
        // again, b and c still stand.
        drop(store);
        let store = ConfigStore::open(&first);
        assert_eq!(store.get("c.A", &[]), Some(json!({"a": 1, "b": 5, "c": 5})));
    }

    #[test]
    fn a_component_no_longer_deployed_loses_its_updates() {
        let dir = tempfile::tempdir().unwrap();
        let both = deployment(dir.path(), &[("c.A", json!({})), ("c.B", json!({}))]);
        let store = ConfigStore::open(&both);
        let generation = store
            .update("c.B", &[], 1, &map(json!({"k": 1})))
            .unwrap()
            .unwrap();
        store.persist(generation).unwrap();
        drop(store);
        let only_a = deployment(dir.path(), &[("c.A", json!({}))]);
        drop(ConfigStore::open(&only_a));
        let store = ConfigStore::open(&both);
        assert_eq!(store.get("c.B", &[]), Some(json!({})));
    }

    #[test]
    fn a_reload_rebuilds_and_tells_watchers_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let first = deployment(
            dir.path(),
            &[(
                "c.A",
                json!({"keep": 1, "change": 1, "drop": {"x": 1}, "mine": 1}),
            )],
        );
        let store = ConfigStore::open(&first);
        store
            .update("c.A", &[], 10, &map(json!({"mine": 2})))
            .unwrap();
        let root = watch(&store, "c.A", &[]);
        let inside_dropped = watch(&store, "c.A", &["drop", "x"]);
        let second = deployment(
            dir.path(),
            &[(
                "c.A",
                json!({"keep": 1, "change": 2, "mine": 1, "added": 1}),
            )],
        );
        store.reload(&second);
        assert_eq!(
            store.get("c.A", &[]),
            Some(json!({"keep": 1, "change": 2, "mine": 2, "added": 1}))
        );
        assert_eq!(taken(&root), ["change", "drop", "added"].map(String::from));
        assert_eq!(taken(&inside_dropped), ["drop/x"]);
    }

    #[test]
    fn an_unreadable_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(dir.path(), &[("c.A", json!({"a": 1}))]);
        let file = d.root.join("config").join(FILE_NAME);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"{not json").unwrap();
        let store = ConfigStore::open(&d);
        assert_eq!(store.get("c.A", &[]), Some(json!({"a": 1})));
        assert!(!file.exists());
        let mut bad = file.into_os_string();
        bad.push(".bad");
        assert_eq!(std::fs::read(bad).unwrap(), b"{not json");
    }

    #[test]
    fn concurrent_persists_write_the_latest_generation() {
        let dir = tempfile::tempdir().unwrap();
        let d = deployment(dir.path(), &[("c.A", json!({}))]);
        let store = ConfigStore::open(&d);
        let first = store
            .update("c.A", &[], 1, &map(json!({"k": 1})))
            .unwrap()
            .unwrap();
        let second = store
            .update("c.A", &[], 2, &map(json!({"k": 2})))
            .unwrap()
            .unwrap();
        // The older request writes the newer contents; the newer one then
        // finds its generation on disk.
        store.persist(first).unwrap();
        std::fs::remove_file(store.file_path()).unwrap();
        store.persist(second).unwrap();
        assert!(
            !store.file_path().exists(),
            "the second persist had nothing to do"
        );
        store.persist(first).unwrap();
        drop(store);
    }

    #[test]
    fn request_timestamps_become_milliseconds() {
        assert_eq!(
            to_millis(Timestamp::from_secs_f64(1_704_164_645.001)),
            1_704_164_645_001
        );
        assert_eq!(to_millis(Timestamp::from_secs_f64(1.9999)), 1_999);
        assert_eq!(to_millis(Timestamp::from_secs_f64(-0.5)), -500);
        assert_eq!(to_millis(Timestamp::from_secs_f64(0.0)), 0);
    }

    #[test]
    fn access_control_is_restricted_in_any_case() {
        assert!(touches_restricted(&[], &map(json!({"accessControl": {}}))));
        assert!(touches_restricted(&[], &map(json!({"AccessControl": {}}))));
        assert!(touches_restricted(
            &path(&["accesscontrol", "x"]),
            &map(json!({}))
        ));
        assert!(!touches_restricted(
            &path(&["x"]),
            &map(json!({"accessControl": 1}))
        ));
        assert!(!touches_restricted(&[], &map(json!({"access": 1}))));
    }
}

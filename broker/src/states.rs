//! Component lifecycle states (`semantics.md` §5.1), shared by the
//! supervisor, the Lambda launcher and the lifecycle operations.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

/// The eight states IPC exposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LifecycleState {
    /// Known, nothing run yet.
    New,
    /// `install` succeeded.
    Installed,
    /// `startup` is running (or the component has not reported RUNNING).
    Starting,
    /// Running.
    Running,
    /// Being stopped.
    Stopping,
    /// Failed; may be retried.
    Errored,
    /// Failed too often; not retried.
    Broken,
    /// Done: `run` exited 0, or the component was stopped.
    Finished,
}

impl LifecycleState {
    /// The wire name (`RUNNING`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Installed => "INSTALLED",
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Stopping => "STOPPING",
            Self::Errored => "ERRORED",
            Self::Broken => "BROKEN",
            Self::Finished => "FINISHED",
        }
    }
}

impl fmt::Display for LifecycleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Current state and version of every component.
#[derive(Debug, Default)]
pub struct ComponentStates {
    states: Mutex<BTreeMap<String, (LifecycleState, String)>>,
    changed: tokio::sync::Notify,
}

impl ComponentStates {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (LifecycleState, String)>> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `component` at `version` in state NEW.
    pub fn register(&self, component: &str, version: &str) {
        self.lock().insert(
            component.to_owned(),
            (LifecycleState::New, version.to_owned()),
        );
        self.changed.notify_waiters();
    }

    /// Forgets `component` (removed by a new deployment).
    pub fn remove(&self, component: &str) {
        self.lock().remove(component);
        self.changed.notify_waiters();
    }

    /// Moves `component` to `state`, logging the change.
    pub fn set(&self, component: &str, state: LifecycleState) {
        let mut states = self.lock();
        if let Some(entry) = states.get_mut(component)
            && entry.0 != state
        {
            tracing::info!(component, from = %entry.0, to = %state, "component state");
            entry.0 = state;
        }
        drop(states);
        self.changed.notify_waiters();
    }

    /// The state of `component`, if it is known.
    pub fn get(&self, component: &str) -> Option<LifecycleState> {
        self.lock().get(component).map(|e| e.0)
    }

    /// Every component with its state and version, by name.
    pub fn all(&self) -> Vec<(String, LifecycleState, String)> {
        self.lock()
            .iter()
            .map(|(n, (s, v))| (n.clone(), *s, v.clone()))
            .collect()
    }

    /// Waits, without end, until `component` is in `state`.
    pub async fn until(&self, component: &str, state: LifecycleState) {
        loop {
            let notified = self.changed.notified();
            if self.get(component) == Some(state) {
                return;
            }
            notified.await;
        }
    }

    /// Waits until at least one of `components` is in one of `wanted`, or
    /// `timeout` passes; returns those that are. All are watched for the
    /// whole time: a component that fails while another is waited on is not
    /// missed, nor one that recovers before its turn would have come.
    pub async fn wait_for_any(
        &self,
        components: &[String],
        wanted: &[LifecycleState],
        timeout: std::time::Duration,
    ) -> Vec<String> {
        if components.is_empty() {
            return Vec::new();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let reached: Vec<String> = components
                .iter()
                .filter(|c| self.get(c).is_some_and(|s| wanted.contains(&s)))
                .cloned()
                .collect();
            if !reached.is_empty() || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return reached;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waiting_for_any_sees_a_failure_of_each_component_at_any_time() {
        let states = Arc::new(ComponentStates::default());
        let names = ["a".to_owned(), "b".to_owned()];
        for n in &names {
            states.register(n, "1.0.0");
            states.set(n, LifecycleState::Running);
        }
        let wanted = [LifecycleState::Errored, LifecycleState::Broken];
        // Nothing to watch: no wait at all.
        let none = states
            .wait_for_any(&[], &wanted, Duration::from_secs(30))
            .await;
        assert!(none.is_empty());
        // Nothing fails: the whole window passes and nobody is named.
        let none = states
            .wait_for_any(&names, &wanted, Duration::from_millis(50))
            .await;
        assert!(none.is_empty());
        // The second one fails while the first is still fine: found at
        // once, not after the first's share of the window.
        let setter = states.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            setter.set("b", LifecycleState::Errored);
        });
        let failed = states
            .wait_for_any(&names, &wanted, Duration::from_secs(30))
            .await;
        assert_eq!(failed, ["b"]);
    }
}

//! The component supervisor: runs each component's recipe lifecycle, gives
//! it its identity and environment, records its output in its log, tracks
//! its state, and stops it without leaving processes behind.
//!
//! States (`semantics.md` §5.1):
//!
//! ```text
//! NEW --install ok--> INSTALLED --> STARTING --startup ok / run launched--> RUNNING
//! RUNNING --run exits 0--> FINISHED        no startup and no run --> FINISHED
//! any step fails --> ERRORED --retry--> (again from install)
//! three errors in a row --> BROKEN (no more retries)
//! stop: STOPPING --SIGTERM to the group, SIGKILL after the grace--> FINISHED
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::Broker;
use crate::config::Component;
use crate::logs::{ComponentLog, LogConfig};
use crate::states::{ComponentStates, LifecycleState};

/// Errors in a row after which a component is BROKEN.
const ERRORS_TO_BROKEN: usize = 3;
/// Errors older than this no longer count towards BROKEN (the nucleus'
/// `errorResetTime` default).
const ERROR_RESET_TIME: Duration = Duration::from_secs(3600);
/// Why an attempt failed when the component said so itself.
const REPORTED_ERRORED: &str = "the component reported ERRORED";
/// Time a process group gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Default step timeouts, as the nucleus has them.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(120);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// What the supervisor and the Lambda launcher need to start processes.
#[derive(Debug, Clone)]
pub struct LaunchContext {
    /// The broker, for tokens, configuration and local pub/sub.
    pub broker: Arc<Broker>,
    /// Where component states are kept.
    pub states: Arc<ComponentStates>,
    /// Where logs go.
    pub logs: LogConfig,
    /// The socket path components are told to connect to.
    pub socket: PathBuf,
}

impl LaunchContext {
    /// The environment every process of `component` gets (`protocol.md` §5).
    pub fn environment(&self, component: &str) -> Vec<(String, String)> {
        let deployment = self.broker.deployment();
        let token = self
            .broker
            .token_of(component)
            .map(|t| t.expose().to_owned())
            .unwrap_or_default();
        let socket = self.socket.display().to_string();
        let mut env = vec![
            (
                "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT".to_owned(),
                socket.clone(),
            ),
            ("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH".to_owned(), socket),
            ("SVCUID".to_owned(), token.clone()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN".to_owned(), token),
            (
                "GG_ROOT_CA_PATH".to_owned(),
                deployment.root_ca_path.clone().unwrap_or_default(),
            ),
        ];
        if let Some(thing) = &deployment.thing_name {
            env.push(("AWS_IOT_THING_NAME".to_owned(), thing.clone()));
        }
        if let Some(region) = &deployment.aws_region {
            env.push(("AWS_REGION".to_owned(), region.clone()));
            env.push(("AWS_DEFAULT_REGION".to_owned(), region.clone()));
        }
        env
    }

    /// `<root>/work/<component>`, created if missing.
    pub fn work_dir(&self, component: &str) -> std::io::Result<PathBuf> {
        let dir = self.broker.deployment().root.join("work").join(component);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The component's log.
    pub fn log(&self, component: &str) -> ComponentLog {
        ComponentLog::new(self.logs.clone(), component)
    }
}

/// One lifecycle step of a recipe.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    /// Shell script, run with `sh -c`.
    pub script: String,
    /// Time limit.
    pub timeout: Option<Duration>,
    /// Run as the broker's user even when `runWith.posixUser` is set.
    pub requires_privilege: bool,
    /// Step-level environment.
    pub setenv: Vec<(String, String)>,
}

/// The lifecycle of the manifest that applies to Linux.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycle {
    /// Component-wide environment.
    pub setenv: Vec<(String, String)>,
    /// `install`.
    pub install: Option<Step>,
    /// `startup`: background start, RUNNING when it exits 0.
    pub startup: Option<Step>,
    /// `run`: the foreground process, RUNNING once launched.
    pub run: Option<Step>,
    /// `shutdown`: run after the processes are stopped.
    pub shutdown: Option<Step>,
}

fn get_ci<'v>(map: &'v serde_json::Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn env_map(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn step(v: Option<&Value>) -> Option<Step> {
    match v? {
        Value::String(script) => Some(Step {
            script: script.clone(),
            ..Step::default()
        }),
        Value::Object(m) => {
            let script = get_ci(m, "Script")?.as_str()?.to_owned();
            let timeout = get_ci(m, "Timeout").and_then(|t| {
                t.as_u64()
                    .or_else(|| t.as_str().and_then(|s| s.parse().ok()))
            });
            let requires_privilege = get_ci(m, "RequiresPrivilege")
                .is_some_and(|p| p.as_bool().unwrap_or_else(|| p.as_str() == Some("true")));
            Some(Step {
                script,
                timeout: timeout.map(Duration::from_secs),
                requires_privilege,
                setenv: env_map(get_ci(m, "Setenv")),
            })
        }
        _ => None,
    }
}

/// Reads the lifecycle of the first manifest for `os: linux` (or any OS).
pub fn lifecycle_of(recipe: &Value) -> Lifecycle {
    let Some(recipe) = recipe.as_object() else {
        return Lifecycle::default();
    };
    let manifests = get_ci(recipe, "Manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let manifest = manifests.iter().find(|m| {
        let os = m
            .get("Platform")
            .and_then(|p| p.get("os"))
            .and_then(Value::as_str);
        matches!(os, None | Some("linux" | "*" | "all"))
    });
    let lifecycle = manifest
        .and_then(|m| m.as_object())
        .and_then(|m| get_ci(m, "Lifecycle"))
        .or_else(|| get_ci(recipe, "Lifecycle"))
        .and_then(Value::as_object);
    let Some(l) = lifecycle else {
        return Lifecycle::default();
    };
    Lifecycle {
        setenv: env_map(get_ci(l, "Setenv").or_else(|| get_ci(l, "setenv"))),
        install: step(get_ci(l, "install")),
        startup: step(get_ci(l, "startup")),
        run: step(get_ci(l, "run")),
        shutdown: step(get_ci(l, "shutdown")),
    }
}

/// Replaces recipe variables in `text` for `component`.
pub fn interpolate(ctx: &LaunchContext, component: &Component, text: &str) -> String {
    let deployment = ctx.broker.deployment();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let body = &after[..close];
        // `{component:namespace:key}` names another component.
        let parts: Vec<&str> = body.splitn(3, ':').collect();
        let (target, ns, key) = match parts.as_slice() {
            [ns, key] => (component, *ns, *key),
            [other, ns, key] => match deployment.components.get(*other) {
                Some(c) => (c, *ns, *key),
                None => {
                    out.push('{');
                    out.push_str(body);
                    out.push('}');
                    rest = &after[close + 1..];
                    continue;
                }
            },
            _ => {
                out.push('{');
                out.push_str(body);
                out.push('}');
                rest = &after[close + 1..];
                continue;
            }
        };
        let artifacts = || {
            deployment
                .artifact_dir
                .as_ref()
                .map(|d| d.join(&target.name).join(&target.version))
                .unwrap_or_else(|| {
                    deployment
                        .root
                        .join("packages/artifacts")
                        .join(&target.name)
                        .join(&target.version)
                })
        };
        let value = match (ns, key) {
            ("artifacts", "path") => Some(artifacts().display().to_string()),
            // Archives are not unpacked (see the README); the decompressed
            // path is the artifacts folder itself.
            ("artifacts", "decompressedPath") => Some(artifacts().display().to_string()),
            ("work", "path") => Some(
                deployment
                    .root
                    .join("work")
                    .join(&target.name)
                    .display()
                    .to_string(),
            ),
            ("kernel", "rootPath") => Some(deployment.root.display().to_string()),
            ("iot", "thingName") => deployment.thing_name.clone(),
            // The live configuration: updates made over IPC count.
            ("configuration", pointer) => ctx
                .broker
                .config_store()
                .get(&target.name, &[])
                .unwrap_or_else(|| target.configuration.clone())
                .pointer(pointer)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&v),
            None => {
                out.push('{');
                out.push_str(body);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `user` or `user:group` → (uid, gid), from the system's databases.
fn lookup_user(spec: &str) -> Result<(u32, u32), String> {
    let (user, group) = spec
        .split_once(':')
        .map_or((spec, None), |(u, g)| (u, Some(g)));
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 3 && (f[0] == user || f[2] == user))
        .ok_or_else(|| format!("no user {user:?}"))?;
    let uid: u32 = entry[2].parse().map_err(|_| "bad uid".to_owned())?;
    let mut gid: u32 = entry[3].parse().map_err(|_| "bad gid".to_owned())?;
    if let Some(group) = group {
        let groups = std::fs::read_to_string("/etc/group").map_err(|e| e.to_string())?;
        gid = groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && (f[0] == group || f[2] == group))
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| format!("no group {group:?}"))?;
    }
    Ok((uid, gid))
}

/// A running component process: its group is killed when stopped or
/// dropped.
#[derive(Debug)]
struct Running {
    child: Child,
    pgid: Option<i32>,
    /// The task copying the script's stdout and stderr to its log.
    output: Option<tokio::task::JoinHandle<()>>,
}

/// How long the end of a step waits for the rest of its output. The pipes
/// close when the last writer exits: at once when the step's group was
/// killed, unless a process left the group (setsid); later when the step
/// left children running on purpose (a shutdown step's), which this bounds.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

impl Running {
    fn new(child: Child, output: tokio::task::JoinHandle<()>) -> Self {
        Self {
            pgid: child.id().map(|p| p as i32),
            child,
            output: Some(output),
        }
    }

    async fn stop(&mut self, grace: Duration) {
        if let Some(pgid) = self.pgid {
            signal_group(pgid, rustix::process::Signal::TERM);
            if tokio::time::timeout(grace, self.child.wait())
                .await
                .is_err()
            {
                signal_group(pgid, rustix::process::Signal::KILL);
                let _ = self.child.wait().await;
            }
            // Children that outlived their parent in the group go too.
            signal_group(pgid, rustix::process::Signal::KILL);
            self.pgid = None;
        }
        self.drain_output().await;
    }

    /// Stops what a finished step left running in its group: SIGTERM, then
    /// SIGKILL to whatever is still there after `grace`. The step's own
    /// process is gone, so the group is watched rather than the child.
    async fn stop_group(&mut self, grace: Duration) {
        // The step's process (the group's leader, its id the group's) was
        // reaped. The kernel keeps a group's id from reuse while the group
        // has members; once the daemon has gone, a process with that id
        // leads someone else's group and must not be signalled.
        if let Some(pgid) = self.pgid.take()
            && !Path::new(&format!("/proc/{pgid}")).exists()
        {
            signal_group(pgid, rustix::process::Signal::TERM);
            let deadline = tokio::time::Instant::now() + grace;
            while group_has_live_members(pgid) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            signal_group(pgid, rustix::process::Signal::KILL);
        }
        self.drain_output().await;
    }

    /// Waits until what the step printed is in its log, so that its lines
    /// come before the step's end and the state that follows it (a reader of
    /// the log who sees FINISHED or BROKEN sees the output that led there).
    async fn drain_output(&mut self) {
        if let Some(output) = self.output.take() {
            let _ = tokio::time::timeout(OUTPUT_DRAIN, output).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            signal_group(pgid, rustix::process::Signal::KILL);
        }
    }
}

/// Whether a process of group `pgid` is still running. Zombies do not count:
/// a daemon's parent has usually exited, and whoever adopted it (PID 1 in a
/// container, often) may reap it late or never.
fn group_has_live_members(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            return false;
        }
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and ')'.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        let mut fields = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && state != Some("Z")
    })
}

fn signal_group(pgid: i32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Starts `script` for `component` in its own process group, its output
/// going line by line to `log`. `on_spawn` is the state to enter once the
/// process exists, before its first line can be logged.
fn spawn_script(
    ctx: &LaunchContext,
    component: &Component,
    lifecycle: &Lifecycle,
    (step_name, step): (&str, &Step),
    states: &Arc<ComponentStates>,
    on_spawn: Option<LifecycleState>,
) -> Result<Running, String> {
    let work = ctx
        .work_dir(&component.name)
        .map_err(|e| format!("cannot create the work folder: {e}"))?;
    let script = interpolate(ctx, component, &step.script);
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .envs(ctx.environment(&component.name))
        .envs(
            lifecycle
                .setenv
                .iter()
                .chain(&step.setenv)
                .map(|(k, v)| (k.clone(), interpolate(ctx, component, v))),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if !step.requires_privilege
        && let Some(user) = &component.posix_user
    {
        let (uid, gid) = lookup_user(user).map_err(|e| format!("runWith.posixUser: {e}"))?;
        command.uid(uid).gid(gid);
        // The work folder must be the component's own.
        let _ = rustix::fs::chown(
            &work,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        );
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {step_name}: {e}"))?;
    if let Some(state) = on_spawn {
        states.set(&component.name, state);
    }
    let log = ctx.log(&component.name);
    let script_name = format!("services.{}.lifecycle.{step_name}", component.name);
    let [out, err] = [("stdout", "INFO"), ("stderr", "WARN")].map(|(stream, level)| {
        let lines: Box<dyn tokio::io::AsyncRead + Unpin + Send> = if stream == "stdout" {
            Box::new(child.stdout.take().expect("piped"))
        } else {
            Box::new(child.stderr.take().expect("piped"))
        };
        let (log, script_name, states) = (log.clone(), script_name.clone(), states.clone());
        let name = component.name.clone();
        async move {
            let mut reader = BufReader::new(lines).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let state = states.get(&name).map_or("NEW", LifecycleState::as_str);
                log.write(
                    level,
                    "Copier",
                    stream,
                    &line,
                    &[
                        ("scriptName", &script_name),
                        ("serviceName", &name),
                        ("currentState", state),
                    ],
                );
            }
        }
    });
    log.write(
        "INFO",
        "lifecycle",
        "shell-runner-start",
        "",
        &[("scriptName", &script_name), ("command", &script)],
    );
    let output = tokio::spawn(async move {
        tokio::join!(out, err);
    });
    Ok(Running::new(child, output))
}

/// A supervised generic component.
#[derive(Debug)]
struct Supervised {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// Runs the deployment's components.
#[derive(Debug)]
pub struct Supervisor {
    ctx: LaunchContext,
    running: Mutex<BTreeMap<String, Supervised>>,
    /// Held through every change of what runs (a stop, a restart, a
    /// reload, the shutdown), so each sees the end of the one before: a stop
    /// that arrives during a restart stops the restarted process instead of
    /// finding nothing and letting the restart start it after.
    changes: tokio::sync::Mutex<()>,
    /// Set by [`stop_all`](Self::stop_all): nothing starts after it.
    closed: std::sync::atomic::AtomicBool,
    /// Stop and restart requests over IPC, in the order they were made.
    /// A task per request could reach `changes` out of order.
    requests: Mutex<Requests>,
}

/// Queued stop and restart requests.
#[derive(Debug, Default)]
struct Requests {
    /// Component name, and whether to start it again.
    queue: std::collections::VecDeque<(String, bool)>,
    /// A task is carrying the queue out.
    draining: bool,
}

impl Supervisor {
    /// A supervisor for `ctx`'s deployment.
    pub fn new(ctx: LaunchContext) -> Self {
        Self {
            ctx,
            running: Mutex::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
            closed: std::sync::atomic::AtomicBool::new(false),
            requests: Mutex::default(),
        }
    }

    /// The shared launch context.
    pub fn context(&self) -> &LaunchContext {
        &self.ctx
    }

    /// Registers every component and starts those with something to run.
    pub fn start_all(self: &Arc<Self>) {
        let names: Vec<String> = self
            .ctx
            .broker
            .deployment()
            .components
            .keys()
            .cloned()
            .collect();
        for name in names {
            self.start(&name);
        }
    }

    /// Starts `name`'s lifecycle.
    fn start(self: &Arc<Self>, name: &str) {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let Some(component) = self.ctx.broker.deployment().components.get(name).cloned() else {
            return;
        };
        self.ctx.states.register(name, &component.version);
        let (stop_tx, stop_rx) = watch::channel(false);
        let this = self.clone();
        let task = tokio::spawn(async move { this.run_component(component, stop_rx).await });
        self.lock().insert(
            name.to_owned(),
            Supervised {
                stop: stop_tx,
                task,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Supervised>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops `name` (SIGTERM, then SIGKILL after the grace; then its
    /// `shutdown` step) and waits until it has stopped.
    async fn stop(&self, name: &str) {
        let _change = self.changes.lock().await;
        self.stop_one(name).await;
    }

    /// Stops `name` as [`stop`](Self::stop) does, then starts it again.
    async fn restart(self: &Arc<Self>, name: &str) {
        let _change = self.changes.lock().await;
        self.stop_one(name).await;
        self.start(name);
    }

    /// Queues a restart (or a stop) of `name` and returns at once; queued
    /// requests are carried out one after the other in the order made.
    pub fn request(self: &Arc<Self>, name: &str, restart: bool) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        requests.queue.push_back((name.to_owned(), restart));
        if !requests.draining {
            requests.draining = true;
            let this = self.clone();
            tokio::spawn(async move { this.carry_out_requests().await });
        }
    }

    async fn carry_out_requests(self: Arc<Self>) {
        loop {
            let next = {
                let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
                let next = requests.queue.pop_front();
                requests.draining = next.is_some();
                next
            };
            match next {
                Some((name, true)) => self.restart(&name).await,
                Some((name, false)) => self.stop(&name).await,
                None => return,
            }
        }
    }

    async fn stop_one(&self, name: &str) {
        let supervised = self.lock().remove(name);
        if let Some(s) = supervised {
            let _ = s.stop.send(true);
            let _ = s.task.await;
        }
    }

    /// Makes a reload (`reload` swaps the deployment and says what
    /// changed) and applies it: removed components stop, changed ones
    /// restart, added ones start. Both under `changes`, so a restart under
    /// way finishes on the old deployment and is not repeated.
    pub async fn reload<E>(
        self: &Arc<Self>,
        reload: impl FnOnce() -> Result<crate::ReloadPlan, E>,
    ) -> Result<crate::ReloadPlan, E> {
        let _change = self.changes.lock().await;
        let plan = reload()?;
        self.apply(&plan).await;
        Ok(plan)
    }

    async fn apply(self: &Arc<Self>, plan: &crate::ReloadPlan) {
        for name in plan.removed.iter().chain(&plan.changed) {
            self.stop_one(name).await;
        }
        for name in &plan.removed {
            self.ctx.states.remove(name);
        }
        for name in plan.changed.iter().chain(&plan.added) {
            self.start(name);
        }
    }

    /// Stops every component, in parallel; none starts after.
    pub async fn stop_all(&self) {
        // Before waiting for a change under way: it starts nothing more.
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        let _change = self.changes.lock().await;
        let all: Vec<Supervised> = std::mem::take(&mut *self.lock()).into_values().collect();
        for s in &all {
            let _ = s.stop.send(true);
        }
        for s in all {
            let _ = s.task.await;
        }
    }

    async fn run_component(self: Arc<Self>, component: Component, mut stop: watch::Receiver<bool>) {
        let ctx = &self.ctx;
        let states = &ctx.states;
        let name = component.name.clone();
        if component.lambda_function.is_some() {
            crate::lambda::supervise(ctx, &component, stop).await;
            return;
        }
        let lifecycle = lifecycle_of(&component.recipe);
        if lifecycle.install.is_none() && lifecycle.startup.is_none() && lifecycle.run.is_none() {
            // An identity with a configuration, nothing to run.
            states.set(&name, LifecycleState::Finished);
            return;
        }
        let log = ctx.log(&name);
        let mut errors = ErrorWindow::default();
        loop {
            match self.one_attempt(&component, &lifecycle, &mut stop).await {
                Attempt::Finished => {
                    states.set(&name, LifecycleState::Finished);
                    break;
                }
                Attempt::Stopped => break,
                Attempt::Failed(reason) => {
                    let recent = errors.record(tokio::time::Instant::now());
                    log.write(
                        "ERROR",
                        "lifecycle",
                        "service-errored",
                        &reason,
                        &[("serviceName", &name)],
                    );
                    tracing::warn!(component = %name, reason = %reason, errors = recent, "component failed");
                    if recent >= ERRORS_TO_BROKEN {
                        states.set(&name, LifecycleState::Broken);
                        break;
                    }
                    states.set(&name, LifecycleState::Errored);
                    // A short pause so a crash loop does not spin.
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => break,
                    }
                }
            }
        }
        let stopping = *stop.borrow();
        if let Some(shutdown) = &lifecycle.shutdown
            && stopping
            && let Ok(mut running) = spawn_script(
                ctx,
                &component,
                &lifecycle,
                ("shutdown", shutdown),
                states,
                None,
            )
        {
            let limit = shutdown.timeout.unwrap_or(SHUTDOWN_TIMEOUT);
            if tokio::time::timeout(limit, running.child.wait())
                .await
                .is_err()
            {
                running.stop(Duration::ZERO).await;
            }
            running.pgid = None;
            running.drain_output().await;
        }
        if *stop.borrow() {
            states.set(&name, LifecycleState::Finished);
        }
    }

    async fn one_attempt(
        &self,
        component: &Component,
        lifecycle: &Lifecycle,
        stop: &mut watch::Receiver<bool>,
    ) -> Attempt {
        let states = &self.ctx.states;
        let name = &component.name;
        if let Some(install) = &lifecycle.install {
            let step = ("install", install);
            match self
                .run_to_end((component, lifecycle), step, INSTALL_TIMEOUT, false, stop)
                .await
            {
                (Attempt::Finished, _) => states.set(name, LifecycleState::Installed),
                (other, _) => return other,
            }
        }
        states.set(name, LifecycleState::Starting);
        // What `startup` starts in the background (the reason to have the
        // step: a daemon) is the component until it stops.
        let mut background = None;
        if let Some(startup) = &lifecycle.startup {
            let step = ("startup", startup);
            match self
                .run_to_end((component, lifecycle), step, STARTUP_TIMEOUT, true, stop)
                .await
            {
                (Attempt::Finished, kept) => {
                    background = kept;
                    states.set(name, LifecycleState::Running);
                }
                (other, _) => return other,
            }
        }
        let attempt = self.run_step(component, lifecycle, stop).await;
        if let Some(mut background) = background {
            background.stop_group(STOP_GRACE).await;
        }
        attempt
    }

    /// The `run` step, or for a component with only `startup`, the wait
    /// until it is stopped.
    async fn run_step(
        &self,
        component: &Component,
        lifecycle: &Lifecycle,
        stop: &mut watch::Receiver<bool>,
    ) -> Attempt {
        let ctx = &self.ctx;
        let states = &ctx.states;
        let name = &component.name;
        let Some(run) = &lifecycle.run else {
            if lifecycle.startup.is_some() {
                // A startup-only component keeps running in the background
                // until stopped, or until it reports ERRORED.
                tokio::select! {
                    () = stopped(stop) => {
                        states.set(name, LifecycleState::Stopping);
                        return Attempt::Stopped;
                    }
                    () = states.until(name, LifecycleState::Errored) => {
                        return Attempt::Failed(REPORTED_ERRORED.into());
                    }
                }
            }
            return Attempt::Finished;
        };
        // RUNNING as soon as the process exists and before its output is
        // read: its first line is logged with the state it runs in.
        let running = spawn_script(
            ctx,
            component,
            lifecycle,
            ("run", run),
            states,
            Some(LifecycleState::Running),
        );
        let mut running = match running {
            Ok(r) => r,
            Err(e) => return Attempt::Failed(e),
        };
        let limit = run.timeout;
        let waited = tokio::select! {
            status = running.child.wait() => Some(status),
            () = async {
                match limit {
                    Some(l) => tokio::time::sleep(l).await,
                    None => std::future::pending().await,
                }
            } => None,
            () = stopped(stop) => {
                states.set(name, LifecycleState::Stopping);
                running.stop(STOP_GRACE).await;
                return Attempt::Stopped;
            }
            // UpdateState ERRORED from the component: a failure like an
            // exit, so it is restarted and counts towards BROKEN.
            () = states.until(name, LifecycleState::Errored) => {
                running.stop(STOP_GRACE).await;
                return Attempt::Failed(REPORTED_ERRORED.into());
            }
        };
        let outcome = match waited {
            Some(Ok(status)) if status.success() => Attempt::Finished,
            Some(Ok(status)) => Attempt::Failed(format!("run exited with {status}")),
            Some(Err(e)) => Attempt::Failed(format!("waiting for run: {e}")),
            None => {
                running.stop(STOP_GRACE).await;
                Attempt::Failed("run timed out".into())
            }
        };
        // Whatever the run left in its group goes with it.
        running.stop(Duration::ZERO).await;
        ctx.log(name).write(
            "INFO",
            "lifecycle",
            "",
            "Run script exited",
            &[("serviceName", name), ("outcome", &format!("{outcome:?}"))],
        );
        outcome
    }

    /// Runs a step until its script exits. With `keep`, a step that
    /// succeeds leaves what it started in its group running, and the group
    /// is returned; otherwise the group goes with the script.
    async fn run_to_end(
        &self,
        (component, lifecycle): (&Component, &Lifecycle),
        (step_name, step): (&str, &Step),
        default_timeout: Duration,
        keep: bool,
        stop: &mut watch::Receiver<bool>,
    ) -> (Attempt, Option<Running>) {
        let mut running = match spawn_script(
            &self.ctx,
            component,
            lifecycle,
            (step_name, step),
            &self.ctx.states,
            None,
        ) {
            Ok(r) => r,
            Err(e) => return (Attempt::Failed(e), None),
        };
        let limit = step.timeout.unwrap_or(default_timeout);
        let result = tokio::select! {
            r = tokio::time::timeout(limit, running.child.wait()) => r,
            () = stopped(stop) => {
                running.stop(STOP_GRACE).await;
                return (Attempt::Stopped, None);
            }
        };
        let outcome = match result {
            Ok(Ok(status)) if status.success() => Attempt::Finished,
            Ok(Ok(status)) => Attempt::Failed(format!("{step_name} exited with {status}")),
            Ok(Err(e)) => Attempt::Failed(format!("waiting for {step_name}: {e}")),
            Err(_) => Attempt::Failed(format!("{step_name} timed out after {limit:?}")),
        };
        if keep && matches!(outcome, Attempt::Finished) {
            // Its output keeps going to the log while it runs.
            return (outcome, Some(running));
        }
        running.stop(Duration::ZERO).await;
        (outcome, None)
    }
}

/// The times of a component's recent failures.
#[derive(Debug, Default)]
struct ErrorWindow(std::collections::VecDeque<tokio::time::Instant>);

impl ErrorWindow {
    /// Records a failure at `now`; returns how many fell within the last
    /// [`ERROR_RESET_TIME`], this one included.
    fn record(&mut self, now: tokio::time::Instant) -> usize {
        self.0
            .retain(|at| now.duration_since(*at) < ERROR_RESET_TIME);
        self.0.push_back(now);
        self.0.len()
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns must not live across an await.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

#[derive(Debug)]
enum Attempt {
    Finished,
    Stopped,
    Failed(String),
}

/// Whether `path` looks like a Python interpreter we can run.
pub fn find_python() -> Option<PathBuf> {
    ["python3", "python"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(name))
                .find(|p| Path::new(p).is_file())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_within_the_reset_time_count_towards_broken() {
        let start = tokio::time::Instant::now();
        let mut window = ErrorWindow::default();
        assert_eq!(window.record(start), 1);
        assert_eq!(window.record(start + Duration::from_secs(1800)), 2);
        // The first is an hour old now: it no longer counts.
        assert_eq!(window.record(start + ERROR_RESET_TIME), 2);
        assert_eq!(
            window.record(start + ERROR_RESET_TIME + Duration::from_secs(1)),
            3
        );
    }

    #[test]
    fn linux_manifest_lifecycle_is_read_with_steps_in_both_forms() {
        let recipe = serde_json::json!({
            "Manifests": [
                {"Platform": {"os": "windows"}, "Lifecycle": {"run": "nope"}},
                {"Platform": {"os": "linux"}, "Lifecycle": {
                    "Setenv": {"A": "1"},
                    "install": {"Script": "echo i", "Timeout": 5, "RequiresPrivilege": true},
                    "run": "echo {configuration:/x}"
                }}
            ]
        });
        let l = lifecycle_of(&recipe);
        assert_eq!(l.setenv, [("A".to_owned(), "1".to_owned())]);
        let install = l.install.unwrap();
        assert_eq!(install.script, "echo i");
        assert_eq!(install.timeout, Some(Duration::from_secs(5)));
        assert!(install.requires_privilege);
        assert_eq!(l.run.unwrap().script, "echo {configuration:/x}");
        assert!(l.startup.is_none());
    }
}

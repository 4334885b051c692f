//! The Lambda launcher: runs a Lambda component's Python handler on the
//! messages of its event sources (`../shared/docs/lambda.md`).
//!
//! What the Greengrass LambdaManager, LambdaLauncher and runtime shims do
//! on a device collapses into this module and a Python shim shipped inside
//! the broker:
//!
//! ```text
//! local publish, IoT Core message
//!   └─► listener, on the publisher's or the bridge's task: push only
//!         └─► WorkQueue: FIFO of maxQueueSize, a full queue refuses
//!               └─► worker task: one item at a time, timeoutInSeconds
//!                     └─► worker process (python lambda_runtime.py), a socket pair on its
//!                         fd 0: invoke → done | raised | not JSON
//!                         stdout, stderr ──► component log (`file.py:4,text`)
//! ```
//!
//! A pinned function has one worker (instance 0) started with the
//! component and replaced whenever it is killed (timeout) or dies. An
//! on-demand function starts workers while items wait and no worker is
//! free, up to `maxInstancesCount` (instances 1, 2, … never reused); each
//! exits after `maxIdleTimeInSeconds` without work. Workers that fail to
//! start three times in a row make the component BROKEN with the reason.
//!
//! States: STARTING at launch; RUNNING once the pinned worker has loaded
//! its handler (at once for on-demand functions); ERRORED after a failed
//! worker start while retrying; BROKEN after three; STOPPING then FINISHED
//! when stopped.
//!
//! Decisions where `lambda.md` leaves the behaviour open:
//! - a message matching two event sources is two work items, as two
//!   independent subscriptions would give (§7 item 2);
//! - event sources are subscribed as the Lambda component, with the
//!   nucleus' default receive mode: a filter with a wildcard skips the
//!   component's own publications (§3), so a function publishing under its
//!   own source's wildcard does not feed itself;
//! - a full queue refuses the new message (§6.6);
//! - a timed-out invocation kills and replaces the worker; it is not a
//!   start failure and does not count towards BROKEN (§6.4);
//! - a payload that is not JSON for a `json` function is logged with its
//!   topic and the handler is not called; the worker lives on (§4).
//!
//! Shortcomings, said where they matter:
//! - `IOT_CORE` event sources need the deployment's `iotCore` section (the
//!   bridge); without it the launcher logs each one it cannot serve. The
//!   bridge reads its section once, so a reload that adds it serves the
//!   sources only after a restart.
//! - Workers send no status heartbeat: a worker that hangs while idle is
//!   only found out when its next invocation times out.
//! - `GreengrassContainer` applies the memory limit only (see `memory.rs`);
//!   there is no mount namespace, so volumes, devices and `mountROSysfs`
//!   are not applied (a warning says so).
//! - Results of handlers are not kept: event-source invocations are
//!   fire-and-forget on Greengrass too, and there is no synchronous invoke.

mod memory;
mod params;
mod queue;
mod runtime;
mod worker;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use self::memory::MemoryLimit;
use self::params::{ContainerMode, Function, Params, SourceKind};
pub use self::params::{device_configuration, section_from_recipe};
use self::queue::{WorkItem, WorkQueue};
use self::worker::{Outcome, Spec, Worker};
use crate::Broker;
use crate::config::{Component, Deployment};
use crate::iotcore::{IncomingMessage, IotCoreListener, ListenerSubscription};
use crate::logs::ComponentLog;
use crate::pubsub::{LocalListener, LocalMessage};
use crate::states::LifecycleState;
use crate::supervisor::{LaunchContext, STOP_GRACE};

/// QoS of `IOT_CORE` event-source subscriptions: at least once, so that a
/// message the bridge lost on a reconnect is sent again. The Greengrass
/// LambdaManager's choice is not public.
const IOT_CORE_QOS: u8 = 1;
/// Failed worker starts in a row after which the component is BROKEN.
const STARTS_TO_BROKEN: u32 = 3;
/// Pause before another start after a failed one, so a crash loop does not
/// spin.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// `lambdaFunction` with a relative `codePath` resolved against `base`
/// (the deployment document's folder), for the configuration loader.
pub fn resolve_code_path(mut section: Value, base: &Path) -> Value {
    let Some(map) = section.as_object_mut() else {
        return section;
    };
    let key = map
        .keys()
        .find(|k| k.eq_ignore_ascii_case("codePath"))
        .cloned();
    if let Some(key) = key
        && let Some(Value::String(path)) = map.get(&key)
        && Path::new(path).is_relative()
    {
        let absolute = base.join(path).display().to_string();
        map.insert(key, Value::String(absolute));
    }
    section
}

/// The listener of one event source: it only queues (it runs on the
/// publisher's task).
#[derive(Debug)]
struct SourceListener {
    queue: Arc<WorkQueue>,
}

impl LocalListener for SourceListener {
    fn on_message(&self, _publisher: &str, topic: &str, message: &LocalMessage) {
        let (LocalMessage::Json(bytes) | LocalMessage::Binary(bytes)) = message;
        // A refusal is counted and logged by the queue.
        let _ = self.queue.push(topic, bytes.clone());
    }
}

/// The listener of one `IOT_CORE` event source, called on the bridge's
/// link task: it only queues.
#[derive(Debug)]
struct IotSourceListener {
    queue: Arc<WorkQueue>,
    log: ComponentLog,
}

impl IotCoreListener for IotSourceListener {
    fn on_message(&self, message: &IncomingMessage) {
        let _ = self.queue.push(&message.topic, message.payload.clone());
    }

    fn on_subscription_failed(&self, filter: &str, reason: &str) {
        self.log.write(
            "ERROR",
            "lambda",
            "lambda-source",
            &format!(
                "IOT_CORE event source {filter} is not served: IoT Core refused it ({reason})"
            ),
            &[("serviceName", self.log.component())],
        );
        tracing::warn!(component = %self.log.component(), filter, reason, "IOT_CORE Lambda event source refused");
    }
}

/// Event subscriptions, removed when the launcher ends.
#[derive(Debug)]
struct Subscriptions {
    broker: Arc<Broker>,
    ids: Vec<(String, u64)>,
    /// IoT Core sources; dropping a handle unsubscribes it.
    iot: Vec<ListenerSubscription>,
}

impl Drop for Subscriptions {
    fn drop(&mut self) {
        for (filter, id) in self.ids.drain(..) {
            self.broker.unsubscribe(&filter, id);
        }
    }
}

/// What the worker tasks share.
#[derive(Debug)]
struct Shared {
    spec: Arc<Spec>,
    queue: Arc<WorkQueue>,
    pinned: bool,
    max_idle: Duration,
    /// Workers waiting for an item.
    idle: AtomicUsize,
}

/// What a worker task tells the launcher.
#[derive(Debug)]
enum Event {
    Ready,
    StartFailed(String),
    Ended(End),
}

/// Why a worker ended.
#[derive(Debug)]
enum End {
    /// `maxIdleTimeInSeconds` without work (on-demand).
    Idle,
    /// The launcher stops.
    Stopped,
    /// Killed after a timeout, or died during an invocation.
    Replace,
    /// Died while waiting for work.
    DiedIdle(String),
}

/// Runs a Lambda component until `stop` turns true (or it is BROKEN), then
/// stops its workers, leaving no process behind.
pub(crate) async fn supervise(
    ctx: &LaunchContext,
    component: &Component,
    mut stop: watch::Receiver<bool>,
) {
    let name = component.name.as_str();
    let log = ctx.log(name);
    ctx.states.set(name, LifecycleState::Starting);
    let started = launch(ctx, component, &log).await;
    let (shared, params, subscriptions) = match started {
        Ok(s) => s,
        Err(reason) => {
            broken(ctx, &log, name, &reason);
            return;
        }
    };
    let (workers_stop_tx, workers_stop) = watch::channel(false);
    let (events_tx, mut events) = mpsc::unbounded_channel::<(u64, Event)>();
    let mut pool = Pool {
        shared: shared.clone(),
        tasks: JoinSet::new(),
        events: events_tx,
        stop: workers_stop,
        live: 0,
        starting: 0,
        next_instance: 1,
        starts: 0,
    };
    if params.pinned {
        pool.spawn(0);
    } else {
        ctx.states.set(name, LifecycleState::Running);
    }
    let mut failures = 0u32;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let broken_reason = loop {
        tokio::select! {
            () = stopped(&mut stop) => break None,
            Some((instance, event)) = events.recv() => match event {
                Event::Ready => {
                    pool.starting -= 1;
                    failures = 0;
                    ctx.states.set(name, LifecycleState::Running);
                    shared.spec.log_event("INFO", instance, "lambda-worker-ready", "handler loaded", &[]);
                }
                Event::StartFailed(reason) => {
                    pool.starting -= 1;
                    pool.live -= 1;
                    failures += 1;
                    shared.spec.log_event(
                        "ERROR",
                        instance,
                        "lambda-worker-start-failed",
                        &reason,
                        &[("failures", &failures.to_string())],
                    );
                    tracing::warn!(component = %name, reason = %reason, failures, "Lambda worker failed to start");
                    if failures >= STARTS_TO_BROKEN {
                        break Some(reason);
                    }
                    ctx.states.set(name, LifecycleState::Errored);
                    retry_at = Some(tokio::time::Instant::now() + RETRY_PAUSE);
                }
                Event::Ended(end) => {
                    pool.live -= 1;
                    match end {
                        End::Idle => shared.spec.log_event(
                            "INFO",
                            instance,
                            "lambda-worker-idle",
                            "worker stopped after maxIdleTimeInSeconds without work",
                            &[],
                        ),
                        // The invocation's end was logged by the worker
                        // task; the next item must not wait.
                        End::Replace if params.pinned => pool.spawn(0),
                        End::Replace | End::Stopped => {}
                        End::DiedIdle(why) => {
                            shared.spec.log_event("ERROR", instance, "lambda-worker-died", &why, &[]);
                            if params.pinned {
                                retry_at = Some(tokio::time::Instant::now() + RETRY_PAUSE);
                            }
                        }
                    }
                }
            },
            () = shared.queue.grown(), if !params.pinned => {}
            () = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                retry_at = None;
                if params.pinned && pool.live == 0 {
                    ctx.states.set(name, LifecycleState::Starting);
                    pool.spawn(0);
                }
            }
            _ = tick.tick() => shared.queue.report_drops(),
        }
        if !params.pinned && retry_at.is_none() {
            pool.scale(params.max_instances);
        }
    };
    if broken_reason.is_none() {
        ctx.states.set(name, LifecycleState::Stopping);
    }
    // The queue closes first and the subscriptions go last, so that an
    // event published while the workers stop is counted as refused rather
    // than missed without a trace (field case BR-24).
    let left = shared.queue.close();
    if !left.is_empty() {
        log.write(
            "WARN",
            "lambda",
            "lambda-queue-discarded",
            "events still queued are not handled: the function is stopping",
            &[("count", &left.len().to_string()), ("serviceName", name)],
        );
    }
    shared.queue.report_drops();
    let _ = workers_stop_tx.send(true);
    while pool.tasks.join_next().await.is_some() {}
    drop(subscriptions);
    let refused = shared.queue.refused_closed();
    if refused > 0 {
        log.write(
            "WARN",
            "lambda",
            "lambda-queue-discarded",
            "events published while the function was stopping are not handled",
            &[("count", &refused.to_string()), ("serviceName", name)],
        );
    }
    match broken_reason {
        Some(reason) => broken(ctx, &log, name, &reason),
        None => ctx.states.set(name, LifecycleState::Finished),
    }
}

fn broken(ctx: &LaunchContext, log: &ComponentLog, name: &str, reason: &str) {
    log.write(
        "ERROR",
        "lambda",
        "service-broken",
        reason,
        &[("serviceName", name)],
    );
    tracing::error!(component = %name, reason = %reason, "Lambda function BROKEN");
    ctx.states.set(name, LifecycleState::Broken);
}

/// The launcher's workers.
#[derive(Debug)]
struct Pool {
    shared: Arc<Shared>,
    tasks: JoinSet<()>,
    events: mpsc::UnboundedSender<(u64, Event)>,
    stop: watch::Receiver<bool>,
    /// Worker tasks running (starting, idle or busy).
    live: usize,
    /// Of which still starting.
    starting: usize,
    next_instance: u64,
    /// Starts so far, for unique cgroup names.
    starts: u64,
}

impl Pool {
    fn spawn(&mut self, instance: u64) {
        self.live += 1;
        self.starting += 1;
        self.starts += 1;
        let (shared, events, stop) = (self.shared.clone(), self.events.clone(), self.stop.clone());
        let seq = self.starts;
        self.tasks
            .spawn(run_worker(shared, instance, seq, events, stop));
    }

    /// On-demand: a worker more while items wait that no free or starting
    /// worker will take, up to `max`, with at most one start per core under
    /// way. Starting a Python worker costs tens of milliseconds of CPU: a
    /// burst that started `maxInstancesCount` of them at once would spend
    /// the device's cores on interpreters while the running workers could
    /// have drained the queue (on two cores, 100 simultaneous starts cut a
    /// burst's throughput by four; see the README's measurements).
    fn scale(&mut self, max: usize) {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        while self.live < max && self.starting < cores {
            let available = self.shared.idle.load(Ordering::Relaxed) + self.starting;
            if self.shared.queue.len() <= available {
                break;
            }
            let instance = self.next_instance;
            self.next_instance += 1;
            self.spawn(instance);
        }
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// One worker's life: start, take items one at a time, end.
async fn run_worker(
    shared: Arc<Shared>,
    instance: u64,
    seq: u64,
    events: mpsc::UnboundedSender<(u64, Event)>,
    mut stop: watch::Receiver<bool>,
) {
    let spec = &shared.spec;
    let started = tokio::select! {
        s = Worker::start(spec, instance, seq) => s,
        () = stopped(&mut stop) => {
            let _ = events.send((instance, Event::StartFailed("stopped while starting".into())));
            return;
        }
    };
    let mut worker = match started {
        Ok(w) => w,
        Err(reason) => {
            let _ = events.send((instance, Event::StartFailed(reason)));
            return;
        }
    };
    let _ = events.send((instance, Event::Ready));
    enum Next {
        Item(WorkItem),
        Idle,
        Stop,
        Died(String),
    }
    let end = loop {
        shared.idle.fetch_add(1, Ordering::Relaxed);
        let next = tokio::select! {
            item = shared.queue.pop() => item.map_or(Next::Stop, Next::Item),
            () = async {
                if shared.pinned {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(shared.max_idle).await;
            } => Next::Idle,
            () = stopped(&mut stop) => Next::Stop,
            why = worker.exited() => Next::Died(why),
        };
        shared.idle.fetch_sub(1, Ordering::Relaxed);
        let item = match next {
            Next::Item(item) => item,
            Next::Idle => break End::Idle,
            Next::Stop => break End::Stopped,
            Next::Died(why) => break End::DiedIdle(why),
        };
        // A stop lets the invocation in flight end, for at most the stop
        // grace, so that an event is either handled or said not to be.
        let (outcome, stopping) = {
            let mut invoke = pin!(worker.invoke(&item));
            tokio::select! {
                o = &mut invoke => (Some(o), false),
                () = stopped(&mut stop) => {
                    (tokio::time::timeout(spec.stop_grace, &mut invoke).await.ok(), true)
                }
            }
        };
        let Some(outcome) = outcome else {
            spec.log_event(
                "WARN",
                instance,
                "lambda-invoke-stopped",
                "the function stopped before the invocation ended; the worker was stopped",
                &[("invocationId", &item.id), ("topic", &item.topic)],
            );
            break End::Stopped;
        };
        if !report(spec, instance, &item, &outcome) {
            break End::Replace;
        }
        if stopping {
            break End::Stopped;
        }
    };
    match end {
        // The process is already gone.
        End::Replace | End::DiedIdle(_) => worker.finish().await,
        End::Idle | End::Stopped => worker.stop().await,
    }
    let _ = events.send((instance, Event::Ended(end)));
}

/// Logs how an invocation ended; false when the worker is gone.
fn report(spec: &Spec, instance: u64, item: &WorkItem, outcome: &Outcome) -> bool {
    let context = [
        ("invocationId", item.id.as_str()),
        ("topic", item.topic.as_str()),
    ];
    match outcome {
        Outcome::Done => true,
        Outcome::Handled(error) => {
            spec.log_event(
                "ERROR",
                instance,
                "lambda-invoke-failed",
                &format!("the handler raised {error}"),
                &context,
            );
            true
        }
        Outcome::Undecodable(error) => {
            spec.log_event(
                "ERROR",
                instance,
                "lambda-invoke-failed",
                &format!(
                    "the payload on topic {} is not JSON ({error}); the handler was not called",
                    item.topic
                ),
                &context,
            );
            true
        }
        Outcome::TimedOut => {
            spec.log_event(
                "ERROR",
                instance,
                "lambda-invoke-timeout",
                &format!(
                    "the handler ran past timeoutInSeconds ({} s); the worker was killed and is replaced",
                    spec.timeout.as_secs()
                ),
                &context,
            );
            tracing::warn!(component = %spec.component, topic = %item.topic, "Lambda invocation timed out");
            false
        }
        Outcome::Died(why) => {
            spec.log_event("ERROR", instance, "lambda-worker-died", why, &context);
            tracing::warn!(component = %spec.component, reason = %why, "Lambda worker died");
            false
        }
    }
}

/// Reads the function's parameters, subscribes its event sources and
/// prepares its workers' start.
async fn launch(
    ctx: &LaunchContext,
    component: &Component,
    log: &ComponentLog,
) -> Result<(Arc<Shared>, Params, Subscriptions), String> {
    let name = component.name.as_str();
    let section = component
        .lambda_function
        .as_ref()
        .ok_or_else(|| "the component has no lambdaFunction section".to_owned())?;
    let function = Function::from_section(section)?;
    let params = Params::from_configuration(&component.configuration)?;
    for key in params::unknown_keys(section) {
        log.write(
            "WARN",
            "lambda",
            "lambda-config",
            &format!("lambdaFunction.{key}: unknown key, ignored"),
            &[("serviceName", name)],
        );
    }
    for warning in &params.warnings {
        log.write(
            "WARN",
            "lambda",
            "lambda-config",
            warning,
            &[("serviceName", name)],
        );
    }
    let queue = Arc::new(WorkQueue::new(params.max_queue, log.clone()));
    // Subscribed first: events published while the worker starts wait in
    // the queue rather than being lost (field case BR-25).
    let subscriptions = subscribe(ctx, name, &params, &queue, log);
    let deployment = ctx.broker.deployment();
    let code = code_dir(&function, component, &deployment)?;
    let interpreter = runtime::resolve(&function.runtime, function.interpreter.as_deref()).await?;
    if let Some(note) = &interpreter.note {
        log.write(
            "WARN",
            "lambda",
            "lambda-runtime",
            note,
            &[("serviceName", name)],
        );
    }
    let shim = runtime::install_python_shim(&deployment.root, name)?;
    let work_dir = ctx
        .work_dir(name)
        .and_then(std::path::absolute)
        .map_err(|e| format!("cannot create the work folder: {e}"))?;
    let user = match &component.posix_user {
        Some(spec) => {
            let user = lookup_user(spec).map_err(|e| format!("runWith.posixUser: {e}"))?;
            // The work folder must be the function's own.
            let _ = rustix::fs::chown(
                &work_dir,
                Some(rustix::fs::Uid::from_raw(user.uid)),
                Some(rustix::fs::Gid::from_raw(user.gid)),
            );
            Some(user)
        }
        None => None,
    };
    let (memory, memory_note) = match params.container_mode {
        ContainerMode::NoContainer => (
            MemoryLimit::Unlimited,
            "NoContainer: the function runs as a plain process; containerParams do not apply"
                .to_owned(),
        ),
        ContainerMode::GreengrassContainer => MemoryLimit::choose(params.memory_kb),
    };
    log.write(
        "INFO",
        "lambda",
        "lambda-memory",
        &memory_note,
        &[("serviceName", name)],
    );
    let (arn, function_name, function_version) = arn_of(&function, component, &deployment);
    let mut env = ctx.environment(name);
    let var = |k: &str, v: String| (k.to_owned(), v);
    env.extend([
        var("AWS_GREENGRASS_LAMBDA_ARN", arn.clone()),
        var("MY_FUNCTION_ARN", arn.clone()),
        var(
            "AWS_GREENGRASS_LAMBDA_FUNCTION_HANDLER",
            function.handler.clone(),
        ),
        var("AWS_GREENGRASS_LAMBDA_RUNTIME", function.runtime.clone()),
        var(
            "AWS_GREENGRASS_LAMBDA_ENCODING_TYPE",
            params.encoding.as_str().to_owned(),
        ),
        var("ENCODING_TYPE", params.encoding.as_str().to_owned()),
        var(
            "AWS_GREENGRASS_LAMBDA_ARTIFACT_PATH",
            code.display().to_string(),
        ),
        var(
            "AWS_GREENGRASS_LAMBDA_RUNTIME_PATH",
            shim.parent().unwrap_or(&shim).display().to_string(),
        ),
        var(
            "AWS_GREENGRASS_LAMBDA_CONTAINER_MODE",
            match params.container_mode {
                ContainerMode::NoContainer => "NoContainer",
                ContainerMode::GreengrassContainer => "GreengrassContainer",
            }
            .to_owned(),
        ),
        var(
            "AWS_GREENGRASS_LAMBDA_STATUS_TIMEOUT_SECONDS",
            params.status_timeout.as_secs().to_string(),
        ),
        var("AWS_LAMBDA_FUNCTION_NAME", function_name),
        var("AWS_LAMBDA_FUNCTION_VERSION", function_version),
        var(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            (params.memory_kb / 1024).to_string(),
        ),
        var(
            "GGIPC_LAMBDA_TIMEOUT_MS",
            params.timeout.as_millis().to_string(),
        ),
    ]);
    if let Some(user) = &user {
        // The user's home, not the work folder (`lambda.md` §8 row 7).
        env.push(var("HOME", user.home.clone()));
        env.push(var("USER", user.name.clone()));
        env.push(var("LOGNAME", user.name.clone()));
    }
    // The function's own variables come last: it asked for them.
    env.extend(params.environment.iter().cloned());
    let mut args: Vec<OsString> = vec!["-u".into(), shim.into_os_string()];
    args.push(format!("--handler={}", function.handler).into());
    args.extend(function.exec_args.iter().map(OsString::from));
    log.write(
        "INFO",
        "lambda",
        "lambda-launch",
        "",
        &[
            ("handler", &function.handler),
            ("runtime", &function.runtime),
            ("interpreter", &interpreter.path.display().to_string()),
            ("python", &interpreter.version),
            ("codePath", &code.display().to_string()),
            ("pinned", &params.pinned.to_string()),
            ("encoding", params.encoding.as_str()),
            ("timeoutInSeconds", &params.timeout.as_secs().to_string()),
            ("maxQueueSize", &params.max_queue.to_string()),
            ("serviceName", name),
        ],
    );
    let spec = Arc::new(Spec {
        component: Arc::from(name),
        program: interpreter.path,
        args,
        env,
        work_dir,
        user: user.map(|u| (u.uid, u.gid)),
        memory,
        timeout: params.timeout,
        status_timeout: params.status_timeout,
        stop_grace: STOP_GRACE,
        log: log.clone(),
        states: ctx.states.clone(),
    });
    let shared = Arc::new(Shared {
        spec,
        queue,
        pinned: params.pinned,
        max_idle: params.max_idle,
        idle: AtomicUsize::new(0),
    });
    Ok((shared, params, subscriptions))
}

fn subscribe(
    ctx: &LaunchContext,
    name: &str,
    params: &Params,
    queue: &Arc<WorkQueue>,
    log: &ComponentLog,
) -> Subscriptions {
    let listener: Arc<dyn LocalListener> = Arc::new(SourceListener {
        queue: queue.clone(),
    });
    let iot_listener: Arc<dyn IotCoreListener> = Arc::new(IotSourceListener {
        queue: queue.clone(),
        log: log.clone(),
    });
    let mut subscriptions = Subscriptions {
        broker: ctx.broker.clone(),
        ids: Vec::new(),
        iot: Vec::new(),
    };
    let component: Arc<str> = Arc::from(name);
    for source in &params.sources {
        match source.kind {
            SourceKind::PubSub => {
                let others_only = ggipc_protocol::topic::has_wildcard(&source.topic);
                let id = ctx.broker.subscribe_listener(
                    &source.topic,
                    component.clone(),
                    others_only,
                    listener.clone(),
                );
                subscriptions.ids.push((source.topic.clone(), id));
            }
            SourceKind::IotCore => {
                let subscribed = match ctx.broker.iot_core() {
                    Some(iot) => iot
                        .subscribe_listener(&source.topic, IOT_CORE_QOS, iot_listener.clone())
                        .map_err(|e| e.to_string()),
                    None => Err("the deployment has no iotCore section, so there is no IoT \
                                 Core bridge to take its messages from"
                        .to_owned()),
                };
                match subscribed {
                    Ok(handle) => subscriptions.iot.push(handle),
                    Err(reason) => {
                        let message = format!(
                            "IOT_CORE event source {} is not served: {reason}",
                            source.topic
                        );
                        log.write(
                            "WARN",
                            "lambda",
                            "lambda-source",
                            &message,
                            &[("serviceName", name)],
                        );
                        tracing::warn!(component = %name, topic = %source.topic, reason = %reason, "IOT_CORE Lambda event source not served");
                    }
                }
            }
        }
    }
    subscriptions
}

/// The function's code folder: `codePath` (relative to the deployment's
/// folder), or for a Lambda recipe its artifact folder. Greengrass unpacks
/// the function's zip into `lambda-artifact/`; ggipc does not unpack
/// archives, so that folder is used when it exists, else the artifact
/// folder itself.
fn code_dir(
    function: &Function,
    component: &Component,
    deployment: &Deployment,
) -> Result<PathBuf, String> {
    let dir = match &function.code_path {
        Some(path) if path.is_absolute() => path.clone(),
        Some(path) => deployment
            .file
            .parent()
            .unwrap_or(Path::new("."))
            .join(path),
        None => {
            let artifacts = deployment
                .artifact_dir
                .clone()
                .unwrap_or_else(|| deployment.root.join("packages/artifacts"))
                .join(&component.name)
                .join(&component.version);
            let unpacked = artifacts.join("lambda-artifact");
            if unpacked.is_dir() {
                unpacked
            } else {
                artifacts
            }
        }
    };
    if dir.is_dir() {
        // Workers run in the work folder: a relative path would miss.
        std::path::absolute(&dir).map_err(|e| format!("code folder {}: {e}", dir.display()))
    } else {
        Err(format!(
            "the function's code folder {} does not exist",
            dir.display()
        ))
    }
}

/// The function's ARN (given, or made up from the component when only a
/// code folder was given), name and version, for the environment and the
/// handler's context.
fn arn_of(
    function: &Function,
    component: &Component,
    deployment: &Deployment,
) -> (String, String, String) {
    let arn = function.arn.clone().unwrap_or_else(|| {
        // A Lambda component's version is `<function version>.0.0`.
        let version = component.version.split('.').next().unwrap_or("1");
        let region = deployment.aws_region.as_deref().unwrap_or("local");
        format!(
            "arn:aws:lambda:{region}:000000000000:function:{}:{version}",
            component.name
        )
    });
    // arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]
    let fields: Vec<&str> = arn.split(':').collect();
    let function_name = fields.get(6).copied().unwrap_or(&component.name).to_owned();
    let version = fields.get(7).copied().unwrap_or("$LATEST").to_owned();
    (arn, function_name, version)
}

/// A `runWith.posixUser`.
#[derive(Debug)]
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

/// `user` or `user:group` (names or ids) from the system's databases.
fn lookup_user(spec: &str) -> Result<User, String> {
    let (user, group) = spec
        .split_once(':')
        .map_or((spec, None), |(u, g)| (u, Some(g)));
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let fields = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 5 && (f[0] == user || f[2] == user))
        .ok_or_else(|| format!("no user {user:?}"))?;
    let uid = fields[2]
        .parse()
        .map_err(|_| format!("bad uid for {user:?}"))?;
    let mut gid = fields[3]
        .parse()
        .map_err(|_| format!("bad gid for {user:?}"))?;
    if let Some(group) = group {
        let groups = std::fs::read_to_string("/etc/group").map_err(|e| e.to_string())?;
        gid = groups
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 2 && (f[0] == group || f[2] == group))
            .and_then(|f| f[2].parse().ok())
            .ok_or_else(|| format!("no group {group:?}"))?;
    }
    Ok(User {
        name: fields[0].to_owned(),
        uid,
        gid,
        home: fields[5].to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_code_paths_are_taken_from_the_deployment_folder() {
        let section = serde_json::json!({"handler": "a.b", "CodePath": "fn"});
        let resolved = resolve_code_path(section, Path::new("/dep"));
        assert_eq!(resolved["CodePath"], "/dep/fn");
        let section = serde_json::json!({"codePath": "/abs"});
        assert_eq!(
            resolve_code_path(section, Path::new("/dep"))["codePath"],
            "/abs"
        );
    }

    #[test]
    fn made_up_arns_carry_the_component_and_its_major_version() {
        let component = Component {
            name: "com.example.Fn".into(),
            version: "2.1.0".into(),
            configuration: Value::Null,
            token_file: None,
            recipe: Value::Null,
            posix_user: None,
            lambda_function: None,
        };
        let deployment = Deployment::empty(PathBuf::from("/r"));
        let function =
            Function::from_section(&serde_json::json!({"handler": "a.b", "runtime": "python3"}))
                .unwrap();
        let (arn, name, version) = arn_of(&function, &component, &deployment);
        assert_eq!(
            arn,
            "arn:aws:lambda:local:000000000000:function:com.example.Fn:2"
        );
        assert_eq!((name.as_str(), version.as_str()), ("com.example.Fn", "2"));
        let function = Function::from_section(&serde_json::json!({
            "handler": "a.b", "runtime": "python3",
            "lambdaArn": "arn:aws:lambda:eu-west-1:123456789012:function:hello:14"
        }))
        .unwrap();
        let (_, name, version) = arn_of(&function, &component, &deployment);
        assert_eq!((name.as_str(), version.as_str()), ("hello", "14"));
    }

    #[test]
    fn users_are_read_with_their_home() {
        let root = lookup_user("0").unwrap();
        assert_eq!((root.uid, root.gid, root.name.as_str()), (0, 0, "root"));
        assert!(!root.home.is_empty());
        assert!(lookup_user("no-such-user-ggipc").is_err());
    }
}

//! `ggipc-broker`: the daemon.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio::signal::unix::{Signal, SignalKind, signal};

use clap::Parser;
use ggipc_broker::logs::{GreengrassLogLayer, LogConfig};
use ggipc_broker::server::Server;
use ggipc_broker::states::ComponentStates;
use ggipc_broker::supervisor::{LaunchContext, Supervisor};
use ggipc_broker::{Broker, config};

#[derive(Parser)]
#[command(
    name = "ggipc-broker",
    version,
    about = "Greengrass IPC broker: components connect to its socket with their SVCUID token"
)]
struct Args {
    /// Root folder (default: the deployment's system.rootPath, else /greengrass/v2).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Deployment document (YAML or JSON). Without it a built-in demo runs.
    #[arg(long)]
    deployment: Option<PathBuf>,
    /// Threads serving connections.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// The built-in demo: the publisher sample sending to `local/topic` every
/// 5 s, with the recipe users would deploy; a Python Lambda function
/// subscribed to that topic that logs each event, with the parameters of
/// the Greengrass CDK example; and a subscriber identity whose token is
/// written under `<root>/demo/` so `ggipc sub` or the SDKs can watch the
/// traffic. The document is written to `<root>/demo/deployment.yaml`, a
/// starting point for one's own.
const DEMO_DEPLOYMENT: &str = r#"# The built-in demo deployment of ggipc-broker, written at each start.
recipeDir: recipes
artifactDir: artifacts
components:
  com.example.Publisher:
    componentVersion: 1.0.0
  com.example.lambda:
    componentVersion: 1.0.0
    lambdaFunction:
      handler: lambda_function.lambda_handler
      runtime: python3.11
      codePath: lambda
      componentLambdaParameters:
        eventSources:
          - topic: local/topic
            type: PUB_SUB
        inputPayloadEncodingType: json
        pinned: true
        maxQueueSize: 1000
        maxInstancesCount: 100
        maxIdleTimeInSeconds: 60
        timeoutInSeconds: 3
        statusTimeoutInSeconds: 60
        linuxProcessParams:
          isolationMode: NoContainer
          containerParams:
            memorySizeInKB: 16384
  ggipc.demo.Subscriber:
    componentVersion: 1.0.0
    tokenFile: subscriber.token
"#;

/// The demo's Lambda handler.
// One blank line, not PEP 8's two: the print is then on line 4, as in the
// Greengrass example's log (`lambda_function.py:4,Event : .`).
const DEMO_LAMBDA: &str = r#"import json

def lambda_handler(event, context):
    print("Event : ", json.dumps(event))
"#;

const PUBLISHER_RECIPE: &str =
    include_str!("../../client/recipes/com.example.Publisher-1.0.0.yaml");

const SUBSCRIBER_RECIPE: &str = r#"RecipeFormatVersion: '2020-01-25'
ComponentName: ggipc.demo.Subscriber
ComponentVersion: '1.0.0'
ComponentDescription: An identity allowed to watch local/topic.
ComponentConfiguration:
  DefaultConfiguration:
    accessControl:
      aws.greengrass.ipc.pubsub:
        ggipc.demo.Subscriber:pubsub:1:
          policyDescription: Subscribe to local/topic.
          operations: ['aws.greengrass#SubscribeToTopic']
          resources: ['local/topic']
"#;

/// The demo links the publisher sample into its artifact folder.
const PUBLISHER_BINARY: &str = "ggipc-publisher-sample";

fn demo_deployment(root: &Path) -> Result<config::Deployment, String> {
    let dir = root.join("demo");
    let recipes = dir.join("recipes");
    std::fs::create_dir_all(&recipes)
        .map_err(|e| format!("cannot create {}: {e}", recipes.display()))?;
    for (name, text) in [
        ("com.example.Publisher-1.0.0.yaml", PUBLISHER_RECIPE),
        ("ggipc.demo.Subscriber-1.0.0.yaml", SUBSCRIBER_RECIPE),
    ] {
        std::fs::write(recipes.join(name), text)
            .map_err(|e| format!("cannot write the demo recipe {name}: {e}"))?;
    }
    let artifacts = dir.join("artifacts/com.example.Publisher/1.0.0");
    std::fs::create_dir_all(&artifacts)
        .map_err(|e| format!("cannot create {}: {e}", artifacts.display()))?;
    // The separately built sample if it is there; otherwise the broker's own
    // binary, which runs the sample when started under that name.
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let sample = exe
        .parent()
        .map(|d| d.join(PUBLISHER_BINARY))
        .filter(|p| p.is_file())
        .unwrap_or(exe);
    let link = artifacts.join(PUBLISHER_BINARY);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&sample, &link)
        .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
    let lambda = dir.join("lambda");
    std::fs::create_dir_all(&lambda)
        .map_err(|e| format!("cannot create {}: {e}", lambda.display()))?;
    std::fs::write(lambda.join("lambda_function.py"), DEMO_LAMBDA)
        .map_err(|e| format!("cannot write the demo Lambda: {e}"))?;
    let file = dir.join("deployment.yaml");
    std::fs::write(&file, DEMO_DEPLOYMENT)
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    config::load(&file, Some(root)).map_err(|e| e.to_string())
}

/// The signals the broker handles, installed before it says it is ready:
/// a signal sent the moment `ready` is logged must not meet the default
/// action (which for all three is to die on the spot, leaving the socket
/// file and the components behind).
struct Signals {
    /// SIGTERM and SIGINT.
    stop: Option<(Signal, Signal)>,
    hangup: Option<Signal>,
}

impl Signals {
    fn install() -> Self {
        let stop = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            // Without the handlers the broker can only be killed; say so
            // and keep serving.
            _ => {
                tracing::error!("cannot install the SIGTERM and SIGINT handlers");
                None
            }
        };
        let hangup = signal(SignalKind::hangup()).ok();
        if hangup.is_none() {
            tracing::error!("cannot install the SIGHUP handler; reloading is off");
        }
        Self { stop, hangup }
    }
}

async fn shutdown_signal(stop: Option<(Signal, Signal)>) {
    let Some((mut term, mut int)) = stop else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        _ = int.recv() => tracing::info!("SIGINT"),
    }
}

/// SIGHUP re-reads the deployment: added components start, removed ones
/// stop, changed ones restart, and policies apply to live connections from
/// their next operation. A document that does not load is reported and the
/// running deployment stays.
async fn reload_on_sighup(
    hangup: Option<Signal>,
    file: Option<PathBuf>,
    root: Option<PathBuf>,
    broker: Arc<Broker>,
    supervisor: Arc<Supervisor>,
) {
    let Some(mut hup) = hangup else {
        return;
    };
    while hup.recv().await.is_some() {
        let loaded = match &file {
            Some(f) => config::load(f, root.as_deref()).map_err(|e| e.to_string()),
            None => demo_deployment(&broker.deployment().root),
        };
        let deployment = match loaded {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "SIGHUP: deployment not reloaded");
                continue;
            }
        };
        for warning in &deployment.warnings {
            tracing::warn!("{warning}");
        }
        roll_out(&broker, &supervisor, deployment).await;
        if let Err(e) = broker.write_cli_identity(&supervisor.context().socket) {
            tracing::warn!(error = %e, "cannot write the operator identity");
        }
    }
}

/// How long changed components must stay up before a deployment counts as
/// successful.
const ROLLBACK_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Applies a new deployment the way the nucleus does: subscribers of
/// component updates hear of it first and may defer it; then components
/// stop, start and restart; with `failureHandlingPolicy: ROLLBACK` a
/// changed or added component that fails to come up puts the previous
/// deployment back; subscribers hear when it is done.
async fn roll_out(
    broker: &Arc<Broker>,
    supervisor: &Arc<Supervisor>,
    deployment: config::Deployment,
) {
    static DEPLOYMENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = format!(
        "local-{}",
        DEPLOYMENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let policies = deployment.policies.clone();
    let previous = (*broker.deployment()).clone();
    let planned = broker.plan(&deployment);
    let notify = policies.notify_components && !planned.is_empty();
    if notify {
        broker
            .component_updates()
            .before_update(&id, policies.timeout)
            .await;
    }
    let plan = match supervisor.reload(|| broker.reload(deployment)).await {
        Ok(plan) => plan,
        Err(e) => {
            tracing::error!(deployment = %id, error = %e, "SIGHUP: deployment not reloaded");
            return;
        }
    };
    tracing::info!(
        deployment = %id,
        added = ?plan.added,
        removed = ?plan.removed,
        changed = ?plan.changed,
        "SIGHUP: deployment reloaded"
    );
    if policies.rollback {
        use ggipc_broker::states::LifecycleState::{Broken, Errored};
        // A run step counts as RUNNING as soon as it is launched, so health
        // is judged over a settling window: a component that errors within
        // it failed to come up.
        let settle = policies.timeout.min(ROLLBACK_SETTLE);
        let started: Vec<String> = plan.added.iter().chain(&plan.changed).cloned().collect();
        let failed = supervisor
            .context()
            .states
            .wait_for_any(&started, &[Errored, Broken], settle)
            .await;
        if !failed.is_empty() {
            tracing::warn!(deployment = %id, failed = ?failed, "deployment failed; rolling back");
            match supervisor.reload(|| broker.reload(previous)).await {
                Ok(_) => tracing::info!(deployment = %id, "deployment rolled back"),
                Err(e) => tracing::error!(deployment = %id, error = %e, "rollback failed"),
            }
        }
    }
    if notify {
        broker.component_updates().after_update(&id);
    }
}

fn init_logging(logs: Option<LogConfig>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // RUST_LOG takes `level` or `target=level,…` directives. The `Targets`
    // filter reads them without a regex engine, which keeps idle RSS down.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO)
        });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .with(logs.map(GreengrassLogLayer::new))
        .with(filter)
        .init();
}

fn main() -> ExitCode {
    // Started through the demo's artifact link: be the publisher sample.
    let invoked = std::env::args_os().next().map(PathBuf::from);
    if invoked.as_deref().and_then(Path::file_name) == Some(PUBLISHER_BINARY.as_ref()) {
        return ggipc_client::publisher_sample::main();
    }
    let args = Args::parse();
    let deployment = match &args.deployment {
        Some(file) => config::load(file, args.root.as_deref()).map_err(|e| e.to_string()),
        None => demo_deployment(
            args.root
                .as_deref()
                .unwrap_or(Path::new(config::DEFAULT_ROOT)),
        ),
    };
    let deployment = match deployment {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ggipc-broker: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = LogConfig::under(&deployment.root);
    init_logging(Some(logs.clone()));
    for warning in &deployment.warnings {
        tracing::warn!("{warning}");
    }
    // One thread by default: on a small device the clients need the other
    // cores, and handing a message between threads costs tens of
    // microseconds there (see the README's measurements).
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ggipc-broker: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let signals = Signals::install();
        let server = match Server::bind(&deployment.socket_path, deployment.socket_mode) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ggipc-broker: {e}");
                return ExitCode::FAILURE;
            }
        };
        let components = deployment.components.len();
        let broker = match Broker::new(deployment) {
            Ok(b) => Arc::new(b),
            Err(e) => {
                eprintln!("ggipc-broker: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = ggipc_broker::iotcore::start(&broker) {
            eprintln!("ggipc-broker: {e}");
            return ExitCode::FAILURE;
        }
        let supervisor = Arc::new(Supervisor::new(LaunchContext {
            broker: broker.clone(),
            states: Arc::new(ComponentStates::default()),
            logs,
            socket: server.connect_path().to_path_buf(),
        }));
        broker.attach(&supervisor);
        // Before `ready`: whoever waits for it may read the operator identity
        // at once.
        if let Err(e) = broker.write_cli_identity(server.connect_path()) {
            tracing::warn!(error = %e, "cannot write the operator identity under cli_ipc_info");
        }
        tracing::info!(
            socket = %server.connect_path().display(),
            components,
            "ready"
        );
        supervisor.start_all();
        tokio::spawn(reload_on_sighup(
            signals.hangup,
            args.deployment.clone(),
            args.root.clone(),
            broker.clone(),
            supervisor.clone(),
        ));
        // Components stop first, while IPC still works for their last words;
        // then connections close and the socket goes.
        let stopping = supervisor.clone();
        server
            .run(broker, async move {
                shutdown_signal(signals.stop).await;
                stopping.stop_all().await;
            })
            .await;
        ExitCode::SUCCESS
    })
}

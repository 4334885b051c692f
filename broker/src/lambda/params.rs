//! A Lambda function's parameters, in the two shapes they come in.
//!
//! - The deployment's `lambdaFunction` section, shaped like the Greengrass
//!   API's `LambdaFunctionRecipeSource` (`handler`, `runtime`, `codePath` in
//!   place of the function ARN, `componentLambdaParameters`). Keys match
//!   without regard to case, so the API's `memorySizeInKB`, the CDK's
//!   `memorySizeInKb` and CloudFormation's `MemorySizeInKB` are all read.
//! - The configuration the device shows (`lambda.md` §2.1): `pubsubTopics`
//!   keyed "0", "1", …, `containerMode`, `containerParams.memorySize`,
//!   `lambdaExecutionParameters.EnvironmentVariables`, and the tunables at
//!   the top level. [`device_configuration`] turns the first into the
//!   second at load time; the launcher reads its tunables from the second
//!   (after the deployment's merge), so a `configurationUpdate` can change
//!   them as it would on a device.
//!
//! Numbers are accepted as integers, floats with no fraction (`1000.0`, as
//! the nucleus' config store prints them) and numeric strings (`"60"`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value, json};

/// `lambda.md` §2.2 defaults.
const DEFAULT_TIMEOUT_S: u64 = 3;
const DEFAULT_STATUS_TIMEOUT_S: u64 = 60;
const DEFAULT_MAX_IDLE_S: u64 = 60;
const DEFAULT_MAX_INSTANCES: u64 = 100;
const DEFAULT_MAX_QUEUE: u64 = 1000;
const DEFAULT_MEMORY_KB: u64 = 16384;
/// The cloud's validator refuses numbers above this.
const MAX_NUMBER: u64 = 2_147_483_647;

/// How a message's bytes become the handler's `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// Parsed as JSON.
    Json,
    /// The raw bytes.
    Binary,
}

impl Encoding {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Binary => "binary",
        }
    }
}

/// Where an event source's messages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceKind {
    /// Local publish/subscribe.
    PubSub,
    /// AWS IoT Core MQTT, through the bridge.
    IotCore,
}

impl SourceKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::PubSub => "PUB_SUB",
            Self::IotCore => "IOT_CORE",
        }
    }
}

/// One entry of `eventSources` / `pubsubTopics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventSource {
    /// Topic filter; wildcards allowed for both kinds.
    pub(crate) topic: String,
    /// Local or IoT Core.
    pub(crate) kind: SourceKind,
}

/// `containerMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContainerMode {
    /// A plain process.
    NoContainer,
    /// A process under the memory limit (see `memory.rs`).
    GreengrassContainer,
}

impl ContainerMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::NoContainer => "NoContainer",
            Self::GreengrassContainer => "GreengrassContainer",
        }
    }
}

/// The tunables of a Lambda function, read from its device configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Params {
    /// Event sources, in index order.
    pub(crate) sources: Vec<EventSource>,
    /// Payload encoding.
    pub(crate) encoding: Encoding,
    /// `lambdaExecutionParameters.EnvironmentVariables`.
    pub(crate) environment: Vec<(String, String)>,
    /// Isolation.
    pub(crate) container_mode: ContainerMode,
    /// `containerParams.memorySize`, KB.
    pub(crate) memory_kb: u64,
    /// `containerParams.mountROSysfs`.
    pub(crate) mount_ro_sysfs: bool,
    /// Number of `containerParams.volumes` and `devices` entries.
    pub(crate) volumes: usize,
    /// Number of `containerParams.devices` entries.
    pub(crate) devices: usize,
    /// One long-lived worker, or workers on demand.
    pub(crate) pinned: bool,
    /// Longest one invocation may run.
    pub(crate) timeout: Duration,
    /// Longest a worker may take to import its handler.
    pub(crate) status_timeout: Duration,
    /// Idle time after which an on-demand worker exits.
    pub(crate) max_idle: Duration,
    /// Most on-demand workers at once.
    pub(crate) max_instances: usize,
    /// Most work items waiting (the one a worker is handling not counted).
    pub(crate) max_queue: usize,
    /// Values the cloud would have refused or that are not applied, for
    /// the component log.
    pub(crate) warnings: Vec<String>,
}

/// How to start the function's workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Function {
    /// `module.function`.
    pub(crate) handler: String,
    /// `python3.11` and the like.
    pub(crate) runtime: String,
    /// The code folder as written (relative to the deployment's folder), or
    /// None for a Lambda recipe, whose code is its artifact.
    pub(crate) code_path: Option<PathBuf>,
    /// The function ARN, if one was given.
    pub(crate) arn: Option<String>,
    /// Arguments after `--handler=` on the runtime's command line.
    pub(crate) exec_args: Vec<String>,
    /// A ggipc extension: the interpreter to run, overriding the runtime's
    /// lookup on `PATH`.
    pub(crate) interpreter: Option<PathBuf>,
}

/// Key lookup that ignores ASCII case.
fn get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn first<'v>(map: &'v Map<String, Value>, keys: &[&str]) -> Option<&'v Value> {
    keys.iter().find_map(|k| get(map, k))
}

fn object<'v>(v: &'v Value, key: &str) -> Result<&'v Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{key}: expected a map, found {v}"))
}

fn string(v: &Value, key: &str) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(format!("{key}: expected a string, found {v}")),
    }
}

/// A whole number given as an integer, a float with no fraction or a
/// numeric string.
pub(crate) fn number(v: &Value, key: &str) -> Result<u64, String> {
    let bad = || format!("{key}: expected a whole number, found {v}");
    let float = |f: f64| {
        // Exactly representable whole numbers only: 1000.0 is 1000,
        // 2.5 and -1.0 are refused.
        if f.fract() == 0.0 && (0.0..=MAX_NUMBER as f64).contains(&f) {
            Some(f as u64)
        } else {
            None
        }
    };
    let n = match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(float)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(float))
        }
        _ => None,
    }
    .ok_or_else(bad)?;
    if n > MAX_NUMBER {
        return Err(format!("{key}: {n} is above {MAX_NUMBER}"));
    }
    Ok(n)
}

fn boolean(v: &Value, key: &str) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(format!("{key}: expected true or false, found {v}")),
    }
}

/// A list given as a list or as a map keyed "0", "1", … (the device form).
fn indexed_list<'v>(v: &'v Value, key: &str) -> Result<Vec<&'v Value>, String> {
    match v {
        Value::Array(items) => Ok(items.iter().collect()),
        Value::Object(map) => {
            let mut entries: Vec<(u64, &Value)> = map
                .iter()
                .map(|(k, v)| {
                    k.parse::<u64>()
                        .map(|i| (i, v))
                        .map_err(|_| format!("{key}: key {k:?} is not an index"))
                })
                .collect::<Result<_, _>>()?;
            entries.sort_by_key(|(i, _)| *i);
            Ok(entries.into_iter().map(|(_, v)| v).collect())
        }
        Value::Null => Ok(Vec::new()),
        _ => Err(format!("{key}: expected a list, found {v}")),
    }
}

/// `{"0": a, "1": b}` from `[a, b]`.
fn index_keyed(items: Vec<Value>) -> Value {
    Value::Object(
        items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
    )
}

fn event_source(v: &Value, key: &str) -> Result<EventSource, String> {
    let map = object(v, key)?;
    let topic = match get(map, "topic") {
        Some(t) => string(t, &format!("{key}.topic"))?,
        None => return Err(format!("{key}.topic: missing")),
    };
    ggipc_protocol::topic::validate_filter(&topic)
        .map_err(|e| format!("{key}.topic: {topic:?}: {e}"))?;
    let kind = match get(map, "type") {
        None => return Err(format!("{key}.type: missing (PUB_SUB or IOT_CORE)")),
        Some(t) => match string(t, &format!("{key}.type"))?
            .to_ascii_uppercase()
            .as_str()
        {
            "PUB_SUB" => SourceKind::PubSub,
            "IOT_CORE" => SourceKind::IotCore,
            other => {
                return Err(format!(
                    "{key}.type: expected PUB_SUB or IOT_CORE, found {other:?}"
                ));
            }
        },
    };
    Ok(EventSource { topic, kind })
}

fn encoding(v: &Value, key: &str) -> Result<Encoding, String> {
    match string(v, key)?.to_ascii_lowercase().as_str() {
        "json" => Ok(Encoding::Json),
        "binary" => Ok(Encoding::Binary),
        other => Err(format!("{key}: expected json or binary, found {other:?}")),
    }
}

fn container_mode(v: &Value, key: &str) -> Result<ContainerMode, String> {
    let text = string(v, key)?;
    if text.eq_ignore_ascii_case("NoContainer") {
        Ok(ContainerMode::NoContainer)
    } else if text.eq_ignore_ascii_case("GreengrassContainer") {
        Ok(ContainerMode::GreengrassContainer)
    } else {
        Err(format!(
            "{key}: expected NoContainer or GreengrassContainer, found {text:?}"
        ))
    }
}

fn environment(v: &Value, key: &str) -> Result<Map<String, Value>, String> {
    let map = object(v, key)?;
    let mut out = Map::new();
    for (name, value) in map {
        if name.is_empty() {
            return Err(format!("{key}: a variable name is empty"));
        }
        out.insert(
            name.clone(),
            Value::String(string(value, &format!("{key}.{name}"))?),
        );
    }
    Ok(out)
}

/// `permission` of a volume or device: `ro` unless `rw`.
fn permission(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match get(map, "permission") {
        None => Ok("ro".to_owned()),
        Some(p) => match string(p, &format!("{key}.permission"))?
            .to_ascii_lowercase()
            .as_str()
        {
            p @ ("ro" | "rw") => Ok(p.to_owned()),
            other => Err(format!(
                "{key}.permission: expected ro or rw, found {other:?}"
            )),
        },
    }
}

fn add_group_owner(map: &Map<String, Value>, key: &str) -> Result<bool, String> {
    get(map, "addGroupOwner").map_or(Ok(false), |v| boolean(v, &format!("{key}.addGroupOwner")))
}

/// A volume in the device's spelling; both `sourcePath` (API) and `source`
/// (what the transformer writes to devices) are read (`lambda.md` §2.3).
fn volume(v: &Value, key: &str) -> Result<Value, String> {
    let map = object(v, key)?;
    let path = |names: &[&str], what: &str| -> Result<String, String> {
        first(map, names)
            .ok_or_else(|| format!("{key}.{}: missing", names[0]))
            .and_then(|p| string(p, &format!("{key}.{what}")))
    };
    Ok(json!({
        "source": path(&["sourcePath", "source"], "sourcePath")?,
        "destination": path(&["destinationPath", "destination"], "destinationPath")?,
        "permission": permission(map, key)?,
        "addGroupOwner": add_group_owner(map, key)?,
    }))
}

fn device(v: &Value, key: &str) -> Result<Value, String> {
    let map = object(v, key)?;
    let path = match get(map, "path") {
        Some(p) => string(p, &format!("{key}.path"))?,
        None => return Err(format!("{key}.path: missing")),
    };
    Ok(json!({
        "path": path,
        "permission": permission(map, key)?,
        "addGroupOwner": add_group_owner(map, key)?,
    }))
}

/// The configuration a device shows for the function declared by the
/// `lambdaFunction` section `section` (`lambda.md` §2.1 and the example in
/// §2.5); missing values take their defaults (§2.2). `execArgs` is not part
/// of it, as on a device: the launcher reads it from the section.
pub fn device_configuration(section: &Value) -> Result<Value, String> {
    let section = object(section, "lambdaFunction")?;
    let empty = Map::new();
    let params = match get(section, "componentLambdaParameters") {
        Some(p) => object(p, "componentLambdaParameters")?,
        None => &empty,
    };
    let key = |k: &str| format!("componentLambdaParameters.{k}");
    let sources = match get(params, "eventSources") {
        Some(v) => indexed_list(v, &key("eventSources"))?
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let s = event_source(s, &key(&format!("eventSources[{i}]")))?;
                Ok(json!({"topic": s.topic, "type": s.kind.as_str()}))
            })
            .collect::<Result<Vec<_>, String>>()?,
        None => Vec::new(),
    };
    let encoding = match get(params, "inputPayloadEncodingType") {
        Some(v) => encoding(v, &key("inputPayloadEncodingType"))?,
        None => Encoding::Json,
    };
    let env = match get(params, "environmentVariables") {
        Some(v) => environment(v, &key("environmentVariables"))?,
        None => Map::new(),
    };
    let linux = match get(params, "linuxProcessParams") {
        Some(v) => object(v, &key("linuxProcessParams"))?,
        None => &empty,
    };
    let mode = match get(linux, "isolationMode") {
        Some(v) => container_mode(v, &key("linuxProcessParams.isolationMode"))?,
        None => ContainerMode::GreengrassContainer,
    };
    let container = match get(linux, "containerParams") {
        Some(v) => object(v, &key("linuxProcessParams.containerParams"))?,
        None => &empty,
    };
    let ckey = |k: &str| key(&format!("linuxProcessParams.containerParams.{k}"));
    let memory = match first(container, &["memorySizeInKB", "memorySize"]) {
        Some(v) => number(v, &ckey("memorySizeInKB"))?,
        None => DEFAULT_MEMORY_KB,
    };
    let ro_sysfs = match get(container, "mountROSysfs") {
        Some(v) => boolean(v, &ckey("mountROSysfs"))?,
        None => false,
    };
    let volumes = match get(container, "volumes") {
        Some(v) => indexed_list(v, &ckey("volumes"))?
            .into_iter()
            .enumerate()
            .map(|(i, v)| volume(v, &ckey(&format!("volumes[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let devices = match get(container, "devices") {
        Some(v) => indexed_list(v, &ckey("devices"))?
            .into_iter()
            .enumerate()
            .map(|(i, v)| device(v, &ckey(&format!("devices[{i}]"))))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let pinned = match get(params, "pinned") {
        Some(v) => boolean(v, &key("pinned"))?,
        None => true,
    };
    let num = |name: &str, default: u64| -> Result<u64, String> {
        get(params, name).map_or(Ok(default), |v| number(v, &key(name)))
    };
    if let Some(args) = get(params, "execArgs") {
        exec_args(args, &key("execArgs"))?;
    }
    Ok(json!({
        "pubsubTopics": index_keyed(sources),
        "inputPayloadEncodingType": encoding.as_str(),
        "lambdaExecutionParameters": {"EnvironmentVariables": env},
        "containerMode": mode.as_str(),
        "containerParams": {
            "memorySize": memory,
            "mountROSysfs": ro_sysfs,
            "volumes": index_keyed(volumes),
            "devices": index_keyed(devices),
        },
        "pinned": pinned,
        "timeoutInSeconds": num("timeoutInSeconds", DEFAULT_TIMEOUT_S)?,
        "statusTimeoutInSeconds": num("statusTimeoutInSeconds", DEFAULT_STATUS_TIMEOUT_S)?,
        "maxIdleTimeInSeconds": num("maxIdleTimeInSeconds", DEFAULT_MAX_IDLE_S)?,
        "maxInstancesCount": num("maxInstancesCount", DEFAULT_MAX_INSTANCES)?,
        "maxQueueSize": num("maxQueueSize", DEFAULT_MAX_QUEUE)?,
    }))
}

fn exec_args(v: &Value, key: &str) -> Result<Vec<String>, String> {
    let Some(items) = v.as_array() else {
        return Err(format!("{key}: expected a list of strings, found {v}"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, a)| string(a, &format!("{key}[{i}]")))
        .collect()
}

impl Params {
    /// Reads the device configuration `config` (after the deployment's
    /// merge), leniently: missing values take their defaults. Zero where a
    /// count or a time is needed is refused; values under the cloud's
    /// minimums (`lambda.md` §2.2) are used as given, with a warning, so a
    /// local test can run with short times.
    pub(crate) fn from_configuration(config: &Value) -> Result<Self, String> {
        let empty = Map::new();
        let map = match config {
            Value::Object(m) => m,
            Value::Null => &empty,
            other => return Err(format!("configuration: expected a map, found {other}")),
        };
        let mut warnings = Vec::new();
        let sources = match get(map, "pubsubTopics") {
            Some(v) => indexed_list(v, "pubsubTopics")?
                .into_iter()
                .enumerate()
                .map(|(i, s)| event_source(s, &format!("pubsubTopics.{i}")))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let encoding = get(map, "inputPayloadEncodingType").map_or(Ok(Encoding::Json), |v| {
            encoding(v, "inputPayloadEncodingType")
        })?;
        let environment = match get(map, "lambdaExecutionParameters")
            .and_then(Value::as_object)
            .and_then(|p| get(p, "EnvironmentVariables"))
        {
            Some(v) => environment(v, "lambdaExecutionParameters.EnvironmentVariables")?
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                .collect(),
            None => Vec::new(),
        };
        let container_mode = get(map, "containerMode")
            .map_or(Ok(ContainerMode::GreengrassContainer), |v| {
                container_mode(v, "containerMode")
            })?;
        let container = match get(map, "containerParams") {
            Some(v) => object(v, "containerParams")?,
            None => &empty,
        };
        let memory_kb = first(container, &["memorySize", "memorySizeInKB"])
            .map_or(Ok(DEFAULT_MEMORY_KB), |v| {
                number(v, "containerParams.memorySize")
            })?;
        let mount_ro_sysfs = get(container, "mountROSysfs")
            .map_or(Ok(false), |v| boolean(v, "containerParams.mountROSysfs"))?;
        let volumes = get(container, "volumes")
            .map_or(Ok(Vec::new()), |v| {
                indexed_list(v, "containerParams.volumes")
            })?
            .len();
        let devices = get(container, "devices")
            .map_or(Ok(Vec::new()), |v| {
                indexed_list(v, "containerParams.devices")
            })?
            .len();
        let pinned = get(map, "pinned").map_or(Ok(true), |v| boolean(v, "pinned"))?;
        // (key, default, the cloud's minimum)
        let mut positive = |name: &str, default: u64, minimum: u64| -> Result<u64, String> {
            let n = get(map, name).map_or(Ok(default), |v| number(v, name))?;
            if n == 0 {
                return Err(format!("{name}: must be at least 1"));
            }
            if n < minimum {
                warnings.push(format!(
                    "{name} {n} is below {minimum}, the least the Greengrass cloud accepts; used as given"
                ));
            }
            Ok(n)
        };
        let timeout = positive("timeoutInSeconds", DEFAULT_TIMEOUT_S, 1)?;
        let status_timeout = positive("statusTimeoutInSeconds", DEFAULT_STATUS_TIMEOUT_S, 30)?;
        let max_idle = positive("maxIdleTimeInSeconds", DEFAULT_MAX_IDLE_S, 30)?;
        let max_instances = positive("maxInstancesCount", DEFAULT_MAX_INSTANCES, 1)?;
        let max_queue = positive("maxQueueSize", DEFAULT_MAX_QUEUE, 1)?;
        if container_mode == ContainerMode::GreengrassContainer {
            if memory_kb < 2048 {
                warnings.push(format!(
                    "containerParams.memorySize {memory_kb} KB is below 2048 KB, the least the \
                     Greengrass cloud accepts; used as given"
                ));
            }
            // Volumes and devices need a mount namespace, which this
            // launcher does not create: the function sees the host's file
            // system as it is, so a volume's source is only at its own path.
            if volumes > 0 || devices > 0 || mount_ro_sysfs {
                warnings.push(format!(
                    "containerParams: {volumes} volume(s), {devices} device(s) and \
                     mountROSysfs={mount_ro_sysfs} are not applied: ggipc runs the function \
                     without a mount namespace, so it sees the host's file system as it is"
                ));
            }
        }
        let secs = Duration::from_secs;
        Ok(Self {
            sources,
            encoding,
            environment,
            container_mode,
            memory_kb,
            mount_ro_sysfs,
            volumes,
            devices,
            pinned,
            timeout: secs(timeout),
            status_timeout: secs(status_timeout),
            max_idle: secs(max_idle),
            max_instances: usize::try_from(max_instances).unwrap_or(usize::MAX),
            max_queue: usize::try_from(max_queue).unwrap_or(usize::MAX),
            warnings,
        })
    }
}

impl Function {
    /// Reads the launch parameters from a `lambdaFunction` section (or the
    /// section [`section_from_recipe`] made).
    pub(crate) fn from_section(section: &Value) -> Result<Self, String> {
        let map = object(section, "lambdaFunction")?;
        let required = |name: &str| -> Result<String, String> {
            match get(map, name) {
                Some(v) => string(v, &format!("lambdaFunction.{name}")),
                None => Err(format!("lambdaFunction.{name}: missing")),
            }
        };
        let handler = required("handler")?;
        let Some((module, function)) = handler.rsplit_once('.') else {
            return Err(format!(
                "lambdaFunction.handler: {handler:?} is not of the form module.function"
            ));
        };
        if module.is_empty() || function.is_empty() {
            return Err(format!(
                "lambdaFunction.handler: {handler:?} is not of the form module.function"
            ));
        }
        let runtime = required("runtime")?;
        let optional = |name: &str| -> Result<Option<String>, String> {
            get(map, name)
                .map(|v| string(v, &format!("lambdaFunction.{name}")))
                .transpose()
        };
        let exec_args = match get(map, "componentLambdaParameters")
            .and_then(Value::as_object)
            .and_then(|p| get(p, "execArgs"))
        {
            Some(v) => exec_args(v, "lambdaFunction.componentLambdaParameters.execArgs")?,
            None => Vec::new(),
        };
        Ok(Self {
            handler,
            runtime,
            code_path: optional("codePath")?.map(PathBuf::from),
            arn: optional("lambdaArn")?,
            exec_args,
            interpreter: optional("interpreter")?.map(PathBuf::from),
        })
    }
}

/// Keys of a `lambdaFunction` section that mean nothing here, for a
/// warning: a misspelt parameter would otherwise take its default quietly.
pub(crate) fn unknown_keys(section: &Value) -> Vec<String> {
    const TOP: &[&str] = &[
        "handler",
        "runtime",
        "codePath",
        "lambdaArn",
        "interpreter",
        "componentLambdaParameters",
        // Read by the cloud, not by a device.
        "componentName",
        "componentVersion",
        "componentPlatforms",
        "componentDependencies",
    ];
    const PARAMS: &[&str] = &[
        "eventSources",
        "inputPayloadEncodingType",
        "environmentVariables",
        "linuxProcessParams",
        "maxIdleTimeInSeconds",
        "maxInstancesCount",
        "maxQueueSize",
        "pinned",
        "statusTimeoutInSeconds",
        "timeoutInSeconds",
        "execArgs",
    ];
    const LINUX: &[&str] = &["isolationMode", "containerParams"];
    const CONTAINER: &[&str] = &[
        "memorySizeInKB",
        "memorySize",
        "mountROSysfs",
        "volumes",
        "devices",
    ];
    let mut unknown = Vec::new();
    let mut check = |map: Option<&Map<String, Value>>, prefix: &str, known: &[&str]| {
        for key in map.into_iter().flat_map(Map::keys) {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                unknown.push(format!("{prefix}{key}"));
            }
        }
    };
    let top = section.as_object();
    check(top, "", TOP);
    let params = top
        .and_then(|m| get(m, "componentLambdaParameters"))
        .and_then(Value::as_object);
    check(params, "componentLambdaParameters.", PARAMS);
    let linux = params
        .and_then(|m| get(m, "linuxProcessParams"))
        .and_then(Value::as_object);
    check(
        linux,
        "componentLambdaParameters.linuxProcessParams.",
        LINUX,
    );
    let container = linux
        .and_then(|m| get(m, "containerParams"))
        .and_then(Value::as_object);
    check(
        container,
        "componentLambdaParameters.linuxProcessParams.containerParams.",
        CONTAINER,
    );
    unknown
}

/// `ComponentType: aws.greengrass.lambda` recipes.
pub(crate) fn is_lambda_recipe(recipe: &Value) -> bool {
    recipe
        .as_object()
        .and_then(|r| get(r, "ComponentType"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("aws.greengrass.lambda"))
}

/// The `Lifecycle.setenv` entries of a recipe: the top-level lifecycle's
/// and those of Linux manifests (generated Lambda recipes put theirs at the
/// top level and leave the manifests' lifecycles empty).
fn recipe_setenv(recipe: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut add = |lifecycle: Option<&Value>| {
        if let Some(env) = lifecycle
            .and_then(Value::as_object)
            .and_then(|l| get(l, "setenv"))
            .and_then(Value::as_object)
        {
            for (k, v) in env {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    };
    add(get(recipe, "Lifecycle"));
    for manifest in get(recipe, "Manifests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let os = manifest
            .get("Platform")
            .and_then(|p| p.get("os"))
            .and_then(Value::as_str);
        if matches!(os, None | Some("linux" | "*" | "all")) {
            add(manifest.as_object().and_then(|m| get(m, "Lifecycle")));
        }
    }
    out
}

/// For a recipe of type `aws.greengrass.lambda` (as the cloud generates
/// them, `lambda.md` §1), the equivalent `lambdaFunction` section: handler,
/// runtime and ARN from `Lifecycle.setenv` (`AWS_GREENGRASS_LAMBDA_*`),
/// the user's `execArgs` from the arguments after `--handler=` in
/// `AWS_GREENGRASS_LAMBDA_EXEC_ARGS`. No `codePath`: the code is the
/// component's artifact. None for other recipes.
pub fn section_from_recipe(recipe: &Value) -> Option<Value> {
    if !is_lambda_recipe(recipe) {
        return None;
    }
    let map = recipe.as_object()?;
    let env = recipe_setenv(map);
    let text = |k: &str| env.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut section = Map::new();
    if let Some(h) = text("AWS_GREENGRASS_LAMBDA_FUNCTION_HANDLER") {
        section.insert("handler".into(), h.into());
    }
    if let Some(r) = text("AWS_GREENGRASS_LAMBDA_RUNTIME") {
        section.insert("runtime".into(), r.into());
    }
    let arn = text("AWS_GREENGRASS_LAMBDA_ARN").or_else(|| {
        get(map, "ComponentSource")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if let Some(arn) = arn {
        section.insert("lambdaArn".into(), arn.into());
    }
    let args: Vec<String> = text("AWS_GREENGRASS_LAMBDA_EXEC_ARGS")
        .and_then(|a| serde_json::from_str::<Vec<String>>(&a).ok())
        .map(|all| {
            all.iter()
                .skip_while(|a| !a.starts_with("--handler="))
                .skip(1)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    section.insert(
        "componentLambdaParameters".into(),
        json!({ "execArgs": args }),
    );
    Some(Value::Object(section))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parameters of the CDK example, in the CDK's own key spelling,
    /// with numbers in the three accepted forms.
    fn cdk_section() -> Value {
        json!({
            "componentName": "com.example.lambda",
            "handler": "lambda_function.lambda_handler",
            "runtime": "python3.9",
            "codePath": "src/lambda",
            "componentLambdaParameters": {
                "environmentVariables": {"LEVEL": "debug", "N": 1},
                "eventSources": [
                    {"topic": "local/topic", "type": "PUB_SUB"},
                    {"topic": "cmd/#", "type": "IOT_CORE"}
                ],
                "maxIdleTimeInSeconds": 60.0,
                "maxInstancesCount": "100",
                "maxQueueSize": 1000,
                "pinned": true,
                "statusTimeoutInSeconds": 60,
                "timeoutInSeconds": "3.0",
                "inputPayloadEncodingType": "json",
                "execArgs": ["--flag"],
                "linuxProcessParams": {
                    "isolationMode": "GreengrassContainer",
                    "containerParams": {"memorySizeInKb": 16384, "mountRoSysfs": false}
                }
            }
        })
    }

    #[test]
    fn device_configuration_has_the_shape_the_device_shows() {
        let config = device_configuration(&cdk_section()).unwrap();
        assert_eq!(
            config,
            json!({
                "pubsubTopics": {
                    "0": {"topic": "local/topic", "type": "PUB_SUB"},
                    "1": {"topic": "cmd/#", "type": "IOT_CORE"}
                },
                "inputPayloadEncodingType": "json",
                "lambdaExecutionParameters": {"EnvironmentVariables": {"LEVEL": "debug", "N": "1"}},
                "containerMode": "GreengrassContainer",
                "containerParams": {"memorySize": 16384, "mountROSysfs": false, "volumes": {}, "devices": {}},
                "pinned": true,
                "timeoutInSeconds": 3,
                "statusTimeoutInSeconds": 60,
                "maxIdleTimeInSeconds": 60,
                "maxInstancesCount": 100,
                "maxQueueSize": 1000
            })
        );
        let params = Params::from_configuration(&config).unwrap();
        assert_eq!(params.sources.len(), 2);
        assert_eq!(params.sources[1].kind, SourceKind::IotCore);
        assert_eq!(params.timeout, Duration::from_secs(3));
        assert_eq!(params.max_queue, 1000);
        assert!(params.warnings.is_empty(), "{:?}", params.warnings);
        let f = Function::from_section(&cdk_section()).unwrap();
        assert_eq!(f.exec_args, ["--flag"]);
        assert_eq!(f.code_path, Some(PathBuf::from("src/lambda")));
    }

    #[test]
    fn unknown_keys_are_found_at_every_level() {
        let mut section = cdk_section();
        section["lambdaArnn"] = json!("x");
        section["componentLambdaParameters"]["timeoutInSecond"] = json!(3);
        section["componentLambdaParameters"]["linuxProcessParams"]["containerParams"]["memory"] =
            json!(1);
        assert_eq!(
            unknown_keys(&section),
            [
                "lambdaArnn",
                "componentLambdaParameters.timeoutInSecond",
                "componentLambdaParameters.linuxProcessParams.containerParams.memory"
            ]
        );
        assert!(unknown_keys(&cdk_section()).is_empty());
    }

    #[test]
    fn defaults_fill_an_empty_section() {
        let config =
            device_configuration(&json!({"handler": "a.b", "runtime": "python3.11"})).unwrap();
        let p = Params::from_configuration(&config).unwrap();
        assert!(p.pinned);
        assert_eq!(p.container_mode, ContainerMode::GreengrassContainer);
        assert_eq!(p.memory_kb, 16384);
        assert_eq!(p.encoding, Encoding::Json);
        assert_eq!(
            (
                p.timeout.as_secs(),
                p.status_timeout.as_secs(),
                p.max_idle.as_secs()
            ),
            (3, 60, 60)
        );
        assert_eq!((p.max_instances, p.max_queue), (100, 1000));
        assert!(p.sources.is_empty());
    }

    #[test]
    fn device_form_numbers_as_the_config_store_prints_them_are_read() {
        // `lambda.md` §8 row 23.
        let p = Params::from_configuration(&json!({
            "maxQueueSize": 1000.0, "timeoutInSeconds": "60", "memorySize": 16384.0,
            "containerParams": {"memorySize": 16384.0}, "pinned": "false",
            "pubsubTopics": {"1": {"topic": "b", "type": "PUB_SUB"}, "0": {"topic": "a/+", "type": "pub_sub"}}
        }))
        .unwrap();
        assert_eq!(p.max_queue, 1000);
        assert_eq!(p.timeout, Duration::from_secs(60));
        assert!(!p.pinned);
        assert_eq!(p.sources[0].topic, "a/+");
        assert_eq!(p.sources[1].topic, "b");
    }

    #[test]
    fn bad_values_are_refused_with_the_key() {
        let cases = [
            (
                json!({"eventSources": [{"topic": "a/#/b", "type": "PUB_SUB"}]}),
                "eventSources[0].topic",
            ),
            (
                json!({"eventSources": [{"topic": "a", "type": "MQTT"}]}),
                "PUB_SUB or IOT_CORE",
            ),
            (
                json!({"eventSources": [{"topic": "a"}]}),
                "eventSources[0].type: missing",
            ),
            (
                json!({"maxQueueSize": 2.5}),
                "maxQueueSize: expected a whole number",
            ),
            (
                json!({"maxQueueSize": "-1"}),
                "maxQueueSize: expected a whole number",
            ),
            (
                json!({"timeoutInSeconds": 3_000_000_000u64}),
                "above 2147483647",
            ),
            (json!({"inputPayloadEncodingType": "xml"}), "json or binary"),
            (json!({"pinned": "yes"}), "pinned: expected true or false"),
            (
                json!({"linuxProcessParams": {"isolationMode": "Docker"}}),
                "NoContainer or GreengrassContainer",
            ),
            (json!({"execArgs": "x"}), "execArgs: expected a list"),
            (
                json!({"linuxProcessParams": {"containerParams": {"volumes": [{"sourcePath": "/a"}]}}}),
                "destinationPath: missing",
            ),
        ];
        for (params, needle) in cases {
            let err =
                device_configuration(&json!({"componentLambdaParameters": params})).unwrap_err();
            assert!(err.contains(needle), "{params}: {err}");
        }
        let err = Params::from_configuration(&json!({"maxQueueSize": 0})).unwrap_err();
        assert!(err.contains("at least 1"), "{err}");
    }

    #[test]
    fn low_values_and_unapplied_container_settings_warn() {
        let p = Params::from_configuration(&json!({
            "statusTimeoutInSeconds": 2, "containerMode": "GreengrassContainer",
            "containerParams": {"memorySize": 1024, "volumes": {"0": {"source": "/a", "destination": "/b"}}}
        }))
        .unwrap();
        assert_eq!(p.status_timeout, Duration::from_secs(2));
        assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
        assert_eq!(p.volumes, 1);
    }

    #[test]
    fn volumes_take_either_spelling() {
        let config = device_configuration(
            &json!({"componentLambdaParameters": {"linuxProcessParams": {
            "containerParams": {
                "volumes": [{"sourcePath": "/a", "destinationPath": "/b", "permission": "rw"},
                            {"source": "/c", "destination": "/d", "addGroupOwner": "true"}],
                "devices": [{"path": "/dev/x"}]
            }}}}),
        )
        .unwrap();
        assert_eq!(
            config["containerParams"]["volumes"],
            json!({"0": {"source": "/a", "destination": "/b", "permission": "rw", "addGroupOwner": false},
                   "1": {"source": "/c", "destination": "/d", "permission": "ro", "addGroupOwner": true}})
        );
        assert_eq!(
            config["containerParams"]["devices"],
            json!({"0": {"path": "/dev/x", "permission": "ro", "addGroupOwner": false}})
        );
    }

    #[test]
    fn handler_and_runtime_are_required() {
        for (section, needle) in [
            (json!({"runtime": "python3.11"}), "handler: missing"),
            (
                json!({"handler": "nodot", "runtime": "python3.11"}),
                "module.function",
            ),
            (json!({"handler": "a.b"}), "runtime: missing"),
        ] {
            let err = Function::from_section(&section).unwrap_err();
            assert!(err.contains(needle), "{section}: {err}");
        }
    }

    #[test]
    fn a_generated_lambda_recipe_gives_its_handler_runtime_arn_and_args() {
        let recipe = json!({
            "ComponentName": "cloud-hello",
            "ComponentType": "aws.greengrass.lambda",
            "ComponentSource": "arn:aws:lambda:us-west-2:123456789012:function:cloud-hello:2",
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {}}],
            "Lifecycle": {"setenv": {
                "AWS_GREENGRASS_LAMBDA_FUNCTION_HANDLER": "app.handler",
                "AWS_GREENGRASS_LAMBDA_RUNTIME": "python3.8",
                "AWS_GREENGRASS_LAMBDA_EXEC_ARGS": "[\"python3.8\",\"-u\",\"/runtime/python/lambda_runtime.py\",\"--handler=app.handler\",\"--arg\"]"
            }}
        });
        let f = Function::from_section(&section_from_recipe(&recipe).unwrap()).unwrap();
        assert_eq!(f.handler, "app.handler");
        assert_eq!(f.runtime, "python3.8");
        assert_eq!(
            f.arn.as_deref(),
            Some("arn:aws:lambda:us-west-2:123456789012:function:cloud-hello:2")
        );
        assert_eq!(f.exec_args, ["--arg"]);
        assert_eq!(f.code_path, None);
        assert!(section_from_recipe(&json!({"ComponentType": "aws.greengrass.generic"})).is_none());
    }
}

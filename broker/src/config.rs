//! The deployment document and the recipes it names.
//!
//! The document is shaped like a Greengrass deployment, plus broker settings:
//!
//! ```yaml
//! system:
//!   rootPath: /greengrass/v2        # --root overrides
//!   ipcSocketPath: /run/ggipc.sock  # default <rootPath>/ipc.socket
//!   thingName: my-thing
//! recipeDir: recipes                # relative to this file
//! broker:
//!   maxConnections: 1024
//!   maxStreamsPerConnection: 256
//!   maxFrameBytes: 25165824
//!   connectTimeoutMs: 10000
//!   outboundQueueBytes: 4194304
//!   slowSubscriber: drop            # or: disconnect
//!   socketMode: "0666"
//! components:
//!   com.example.Publisher:
//!     componentVersion: 1.0.0
//!     configurationUpdate:
//!       merge: '{"accessControl": {…}}'   # a JSON string, as the AWS API has it, or a map
//!     tokenFile: /tmp/publisher.token
//! ```
//!
//! Unknown keys are ignored with a warning; anything malformed is refused with
//! the file, the key and the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Where the nucleus keeps its root by default.
pub const DEFAULT_ROOT: &str = "/greengrass/v2";

/// A deployment document could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    /// The file at fault.
    pub file: PathBuf,
    /// The key path inside it, dotted; empty for the whole file.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// What to do with a subscriber whose outbound queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowSubscriber {
    /// Drop the event, count it and log at a limited rate.
    Drop,
    /// Close the subscriber's connection.
    Disconnect,
}

/// `deploymentPolicies` of a deployment document, as the Greengrass API has
/// them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploymentPolicies {
    /// `failureHandlingPolicy: ROLLBACK` (the default) puts the previous
    /// deployment back when a changed component fails to start.
    pub rollback: bool,
    /// `componentUpdatePolicy.action: NOTIFY_COMPONENTS` (the default) tells
    /// `SubscribeToComponentUpdates` subscribers before and after.
    pub notify_components: bool,
    /// `componentUpdatePolicy.timeoutInSeconds`: how long subscribers have
    /// to answer, and how long changed components have to come up.
    pub timeout: std::time::Duration,
}

impl Default for DeploymentPolicies {
    fn default() -> Self {
        Self {
            rollback: true,
            notify_components: true,
            timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Bounds on what one client may make the broker hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at once; more are closed at accept.
    pub max_connections: usize,
    /// Open streams per connection.
    pub max_streams_per_connection: usize,
    /// Largest frame accepted from a client.
    pub max_frame_bytes: usize,
    /// Time a client has to complete CONNECT.
    pub connect_timeout_ms: u64,
    /// Bytes of events queued towards one connection before the slow
    /// subscriber policy applies.
    pub outbound_queue_bytes: usize,
    /// The slow subscriber policy.
    pub slow_subscriber: SlowSubscriber,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_streams_per_connection: 256,
            max_frame_bytes: ggipc_protocol::frame::DEFAULT_MAX_DECODE_LEN,
            connect_timeout_ms: 10_000,
            outbound_queue_bytes: 4 * 1024 * 1024,
            slow_subscriber: SlowSubscriber::Drop,
        }
    }
}

/// One component of the deployment: an identity with a configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    /// Component name.
    pub name: String,
    /// Version the deployment asks for.
    pub version: String,
    /// The recipe's default configuration with the deployment's merge applied.
    pub configuration: Value,
    /// Where to write the component's token, if anywhere.
    pub token_file: Option<PathBuf>,
    /// The recipe, as parsed, for the supervisor (`Null` for a Lambda
    /// function declared by its `lambdaFunction` section).
    pub recipe: Value,
    /// `runWith.posixUser` (`user` or `user:group`).
    pub posix_user: Option<String>,
    /// The `lambdaFunction` section, for the Lambda launcher.
    pub lambda_function: Option<Value>,
}

/// A loaded deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    /// The broker's root folder.
    pub root: PathBuf,
    /// Where the IPC socket lives.
    pub socket_path: PathBuf,
    /// `system.thingName`, for `{iot:thingName}`.
    pub thing_name: Option<String>,
    /// Mode bits of the socket file.
    pub socket_mode: u32,
    /// Limits.
    pub limits: Limits,
    /// How a reload is rolled out.
    pub policies: DeploymentPolicies,
    /// Components by name.
    pub components: BTreeMap<String, Component>,
    /// The `iotCore` section as written, read by the IoT Core bridge.
    pub iot_core: Option<Value>,
    /// `artifactDir`: artifacts of component C version V are in
    /// `<artifactDir>/C/V`.
    pub artifact_dir: Option<PathBuf>,
    /// `system.awsRegion`, given to components as `AWS_REGION`.
    pub aws_region: Option<String>,
    /// `system.rootCaPath`, given to components as `GG_ROOT_CA_PATH`.
    pub root_ca_path: Option<String>,
    /// `broker.cliGroup`: a group (name or id) whose members may use the
    /// operator identity in `<root>/cli_ipc_info/`.
    pub cli_group: Option<String>,
    /// The document this came from, for error messages of sections read
    /// elsewhere.
    pub file: PathBuf,
    /// Warnings met while loading (unknown keys and the like).
    pub warnings: Vec<String>,
}

impl Deployment {
    /// A deployment with no components, rooted at `root`.
    pub fn empty(root: PathBuf) -> Self {
        Self {
            socket_path: root.join("ipc.socket"),
            root,
            thing_name: None,
            socket_mode: 0o666,
            limits: Limits::default(),
            policies: DeploymentPolicies::default(),
            components: BTreeMap::new(),
            iot_core: None,
            artifact_dir: None,
            aws_region: None,
            root_ca_path: None,
            cli_group: None,
            file: PathBuf::new(),
            warnings: Vec::new(),
        }
    }
}

/// Parses YAML or JSON text into a JSON value. JSON is tried first because
/// recipes are often JSON and serde_json's errors are clearer for it.
pub fn parse_document(text: &str) -> Result<Value, String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return serde_json::from_str(text).map_err(|e| e.to_string());
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
}

struct Ctx<'a> {
    file: &'a Path,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn warn_unknown(&mut self, map: &Map<String, Value>, prefix: &str, known: &[&str]) {
        for key in map.keys() {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                self.warnings.push(format!(
                    "{}: {path}: unknown key, ignored",
                    self.file.display()
                ));
            }
        }
    }

    fn object<'v>(&self, v: &'v Value, key: &str) -> Result<&'v Map<String, Value>, ConfigError> {
        v.as_object()
            .ok_or_else(|| self.err(key, format!("expected a map, found {}", kind(v))))
    }

    fn string(&self, v: &Value, key: &str) -> Result<String, ConfigError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            // YAML readers turn `1.0` into a number; a version is still meant.
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(self.err(key, format!("expected a string, found {}", kind(v)))),
        }
    }

    fn uint(&self, v: &Value, key: &str) -> Result<u64, ConfigError> {
        v.as_u64()
            .ok_or_else(|| self.err(key, format!("expected a whole number, found {v}")))
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Key lookup that ignores ASCII case, as the nucleus does for recipes.
fn get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// Reads a deployment document. `root_override` is `--root`.
pub fn load(file: &Path, root_override: Option<&Path>) -> Result<Deployment, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        key: String::new(),
        reason: format!("cannot read: {e}"),
    })?;
    let base = file.parent().unwrap_or(Path::new("."));
    from_text(&text, file, base, root_override)
}

/// Parses a deployment document held in `text`; `file` names it in errors
/// and `base` resolves its relative paths.
pub fn from_text(
    text: &str,
    file: &Path,
    base: &Path,
    root_override: Option<&Path>,
) -> Result<Deployment, ConfigError> {
    let mut ctx = Ctx {
        file,
        warnings: Vec::new(),
    };
    let doc = parse_document(text).map_err(|e| ctx.err("", e))?;
    let top = ctx.object(&doc, "")?;
    ctx.warn_unknown(
        top,
        "",
        &[
            "system",
            "recipeDir",
            "artifactDir",
            "broker",
            "components",
            "iotCore",
            "deploymentPolicies",
        ],
    );

    let mut system_root = None;
    let mut socket_path = None;
    let mut thing_name = None;
    let mut aws_region = None;
    let mut root_ca_path = None;
    if let Some(system) = get(top, "system") {
        let system = ctx.object(system, "system")?;
        ctx.warn_unknown(
            system,
            "system",
            &[
                "rootPath",
                "ipcSocketPath",
                "thingName",
                "awsRegion",
                "rootCaPath",
            ],
        );
        if let Some(v) = get(system, "awsRegion") {
            aws_region = Some(ctx.string(v, "system.awsRegion")?);
        }
        if let Some(v) = get(system, "rootCaPath") {
            root_ca_path = Some(ctx.string(v, "system.rootCaPath")?);
        }
        if let Some(v) = get(system, "rootPath") {
            system_root = Some(base.join(ctx.string(v, "system.rootPath")?));
        }
        if let Some(v) = get(system, "ipcSocketPath") {
            socket_path = Some(base.join(ctx.string(v, "system.ipcSocketPath")?));
        }
        if let Some(v) = get(system, "thingName") {
            thing_name = Some(ctx.string(v, "system.thingName")?);
        }
    }
    let root = root_override
        .map(Path::to_path_buf)
        .or(system_root)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let mut deployment = Deployment::empty(root);
    if let Some(p) = socket_path {
        deployment.socket_path = p;
    }
    deployment.thing_name = thing_name;
    deployment.aws_region = aws_region;
    deployment.root_ca_path = root_ca_path;
    if let Some(v) = get(top, "artifactDir") {
        deployment.artifact_dir = Some(base.join(ctx.string(v, "artifactDir")?));
    }

    if let Some(broker) = get(top, "broker") {
        let broker = ctx.object(broker, "broker")?;
        read_broker(&mut ctx, broker, &mut deployment)?;
    }

    if let Some(policies) = get(top, "deploymentPolicies") {
        let policies = ctx.object(policies, "deploymentPolicies")?;
        read_policies(&mut ctx, policies, &mut deployment.policies)?;
    }

    let recipes = match get(top, "recipeDir") {
        Some(v) => {
            let dir = base.join(ctx.string(v, "recipeDir")?);
            load_recipes(&mut ctx, &dir)?
        }
        None => BTreeMap::new(),
    };

    if let Some(components) = get(top, "components") {
        let components = ctx.object(components, "components")?;
        for (name, entry) in components {
            let key = format!("components.{name}");
            let component = read_component(&mut ctx, name, entry, &key, base, &recipes)?;
            deployment.components.insert(name.clone(), component);
        }
    }
    deployment.iot_core = get(top, "iotCore").cloned();
    deployment.file = file.to_path_buf();
    deployment.warnings = ctx.warnings;
    Ok(deployment)
}

fn read_broker(
    ctx: &mut Ctx<'_>,
    broker: &Map<String, Value>,
    deployment: &mut Deployment,
) -> Result<(), ConfigError> {
    ctx.warn_unknown(
        broker,
        "broker",
        &[
            "maxConnections",
            "maxStreamsPerConnection",
            "maxFrameBytes",
            "connectTimeoutMs",
            "outboundQueueBytes",
            "slowSubscriber",
            "socketMode",
            "cliGroup",
        ],
    );
    let limits = &mut deployment.limits;
    let positive = |ctx: &Ctx<'_>, key: &str| -> Result<Option<u64>, ConfigError> {
        let Some(v) = get(broker, key) else {
            return Ok(None);
        };
        let full = format!("broker.{key}");
        let n = ctx.uint(v, &full)?;
        if n == 0 {
            return Err(ctx.err(&full, "must be at least 1"));
        }
        Ok(Some(n))
    };
    if let Some(n) = positive(ctx, "maxConnections")? {
        limits.max_connections = n as usize;
    }
    if let Some(n) = positive(ctx, "maxStreamsPerConnection")? {
        limits.max_streams_per_connection = n as usize;
    }
    if let Some(n) = positive(ctx, "maxFrameBytes")? {
        if n < 16 || n > u64::from(u32::MAX) {
            return Err(ctx.err("broker.maxFrameBytes", "must be between 16 and 4294967295"));
        }
        limits.max_frame_bytes = n as usize;
    }
    if let Some(n) = positive(ctx, "connectTimeoutMs")? {
        limits.connect_timeout_ms = n;
    }
    if let Some(n) = positive(ctx, "outboundQueueBytes")? {
        limits.outbound_queue_bytes = n as usize;
    }
    if let Some(v) = get(broker, "slowSubscriber") {
        limits.slow_subscriber = match ctx.string(v, "broker.slowSubscriber")?.as_str() {
            "drop" => SlowSubscriber::Drop,
            "disconnect" => SlowSubscriber::Disconnect,
            other => {
                return Err(ctx.err(
                    "broker.slowSubscriber",
                    format!("expected drop or disconnect, found {other:?}"),
                ));
            }
        };
    }
    if let Some(v) = get(broker, "cliGroup") {
        deployment.cli_group = Some(ctx.string(v, "broker.cliGroup")?);
    }
    if let Some(v) = get(broker, "socketMode") {
        let text = ctx.string(v, "broker.socketMode")?;
        let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                ctx.err(
                    "broker.socketMode",
                    format!("expected octal permission bits such as \"0660\", found {text:?}"),
                )
            })?;
        deployment.socket_mode = mode;
    }
    Ok(())
}

fn read_policies(
    ctx: &mut Ctx<'_>,
    map: &Map<String, Value>,
    out: &mut DeploymentPolicies,
) -> Result<(), ConfigError> {
    ctx.warn_unknown(
        map,
        "deploymentPolicies",
        &[
            "failureHandlingPolicy",
            "componentUpdatePolicy",
            "configurationValidationPolicy",
        ],
    );
    if let Some(v) = get(map, "failureHandlingPolicy") {
        let key = "deploymentPolicies.failureHandlingPolicy";
        out.rollback = match ctx.string(v, key)?.as_str() {
            "ROLLBACK" => true,
            "DO_NOTHING" => false,
            other => {
                return Err(ctx.err(
                    key,
                    format!("expected ROLLBACK or DO_NOTHING, found {other:?}"),
                ));
            }
        };
    }
    if let Some(v) = get(map, "componentUpdatePolicy") {
        let key = "deploymentPolicies.componentUpdatePolicy";
        let policy = ctx.object(v, key)?;
        ctx.warn_unknown(policy, key, &["timeoutInSeconds", "action"]);
        if let Some(v) = get(policy, "timeoutInSeconds") {
            out.timeout =
                std::time::Duration::from_secs(ctx.uint(v, &format!("{key}.timeoutInSeconds"))?);
        }
        if let Some(v) = get(policy, "action") {
            let action_key = format!("{key}.action");
            out.notify_components = match ctx.string(v, &action_key)?.as_str() {
                "NOTIFY_COMPONENTS" => true,
                "SKIP_NOTIFY_COMPONENTS" => false,
                other => {
                    return Err(ctx.err(
                        &action_key,
                        format!(
                            "expected NOTIFY_COMPONENTS or SKIP_NOTIFY_COMPONENTS, found {other:?}"
                        ),
                    ));
                }
            };
        }
    }
    Ok(())
}

/// Recipes by (name, version).
type Recipes = BTreeMap<(String, String), (PathBuf, Value)>;

fn load_recipes(ctx: &mut Ctx<'_>, dir: &Path) -> Result<Recipes, ConfigError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| ctx.err("recipeDir", format!("cannot read {}: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    paths.sort();
    let mut recipes = Recipes::new();
    for path in paths {
        let recipe_err = |key: &str, reason: String| ConfigError {
            file: path.clone(),
            key: key.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| recipe_err("", format!("cannot read: {e}")))?;
        let recipe = parse_document(&text).map_err(|e| recipe_err("", e))?;
        let Some(map) = recipe.as_object() else {
            return Err(recipe_err("", "a recipe must be a map".into()));
        };
        let name = get(map, "ComponentName")
            .and_then(Value::as_str)
            .ok_or_else(|| recipe_err("ComponentName", "missing or not a string".into()))?
            .to_owned();
        let version = match get(map, "ComponentVersion") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(recipe_err(
                    "ComponentVersion",
                    "missing or not a string".into(),
                ));
            }
        };
        if let Some(v) = get(map, "ComponentConfiguration")
            && !v.is_object()
        {
            return Err(recipe_err(
                "ComponentConfiguration",
                "expected a map".into(),
            ));
        }
        recipes.insert((name, version), (path.clone(), recipe));
    }
    Ok(recipes)
}

fn read_component(
    ctx: &mut Ctx<'_>,
    name: &str,
    entry: &Value,
    key: &str,
    base: &Path,
    recipes: &Recipes,
) -> Result<Component, ConfigError> {
    let entry = ctx.object(entry, key)?;
    ctx.warn_unknown(
        entry,
        key,
        &[
            "componentVersion",
            "configurationUpdate",
            "tokenFile",
            "runWith",
            "lambdaFunction",
        ],
    );
    let lambda_function = get(entry, "lambdaFunction").cloned();
    let version_key = format!("{key}.componentVersion");
    let version = match get(entry, "componentVersion") {
        Some(v) => ctx.string(v, &version_key)?,
        None => return Err(ctx.err(&version_key, "missing")),
    };
    let (recipe, mut configuration) = match recipes.get(&(name.to_owned(), version.clone())) {
        Some((_, recipe)) => {
            let defaults = recipe
                .as_object()
                .and_then(|r| get(r, "ComponentConfiguration"))
                .and_then(Value::as_object)
                .and_then(|c| get(c, "DefaultConfiguration"))
                .cloned()
                .unwrap_or_else(|| Value::Object(Map::new()));
            (recipe.clone(), defaults)
        }
        // A Lambda function declared by its parameters needs no recipe; the
        // launcher builds its configuration.
        None if lambda_function.is_some() => (Value::Null, Value::Object(Map::new())),
        None => {
            return Err(ctx.err(
                &version_key,
                format!("no recipe for {name} {version} in recipeDir"),
            ));
        }
    };
    if !configuration.is_object() {
        return Err(ctx.err(
            &version_key,
            "the recipe's DefaultConfiguration is not a map",
        ));
    }
    // A Lambda function's parameters become the configuration a device
    // shows for it, under the deployment's merge; a Lambda recipe carries
    // that configuration already and gives the launch parameters.
    let lambda_function = match lambda_function {
        Some(section) => {
            let device = crate::lambda::device_configuration(&section)
                .map_err(|e| ctx.err(&format!("{key}.lambdaFunction"), e))?;
            merge_into(&mut configuration, device);
            Some(crate::lambda::resolve_code_path(section, base))
        }
        None => crate::lambda::section_from_recipe(&recipe),
    };
    if let Some(update) = get(entry, "configurationUpdate") {
        let update_key = format!("{key}.configurationUpdate");
        let update = ctx.object(update, &update_key)?;
        ctx.warn_unknown(update, &update_key, &["merge", "reset"]);
        if let Some(reset) = get(update, "reset") {
            let reset_key = format!("{update_key}.reset");
            let Some(pointers) = reset.as_array() else {
                return Err(ctx.err(&reset_key, "expected a list of JSON pointers"));
            };
            for pointer in pointers {
                let pointer = ctx.string(pointer, &reset_key)?;
                reset_pointer(&mut configuration, &pointer);
            }
        }
        if let Some(merge) = get(update, "merge") {
            let merge_key = format!("{update_key}.merge");
            let merge = match merge {
                Value::String(s) => serde_json::from_str(s)
                    .map_err(|e| ctx.err(&merge_key, format!("not a JSON document: {e}")))?,
                other => other.clone(),
            };
            if !merge.is_object() {
                return Err(ctx.err(&merge_key, "expected a map"));
            }
            merge_into(&mut configuration, merge);
        }
    }
    let posix_user = match get(entry, "runWith") {
        Some(run_with) => {
            let run_key = format!("{key}.runWith");
            let run_with = ctx.object(run_with, &run_key)?;
            ctx.warn_unknown(run_with, &run_key, &["posixUser", "systemResourceLimits"]);
            match get(run_with, "posixUser") {
                Some(v) => Some(ctx.string(v, &format!("{run_key}.posixUser"))?),
                None => None,
            }
        }
        None => None,
    };
    let token_file = match get(entry, "tokenFile") {
        Some(v) => Some(base.join(ctx.string(v, &format!("{key}.tokenFile"))?)),
        None => None,
    };
    Ok(Component {
        name: name.to_owned(),
        version,
        configuration,
        token_file,
        recipe,
        posix_user,
        lambda_function,
    })
}

/// Greengrass MERGE: maps merge key by key, anything else replaces.
pub fn merge_into(target: &mut Value, update: Value) {
    match (target, update) {
        (Value::Object(t), Value::Object(u)) => {
            for (k, v) in u {
                match t.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v);
                    }
                    _ => {
                        t.insert(k, v);
                    }
                }
            }
        }
        (t, u) => *t = u,
    }
}

/// Greengrass RESET: removes the value at a JSON pointer (the recipe default
/// was already applied, so removing restores nothing more; `""` clears all).
fn reset_pointer(config: &mut Value, pointer: &str) {
    if pointer.is_empty() {
        *config = Value::Object(Map::new());
        return;
    }
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    if let Some(Value::Object(map)) = config.pointer_mut(parent) {
        map.remove(&last.replace("~1", "/").replace("~0", "~"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn recipe_defaults_merge_with_the_deployment_and_unknown_keys_warn() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("recipes")).unwrap();
        write(
            &dir.path().join("recipes"),
            "a.yaml",
            "RecipeFormatVersion: '2020-01-25'\nComponentName: com.example.A\nComponentVersion: '1.0.0'\n\
             ComponentConfiguration:\n  DefaultConfiguration:\n    x: 1\n    nested: {a: 1, b: 2}\n",
        );
        let doc = r#"
recipeDir: recipes
colour: blue
components:
  com.example.A:
    componentVersion: 1.0.0
    configurationUpdate:
      merge: '{"nested": {"b": 3}, "y": true}'
    tokenFile: a.token
"#;
        let d = from_text(doc, Path::new("d.yaml"), dir.path(), Some(Path::new("/r"))).unwrap();
        let a = &d.components["com.example.A"];
        assert_eq!(
            a.configuration,
            serde_json::json!({"x": 1, "nested": {"a": 1, "b": 3}, "y": true})
        );
        assert_eq!(
            a.token_file.as_deref(),
            Some(dir.path().join("a.token").as_path())
        );
        assert_eq!(d.root, PathBuf::from("/r"));
        assert_eq!(d.socket_path, PathBuf::from("/r/ipc.socket"));
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("colour"), "{:?}", d.warnings);
    }

    #[test]
    fn malformed_documents_name_the_file_key_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("components: [1]", "components", "expected a map"),
            (
                "broker: {maxConnections: -1}",
                "broker.maxConnections",
                "whole number",
            ),
            (
                "broker: {slowSubscriber: sometimes}",
                "broker.slowSubscriber",
                "drop or disconnect",
            ),
            ("broker: {socketMode: '999'}", "broker.socketMode", "octal"),
            (
                "components: {c: {componentVersion: '1.0.0'}}",
                "components.c.componentVersion",
                "no recipe",
            ),
            (
                "components: {c: {}}",
                "components.c.componentVersion",
                "missing",
            ),
            ("{ not json", "", "line 1 column 3"),
        ];
        for (doc, key, reason) in cases {
            let err = from_text(doc, Path::new("dep.yaml"), dir.path(), None).unwrap_err();
            assert_eq!(err.key, key, "{doc}");
            assert!(err.reason.contains(reason), "{doc}: {}", err.reason);
            assert!(err.to_string().starts_with("dep.yaml: "), "{err}");
        }
    }

    #[test]
    fn merge_replaces_leaves_and_merges_maps() {
        let mut v = serde_json::json!({"a": {"b": 1, "c": [1]}, "d": 1});
        merge_into(&mut v, serde_json::json!({"a": {"c": [2]}, "d": {"e": 1}}));
        assert_eq!(
            v,
            serde_json::json!({"a": {"b": 1, "c": [2]}, "d": {"e": 1}})
        );
    }
}

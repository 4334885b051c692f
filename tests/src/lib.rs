//! Shared helpers of the end-to-end tests: a broker process on a temporary
//! root, a raw protocol connection for fault tests, and the Python SDK.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use ggipc_protocol::frame;
use ggipc_protocol::rpc::{self, RpcMessage};
use ggipc_protocol::{FrameCodec, Message, StrBytes};
use serde_json::{Value, json};
use tokio_util::codec::Decoder;

pub mod mosquitto;

/// The repository's top folder.
pub fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// A binary of the workspace, built by `cargo build --workspace --bins`
/// (scripts/test does this before running tests).
pub fn workspace_bin(name: &str) -> PathBuf {
    // Test executables live in target/<profile>/deps, binaries such as the
    // load generator in target/<profile>, next to the broker.
    let exe = std::env::current_exe().expect("executable path");
    let mut profile_dir = exe.parent().expect("executable folder");
    if profile_dir.ends_with("deps") {
        profile_dir = profile_dir.parent().expect("target/<profile>/deps layout");
    }
    let bin = profile_dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// One component of a test deployment.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// Component name.
    pub name: String,
    /// Its `accessControl` configuration.
    pub access_control: Value,
    /// More recipe keys (`Manifests`, …), merged over the generated recipe.
    pub recipe_extra: Value,
    /// More deployment-entry keys (`runWith`, …).
    pub entry_extra: Value,
}

impl ComponentSpec {
    /// A component with the given policies.
    pub fn new(name: &str, access_control: Value) -> Self {
        Self {
            name: name.to_owned(),
            access_control,
            recipe_extra: json!({}),
            entry_extra: json!({}),
        }
    }

    /// Adds recipe keys, e.g. `Manifests` with a lifecycle.
    pub fn with_recipe(mut self, extra: Value) -> Self {
        self.recipe_extra = extra;
        self
    }

    /// Adds deployment-entry keys, e.g. `runWith`.
    pub fn with_entry(mut self, extra: Value) -> Self {
        self.entry_extra = extra;
        self
    }

    /// A component allowed every pub/sub operation on every topic.
    pub fn pubsub_all(name: &str) -> Self {
        Self::new(
            name,
            json!({"aws.greengrass.ipc.pubsub": {
                format!("{name}:pubsub:1"): {"operations": ["*"], "resources": ["*"]}
            }}),
        )
    }
}

/// Writes recipes and `deployment.json` into `dir`; returns the root path.
fn write_deployment(
    dir: &Path,
    components: &[ComponentSpec],
    broker_settings: &Value,
    system: &Value,
    extra: &Value,
) -> PathBuf {
    let recipes = dir.join("recipes");
    std::fs::create_dir_all(&recipes).unwrap();
    let mut entries = serde_json::Map::new();
    for c in components {
        let mut recipe = json!({
            "RecipeFormatVersion": "2020-01-25",
            "ComponentName": c.name,
            "ComponentVersion": "1.0.0",
            "ComponentConfiguration": {"DefaultConfiguration": {"accessControl": c.access_control}},
        });
        if let (Some(r), Some(extra)) = (recipe.as_object_mut(), c.recipe_extra.as_object()) {
            r.extend(extra.clone());
        }
        std::fs::write(
            recipes.join(format!("{}-1.0.0.json", c.name)),
            serde_json::to_vec_pretty(&recipe).unwrap(),
        )
        .unwrap();
        let mut entry =
            json!({"componentVersion": "1.0.0", "tokenFile": format!("tokens/{}", c.name)});
        if let (Some(e), Some(extra)) = (entry.as_object_mut(), c.entry_extra.as_object()) {
            e.extend(extra.clone());
        }
        entries.insert(c.name.clone(), entry);
    }
    let mut system_doc = json!({"rootPath": "root"});
    if let (Some(base), Some(extra)) = (system_doc.as_object_mut(), system.as_object()) {
        base.extend(extra.clone());
    }
    let root = dir.join(
        system_doc["rootPath"]
            .as_str()
            .expect("rootPath is a string"),
    );
    let mut deployment = json!({
        "system": system_doc,
        "recipeDir": "recipes",
        "broker": broker_settings,
        "components": entries,
    });
    if let (Some(d), Some(extra)) = (deployment.as_object_mut(), extra.as_object()) {
        d.extend(extra.clone());
    }
    std::fs::write(
        dir.join("deployment.json"),
        serde_json::to_vec_pretty(&deployment).unwrap(),
    )
    .unwrap();
    root
}

/// The file in a broker's temporary folder holding more environment for
/// its process ([`BrokerProcess::start_with_env`]).
const BROKER_ENV: &str = "broker-env.json";

/// A running `ggipc-broker` on a temporary root. Killed when dropped.
#[derive(Debug)]
pub struct BrokerProcess {
    child: Child,
    /// The temporary root (a short path, so sockets fit in `sun_path`).
    pub root: PathBuf,
    /// The socket clients connect to.
    pub socket: PathBuf,
    tokens: HashMap<String, String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl BrokerProcess {
    /// Starts a broker with `components` and extra `broker:` settings.
    pub fn start(components: &[ComponentSpec], broker_settings: Value) -> Self {
        Self::start_with_system(components, broker_settings, json!({}))
    }

    /// Like [`start`](Self::start), with extra `system:` settings merged
    /// over the default `rootPath` (a key `rootPath` given relative is taken
    /// inside the temporary folder).
    pub fn start_with_system(
        components: &[ComponentSpec],
        broker_settings: Value,
        system: Value,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let root = write_deployment(
            dir.path(),
            components,
            &broker_settings,
            &system,
            &json!({}),
        );
        let names = components.iter().map(|c| c.name.clone()).collect();
        Self::launch(dir, root, names)
    }

    /// Like [`start`](Self::start), with more environment variables for the
    /// broker process (`PATH`, `GGIPC_LAMBDA_CGROUPS`, …), kept for
    /// restarts.
    pub fn start_with_env(
        components: &[ComponentSpec],
        broker_settings: Value,
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let root = write_deployment(
            dir.path(),
            components,
            &broker_settings,
            &json!({}),
            &json!({}),
        );
        let names = components.iter().map(|c| c.name.clone()).collect();
        // Kept next to the deployment rather than in a field, so every
        // start reads it; see `spawn`.
        let env: serde_json::Map<String, Value> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), json!(v)))
            .collect();
        std::fs::write(dir.path().join(BROKER_ENV), Value::Object(env).to_string()).unwrap();
        Self::launch(dir, root, names)
    }

    fn launch(dir: tempfile::TempDir, root: PathBuf, components: Vec<String>) -> Self {
        let log = dir.path().join("broker.log");
        let child = Self::spawn(dir.path(), &log);
        let mut broker = Self {
            child,
            socket: root.join("ipc.socket"),
            root,
            tokens: components.into_iter().map(|c| (c, String::new())).collect(),
            log,
            _dir: dir,
        };
        broker.after_start();
        broker
    }

    fn spawn(dir: &Path, log: &Path) -> Child {
        let env: serde_json::Map<String, Value> = std::fs::read(dir.join(BROKER_ENV))
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
            .unwrap_or_default();
        Command::new(workspace_bin("ggipc-broker"))
            .arg("--deployment")
            .arg(dir.join("deployment.json"))
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v.as_str().unwrap_or_default())))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start ggipc-broker")
    }

    fn after_start(&mut self) {
        self.socket = self.wait_ready();
        for (component, token) in &mut self.tokens {
            let path = self._dir.path().join("tokens").join(component);
            *token = std::fs::read_to_string(&path).expect("token file written");
        }
    }

    /// Kills the broker with SIGKILL, as a crash would (the socket file stays
    /// behind), and starts it again on the same folder and deployment.
    /// Tokens are issued anew, as the nucleus does at every start.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(self._dir.path(), &self.log);
        self.after_start();
    }

    /// Rewrites the deployment with `components` (same system and broker
    /// settings as before) and sends SIGHUP; returns once the broker logged
    /// the reload and the new token files are read.
    pub fn redeploy(&mut self, components: &[ComponentSpec]) {
        self.redeploy_with(components, json!({}));
    }

    /// Like [`redeploy`](Self::redeploy), with more top-level keys in the
    /// document (e.g. `deploymentPolicies`).
    pub fn redeploy_with(&mut self, components: &[ComponentSpec], extra: Value) {
        let doc: Value = serde_json::from_slice(
            &std::fs::read(self._dir.path().join("deployment.json")).unwrap(),
        )
        .unwrap();
        let mut system = doc["system"].clone();
        if let Some(s) = system.as_object_mut() {
            s.remove("rootPath");
        }
        write_deployment(
            self._dir.path(),
            components,
            &doc["broker"],
            &system,
            &extra,
        );
        let reloads = self.log_text().matches("deployment reloaded").count();
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).expect("SIGHUP");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log_text().matches("deployment reloaded").count() == reloads {
            assert!(Instant::now() < deadline, "no reload:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(10));
        }
        self.tokens = components
            .iter()
            .map(|c| {
                let path = self._dir.path().join("tokens").join(&c.name);
                (
                    c.name.clone(),
                    std::fs::read_to_string(path).expect("token file"),
                )
            })
            .collect();
    }

    /// Starts the broker again after [`terminate`](Self::terminate).
    pub fn restart(&mut self) {
        assert!(!self.is_running(), "restart after terminate");
        self.child = Self::spawn(self._dir.path(), &self.log);
        self.after_start();
    }

    /// Waits for the `ready` line and returns the socket path it names.
    fn wait_ready(&mut self) -> PathBuf {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let log = self.log_text();
            if let Some(line) = log.lines().find(|l| l.contains(" ready ")) {
                let socket = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("socket="))
                    .expect("ready line names the socket");
                return PathBuf::from(socket);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("broker exited with {status}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("broker not ready in 20 s:\n{}", self.log_text());
    }

    /// The broker's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the broker's log holds `needle` at least `times` times.
    pub fn wait_log(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.log_text().matches(needle).count() < times {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} x{times} in:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `<root>/logs/<component>.log` so far.
    pub fn component_log(&self, component: &str) -> String {
        std::fs::read_to_string(self.root.join("logs").join(format!("{component}.log")))
            .unwrap_or_default()
    }

    /// How many times `needle` occurs in `component`'s log so far.
    pub fn component_log_count(&self, component: &str, needle: &str) -> usize {
        self.component_log(component).matches(needle).count()
    }

    /// Waits until `component`'s log holds `needle` at least `times` times,
    /// and returns the log. A RUNNING state only says the process was
    /// spawned: a test that restarts it waits for its first output, or the
    /// restart may kill the first process before it printed anything. The
    /// `shell-runner-start` line quotes the command, so a needle for output
    /// starts with `stdout. `.
    pub fn wait_component_log(&self, component: &str, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.component_log(component);
            if log.matches(needle).count() >= times {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "{component} log never had {times}× {needle:?}:\n{log}\nbroker log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The token of a component of the deployment.
    pub fn token(&self, component: &str) -> &str {
        &self.tokens[component]
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size of the broker, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc status")
    }

    /// CPU time the broker has used so far (user + system).
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the whole line.
        let after = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let hz = rustix::param::clock_ticks_per_second();
        Duration::from_secs_f64(ticks as f64 / hz as f64)
    }

    /// Sends SIGTERM and waits for the broker to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill");
        self.child.wait().expect("wait")
    }

    /// Whether the broker process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A connection speaking raw event-stream frames, for tests that must send
/// what a well-behaved client never would.
#[derive(Debug)]
pub struct RawConn {
    stream: UnixStream,
    codec: FrameCodec,
    buf: BytesMut,
    next_stream: i32,
}

impl RawConn {
    /// Connects without a handshake.
    pub fn open(socket: &Path) -> Self {
        Self::try_open(socket).expect("connect to broker")
    }

    /// Connects without a handshake, reporting failure.
    pub fn try_open(socket: &Path) -> std::io::Result<Self> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Self {
            stream,
            codec: FrameCodec::new(),
            buf: BytesMut::new(),
            next_stream: 1,
        })
    }

    /// Connects and completes CONNECT with `token`; panics if refused.
    pub fn connect(socket: &Path, token: &str) -> Self {
        let mut conn = Self::open(socket);
        conn.send(&rpc::connect(token));
        let ack = conn.recv().expect("CONNECT_ACK");
        assert!(ack.is_accepted_ack(), "connection refused: {ack:?}");
        conn
    }

    /// Sends one message, up to the largest frame the broker accepts.
    pub fn send(&mut self, message: &Message) {
        let bytes = frame::encode_to_bytes(message, frame::DEFAULT_MAX_DECODE_LEN).unwrap();
        self.send_raw(&bytes);
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to broker");
    }

    /// Sends an operation request on the next stream id and returns the id.
    pub fn request(&mut self, operation: &str, payload: &Value) -> i32 {
        let id = self.next_stream;
        self.next_stream += 1;
        self.send(&rpc::request(
            id,
            StrBytes::from(format!("aws.greengrass#{operation}")),
            StrBytes::from(format!("aws.greengrass#{operation}Request")),
            bytes::Bytes::from(payload.to_string()),
        ));
        id
    }

    /// The next message, or None when the broker closed the connection.
    pub fn recv(&mut self) -> Option<RpcMessage> {
        loop {
            if let Some(m) = self
                .codec
                .decode(&mut self.buf)
                .expect("valid frame from broker")
            {
                return Some(RpcMessage::parse(m).expect("valid RPC message from broker"));
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read from broker: {e}"),
            }
        }
    }

    /// Sets how long `recv` waits.
    pub fn set_timeout(&self, timeout: Duration) {
        self.stream.set_read_timeout(Some(timeout)).unwrap();
    }

    /// Whether the broker closed the connection (reads EOF) within 5 s.
    pub fn closed_by_peer(&mut self) -> bool {
        self.set_timeout(Duration::from_secs(5));
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// The Python interpreter of the repository's virtualenv (scripts/setup
/// creates it with awsiotsdk).
pub fn python() -> PathBuf {
    let python = repo_dir().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup to install the Python SDK",
        python.display()
    );
    python
}

/// Runs `tests/python/<script>` with the broker's socket and `component`'s
/// token in the environment, as the nucleus would give them.
pub fn run_python(broker: &BrokerProcess, component: &str, script: &str, args: &[&str]) -> Output {
    python_command(broker, component, script, args)
        .output()
        .expect("run python")
}

/// The command for `run_python`, to spawn it in the background.
pub fn python_command(
    broker: &BrokerProcess,
    component: &str,
    script: &str,
    args: &[&str],
) -> Command {
    let mut cmd = Command::new(python());
    cmd.arg(repo_dir().join("tests/python").join(script))
        .args(args)
        .env(
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT",
            &broker.socket,
        )
        .env("SVCUID", broker.token(component))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Parses the JSON lines a Python scenario printed.
pub fn json_lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "python failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A Python scenario running in the background: started, it has printed
/// `{"event": "subscribed"}`; finished, it returns every later JSON line.
#[derive(Debug)]
pub struct PythonScenario {
    child: Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PythonScenario {
    /// Runs `ipc_scenarios.py ARGS` as `component` and waits until it has
    /// subscribed.
    pub fn start(broker: &BrokerProcess, component: &str, args: &[&str]) -> Self {
        Self::start_command(
            broker,
            python_command(broker, component, "ipc_scenarios.py", args),
        )
    }

    /// Like [`start`](Self::start) with a prepared command.
    pub fn start_command(broker: &BrokerProcess, mut command: Command) -> Self {
        use std::io::BufRead;
        let mut child = command.spawn().expect("start python");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        if !line.contains("subscribed") {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!(
                "python scenario did not subscribe: {line:?}\n{err}\n{}",
                broker.log_text()
            );
        }
        Self { child, stdout }
    }

    /// Waits for the scenario to end and returns what it printed since.
    pub fn finish(mut self) -> Vec<Value> {
        use std::io::BufRead;
        let mut rest = Vec::new();
        for line in self.stdout.by_ref().lines() {
            rest.push(line.unwrap());
        }
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        assert!(status.success(), "python scenario failed: {err}\n{rest:?}");
        rest.iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl BrokerProcess {
    /// The file the broker writes `component`'s token to, rewritten with a
    /// new token at every start.
    pub fn token_file(&self, component: &str) -> PathBuf {
        assert!(
            self.tokens.contains_key(component),
            "{component} is not in the deployment"
        );
        self._dir.path().join("tokens").join(component)
    }

    /// Runs `program` as `component` would run: with the socket and its
    /// token in the environment variables Greengrass sets, stdout and stderr
    /// piped.
    pub fn component_command(&self, program: &Path, component: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env(
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT",
            &self.socket,
        )
        .env("SVCUID", self.token(component))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    }
}

impl BrokerProcess {
    /// Starts a broker with `components` and more top-level keys of the
    /// deployment document (`iotCore`, …); `system` and `broker` keys given
    /// there are the `system:` and `broker:` settings.
    pub fn start_with_document(components: &[ComponentSpec], extra: Value) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let mut top = extra.as_object().cloned().unwrap_or_default();
        let system = top.remove("system").unwrap_or_else(|| json!({}));
        let broker = top.remove("broker").unwrap_or_else(|| json!({}));
        let root = write_deployment(
            dir.path(),
            components,
            &broker,
            &system,
            &Value::Object(top),
        );
        let names = components.iter().map(|c| c.name.clone()).collect();
        Self::launch(dir, root, names)
    }
}

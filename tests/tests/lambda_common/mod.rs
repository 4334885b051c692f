//! Helpers of the Lambda tests: a function's code in a temporary folder,
//! its deployment entry, publishing to it, and reading what its handler
//! wrote.
//!
//! Handlers report by appending JSON lines to the file named by their `OUT`
//! environment variable; the tests read that file, and the component log
//! for what the launcher says.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ggipc_tests::{BrokerProcess, ComponentSpec, RawConn};
use serde_json::{Value, json};

/// The component the tests publish as.
pub(crate) const PUBLISHER: &str = "test.Publisher";

/// A function's code folder, with its `OUT` file.
#[derive(Debug)]
pub(crate) struct Code {
    dir: tempfile::TempDir,
}

impl Code {
    /// A folder holding `files` (name, text).
    pub(crate) fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("fn")
            .tempdir_in("/tmp")
            .expect("temp dir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Self { dir }
    }

    /// The folder.
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The file handlers append their records to.
    pub(crate) fn out(&self) -> PathBuf {
        self.dir.path().join("out.jsonl")
    }

    /// The records written so far.
    pub(crate) fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.out())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits until `pred` holds for the records, then returns them.
    pub(crate) fn wait_records(
        &self,
        broker: &BrokerProcess,
        component: &str,
        within: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let records = self.records();
            if pred(&records) {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "records never matched: {records:?}\ncomponent log:\n{}\nbroker log:\n{}",
                broker.component_log(component),
                broker.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for at least `n` records with key `key`.
    pub(crate) fn wait_count(
        &self,
        broker: &BrokerProcess,
        component: &str,
        key: &str,
        n: usize,
        within: Duration,
    ) -> Vec<Value> {
        self.wait_records(broker, component, within, |r| {
            r.iter().filter(|v| v.get(key).is_some()).count() >= n
        })
    }
}

/// The deployment entry of a Lambda function `name` with handler
/// `fn.handler` in `code`, runtime `python3`, the parameters `params`
/// (merged over test defaults: pinned, NoContainer, timeout 3 s) and `OUT`
/// in its environment. `extra` adds keys to the `lambdaFunction` section.
pub(crate) fn lambda_with(name: &str, code: &Code, params: Value, extra: Value) -> ComponentSpec {
    let mut p = json!({
        "pinned": true,
        "timeoutInSeconds": 3,
        "linuxProcessParams": {"isolationMode": "NoContainer"},
        "environmentVariables": {},
    });
    let given = params.as_object().cloned().unwrap_or_default();
    for (k, v) in given {
        p[k] = v;
    }
    p["environmentVariables"]["OUT"] = json!(code.out().display().to_string());
    let mut section = json!({
        "handler": "fn.handler",
        "runtime": "python3",
        "codePath": code.path().display().to_string(),
        "componentLambdaParameters": p,
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        section[k] = v;
    }
    ComponentSpec::new(name, json!({})).with_entry(json!({"lambdaFunction": section}))
}

/// [`lambda_with`] without extra section keys.
pub(crate) fn lambda(name: &str, code: &Code, params: Value) -> ComponentSpec {
    lambda_with(name, code, params, json!({}))
}

/// The publishing component.
pub(crate) fn publisher() -> ComponentSpec {
    ComponentSpec::pubsub_all(PUBLISHER)
}

/// A connection as the publishing component.
pub(crate) fn connect_publisher(broker: &BrokerProcess) -> RawConn {
    RawConn::connect(&broker.socket, broker.token(PUBLISHER))
}

fn expect_published(conn: &mut RawConn) {
    let answer = conn.recv().expect("publish answer");
    assert_eq!(
        answer.service_model_type.as_ref().map(|s| s.as_str()),
        Some("aws.greengrass#PublishToTopicResponse"),
        "{answer:?}"
    );
}

/// Publishes a JSON message and checks the answer.
pub(crate) fn publish_json(conn: &mut RawConn, topic: &str, message: &Value) {
    conn.request(
        "PublishToTopic",
        &json!({"topic": topic, "publishMessage": {"jsonMessage": {"message": message}}}),
    );
    expect_published(conn);
}

/// Publishes a binary message and checks the answer.
pub(crate) fn publish_binary(conn: &mut RawConn, topic: &str, data: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    conn.request(
        "PublishToTopic",
        &json!({"topic": topic, "publishMessage": {"binaryMessage": {"message": b64}}}),
    );
    expect_published(conn);
}

/// Waits until the broker log says `component` reached `state`.
pub(crate) fn wait_state(broker: &BrokerProcess, component: &str, state: &str, within: Duration) {
    let needle = format!("component=\"{component}\" from=");
    let deadline = Instant::now() + within;
    loop {
        let log = broker.log_text();
        if log
            .lines()
            .any(|l| l.contains(&needle) && l.ends_with(&format!("to={state}")))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{component} never reached {state}:\n{log}\ncomponent log:\n{}",
            broker.component_log(component)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` still exists (a zombie counts as gone).
pub(crate) fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// Those of `pids` still alive after up to `within`: a process sent
/// SIGKILL is gone only once the kernel has torn it down, a moment later.
pub(crate) fn alive_after(pids: &[u64], within: Duration) -> Vec<u64> {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<u64> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The repository's virtualenv `bin` folder first on `PATH`, for functions
/// that use the Python SDK (scripts/setup installs it).
pub(crate) fn venv_path() -> String {
    let bin = ggipc_tests::python()
        .parent()
        .expect("venv bin")
        .display()
        .to_string();
    format!("{bin}:{}", std::env::var("PATH").unwrap_or_default())
}

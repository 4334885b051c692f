//! The `ggipc` command-line tool against the real broker: `pub`, `sub`,
//! `component`, where it finds the socket and token, and its exit statuses
//! (0 done, 1 server or connection failure, 2 bad arguments).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Output};
use std::time::{Duration, Instant};

use ggipc_tests::{BrokerProcess, ComponentSpec, workspace_bin};
use serde_json::{Value, json};

fn ggipc_bin() -> PathBuf {
    workspace_bin("ggipc")
}

/// `ggipc ARGS` run as `component`, with its environment.
fn ggipc(broker: &BrokerProcess, component: &str, args: &[&str]) -> Output {
    broker
        .component_command(&ggipc_bin(), component)
        .args(args)
        .output()
        .unwrap()
}

/// `ggipc ARGS` without the Greengrass environment.
fn ggipc_bare(args: &[&str]) -> Output {
    Command::new(ggipc_bin())
        .args(args)
        .env_remove("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT")
        .env_remove("SVCUID")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `ggipc sub`, started once it has said it is subscribed.
struct Sub {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Sub {
    fn start(broker: &BrokerProcess, component: &str, args: &[&str]) -> Self {
        let mut child = broker
            .component_command(&ggipc_bin(), component)
            .arg("sub")
            .args(args)
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        assert!(line.starts_with("subscribed to "), "{line:?}");
        // Keep draining stderr so the child never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdout }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line
    }

    fn rest(mut self) -> (String, std::process::ExitStatus) {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).unwrap();
        (rest, self.child.wait().unwrap())
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "ggipc sub did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn broker() -> BrokerProcess {
    BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all("com.example.Pub"),
            ComponentSpec::pubsub_all("com.example.Sub"),
            ComponentSpec::new(
                "com.example.Limited",
                json!({"aws.greengrass.ipc.pubsub": {"com.example.Limited:pubsub:1": {
                    "operations": ["*"], "resources": ["allowed/*"]}}}),
            ),
        ],
        json!({}),
    )
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        text(&out.stderr)
    );
}

#[test]
fn pub_and_sub_carry_json_text_and_bytes() {
    let broker = broker();
    let sub = Sub::start(&broker, "com.example.Sub", &["cli/+", "--count", "3"]);
    assert_ok(&ggipc(
        &broker,
        "com.example.Pub",
        &["pub", "cli/a", "--json", r#"{"k": [1, "two"]}"#],
    ));
    assert_ok(&ggipc(
        &broker,
        "com.example.Pub",
        &["pub", "cli/b", "--message", "hello there"],
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bytes");
    std::fs::write(&file, b"\x00\x01\xff").unwrap();
    let out = ggipc(
        &broker,
        "com.example.Pub",
        &["pub", "cli/c", "--file", file.to_str().unwrap()],
    );
    assert_ok(&out);
    // pub prints nothing, like mosquitto_pub.
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let (printed, status) = sub.rest();
    assert!(status.success(), "{status}");
    assert_eq!(
        printed,
        "cli/a: {\n  \"k\": [\n    1,\n    \"two\"\n  ]\n}\ncli/b: hello there\ncli/c: base64:AAH/\n"
    );
}

#[test]
fn sub_prints_json_lines_until_interrupted() {
    let broker = broker();
    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let mut sub = Sub::start(&broker, "com.example.Sub", &["cli/x", "--jsonl"]);
        assert_ok(&ggipc(
            &broker,
            "com.example.Pub",
            &["pub", "cli/x", "--json", r#"{"n": 1}"#],
        ));
        assert_ok(&ggipc(
            &broker,
            "com.example.Pub",
            &["pub", "cli/x", "-m", "two"],
        ));
        let first: Value = serde_json::from_str(&sub.line()).unwrap();
        assert_eq!(first, json!({"topic": "cli/x", "json": {"n": 1}}));
        let second: Value = serde_json::from_str(&sub.line()).unwrap();
        assert_eq!(second, json!({"topic": "cli/x", "binary": "dHdv"}));
        sub.signal(signal);
        let status = sub.wait();
        assert!(status.success(), "{signal:?}: {status}");
    }
}

#[test]
fn bad_arguments_print_usage_and_exit_2() {
    let cases: &[&[&str]] = &[
        &["pub"],
        &["pub", "t"],
        &["pub", "t", "--json", "{not json"],
        &["pub", "t", "--json", "{}", "--message", "x"],
        &["sub"],
        &["sub", "t", "--count", "many"],
        &["component", "details"],
        &["component", "restart"],
        &["component", "explode"],
        &["pub", "t", "-m", "x", "--timeout", "0"],
    ];
    for args in cases {
        let out = ggipc_bare(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("Usage"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // No socket or token anywhere: also a usage problem, and it says which.
    let out = ggipc_bare(&["pub", "t", "-m", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"),
        "{}",
        text(&out.stderr)
    );
    let out = ggipc_bare(&["--socket", "/tmp/none", "pub", "t", "-m", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("SVCUID"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn server_errors_exit_1_with_their_type_and_message() {
    let broker = broker();
    let out = ggipc(
        &broker,
        "com.example.Limited",
        &["pub", "denied/t", "-m", "x"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("ggipc: UnauthorizedError: "), "{stderr}");
    assert!(stderr.contains("denied/t"), "{stderr}");

    let out = ggipc(&broker, "com.example.Limited", &["sub", "denied/t"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("ggipc: UnauthorizedError: "),
        "{}",
        text(&out.stderr)
    );

    let out = ggipc(&broker, "com.example.Pub", &["pub", "a/+", "-m", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("ggipc: InvalidArgumentsError: "),
        "{stderr}"
    );
    assert!(stderr.contains("wildcard"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing");
    let out = ggipc(
        &broker,
        "com.example.Pub",
        &["pub", "t", "--file", missing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn socket_and_token_can_come_from_flags() {
    let broker = broker();
    let sub = Sub::start(&broker, "com.example.Sub", &["flags/t", "--count", "1"]);
    let token_file = broker.token_file("com.example.Pub");
    let out = ggipc_bare(&[
        "pub",
        "flags/t",
        "-m",
        "via flags",
        "--socket",
        broker.socket.to_str().unwrap(),
        "--token-file",
        token_file.to_str().unwrap(),
    ]);
    assert_ok(&out);
    let (printed, status) = sub.rest();
    assert!(status.success());
    assert_eq!(printed, "flags/t: via flags\n");

    // A wrong token is refused by the server: a failure, not a usage error.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("token");
    std::fs::write(&wrong, "WRONG\n").unwrap();
    let out = ggipc_bare(&[
        "--socket",
        broker.socket.to_str().unwrap(),
        "--token-file",
        wrong.to_str().unwrap(),
        "pub",
        "flags/t",
        "-m",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("access denied"),
        "{}",
        text(&out.stderr)
    );
    // No broker at all.
    let out = ggipc_bare(&[
        "--socket",
        "/tmp/ggipc-no-such.socket",
        "--token-file",
        wrong.to_str().unwrap(),
        "pub",
        "t",
        "-m",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot connect to /tmp/ggipc-no-such.socket"),
        "{}",
        text(&out.stderr)
    );
}

/// `component` prints what greengrass-cli prints (`semantics.md` §5.6);
/// refusals print the error's type and message and exit 1.
#[test]
fn component_commands_print_like_greengrass_cli_and_report_errors() {
    let operator = ComponentSpec::new(
        "com.example.Operator",
        json!({"aws.greengrass.Cli": {"op:1": {"operations": ["*"], "resources": ["*"]}}}),
    );
    let worker = ComponentSpec::new("com.example.Worker", json!({})).with_recipe(json!({
        "ComponentConfiguration": {"DefaultConfiguration": {"accessControl": {}, "speed": 3}},
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"run": "echo run-started; sleep 300"}}]
    }));
    let broker = BrokerProcess::start(
        &[
            operator,
            worker,
            ComponentSpec::pubsub_all("com.example.Pub"),
        ],
        json!({}),
    );
    let run = |args: &[&str]| {
        let out = ggipc(&broker, "com.example.Operator", args);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let worker_block = |state: &str| {
        "Component Name: com.example.Worker\n    Version: 1.0.0\n    State: ".to_owned()
            + state
            + "\n    Configuration: {\"accessControl\":{},\"speed\":3}\n"
    };
    let wait_for = |state: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (code, stdout, stderr) = run(&["component", "details", "-n", "com.example.Worker"]);
            assert_eq!(code, Some(0), "{stderr}");
            if stdout == worker_block(state) {
                return;
            }
            assert!(Instant::now() < deadline, "never {state}: {stdout}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("RUNNING");
    broker.wait_component_log("com.example.Worker", "stdout. run-started", 1);

    let (code, stdout, stderr) = run(&["component", "list"]);
    assert_eq!(code, Some(0), "{stderr}");
    let blocks: Vec<&str> = stdout
        .strip_prefix("Components currently running in Greengrass:\n")
        .expect("the heading first")
        .split_inclusive("\n")
        .collect();
    assert_eq!(blocks.len(), 12, "four lines for each of three: {stdout}");
    assert_eq!(blocks[0], "Component Name: com.example.Operator\n");
    assert_eq!(blocks[4], "Component Name: com.example.Pub\n");
    assert_eq!(blocks[8..].concat(), worker_block("RUNNING"));

    for action in ["restart", "stop"] {
        let (code, stdout, stderr) = run(&["component", action, "-n", "com.example.Worker"]);
        assert_eq!((code, stdout.as_str()), (Some(0), ""), "{action}: {stderr}");
        if action == "restart" {
            // The answer means "accepted": wait for the new process.
            broker.wait_component_log("com.example.Worker", "stdout. run-started", 2);
        }
    }
    wait_for("FINISHED");

    let (code, stdout, stderr) = run(&["component", "details", "-n", "com.example.Missing"]);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert_eq!(
        stderr,
        "ggipc: ResourceNotFoundError: Component with name com.example.Missing not found in Greengrass\n"
    );
    let (code, stdout, stderr) = run(&["component", "restart", "--names", "com.example.Missing"]);
    assert_eq!((code, stdout.as_str()), (Some(1), ""));
    assert!(
        stderr.starts_with("ggipc: ResourceNotFoundError: "),
        "{stderr}"
    );

    // A component without an aws.greengrass.Cli policy is refused.
    for args in [
        &["component", "list"][..],
        &["component", "details", "-n", "com.example.Worker"],
        &["component", "restart", "-n", "com.example.Worker"],
        &["component", "stop", "--names", "com.example.Worker"],
    ] {
        let out = ggipc(&broker, "com.example.Pub", args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(
                "ggipc: UnauthorizedError: Principal com.example.Pub is not authorized"
            ),
            "{args:?}: {stderr}"
        );
    }
}

//! The supervisor runs recipe lifecycles as real processes: states,
//! retries, environment, recipe variables, logs, users, and stopping without
//! leaving a process behind.

use std::time::{Duration, Instant};

use ggipc_tests::{BrokerProcess, ComponentSpec};
use serde_json::{Value, json};

fn lifecycle(steps: Value) -> Value {
    json!({"Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": steps}]})
}

fn component(name: &str, steps: Value) -> ComponentSpec {
    ComponentSpec::pubsub_all(name).with_recipe(lifecycle(steps))
}

/// Waits until the broker log says `component` reached `state`.
fn wait_state(broker: &BrokerProcess, component: &str, state: &str, within: Duration) {
    let needle = format!("component=\"{component}\" from=");
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let log = broker.log_text();
        if log
            .lines()
            .any(|l| l.contains(&needle) && l.ends_with(&format!("to={state}")))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{component} never reached {state}:\n{}", broker.log_text());
}

#[test]
fn a_component_failing_three_times_is_broken() {
    let broker = BrokerProcess::start(
        &[component(
            "com.example.Fails",
            json!({"run": "echo attempt; exit 1"}),
        )],
        json!({}),
    );
    wait_state(
        &broker,
        "com.example.Fails",
        "BROKEN",
        Duration::from_secs(20),
    );
    let log = broker.component_log("com.example.Fails");
    assert_eq!(log.matches("stdout. attempt").count(), 3, "{log}");
    assert_eq!(broker.log_text().matches("to=ERRORED").count(), 2);
}

#[test]
fn run_exiting_zero_finishes_and_output_is_logged_in_greengrass_format() {
    let broker = BrokerProcess::start(
        &[component(
            "com.example.Once",
            json!({"install": "echo installing", "run": "echo hello; echo oops >&2"}),
        )],
        json!({}),
    );
    wait_state(
        &broker,
        "com.example.Once",
        "FINISHED",
        Duration::from_secs(10),
    );
    let log = broker.component_log("com.example.Once");
    let hello = log
        .lines()
        .find(|l| l.contains("stdout. hello"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(hello.contains("[INFO] (Copier) com.example.Once: stdout. hello. {scriptName=services.com.example.Once.lifecycle.run, serviceName=com.example.Once, currentState=RUNNING}"), "{hello}");
    assert!(
        log.contains("[WARN] (Copier) com.example.Once: stderr. oops."),
        "{log}"
    );
    assert!(log.contains("stdout. installing"), "{log}");
    // Broker events are in greengrass.log too.
    let gg = std::fs::read_to_string(broker.root.join("logs/greengrass.log")).unwrap();
    assert!(gg.contains("ready"), "{gg}");
    let log_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(broker.root.join("logs/com.example.Once.log"))
            .unwrap()
            .permissions(),
    ) & 0o777;
    assert_eq!(log_mode, 0o640);
}

#[test]
fn processes_get_their_identity_environment_and_recipe_variables() {
    let broker = BrokerProcess::start_with_system(
        &[ComponentSpec::pubsub_all("com.example.Env").with_recipe(json!({
            "ComponentConfiguration": {"DefaultConfiguration": {
                "accessControl": {},
                "greeting": "bonjour",
                "nested": {"n": 7}
            }},
            "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {
                "Setenv": {"FROM_RECIPE": "{configuration:/greeting}"},
                "run": "env | sort > env.txt; echo '{configuration:/nested/n} {kernel:rootPath} {work:path} {iot:thingName}' > vars.txt; pwd > pwd.txt"
            }}]
        }))],
        json!({}),
        json!({"thingName": "thing-1", "awsRegion": "eu-west-3"}),
    );
    wait_state(
        &broker,
        "com.example.Env",
        "FINISHED",
        Duration::from_secs(10),
    );
    let work = broker.root.join("work/com.example.Env");
    let env = std::fs::read_to_string(work.join("env.txt")).unwrap();
    let var = |k: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing:\n{env}"))
            .to_owned()
    };
    let token = broker.token("com.example.Env");
    assert_eq!(var("SVCUID"), token);
    assert_eq!(var("AWS_CONTAINER_AUTHORIZATION_TOKEN"), token);
    assert_eq!(
        var("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"),
        broker.socket.display().to_string()
    );
    assert_eq!(
        var("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH"),
        broker.socket.display().to_string()
    );
    assert_eq!(var("AWS_IOT_THING_NAME"), "thing-1");
    assert_eq!(var("AWS_REGION"), "eu-west-3");
    assert_eq!(var("GG_ROOT_CA_PATH"), "");
    assert_eq!(var("FROM_RECIPE"), "bonjour");
    let vars = std::fs::read_to_string(work.join("vars.txt")).unwrap();
    assert_eq!(
        vars.trim(),
        format!("7 {} {} thing-1", broker.root.display(), work.display())
    );
    assert_eq!(
        std::fs::read_to_string(work.join("pwd.txt"))
            .unwrap()
            .trim(),
        work.display().to_string()
    );
}

#[test]
fn a_step_past_its_timeout_fails() {
    let broker = BrokerProcess::start(
        &[component(
            "com.example.Slow",
            json!({"install": {"Script": "sleep 30", "Timeout": 1}, "run": "echo never"}),
        )],
        json!({}),
    );
    wait_state(
        &broker,
        "com.example.Slow",
        "ERRORED",
        Duration::from_secs(10),
    );
    assert!(
        broker
            .component_log("com.example.Slow")
            .contains("install timed out")
    );
    assert!(!broker.component_log("com.example.Slow").contains("never"));
}

#[test]
fn startup_makes_running_and_runs_as_the_configured_user() {
    let broker = BrokerProcess::start(
        &[
            component("com.example.Daemon", json!({"startup": "id -u; id -g"}))
                .with_entry(json!({"runWith": {"posixUser": "nobody:nogroup"}})),
            component(
                "com.example.Privileged",
                json!({"run": {"Script": "id -u", "RequiresPrivilege": true}}),
            )
            .with_entry(json!({"runWith": {"posixUser": "nobody"}})),
        ],
        json!({}),
    );
    wait_state(
        &broker,
        "com.example.Daemon",
        "RUNNING",
        Duration::from_secs(10),
    );
    // A startup step's output is copied for as long as what it started
    // runs, so it may land after RUNNING.
    broker.wait_component_log("com.example.Daemon", "stdout. 65534.", 1);
    wait_state(
        &broker,
        "com.example.Privileged",
        "FINISHED",
        Duration::from_secs(10),
    );
    let log = broker.component_log("com.example.Privileged");
    assert!(log.contains("stdout. 0."), "{log}");
}

/// Whether every process matching `marker` has gone within `within`:
/// processes sent SIGKILL are torn down by the kernel a moment later.
fn gone_within(marker: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while !marker_processes(marker).is_empty() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn marker_processes(marker: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn broker_sigterm_leaves_no_component_process_behind() {
    // Unique sleep lengths mark this test's processes for pgrep.
    let pid = std::process::id();
    let marker = format!("(298|299)\\.{pid}");
    // The run step starts a background child that ignores SIGTERM (and so
    // does its sleep, which inherits that), then sleeps in the foreground.
    let script = format!("sh -c \"trap '' TERM; sleep 299.{pid}\" & sleep 298.{pid}");
    let mut broker = BrokerProcess::start(
        &[component(
            "com.example.Long",
            json!({ "run": script, "shutdown": "echo bye" }),
        )],
        json!({}),
    );
    wait_state(
        &broker,
        "com.example.Long",
        "RUNNING",
        Duration::from_secs(10),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    // Both sleeps, and the shells around them.
    while marker_processes(&marker).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        marker_processes(&marker).len() >= 3,
        "processes not started"
    );
    let stopped = Instant::now();
    assert!(broker.terminate().success());
    assert!(stopped.elapsed() < Duration::from_secs(12));
    // SIGKILLed before the broker exited; the kernel may take a moment to
    // tear them down.
    assert!(gone_within(&marker, Duration::from_secs(5)), "orphans left");
    assert!(
        broker
            .component_log("com.example.Long")
            .contains("stdout. bye")
    );
}

/// What `startup` starts in the background is the component: it keeps
/// running (its output still logged) until the component stops, and then
/// gets SIGTERM and time to act on it.
#[test]
fn a_daemon_started_by_startup_runs_until_the_component_stops() {
    let pid = std::process::id();
    // The sleep alone, not the shells whose command lines name it.
    let marker = format!("^sleep 296\\.{pid}");
    let script = format!(
        "(trap 'echo daemon-stopping; exit 0' TERM; echo daemon-up; sleep 296.{pid} & wait) &"
    );
    let mut broker = BrokerProcess::start(
        &[component(
            "com.example.Daemon",
            json!({ "startup": script }),
        )],
        json!({}),
    );
    wait_state(
        &broker,
        "com.example.Daemon",
        "RUNNING",
        Duration::from_secs(10),
    );
    broker.wait_component_log("com.example.Daemon", "stdout. daemon-up", 1);
    assert_eq!(marker_processes(&marker).len(), 1, "the daemon is gone");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(marker_processes(&marker).len(), 1, "the daemon is gone");
    assert!(broker.terminate().success());
    assert!(
        broker
            .component_log("com.example.Daemon")
            .contains("stdout. daemon-stopping"),
        "{}",
        broker.component_log("com.example.Daemon")
    );
    assert!(
        gone_within(&marker, Duration::from_secs(5)),
        "the daemon outlived the broker"
    );
}

#[test]
fn an_identity_without_lifecycle_is_finished_and_can_connect() {
    let broker = BrokerProcess::start(&[ComponentSpec::pubsub_all("com.example.Id")], json!({}));
    wait_state(
        &broker,
        "com.example.Id",
        "FINISHED",
        Duration::from_secs(5),
    );
    ggipc_tests::RawConn::connect(&broker.socket, broker.token("com.example.Id"));
}

#[test]
fn sighup_adds_removes_and_changes_components_and_live_policies() {
    let pid = std::process::id();
    let marker = format!("297\\.{pid}");
    let pubsub_on = |resources: Value| {
        json!({"aws.greengrass.ipc.pubsub": {"B:1": {
            "operations": ["aws.greengrass#PublishToTopic"], "resources": resources
        }}})
    };
    let a = component(
        "com.example.A",
        json!({ "run": format!("sleep 297.{pid}") }),
    );
    let b = ComponentSpec::new("com.example.B", pubsub_on(json!(["x"])));
    let mut broker = BrokerProcess::start(&[a, b], json!({}));
    wait_state(&broker, "com.example.A", "RUNNING", Duration::from_secs(10));
    let a_token = broker.token("com.example.A").to_owned();
    let b_token = broker.token("com.example.B").to_owned();
    let mut b_conn = ggipc_tests::RawConn::connect(&broker.socket, &b_token);
    let publish = |conn: &mut ggipc_tests::RawConn, topic: &str| {
        conn.request(
            "PublishToTopic",
            &json!({"topic": topic, "publishMessage": {"jsonMessage": {"message": {}}}}),
        );
        conn.recv().unwrap().message_type
    };
    use ggipc_protocol::rpc::MessageType;
    assert_eq!(publish(&mut b_conn, "y"), MessageType::ApplicationError);
    // Allowed, and the connection remembers that: a reload must end it.
    assert_eq!(publish(&mut b_conn, "x"), MessageType::ApplicationMessage);

    let b2 = ComponentSpec::new("com.example.B", pubsub_on(json!(["y"])));
    let c = component("com.example.C", json!({"run": "echo started-C"}));
    broker.redeploy(&[b2, c]);

    wait_state(
        &broker,
        "com.example.C",
        "FINISHED",
        Duration::from_secs(10),
    );
    assert!(
        broker
            .component_log("com.example.C")
            .contains("stdout. started-C")
    );
    assert!(
        gone_within(&marker, Duration::from_secs(10)),
        "removed component still runs"
    );
    // The live connection is judged by the new policy, what it was allowed
    // a moment ago included...
    assert_eq!(publish(&mut b_conn, "x"), MessageType::ApplicationError);
    assert_eq!(publish(&mut b_conn, "y"), MessageType::ApplicationMessage);
    // ...B kept its token, and A's no longer opens a connection.
    assert_eq!(broker.token("com.example.B"), b_token);
    let mut refused = ggipc_tests::RawConn::open(&broker.socket);
    refused.send(&ggipc_protocol::rpc::connect(&a_token));
    assert!(!refused.recv().unwrap().is_accepted_ack());
}

/// A signal sent the moment `ready` is logged is handled, not fatal: the
/// handlers are installed before the line is written. (SIGHUP's used to be
/// installed by a task that had not yet run, and the default action killed
/// the broker, leaving its socket file behind.)
#[test]
fn signals_sent_right_after_ready_are_handled() {
    use rustix::process::{Pid, Signal, kill_process};
    use std::process::{Command, Stdio};
    for signal in [Signal::HUP, Signal::TERM, Signal::INT] {
        for _ in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("gg")
                .tempdir_in("/tmp")
                .unwrap();
            let deployment = dir.path().join("deployment.json");
            std::fs::write(&deployment, r#"{"components": {}}"#).unwrap();
            let root = dir.path().join("root");
            let log = dir.path().join("broker.log");
            let mut child = Command::new(ggipc_tests::workspace_bin("ggipc-broker"))
                .arg("--root")
                .arg(&root)
                .arg("--deployment")
                .arg(&deployment)
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let text = || std::fs::read_to_string(&log).unwrap_or_default();
            let deadline = Instant::now() + Duration::from_secs(20);
            // A short poll: the signal goes out right after the line is
            // there, without a busy loop taking a core from the broker.
            while !text().contains(" ready ") {
                assert!(Instant::now() < deadline, "not ready:\n{}", text());
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("exited with {status}:\n{}", text());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let pid = Pid::from_raw(child.id() as i32).unwrap();
            kill_process(pid, signal).unwrap();
            if signal == Signal::HUP {
                while !text().contains("deployment reloaded") {
                    assert!(
                        Instant::now() < deadline,
                        "no reload after SIGHUP:\n{}",
                        text()
                    );
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("SIGHUP ended the broker with {status}:\n{}", text());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                kill_process(pid, Signal::TERM).unwrap();
            }
            let status = child.wait().unwrap();
            assert!(status.success(), "{signal:?}: {status}\n{}", text());
            assert!(!root.join("ipc.socket").exists(), "socket left behind");
        }
    }
}

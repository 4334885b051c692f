//! The main job: `ggipc-broker` with no deployment runs the built-in demo.
//! The publisher sample publishes to `local/topic`, the Python Lambda
//! function logs each event, and a stop leaves no process behind.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ggipc_tests::workspace_bin;

#[test]
fn the_demo_lambda_logs_the_publishers_messages_and_stops_cleanly() {
    let dir = tempfile::Builder::new()
        .prefix("ggdemo")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().join("root");
    let mut broker = Command::new(workspace_bin("ggipc-broker"))
        .arg("--root")
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lambda_log = root.join("logs/com.example.lambda.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    let wanted = r#"lambda_function.py:4,{"key1": "value1", "key2": "value2", "key3": "value3"}. {serviceInstance=0, serviceName=com.example.lambda, currentState=RUNNING}"#;
    loop {
        let log = std::fs::read_to_string(&lambda_log).unwrap_or_default();
        if log.contains(wanted) {
            break;
        }
        if Instant::now() > deadline {
            let _ = broker.kill();
            panic!("no event logged by the demo Lambda:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(root.join("demo/deployment.yaml").exists());
    assert!(root.join("demo/subscriber.token").exists());

    // An operator on the device lists the demo as greengrass-cli would.
    let out = Command::new(workspace_bin("ggipc"))
        .args(["--root", root.to_str().unwrap(), "component", "list"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("Components currently running in Greengrass:\n"),
        "{stdout}"
    );
    for (name, state) in [
        ("com.example.Publisher", "RUNNING"),
        ("com.example.lambda", "RUNNING"),
        ("ggipc.demo.Subscriber", "FINISHED"),
    ] {
        assert!(
            stdout.contains(&format!(
                "Component Name: {name}\n    Version: 1.0.0\n    State: {state}\n"
            )),
            "{name} {state}:\n{stdout}"
        );
    }

    // And every 5 s after the first, another event.
    let events = |log: &str| log.matches(wanted).count();
    let first_seen = Instant::now();
    loop {
        let log = std::fs::read_to_string(&lambda_log).unwrap_or_default();
        if events(&log) >= 2 {
            break;
        }
        assert!(
            first_seen.elapsed() < Duration::from_secs(20),
            "no second event:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let pid = rustix::process::Pid::from_raw(broker.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    assert!(broker.wait().unwrap().success());
    // Nothing started from this root survives the broker.
    let out = Command::new("pgrep")
        .args(["-f", &root.display().to_string()])
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "left behind: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!root.join("ipc.socket").exists());
}

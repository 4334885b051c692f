//! Lambda worker processes: on-demand scaling and idle exit, start
//! failures ending in BROKEN with the reason (`lambda.md` §8 rows 3, 10,
//! 18), crashes, the memory limit of `GreengrassContainer` (row 22), no
//! process left after a stop, and events published while the worker starts
//! (field case BR-25).

mod lambda_common;

use std::time::{Duration, Instant};

use ggipc_tests::BrokerProcess;
use lambda_common::*;
use serde_json::{Value, json};

/// Records each event with its worker's pid and id, after `sleep` seconds.
const RECORDER: &str = r#"import json, os, time


def handler(event, context):
    start = time.time()
    time.sleep(event.get("sleep", 0))
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"seq": event.get("seq"), "pid": os.getpid(), "start": start,
                            "end": time.time(),
                            "worker": os.environ["AWS_GREENGRASS_LAMBDA_WORKER_ID"]}) + "\n")
"#;

fn pids(records: &[Value]) -> Vec<u64> {
    let mut pids: Vec<u64> = records.iter().filter_map(|r| r["pid"].as_u64()).collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

#[test]
fn on_demand_workers_scale_to_the_maximum_and_exit_when_idle() {
    let code = Code::new(&[("fn.py", RECORDER)]);
    let broker = BrokerProcess::start(
        &[
            lambda(
                "com.example.OnDemand",
                &code,
                json!({
                    "eventSources": [{"topic": "od", "type": "PUB_SUB"}],
                    "pinned": false,
                    "maxInstancesCount": 3,
                    "maxIdleTimeInSeconds": 2
                }),
            ),
            publisher(),
        ],
        json!({}),
    );
    // RUNNING with no worker at all.
    wait_state(
        &broker,
        "com.example.OnDemand",
        "RUNNING",
        Duration::from_secs(10),
    );
    assert!(code.records().is_empty());
    assert!(
        !broker
            .component_log("com.example.OnDemand")
            .contains("lambda-worker-ready")
    );
    let mut conn = connect_publisher(&broker);
    // 1 s each: two workers alone would need 4.5 s for the nine, so the
    // third has time to start even on a busy machine.
    for seq in 0..9 {
        publish_json(&mut conn, "od", &json!({"seq": seq, "sleep": 1.0}));
    }
    let records = code.wait_count(
        &broker,
        "com.example.OnDemand",
        "seq",
        9,
        Duration::from_secs(30),
    );
    let mut seen: Vec<i64> = records.iter().filter_map(|r| r["seq"].as_i64()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..9).collect::<Vec<_>>());
    let workers = pids(&records);
    assert_eq!(workers.len(), 3, "scaled to maxInstancesCount: {records:?}");
    // Never more than three at once: at any record's start, at most three
    // invocations are running.
    for r in &records {
        let t = r["start"].as_f64().unwrap();
        let running = records
            .iter()
            .filter(|o| o["start"].as_f64().unwrap() <= t && o["end"].as_f64().unwrap() > t)
            .count();
        assert!(running <= 3, "{running} at once: {records:?}");
    }
    // Instances 1, 2, 3 (pinned functions have instance 0).
    let mut instances: Vec<String> = records
        .iter()
        .map(|r| {
            r["worker"]
                .as_str()
                .unwrap()
                .split('-')
                .nth(1)
                .unwrap()
                .to_owned()
        })
        .collect();
    instances.sort();
    instances.dedup();
    assert_eq!(instances, ["1", "2", "3"]);
    // Idle for 2 s: each worker exits.
    broker.wait_component_log("com.example.OnDemand", "lambda-worker-idle", 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    while workers.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "idle workers still running");
        std::thread::sleep(Duration::from_millis(20));
    }
    // More work starts a new instance.
    publish_json(&mut conn, "od", &json!({"seq": 9}));
    let records = code.wait_count(
        &broker,
        "com.example.OnDemand",
        "seq",
        10,
        Duration::from_secs(20),
    );
    let last = records.last().unwrap();
    assert!(!workers.contains(&last["pid"].as_u64().unwrap()));
    assert!(
        last["worker"]
            .as_str()
            .unwrap()
            .starts_with("com.example.OnDemand-4-"),
        "{last}"
    );
}

const LOOP_AT_IMPORT: &str = "while True:\n    pass\n";
const EXIT_AT_IMPORT: &str = "import os, sys\nsys.stderr.write('cannot go on\\n')\nos._exit(3)\n";

#[test]
fn functions_that_cannot_start_are_broken_with_the_reason() {
    let ok = Code::new(&[("fn.py", RECORDER)]);
    let looping = Code::new(&[("fn.py", LOOP_AT_IMPORT)]);
    let exiting = Code::new(&[("fn.py", EXIT_AT_IMPORT)]);
    let broker = BrokerProcess::start(
        &[
            // Row 10: an import that fails is logged with its traceback.
            lambda_with(
                "com.example.NoModule",
                &ok,
                json!({}),
                json!({"handler": "missing_module.handler"}),
            ),
            lambda_with(
                "com.example.NoFunction",
                &ok,
                json!({}),
                json!({"handler": "fn.missing"}),
            ),
            // Row 3: a runtime that is not there, or not supported.
            lambda_with(
                "com.example.Node",
                &ok,
                json!({}),
                json!({"runtime": "nodejs14.x"}),
            ),
            lambda_with(
                "com.example.NoPython",
                &ok,
                json!({}),
                json!({"interpreter": "/nonexistent/python3"}),
            ),
            // Row 18: module code that never ends.
            lambda(
                "com.example.Loop",
                &looping,
                json!({"statusTimeoutInSeconds": 1}),
            ),
            lambda("com.example.Exit", &exiting, json!({})),
        ],
        json!({}),
    );
    let expectations = [
        (
            "com.example.NoModule",
            "ModuleNotFoundError: No module named 'missing_module'",
        ),
        (
            "com.example.NoFunction",
            "AttributeError: module 'fn' has no attribute 'missing'",
        ),
        ("com.example.Node", "unsupported runtime \"nodejs14.x\""),
        (
            "com.example.NoPython",
            "/nonexistent/python3: executable not found",
        ),
        (
            "com.example.Loop",
            "the handler was not loaded within statusTimeoutInSeconds (1 s)",
        ),
        (
            "com.example.Exit",
            "exited before it was ready (exit status: 3); last error output: fn.py:2,cannot go on",
        ),
    ];
    for (component, reason) in expectations {
        wait_state(&broker, component, "BROKEN", Duration::from_secs(30));
        let log = broker.component_log(component);
        let broken = log
            .lines()
            .find(|l| l.contains("service-broken"))
            .unwrap_or_else(|| panic!("{component}:\n{log}"));
        assert!(broken.contains(reason), "{component}: {broken}");
    }
    // Worker start failures are retried: three attempts, with ERRORED in
    // between; configuration errors are not.
    let attempts = |c: &str| {
        broker
            .component_log(c)
            .matches("lambda-worker-start-failed")
            .count()
    };
    assert_eq!(attempts("com.example.NoModule"), 3);
    assert_eq!(attempts("com.example.Loop"), 3);
    assert_eq!(attempts("com.example.Node"), 0);
    let log = broker.component_log("com.example.NoModule");
    assert!(log.contains("Traceback (most recent call last):"), "{log}");
    assert!(
        broker
            .log_text()
            .contains("component=\"com.example.NoModule\" from=STARTING to=ERRORED")
    );
}

const CRASHER: &str = r#"import json, os


def handler(event, context):
    if event.get("crash"):
        os._exit(5)
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"seq": event["seq"], "pid": os.getpid()}) + "\n")
"#;

#[test]
fn a_worker_that_dies_in_its_handler_is_replaced_and_the_next_event_handled() {
    let code = Code::new(&[("fn.py", CRASHER)]);
    let broker = BrokerProcess::start(
        &[
            lambda(
                "com.example.Crash",
                &code,
                json!({"eventSources": [{"topic": "c", "type": "PUB_SUB"}]}),
            ),
            publisher(),
        ],
        json!({}),
    );
    let mut conn = connect_publisher(&broker);
    publish_json(&mut conn, "c", &json!({"seq": 1}));
    publish_json(&mut conn, "c", &json!({"crash": true}));
    publish_json(&mut conn, "c", &json!({"seq": 2}));
    let records = code.wait_count(
        &broker,
        "com.example.Crash",
        "seq",
        2,
        Duration::from_secs(20),
    );
    assert_ne!(records[0]["pid"], records[1]["pid"], "a new worker");
    let log = broker.component_log("com.example.Crash");
    let died = log
        .lines()
        .find(|l| l.contains("lambda-worker-died"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(died.contains("exit status: 5"), "{died}");
    assert!(died.contains("topic=c"), "{died}");
    wait_state(&broker, "com.example.Crash", "RUNNING", Duration::ZERO);
    assert!(!broker.log_text().contains("to=ERRORED"));
}

const HOG: &str = r#"import json, os


def handler(event, context):
    if event.get("mb"):
        hog = bytearray(event["mb"] * 1024 * 1024)
        hog[-1] = 1
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"seq": event["seq"], "pid": os.getpid()}) + "\n")
"#;

/// Runs a 128 MB `GreengrassContainer` function that allocates 512 MB in
/// a broker with `env`; returns the broker and the function's code.
fn memory_hog(env: &[(&str, &str)]) -> (BrokerProcess, Code) {
    let code = Code::new(&[("fn.py", HOG)]);
    let broker = BrokerProcess::start_with_env(
        &[
            lambda(
                "com.example.Hog",
                &code,
                json!({
                    "eventSources": [{"topic": "hog", "type": "PUB_SUB"}],
                    "timeoutInSeconds": 10,
                    "linuxProcessParams": {
                        "isolationMode": "GreengrassContainer",
                        "containerParams": {"memorySizeInKB": 131072}
                    }
                }),
            ),
            publisher(),
        ],
        json!({}),
        env,
    );
    let mut conn = connect_publisher(&broker);
    publish_json(&mut conn, "hog", &json!({"seq": 1, "mb": 16}));
    publish_json(&mut conn, "hog", &json!({"seq": 2, "mb": 512}));
    publish_json(&mut conn, "hog", &json!({"seq": 3}));
    code.wait_count(
        &broker,
        "com.example.Hog",
        "seq",
        2,
        Duration::from_secs(30),
    );
    (broker, code)
}

#[test]
fn the_memory_limit_is_applied_and_its_method_said() {
    let (broker, code) = memory_hog(&[]);
    let records = code.records();
    assert_eq!(
        records
            .iter()
            .map(|r| r["seq"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 3],
        "the 512 MB event fails, the next is handled"
    );
    let log = broker.component_log("com.example.Hog");
    let method = log
        .lines()
        .find(|l| l.contains("lambda-memory"))
        .unwrap_or_else(|| panic!("{log}"));
    if method.contains("cgroup") {
        // The kernel kills the worker; a new one takes the next event.
        assert!(
            method.contains("memory limit 131072 KB applied through cgroup v"),
            "{method}"
        );
        assert_ne!(records[0]["pid"], records[1]["pid"]);
        assert!(
            log.contains("it exceeded its memory limit of 131072 KB"),
            "{log}"
        );
    } else {
        assert!(method.contains("RLIMIT_AS"), "{method}");
        assert!(log.contains("the handler raised MemoryError"), "{log}");
    }
}

#[test]
fn without_cgroups_the_limit_is_rlimit_as() {
    let (broker, code) = memory_hog(&[("GGIPC_LAMBDA_CGROUPS", "off")]);
    let records = code.records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["pid"], records[1]["pid"], "the worker lives on");
    let log = broker.component_log("com.example.Hog");
    assert!(
        log.contains("memory limit 131072 KB applied as RLIMIT_AS (address space): cgroups are turned off by GGIPC_LAMBDA_CGROUPS"),
        "{log}"
    );
    assert!(log.contains("the handler raised MemoryError"), "{log}");
}

/// Records its pid and starts a grandchild in its process group, which
/// must go with it.
const SPAWNER: &str = r#"import json, os, subprocess


def handler(event, context):
    child = subprocess.Popen(["sleep", "1000"])
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "child": child.pid}) + "\n")
"#;

#[test]
fn stopping_the_broker_leaves_no_worker_nor_its_children() {
    let pinned = Code::new(&[("fn.py", SPAWNER)]);
    let on_demand = Code::new(&[("fn.py", SPAWNER)]);
    let mut broker = BrokerProcess::start(
        &[
            lambda(
                "com.example.Pinned",
                &pinned,
                json!({"eventSources": [{"topic": "s", "type": "PUB_SUB"}]}),
            ),
            lambda(
                "com.example.Demand",
                &on_demand,
                json!({"eventSources": [{"topic": "s", "type": "PUB_SUB"}], "pinned": false}),
            ),
            publisher(),
        ],
        json!({}),
    );
    let mut conn = connect_publisher(&broker);
    publish_json(&mut conn, "s", &json!({}));
    let mut processes = Vec::new();
    for (code, component) in [
        (&pinned, "com.example.Pinned"),
        (&on_demand, "com.example.Demand"),
    ] {
        let r = &code.wait_count(&broker, component, "pid", 1, Duration::from_secs(20))[0];
        processes.push(r["pid"].as_u64().unwrap());
        processes.push(r["child"].as_u64().unwrap());
    }
    assert!(processes.iter().all(|p| alive(*p)));
    let started = Instant::now();
    assert!(broker.terminate().success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let alive_now = alive_after(&processes, Duration::from_secs(5));
    assert!(alive_now.is_empty(), "left behind: {alive_now:?}");
    wait_state(&broker, "com.example.Pinned", "FINISHED", Duration::ZERO);
    wait_state(&broker, "com.example.Demand", "FINISHED", Duration::ZERO);
}

/// Slow to import, as a function with heavy dependencies would be: until the
/// test opens its gate.
const SLOW_START: &str = r#"import json, os, time

# Import ends when the test opens the gate (or after 30 s), not after a
# fixed time a busy machine could outrun.
gate = os.path.join(os.path.dirname(os.environ["OUT"]), "gate")
deadline = time.monotonic() + 30
while not os.path.exists(gate) and time.monotonic() < deadline:
    time.sleep(0.02)


def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"seq": event["seq"]}) + "\n")
"#;

/// BR-25: the function has no dependency on the cloud, and what is
/// published while its worker still starts waits for it.
#[test]
fn events_published_while_the_worker_starts_are_all_handled_in_order() {
    let code = Code::new(&[("fn.py", SLOW_START)]);
    let broker = BrokerProcess::start(
        &[
            lambda(
                "com.example.Offline",
                &code,
                json!({
                    "eventSources": [
                        {"topic": "local/evt", "type": "PUB_SUB"},
                        {"topic": "cloud/evt", "type": "IOT_CORE"}
                    ]
                }),
            ),
            publisher(),
        ],
        json!({}),
    );
    let mut conn = connect_publisher(&broker);
    for seq in 0..20 {
        publish_json(&mut conn, "local/evt", &json!({"seq": seq}));
    }
    assert!(
        !broker
            .component_log("com.example.Offline")
            .contains("lambda-worker-ready"),
        "the events were meant to arrive before the worker is ready"
    );
    std::fs::write(code.path().join("gate"), "").unwrap();
    let records = code.wait_count(
        &broker,
        "com.example.Offline",
        "seq",
        20,
        Duration::from_secs(20),
    );
    let seqs: Vec<i64> = records.iter().map(|r| r["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (0..20).collect::<Vec<_>>());
    wait_state(&broker, "com.example.Offline", "RUNNING", Duration::ZERO);
}

const IDENTITY: &str = r#"import json, os


def handler(event, context):
    with open(os.environ["OUT"], "a") as f:
        f.write(json.dumps({"uid": os.getuid(), "gid": os.getgid(),
                            "home": os.environ.get("HOME"), "user": os.environ.get("USER")}) + "\n")
"#;

/// `lambda.md` §8 row 7: a function with `runWith.posixUser` runs as that
/// user, with that user's home rather than the work folder.
#[test]
fn a_function_runs_as_its_posix_user_with_that_users_home() {
    use std::os::unix::fs::PermissionsExt as _;
    let code = Code::new(&[("fn.py", IDENTITY)]);
    // The interpreter must be one that user may run: the system's, not
    // one under root's home.
    let python = "/usr/bin/python3";
    assert!(
        std::path::Path::new(python).exists(),
        "this test needs {python}"
    );
    let mut spec = lambda_with(
        "com.example.AsNobody",
        &code,
        // On demand: the worker starts at the first event, after the
        // folders below are opened up.
        json!({"eventSources": [{"topic": "who", "type": "PUB_SUB"}], "pinned": false}),
        json!({"interpreter": python}),
    );
    spec.entry_extra["runWith"] = json!({"posixUser": "nobody:nogroup"});
    let broker = BrokerProcess::start(&[spec, publisher()], json!({}));
    // The harness' temporary folders are private; a device's root and a
    // function's code are not.
    let open = |p: &std::path::Path| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    let mut dir = broker.root.clone();
    while dir
        .parent()
        .is_some_and(|p| p != std::path::Path::new("/tmp"))
    {
        open(&dir);
        dir = dir.parent().unwrap().to_path_buf();
    }
    open(&dir);
    open(code.path());
    std::fs::write(code.out(), "").unwrap();
    std::fs::set_permissions(code.out(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut conn = connect_publisher(&broker);
    publish_json(&mut conn, "who", &json!({}));
    let records = code.wait_count(
        &broker,
        "com.example.AsNobody",
        "uid",
        1,
        Duration::from_secs(20),
    );
    assert_eq!(
        records[0],
        json!({"uid": 65534, "gid": 65534, "home": "/nonexistent", "user": "nobody"})
    );
}

/// `lambda.md` §8 row 25: a function built for a Python the device lacks
/// runs on `python3`, and the log says so.
#[test]
fn a_missing_python_version_falls_back_to_python3_and_says_so() {
    let code = Code::new(&[("fn.py", RECORDER)]);
    let broker = BrokerProcess::start(
        &[
            lambda_with(
                "com.example.Py399",
                &code,
                json!({"eventSources": [{"topic": "v", "type": "PUB_SUB"}]}),
                json!({"runtime": "python3.99"}),
            ),
            publisher(),
        ],
        json!({}),
    );
    let mut conn = connect_publisher(&broker);
    publish_json(&mut conn, "v", &json!({"seq": 1}));
    code.wait_count(
        &broker,
        "com.example.Py399",
        "seq",
        1,
        Duration::from_secs(20),
    );
    let log = broker.component_log("com.example.Py399");
    let line = log
        .lines()
        .find(|l| l.contains("lambda-runtime"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("[WARN]"), "{line}");
    assert!(
        line.contains("runtime python3.99 requested; running Python 3."),
        "{line}"
    );
}

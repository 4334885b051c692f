//! Lambda launcher benchmark: invocations per second and event-to-handler
//! latency of a trivial Python handler, pinned and on-demand, through the
//! real broker binary.
//!
//! ```text
//! cargo build --release --workspace --bins
//! ./target/release/lambda_bench [--events N] [--latency-events N] [--runs R]
//!     [--instances 2,100] [--no-baseline]
//! ```
//!
//! Each run starts a fresh broker with one `NoContainer` function whose
//! handler appends `<sent ns> <handler entry ns>` to a file (both
//! `CLOCK_REALTIME`; the publisher stamps each JSON event just before
//! writing it).
//!
//! - latency: events published one at a time, one every millisecond (far
//!   below capacity, so nothing queues); the figure is handler entry minus
//!   the publisher's stamp: the publish request, the broker's work queue,
//!   the work channel, the runtime shim's decoding and the handler call.
//!   For on-demand functions the first event also starts a worker; that
//!   cold start is reported on its own.
//! - throughput: `--events` events pipelined (256 unanswered requests at
//!   most) into a queue large enough to hold them all; the figure is events
//!   over the time from the first publish to the last handler entry.
//!
//! For comparison, the same two measurements are made of what a component
//! would do without the launcher: a Python process subscribed with the SDK
//! (`awsiotsdk`'s `GreengrassCoreIPCClientV2`, one callback thread) doing
//! the same work in its callback. It needs the repository's virtualenv
//! (scripts/setup); `--no-baseline` skips it.
//!
//! Every figure is the median of `--runs` runs, with min and max.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ggipc_tests::{BrokerProcess, ComponentSpec, RawConn};
use serde_json::{Value, json};

const HANDLER: &str = r#"import os, time

_out = os.open(os.environ["OUT"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def handler(event, context):
    entered = time.time_ns()
    os.write(_out, b"%d %d\n" % (event["t"], entered))
"#;

/// The baseline: an SDK subscriber recording the same pairs.
const SDK_SUBSCRIBER: &str = r#"import concurrent.futures, os, sys, time
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2

out = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def on_event(event):
    entered = time.time_ns()
    os.write(out, b"%d %d\n" % (event.json_message.message["t"], entered))


client = GreengrassCoreIPCClientV2(executor=concurrent.futures.ThreadPoolExecutor(max_workers=1))
client.subscribe_to_topic(topic="bench/in", on_stream_event=on_event)
print("subscribed", flush=True)
sys.stdin.read()
"#;

const PUBLISHER: &str = "bench.Publisher";
const SUBSCRIBER: &str = "bench.Subscriber";
const FUNCTION: &str = "bench.Lambda";
const WINDOW: usize = 256;

struct Options {
    events: usize,
    latency_events: usize,
    runs: usize,
    instances: Vec<usize>,
    baseline: bool,
}

fn parse_args() -> Options {
    let mut o = Options {
        events: 20_000,
        latency_events: 2_000,
        runs: 5,
        instances: vec![2, 100],
        baseline: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--no-baseline" {
            o.baseline = false;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => o.events = value.parse().expect("--events N"),
            "--latency-events" => o.latency_events = value.parse().expect("--latency-events N"),
            "--runs" => o.runs = value.parse().expect("--runs N"),
            "--instances" => {
                o.instances = value
                    .split(',')
                    .map(|v| v.parse().expect("--instances 2,100"))
                    .collect();
            }
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// A broker running the benchmark function; `pinned` or on demand with
/// `instances` workers at most.
struct Setup {
    broker: BrokerProcess,
    out: std::path::PathBuf,
    _code: tempfile::TempDir,
    /// The baseline's subscriber, killed when done.
    subscriber: Option<std::process::Child>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(child) = &mut self.subscriber {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What receives the events.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The Lambda function, pinned.
    Pinned,
    /// The Lambda function on demand, with this many workers at most.
    OnDemand(usize),
    /// An SDK subscriber (the baseline).
    Sdk,
}

fn start(target: Target, queue: usize) -> Setup {
    match target {
        Target::Pinned => setup(true, 1, queue),
        Target::OnDemand(instances) => setup(false, instances, queue),
        Target::Sdk => setup_sdk(),
    }
}

fn setup_sdk() -> Setup {
    use std::io::BufRead as _;
    let code = tempfile::Builder::new()
        .prefix("sdkbench")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let script = code.path().join("subscriber.py");
    std::fs::write(&script, SDK_SUBSCRIBER).unwrap();
    let out = code.path().join("out.txt");
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::pubsub_all(PUBLISHER),
            ComponentSpec::pubsub_all(SUBSCRIBER),
        ],
        // A flood must not overflow the subscriber's outbound queue: the
        // baseline counts deliveries, not drops.
        json!({"outboundQueueBytes": 256 << 20}),
    );
    let mut child = std::process::Command::new(ggipc_tests::python())
        .arg(&script)
        .arg(&out)
        .env(
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT",
            &broker.socket,
        )
        .env("SVCUID", broker.token(SUBSCRIBER))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the SDK subscriber");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("subscribed"), "SDK subscriber: {line:?}");
    Setup {
        broker,
        out,
        _code: code,
        subscriber: Some(child),
    }
}

fn setup(pinned: bool, instances: usize, queue: usize) -> Setup {
    let code = tempfile::Builder::new()
        .prefix("fnbench")
        .tempdir_in("/tmp")
        .expect("temp dir");
    std::fs::write(code.path().join("fn.py"), HANDLER).unwrap();
    let out = code.path().join("out.txt");
    let lambda = ComponentSpec::new(FUNCTION, json!({})).with_entry(json!({"lambdaFunction": {
        "handler": "fn.handler",
        "runtime": "python3",
        "codePath": code.path().display().to_string(),
        "componentLambdaParameters": {
            "eventSources": [{"topic": "bench/in", "type": "PUB_SUB"}],
            "pinned": pinned,
            "maxInstancesCount": instances,
            "maxQueueSize": queue,
            "timeoutInSeconds": 30,
            "environmentVariables": {"OUT": out.display().to_string()},
            "linuxProcessParams": {"isolationMode": "NoContainer"}
        }
    }}));
    let broker = BrokerProcess::start(&[lambda, ComponentSpec::pubsub_all(PUBLISHER)], json!({}));
    // Measured from a launched function: its pinned worker ready, or for an
    // on-demand one the launcher done with its set-up.
    let ready = if pinned {
        "lambda-worker-ready"
    } else {
        "lambda-launch"
    };
    let log = broker.root.join(format!("logs/{FUNCTION}.log"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains(ready)
    {
        assert!(Instant::now() < deadline, "function not ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    Setup {
        broker,
        out,
        _code: code,
        subscriber: None,
    }
}

fn publish_request(conn: &mut RawConn) {
    let payload = json!({
        "topic": "bench/in",
        "publishMessage": {"jsonMessage": {"message": {"t": now_ns() as u64}}}
    });
    conn.request("PublishToTopic", &payload);
}

fn expect_answer(conn: &mut RawConn) {
    let answer = conn.recv().expect("publish answer");
    assert_eq!(
        answer.service_model_type.as_ref().map(|s| s.as_str()),
        Some("aws.greengrass#PublishToTopicResponse"),
        "{answer:?}"
    );
}

/// The (sent, entered) pairs once `n` are written.
fn wait_pairs(out: &std::path::Path, n: usize) -> Vec<(u128, u128)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(out).unwrap_or_default();
        if text.lines().count() >= n {
            return text
                .lines()
                .map(|l| {
                    let (a, b) = l.split_once(' ').expect("two numbers");
                    (a.parse().unwrap(), b.parse().unwrap())
                })
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} invocations in 120 s",
            text.lines().count()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

struct Latency {
    p50_us: f64,
    p99_us: f64,
    first_us: f64,
}

fn latency_run(target: Target, events: usize) -> Latency {
    let s = start(target, events + 10);
    let mut conn = RawConn::connect(&s.broker.socket, s.broker.token(PUBLISHER));
    publish_request(&mut conn);
    expect_answer(&mut conn);
    // The first event of an on-demand function starts its worker; the
    // others must not queue behind that start.
    wait_pairs(&s.out, 1);
    let start = Instant::now();
    for i in 1..events {
        // Open loop, one event per millisecond.
        let due = start + Duration::from_millis(i as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        publish_request(&mut conn);
        expect_answer(&mut conn);
    }
    let pairs = wait_pairs(&s.out, events);
    let mut us: Vec<f64> = pairs
        .iter()
        .map(|(sent, entered)| entered.saturating_sub(*sent) as f64 / 1000.0)
        .collect();
    let first_us = us[0];
    us.remove(0);
    us.sort_by(f64::total_cmp);
    Latency {
        p50_us: us[us.len() / 2],
        p99_us: us[us.len() * 99 / 100],
        first_us,
    }
}

fn throughput_run(target: Target, events: usize) -> f64 {
    let s = start(target, events + 10);
    let mut conn = RawConn::connect(&s.broker.socket, s.broker.token(PUBLISHER));
    let first = now_ns();
    let mut in_flight = 0;
    for _ in 0..events {
        if in_flight == WINDOW {
            expect_answer(&mut conn);
            in_flight -= 1;
        }
        publish_request(&mut conn);
        in_flight += 1;
    }
    for _ in 0..in_flight {
        expect_answer(&mut conn);
    }
    let pairs = wait_pairs(&s.out, events);
    let last = pairs.iter().map(|p| p.1).max().expect("invocations");
    events as f64 / ((last - first) as f64 / 1e9)
}

/// Median, min and max.
fn stats(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn row(name: &str, unit: &str, values: Vec<f64>) -> Value {
    let (median, min, max) = stats(values);
    println!("| {name} | {median:.0} {unit} | {min:.0} | {max:.0} |");
    json!({"name": name, "median": median, "min": min, "max": max})
}

fn main() {
    let o = parse_args();
    println!("| figure | median | min | max |");
    println!("|---|---|---|---|");
    let mut rows = Vec::new();
    let mut latency_targets = vec![
        ("pinned", Target::Pinned),
        ("on-demand", Target::OnDemand(100)),
    ];
    if o.baseline {
        latency_targets.push(("SDK subscriber (baseline)", Target::Sdk));
    }
    for (name, target) in latency_targets {
        let runs: Vec<Latency> = (0..o.runs)
            .map(|_| latency_run(target, o.latency_events))
            .collect();
        rows.push(row(
            &format!("{name}: latency p50"),
            "µs",
            runs.iter().map(|l| l.p50_us).collect(),
        ));
        rows.push(row(
            &format!("{name}: latency p99"),
            "µs",
            runs.iter().map(|l| l.p99_us).collect(),
        ));
        if matches!(target, Target::OnDemand(_)) {
            rows.push(row(
                &format!("{name}: first event (worker start)"),
                "µs",
                runs.iter().map(|l| l.first_us).collect(),
            ));
        }
    }
    let mut throughput_targets = vec![("pinned".to_owned(), Target::Pinned)];
    for instances in &o.instances {
        throughput_targets.push((
            format!("on-demand, maxInstancesCount {instances}"),
            Target::OnDemand(*instances),
        ));
    }
    if o.baseline {
        throughput_targets.push(("SDK subscriber (baseline)".to_owned(), Target::Sdk));
    }
    for (name, target) in throughput_targets {
        let tp: Vec<f64> = (0..o.runs)
            .map(|_| throughput_run(target, o.events))
            .collect();
        rows.push(row(&format!("{name}: throughput"), "invocations/s", tp));
    }
    let report =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/lambda_bench.json");
    let _ = std::fs::write(&report, serde_json::to_vec_pretty(&rows).unwrap());
}

//! The publisher sample run as its recipe runs it, against the real broker
//! with the recipe's own access policy.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ggipc_client::{ClientBuilder, Payload};
use ggipc_tests::{BrokerProcess, ComponentSpec, repo_dir, workspace_bin};
use serde_json::{Value, json};

const COMPONENT: &str = "com.example.Publisher";

fn recipe() -> Value {
    let path = repo_dir().join("client/recipes/com.example.Publisher-1.0.0.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// The recipe's Run step with its variables filled in, as arguments.
fn run_command(recipe: &Value, period_ms: u64) -> Vec<String> {
    let manifest = &recipe["Manifests"][0];
    assert_eq!(manifest["Platform"]["os"], "linux");
    let bin_dir = workspace_bin("ggipc-publisher-sample")
        .parent()
        .unwrap()
        .to_path_buf();
    let run = manifest["Lifecycle"]["Run"].as_str().expect("a Run step");
    // The recipe uses no quoting, so splitting on whitespace is exact.
    run.replace("{artifacts:path}", bin_dir.to_str().unwrap())
        .replace("{configuration:/PeriodMs}", &period_ms.to_string())
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn start_sample(broker: &BrokerProcess, args: &[String]) -> Child {
    broker
        .component_command(Path::new(&args[0]), COMPONENT)
        .args(&args[1..])
        .spawn()
        .expect("start the publisher sample")
}

fn stop(mut child: Child) -> Output {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the sample ignores SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn broker_for(recipe: &Value) -> BrokerProcess {
    assert_eq!(recipe["ComponentName"], COMPONENT);
    let access = recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"].clone();
    BrokerProcess::start(
        &[
            ComponentSpec::new(COMPONENT, access),
            ComponentSpec::pubsub_all("com.example.Sub"),
        ],
        json!({}),
    )
}

#[test]
fn the_default_period_is_five_seconds() {
    let recipe = recipe();
    assert_eq!(
        recipe["ComponentConfiguration"]["DefaultConfiguration"]["PeriodMs"],
        5000
    );
    let out = Command::new(workspace_bin("ggipc-publisher-sample"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[default: 5000]"), "{help}");
    assert!(help.contains("[default: local/topic]"), "{help}");
}

#[tokio::test]
async fn the_sample_publishes_under_its_recipe_policy_and_stops_on_sigterm() {
    let recipe = recipe();
    let broker = broker_for(&recipe);
    let subscriber = ClientBuilder::new(&broker.socket)
        .token(broker.token("com.example.Sub"))
        .connect()
        .await
        .unwrap();
    let mut messages = subscriber.subscribe("local/topic").await.unwrap();

    let sample = start_sample(&broker, &run_command(&recipe, 100));
    for _ in 0..3 {
        let m = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the sample publishes every 100 ms")
            .unwrap()
            .unwrap();
        assert_eq!(m.topic, "local/topic");
        assert_eq!(
            m.payload,
            Payload::Json(json!({"key1": "value1", "key2": "value2", "key3": "value3"}))
        );
    }
    let out = stop(sample);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    assert!(
        stdout
            .lines()
            .filter(|l| l.starts_with("published "))
            .count()
            >= 3,
        "{stdout}"
    );
    assert!(stdout.ends_with("stopping\n"), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn a_denied_publish_is_logged_and_the_sample_carries_on() {
    let recipe = recipe();
    let broker = broker_for(&recipe);
    let mut args = run_command(&recipe, 50);
    let topic = args.iter().position(|a| a == "local/topic").unwrap();
    args[topic] = "other/topic".into();
    let sample = start_sample(&broker, &args);
    broker.wait_log("operation denied", 2);
    let out = stop(sample);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    // The recipe's policy allows local/topic only.
    assert!(
        stderr
            .lines()
            .filter(|l| l.contains("failed to publish to other/topic: UnauthorizedError"))
            .count()
            >= 2,
        "{stderr}"
    );
}

#[test]
fn a_lost_connection_ends_the_sample_with_status_1() {
    let recipe = recipe();
    let mut broker = broker_for(&recipe);
    let sample = start_sample(&broker, &run_command(&recipe, 50));
    // Connected before the crash (the sample is the only client): a sample
    // still starting would meet the new broker instead.
    broker.wait_log("connection opened", 1);
    broker.crash_and_restart();
    let out = sample.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("lost the connection"), "{stderr}");
}

#[test]
fn without_the_greengrass_environment_the_sample_says_what_is_missing() {
    let out = Command::new(workspace_bin("ggipc-publisher-sample"))
        .env_remove("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT")
        .env_remove("SVCUID")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"),
        "{stderr}"
    );
}

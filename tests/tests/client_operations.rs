//! Every operation of the service model through the Rust client against the
//! real broker binary: each one the broker serves gives its typed response
//! and, where the broker has them, its specific modeled errors; the rest
//! give the broker's "not supported" ServiceError. The test fails when an
//! operation becomes served without being checked here.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use ggipc_client::{Client, ClientBuilder, Error, Subscription, UnaryRequest};
use ggipc_protocol::model::*;
use ggipc_tests::{BrokerProcess, ComponentSpec};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);
const A: &str = "com.example.A";
const WORKER: &str = "com.example.Worker";
const NO_RIGHTS: &str = "com.example.NoRights";
const STREAM_MANAGER: &str = "aws.greengrass.StreamManager";

/// Allowed every pub/sub, CLI and IoT Core operation; some configuration.
fn operator() -> ComponentSpec {
    let access = json!({
        "aws.greengrass.ipc.pubsub": {"a:pubsub:1": {"operations": ["*"], "resources": ["*"]}},
        "aws.greengrass.Cli": {"a:cli:1": {"operations": ["*"], "resources": ["*"]}},
        "aws.greengrass.ipc.mqttproxy": {"a:mqtt:1": {"operations": ["*"], "resources": ["*"]}}
    });
    ComponentSpec::new(A, access.clone()).with_recipe(json!({
        "ComponentConfiguration": {"DefaultConfiguration": {"accessControl": access, "k": {"v": 0}}}
    }))
}

fn worker() -> ComponentSpec {
    ComponentSpec::new(WORKER, json!({})).with_recipe(json!({
        "ComponentConfiguration": {"DefaultConfiguration": {"accessControl": {}, "speed": 3}},
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"run": "echo run-started; sleep 300"}}]
    }))
}

async fn client(broker: &BrokerProcess, component: &str) -> Client {
    ClientBuilder::new(&broker.socket)
        .token(broker.token(component))
        .operation_timeout(WAIT)
        .connect()
        .await
        .unwrap()
}

async fn next<T>(sub: &mut Subscription<T>) -> T {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("an event in time")
        .expect("the subscription is open")
        .expect("a valid event")
}

/// Asserts `result` is the modeled error `shape` with a message containing
/// `fragment`.
#[track_caller]
fn modeled<T: Debug>(result: Result<T, Error>, shape: &str, fragment: &str) {
    match &result {
        Err(Error::Ipc(e))
            if e.shape_name() == shape && e.message().is_some_and(|m| m.contains(fragment)) => {}
        _ => panic!("expected {shape} saying {fragment:?}, got {result:?}"),
    }
}

/// The answer of `ggipc-broker` to an operation it does not serve.
#[track_caller]
fn not_supported<T: Debug>(operation: Operation, result: Result<T, Error>) {
    modeled(
        result,
        "ServiceError",
        &format!(
            "Operation {} is not supported by Greengrass",
            operation.wire_name()
        ),
    );
}

fn path(keys: &[&str]) -> Option<Vec<String>> {
    Some(keys.iter().map(|k| (*k).to_owned()).collect())
}

fn now() -> Timestamp {
    Timestamp::from_secs_f64(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64(),
    )
}

fn name(component: &str) -> Option<String> {
    Some(component.to_owned())
}

async fn state_of(client: &Client, component: &str) -> LifecycleState {
    client
        .get_component_details(&GetComponentDetailsRequest {
            component_name: name(component),
        })
        .await
        .unwrap()
        .component_details
        .state
}

async fn wait_state(client: &Client, component: &str, state: LifecycleState) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while state_of(client, component).await != state {
        assert!(Instant::now() < deadline, "{component} never {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The answer to an IoT Core operation without an `iotCore` section in the
/// deployment: the bridge's ServiceError saying so, or "not supported" from
/// a broker without the bridge.
#[track_caller]
fn iot_core_unconfigured<T: Debug>(operation: Operation, action: &str, result: Result<T, Error>) {
    if let Err(Error::Ipc(IpcError::Service {
        message: Some(m), ..
    })) = &result
        && m.starts_with(&format!("{action} failed: "))
        && m.contains("not configured to connect to AWS IoT Core")
    {
        return;
    }
    not_supported(operation, result);
}

/// Waits until `component`'s log shows its `run` script started `times`
/// times (it echoes `run-started`).
async fn wait_started(broker: &BrokerProcess, component: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while broker.component_log_count(component, "stdout. run-started") < times {
        assert!(
            Instant::now() < deadline,
            "{component} not started {times} times"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls every unary operation in the list with a default request and
/// expects "not supported"; returns them.
macro_rules! unary_not_supported {
    ($client:expr, $($request:ident),+ $(,)?) => {{
        let mut ops = Vec::new();
        $(
            let op = <$request as UnaryRequest>::OPERATION;
            not_supported(op, $client.call(&$request::default()).await);
            ops.push(op);
        )+
        ops
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_with_its_response_or_its_modeled_error() {
    let broker = BrokerProcess::start(
        &[
            operator(),
            worker(),
            ComponentSpec::new(NO_RIGHTS, json!({})),
            ComponentSpec::new(STREAM_MANAGER, json!({})),
        ],
        json!({}),
    );
    let a = client(&broker, A).await;
    let none = client(&broker, NO_RIGHTS).await;
    let mut checked = BTreeSet::new();

    // ===== local pub/sub =====
    checked.insert(Operation::PublishToTopic);
    checked.insert(Operation::SubscribeToTopic);
    let mut sub = a
        .subscribe_to_topic(&SubscribeToTopicRequest {
            topic: Some("ops/t".into()),
            receive_mode: Some(ReceiveMode::ReceiveAllMessages),
        })
        .await
        .unwrap();
    let published = a
        .publish_to_topic(&PublishToTopicRequest {
            topic: Some("ops/t".into()),
            publish_message: Some(PublishMessage::from(JsonMessage {
                message: Some(json!({"n": 1})),
                context: None,
            })),
        })
        .await;
    assert_eq!(published.unwrap(), PublishToTopicResponse {});
    let event = next(&mut sub).await.json_message.expect("a JSON message");
    assert_eq!(event.message, Some(json!({"n": 1})));
    assert_eq!(event.context.unwrap().topic.as_deref(), Some("ops/t"));
    modeled(
        a.publish_binary("ops/+", "x").await,
        "InvalidArgumentsError",
        "wildcard",
    );
    modeled(
        none.publish_binary("ops/t", "x").await,
        "UnauthorizedError",
        "Principal com.example.NoRights is not authorized",
    );
    modeled(
        none.subscribe("ops/t").await,
        "UnauthorizedError",
        "aws.greengrass#SubscribeToTopic",
    );

    // ===== lifecycle =====
    checked.insert(Operation::UpdateState);
    let running = UpdateStateRequest {
        state: Some(ReportedLifecycleState::Running),
    };
    assert_eq!(
        a.update_state(&running).await.unwrap(),
        UpdateStateResponse {}
    );
    modeled(
        a.update_state(&UpdateStateRequest::default()).await,
        "InvalidArgumentsError",
        "state must be RUNNING or ERRORED",
    );

    // ===== configuration =====
    checked.insert(Operation::GetConfiguration);
    checked.insert(Operation::UpdateConfiguration);
    checked.insert(Operation::SubscribeToConfigurationUpdate);
    let get_k = GetConfigurationRequest {
        component_name: None,
        key_path: path(&["k"]),
    };
    assert_eq!(
        a.get_configuration(&get_k).await.unwrap(),
        GetConfigurationResponse {
            component_name: name(A),
            value: Some(json!({"v": 0})),
        }
    );
    modeled(
        a.get_configuration(&GetConfigurationRequest {
            component_name: None,
            key_path: path(&["nope"]),
        })
        .await,
        "ResourceNotFoundError",
        "Key not found",
    );
    let mut changes = a
        .subscribe_to_configuration_update(&SubscribeToConfigurationUpdateRequest {
            component_name: None,
            key_path: path(&["k"]),
        })
        .await
        .unwrap();
    modeled(
        a.subscribe_to_configuration_update(&SubscribeToConfigurationUpdateRequest {
            component_name: None,
            key_path: path(&["nope"]),
        })
        .await,
        "ResourceNotFoundError",
        "Key not found",
    );
    let updated = a
        .update_configuration(&UpdateConfigurationRequest {
            key_path: path(&["k"]),
            timestamp: Some(now()),
            value_to_merge: Some(json!({"v": 1})),
        })
        .await;
    assert_eq!(updated.unwrap(), UpdateConfigurationResponse {});
    assert_eq!(
        next(&mut changes).await.configuration_update_event,
        Some(ConfigurationUpdateEvent {
            component_name: A.into(),
            key_path: vec!["k".into(), "v".into()],
        })
    );
    assert_eq!(
        a.get_configuration(&get_k).await.unwrap().value,
        Some(json!({"v": 1}))
    );
    modeled(
        a.update_configuration(&UpdateConfigurationRequest {
            key_path: path(&["k"]),
            timestamp: None,
            value_to_merge: Some(json!({"v": 2})),
        })
        .await,
        "InvalidArgumentsError",
        "Timestamp is required",
    );

    // ===== Greengrass CLI operations =====
    checked.insert(Operation::ListComponents);
    checked.insert(Operation::GetComponentDetails);
    checked.insert(Operation::RestartComponent);
    checked.insert(Operation::StopComponent);
    let listed = a.list_components().await.unwrap();
    let names: Vec<String> = listed
        .components
        .unwrap()
        .into_iter()
        .map(|c| c.component_name)
        .collect();
    assert_eq!(names, [STREAM_MANAGER, A, NO_RIGHTS, WORKER]);
    modeled(
        none.list_components().await,
        "UnauthorizedError",
        "aws.greengrass#ListComponents",
    );

    wait_state(&a, WORKER, LifecycleState::Running).await;
    // RUNNING means spawned: the restart below must not kill the first
    // process before it printed.
    wait_started(&broker, WORKER, 1).await;
    let details = a
        .get_component_details(&GetComponentDetailsRequest {
            component_name: name(WORKER),
        })
        .await
        .unwrap()
        .component_details;
    assert_eq!(details.version.as_deref(), Some("1.0.0"));
    assert_eq!(details.configuration.unwrap()["speed"], 3);
    modeled(
        a.get_component_details(&GetComponentDetailsRequest {
            component_name: name("com.example.Missing"),
        })
        .await,
        "ResourceNotFoundError",
        "Component with name com.example.Missing not found in Greengrass",
    );
    modeled(
        a.get_component_details(&GetComponentDetailsRequest {
            component_name: name(""),
        })
        .await,
        "InvalidArgumentsError",
        "Component name cannot be empty",
    );
    modeled(
        none.get_component_details(&GetComponentDetailsRequest {
            component_name: name(WORKER),
        })
        .await,
        "UnauthorizedError",
        "aws.greengrass#GetComponentDetails",
    );

    assert_eq!(
        a.restart_component(&RestartComponentRequest {
            component_name: name(WORKER),
        })
        .await
        .unwrap(),
        RestartComponentResponse {
            restart_status: RequestStatus::Succeeded,
            message: None,
        }
    );
    modeled(
        a.restart_component(&RestartComponentRequest {
            component_name: name("com.example.Missing"),
        })
        .await,
        "ResourceNotFoundError",
        "Component with name com.example.Missing not found in Greengrass",
    );
    modeled(
        none.restart_component(&RestartComponentRequest {
            component_name: name(WORKER),
        })
        .await,
        "UnauthorizedError",
        "aws.greengrass#RestartComponent",
    );
    // The answer means "accepted": wait for the new process.
    wait_started(&broker, WORKER, 2).await;
    assert_eq!(
        a.stop_component(&StopComponentRequest {
            component_name: name(WORKER),
        })
        .await
        .unwrap(),
        StopComponentResponse {
            stop_status: RequestStatus::Succeeded,
            message: None,
        }
    );
    wait_state(&a, WORKER, LifecycleState::Finished).await;
    modeled(
        none.stop_component(&StopComponentRequest {
            component_name: name(WORKER),
        })
        .await,
        "UnauthorizedError",
        "aws.greengrass#StopComponent",
    );

    // ===== token validation: the stream manager's alone =====
    checked.insert(Operation::ValidateAuthorizationToken);
    let validate = |token: &str| ValidateAuthorizationTokenRequest {
        token: Some(token.to_owned()),
    };
    modeled(
        a.validate_authorization_token(&validate(broker.token(A)))
            .await,
        "UnauthorizedError",
        "aws.greengrass#ValidateAuthorizationToken",
    );
    let stream_manager = client(&broker, STREAM_MANAGER).await;
    assert_eq!(
        stream_manager
            .validate_authorization_token(&validate(broker.token(A)))
            .await
            .unwrap(),
        ValidateAuthorizationTokenResponse { is_valid: true }
    );
    modeled(
        stream_manager
            .validate_authorization_token(&validate("NOT-A-TOKEN"))
            .await,
        "InvalidTokenError",
        "Invalid token",
    );

    // ===== component updates =====
    checked.insert(Operation::SubscribeToComponentUpdates);
    checked.insert(Operation::DeferComponentUpdate);
    let defer = |id: Option<&str>| DeferComponentUpdateRequest {
        deployment_id: id.map(str::to_owned),
        message: None,
        recheck_after_ms: None,
    };
    modeled(
        none.call(&defer(Some("d"))).await,
        "InvalidArgumentsError",
        "not subscribed to component update events",
    );
    let _updates = a
        .subscribe_with(&SubscribeToComponentUpdatesRequest {})
        .await
        .unwrap();
    modeled(
        a.call(&defer(None)).await,
        "InvalidArgumentsError",
        "deploymentId is required",
    );
    modeled(
        a.call(&defer(Some("nope"))).await,
        "ServiceError",
        "no update of deployment nope is waiting",
    );

    // ===== configuration validation: never asked for by ggipc =====
    checked.insert(Operation::SubscribeToValidateConfigurationUpdates);
    checked.insert(Operation::SendConfigurationValidityReport);
    let _validations = a
        .subscribe_with(&SubscribeToValidateConfigurationUpdatesRequest::default())
        .await
        .unwrap();
    modeled(
        a.call(&SendConfigurationValidityReportRequest::default())
            .await,
        "InvalidArgumentsError",
        "Validation request either timed out or was never made",
    );

    // ===== AWS IoT Core, with no iotCore section =====
    checked.insert(Operation::PublishToIoTCore);
    checked.insert(Operation::SubscribeToIoTCore);
    checked.insert(Operation::SubscribeToIoTCoreConnectionStatus);
    iot_core_unconfigured(
        Operation::PublishToIoTCore,
        "Publish to topic ops/iot",
        a.publish_to_iot_core(&PublishToIoTCoreRequest {
            topic_name: Some("ops/iot".into()),
            qos: Some(Qos::AtLeastOnce),
            payload: Some(Blob::from(b"x".as_slice())),
            ..Default::default()
        })
        .await,
    );
    iot_core_unconfigured(
        Operation::SubscribeToIoTCore,
        "Subscribe to topic ops/iot",
        a.subscribe_to_iot_core(&SubscribeToIoTCoreRequest {
            topic_name: Some("ops/iot".into()),
            qos: Some(Qos::AtMostOnce),
        })
        .await,
    );
    match a
        .subscribe_with(&SubscribeToIoTCoreConnectionStatusRequest::default())
        .await
    {
        // The bridge: the link is down for good.
        Ok(mut status) => assert_eq!(
            next(&mut status).await.connection_status_event,
            Some(ConnectionStatusEvent {
                status: ConnectionStatus::Disconnected
            })
        ),
        other => not_supported(Operation::SubscribeToIoTCoreConnectionStatus, other),
    }

    // ===== the rest of the model: not served =====
    checked.extend(unary_not_supported!(
        a,
        AuthorizeClientDeviceActionRequest,
        CancelLocalDeploymentRequest,
        CreateDebugPasswordRequest,
        CreateLocalDeploymentRequest,
        DeleteThingShadowRequest,
        GetClientDeviceAuthTokenRequest,
        GetLocalDeploymentStatusRequest,
        GetSecretValueRequest,
        GetThingShadowRequest,
        ListLocalDeploymentsRequest,
        ListNamedShadowsForThingRequest,
        PauseComponentRequest,
        PutComponentMetricRequest,
        ResumeComponentRequest,
        UpdateThingShadowRequest,
        VerifyClientDeviceIdentityRequest,
    ));
    checked.insert(Operation::SubscribeToCertificateUpdates);
    not_supported(
        Operation::SubscribeToCertificateUpdates,
        a.subscribe_with(&SubscribeToCertificateUpdatesRequest::default())
            .await,
    );

    let all: BTreeSet<Operation> = Operation::ALL.into_iter().collect();
    assert_eq!(checked, all, "every operation is checked");
    // No error took the connections down.
    assert!(a.is_connected() && none.is_connected() && stream_manager.is_connected());
}

//! The GreengrassCoreIPC model against `protocol.md` §4 and §6–§7: operation
//! table, the payloads real clients send, exact server output, errors.

use bytes::Bytes;
use ggipc_protocol::fuzzing;
use ggipc_protocol::model::*;
use proptest::prelude::*;
use serde_json::json;

fn decode(op: Operation, payload: &str) -> Request {
    decode_request(op, payload.as_bytes())
        .unwrap_or_else(|e| panic!("{op} payload {payload} does not decode: {e}"))
}

fn text(payload: &Bytes) -> &str {
    std::str::from_utf8(payload).expect("payloads are UTF-8")
}

#[test]
fn thirty_five_operations_round_trip_through_their_wire_names() {
    assert_eq!(Operation::ALL.len(), 35);
    let mut names: Vec<_> = Operation::ALL.iter().map(|op| op.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 35, "operation names are distinct");
    for op in Operation::ALL {
        assert_eq!(op.wire_name(), format!("{NAMESPACE}{}", op.name()));
        assert_eq!(Operation::from_wire_name(op.wire_name()), Some(op));
        assert_eq!(Operation::from_name(op.name()), Some(op));
        assert_eq!(op.to_string(), op.name());
    }
    assert_eq!(
        Operation::PublishToTopic.wire_name(),
        "aws.greengrass#PublishToTopic"
    );
}

#[test]
fn wire_names_match_exactly() {
    for bad in [
        "PublishToTopic",
        "aws.greengrass#publishToTopic",
        "aws.greengrass#PublishToTopic ",
        "aws.greengrass.PublishToTopic",
        "aws.greengrass#",
        "aws.greengrass#SubscribeToEverything",
        "",
    ] {
        assert_eq!(Operation::from_wire_name(bad), None, "{bad:?}");
    }
}

#[test]
fn shape_ids_follow_the_naming_rule() {
    for op in Operation::ALL {
        assert_eq!(op.request_shape(), format!("{NAMESPACE}{op}Request"));
        assert_eq!(op.response_shape(), format!("{NAMESPACE}{op}Response"));
    }
    assert_eq!(
        Operation::PublishToTopic.request_shape(),
        PublishToTopicRequest::ID
    );
    assert_eq!(MqttMessage::ID, "aws.greengrass#MQTTMessage");
    assert_eq!(MqttCredential::ID, "aws.greengrass#MQTTCredential");
}

#[test]
fn seven_operations_stream_with_their_event_shapes() {
    let streaming: Vec<_> = Operation::ALL
        .into_iter()
        .filter(|op| op.is_streaming())
        .map(|op| (op.name(), op.event_shape().unwrap()))
        .collect();
    assert_eq!(
        streaming,
        [
            (
                "SubscribeToCertificateUpdates",
                "aws.greengrass#CertificateUpdateEvent"
            ),
            (
                "SubscribeToComponentUpdates",
                "aws.greengrass#ComponentUpdatePolicyEvents"
            ),
            (
                "SubscribeToConfigurationUpdate",
                "aws.greengrass#ConfigurationUpdateEvents"
            ),
            ("SubscribeToIoTCore", "aws.greengrass#IoTCoreMessage"),
            (
                "SubscribeToIoTCoreConnectionStatus",
                "aws.greengrass#IoTCoreConnectionStatusEvent"
            ),
            (
                "SubscribeToTopic",
                "aws.greengrass#SubscriptionResponseMessage"
            ),
            (
                "SubscribeToValidateConfigurationUpdates",
                "aws.greengrass#ValidateConfigurationUpdateEvents"
            ),
        ]
    );
    assert_eq!(Operation::PublishToTopic.event_shape(), None);
}

#[test]
fn auth_services_follow_the_policy_table() {
    use Operation::*;
    let expect = |service: Option<&str>, ops: &[Operation]| {
        for op in ops {
            assert_eq!(op.auth_service(), service, "{op}");
        }
    };
    expect(
        Some("aws.greengrass.ipc.pubsub"),
        &[PublishToTopic, SubscribeToTopic],
    );
    expect(
        Some("aws.greengrass.ipc.mqttproxy"),
        &[PublishToIoTCore, SubscribeToIoTCore],
    );
    expect(
        Some("aws.greengrass.ipc.lifecycle"),
        &[PauseComponent, ResumeComponent],
    );
    expect(
        Some("aws.greengrass.Cli"),
        &[
            GetComponentDetails,
            ListComponents,
            RestartComponent,
            StopComponent,
            CreateLocalDeployment,
            CancelLocalDeployment,
            GetLocalDeploymentStatus,
            ListLocalDeployments,
            CreateDebugPassword,
        ],
    );
    expect(Some("aws.greengrass.SecretManager"), &[GetSecretValue]);
    expect(
        Some("aws.greengrass.ShadowManager"),
        &[
            GetThingShadow,
            UpdateThingShadow,
            DeleteThingShadow,
            ListNamedShadowsForThing,
        ],
    );
    expect(
        Some("aws.greengrass.clientdevices.Auth"),
        &[
            SubscribeToCertificateUpdates,
            VerifyClientDeviceIdentity,
            GetClientDeviceAuthToken,
            AuthorizeClientDeviceAction,
        ],
    );
    expect(
        Some("aws.greengrass.ipc.componentmetric"),
        &[PutComponentMetric],
    );
    expect(
        None,
        &[
            UpdateState,
            SubscribeToComponentUpdates,
            DeferComponentUpdate,
            GetConfiguration,
            UpdateConfiguration,
            SubscribeToConfigurationUpdate,
            SubscribeToValidateConfigurationUpdates,
            SendConfigurationValidityReport,
            ValidateAuthorizationToken,
            SubscribeToIoTCoreConnectionStatus,
        ],
    );
}

#[test]
fn python_publish_to_topic_payload_decodes() {
    let r = decode(
        Operation::PublishToTopic,
        r#"{"topic": "a/b", "publishMessage": {"jsonMessage": {"message": {"h\u00e9": [1, 2.5, null, true]}}}}"#,
    );
    let Request::PublishToTopic(r) = r else {
        panic!("wrong variant")
    };
    assert_eq!(r.topic.as_deref(), Some("a/b"));
    let message = r.publish_message.unwrap().json_message.unwrap().message;
    assert_eq!(message, Some(json!({"hé": [1, 2.5, null, true]})));
}

#[test]
fn python_binary_publish_decodes_to_bytes() {
    let r = decode(
        Operation::PublishToTopic,
        r#"{"topic": "my/topic", "publishMessage": {"binaryMessage": {"message": "aGVsbG8="}}}"#,
    );
    let Request::PublishToTopic(r) = r else {
        panic!("wrong variant")
    };
    r.validate().unwrap();
    let binary = r.publish_message.unwrap().binary_message.unwrap();
    assert_eq!(&binary.message.unwrap()[..], b"hello");
    assert_eq!(binary.context, None);
}

#[test]
fn python_payloads_of_the_priority_operations_decode() {
    use Operation::*;
    let cases = [
        (SubscribeToTopic, r#"{"topic": "a/+"}"#),
        (
            PublishToIoTCore,
            r#"{"topicName": "t", "qos": "0", "payload": "eA=="}"#,
        ),
        (
            PublishToIoTCore,
            r#"{"topicName": "t/1", "qos": "1", "payload": "/wB4", "retain": true, "userProperties": [{"key": "k", "value": "v"}], "messageExpiryIntervalSeconds": 60, "correlationData": "Y29ycg==", "responseTopic": "resp/t", "payloadFormat": "1", "contentType": "text/plain"}"#,
        ),
        (SubscribeToIoTCore, r#"{"topicName": "t/#", "qos": "1"}"#),
        (UpdateState, r#"{"state": "ERRORED"}"#),
        (ListComponents, "{}"),
        (GetComponentDetails, r#"{"componentName": "c1"}"#),
        (RestartComponent, r#"{"componentName": "c1"}"#),
        (StopComponent, r#"{"componentName": "c1"}"#),
        (
            GetConfiguration,
            r#"{"componentName": "other", "keyPath": ["a", "b"]}"#,
        ),
        (GetConfiguration, r#"{"keyPath": []}"#),
        (
            UpdateConfiguration,
            r#"{"keyPath": ["a"], "timestamp": 1704164645.678, "valueToMerge": {"b": 1}}"#,
        ),
        (SubscribeToConfigurationUpdate, r#"{"keyPath": ["a"]}"#),
        (SubscribeToComponentUpdates, "{}"),
        (
            DeferComponentUpdate,
            r#"{"deploymentId": "d1", "message": "later", "recheckAfterMs": 60000}"#,
        ),
        (ValidateAuthorizationToken, r#"{"token": "TOK"}"#),
        (SubscribeToIoTCoreConnectionStatus, "{}"),
    ];
    for (op, payload) in cases {
        let request = decode(op, payload);
        assert_eq!(request.operation(), op);
        request
            .validate()
            .unwrap_or_else(|e| panic!("{op} {payload}: {e}"));
    }

    let Request::SubscribeToTopic(r) = decode(SubscribeToTopic, r#"{"topic": "a/+"}"#) else {
        panic!()
    };
    assert_eq!(r.topic.as_deref(), Some("a/+"));
    assert_eq!(r.receive_mode, None);

    let Request::PublishToIoTCore(r) = decode(PublishToIoTCore, cases[2].1) else {
        panic!()
    };
    assert_eq!(r.topic_name.as_deref(), Some("t/1"));
    assert_eq!(r.qos, Some(Qos::AtLeastOnce));
    assert_eq!(&r.payload.unwrap()[..], b"\xff\x00x");
    assert_eq!(r.retain, Some(true));
    let props = r.user_properties.unwrap();
    assert_eq!(props[0].key.as_deref(), Some("k"));
    assert_eq!(props[0].value.as_deref(), Some("v"));
    assert_eq!(r.message_expiry_interval_seconds, Some(60));
    assert_eq!(&r.correlation_data.unwrap()[..], b"corr");
    assert_eq!(r.response_topic.as_deref(), Some("resp/t"));
    assert_eq!(r.payload_format, Some(PayloadFormat::Utf8));
    assert_eq!(r.content_type.as_deref(), Some("text/plain"));

    let Request::UpdateState(r) = decode(UpdateState, r#"{"state": "ERRORED"}"#) else {
        panic!()
    };
    assert_eq!(r.state, Some(ReportedLifecycleState::Errored));

    let Request::GetConfiguration(r) = decode(GetConfiguration, r#"{"keyPath": []}"#) else {
        panic!()
    };
    assert_eq!(r.component_name, None);
    assert_eq!(r.key_path, Some(vec![]));

    let Request::UpdateConfiguration(r) = decode(UpdateConfiguration, cases[11].1) else {
        panic!()
    };
    assert_eq!(r.key_path, Some(vec!["a".to_owned()]));
    assert_eq!(r.timestamp, Some(Timestamp(1_704_164_645.678)));
    assert_eq!(r.value_to_merge, Some(json!({"b": 1})));

    let Request::DeferComponentUpdate(r) = decode(DeferComponentUpdate, cases[14].1) else {
        panic!()
    };
    assert_eq!(r.deployment_id.as_deref(), Some("d1"));
    assert_eq!(r.message.as_deref(), Some("later"));
    assert_eq!(r.recheck_after_ms, Some(60_000));

    let Request::ValidateAuthorizationToken(r) = decode(ValidateAuthorizationToken, cases[15].1)
    else {
        panic!()
    };
    assert_eq!(r.token.as_deref(), Some("TOK"));
}

#[test]
fn blobs_with_gson_escaped_padding_decode() {
    let Request::PublishToIoTCore(r) = decode(
        Operation::PublishToIoTCore,
        r#"{"topicName":"t","qos":"0","payload":"aGk\u003d","correlationData":"aA\u003d\u003d"}"#,
    ) else {
        panic!()
    };
    assert_eq!(&r.payload.unwrap()[..], b"hi");
    assert_eq!(&r.correlation_data.unwrap()[..], b"h");
}

#[test]
fn blobs_need_standard_padded_base64() {
    for bad in ["aGk", "aGk=\n", "_w==", "a", "!!!!"] {
        let payload = json!({"topicName": "t", "qos": "0", "payload": bad}).to_string();
        assert!(
            decode_request(Operation::PublishToIoTCore, payload.as_bytes()).is_err(),
            "{bad:?} decoded"
        );
    }
    let out = MqttMessage {
        topic_name: "t".into(),
        payload: Some(Blob::new(&b"\xfb\xff"[..])),
        retain: None,
        user_properties: None,
        message_expiry_interval_seconds: None,
        correlation_data: None,
        response_topic: None,
        payload_format: None,
        content_type: None,
    };
    assert_eq!(
        text(&out.to_payload()),
        r#"{"topicName":"t","payload":"+/8="}"#
    );
}

#[test]
fn qos_and_payload_format_read_numbers_and_write_strings() {
    let Request::PublishToIoTCore(r) = decode(
        Operation::PublishToIoTCore,
        r#"{"topicName": "t", "qos": 1, "payload": "", "payloadFormat": 0}"#,
    ) else {
        panic!()
    };
    assert_eq!(r.qos, Some(Qos::AtLeastOnce));
    assert_eq!(r.payload_format, Some(PayloadFormat::Bytes));
    assert_eq!(
        text(&Request::PublishToIoTCore(r).to_payload()),
        r#"{"topicName":"t","qos":"1","payload":"","payloadFormat":"0"}"#
    );
    let Request::SubscribeToIoTCore(r) = decode(
        Operation::SubscribeToIoTCore,
        r#"{"topicName": "t", "qos": 0}"#,
    ) else {
        panic!()
    };
    assert_eq!(r.qos, Some(Qos::AtMostOnce));
}

#[test]
fn unknown_enum_values_are_kept_for_the_handler() {
    let Request::PublishToIoTCore(r) = decode(
        Operation::PublishToIoTCore,
        r#"{"topicName": "t", "qos": "2", "payload": ""}"#,
    ) else {
        panic!()
    };
    assert_eq!(r.qos, Some(Qos::Unknown("2".into())));
    assert!(!r.qos.as_ref().unwrap().is_known());
    assert!(text(&Request::PublishToIoTCore(r).to_payload()).contains(r#""qos":"2""#));

    let Request::UpdateState(r) = decode(Operation::UpdateState, r#"{"state": "PAUSED"}"#) else {
        panic!()
    };
    assert_eq!(r.state, Some(ReportedLifecycleState::from_wire("PAUSED")));
    // Enums other than QOS and PayloadFormat are strings only.
    assert!(decode_request(Operation::UpdateState, br#"{"state": 1}"#).is_err());
    assert_eq!(ReportedLifecycleState::KNOWN.len(), 2);
    assert_eq!(LifecycleState::from_wire("BROKEN"), LifecycleState::Broken);
    assert_eq!(DeploymentStatus::InProgress.as_str(), "IN_PROGRESS");
}

#[test]
fn subscription_events_serialize_like_the_nucleus() {
    let context = Some(MessageContext {
        topic: Some("my/topic".into()),
    });
    let json_event = SubscriptionResponseMessage::from(JsonMessage {
        message: Some(json!({"hello": "world"})),
        context: context.clone(),
    });
    assert_eq!(
        text(&json_event.to_payload()),
        r#"{"jsonMessage":{"message":{"hello":"world"},"context":{"topic":"my/topic"}}}"#
    );
    let binary_event = SubscriptionResponseMessage::from(BinaryMessage {
        message: Some(Blob::new(&b"\x00\x01hi"[..])),
        context,
    });
    assert_eq!(
        text(&binary_event.to_payload()),
        r#"{"binaryMessage":{"message":"AAFoaQ==","context":{"topic":"my/topic"}}}"#
    );
    // And a client reads them back.
    let back = SubscriptionResponseMessage::from_payload(&binary_event.to_payload()).unwrap();
    assert_eq!(back, binary_event);
    back.validate().unwrap();
}

#[test]
fn other_events_and_responses_serialize_exactly() {
    let status = IoTCoreConnectionStatusEvent::from(ConnectionStatusEvent {
        status: ConnectionStatus::Connected,
    });
    assert_eq!(
        text(&status.to_payload()),
        r#"{"connectionStatusEvent":{"status":"CONNECTED"}}"#
    );
    let pre = ComponentUpdatePolicyEvents::from(PreComponentUpdateEvent {
        deployment_id: "d1".into(),
        is_ggc_restarting: false,
    });
    assert_eq!(
        text(&pre.to_payload()),
        r#"{"preUpdateEvent":{"deploymentId":"d1","isGgcRestarting":false}}"#
    );
    let update = ConfigurationUpdateEvents::from(ConfigurationUpdateEvent {
        component_name: "c".into(),
        key_path: vec!["a".into(), "b".into()],
    });
    assert_eq!(
        text(&update.to_payload()),
        r#"{"configurationUpdateEvent":{"componentName":"c","keyPath":["a","b"]}}"#
    );
    assert_eq!(text(&PublishToTopicResponse {}.to_payload()), "{}");
    assert_eq!(
        text(&SubscribeToTopicResponse::default().to_payload()),
        "{}"
    );
    let password = CreateDebugPasswordResponse {
        password: "p".into(),
        username: "debug".into(),
        password_expiration: Timestamp(1.5),
        certificate_sha256_hash: Some("ab".into()),
        certificate_sha1_hash: None,
    };
    assert_eq!(
        text(&password.to_payload()),
        r#"{"password":"p","username":"debug","passwordExpiration":1.5,"certificateSHA256Hash":"ab"}"#
    );
    assert_eq!(
        text(&ValidateAuthorizationTokenResponse { is_valid: true }.to_payload()),
        r#"{"isValid":true}"#
    );
}

#[test]
fn unset_optionals_are_omitted_never_null() {
    let message = IoTCoreMessage::from(MqttMessage {
        topic_name: "t".into(),
        payload: Some(Blob::new(&b"hi"[..])),
        retain: None,
        user_properties: None,
        message_expiry_interval_seconds: None,
        correlation_data: None,
        response_topic: None,
        payload_format: None,
        content_type: None,
    });
    assert_eq!(
        text(&message.to_payload()),
        r#"{"message":{"topicName":"t","payload":"aGk="}}"#
    );
    let list = ListComponentsResponse {
        components: Some(vec![ComponentDetails {
            component_name: "c".into(),
            version: None,
            state: LifecycleState::Running,
            configuration: None,
        }]),
    };
    assert_eq!(
        text(&list.to_payload()),
        r#"{"components":[{"componentName":"c","state":"RUNNING"}]}"#
    );
    let deployment = GetLocalDeploymentStatusResponse {
        deployment: LocalDeployment {
            deployment_id: "d".into(),
            status: DeploymentStatus::Queued,
            created_on: None,
            deployment_status_details: Some(DeploymentStatusDetails {
                detailed_deployment_status: None,
                deployment_error_stack: None,
                deployment_error_types: None,
                deployment_failure_cause: None,
            }),
        },
    };
    let out = deployment.to_payload();
    assert!(!text(&out).contains("null"), "{}", text(&out));
    // Every request built empty serializes as `{}`.
    for op in Operation::ALL {
        let empty = decode(op, "{}");
        assert_eq!(text(&empty.to_payload()), "{}", "{op}");
    }
}

#[test]
fn null_members_read_as_absent() {
    let Request::PublishToIoTCore(r) = decode(
        Operation::PublishToIoTCore,
        r#"{"topicName": null, "qos": null, "payload": null, "userProperties": null, "retain": null}"#,
    ) else {
        panic!()
    };
    assert_eq!(r, PublishToIoTCoreRequest::default());
    assert_eq!(
        r.validate(),
        Err(ShapeError::MissingMember {
            shape: "PublishToIoTCoreRequest",
            member: "topicName"
        })
    );
    let Request::PublishToTopic(r) = decode(
        Operation::PublishToTopic,
        r#"{"topic": "t", "publishMessage": {"jsonMessage": null, "binaryMessage": {"message": "AA=="}}}"#,
    ) else {
        panic!()
    };
    r.validate().unwrap();
}

#[test]
fn unions_with_no_or_two_members_are_reported() {
    let Request::PublishToTopic(r) = decode(
        Operation::PublishToTopic,
        r#"{"topic": "t", "publishMessage": {}}"#,
    ) else {
        panic!()
    };
    assert_eq!(
        r.validate(),
        Err(ShapeError::EmptyUnion {
            shape: "PublishMessage"
        })
    );
    let two = decode(
        Operation::PublishToTopic,
        r#"{"topic": "t", "publishMessage": {"jsonMessage": {"message": {}}, "binaryMessage": {"message": ""}}}"#,
    );
    let error = two.validate().unwrap_err();
    assert_eq!(
        error,
        ShapeError::MultipleUnionMembers {
            shape: "PublishMessage",
            count: 2
        }
    );
    assert_eq!(
        error.to_string(),
        "PublishMessage must have exactly one member set, found 2"
    );
    // Events too, for a client that wants to check them.
    let empty = SubscriptionResponseMessage::from_payload(b"{}").unwrap();
    assert!(matches!(
        empty.validate(),
        Err(ShapeError::EmptyUnion { .. })
    ));
    let secret =
        SecretValue::from_payload(br#"{"secretString":"s","secretBinary":"AA=="}"#).unwrap();
    assert!(matches!(
        secret.validate(),
        Err(ShapeError::MultipleUnionMembers { count: 2, .. })
    ));
}

#[test]
fn validation_reports_missing_required_members_in_nested_shapes() {
    let r = decode(
        Operation::PutComponentMetric,
        r#"{"metrics": [{"name": "m", "unit": "COUNT", "value": 1}, {"name": "n", "value": 2}]}"#,
    );
    assert_eq!(
        r.validate(),
        Err(ShapeError::MissingMember {
            shape: "Metric",
            member: "unit"
        })
    );
    let r = decode(Operation::GetClientDeviceAuthToken, r#"{"credential": {}}"#);
    assert_eq!(
        r.validate(),
        Err(ShapeError::EmptyUnion {
            shape: "CredentialDocument"
        })
    );
    let r = decode(Operation::GetConfiguration, "{}");
    assert_eq!(
        r.validate().unwrap_err().to_string(),
        "keyPath is required in GetConfigurationRequest"
    );
    let error = IpcError::from(r.validate().unwrap_err());
    assert_eq!(error.shape_name(), "InvalidArgumentsError");
    // No required members: `{}` is a complete request.
    decode(Operation::ListComponents, "{}").validate().unwrap();
    decode(Operation::SubscribeToComponentUpdates, "{}")
        .validate()
        .unwrap();
}

#[test]
fn empty_and_whitespace_payloads_decode_as_empty_objects() {
    for op in Operation::ALL {
        for payload in ["{}", "", " \r\n\t", " { } "] {
            decode(op, payload);
        }
    }
    assert_eq!(
        decode(Operation::ListComponents, ""),
        Request::ListComponents(ListComponentsRequest {})
    );
    assert_eq!(
        decode(Operation::SubscribeToComponentUpdates, "{}"),
        Request::SubscribeToComponentUpdates(SubscribeToComponentUpdatesRequest {})
    );
}

#[test]
fn unknown_members_are_ignored() {
    let Request::PublishToTopic(r) = decode(
        Operation::PublishToTopic,
        r#"{"extra": [1, {"x": null}], "topic": "t", "publishMessage": {"future": 1, "jsonMessage": {"message": {}, "messageId": "m"}}}"#,
    ) else {
        panic!()
    };
    assert_eq!(r.topic.as_deref(), Some("t"));
    r.validate().unwrap();
    assert_eq!(
        decode(Operation::ListComponents, r#"{"_service": "x"}"#),
        Request::ListComponents(ListComponentsRequest {})
    );
}

#[test]
fn the_last_of_duplicate_members_wins() {
    let Request::PublishToTopic(r) = decode(
        Operation::PublishToTopic,
        r#"{"topic": "a", "topic": "b", "publishMessage": {"jsonMessage": {}}}"#,
    ) else {
        panic!()
    };
    assert_eq!(r.topic.as_deref(), Some("b"));
}

#[test]
fn key_order_and_spacing_do_not_matter() {
    let a = decode(
        Operation::PublishToTopic,
        r#"{"topic": "t", "publishMessage": {"binaryMessage": {"message": "AA=="}}}"#,
    );
    let b = decode(
        Operation::PublishToTopic,
        "{\n  \"publishMessage\" :{\"binaryMessage\":{\"message\":\"AA==\"}} ,\"topic\":\"t\"}",
    );
    assert_eq!(a, b);
}

#[test]
fn malformed_requests_fail_to_decode() {
    for (op, payload) in [
        (Operation::PublishToTopic, "[]"),
        (Operation::PublishToTopic, "null"),
        (Operation::PublishToTopic, "{"),
        (Operation::PublishToTopic, r#"{"topic": 5}"#),
        (Operation::PublishToTopic, r#"{"topic": "t"} {}"#),
        // serde's derive would take these positional forms; Gson does not.
        (Operation::PublishToTopic, r#"["t"]"#),
        (
            Operation::PublishToTopic,
            r#"{"publishMessage": [null, {}]}"#,
        ),
        (Operation::PublishToIoTCore, r#"{"retain": "yes"}"#),
        (Operation::PublishToIoTCore, r#"{"qos": true}"#),
        (
            Operation::DeferComponentUpdate,
            r#"{"recheckAfterMs": 1.5}"#,
        ),
        (
            Operation::UpdateConfiguration,
            r#"{"timestamp": "1704164645.678"}"#,
        ),
        (Operation::GetConfiguration, r#"{"keyPath": "a"}"#),
    ] {
        assert!(
            decode_request(op, payload.as_bytes()).is_err(),
            "{op} {payload} decoded"
        );
    }
}

#[test]
fn requests_round_trip_through_their_payloads() {
    let request = Request::from(CreateLocalDeploymentRequest {
        group_name: Some("g".into()),
        root_component_versions_to_add: Some([("c".to_owned(), "1.0.0".to_owned())].into()),
        component_to_configuration: Some([("c".to_owned(), json!({"MERGE": {"a": null}}))].into()),
        component_to_run_with_info: Some(
            [(
                "c".to_owned(),
                RunWithInfo {
                    posix_user: Some("u:g".into()),
                    windows_user: None,
                    system_resource_limits: Some(SystemResourceLimits {
                        memory: Some(1024),
                        cpus: Some(0.5),
                    }),
                },
            )]
            .into(),
        ),
        failure_handling_policy: Some(FailureHandlingPolicy::DoNothing),
        ..Default::default()
    });
    assert_eq!(request.operation(), Operation::CreateLocalDeployment);
    let payload = request.to_payload();
    assert_eq!(
        decode_request(Operation::CreateLocalDeployment, &payload).unwrap(),
        request
    );
    fuzzing::request_json(&payload);
}

#[test]
fn modeled_error_payload_follows_the_nucleus_member_order() {
    let error = IpcError::resource_not_found("Key not found");
    assert_eq!(error.shape_id(), "aws.greengrass#ResourceNotFoundError");
    assert_eq!(
        text(&error.to_payload()),
        r#"{"message":"Key not found","_service":"aws.greengrass#GreengrassCoreIPC","_message":"Key not found","_errorCode":"ResourceNotFoundError"}"#
    );
    let named = IpcError::resource_not_found_named("gone", "Component", "c1");
    assert_eq!(
        text(&named.to_payload()),
        r#"{"message":"gone","resourceType":"Component","resourceName":"c1","_service":"aws.greengrass#GreengrassCoreIPC","_message":"gone","_errorCode":"ResourceNotFoundError"}"#
    );
    let service = IpcError::service_with_context("failed", json!({"reasonCode": 135}));
    assert_eq!(
        text(&service.to_payload()),
        r#"{"message":"failed","context":{"reasonCode":135},"_service":"aws.greengrass#GreengrassCoreIPC","_message":"failed","_errorCode":"ServiceError"}"#
    );
    let silent = IpcError::Unauthorized { message: None };
    assert_eq!(
        text(&silent.to_payload()),
        r#"{"_service":"aws.greengrass#GreengrassCoreIPC","_errorCode":"UnauthorizedError"}"#
    );
}

#[test]
fn error_payloads_parse_for_clients() {
    let captured = br#"{"message": "Key not found", "_service": "aws.greengrass#GreengrassCoreIPC", "_message": "Key not found", "_errorCode": "ResourceNotFoundError"}"#;
    let error = IpcError::from_payload("aws.greengrass#ResourceNotFoundError", captured)
        .unwrap()
        .unwrap();
    assert_eq!(error, IpcError::resource_not_found("Key not found"));
    assert_eq!(error.message(), Some("Key not found"));
    assert_eq!(error.to_string(), "ResourceNotFoundError: Key not found");
    assert!(!error.is_server_error());

    // Greengrass Lite sends only the underscore members.
    let lite = IpcError::from_payload(
        "aws.greengrass#InvalidTokenError",
        br#"{"_message":"bad token","_errorCode":"InvalidTokenError"}"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(lite, IpcError::invalid_token("bad token"));
    assert!(lite.is_server_error());

    assert!(IpcError::from_payload("aws.greengrass#NoSuchError", b"{}").is_none());
    assert!(IpcError::from_payload("aws#AccessDenied", b"{}").is_none());
    assert!(
        IpcError::from_payload("aws.greengrass#ServiceError", b"not json")
            .unwrap()
            .is_err()
    );

    for name in IpcError::SHAPE_NAMES {
        let id = format!("{NAMESPACE}{name}");
        let error = IpcError::from_payload(&id, br#"{"message":"m"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(error.shape_name(), name);
        assert_eq!(error.shape_id(), id);
        assert_eq!(
            error.is_server_error(),
            matches!(name, "ServiceError" | "InvalidTokenError")
        );
        let payload = error.to_payload();
        assert!(text(&payload).ends_with(&format!(r#""_errorCode":"{name}"}}"#)));
        assert_eq!(
            IpcError::from_payload(&id, &payload).unwrap().unwrap(),
            error
        );
    }
}

#[test]
fn responses_parse_for_clients() {
    let r = ListComponentsResponse::from_payload(
        br#"{"components":[{"componentName":"c","state":"RUNNING","configuration":{"a":1.0}},{"componentName":"d","version":"1.0.0","state":"NEW"}]}"#,
    )
    .unwrap();
    let components = r.components.unwrap();
    assert_eq!(components[0].version, None);
    assert_eq!(components[1].state, LifecycleState::New);
    // Gson writes timestamps in exponent form.
    let r = ListNamedShadowsForThingResponse::from_payload(
        br#"{"results":[],"timestamp":1.7041646456E9}"#,
    )
    .unwrap();
    assert_eq!(r.timestamp.as_secs_f64(), 1_704_164_645.6);
    // A server-built shape needs its required members.
    assert!(ValidateAuthorizationTokenResponse::from_payload(b"{}").is_err());
    assert!(GetThingShadowResponse::from_payload(br#"{"payload":null}"#).is_err());
}

/// JSON values built from the model's member names, so that most objects hit
/// real members with right or wrong types.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "", "0", "1", "2", "aGk=", "AA==", "aGk", "RUNNING", "ERRORED", "t/#",
        ])
        .prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let key = prop::sample::select(vec![
            "topic",
            "publishMessage",
            "jsonMessage",
            "binaryMessage",
            "message",
            "context",
            "topicName",
            "qos",
            "payload",
            "retain",
            "userProperties",
            "key",
            "value",
            "payloadFormat",
            "state",
            "componentName",
            "keyPath",
            "timestamp",
            "valueToMerge",
            "deploymentId",
            "recheckAfterMs",
            "metrics",
            "name",
            "unit",
            "credential",
            "mqttCredential",
            "certificateOptions",
            "certificateType",
            "configurationValidityReport",
            "status",
            "componentToRunWithInfo",
            "systemResourceLimits",
            "cpus",
            "memory",
            "rootComponentVersionsToAdd",
            "other",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key, inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics_and_what_decodes_round_trips(value in json_value()) {
        fuzzing::request_json(value.to_string().as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..64)) {
        fuzzing::request_json(&data);
    }

    #[test]
    fn timestamps_survive_a_round_trip(secs in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        let payload = json!({"timestamp": secs, "valueToMerge": {}}).to_string();
        let request = decode_request(Operation::UpdateConfiguration, payload.as_bytes()).unwrap();
        let Request::UpdateConfiguration(r) = &request else { unreachable!() };
        prop_assert_eq!(r.timestamp, Some(Timestamp(secs)));
        fuzzing::request_json(payload.as_bytes());
    }
}

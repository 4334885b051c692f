//! ValidateAuthorizationToken: the stream manager's check of a component
//! token, hard-wired to that one caller as in the nucleus.

use ggipc_protocol::rpc::MessageType;
use ggipc_tests::{BrokerProcess, ComponentSpec, RawConn};
use serde_json::{Value, json};

#[test]
fn only_the_stream_manager_validates_tokens_and_unknown_ones_are_errors() {
    let broker = BrokerProcess::start(
        &[
            ComponentSpec::new("aws.greengrass.StreamManager", json!({})),
            ComponentSpec::new("com.example.A", json!({})),
        ],
        json!({}),
    );
    let a_token = broker.token("com.example.A").to_owned();
    let mut sm = RawConn::connect(&broker.socket, broker.token("aws.greengrass.StreamManager"));
    let ask = |conn: &mut RawConn, token: Value| {
        conn.request("ValidateAuthorizationToken", &json!({ "token": token }));
        let m = conn.recv().unwrap();
        assert!(m.terminates());
        let body: Value = serde_json::from_slice(m.payload()).unwrap();
        (
            m.message_type,
            m.service_model_type.unwrap().to_string(),
            body,
        )
    };
    let (ty, shape, body) = ask(&mut sm, json!(a_token));
    assert_eq!(ty, MessageType::ApplicationMessage);
    assert_eq!(shape, "aws.greengrass#ValidateAuthorizationTokenResponse");
    assert_eq!(body, json!({"isValid": true}));
    for bad in [json!("NOPE"), Value::Null] {
        let (ty, shape, _) = ask(&mut sm, bad);
        assert_eq!(ty, MessageType::ApplicationError);
        assert_eq!(shape, "aws.greengrass#InvalidTokenError");
    }
    let mut a = RawConn::connect(&broker.socket, &a_token);
    let (_, shape, body) = ask(&mut a, json!(a_token));
    assert_eq!(shape, "aws.greengrass#UnauthorizedError");
    assert_eq!(
        body["message"],
        "com.example.A is not authorized to perform aws.greengrass#ValidateAuthorizationToken"
    );
}

//! Ties each request shape to its operation, response and events, so that
//! [`Client::call`](crate::Client::call) and
//! [`Client::subscribe_with`](crate::Client::subscribe_with) are typed for
//! all 35 operations.

use ggipc_protocol::model::*;

/// The request of an operation answered by one response.
pub trait UnaryRequest: Shape {
    /// The operation.
    const OPERATION: Operation;
    /// Its response shape.
    type Response: Shape;
}

/// The request of an operation answered by a response and then a stream of
/// events.
pub trait StreamingRequest: Shape {
    /// The operation.
    const OPERATION: Operation;
    /// Its response shape, which opens the stream.
    type Response: Shape;
    /// Its event shape.
    type Event: Shape;
}

macro_rules! unary {
    ($($op:ident($req:ident, $resp:ident);)+) => {
        $(
            impl UnaryRequest for $req {
                const OPERATION: Operation = Operation::$op;
                type Response = $resp;
            }
        )+

        #[cfg(test)]
        fn check_unary() {
            $(
                assert_eq!(<$req as UnaryRequest>::OPERATION.request_shape(), <$req as Shape>::ID);
                assert_eq!(
                    <$req as UnaryRequest>::OPERATION.response_shape(),
                    <$resp as Shape>::ID
                );
                assert!(!<$req as UnaryRequest>::OPERATION.is_streaming());
            )+
            assert_eq!([$(stringify!($op)),+].len(), 28);
        }
    };
}

macro_rules! streaming {
    ($($op:ident($req:ident, $resp:ident, $event:ident);)+) => {
        $(
            impl StreamingRequest for $req {
                const OPERATION: Operation = Operation::$op;
                type Response = $resp;
                type Event = $event;
            }
        )+

        #[cfg(test)]
        fn check_streaming() {
            $(
                let op = <$req as StreamingRequest>::OPERATION;
                assert_eq!(op.request_shape(), <$req as Shape>::ID);
                assert_eq!(op.response_shape(), <$resp as Shape>::ID);
                assert_eq!(op.event_shape(), Some(<$event as Shape>::ID));
            )+
            assert_eq!([$(stringify!($op)),+].len(), 7);
        }
    };
}

unary! {
    AuthorizeClientDeviceAction(AuthorizeClientDeviceActionRequest, AuthorizeClientDeviceActionResponse);
    CancelLocalDeployment(CancelLocalDeploymentRequest, CancelLocalDeploymentResponse);
    CreateDebugPassword(CreateDebugPasswordRequest, CreateDebugPasswordResponse);
    CreateLocalDeployment(CreateLocalDeploymentRequest, CreateLocalDeploymentResponse);
    DeferComponentUpdate(DeferComponentUpdateRequest, DeferComponentUpdateResponse);
    DeleteThingShadow(DeleteThingShadowRequest, DeleteThingShadowResponse);
    GetClientDeviceAuthToken(GetClientDeviceAuthTokenRequest, GetClientDeviceAuthTokenResponse);
    GetComponentDetails(GetComponentDetailsRequest, GetComponentDetailsResponse);
    GetConfiguration(GetConfigurationRequest, GetConfigurationResponse);
    GetLocalDeploymentStatus(GetLocalDeploymentStatusRequest, GetLocalDeploymentStatusResponse);
    GetSecretValue(GetSecretValueRequest, GetSecretValueResponse);
    GetThingShadow(GetThingShadowRequest, GetThingShadowResponse);
    ListComponents(ListComponentsRequest, ListComponentsResponse);
    ListLocalDeployments(ListLocalDeploymentsRequest, ListLocalDeploymentsResponse);
    ListNamedShadowsForThing(ListNamedShadowsForThingRequest, ListNamedShadowsForThingResponse);
    PauseComponent(PauseComponentRequest, PauseComponentResponse);
    PublishToIoTCore(PublishToIoTCoreRequest, PublishToIoTCoreResponse);
    PublishToTopic(PublishToTopicRequest, PublishToTopicResponse);
    PutComponentMetric(PutComponentMetricRequest, PutComponentMetricResponse);
    RestartComponent(RestartComponentRequest, RestartComponentResponse);
    ResumeComponent(ResumeComponentRequest, ResumeComponentResponse);
    SendConfigurationValidityReport(
        SendConfigurationValidityReportRequest,
        SendConfigurationValidityReportResponse
    );
    StopComponent(StopComponentRequest, StopComponentResponse);
    UpdateConfiguration(UpdateConfigurationRequest, UpdateConfigurationResponse);
    UpdateState(UpdateStateRequest, UpdateStateResponse);
    UpdateThingShadow(UpdateThingShadowRequest, UpdateThingShadowResponse);
    ValidateAuthorizationToken(ValidateAuthorizationTokenRequest, ValidateAuthorizationTokenResponse);
    VerifyClientDeviceIdentity(VerifyClientDeviceIdentityRequest, VerifyClientDeviceIdentityResponse);
}

streaming! {
    SubscribeToCertificateUpdates(
        SubscribeToCertificateUpdatesRequest,
        SubscribeToCertificateUpdatesResponse,
        CertificateUpdateEvent
    );
    SubscribeToComponentUpdates(
        SubscribeToComponentUpdatesRequest,
        SubscribeToComponentUpdatesResponse,
        ComponentUpdatePolicyEvents
    );
    SubscribeToConfigurationUpdate(
        SubscribeToConfigurationUpdateRequest,
        SubscribeToConfigurationUpdateResponse,
        ConfigurationUpdateEvents
    );
    SubscribeToIoTCore(SubscribeToIoTCoreRequest, SubscribeToIoTCoreResponse, IoTCoreMessage);
    SubscribeToIoTCoreConnectionStatus(
        SubscribeToIoTCoreConnectionStatusRequest,
        SubscribeToIoTCoreConnectionStatusResponse,
        IoTCoreConnectionStatusEvent
    );
    SubscribeToTopic(SubscribeToTopicRequest, SubscribeToTopicResponse, SubscriptionResponseMessage);
    SubscribeToValidateConfigurationUpdates(
        SubscribeToValidateConfigurationUpdatesRequest,
        SubscribeToValidateConfigurationUpdatesResponse,
        ValidateConfigurationUpdateEvents
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_is_tied_to_its_own_shapes() {
        super::check_unary();
        super::check_streaming();
        // 28 + 7 covers the model.
        assert_eq!(ggipc_protocol::model::Operation::ALL.len(), 35);
    }
}

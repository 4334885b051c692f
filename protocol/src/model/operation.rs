//! The 35 operations of §7.1, their shapes and authorization services, and a
//! typed request decoder.

use std::fmt;

use bytes::Bytes;

use super::*;

/// Policy service of local publish/subscribe.
pub const PUBSUB_SERVICE: &str = "aws.greengrass.ipc.pubsub";
/// Policy service of the AWS IoT Core MQTT proxy.
pub const MQTT_PROXY_SERVICE: &str = "aws.greengrass.ipc.mqttproxy";
/// Policy service of PauseComponent and ResumeComponent.
pub const LIFECYCLE_SERVICE: &str = "aws.greengrass.ipc.lifecycle";
/// Policy service of the Greengrass CLI's operations.
pub const CLI_SERVICE: &str = "aws.greengrass.Cli";
/// Policy service of the secret manager.
pub const SECRET_MANAGER_SERVICE: &str = "aws.greengrass.SecretManager";
/// Policy service of the shadow manager.
pub const SHADOW_MANAGER_SERVICE: &str = "aws.greengrass.ShadowManager";
/// Policy service of client device auth.
pub const CLIENT_DEVICE_AUTH_SERVICE: &str = "aws.greengrass.clientdevices.Auth";
/// Policy service of PutComponentMetric.
pub const COMPONENT_METRIC_SERVICE: &str = "aws.greengrass.ipc.componentmetric";

/// `Some(event shape id)` for a streaming operation, `None` otherwise.
macro_rules! event_id {
    () => {
        None
    };
    ($event:ident) => {
        Some(<$event as Shape>::ID)
    };
}

macro_rules! operations {
    ($(
        $(#[$doc:meta])*
        $op:ident($req:ident, $resp:ident $(, $event:ident)?) => $auth:expr;
    )+) => {
        /// A GreengrassCoreIPC operation (`protocol.md` §7.1).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $( $(#[$doc])* $op, )+
        }

        impl Operation {
            /// Every operation, in the order of §7.1.
            pub const ALL: [Self; 35] = [$(Self::$op),+];

            /// The bare name, e.g. `PublishToTopic`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$op => stringify!($op),)+
                }
            }

            /// The `operation` header value, e.g. `aws.greengrass#PublishToTopic`.
            pub fn wire_name(self) -> &'static str {
                match self {
                    $(Self::$op => concat!("aws.greengrass#", stringify!($op)),)+
                }
            }

            /// The operation an `operation` header names; exact match, as
            /// the nucleus' handler table.
            pub fn from_wire_name(wire_name: &str) -> Option<Self> {
                Self::from_name(wire_name.strip_prefix(NAMESPACE)?)
            }

            /// The operation with a bare name such as `PublishToTopic`.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($op) => Some(Self::$op),)+
                    _ => None,
                }
            }

            /// Whether the response is followed by events.
            pub fn is_streaming(self) -> bool {
                self.event_shape().is_some()
            }

            /// The request's shape id, e.g. `aws.greengrass#PublishToTopicRequest`.
            pub fn request_shape(self) -> &'static str {
                match self {
                    $(Self::$op => <$req as Shape>::ID,)+
                }
            }

            /// The response's shape id, e.g. `aws.greengrass#PublishToTopicResponse`.
            pub fn response_shape(self) -> &'static str {
                match self {
                    $(Self::$op => <$resp as Shape>::ID,)+
                }
            }

            /// The events' shape id for a streaming operation, e.g.
            /// `aws.greengrass#SubscriptionResponseMessage`.
            pub fn event_shape(self) -> Option<&'static str> {
                match self {
                    $(Self::$op => event_id!($($event)?),)+
                }
            }

            /// The service an authorization policy names to allow the
            /// operation (§7.6), e.g. `aws.greengrass.ipc.pubsub`; `None` for
            /// operations that act on the caller or need no policy.
            pub fn auth_service(self) -> Option<&'static str> {
                match self {
                    $(Self::$op => $auth,)+
                }
            }
        }

        /// A decoded request, one variant per operation.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Request {
            $( $(#[$doc])* $op($req), )+
        }

        impl Request {
            /// The operation the request is for.
            pub fn operation(&self) -> Operation {
                match self {
                    $(Self::$op(_) => Operation::$op,)+
                }
            }

            /// The JSON payload, as a client sends it.
            pub fn to_payload(&self) -> Bytes {
                match self {
                    $(Self::$op(r) => r.to_payload(),)+
                }
            }

            /// Checks required members and unions (see [`Shape::validate`]).
            pub fn validate(&self) -> Result<(), ShapeError> {
                match self {
                    $(Self::$op(r) => r.validate(),)+
                }
            }
        }

        $(
            impl From<$req> for Request {
                fn from(request: $req) -> Self {
                    Self::$op(request)
                }
            }
        )+

        /// Decodes `payload` as the request of `op`. Fails only on what the
        /// nucleus' deserializer refuses too: bad JSON, a non-object, or a
        /// member of the wrong JSON type. Required members and unions are
        /// checked by [`Request::validate`].
        pub fn decode_request(op: Operation, payload: &[u8]) -> Result<Request, serde_json::Error> {
            Ok(match op {
                $(Operation::$op => Request::$op($req::from_payload(payload)?),)+
            })
        }
    };
}

operations! {
    /// Asks whether a client device may perform an action.
    AuthorizeClientDeviceAction(
        AuthorizeClientDeviceActionRequest,
        AuthorizeClientDeviceActionResponse
    ) => Some(CLIENT_DEVICE_AUTH_SERVICE);
    /// Cancels a local deployment.
    // The CLI authorizes it against its service like its other operations,
    // although §7.6's table leaves it out.
    CancelLocalDeployment(CancelLocalDeploymentRequest, CancelLocalDeploymentResponse)
        => Some(CLI_SERVICE);
    /// Creates a password for the local debug console.
    CreateDebugPassword(CreateDebugPasswordRequest, CreateDebugPasswordResponse)
        => Some(CLI_SERVICE);
    /// Starts a local deployment.
    CreateLocalDeployment(CreateLocalDeploymentRequest, CreateLocalDeploymentResponse)
        => Some(CLI_SERVICE);
    /// Answers a pre-update event.
    DeferComponentUpdate(DeferComponentUpdateRequest, DeferComponentUpdateResponse) => None;
    /// Deletes a thing shadow.
    DeleteThingShadow(DeleteThingShadowRequest, DeleteThingShadowResponse)
        => Some(SHADOW_MANAGER_SERVICE);
    /// Exchanges client device credentials for a session token.
    GetClientDeviceAuthToken(GetClientDeviceAuthTokenRequest, GetClientDeviceAuthTokenResponse)
        => Some(CLIENT_DEVICE_AUTH_SERVICE);
    /// Describes a component.
    GetComponentDetails(GetComponentDetailsRequest, GetComponentDetailsResponse)
        => Some(CLI_SERVICE);
    /// Reads component configuration.
    GetConfiguration(GetConfigurationRequest, GetConfigurationResponse) => None;
    /// Reads a local deployment's status.
    GetLocalDeploymentStatus(GetLocalDeploymentStatusRequest, GetLocalDeploymentStatusResponse)
        => Some(CLI_SERVICE);
    /// Reads a secret.
    GetSecretValue(GetSecretValueRequest, GetSecretValueResponse)
        => Some(SECRET_MANAGER_SERVICE);
    /// Reads a thing shadow.
    GetThingShadow(GetThingShadowRequest, GetThingShadowResponse)
        => Some(SHADOW_MANAGER_SERVICE);
    /// Lists components.
    ListComponents(ListComponentsRequest, ListComponentsResponse) => Some(CLI_SERVICE);
    /// Lists local deployments.
    ListLocalDeployments(ListLocalDeploymentsRequest, ListLocalDeploymentsResponse)
        => Some(CLI_SERVICE);
    /// Lists a thing's named shadows.
    ListNamedShadowsForThing(ListNamedShadowsForThingRequest, ListNamedShadowsForThingResponse)
        => Some(SHADOW_MANAGER_SERVICE);
    /// Pauses a component.
    PauseComponent(PauseComponentRequest, PauseComponentResponse) => Some(LIFECYCLE_SERVICE);
    /// Publishes to AWS IoT Core.
    PublishToIoTCore(PublishToIoTCoreRequest, PublishToIoTCoreResponse)
        => Some(MQTT_PROXY_SERVICE);
    /// Publishes to local subscribers.
    PublishToTopic(PublishToTopicRequest, PublishToTopicResponse) => Some(PUBSUB_SERVICE);
    /// Publishes component metrics.
    PutComponentMetric(PutComponentMetricRequest, PutComponentMetricResponse)
        => Some(COMPONENT_METRIC_SERVICE);
    /// Restarts a component.
    RestartComponent(RestartComponentRequest, RestartComponentResponse) => Some(CLI_SERVICE);
    /// Resumes a paused component.
    ResumeComponent(ResumeComponentRequest, ResumeComponentResponse) => Some(LIFECYCLE_SERVICE);
    /// Answers a configuration validation event.
    SendConfigurationValidityReport(
        SendConfigurationValidityReportRequest,
        SendConfigurationValidityReportResponse
    ) => None;
    /// Stops a component.
    StopComponent(StopComponentRequest, StopComponentResponse) => Some(CLI_SERVICE);
    /// Streams certificate rotations.
    SubscribeToCertificateUpdates(
        SubscribeToCertificateUpdatesRequest,
        SubscribeToCertificateUpdatesResponse,
        CertificateUpdateEvent
    ) => Some(CLIENT_DEVICE_AUTH_SERVICE);
    /// Streams deployment notifications.
    SubscribeToComponentUpdates(
        SubscribeToComponentUpdatesRequest,
        SubscribeToComponentUpdatesResponse,
        ComponentUpdatePolicyEvents
    ) => None;
    /// Streams configuration changes.
    SubscribeToConfigurationUpdate(
        SubscribeToConfigurationUpdateRequest,
        SubscribeToConfigurationUpdateResponse,
        ConfigurationUpdateEvents
    ) => None;
    /// Streams MQTT messages from AWS IoT Core.
    SubscribeToIoTCore(SubscribeToIoTCoreRequest, SubscribeToIoTCoreResponse, IoTCoreMessage)
        => Some(MQTT_PROXY_SERVICE);
    /// Streams the state of the connection to AWS IoT Core; unknown to the
    /// Java nucleus (§3.6).
    SubscribeToIoTCoreConnectionStatus(
        SubscribeToIoTCoreConnectionStatusRequest,
        SubscribeToIoTCoreConnectionStatusResponse,
        IoTCoreConnectionStatusEvent
    ) => None;
    /// Streams local messages.
    SubscribeToTopic(SubscribeToTopicRequest, SubscribeToTopicResponse, SubscriptionResponseMessage)
        => Some(PUBSUB_SERVICE);
    /// Streams configuration validation requests.
    SubscribeToValidateConfigurationUpdates(
        SubscribeToValidateConfigurationUpdatesRequest,
        SubscribeToValidateConfigurationUpdatesResponse,
        ValidateConfigurationUpdateEvents
    ) => None;
    /// Merges into the caller's configuration.
    UpdateConfiguration(UpdateConfigurationRequest, UpdateConfigurationResponse) => None;
    /// Reports the caller's lifecycle state.
    UpdateState(UpdateStateRequest, UpdateStateResponse) => None;
    /// Updates a thing shadow.
    UpdateThingShadow(UpdateThingShadowRequest, UpdateThingShadowResponse)
        => Some(SHADOW_MANAGER_SERVICE);
    /// Checks an IPC token; no policy grants it, only
    /// `aws.greengrass.StreamManager` may call it.
    ValidateAuthorizationToken(
        ValidateAuthorizationTokenRequest,
        ValidateAuthorizationTokenResponse
    ) => None;
    /// Checks a client device's credential.
    VerifyClientDeviceIdentity(
        VerifyClientDeviceIdentityRequest,
        VerifyClientDeviceIdentityResponse
    ) => Some(CLIENT_DEVICE_AUTH_SERVICE);
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

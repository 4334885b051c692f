//! The modeled error shapes of §7.2 and their payloads (§3.6).

use std::fmt;

use bytes::Bytes;
use serde::Serialize;

use super::{Document, NAMESPACE, SERVICE_ID, ShapeError, from_payload, to_payload};

/// A modeled GreengrassCoreIPC error: one variant per error shape of §7.2.
///
/// Every member is optional on the wire; the server should always set
/// `message`.
#[derive(Clone, Debug, PartialEq)]
pub enum IpcError {
    /// `UnauthorizedError`: the caller's policies do not allow the request.
    Unauthorized {
        /// `message`.
        message: Option<String>,
    },
    /// `ResourceNotFoundError`.
    ResourceNotFound {
        /// `message`.
        message: Option<String>,
        /// `resourceType`, e.g. `Component`.
        resource_type: Option<String>,
        /// `resourceName`.
        resource_name: Option<String>,
    },
    /// `ConflictError`.
    Conflict {
        /// `message`.
        message: Option<String>,
    },
    /// `ComponentNotFoundError`.
    ComponentNotFound {
        /// `message`.
        message: Option<String>,
    },
    /// `InvalidRecipeDirectoryPathError`.
    InvalidRecipeDirectoryPath {
        /// `message`.
        message: Option<String>,
    },
    /// `InvalidArtifactsDirectoryPathError`.
    InvalidArtifactsDirectoryPath {
        /// `message`.
        message: Option<String>,
    },
    /// `InvalidArgumentsError`.
    InvalidArguments {
        /// `message`.
        message: Option<String>,
    },
    /// `FailedUpdateConditionCheckError`: an UpdateConfiguration timestamp
    /// older than the configuration's.
    FailedUpdateConditionCheck {
        /// `message`.
        message: Option<String>,
    },
    /// `InvalidCredentialError`.
    InvalidCredential {
        /// `message`.
        message: Option<String>,
    },
    /// `InvalidClientDeviceAuthTokenError`.
    InvalidClientDeviceAuthToken {
        /// `message`.
        message: Option<String>,
    },
    /// `ServiceError`: the server failed.
    Service {
        /// `message`.
        message: Option<String>,
        /// `context`: details, in practice an object.
        context: Option<Document>,
    },
    /// `InvalidTokenError`.
    InvalidToken {
        /// `message`.
        message: Option<String>,
    },
}

/// The wire body, members in the order the nucleus' Gson writes them: the
/// shape's own fields, then the base class' `_service`, `_message`,
/// `_errorCode`.
#[derive(Serialize)]
struct BodyOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(rename = "resourceType", skip_serializing_if = "Option::is_none")]
    resource_type: Option<&'a str>,
    #[serde(rename = "resourceName", skip_serializing_if = "Option::is_none")]
    resource_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a Document>,
    #[serde(rename = "_service")]
    service: &'static str,
    #[serde(rename = "_message", skip_serializing_if = "Option::is_none")]
    underscore_message: Option<&'a str>,
    #[serde(rename = "_errorCode")]
    error_code: &'static str,
}

/// What a client reads from an error body; the rest is ignored.
struct BodyIn {
    message: Option<String>,
    resource_type: Option<String>,
    resource_name: Option<String>,
    context: Option<Document>,
    underscore_message: Option<String>,
}

deserialize_object!(BodyIn {
    "message" => message: opt,
    "resourceType" => resource_type: opt,
    "resourceName" => resource_name: opt,
    "context" => context: opt,
    "_message" => underscore_message: opt,
});

impl IpcError {
    /// Bare names of every error shape, in the order of §7.2.
    pub const SHAPE_NAMES: [&'static str; 12] = [
        "UnauthorizedError",
        "ResourceNotFoundError",
        "ConflictError",
        "ComponentNotFoundError",
        "InvalidRecipeDirectoryPathError",
        "InvalidArtifactsDirectoryPathError",
        "InvalidArgumentsError",
        "FailedUpdateConditionCheckError",
        "InvalidCredentialError",
        "InvalidClientDeviceAuthTokenError",
        "ServiceError",
        "InvalidTokenError",
    ];

    /// `UnauthorizedError` with a message.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized {
            message: Some(message.into()),
        }
    }

    /// `ResourceNotFoundError` with a message and no resource fields.
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::ResourceNotFound {
            message: Some(message.into()),
            resource_type: None,
            resource_name: None,
        }
    }

    /// `ResourceNotFoundError` naming the resource, e.g. type `Component`.
    pub fn resource_not_found_named(
        message: impl Into<String>,
        resource_type: impl Into<String>,
        resource_name: impl Into<String>,
    ) -> Self {
        Self::ResourceNotFound {
            message: Some(message.into()),
            resource_type: Some(resource_type.into()),
            resource_name: Some(resource_name.into()),
        }
    }

    /// `ConflictError` with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: Some(message.into()),
        }
    }

    /// `ComponentNotFoundError` with a message.
    pub fn component_not_found(message: impl Into<String>) -> Self {
        Self::ComponentNotFound {
            message: Some(message.into()),
        }
    }

    /// `InvalidRecipeDirectoryPathError` with a message.
    pub fn invalid_recipe_directory_path(message: impl Into<String>) -> Self {
        Self::InvalidRecipeDirectoryPath {
            message: Some(message.into()),
        }
    }

    /// `InvalidArtifactsDirectoryPathError` with a message.
    pub fn invalid_artifacts_directory_path(message: impl Into<String>) -> Self {
        Self::InvalidArtifactsDirectoryPath {
            message: Some(message.into()),
        }
    }

    /// `InvalidArgumentsError` with a message.
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self::InvalidArguments {
            message: Some(message.into()),
        }
    }

    /// `FailedUpdateConditionCheckError` with a message.
    pub fn failed_update_condition_check(message: impl Into<String>) -> Self {
        Self::FailedUpdateConditionCheck {
            message: Some(message.into()),
        }
    }

    /// `InvalidCredentialError` with a message.
    pub fn invalid_credential(message: impl Into<String>) -> Self {
        Self::InvalidCredential {
            message: Some(message.into()),
        }
    }

    /// `InvalidClientDeviceAuthTokenError` with a message.
    pub fn invalid_client_device_auth_token(message: impl Into<String>) -> Self {
        Self::InvalidClientDeviceAuthToken {
            message: Some(message.into()),
        }
    }

    /// `ServiceError` with a message and no context.
    pub fn service(message: impl Into<String>) -> Self {
        Self::Service {
            message: Some(message.into()),
            context: None,
        }
    }

    /// `ServiceError` with a message and a context document.
    pub fn service_with_context(message: impl Into<String>, context: Document) -> Self {
        Self::Service {
            message: Some(message.into()),
            context: Some(context),
        }
    }

    /// `InvalidTokenError` with a message.
    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::InvalidToken {
            message: Some(message.into()),
        }
    }

    /// The bare shape name, e.g. `UnauthorizedError`; also the `_errorCode`.
    pub fn shape_name(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "UnauthorizedError",
            Self::ResourceNotFound { .. } => "ResourceNotFoundError",
            Self::Conflict { .. } => "ConflictError",
            Self::ComponentNotFound { .. } => "ComponentNotFoundError",
            Self::InvalidRecipeDirectoryPath { .. } => "InvalidRecipeDirectoryPathError",
            Self::InvalidArtifactsDirectoryPath { .. } => "InvalidArtifactsDirectoryPathError",
            Self::InvalidArguments { .. } => "InvalidArgumentsError",
            Self::FailedUpdateConditionCheck { .. } => "FailedUpdateConditionCheckError",
            Self::InvalidCredential { .. } => "InvalidCredentialError",
            Self::InvalidClientDeviceAuthToken { .. } => "InvalidClientDeviceAuthTokenError",
            Self::Service { .. } => "ServiceError",
            Self::InvalidToken { .. } => "InvalidTokenError",
        }
    }

    /// The shape id, e.g. `aws.greengrass#UnauthorizedError`: the
    /// `service-model-type` of the error message.
    pub fn shape_id(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "aws.greengrass#UnauthorizedError",
            Self::ResourceNotFound { .. } => "aws.greengrass#ResourceNotFoundError",
            Self::Conflict { .. } => "aws.greengrass#ConflictError",
            Self::ComponentNotFound { .. } => "aws.greengrass#ComponentNotFoundError",
            Self::InvalidRecipeDirectoryPath { .. } => {
                "aws.greengrass#InvalidRecipeDirectoryPathError"
            }
            Self::InvalidArtifactsDirectoryPath { .. } => {
                "aws.greengrass#InvalidArtifactsDirectoryPathError"
            }
            Self::InvalidArguments { .. } => "aws.greengrass#InvalidArgumentsError",
            Self::FailedUpdateConditionCheck { .. } => {
                "aws.greengrass#FailedUpdateConditionCheckError"
            }
            Self::InvalidCredential { .. } => "aws.greengrass#InvalidCredentialError",
            Self::InvalidClientDeviceAuthToken { .. } => {
                "aws.greengrass#InvalidClientDeviceAuthTokenError"
            }
            Self::Service { .. } => "aws.greengrass#ServiceError",
            Self::InvalidToken { .. } => "aws.greengrass#InvalidTokenError",
        }
    }

    /// The message, if any.
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Unauthorized { message }
            | Self::ResourceNotFound { message, .. }
            | Self::Conflict { message }
            | Self::ComponentNotFound { message }
            | Self::InvalidRecipeDirectoryPath { message }
            | Self::InvalidArtifactsDirectoryPath { message }
            | Self::InvalidArguments { message }
            | Self::FailedUpdateConditionCheck { message }
            | Self::InvalidCredential { message }
            | Self::InvalidClientDeviceAuthToken { message }
            | Self::Service { message, .. }
            | Self::InvalidToken { message } => message.as_deref(),
        }
    }

    /// Whether the SDKs class the error as the server's fault
    /// (`ServiceError`, `InvalidTokenError`) rather than the caller's.
    pub fn is_server_error(&self) -> bool {
        matches!(self, Self::Service { .. } | Self::InvalidToken { .. })
    }

    /// The JSON payload in the nucleus' member order, e.g.
    /// `{"message":"…","_service":"aws.greengrass#GreengrassCoreIPC","_message":"…","_errorCode":"UnauthorizedError"}`;
    /// absent members are omitted.
    pub fn to_payload(&self) -> Bytes {
        let (resource_type, resource_name, context) = match self {
            Self::ResourceNotFound {
                resource_type,
                resource_name,
                ..
            } => (resource_type.as_deref(), resource_name.as_deref(), None),
            Self::Service { context, .. } => (None, None, context.as_ref()),
            _ => (None, None, None),
        };
        let message = self.message();
        to_payload(&BodyOut {
            message,
            resource_type,
            resource_name,
            context,
            service: SERVICE_ID,
            underscore_message: message,
            error_code: self.shape_name(),
        })
    }

    /// Reads an error payload for a client. `None` when `shape_id` is not an
    /// error shape of this model. `message` is taken from `message`, or from
    /// `_message` when that is absent (Greengrass Lite sends only the
    /// latter); other members are ignored.
    pub fn from_payload(shape_id: &str, payload: &[u8]) -> Option<Result<Self, serde_json::Error>> {
        type Build = fn(Option<String>, BodyIn) -> IpcError;
        let build: Build = match shape_id.strip_prefix(NAMESPACE)? {
            "UnauthorizedError" => |message, _| Self::Unauthorized { message },
            "ResourceNotFoundError" => |message, body| Self::ResourceNotFound {
                message,
                resource_type: body.resource_type,
                resource_name: body.resource_name,
            },
            "ConflictError" => |message, _| Self::Conflict { message },
            "ComponentNotFoundError" => |message, _| Self::ComponentNotFound { message },
            "InvalidRecipeDirectoryPathError" => {
                |message, _| Self::InvalidRecipeDirectoryPath { message }
            }
            "InvalidArtifactsDirectoryPathError" => {
                |message, _| Self::InvalidArtifactsDirectoryPath { message }
            }
            "InvalidArgumentsError" => |message, _| Self::InvalidArguments { message },
            "FailedUpdateConditionCheckError" => {
                |message, _| Self::FailedUpdateConditionCheck { message }
            }
            "InvalidCredentialError" => |message, _| Self::InvalidCredential { message },
            "InvalidClientDeviceAuthTokenError" => {
                |message, _| Self::InvalidClientDeviceAuthToken { message }
            }
            "ServiceError" => |message, body| Self::Service {
                message,
                context: body.context,
            },
            "InvalidTokenError" => |message, _| Self::InvalidToken { message },
            _ => return None,
        };
        Some(from_payload::<BodyIn>(payload).map(|mut body| {
            let message = body.message.take().or(body.underscore_message.take());
            build(message, body)
        }))
    }
}

impl fmt::Display for IpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(message) => write!(f, "{}: {message}", self.shape_name()),
            None => write!(f, "{} without message", self.shape_name()),
        }
    }
}

impl std::error::Error for IpcError {}

impl From<ShapeError> for IpcError {
    /// A request that breaks the model is the caller's fault.
    fn from(error: ShapeError) -> Self {
        Self::invalid_arguments(error.to_string())
    }
}

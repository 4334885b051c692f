//! Operations served by the Greengrass CLI component: components, local
//! deployments and the debug password (`protocol.md` §7.4.6–§7.4.9, §7.5).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    DeploymentStatus, DetailedDeploymentStatus, Document, FailureHandlingPolicy, LifecycleState,
    RequestStatus, Shape, ShapeError, Timestamp, missing,
};

/// Lists the components the nucleus runs.
///
/// Structure `aws.greengrass#ListComponentsRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ListComponentsRequest {}

deserialize_object!(ListComponentsRequest {});

impl Shape for ListComponentsRequest {
    const ID: &'static str = "aws.greengrass#ListComponentsRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// The components the nucleus runs.
///
/// Structure `aws.greengrass#ListComponentsResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListComponentsResponse {
    /// Every component except the nucleus' main service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<ComponentDetails>>,
}

deserialize_object!(ListComponentsResponse {
    "components" => components: opt,
});

impl Shape for ListComponentsResponse {
    const ID: &'static str = "aws.greengrass#ListComponentsResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// A component and its state.
///
/// Structure `aws.greengrass#ComponentDetails`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDetails {
    /// The name.
    pub component_name: String,
    /// The version; Smithy-required, but the reference omits it for components without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The lifecycle state.
    pub state: LifecycleState,
    /// The component's `configuration` subtree, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Document>,
}

deserialize_object!(ComponentDetails {
    "componentName" => component_name: req,
    "version" => version: opt,
    "state" => state: req,
    "configuration" => configuration: opt,
});

impl Shape for ComponentDetails {
    const ID: &'static str = "aws.greengrass#ComponentDetails";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Describes one component.
///
/// Structure `aws.greengrass#GetComponentDetailsRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetComponentDetailsRequest {
    /// Required. The component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
}

deserialize_object!(GetComponentDetailsRequest {
    "componentName" => component_name: opt,
});

impl Shape for GetComponentDetailsRequest {
    const ID: &'static str = "aws.greengrass#GetComponentDetailsRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.component_name.is_none() {
            return Err(missing("GetComponentDetailsRequest", "componentName"));
        }
        Ok(())
    }
}

/// One component's details.
///
/// Structure `aws.greengrass#GetComponentDetailsResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetComponentDetailsResponse {
    /// The details.
    pub component_details: ComponentDetails,
}

deserialize_object!(GetComponentDetailsResponse {
    "componentDetails" => component_details: req,
});

impl Shape for GetComponentDetailsResponse {
    const ID: &'static str = "aws.greengrass#GetComponentDetailsResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Restarts a component.
///
/// Structure `aws.greengrass#RestartComponentRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartComponentRequest {
    /// Required. The component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
}

deserialize_object!(RestartComponentRequest {
    "componentName" => component_name: opt,
});

impl Shape for RestartComponentRequest {
    const ID: &'static str = "aws.greengrass#RestartComponentRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.component_name.is_none() {
            return Err(missing("RestartComponentRequest", "componentName"));
        }
        Ok(())
    }
}

/// Whether a restart was requested.
///
/// Structure `aws.greengrass#RestartComponentResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartComponentResponse {
    /// Whether the restart request was accepted.
    pub restart_status: RequestStatus,
    /// Why, in free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

deserialize_object!(RestartComponentResponse {
    "restartStatus" => restart_status: req,
    "message" => message: opt,
});

impl Shape for RestartComponentResponse {
    const ID: &'static str = "aws.greengrass#RestartComponentResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Stops a component.
///
/// Structure `aws.greengrass#StopComponentRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopComponentRequest {
    /// Required. The component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
}

deserialize_object!(StopComponentRequest {
    "componentName" => component_name: opt,
});

impl Shape for StopComponentRequest {
    const ID: &'static str = "aws.greengrass#StopComponentRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.component_name.is_none() {
            return Err(missing("StopComponentRequest", "componentName"));
        }
        Ok(())
    }
}

/// Whether a stop was requested.
///
/// Structure `aws.greengrass#StopComponentResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopComponentResponse {
    /// Whether the stop request was accepted.
    pub stop_status: RequestStatus,
    /// Why, in free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

deserialize_object!(StopComponentResponse {
    "stopStatus" => stop_status: req,
    "message" => message: opt,
});

impl Shape for StopComponentResponse {
    const ID: &'static str = "aws.greengrass#StopComponentResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Starts a local deployment.
///
/// Structure `aws.greengrass#CreateLocalDeploymentRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLocalDeploymentRequest {
    /// The thing group the deployment targets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    /// Root components to add or update, name to version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_component_versions_to_add: Option<BTreeMap<String, String>>,
    /// Root components to remove.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_components_to_remove: Option<Vec<String>>,
    /// Configuration to merge, by component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_to_configuration: Option<BTreeMap<String, Document>>,
    /// System user and limits, by component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_to_run_with_info: Option<BTreeMap<String, RunWithInfo>>,
    /// Directory of recipes on the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipe_directory_path: Option<String>,
    /// Directory of artifacts on the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts_directory_path: Option<String>,
    /// What to do when the deployment fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_handling_policy: Option<FailureHandlingPolicy>,
}

deserialize_object!(CreateLocalDeploymentRequest {
    "groupName" => group_name: opt,
    "rootComponentVersionsToAdd" => root_component_versions_to_add: opt,
    "rootComponentsToRemove" => root_components_to_remove: opt,
    "componentToConfiguration" => component_to_configuration: opt,
    "componentToRunWithInfo" => component_to_run_with_info: opt,
    "recipeDirectoryPath" => recipe_directory_path: opt,
    "artifactsDirectoryPath" => artifacts_directory_path: opt,
    "failureHandlingPolicy" => failure_handling_policy: opt,
});

impl Shape for CreateLocalDeploymentRequest {
    const ID: &'static str = "aws.greengrass#CreateLocalDeploymentRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// The system user and limits a component runs with.
///
/// Structure `aws.greengrass#RunWithInfo`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunWithInfo {
    /// `user[:group]` on POSIX systems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posix_user: Option<String>,
    /// The user on Windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windows_user: Option<String>,
    /// Resource limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_resource_limits: Option<SystemResourceLimits>,
}

deserialize_object!(RunWithInfo {
    "posixUser" => posix_user: opt,
    "windowsUser" => windows_user: opt,
    "systemResourceLimits" => system_resource_limits: opt,
});

impl Shape for RunWithInfo {
    const ID: &'static str = "aws.greengrass#RunWithInfo";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Resource limits of a component's processes.
///
/// Structure `aws.greengrass#SystemResourceLimits`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemResourceLimits {
    /// Maximum memory in KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Maximum CPU time, in cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
}

deserialize_object!(SystemResourceLimits {
    "memory" => memory: opt,
    "cpus" => cpus: opt,
});

impl Shape for SystemResourceLimits {
    const ID: &'static str = "aws.greengrass#SystemResourceLimits";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// The deployment started.
///
/// Structure `aws.greengrass#CreateLocalDeploymentResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLocalDeploymentResponse {
    /// Its id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

deserialize_object!(CreateLocalDeploymentResponse {
    "deploymentId" => deployment_id: opt,
});

impl Shape for CreateLocalDeploymentResponse {
    const ID: &'static str = "aws.greengrass#CreateLocalDeploymentResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Cancels a local deployment.
///
/// Structure `aws.greengrass#CancelLocalDeploymentRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelLocalDeploymentRequest {
    /// The deployment to cancel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

deserialize_object!(CancelLocalDeploymentRequest {
    "deploymentId" => deployment_id: opt,
});

impl Shape for CancelLocalDeploymentRequest {
    const ID: &'static str = "aws.greengrass#CancelLocalDeploymentRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Outcome of CancelLocalDeployment.
///
/// Structure `aws.greengrass#CancelLocalDeploymentResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelLocalDeploymentResponse {
    /// What happened, in free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

deserialize_object!(CancelLocalDeploymentResponse {
    "message" => message: opt,
});

impl Shape for CancelLocalDeploymentResponse {
    const ID: &'static str = "aws.greengrass#CancelLocalDeploymentResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Reads a local deployment's status.
///
/// Structure `aws.greengrass#GetLocalDeploymentStatusRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLocalDeploymentStatusRequest {
    /// Required. The deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
}

deserialize_object!(GetLocalDeploymentStatusRequest {
    "deploymentId" => deployment_id: opt,
});

impl Shape for GetLocalDeploymentStatusRequest {
    const ID: &'static str = "aws.greengrass#GetLocalDeploymentStatusRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.deployment_id.is_none() {
            return Err(missing("GetLocalDeploymentStatusRequest", "deploymentId"));
        }
        Ok(())
    }
}

/// A local deployment's status.
///
/// Structure `aws.greengrass#GetLocalDeploymentStatusResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetLocalDeploymentStatusResponse {
    /// The deployment.
    pub deployment: LocalDeployment,
}

deserialize_object!(GetLocalDeploymentStatusResponse {
    "deployment" => deployment: req,
});

impl Shape for GetLocalDeploymentStatusResponse {
    const ID: &'static str = "aws.greengrass#GetLocalDeploymentStatusResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Lists the local deployments the CLI remembers.
///
/// Structure `aws.greengrass#ListLocalDeploymentsRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ListLocalDeploymentsRequest {}

deserialize_object!(ListLocalDeploymentsRequest {});

impl Shape for ListLocalDeploymentsRequest {
    const ID: &'static str = "aws.greengrass#ListLocalDeploymentsRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// The local deployments the CLI remembers.
///
/// Structure `aws.greengrass#ListLocalDeploymentsResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListLocalDeploymentsResponse {
    /// The deployments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_deployments: Option<Vec<LocalDeployment>>,
}

deserialize_object!(ListLocalDeploymentsResponse {
    "localDeployments" => local_deployments: opt,
});

impl Shape for ListLocalDeploymentsResponse {
    const ID: &'static str = "aws.greengrass#ListLocalDeploymentsResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// A local deployment and its status.
///
/// Structure `aws.greengrass#LocalDeployment`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalDeployment {
    /// Its id.
    pub deployment_id: String,
    /// Its status.
    pub status: DeploymentStatus,
    /// Creation time as the CLI formats it (`dd-MM-uuuu HH:mm:ss z`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_on: Option<String>,
    /// Details of the outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_status_details: Option<DeploymentStatusDetails>,
}

deserialize_object!(LocalDeployment {
    "deploymentId" => deployment_id: req,
    "status" => status: req,
    "createdOn" => created_on: opt,
    "deploymentStatusDetails" => deployment_status_details: opt,
});

impl Shape for LocalDeployment {
    const ID: &'static str = "aws.greengrass#LocalDeployment";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Details of a deployment's outcome.
///
/// Structure `aws.greengrass#DeploymentStatusDetails`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentStatusDetails {
    /// The outcome; Smithy-required, but the reference omits it when it has none recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detailed_deployment_status: Option<DetailedDeploymentStatus>,
    /// Error codes, most general first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_error_stack: Option<Vec<String>>,
    /// Error types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_error_types: Option<Vec<String>>,
    /// Why the deployment failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_failure_cause: Option<String>,
}

deserialize_object!(DeploymentStatusDetails {
    "detailedDeploymentStatus" => detailed_deployment_status: opt,
    "deploymentErrorStack" => deployment_error_stack: opt,
    "deploymentErrorTypes" => deployment_error_types: opt,
    "deploymentFailureCause" => deployment_failure_cause: opt,
});

impl Shape for DeploymentStatusDetails {
    const ID: &'static str = "aws.greengrass#DeploymentStatusDetails";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Creates a password for the local debug console.
///
/// Structure `aws.greengrass#CreateDebugPasswordRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateDebugPasswordRequest {}

deserialize_object!(CreateDebugPasswordRequest {});

impl Shape for CreateDebugPasswordRequest {
    const ID: &'static str = "aws.greengrass#CreateDebugPasswordRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Credentials for the local debug console.
///
/// Structure `aws.greengrass#CreateDebugPasswordResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateDebugPasswordResponse {
    /// The password.
    pub password: String,
    /// The user name.
    pub username: String,
    /// When the password expires.
    pub password_expiration: Timestamp,
    /// SHA-256 fingerprint of the console's certificate.
    #[serde(
        rename = "certificateSHA256Hash",
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_sha256_hash: Option<String>,
    /// SHA-1 fingerprint of the console's certificate.
    #[serde(
        rename = "certificateSHA1Hash",
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_sha1_hash: Option<String>,
}

deserialize_object!(CreateDebugPasswordResponse {
    "password" => password: req,
    "username" => username: req,
    "passwordExpiration" => password_expiration: req,
    "certificateSHA256Hash" => certificate_sha256_hash: opt,
    "certificateSHA1Hash" => certificate_sha1_hash: opt,
});

impl Shape for CreateDebugPasswordResponse {
    const ID: &'static str = "aws.greengrass#CreateDebugPasswordResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

//! Component configuration: GetConfiguration, UpdateConfiguration,
//! configuration update subscriptions and validity reports (`protocol.md`
//! §7.4.10–§7.4.12, §7.5).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use serde::Serialize;

use super::{
    ConfigurationValidityStatus, Document, Shape, ShapeError, Timestamp, check_union, missing,
};

/// Reads a component's configuration.
///
/// Structure `aws.greengrass#GetConfigurationRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetConfigurationRequest {
    /// The component; absent means the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
    /// Required. Path below the component's `configuration` node; may be empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_path: Option<Vec<String>>,
}

deserialize_object!(GetConfigurationRequest {
    "componentName" => component_name: opt,
    "keyPath" => key_path: opt,
});

impl Shape for GetConfigurationRequest {
    const ID: &'static str = "aws.greengrass#GetConfigurationRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.key_path.is_none() {
            return Err(missing("GetConfigurationRequest", "keyPath"));
        }
        Ok(())
    }
}

/// The value read by GetConfiguration.
///
/// Structure `aws.greengrass#GetConfigurationResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetConfigurationResponse {
    /// The component read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
    /// A container's contents, or `{lastKey: value}` for a leaf.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Document>,
}

deserialize_object!(GetConfigurationResponse {
    "componentName" => component_name: opt,
    "value" => value: opt,
});

impl Shape for GetConfigurationResponse {
    const ID: &'static str = "aws.greengrass#GetConfigurationResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Merges a value into the caller's configuration.
///
/// Structure `aws.greengrass#UpdateConfigurationRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateConfigurationRequest {
    /// Path of the node merged into; absent means the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_path: Option<Vec<String>>,
    /// Required. Update time; an older time than the node's loses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// Required. The value merged in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_to_merge: Option<Document>,
}

deserialize_object!(UpdateConfigurationRequest {
    "keyPath" => key_path: opt,
    "timestamp" => timestamp: opt,
    "valueToMerge" => value_to_merge: opt,
});

impl Shape for UpdateConfigurationRequest {
    const ID: &'static str = "aws.greengrass#UpdateConfigurationRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.timestamp.is_none() {
            return Err(missing("UpdateConfigurationRequest", "timestamp"));
        }
        if self.value_to_merge.is_none() {
            return Err(missing("UpdateConfigurationRequest", "valueToMerge"));
        }
        Ok(())
    }
}

/// Empty answer to UpdateConfiguration.
///
/// Structure `aws.greengrass#UpdateConfigurationResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateConfigurationResponse {}

deserialize_object!(UpdateConfigurationResponse {});

impl Shape for UpdateConfigurationResponse {
    const ID: &'static str = "aws.greengrass#UpdateConfigurationResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Subscribes to changes of a component's configuration.
///
/// Structure `aws.greengrass#SubscribeToConfigurationUpdateRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeToConfigurationUpdateRequest {
    /// The component; absent means the caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
    /// Required. The subtree watched; may be empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_path: Option<Vec<String>>,
}

deserialize_object!(SubscribeToConfigurationUpdateRequest {
    "componentName" => component_name: opt,
    "keyPath" => key_path: opt,
});

impl Shape for SubscribeToConfigurationUpdateRequest {
    const ID: &'static str = "aws.greengrass#SubscribeToConfigurationUpdateRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.key_path.is_none() {
            return Err(missing("SubscribeToConfigurationUpdateRequest", "keyPath"));
        }
        Ok(())
    }
}

/// Empty answer to SubscribeToConfigurationUpdate, sent before any event.
///
/// Structure `aws.greengrass#SubscribeToConfigurationUpdateResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscribeToConfigurationUpdateResponse {}

deserialize_object!(SubscribeToConfigurationUpdateResponse {});

impl Shape for SubscribeToConfigurationUpdateResponse {
    const ID: &'static str = "aws.greengrass#SubscribeToConfigurationUpdateResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Event of SubscribeToConfigurationUpdate.
///
/// Union `aws.greengrass#ConfigurationUpdateEvents`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationUpdateEvents {
    /// One changed node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration_update_event: Option<ConfigurationUpdateEvent>,
}

deserialize_object!(ConfigurationUpdateEvents {
    "configurationUpdateEvent" => configuration_update_event: opt,
});

impl Shape for ConfigurationUpdateEvents {
    const ID: &'static str = "aws.greengrass#ConfigurationUpdateEvents";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union(
            "ConfigurationUpdateEvents",
            &[self.configuration_update_event.is_some()],
        )?;
        Ok(())
    }
}

impl From<ConfigurationUpdateEvent> for ConfigurationUpdateEvents {
    /// Sets `configurationUpdateEvent` as the only member.
    fn from(member: ConfigurationUpdateEvent) -> Self {
        Self {
            configuration_update_event: Some(member),
        }
    }
}

/// A configuration node changed; the event carries no value.
///
/// Structure `aws.greengrass#ConfigurationUpdateEvent`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationUpdateEvent {
    /// The component.
    pub component_name: String,
    /// The changed node's path below `configuration`.
    pub key_path: Vec<String>,
}

deserialize_object!(ConfigurationUpdateEvent {
    "componentName" => component_name: req,
    "keyPath" => key_path: req,
});

impl Shape for ConfigurationUpdateEvent {
    const ID: &'static str = "aws.greengrass#ConfigurationUpdateEvent";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Subscribes to requests to validate configuration a deployment is about to apply.
///
/// Structure `aws.greengrass#SubscribeToValidateConfigurationUpdatesRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscribeToValidateConfigurationUpdatesRequest {}

deserialize_object!(SubscribeToValidateConfigurationUpdatesRequest {});

impl Shape for SubscribeToValidateConfigurationUpdatesRequest {
    const ID: &'static str = "aws.greengrass#SubscribeToValidateConfigurationUpdatesRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Empty answer to SubscribeToValidateConfigurationUpdates, sent before any event.
///
/// Structure `aws.greengrass#SubscribeToValidateConfigurationUpdatesResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscribeToValidateConfigurationUpdatesResponse {}

deserialize_object!(SubscribeToValidateConfigurationUpdatesResponse {});

impl Shape for SubscribeToValidateConfigurationUpdatesResponse {
    const ID: &'static str = "aws.greengrass#SubscribeToValidateConfigurationUpdatesResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Event of SubscribeToValidateConfigurationUpdates.
///
/// Union `aws.greengrass#ValidateConfigurationUpdateEvents`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateConfigurationUpdateEvents {
    /// The configuration to validate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validate_configuration_update_event: Option<ValidateConfigurationUpdateEvent>,
}

deserialize_object!(ValidateConfigurationUpdateEvents {
    "validateConfigurationUpdateEvent" => validate_configuration_update_event: opt,
});

impl Shape for ValidateConfigurationUpdateEvents {
    const ID: &'static str = "aws.greengrass#ValidateConfigurationUpdateEvents";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union(
            "ValidateConfigurationUpdateEvents",
            &[self.validate_configuration_update_event.is_some()],
        )?;
        Ok(())
    }
}

impl From<ValidateConfigurationUpdateEvent> for ValidateConfigurationUpdateEvents {
    /// Sets `validateConfigurationUpdateEvent` as the only member.
    fn from(member: ValidateConfigurationUpdateEvent) -> Self {
        Self {
            validate_configuration_update_event: Some(member),
        }
    }
}

/// Configuration a deployment is about to apply.
///
/// Structure `aws.greengrass#ValidateConfigurationUpdateEvent`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateConfigurationUpdateEvent {
    /// The new configuration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Document>,
    /// The deployment.
    pub deployment_id: String,
}

deserialize_object!(ValidateConfigurationUpdateEvent {
    "configuration" => configuration: opt,
    "deploymentId" => deployment_id: req,
});

impl Shape for ValidateConfigurationUpdateEvent {
    const ID: &'static str = "aws.greengrass#ValidateConfigurationUpdateEvent";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Answers a validation event.
///
/// Structure `aws.greengrass#SendConfigurationValidityReportRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendConfigurationValidityReportRequest {
    /// Required. The verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration_validity_report: Option<ConfigurationValidityReport>,
}

deserialize_object!(SendConfigurationValidityReportRequest {
    "configurationValidityReport" => configuration_validity_report: opt,
});

impl Shape for SendConfigurationValidityReportRequest {
    const ID: &'static str = "aws.greengrass#SendConfigurationValidityReportRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.configuration_validity_report.is_none() {
            return Err(missing(
                "SendConfigurationValidityReportRequest",
                "configurationValidityReport",
            ));
        }
        if let Some(v) = &self.configuration_validity_report {
            v.validate()?;
        }
        Ok(())
    }
}

/// A component's verdict on configuration a deployment is about to apply.
///
/// Structure `aws.greengrass#ConfigurationValidityReport`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationValidityReport {
    /// Required. Accepted or rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ConfigurationValidityStatus>,
    /// Required. The deployment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Why, in free text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

deserialize_object!(ConfigurationValidityReport {
    "status" => status: opt,
    "deploymentId" => deployment_id: opt,
    "message" => message: opt,
});

impl Shape for ConfigurationValidityReport {
    const ID: &'static str = "aws.greengrass#ConfigurationValidityReport";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.status.is_none() {
            return Err(missing("ConfigurationValidityReport", "status"));
        }
        if self.deployment_id.is_none() {
            return Err(missing("ConfigurationValidityReport", "deploymentId"));
        }
        Ok(())
    }
}

/// Empty answer to SendConfigurationValidityReport.
///
/// Structure `aws.greengrass#SendConfigurationValidityReportResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SendConfigurationValidityReportResponse {}

deserialize_object!(SendConfigurationValidityReportResponse {});

impl Shape for SendConfigurationValidityReportResponse {
    const ID: &'static str = "aws.greengrass#SendConfigurationValidityReportResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

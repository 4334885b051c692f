//! The secret manager component: GetSecretValue (`protocol.md` §7.5).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use serde::Serialize;

use super::{Blob, Shape, ShapeError, check_union, missing};

/// Reads a secret.
///
/// Structure `aws.greengrass#GetSecretValueRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetSecretValueRequest {
    /// Required. The secret's name or ARN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
    /// The version to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The staging label to read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,
    /// Whether to fetch from the cloud instead of the local cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<bool>,
}

deserialize_object!(GetSecretValueRequest {
    "secretId" => secret_id: opt,
    "versionId" => version_id: opt,
    "versionStage" => version_stage: opt,
    "refresh" => refresh: opt,
});

impl Shape for GetSecretValueRequest {
    const ID: &'static str = "aws.greengrass#GetSecretValueRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.secret_id.is_none() {
            return Err(missing("GetSecretValueRequest", "secretId"));
        }
        Ok(())
    }
}

/// A secret's value.
///
/// Structure `aws.greengrass#GetSecretValueResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetSecretValueResponse {
    /// The secret's ARN.
    pub secret_id: String,
    /// The version read.
    pub version_id: String,
    /// The version's staging labels.
    pub version_stage: Vec<String>,
    /// The value.
    pub secret_value: SecretValue,
}

deserialize_object!(GetSecretValueResponse {
    "secretId" => secret_id: req,
    "versionId" => version_id: req,
    "versionStage" => version_stage: req,
    "secretValue" => secret_value: req,
});

impl Shape for GetSecretValueResponse {
    const ID: &'static str = "aws.greengrass#GetSecretValueResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        self.secret_value.validate()?;
        Ok(())
    }
}

/// A secret's value, text or binary.
///
/// Union `aws.greengrass#SecretValue`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretValue {
    /// A text secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_string: Option<String>,
    /// A binary secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_binary: Option<Blob>,
}

deserialize_object!(SecretValue {
    "secretString" => secret_string: opt,
    "secretBinary" => secret_binary: opt,
});

impl Shape for SecretValue {
    const ID: &'static str = "aws.greengrass#SecretValue";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union(
            "SecretValue",
            &[self.secret_string.is_some(), self.secret_binary.is_some()],
        )?;
        Ok(())
    }
}

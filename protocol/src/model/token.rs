//! Stream manager's token check: ValidateAuthorizationToken (`protocol.md`
//! §7.4.15).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use serde::Serialize;

use super::{Shape, ShapeError, missing};

/// Checks an IPC authorization token.
///
/// Structure `aws.greengrass#ValidateAuthorizationTokenRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateAuthorizationTokenRequest {
    /// Required. The token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

deserialize_object!(ValidateAuthorizationTokenRequest {
    "token" => token: opt,
});

impl Shape for ValidateAuthorizationTokenRequest {
    const ID: &'static str = "aws.greengrass#ValidateAuthorizationTokenRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.token.is_none() {
            return Err(missing("ValidateAuthorizationTokenRequest", "token"));
        }
        Ok(())
    }
}

/// Answer to ValidateAuthorizationToken; the nucleus only ever says `true`.
///
/// Structure `aws.greengrass#ValidateAuthorizationTokenResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateAuthorizationTokenResponse {
    /// Whether the token is known.
    pub is_valid: bool,
}

deserialize_object!(ValidateAuthorizationTokenResponse {
    "isValid" => is_valid: req,
});

impl Shape for ValidateAuthorizationTokenResponse {
    const ID: &'static str = "aws.greengrass#ValidateAuthorizationTokenResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

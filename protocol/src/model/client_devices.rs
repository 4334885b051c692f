//! The client device auth component: certificates, identities and authorization
//! of local MQTT clients (`protocol.md` §7.5).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use serde::Serialize;

use super::{CertificateType, Shape, ShapeError, check_union, missing};

/// Subscribes to rotations of a certificate.
///
/// Structure `aws.greengrass#SubscribeToCertificateUpdatesRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeToCertificateUpdatesRequest {
    /// Required. Which certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_options: Option<CertificateOptions>,
}

deserialize_object!(SubscribeToCertificateUpdatesRequest {
    "certificateOptions" => certificate_options: opt,
});

impl Shape for SubscribeToCertificateUpdatesRequest {
    const ID: &'static str = "aws.greengrass#SubscribeToCertificateUpdatesRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.certificate_options.is_none() {
            return Err(missing(
                "SubscribeToCertificateUpdatesRequest",
                "certificateOptions",
            ));
        }
        if let Some(v) = &self.certificate_options {
            v.validate()?;
        }
        Ok(())
    }
}

/// Which certificate to follow.
///
/// Structure `aws.greengrass#CertificateOptions`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateOptions {
    /// Required. The certificate type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_type: Option<CertificateType>,
}

deserialize_object!(CertificateOptions {
    "certificateType" => certificate_type: opt,
});

impl Shape for CertificateOptions {
    const ID: &'static str = "aws.greengrass#CertificateOptions";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.certificate_type.is_none() {
            return Err(missing("CertificateOptions", "certificateType"));
        }
        Ok(())
    }
}

/// Empty answer to SubscribeToCertificateUpdates, sent before any event.
///
/// Structure `aws.greengrass#SubscribeToCertificateUpdatesResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscribeToCertificateUpdatesResponse {}

deserialize_object!(SubscribeToCertificateUpdatesResponse {});

impl Shape for SubscribeToCertificateUpdatesResponse {
    const ID: &'static str = "aws.greengrass#SubscribeToCertificateUpdatesResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Event of SubscribeToCertificateUpdates.
///
/// Union `aws.greengrass#CertificateUpdateEvent`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateUpdateEvent {
    /// The new certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_update: Option<CertificateUpdate>,
}

deserialize_object!(CertificateUpdateEvent {
    "certificateUpdate" => certificate_update: opt,
});

impl Shape for CertificateUpdateEvent {
    const ID: &'static str = "aws.greengrass#CertificateUpdateEvent";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union(
            "CertificateUpdateEvent",
            &[self.certificate_update.is_some()],
        )?;
        Ok(())
    }
}

impl From<CertificateUpdate> for CertificateUpdateEvent {
    /// Sets `certificateUpdate` as the only member.
    fn from(member: CertificateUpdate) -> Self {
        Self {
            certificate_update: Some(member),
        }
    }
}

/// A rotated certificate and its keys, PEM-encoded.
///
/// Structure `aws.greengrass#CertificateUpdate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateUpdate {
    /// The private key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// The public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The CA chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificates: Option<Vec<String>>,
}

deserialize_object!(CertificateUpdate {
    "privateKey" => private_key: opt,
    "publicKey" => public_key: opt,
    "certificate" => certificate: opt,
    "caCertificates" => ca_certificates: opt,
});

impl Shape for CertificateUpdate {
    const ID: &'static str = "aws.greengrass#CertificateUpdate";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Checks a client device's credential.
///
/// Structure `aws.greengrass#VerifyClientDeviceIdentityRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyClientDeviceIdentityRequest {
    /// Required. The credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<ClientDeviceCredential>,
}

deserialize_object!(VerifyClientDeviceIdentityRequest {
    "credential" => credential: opt,
});

impl Shape for VerifyClientDeviceIdentityRequest {
    const ID: &'static str = "aws.greengrass#VerifyClientDeviceIdentityRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.credential.is_none() {
            return Err(missing("VerifyClientDeviceIdentityRequest", "credential"));
        }
        if let Some(v) = &self.credential {
            v.validate()?;
        }
        Ok(())
    }
}

/// A client device's credential.
///
/// Union `aws.greengrass#ClientDeviceCredential`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientDeviceCredential {
    /// The device's PEM certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_device_certificate: Option<String>,
}

deserialize_object!(ClientDeviceCredential {
    "clientDeviceCertificate" => client_device_certificate: opt,
});

impl Shape for ClientDeviceCredential {
    const ID: &'static str = "aws.greengrass#ClientDeviceCredential";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union(
            "ClientDeviceCredential",
            &[self.client_device_certificate.is_some()],
        )?;
        Ok(())
    }
}

/// Whether a client device is known.
///
/// Structure `aws.greengrass#VerifyClientDeviceIdentityResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyClientDeviceIdentityResponse {
    /// The verdict.
    pub is_valid_client_device: bool,
}

deserialize_object!(VerifyClientDeviceIdentityResponse {
    "isValidClientDevice" => is_valid_client_device: req,
});

impl Shape for VerifyClientDeviceIdentityResponse {
    const ID: &'static str = "aws.greengrass#VerifyClientDeviceIdentityResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Exchanges a client device's credentials for a session token.
///
/// Structure `aws.greengrass#GetClientDeviceAuthTokenRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetClientDeviceAuthTokenRequest {
    /// Required. The credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialDocument>,
}

deserialize_object!(GetClientDeviceAuthTokenRequest {
    "credential" => credential: opt,
});

impl Shape for GetClientDeviceAuthTokenRequest {
    const ID: &'static str = "aws.greengrass#GetClientDeviceAuthTokenRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.credential.is_none() {
            return Err(missing("GetClientDeviceAuthTokenRequest", "credential"));
        }
        if let Some(v) = &self.credential {
            v.validate()?;
        }
        Ok(())
    }
}

/// Credentials of a client device.
///
/// Union `aws.greengrass#CredentialDocument`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialDocument {
    /// MQTT connection credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_credential: Option<MqttCredential>,
}

deserialize_object!(CredentialDocument {
    "mqttCredential" => mqtt_credential: opt,
});

impl Shape for CredentialDocument {
    const ID: &'static str = "aws.greengrass#CredentialDocument";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union("CredentialDocument", &[self.mqtt_credential.is_some()])?;
        Ok(())
    }
}

impl From<MqttCredential> for CredentialDocument {
    /// Sets `mqttCredential` as the only member.
    fn from(member: MqttCredential) -> Self {
        Self {
            mqtt_credential: Some(member),
        }
    }
}

/// What a client device presented when it connected over MQTT.
///
/// Structure `aws.greengrass#MQTTCredential`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MqttCredential {
    /// The MQTT client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The device's PEM certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
    /// The MQTT user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The MQTT password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

deserialize_object!(MqttCredential {
    "clientId" => client_id: opt,
    "certificatePem" => certificate_pem: opt,
    "username" => username: opt,
    "password" => password: opt,
});

impl Shape for MqttCredential {
    const ID: &'static str = "aws.greengrass#MQTTCredential";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// A client device session token.
///
/// Structure `aws.greengrass#GetClientDeviceAuthTokenResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetClientDeviceAuthTokenResponse {
    /// The token.
    pub client_device_auth_token: String,
}

deserialize_object!(GetClientDeviceAuthTokenResponse {
    "clientDeviceAuthToken" => client_device_auth_token: req,
});

impl Shape for GetClientDeviceAuthTokenResponse {
    const ID: &'static str = "aws.greengrass#GetClientDeviceAuthTokenResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Asks whether a client device may perform an action.
///
/// Structure `aws.greengrass#AuthorizeClientDeviceActionRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeClientDeviceActionRequest {
    /// Required. The device's session token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_device_auth_token: Option<String>,
    /// Required. The action, e.g. `mqtt:publish`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Required. The resource, e.g. `mqtt:topic:a/b`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

deserialize_object!(AuthorizeClientDeviceActionRequest {
    "clientDeviceAuthToken" => client_device_auth_token: opt,
    "operation" => operation: opt,
    "resource" => resource: opt,
});

impl Shape for AuthorizeClientDeviceActionRequest {
    const ID: &'static str = "aws.greengrass#AuthorizeClientDeviceActionRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.client_device_auth_token.is_none() {
            return Err(missing(
                "AuthorizeClientDeviceActionRequest",
                "clientDeviceAuthToken",
            ));
        }
        if self.operation.is_none() {
            return Err(missing("AuthorizeClientDeviceActionRequest", "operation"));
        }
        if self.resource.is_none() {
            return Err(missing("AuthorizeClientDeviceActionRequest", "resource"));
        }
        Ok(())
    }
}

/// Whether a client device may perform an action.
///
/// Structure `aws.greengrass#AuthorizeClientDeviceActionResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizeClientDeviceActionResponse {
    /// The verdict.
    pub is_authorized: bool,
}

deserialize_object!(AuthorizeClientDeviceActionResponse {
    "isAuthorized" => is_authorized: req,
});

impl Shape for AuthorizeClientDeviceActionResponse {
    const ID: &'static str = "aws.greengrass#AuthorizeClientDeviceActionResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

//! The shadow manager component: thing shadows (`protocol.md` §7.5).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use serde::Serialize;

use super::{Blob, Shape, ShapeError, Timestamp, missing};

/// Reads a shadow document.
///
/// Structure `aws.greengrass#GetThingShadowRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetThingShadowRequest {
    /// Required. The thing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    /// The named shadow; empty or absent means the classic shadow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_name: Option<String>,
}

deserialize_object!(GetThingShadowRequest {
    "thingName" => thing_name: opt,
    "shadowName" => shadow_name: opt,
});

impl Shape for GetThingShadowRequest {
    const ID: &'static str = "aws.greengrass#GetThingShadowRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.thing_name.is_none() {
            return Err(missing("GetThingShadowRequest", "thingName"));
        }
        Ok(())
    }
}

/// A shadow document.
///
/// Structure `aws.greengrass#GetThingShadowResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetThingShadowResponse {
    /// The document as JSON bytes.
    pub payload: Blob,
}

deserialize_object!(GetThingShadowResponse {
    "payload" => payload: req,
});

impl Shape for GetThingShadowResponse {
    const ID: &'static str = "aws.greengrass#GetThingShadowResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Updates a shadow document.
///
/// Structure `aws.greengrass#UpdateThingShadowRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingShadowRequest {
    /// Required. The thing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    /// The named shadow; empty or absent means the classic shadow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_name: Option<String>,
    /// Required. The update as JSON bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Blob>,
}

deserialize_object!(UpdateThingShadowRequest {
    "thingName" => thing_name: opt,
    "shadowName" => shadow_name: opt,
    "payload" => payload: opt,
});

impl Shape for UpdateThingShadowRequest {
    const ID: &'static str = "aws.greengrass#UpdateThingShadowRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.thing_name.is_none() {
            return Err(missing("UpdateThingShadowRequest", "thingName"));
        }
        if self.payload.is_none() {
            return Err(missing("UpdateThingShadowRequest", "payload"));
        }
        Ok(())
    }
}

/// The updated shadow document.
///
/// Structure `aws.greengrass#UpdateThingShadowResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateThingShadowResponse {
    /// The document as JSON bytes.
    pub payload: Blob,
}

deserialize_object!(UpdateThingShadowResponse {
    "payload" => payload: req,
});

impl Shape for UpdateThingShadowResponse {
    const ID: &'static str = "aws.greengrass#UpdateThingShadowResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Deletes a shadow.
///
/// Structure `aws.greengrass#DeleteThingShadowRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteThingShadowRequest {
    /// Required. The thing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    /// The named shadow; empty or absent means the classic shadow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow_name: Option<String>,
}

deserialize_object!(DeleteThingShadowRequest {
    "thingName" => thing_name: opt,
    "shadowName" => shadow_name: opt,
});

impl Shape for DeleteThingShadowRequest {
    const ID: &'static str = "aws.greengrass#DeleteThingShadowRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.thing_name.is_none() {
            return Err(missing("DeleteThingShadowRequest", "thingName"));
        }
        Ok(())
    }
}

/// Answer to DeleteThingShadow.
///
/// Structure `aws.greengrass#DeleteThingShadowResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteThingShadowResponse {
    /// The response document as JSON bytes.
    pub payload: Blob,
}

deserialize_object!(DeleteThingShadowResponse {
    "payload" => payload: req,
});

impl Shape for DeleteThingShadowResponse {
    const ID: &'static str = "aws.greengrass#DeleteThingShadowResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Lists a thing's named shadows.
///
/// Structure `aws.greengrass#ListNamedShadowsForThingRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListNamedShadowsForThingRequest {
    /// Required. The thing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    /// Continuation token from a previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// Names per page, 1 to 100; absent means 25.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<i64>,
}

deserialize_object!(ListNamedShadowsForThingRequest {
    "thingName" => thing_name: opt,
    "nextToken" => next_token: opt,
    "pageSize" => page_size: opt,
});

impl Shape for ListNamedShadowsForThingRequest {
    const ID: &'static str = "aws.greengrass#ListNamedShadowsForThingRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.thing_name.is_none() {
            return Err(missing("ListNamedShadowsForThingRequest", "thingName"));
        }
        Ok(())
    }
}

/// A page of a thing's named shadows.
///
/// Structure `aws.greengrass#ListNamedShadowsForThingResponse`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListNamedShadowsForThingResponse {
    /// Shadow names.
    pub results: Vec<String>,
    /// When the list was produced.
    pub timestamp: Timestamp,
    /// Token for the next page, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

deserialize_object!(ListNamedShadowsForThingResponse {
    "results" => results: req,
    "timestamp" => timestamp: req,
    "nextToken" => next_token: opt,
});

impl Shape for ListNamedShadowsForThingResponse {
    const ID: &'static str = "aws.greengrass#ListNamedShadowsForThingResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

//! The caller's own lifecycle: UpdateState, component update notifications,
//! PauseComponent and ResumeComponent (`protocol.md` §7.4.5, §7.4.13, §7.4.14,
//! §7.5).
//!
//! See [`crate::model`] for how optional and required members, unions and
//! enums behave.

use serde::Serialize;

use super::{ReportedLifecycleState, Shape, ShapeError, check_union, missing};

/// Reports the caller's lifecycle state.
///
/// Structure `aws.greengrass#UpdateStateRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStateRequest {
    /// Required. The state to report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ReportedLifecycleState>,
}

deserialize_object!(UpdateStateRequest {
    "state" => state: opt,
});

impl Shape for UpdateStateRequest {
    const ID: &'static str = "aws.greengrass#UpdateStateRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.state.is_none() {
            return Err(missing("UpdateStateRequest", "state"));
        }
        Ok(())
    }
}

/// Empty answer to UpdateState.
///
/// Structure `aws.greengrass#UpdateStateResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct UpdateStateResponse {}

deserialize_object!(UpdateStateResponse {});

impl Shape for UpdateStateResponse {
    const ID: &'static str = "aws.greengrass#UpdateStateResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Subscribes to notifications before and after deployments update components.
///
/// Structure `aws.greengrass#SubscribeToComponentUpdatesRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscribeToComponentUpdatesRequest {}

deserialize_object!(SubscribeToComponentUpdatesRequest {});

impl Shape for SubscribeToComponentUpdatesRequest {
    const ID: &'static str = "aws.greengrass#SubscribeToComponentUpdatesRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Empty answer to SubscribeToComponentUpdates, sent before any event.
///
/// Structure `aws.greengrass#SubscribeToComponentUpdatesResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SubscribeToComponentUpdatesResponse {}

deserialize_object!(SubscribeToComponentUpdatesResponse {});

impl Shape for SubscribeToComponentUpdatesResponse {
    const ID: &'static str = "aws.greengrass#SubscribeToComponentUpdatesResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Event of SubscribeToComponentUpdates.
///
/// Union `aws.greengrass#ComponentUpdatePolicyEvents`.
/// Exactly one member must be set; [`Shape::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentUpdatePolicyEvents {
    /// A deployment is about to update components.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_update_event: Option<PreComponentUpdateEvent>,
    /// A deployment has updated components.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_update_event: Option<PostComponentUpdateEvent>,
}

deserialize_object!(ComponentUpdatePolicyEvents {
    "preUpdateEvent" => pre_update_event: opt,
    "postUpdateEvent" => post_update_event: opt,
});

impl Shape for ComponentUpdatePolicyEvents {
    const ID: &'static str = "aws.greengrass#ComponentUpdatePolicyEvents";

    fn validate(&self) -> Result<(), ShapeError> {
        check_union(
            "ComponentUpdatePolicyEvents",
            &[
                self.pre_update_event.is_some(),
                self.post_update_event.is_some(),
            ],
        )?;
        Ok(())
    }
}

impl From<PreComponentUpdateEvent> for ComponentUpdatePolicyEvents {
    /// Sets `preUpdateEvent` as the only member.
    fn from(member: PreComponentUpdateEvent) -> Self {
        Self {
            pre_update_event: Some(member),
            ..Self::default()
        }
    }
}

impl From<PostComponentUpdateEvent> for ComponentUpdatePolicyEvents {
    /// Sets `postUpdateEvent` as the only member.
    fn from(member: PostComponentUpdateEvent) -> Self {
        Self {
            post_update_event: Some(member),
            ..Self::default()
        }
    }
}

/// A deployment is about to update components; the subscriber may defer it.
///
/// Structure `aws.greengrass#PreComponentUpdateEvent`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreComponentUpdateEvent {
    /// The deployment.
    pub deployment_id: String,
    /// Whether the nucleus restarts for the update.
    pub is_ggc_restarting: bool,
}

deserialize_object!(PreComponentUpdateEvent {
    "deploymentId" => deployment_id: req,
    "isGgcRestarting" => is_ggc_restarting: req,
});

impl Shape for PreComponentUpdateEvent {
    const ID: &'static str = "aws.greengrass#PreComponentUpdateEvent";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// A deployment has updated components.
///
/// Structure `aws.greengrass#PostComponentUpdateEvent`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostComponentUpdateEvent {
    /// The deployment.
    pub deployment_id: String,
}

deserialize_object!(PostComponentUpdateEvent {
    "deploymentId" => deployment_id: req,
});

impl Shape for PostComponentUpdateEvent {
    const ID: &'static str = "aws.greengrass#PostComponentUpdateEvent";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Answers a pre-update event: proceed or postpone.
///
/// Structure `aws.greengrass#DeferComponentUpdateRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeferComponentUpdateRequest {
    /// Required. The deployment being answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Free text; the nucleus only logs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// 0 lets the update proceed; more postpones it by that many milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recheck_after_ms: Option<i64>,
}

deserialize_object!(DeferComponentUpdateRequest {
    "deploymentId" => deployment_id: opt,
    "message" => message: opt,
    "recheckAfterMs" => recheck_after_ms: opt,
});

impl Shape for DeferComponentUpdateRequest {
    const ID: &'static str = "aws.greengrass#DeferComponentUpdateRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.deployment_id.is_none() {
            return Err(missing("DeferComponentUpdateRequest", "deploymentId"));
        }
        Ok(())
    }
}

/// Empty answer to DeferComponentUpdate.
///
/// Structure `aws.greengrass#DeferComponentUpdateResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeferComponentUpdateResponse {}

deserialize_object!(DeferComponentUpdateResponse {});

impl Shape for DeferComponentUpdateResponse {
    const ID: &'static str = "aws.greengrass#DeferComponentUpdateResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Pauses a generic component's processes.
///
/// Structure `aws.greengrass#PauseComponentRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseComponentRequest {
    /// Required. The component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
}

deserialize_object!(PauseComponentRequest {
    "componentName" => component_name: opt,
});

impl Shape for PauseComponentRequest {
    const ID: &'static str = "aws.greengrass#PauseComponentRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.component_name.is_none() {
            return Err(missing("PauseComponentRequest", "componentName"));
        }
        Ok(())
    }
}

/// Empty answer to PauseComponent.
///
/// Structure `aws.greengrass#PauseComponentResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PauseComponentResponse {}

deserialize_object!(PauseComponentResponse {});

impl Shape for PauseComponentResponse {
    const ID: &'static str = "aws.greengrass#PauseComponentResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

/// Resumes a paused component.
///
/// Structure `aws.greengrass#ResumeComponentRequest`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeComponentRequest {
    /// Required. The component.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
}

deserialize_object!(ResumeComponentRequest {
    "componentName" => component_name: opt,
});

impl Shape for ResumeComponentRequest {
    const ID: &'static str = "aws.greengrass#ResumeComponentRequest";

    fn validate(&self) -> Result<(), ShapeError> {
        if self.component_name.is_none() {
            return Err(missing("ResumeComponentRequest", "componentName"));
        }
        Ok(())
    }
}

/// Empty answer to ResumeComponent.
///
/// Structure `aws.greengrass#ResumeComponentResponse`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ResumeComponentResponse {}

deserialize_object!(ResumeComponentResponse {});

impl Shape for ResumeComponentResponse {
    const ID: &'static str = "aws.greengrass#ResumeComponentResponse";

    fn validate(&self) -> Result<(), ShapeError> {
        Ok(())
    }
}

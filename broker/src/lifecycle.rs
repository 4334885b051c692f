//! Lifecycle operations over IPC (`semantics.md` §5.2, §5.5): UpdateState
//! from a component about itself, and the CLI operations ListComponents,
//! GetComponentDetails, RestartComponent and StopComponent.

use bytes::Bytes;
use ggipc_protocol::model::{
    ComponentDetails, GetComponentDetailsRequest, GetComponentDetailsResponse, IpcError,
    LifecycleState as WireState, ListComponentsResponse, Operation, ReportedLifecycleState,
    RequestStatus, RestartComponentRequest, RestartComponentResponse, Shape, StopComponentRequest,
    StopComponentResponse, UpdateStateRequest,
};

use crate::connection::Session;
use crate::states::LifecycleState;

/// The CLI component's own name; it and the `greengrass-cli#…` identities
/// it mints skip the `aws.greengrass.Cli` policy check, as in the CLI.
const CLI_COMPONENT: &str = "aws.greengrass.Cli";
/// Prefix of CLI identities (see `README.md`, "The CLI identity").
pub(crate) const CLI_PRINCIPAL_PREFIX: &str = "greengrass-cli#";

fn wire_state(state: LifecycleState) -> WireState {
    WireState::from_wire(state.as_str())
}

/// Handles the lifecycle operations; returns false for any other.
pub(crate) fn handle(
    session: &mut Session,
    op: Operation,
    stream_id: i32,
    payload: &Bytes,
) -> bool {
    let result = match op {
        Operation::UpdateState => update_state(session, payload),
        Operation::ListComponents => list_components(session),
        Operation::GetComponentDetails => component_details(session, payload),
        Operation::RestartComponent => restart_or_stop(session, payload, true),
        Operation::StopComponent => restart_or_stop(session, payload, false),
        _ => return false,
    };
    match result {
        Ok(body) => session.respond(stream_id, op, body),
        Err(e) => session.error(stream_id, &e),
    }
    true
}

fn parse<T: Shape>(payload: &Bytes) -> Result<T, IpcError> {
    T::from_payload(payload).map_err(|e| IpcError::invalid_arguments(e.to_string()))
}

/// The nucleus' transitions a component may report about itself; others
/// are ignored (logged), and the call still succeeds.
fn update_state(session: &Session, payload: &Bytes) -> Result<Bytes, IpcError> {
    use LifecycleState::{Errored, Finished, New, Running, Starting, Stopping};
    let request: UpdateStateRequest = parse(payload)?;
    let wanted = match request.state {
        Some(ReportedLifecycleState::Running) => Running,
        Some(ReportedLifecycleState::Errored) => Errored,
        other => {
            return Err(IpcError::invalid_arguments(format!(
                "state must be RUNNING or ERRORED, got {:?}",
                other.as_ref().map(ReportedLifecycleState::as_str)
            )));
        }
    };
    let not_found = || {
        IpcError::resource_not_found_named(
            "Component with given name not found",
            "Component",
            session.component.to_string(),
        )
    };
    let runtime = session.broker.runtime().ok_or_else(not_found)?;
    let current = runtime
        .states
        .get(&session.component)
        .ok_or_else(not_found)?;
    let allowed = matches!(
        (current, wanted),
        (New, Errored)
            | (Starting, Running | Errored | Finished)
            | (Running, Errored | Finished)
            | (Stopping, Errored | Finished)
    );
    if allowed {
        runtime.states.set(&session.component, wanted);
    } else {
        tracing::warn!(
            component = %session.component,
            from = %current,
            to = %wanted,
            "UpdateState ignored: not a transition a component may report"
        );
    }
    Ok(Bytes::from_static(b"{}"))
}

/// CLI operations are authorized against `aws.greengrass.Cli`, except for
/// the CLI itself and its identities.
fn authorize_cli(session: &Session, op: Operation, resource: &str) -> Result<(), IpcError> {
    let caller = &*session.component;
    if caller == CLI_COMPONENT || caller.starts_with(CLI_PRINCIPAL_PREFIX) {
        return Ok(());
    }
    session.authorize(op, resource)
}

fn details(session: &Session, name: &str) -> Option<ComponentDetails> {
    let runtime = session.broker.runtime()?;
    let state = runtime.states.get(name)?;
    let deployment = session.broker.deployment();
    let component = deployment.components.get(name)?;
    // The live configuration, with updates made over IPC; the reference
    // omits it when there is none.
    let configuration = session
        .broker
        .config_store()
        .get(name, &[])
        .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()));
    Some(ComponentDetails {
        component_name: name.to_owned(),
        version: Some(component.version.clone()),
        state: wire_state(state),
        configuration,
    })
}

fn list_components(session: &Session) -> Result<Bytes, IpcError> {
    authorize_cli(session, Operation::ListComponents, "*")?;
    let names: Vec<String> = session
        .broker
        .runtime()
        .map(|r| r.states.all().into_iter().map(|(n, _, _)| n).collect())
        .unwrap_or_default();
    let components = names.iter().filter_map(|n| details(session, n)).collect();
    Ok(ListComponentsResponse {
        components: Some(components),
    }
    .to_payload())
}

/// The CLI's answer for a component it does not know (`semantics.md` §5.5).
fn not_found(name: &str) -> IpcError {
    IpcError::resource_not_found(format!(
        "Component with name {name} not found in Greengrass"
    ))
}

fn requested_name(name: Option<String>) -> Result<String, IpcError> {
    name.filter(|n| !n.is_empty())
        .ok_or_else(|| IpcError::invalid_arguments("Component name cannot be empty"))
}

fn component_details(session: &Session, payload: &Bytes) -> Result<Bytes, IpcError> {
    let request: GetComponentDetailsRequest = parse(payload)?;
    let name = requested_name(request.component_name)?;
    authorize_cli(session, Operation::GetComponentDetails, &name)?;
    let component_details = details(session, &name).ok_or_else(|| not_found(&name))?;
    Ok(GetComponentDetailsResponse { component_details }.to_payload())
}

fn restart_or_stop(session: &Session, payload: &Bytes, restart: bool) -> Result<Bytes, IpcError> {
    let (name, op) = if restart {
        let r: RestartComponentRequest = parse(payload)?;
        (r.component_name, Operation::RestartComponent)
    } else {
        let r: StopComponentRequest = parse(payload)?;
        (r.component_name, Operation::StopComponent)
    };
    let name = requested_name(name)?;
    authorize_cli(session, op, &name)?;
    // The CLI answers an unknown component with ResourceNotFoundError, not
    // the modeled ComponentNotFoundError.
    let runtime = session
        .broker
        .runtime()
        .filter(|r| r.states.get(&name).is_some())
        .ok_or_else(|| not_found(&name))?;
    let Some(supervisor) = runtime.supervisor.upgrade() else {
        return Err(IpcError::service("the broker is stopping"));
    };
    tracing::info!(component = %name, by = %session.component, restart, "component {}", if restart { "restart requested" } else { "stop requested" });
    // The answer is "request accepted", as the CLI's: the work happens after,
    // in the order of the requests.
    supervisor.request(&name, restart);
    Ok(if restart {
        RestartComponentResponse {
            restart_status: RequestStatus::Succeeded,
            message: None,
        }
        .to_payload()
    } else {
        StopComponentResponse {
            stop_status: RequestStatus::Succeeded,
            message: None,
        }
        .to_payload()
    })
}

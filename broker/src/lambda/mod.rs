//! The Lambda launcher. Lambda components are declared but not run by this
//! build: each one is reported BROKEN with that reason, so nothing silently
//! pretends to work.

use tokio::sync::watch;

use crate::config::Component;
use crate::states::LifecycleState;
use crate::supervisor::LaunchContext;

/// Runs a Lambda component until `stop` turns true.
pub(crate) async fn supervise(
    ctx: &LaunchContext,
    component: &Component,
    _stop: watch::Receiver<bool>,
) {
    let reason = "Lambda functions are not supported by this build of ggipc-broker";
    ctx.log(&component.name)
        .write("ERROR", "lambda", "service-broken", reason, &[]);
    ctx.states.set(&component.name, LifecycleState::Broken);
}

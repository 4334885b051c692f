//! The operator identity: what `greengrass-cli` gets from the CLI
//! component. The broker mints a token for `greengrass-cli#user-<uid>` (the
//! broker's own user) and, when `broker.cliGroup` names a group, for
//! `greengrass-cli#group-<gid>`, and writes each to
//! `<root>/cli_ipc_info/user-<uid>` or `group-<gid>` as
//! `{"cli_auth_token": …, "domain_socket_path": …}`: readable by the owner
//! only, or by that group. `ggipc` finds these files the way the Greengrass
//! CLI does. These identities pass the `aws.greengrass.Cli` checks and may
//! use local pub/sub and IoT Core on any topic, as the CLI component grants.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use serde_json::json;

use crate::config::Deployment;
use crate::lifecycle::CLI_PRINCIPAL_PREFIX;

/// One operator identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CliIdentity {
    /// `greengrass-cli#user-0`, …
    pub(crate) principal: String,
    /// File name under `cli_ipc_info/`.
    pub(crate) file: String,
    /// The group allowed to read the file, if it is a group identity.
    pub(crate) gid: Option<u32>,
}

/// A group's id from its name or number.
pub(crate) fn lookup_group(group: &str) -> Option<u32> {
    if let Ok(gid) = group.parse() {
        return Some(gid);
    }
    std::fs::read_to_string("/etc/group")
        .ok()?
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() > 2 && f[0] == group)
        .and_then(|f| f[2].parse().ok())
}

/// The identities this deployment asks for.
pub(crate) fn identities(deployment: &Deployment) -> Vec<CliIdentity> {
    let uid = rustix::process::geteuid().as_raw();
    let mut out = vec![CliIdentity {
        principal: format!("{CLI_PRINCIPAL_PREFIX}user-{uid}"),
        file: format!("user-{uid}"),
        gid: None,
    }];
    match deployment
        .cli_group
        .as_deref()
        .map(|g| (g, lookup_group(g)))
    {
        Some((_, Some(gid))) => out.push(CliIdentity {
            principal: format!("{CLI_PRINCIPAL_PREFIX}group-{gid}"),
            file: format!("group-{gid}"),
            gid: Some(gid),
        }),
        Some((name, None)) => {
            tracing::warn!(
                group = name,
                "broker.cliGroup names no group; no group identity"
            );
        }
        None => {}
    }
    out
}

/// The policies every operator identity has.
pub(crate) fn access_control() -> serde_json::Value {
    json!({
        "aws.greengrass.ipc.pubsub": {"cli:pubsub": {"operations": ["*"], "resources": ["*"]}},
        "aws.greengrass.ipc.mqttproxy": {"cli:mqttproxy": {"operations": ["*"], "resources": ["*"]}},
    })
}

/// Writes `<root>/cli_ipc_info/<file>` for each identity with its token.
pub(crate) fn write_files(
    root: &Path,
    socket: &Path,
    entries: &[(CliIdentity, String)],
) -> std::io::Result<()> {
    let dir = root.join("cli_ipc_info");
    std::fs::create_dir_all(&dir)?;
    let group_readable = entries.iter().any(|(i, _)| i.gid.is_some());
    std::fs::set_permissions(
        &dir,
        std::fs::Permissions::from_mode(if group_readable { 0o750 } else { 0o700 }),
    )?;
    for (identity, token) in entries {
        let path = dir.join(&identity.file);
        let _ = std::fs::remove_file(&path);
        let mode = if identity.gid.is_some() { 0o640 } else { 0o600 };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)?;
        let body = json!({"cli_auth_token": token, "domain_socket_path": socket});
        file.write_all(body.to_string().as_bytes())?;
        if let Some(gid) = identity.gid {
            rustix::fs::chown(&path, None, Some(rustix::fs::Gid::from_raw(gid)))?;
            rustix::fs::chown(&dir, None, Some(rustix::fs::Gid::from_raw(gid)))?;
        }
    }
    Ok(())
}

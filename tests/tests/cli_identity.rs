//! The operator identity under `<root>/cli_ipc_info/`: `ggipc component …`
//! works on the device without a component's token, as `greengrass-cli`
//! does, and the files are readable only by the owner or the chosen group.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use ggipc_tests::{BrokerProcess, ComponentSpec, workspace_bin};
use serde_json::json;

fn ggipc(broker: &BrokerProcess, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(workspace_bin("ggipc"))
        .arg("--root")
        .arg(&broker.root)
        .args(args)
        .env_remove("SVCUID")
        .env_remove("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ggipc_uses_the_operator_identity_for_component_commands() {
    let worker = ComponentSpec::new("com.example.Worker", json!({})).with_recipe(json!({
        "Manifests": [{"Platform": {"os": "linux"}, "Lifecycle": {"run": "sleep 300"}}]
    }));
    let broker = BrokerProcess::start(&[worker], json!({"cliGroup": "nogroup"}));
    let info = broker.root.join("cli_ipc_info");
    let uid = rustix::process::geteuid().as_raw();
    let user_file = info.join(format!("user-{uid}"));
    let meta = std::fs::metadata(&user_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let group_file = info.join("group-65534");
    let meta = std::fs::metadata(&group_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(meta.gid(), 65534);
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&user_file).unwrap()).unwrap();
    assert_eq!(
        body["domain_socket_path"],
        broker.socket.display().to_string()
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (code, out, err) = ggipc(&broker, &["component", "list"]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.starts_with("Components currently running in Greengrass:"),
            "{out}"
        );
        if out
            .contains("Component Name: com.example.Worker\n    Version: 1.0.0\n    State: RUNNING")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{out}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (code, _, err) = ggipc(&broker, &["component", "stop", "-n", "com.example.Worker"]);
    assert_eq!(code, 0, "{err}");
    // The operator may also publish, as greengrass-cli's identities may.
    let (code, _, err) = ggipc(&broker, &["pub", "any/topic", "--json", "{}"]);
    assert_eq!(code, 0, "{err}");
    // Operator identities are not components.
    let (_, out, _) = ggipc(&broker, &["component", "list"]);
    assert!(!out.contains("greengrass-cli#"), "{out}");
    assert!(
        !broker
            .log_text()
            .contains(body["cli_auth_token"].as_str().unwrap())
    );
}

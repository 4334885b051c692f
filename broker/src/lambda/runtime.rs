//! Runtimes: which interpreter runs a function, and the Python runtime
//! shim the broker ships.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// The shim, written to `<root>/runtime/python/` at each launcher start.
const PYTHON_SHIM: &str = include_str!("lambda_runtime.py");

/// A Python interpreter, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    /// `sys.executable` as the interpreter reports it (a virtualenv's own
    /// path stays a virtualenv's path; a pyenv shim resolves to the real
    /// binary, which starts faster).
    pub(crate) path: PathBuf,
    /// `3.11` and the like.
    pub(crate) version: String,
    /// Said in the component log when the version is not the runtime's.
    pub(crate) note: Option<String>,
}

/// `python3.11` → `Some("3.11")`, `python3` → `Some("")`; None for other
/// runtimes.
fn python3_version(runtime: &str) -> Option<&str> {
    let rest = runtime.strip_prefix("python3")?;
    if rest.is_empty() {
        return Some("");
    }
    let minor = rest.strip_prefix('.')?;
    (!minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit())).then_some(rest)
}

/// An executable named `name` on `PATH` (or `name` itself when it is a
/// path).
fn on_path(name: &Path) -> Option<PathBuf> {
    if name.components().count() > 1 {
        return name.is_file().then(|| name.to_path_buf());
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Finds the interpreter for `runtime`: `interpreter` when the deployment
/// names one, else an executable named exactly as the runtime (`python3.11`,
/// as Greengrass devices provide), else `python3`. Other runtimes (Node.js,
/// Java, Python 2) are refused with the reason.
pub(crate) async fn resolve(
    runtime: &str,
    interpreter: Option<&Path>,
) -> Result<Interpreter, String> {
    let Some(wanted) = python3_version(runtime) else {
        return Err(format!(
            "unsupported runtime {runtime:?}: ggipc runs python3.x functions only"
        ));
    };
    let candidate = match interpreter {
        Some(path) => on_path(path).ok_or_else(|| {
            format!(
                "lambdaFunction.interpreter {}: executable not found",
                path.display()
            )
        })?,
        None => on_path(Path::new(runtime))
            .or_else(|| on_path(Path::new("python3")))
            .ok_or_else(|| {
                format!("runtime {runtime}: executable not found: neither {runtime} nor python3 is on PATH")
            })?,
    };
    let probe = Command::new(&candidate)
        .arg("-c")
        .arg("import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), probe)
        .await
        .map_err(|_| format!("{} did not answer within 30 s", candidate.display()))?
        .map_err(|e| format!("cannot run {}: {e}", candidate.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} does not run: {} {}",
            candidate.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let (Some(executable), Some(version)) = (lines.next(), lines.next()) else {
        return Err(format!(
            "{} is not a Python interpreter",
            candidate.display()
        ));
    };
    if !version.starts_with("3.") {
        return Err(format!(
            "{} is Python {version}; the runtime shim needs Python 3",
            candidate.display()
        ));
    }
    // A different minor version may well run the function; whether it does
    // is the function's business, but the log must say so (`lambda.md` §8
    // row 25).
    let note = (!wanted.is_empty() && format!("3{wanted}") != version)
        .then(|| format!("runtime {runtime} requested; running Python {version} ({executable})"));
    let path = if executable.is_empty() {
        candidate
    } else {
        PathBuf::from(executable)
    };
    Ok(Interpreter {
        path,
        version: version.to_owned(),
        note,
    })
}

/// Writes the shim to `<root>/runtime/python/lambda_runtime.py` (readable
/// by every user, for functions with a `posixUser`) and returns its path.
/// The write goes through a private temporary file and a rename, so a
/// worker of another function starting meanwhile never reads half a file.
pub(crate) fn install_python_shim(root: &Path, component: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    // Absolute: workers run in their work folder.
    let dir = std::path::absolute(root.join("runtime").join("python"))
        .map_err(|e| format!("runtime folder: {e}"))?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
    let path = dir.join("lambda_runtime.py");
    let temp = dir.join(format!(
        ".lambda_runtime.{}.{component}",
        std::process::id()
    ));
    std::fs::write(&temp, PYTHON_SHIM)
        .and_then(|()| std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o644)))
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            format!("cannot write {}: {e}", path.display())
        })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python3_runtimes_are_recognised() {
        assert_eq!(python3_version("python3.11"), Some(".11"));
        assert_eq!(python3_version("python3"), Some(""));
        assert_eq!(python3_version("python2.7"), None);
        assert_eq!(python3_version("nodejs14.x"), None);
        assert_eq!(python3_version("python3.x"), None);
    }

    #[tokio::test]
    async fn other_runtimes_are_refused_with_the_reason() {
        let err = resolve("nodejs14.x", None).await.unwrap_err();
        assert!(err.contains("unsupported runtime \"nodejs14.x\""), "{err}");
        let err = resolve("python3.11", Some(Path::new("/nonexistent/python")))
            .await
            .unwrap_err();
        assert!(err.contains("executable not found"), "{err}");
    }
}

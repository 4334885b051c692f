//! The file that carries configuration updates made over IPC across
//! restarts: `<root>/config/ipc-configuration.json`, mode 0600, replaced
//! atomically (write a temporary file, fsync it, rename it over the old one,
//! fsync the folder), so a crash leaves either the old or the new version.
//!
//! It holds only what UpdateConfiguration wrote, never the deployment's
//! configuration, and with each write the value the deployment had at that
//! key then, so that a restart can tell a key the deployment has changed
//! since (the deployment wins) from one it left alone (the update stays).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::tree::Millis;

/// The file's format; another number is not read.
const FORMAT: u32 = 1;

/// One write kept across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Update {
    /// From the component's configuration root, keys as stored.
    pub(crate) key_path: Vec<String>,
    /// The leaf's value; an empty object for a container created empty.
    pub(crate) value: Value,
    /// The write's modification time (the request's timestamp, or the
    /// broker's clock where the nucleus uses it).
    pub(crate) modified_ms: Millis,
    /// The deployment's value at `key_path` when the write was made; absent
    /// when the deployment had none. `null` is a value here.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub(crate) deployment_value: Option<Value>,
}

/// Reads a member that is present as `Some`, `null` included (plain
/// `Option<Value>` would read `null` as absent).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    format: u32,
    components: BTreeMap<String, Vec<Update>>,
}

/// Every component's kept writes.
pub(crate) type Updates = BTreeMap<String, Vec<Update>>;

/// The JSON text of `updates`.
pub(crate) fn encode(updates: Updates) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(&Document {
        format: FORMAT,
        components: updates,
    })
    // Keys are strings and values JSON: serializing cannot fail.
    .expect("configuration updates serialize");
    bytes.push(b'\n');
    bytes
}

/// Reads the file: `Ok(None)` when there is none.
pub(crate) fn read(path: &Path) -> Result<Option<Updates>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let document: Document = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if document.format != FORMAT {
        return Err(format!(
            "format {} is not {FORMAT}, the one this broker reads",
            document.format
        ));
    }
    Ok(Some(document.components))
}

/// Replaces `path` with `bytes` atomically, mode 0600.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    // `mode` applies only when the file is created; a temporary file left
    // by a crash keeps whatever mode it had.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)?;
    // The rename is durable once the folder is.
    File::open(dir)?.sync_all()
}

/// The file and the latest version of its contents, written by whoever
/// asks first: concurrent requests for older versions find the newer one
/// already written and return at once.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
    /// The latest contents and their generation.
    staged: Mutex<(u64, Arc<[u8]>)>,
    /// The generation on disk. Held while writing, which orders writes.
    written: Mutex<u64>,
}

impl StateFile {
    /// The file at `path`, its contents on disk being generation 0.
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            staged: Mutex::new((0, Arc::from(Vec::new()))),
            written: Mutex::new(0),
        }
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Makes `bytes` the contents of `generation`; generations only grow.
    pub(crate) fn stage(&self, generation: u64, bytes: Vec<u8>) {
        let mut staged = self.staged.lock().unwrap_or_else(|e| e.into_inner());
        if generation > staged.0 {
            *staged = (generation, Arc::from(bytes));
        }
    }

    /// Returns once `generation`, or a later one, is on disk. Blocks on
    /// file I/O.
    pub(crate) fn persist(&self, generation: u64) -> io::Result<()> {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if *written >= generation {
            return Ok(());
        }
        let (latest, bytes) = self
            .staged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        write_atomic(&self.path, &bytes)?;
        *written = latest;
        Ok(())
    }
}

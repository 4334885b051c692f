//! The IPC socket: binding it safely, accepting, shutting down.

use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::task::JoinSet;

use crate::Broker;

/// `sun_path` holds 108 bytes on Linux, including the terminating NUL.
const SUN_PATH_MAX: usize = 107;

/// How long connections get to flush their last frames at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// A bound IPC socket.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    socket_path: PathBuf,
    connect_path: PathBuf,
    alias: Option<PathBuf>,
}

impl Server {
    /// Binds `socket_path` with mode `mode`.
    ///
    /// Creates the folder if missing, replaces a stale socket left by a
    /// crash, and refuses to start if a live broker answers on it. A path
    /// longer than `sun_path` allows is bound through a short symlink to its
    /// folder, and that alias is what components are told to connect to (the
    /// nucleus solves the same limit with a relative path).
    pub fn bind(socket_path: &Path, mode: u32) -> io::Result<Self> {
        let dir = socket_path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file_name = socket_path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("socket path {} names no file", socket_path.display()),
            )
        })?;
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create the socket folder {}: {e}", dir.display()),
            )
        })?;

        let mut alias = None;
        let connect_path = if socket_path.as_os_str().len() > SUN_PATH_MAX {
            let link = alias_for(dir)?;
            let connect = link.join(file_name);
            if connect.as_os_str().len() > SUN_PATH_MAX {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "socket path {} is over {SUN_PATH_MAX} bytes and so is its alias {}; \
                         set TMPDIR or system.ipcSocketPath to a shorter folder",
                        socket_path.display(),
                        connect.display()
                    ),
                ));
            }
            alias = Some(link);
            connect
        } else {
            socket_path.to_path_buf()
        };

        if std::fs::symlink_metadata(socket_path).is_ok() {
            if std::os::unix::net::UnixStream::connect(&connect_path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "another broker is already listening on {}",
                        socket_path.display()
                    ),
                ));
            }
            tracing::info!(path = %socket_path.display(), "removing stale socket");
            std::fs::remove_file(socket_path)?;
        }

        let listener = UnixListener::bind(&connect_path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot bind {}: {e}", socket_path.display()),
            )
        })?;
        std::fs::set_permissions(socket_path, std::fs::Permissions::from_mode(mode))?;
        Ok(Self {
            listener,
            socket_path: socket_path.to_path_buf(),
            connect_path,
            alias,
        })
    }

    /// Where the socket file is.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The path clients should connect to: the socket path, or its short
    /// alias when the socket path is too long for `sun_path`.
    pub fn connect_path(&self) -> &Path {
        &self.connect_path
    }

    /// Accepts connections until `shutdown` resolves, then closes every
    /// connection cleanly (open streams are terminated on the wire) and
    /// removes the socket.
    pub async fn run(self, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
        let active = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        let mut next_id = 0u64;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Out of file descriptors and the like: wait a
                            // little rather than spin.
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let max = broker.limits().max_connections;
                    if active.load(Ordering::Relaxed) >= max {
                        let pid = stream.peer_cred().ok().and_then(|c| c.pid());
                        tracing::warn!(limit = max, peer_pid = ?pid, "connection limit reached; refusing");
                        drop(stream);
                        continue;
                    }
                    next_id += 1;
                    active.fetch_add(1, Ordering::Relaxed);
                    let broker = broker.clone();
                    let active = active.clone();
                    tasks.spawn(async move {
                        crate::connection::serve(broker, stream, next_id).await;
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tracing::info!(connections = tasks.len(), "stopping");
        broker.shut_down();
        if tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tasks.abort_all();
        }
        self.remove_files();
    }

    fn remove_files(&self) {
        let _ = std::fs::remove_file(&self.socket_path);
        if let Some(alias) = &self.alias {
            let _ = std::fs::remove_file(alias);
        }
    }
}

/// A short symlink to `dir` in the temporary folder, named after a hash of
/// `dir` so that restarts reuse it.
fn alias_for(dir: &Path) -> io::Result<PathBuf> {
    let dir = std::fs::canonicalize(dir)?;
    let hash = crc32fast::hash(dir.as_os_str().as_encoded_bytes());
    let link = std::env::temp_dir().join(format!("ggipc-{hash:08x}"));
    match std::fs::read_link(&link) {
        Ok(target) if target == dir => return Ok(link),
        Ok(_) => std::fs::remove_file(&link)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not our symlink", link.display()),
            ));
        }
    }
    std::os::unix::fs::symlink(&dir, &link)?;
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stale_socket_is_replaced_and_a_live_one_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ipc.socket");
        // A socket file nobody listens on, as a crash leaves it.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let server = Server::bind(&path, 0o660).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        let err = Server::bind(&path, 0o660).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("already listening"), "{err}");
        drop(server);
    }

    #[tokio::test]
    async fn long_paths_bind_through_a_connectable_alias() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        let path = deep.join("ipc.socket");
        assert!(path.as_os_str().len() > SUN_PATH_MAX);
        let server = Server::bind(&path, 0o666).unwrap();
        assert!(server.connect_path().as_os_str().len() <= SUN_PATH_MAX);
        assert!(path.exists(), "the socket file is where it was asked to be");
        std::os::unix::net::UnixStream::connect(server.connect_path()).unwrap();
        server.remove_files();
        assert!(!path.exists());
    }
}

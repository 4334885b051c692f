//! Where to connect and how: the socket, the token, timeouts, buffers and
//! reconnection.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::Error;

/// The variable the nucleus sets to the socket path (`protocol.md` §5).
pub const SOCKET_ENV: &str = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT";
/// The variable the nucleus sets to the component's token.
pub const TOKEN_ENV: &str = "SVCUID";

/// `sun_path` holds 108 bytes on Linux, including the terminating NUL.
const SUN_PATH_MAX: usize = 107;

/// What to do when a subscriber does not keep up.
///
/// Each subscription buffers up to
/// [`ClientBuilder::event_buffer`] events. The task reading the socket
/// never waits for a subscriber — it serves every stream of the connection,
/// so waiting would stall responses and other subscriptions — and so a full
/// buffer means an event has to go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Drop the event that does not fit and count it (see
    /// [`Subscription::dropped_events`](crate::Subscription::dropped_events));
    /// the subscription carries on. Like the broker's own default.
    #[default]
    DropNewest,
    /// End the subscription with [`Error::Overflow`] after the buffered
    /// events, and terminate it on the wire. For consumers that must not miss
    /// a message silently.
    End,
}

/// Opt-in reconnection: when the connection drops, connect again with
/// exponential backoff and re-open every subscription still held.
///
/// Operations issued while disconnected fail at once with
/// [`Error::ConnectionClosed`]; they are not queued. Events published while
/// disconnected are lost. A subscription ends only when you drop or close it,
/// when the server refuses to re-open it (for example with an
/// `UnauthorizedError` after a policy change), or when reconnection gives
/// up.
///
/// The token is read again at every attempt when it comes from a file
/// ([`ClientBuilder::token_file`]). A real nucleus restarts its components
/// with itself and keeps `SVCUID` for a component's lifetime, so the token
/// from the environment stays valid there; `ggipc-broker` issues new tokens
/// at each start and rewrites its token files, so with it reconnection needs
/// the token file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Delay before the first attempt; also how long a subscription the
    /// server terminated waits before it is re-opened.
    pub initial_delay: Duration,
    /// Longest delay between attempts; delays double up to it.
    pub max_delay: Duration,
    /// Attempts after which to give up, ending every subscription; `None`
    /// retries forever.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// 100 ms, doubling up to 10 s, forever.
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_attempts: None,
        }
    }
}

/// Where the token comes from.
#[derive(Clone)]
pub(crate) enum TokenSource {
    None,
    Value(String),
    /// Read at every connection attempt.
    File(PathBuf),
}

impl TokenSource {
    pub(crate) fn read(&self) -> Result<String, Error> {
        match self {
            Self::None => Err(Error::Config(format!(
                "no authentication token: set {TOKEN_ENV}, or give one to the builder"
            ))),
            Self::Value(token) => Ok(token.clone()),
            Self::File(path) => std::fs::read_to_string(path)
                // Files written by hand often end in a newline; tokens never
                // contain whitespace.
                .map(|text| text.trim().to_owned())
                .map_err(|e| {
                    Error::Config(format!(
                        "cannot read the token file {}: {e}",
                        path.display()
                    ))
                }),
        }
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Value(_) => f.write_str("Value(<redacted>)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// The socket path as given, and resolved against the working directory of
/// the moment when it was relative.
#[derive(Clone, Debug)]
pub(crate) struct SocketPath {
    given: PathBuf,
    absolute: Option<PathBuf>,
}

impl SocketPath {
    pub(crate) fn new(given: PathBuf, cwd: Option<&Path>) -> Self {
        let absolute = match cwd {
            Some(cwd) if given.is_relative() => Some(cwd.join(&given)),
            _ => None,
        };
        Self { given, absolute }
    }

    /// The path to hand to `connect`.
    ///
    /// The nucleus passes a relative path (`../../ipc.socket`) precisely
    /// when the absolute one is too long for `sun_path`, so the resolved
    /// path is used only when it fits; otherwise the relative path is used
    /// as is, and the kernel resolves it against the working directory at
    /// connect time. Known shortcoming: a process that changes its working
    /// directory after building the client, with a socket path too long for
    /// `sun_path`, cannot connect (or reconnect).
    pub(crate) fn connect_path(&self) -> &Path {
        match &self.absolute {
            Some(abs) if abs.as_os_str().len() <= SUN_PATH_MAX => abs,
            _ => &self.given,
        }
    }
}

/// Builds a [`Client`](crate::Client): the socket, the token, timeouts and
/// options.
///
/// ```no_run
/// # async fn demo() -> Result<(), ggipc_client::Error> {
/// use std::time::Duration;
/// use ggipc_client::{ClientBuilder, ReconnectPolicy};
///
/// let client = ClientBuilder::new("/greengrass/v2/ipc.socket")
///     .token_file("/run/my-component/token")
///     .operation_timeout(Duration::from_secs(5))
///     .reconnect(ReconnectPolicy::default())
///     .connect()
///     .await?;
/// # drop(client);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    pub(crate) socket: SocketPath,
    pub(crate) token: TokenSource,
    pub(crate) connect_timeout: Duration,
    pub(crate) operation_timeout: Duration,
    pub(crate) event_buffer: usize,
    pub(crate) slow_consumer: SlowConsumer,
    pub(crate) reconnect: Option<ReconnectPolicy>,
}

impl ClientBuilder {
    /// A builder for the socket at `socket_path`; a relative path is taken
    /// relative to the working directory. Set a token with
    /// [`token`](Self::token) or [`token_file`](Self::token_file).
    pub fn new(socket_path: impl Into<PathBuf>) -> Self {
        let cwd = std::env::current_dir().ok();
        Self::with_socket(SocketPath::new(socket_path.into(), cwd.as_deref()))
    }

    fn with_socket(socket: SocketPath) -> Self {
        Self {
            socket,
            token: TokenSource::None,
            // The Python SDK's default for the socket and the CONNECT_ACK.
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            event_buffer: 256,
            slow_consumer: SlowConsumer::DropNewest,
            reconnect: None,
        }
    }

    /// A builder configured as the AWS SDKs configure a component's client:
    /// the socket from `AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`
    /// (relative paths are relative to the working directory) and the token
    /// from `SVCUID`. Fails with [`Error::Config`] if either is unset.
    pub fn from_env() -> Result<Self, Error> {
        let cwd = std::env::current_dir().ok();
        Self::from_lookup(|name| std::env::var_os(name), cwd.as_deref())
    }

    /// [`from_env`](Self::from_env) with the variables and working directory
    /// given, so it can be tested without touching the process environment.
    pub(crate) fn from_lookup(
        lookup: impl Fn(&str) -> Option<OsString>,
        cwd: Option<&Path>,
    ) -> Result<Self, Error> {
        let socket = lookup(SOCKET_ENV)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Error::Config(format!(
                    "{SOCKET_ENV} is not set: is this running as a Greengrass component?"
                ))
            })?;
        let token = lookup(TOKEN_ENV).filter(|v| !v.is_empty()).ok_or_else(|| {
            Error::Config(format!(
                "{TOKEN_ENV} is not set: is this running as a Greengrass component?"
            ))
        })?;
        let token = token
            .into_string()
            .map_err(|_| Error::Config(format!("{TOKEN_ENV} is not valid UTF-8")))?;
        Ok(Self::with_socket(SocketPath::new(PathBuf::from(socket), cwd)).token(token))
    }

    /// Authenticates with `token` (what the nucleus puts in `SVCUID`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = TokenSource::Value(token.into());
        self
    }

    /// Authenticates with the token in `path`, read (and trimmed of
    /// surrounding whitespace) at every connection attempt, so a reconnecting
    /// client picks up a token the server rewrote.
    pub fn token_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.token = TokenSource::File(path.into());
        self
    }

    /// How long connecting may take, socket and CONNECT_ACK together.
    /// Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an operation waits for its response (for a subscription: for
    /// the response that opens it). Default 30 s.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// Events buffered per subscription before [`SlowConsumer`] applies.
    /// Default 256; at least 1.
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events.max(1);
        self
    }

    /// What to do with events a subscriber has no room for. Default
    /// [`SlowConsumer::DropNewest`].
    pub fn slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.slow_consumer = policy;
        self
    }

    /// Reconnect when the connection drops, and re-open subscriptions (see
    /// [`ReconnectPolicy`]). Off by default.
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Connects and authenticates. Fails with [`Error::AccessDenied`] when
    /// the server refuses the token.
    pub async fn connect(self) -> Result<crate::Client, Error> {
        crate::Client::from_builder(self).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn env_gives_socket_and_token() {
        let b = ClientBuilder::from_lookup(
            lookup(&[
                (SOCKET_ENV, "/greengrass/v2/ipc.socket"),
                (TOKEN_ENV, "ABC"),
            ]),
            Some(Path::new("/work")),
        )
        .unwrap();
        assert_eq!(
            b.socket.connect_path(),
            Path::new("/greengrass/v2/ipc.socket")
        );
        assert_eq!(b.token.read().unwrap(), "ABC");
    }

    #[test]
    fn relative_socket_resolves_against_the_working_directory() {
        let b = ClientBuilder::from_lookup(
            lookup(&[(SOCKET_ENV, "../../ipc.socket"), (TOKEN_ENV, "T")]),
            Some(Path::new("/greengrass/v2/work/com.example.A")),
        )
        .unwrap();
        assert_eq!(
            b.socket.connect_path(),
            Path::new("/greengrass/v2/work/com.example.A/../../ipc.socket")
        );
    }

    #[test]
    fn relative_socket_stays_relative_when_the_absolute_path_is_too_long() {
        let cwd = format!("/{}", "d".repeat(120));
        let b = ClientBuilder::from_lookup(
            lookup(&[(SOCKET_ENV, "../../ipc.socket"), (TOKEN_ENV, "T")]),
            Some(Path::new(&cwd)),
        )
        .unwrap();
        assert_eq!(b.socket.connect_path(), Path::new("../../ipc.socket"));
    }

    #[test]
    fn missing_or_empty_variables_are_config_errors_naming_them() {
        let e = ClientBuilder::from_lookup(lookup(&[(TOKEN_ENV, "T")]), None).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains(SOCKET_ENV)),
            "{e}"
        );
        let e = ClientBuilder::from_lookup(lookup(&[(SOCKET_ENV, "/s"), (TOKEN_ENV, "")]), None)
            .unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains(TOKEN_ENV)),
            "{e}"
        );
    }

    #[test]
    fn token_file_is_read_each_time_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "FIRST\n").unwrap();
        let source = TokenSource::File(path.clone());
        assert_eq!(source.read().unwrap(), "FIRST");
        std::fs::write(&path, "SECOND").unwrap();
        assert_eq!(source.read().unwrap(), "SECOND");
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(source.read(), Err(Error::Config(_))));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let b = ClientBuilder::new("/s").token("SECRET-TOKEN");
        assert!(!format!("{b:?}").contains("SECRET-TOKEN"));
    }
}

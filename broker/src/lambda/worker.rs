//! One worker process of a Lambda function: its start, the work channel,
//! one invocation at a time with its timeout, its log, and its stop.
//!
//! The work channel is a socket pair whose worker end is the process's
//! standard input (fd 0): handing a descriptor over as stdin needs no
//! `pre_exec`, and the runtime shim moves it off fd 0 before any user code
//! runs. Standard output and error stay the function's log. The frames are
//! described in `lambda_runtime.py`.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::memory::{MemoryLimit, WorkerCgroup};
use super::queue::WorkItem;
use crate::logs::ComponentLog;
use crate::states::{ComponentStates, LifecycleState};

/// Largest frame a worker may send (a long traceback fits many times).
const MAX_FRAME: u32 = 16 * 1024 * 1024;
/// Longest log line kept whole; longer output is cut into such pieces.
const MAX_LINE: usize = 64 * 1024;
/// Time a worker gets to leave after its channel closes, before SIGTERM.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Everything needed to start a function's workers, fixed at launch.
#[derive(Debug)]
pub(crate) struct Spec {
    /// The component.
    pub(crate) component: Arc<str>,
    /// The interpreter.
    pub(crate) program: PathBuf,
    /// Its arguments: `-u`, the shim, `--handler=…`, the `execArgs`.
    pub(crate) args: Vec<OsString>,
    /// The environment on top of the broker's.
    pub(crate) env: Vec<(String, String)>,
    /// `<root>/work/<component>`.
    pub(crate) work_dir: PathBuf,
    /// `runWith.posixUser` as (uid, gid).
    pub(crate) user: Option<(u32, u32)>,
    /// The memory bound.
    pub(crate) memory: MemoryLimit,
    /// `timeoutInSeconds`.
    pub(crate) timeout: Duration,
    /// `statusTimeoutInSeconds`, the longest a start may take.
    pub(crate) status_timeout: Duration,
    /// Time a stopping worker gets between SIGTERM and SIGKILL.
    pub(crate) stop_grace: Duration,
    /// The component log.
    pub(crate) log: ComponentLog,
    /// Component states, for `currentState` in log lines.
    pub(crate) states: Arc<ComponentStates>,
}

impl Spec {
    fn state(&self) -> &'static str {
        self.states
            .get(&self.component)
            .map_or("NEW", LifecycleState::as_str)
    }

    /// Writes a launcher line about worker `instance` to the component log.
    pub(crate) fn log_event(
        &self,
        level: &str,
        instance: u64,
        event: &str,
        message: &str,
        context: &[(&str, &str)],
    ) {
        let instance = instance.to_string();
        let mut all: Vec<(&str, &str)> = context.to_vec();
        all.extend([
            ("serviceInstance", instance.as_str()),
            ("serviceName", &*self.component),
            ("currentState", self.state()),
        ]);
        self.log.write(level, "lambda", event, message, &all);
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The handler returned.
    Done,
    /// The handler raised; the text is `Type: message`.
    Handled(String),
    /// The payload was not JSON for a `json` function; handler not called.
    Undecodable(String),
    /// The handler ran past `timeoutInSeconds`; the worker was killed.
    TimedOut,
    /// The worker died (or broke the protocol) during the invocation.
    Died(String),
}

/// A started worker, ready for work.
#[derive(Debug)]
pub(crate) struct Worker {
    spec: Arc<Spec>,
    child: Child,
    /// The process group, killed when the worker is stopped or dropped.
    pgid: Option<i32>,
    channel: BufReader<UnixStream>,
    cgroup: Option<WorkerCgroup>,
    /// The last line the worker wrote to standard error, for reasons.
    last_error: Arc<Mutex<String>>,
    copiers: Vec<JoinHandle<()>>,
}

fn signal_group(pgid: i32, signal: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

fn io_reason(e: &std::io::Error) -> String {
    format!("work channel: {e}")
}

impl Worker {
    /// Starts worker `instance` (`seq` numbers starts, for cgroup names)
    /// and waits until it has imported its handler.
    pub(crate) async fn start(spec: &Arc<Spec>, instance: u64, seq: u64) -> Result<Self, String> {
        let cgroup = match &spec.memory {
            MemoryLimit::Cgroup {
                parent,
                version,
                kb,
            } => Some(WorkerCgroup::create(
                parent,
                *version,
                &format!("ggipc-{}-{}-{seq}", std::process::id(), spec.component),
                *kb,
            )?),
            _ => None,
        };
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| format!("cannot create the work channel: {e}"))?;
        let mut command = match &spec.memory {
            MemoryLimit::Unlimited => {
                let mut c = Command::new(&spec.program);
                c.args(&spec.args);
                c
            }
            MemoryLimit::Cgroup { .. } => {
                // Waits for the broker to move it into its cgroup.
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(r#"read -r _ && exec "$@""#)
                    .arg("sh")
                    .arg(&spec.program)
                    .args(&spec.args);
                c
            }
            MemoryLimit::AddressSpace { kb } => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(r#"ulimit -v "$1" && shift && exec "$@""#)
                    .arg("sh")
                    .arg(kb.to_string())
                    .arg(&spec.program)
                    .args(&spec.args);
                c
            }
        };
        command
            .current_dir(&spec.work_dir)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env(
                "AWS_GREENGRASS_LAMBDA_WORKER_ID",
                format!("{}-{instance}-{seq}", spec.component),
            )
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some((uid, gid)) = spec.user {
            command.uid(uid).gid(gid);
        }
        let spawned = command.spawn();
        // The command holds the worker's end of the channel: it must go,
        // or the worker's exit would never read as end of file here.
        drop(command);
        let mut child =
            spawned.map_err(|e| format!("cannot start {}: {e}", spec.program.display()))?;
        let pgid = child.id().and_then(|p| i32::try_from(p).ok());
        let last_error = Arc::new(Mutex::new(String::new()));
        let mut copiers = Vec::with_capacity(2);
        if let Some(out) = child.stdout.take() {
            copiers.push(copy_output(out, "INFO", spec.clone(), instance, None));
        }
        if let Some(err) = child.stderr.take() {
            copiers.push(copy_output(
                err,
                "ERROR",
                spec.clone(),
                instance,
                Some(last_error.clone()),
            ));
        }
        let channel = ours
            .set_nonblocking(true)
            .and_then(|()| UnixStream::from_std(ours))
            .map_err(|e| format!("cannot use the work channel: {e}"))?;
        // From here a failure drops the worker, which kills its group.
        let mut worker = Self {
            spec: spec.clone(),
            child,
            pgid,
            channel: BufReader::new(channel),
            cgroup,
            last_error,
            copiers,
        };
        if let Some(cgroup) = &worker.cgroup {
            let pid = worker.child.id().unwrap_or_default().to_string();
            if let Err(e) = std::fs::write(cgroup.procs(), pid) {
                let reason = format!(
                    "cannot move the worker into {}: {e}",
                    cgroup.procs().display()
                );
                worker.kill().await;
                return Err(reason);
            }
            if let Err(e) = worker.channel.get_mut().write_all(b"\n").await {
                return Err(worker.exit_reason(&io_reason(&e)).await);
            }
        }
        let ready = tokio::time::timeout(spec.status_timeout, worker.read_frame()).await;
        match ready {
            Ok(Ok(Some((b'R', _)))) => Ok(worker),
            Ok(Ok(Some((b'F', traceback)))) => {
                let text = String::from_utf8_lossy(&traceback);
                for line in text.lines().filter(|l| !l.is_empty()) {
                    spec.log_event("ERROR", instance, "", line, &[]);
                }
                let summary = text
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no traceback")
                    .to_owned();
                worker.stop().await;
                Err(format!("the handler could not be loaded: {summary}"))
            }
            Ok(Ok(Some((kind, _)))) => {
                worker.kill().await;
                Err(format!(
                    "the worker sent frame {:?} before it was ready",
                    char::from(kind)
                ))
            }
            Ok(Ok(None)) => Err(worker.exit_reason("it exited before it was ready").await),
            Ok(Err(e)) => Err(worker.exit_reason(&io_reason(&e)).await),
            Err(_) => {
                worker.kill().await;
                Err(format!(
                    "the handler was not loaded within statusTimeoutInSeconds ({} s)",
                    spec.status_timeout.as_secs()
                ))
            }
        }
    }

    async fn read_frame(&mut self) -> std::io::Result<Option<(u8, Bytes)>> {
        let len = match self.channel.read_u32().await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        };
        if len == 0 || len > MAX_FRAME {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("frame of {len} bytes"),
            ));
        }
        let mut body = vec![0u8; len as usize];
        self.channel.read_exact(&mut body).await?;
        let kind = body[0];
        Ok(Some((kind, Bytes::from(body).slice(1..))))
    }

    /// Hands `item` to the worker and waits for its end, at most
    /// `timeoutInSeconds`. A worker that timed out or died is gone after
    /// this; the caller drops it.
    pub(crate) async fn invoke(&mut self, item: &WorkItem) -> Outcome {
        let header_len = item.id.len() + 1 + item.topic.len();
        let total = 1 + 4 + header_len + item.payload.len();
        let (Ok(total32), Ok(header32)) = (u32::try_from(total), u32::try_from(header_len)) else {
            return Outcome::Died(format!("an event of {total} bytes cannot be sent"));
        };
        let mut frame = BytesMut::with_capacity(4 + total);
        frame.put_u32(total32);
        frame.put_u8(b'I');
        frame.put_u32(header32);
        frame.put_slice(item.id.as_bytes());
        frame.put_u8(b'\n');
        frame.put_slice(item.topic.as_bytes());
        frame.put_slice(&item.payload);
        let timeout = self.spec.timeout;
        let exchange = async {
            self.channel.get_mut().write_all(&frame).await?;
            self.read_frame().await
        };
        let answer = tokio::time::timeout(timeout, exchange).await;
        let text_after_id = |body: &Bytes| {
            let text = String::from_utf8_lossy(body);
            text.split_once('\n')
                .map_or_else(String::new, |(_, rest)| rest.to_owned())
        };
        match answer {
            Ok(Ok(Some((b'D', _)))) => Outcome::Done,
            Ok(Ok(Some((b'H', body)))) => Outcome::Handled(text_after_id(&body)),
            Ok(Ok(Some((b'J', body)))) => Outcome::Undecodable(text_after_id(&body)),
            Ok(Ok(Some((kind, _)))) => {
                self.kill().await;
                Outcome::Died(format!(
                    "the worker sent an unexpected frame {:?}; it was killed",
                    char::from(kind)
                ))
            }
            Ok(Ok(None)) => Outcome::Died(self.exit_reason("it exited").await),
            Ok(Err(e)) => Outcome::Died(self.exit_reason(&io_reason(&e)).await),
            Err(_) => {
                self.kill().await;
                Outcome::TimedOut
            }
        }
    }

    /// Resolves when the process exits by itself (while idle).
    pub(crate) async fn exited(&mut self) -> String {
        let status = self.child.wait().await;
        self.pgid.take().into_iter().for_each(|g| {
            // Anything it left in its group goes too.
            signal_group(g, rustix::process::Signal::KILL);
        });
        let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
        self.describe_exit(&format!("it exited with {status}"))
            .await
    }

    /// Kills the group at once and reaps the process.
    async fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// After the channel failed: waits for the process (killing it if it
    /// lingers) and says why it ended, with what it last wrote to
    /// standard error and whether the memory limit killed it.
    async fn exit_reason(&mut self, what: &str) -> String {
        let status = match tokio::time::timeout(CLOSE_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no exit: killed".to_owned(),
        };
        self.kill().await;
        self.describe_exit(&format!("{what} ({status})")).await
    }

    async fn describe_exit(&mut self, what: &str) -> String {
        // The copiers end with the process's pipes; their last line is
        // often the reason (an interpreter that cannot map its libraries
        // under RLIMIT_AS, a shell that cannot exec).
        for copier in self.copiers.drain(..) {
            let _ = tokio::time::timeout(CLOSE_GRACE, copier).await;
        }
        let mut reason = format!("the worker ended: {what}");
        if let Some(cgroup) = &self.cgroup
            && cgroup.oom_killed()
            && let MemoryLimit::Cgroup { kb, .. } = self.spec.memory
        {
            reason.push_str(&format!("; it exceeded its memory limit of {kb} KB"));
        }
        let last = self
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !last.is_empty() {
            reason.push_str("; last error output: ");
            reason.push_str(&last);
        }
        reason
    }

    /// Stops the worker: closes its channel (an idle runtime leaves at
    /// once), then SIGTERM to its group, SIGKILL after the grace; removes
    /// its cgroup.
    pub(crate) async fn stop(mut self) {
        let _ = self.channel.get_mut().shutdown().await;
        if let Some(pgid) = self.pgid {
            if tokio::time::timeout(CLOSE_GRACE, self.child.wait())
                .await
                .is_err()
            {
                signal_group(pgid, rustix::process::Signal::TERM);
                if tokio::time::timeout(self.spec.stop_grace, self.child.wait())
                    .await
                    .is_err()
                {
                    signal_group(pgid, rustix::process::Signal::KILL);
                }
            }
            // Whatever the worker started in its group goes with it.
            signal_group(pgid, rustix::process::Signal::KILL);
            self.pgid = None;
        }
        let _ = self.child.wait().await;
        self.finish().await;
    }

    /// Waits for the output copiers and removes the cgroup of a worker
    /// whose process is gone.
    pub(crate) async fn finish(mut self) {
        for copier in self.copiers.drain(..) {
            let _ = tokio::time::timeout(CLOSE_GRACE, copier).await;
        }
        if let Some(cgroup) = self.cgroup.take() {
            cgroup.remove().await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A worker dropped without `stop` (its task cancelled) leaves nothing
        // running.
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, rustix::process::Signal::KILL);
        }
        if let Some(cgroup) = self.cgroup.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(cgroup.remove());
        }
    }
}

/// Reads one line of at most `MAX_LINE` bytes into `line` (without the
/// newline); false at the end of the stream.
async fn next_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    line.clear();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(!line.is_empty());
        }
        let room = MAX_LINE - line.len();
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) if i <= room => {
                line.extend_from_slice(&buf[..i]);
                reader.consume(i + 1);
                return Ok(true);
            }
            _ => {
                let n = buf.len().min(room);
                line.extend_from_slice(&buf[..n]);
                reader.consume(n);
                if line.len() >= MAX_LINE {
                    return Ok(true);
                }
            }
        }
    }
}

/// A line's level: a leading `[LEVEL]` tag (the shim's Python logging
/// handler writes one), else the stream's default.
fn split_level<'t>(line: &'t str, default: &'static str) -> (&'static str, &'t str) {
    for level in ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] {
        if let Some(rest) = line
            .strip_prefix('[')
            .and_then(|l| l.strip_prefix(level))
            .and_then(|l| l.strip_prefix(']'))
        {
            return (level, rest);
        }
    }
    (default, line)
}

/// Copies a worker's output into the component log, one log line per
/// line, in the shape `lambda.md` §5.6 shows:
/// `… [INFO] (worker-0) com.example.lambda: lambda_function.py:4,Event : . {serviceInstance=0, serviceName=com.example.lambda, currentState=RUNNING}`.
fn copy_output<R: AsyncRead + Unpin + Send + 'static>(
    stream: R,
    default_level: &'static str,
    spec: Arc<Spec>,
    instance: u64,
    last: Option<Arc<Mutex<String>>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        let thread = format!("worker-{instance}");
        let instance = instance.to_string();
        while let Ok(true) = next_line(&mut reader, &mut line).await {
            let mut text = String::from_utf8_lossy(&line);
            if text.ends_with('\r') {
                text.to_mut().pop();
            }
            if text.is_empty() {
                continue;
            }
            let (level, text) = split_level(&text, default_level);
            if let Some(last) = &last {
                text.clone_into(&mut last.lock().unwrap_or_else(|e| e.into_inner()));
            }
            spec.log.write(
                level,
                &thread,
                "",
                text,
                &[
                    ("serviceInstance", &instance),
                    ("serviceName", &spec.component),
                    ("currentState", spec.state()),
                ],
            );
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_tags_are_read_and_stripped() {
        assert_eq!(split_level("[WARN]a.py:3,x", "ERROR"), ("WARN", "a.py:3,x"));
        assert_eq!(split_level("[FATAL]", "INFO"), ("FATAL", ""));
        assert_eq!(
            split_level("a.py:3,[WARN]x", "INFO"),
            ("INFO", "a.py:3,[WARN]x")
        );
        assert_eq!(split_level("[WARNING]x", "INFO"), ("INFO", "[WARNING]x"));
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_the_last_partial_line_is_kept() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nshort\ntail");
        let mut reader = BufReader::new(&input[..]);
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while next_line(&mut reader, &mut line).await.unwrap() {
            lines.push(line.len());
        }
        assert_eq!(lines, [MAX_LINE, 10, 5, 4]);
    }
}

//! A real mosquitto for the IoT Core bridge's tests: each test starts its
//! own on a free port of 127.0.0.1 (or a Unix socket) with a generated
//! configuration, can stop and restart it, and reads its log to see what
//! the bridge subscribed. `mosquitto_sub`/`mosquitto_pub` (package
//! `mosquitto-clients`) observe and drive the MQTT side; scripts/setup
//! installs both.
//!
//! Refused subscriptions use the dynamic-security plugin shipped with
//! mosquitto: its `acl_file` (2.0.11) checks reads and writes but grants
//! every SUBSCRIBE, while the plugin answers a denied one with 0x80 (MQTT
//! 3.1.1) or 0x87 (MQTT 5) in the SUBACK.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const DYNSEC_PLUGIN: &str = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so";

/// How a test's mosquitto is set up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Subscription filters it refuses (dynamic-security plugin).
    pub deny_subscribe: Vec<String>,
    /// Keep sessions and queued messages across a restart.
    pub persistence: bool,
    /// Also listen on a Unix socket in the temporary folder.
    pub unix_socket: bool,
    /// Extra configuration lines.
    pub extra: Vec<String>,
}

/// A mosquitto process on a free port; stopped when dropped.
#[derive(Debug)]
pub struct Mosquitto {
    child: Option<Child>,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The Unix socket, when asked for.
    pub socket: Option<PathBuf>,
    conf: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

/// A free TCP port of 127.0.0.1, taken below the kernel's ephemeral range:
/// a port from that range can become the local port of any outgoing
/// connection of a parallel test (a bridge reconnecting, a client) between
/// this check and mosquitto's bind, or while a test has mosquitto stopped.
fn free_port() -> u16 {
    use std::hash::BuildHasher as _;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if ephemeral_low < 12_000 {
        return std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
    }
    let range = ephemeral_low - 10_000..ephemeral_low;
    loop {
        // Each RandomState has fresh keys (random per thread, then stepped):
        // parallel tests and repeated calls draw apart.
        let draw = std::hash::RandomState::new().hash_one(Instant::now());
        let port = (range.start + (draw % u64::from(range.end - range.start)) as u32) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether the mosquitto binaries are installed.
pub fn available() -> bool {
    Command::new("mosquitto")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        && Command::new("mosquitto_sub")
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
}

impl Mosquitto {
    /// Starts one with default options.
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    /// Starts one with `options`.
    pub fn start_with(options: Options) -> Self {
        assert!(
            available(),
            "mosquitto and mosquitto_sub are missing: run scripts/setup"
        );
        let dir = tempfile::Builder::new()
            .prefix("mq")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let port = free_port();
        let log = dir.path().join("mosquitto.log");
        let mut lines = vec![
            format!("listener {port} 127.0.0.1"),
            "allow_anonymous true".to_owned(),
            format!("log_dest file {}", log.display()),
            "log_type all".to_owned(),
            "log_timestamp false".to_owned(),
            // Run as root (CI), mosquitto would drop to the `mosquitto`
            // user and could not write its log or socket here.
            "user root".to_owned(),
            // Many queued messages (persistent sessions, benchmarks).
            "max_queued_messages 100000".to_owned(),
            // Without it, a PUBLISH mosquitto sends right after a PUBACK
            // to the same client waits for that client's delayed ACK
            // (Nagle): 40 ms on Linux. A bench client that only receives
            // never sees it (its PUBACK carries the ACK); the bridge,
            // which also publishes, does.
            "set_tcp_nodelay true".to_owned(),
        ];
        if options.persistence {
            lines.push("persistence true".to_owned());
            lines.push(format!("persistence_location {}/", dir.path().display()));
        } else {
            lines.push("persistence false".to_owned());
        }
        let socket = options.unix_socket.then(|| dir.path().join("mqtt.sock"));
        if let Some(socket) = &socket {
            lines.push(format!("listener 0 {}", socket.display()));
        }
        if !options.deny_subscribe.is_empty() {
            let acls: Vec<_> = options
                .deny_subscribe
                .iter()
                .map(|f| json!({"acltype": "subscribePattern", "topic": f, "allow": false, "priority": 0}))
                .collect();
            let dynsec = json!({
                "defaultACLAccess": {"publishClientSend": true, "publishClientReceive": true,
                                     "subscribe": true, "unsubscribe": true},
                "clients": [],
                "groups": [{"groupname": "anonymous", "roles": [{"rolename": "limited"}]}],
                "roles": [{"rolename": "limited", "acls": acls}],
                "anonymousGroup": "anonymous",
            });
            let file = dir.path().join("dynsec.json");
            std::fs::write(&file, serde_json::to_vec_pretty(&dynsec).unwrap()).unwrap();
            lines.push(format!("plugin {DYNSEC_PLUGIN}"));
            lines.push(format!("plugin_opt_config_file {}", file.display()));
        }
        lines.extend(options.extra);
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, lines.join("\n") + "\n").unwrap();
        let mut m = Self {
            child: None,
            port,
            socket,
            conf,
            log,
            dir,
        };
        m.run();
        m
    }

    fn run(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                let mut err = String::new();
                if let Some(mut e) = self.child.as_mut().and_then(|c| c.stderr.take()) {
                    let _ = e.read_to_string(&mut err);
                }
                panic!("mosquitto exited with {status}: {err}\n{}", self.log_text());
            }
            assert!(Instant::now() < deadline, "mosquitto not listening in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `mqtt://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// The temporary folder (configuration, log, persistence).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops it with SIGTERM (saving persistent sessions) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and configuration.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SUBSCRIBE (`true`) and UNSUBSCRIBE (`false`) filters `client` sent,
    /// in order, across connections.
    pub fn subscription_log(&self, client: &str) -> Vec<(bool, String)> {
        Self::parse_subscriptions(&self.log_text(), client)
    }

    /// Filters `client` is subscribed to now, from the log: its last
    /// connection's SUBSCRIBEs minus its UNSUBSCRIBEs (every bridge
    /// connection is a clean session).
    pub fn subscriptions_of(&self, client: &str) -> BTreeSet<String> {
        let text = self.log_text();
        let marker = format!(" as {client} (");
        let last_connect = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(&marker))
            .map(|(i, _)| i)
            .last();
        let Some(start) = last_connect else {
            return BTreeSet::new();
        };
        let tail: String = text.lines().skip(start).map(|l| format!("{l}\n")).collect();
        let mut set = BTreeSet::new();
        for (sub, filter) in Self::parse_subscriptions(&tail, client) {
            if sub {
                set.insert(filter);
            } else {
                set.remove(&filter);
            }
        }
        set
    }

    fn parse_subscriptions(text: &str, client: &str) -> Vec<(bool, String)> {
        let mut out = Vec::new();
        let mut current: Option<bool> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("Received SUBSCRIBE from ") {
                current = (rest == client).then_some(true);
            } else if let Some(rest) = line.strip_prefix("Received UNSUBSCRIBE from ") {
                current = (rest == client).then_some(false);
            } else if let Some(filter) = line.strip_prefix('\t') {
                if let Some(sub) = current {
                    let filter = filter.rsplit_once(" (QoS ").map_or(filter, |(f, _)| f);
                    out.push((sub, filter.to_owned()));
                }
            } else if !line.starts_with(&format!("{client} ")) {
                current = None;
            }
        }
        out
    }

    /// Waits until `client` is connected (per the log) `count` times in
    /// all.
    pub fn wait_connections(&self, client: &str, count: usize, timeout: Duration) {
        let marker = format!(" as {client} (");
        let deadline = Instant::now() + timeout;
        while self.log_text().matches(&marker).count() < count {
            assert!(
                Instant::now() < deadline,
                "{client} did not connect {count} times:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `client` is subscribed to exactly `filters`.
    pub fn wait_subscriptions(&self, client: &str, filters: &[&str], timeout: Duration) {
        let want: BTreeSet<String> = filters.iter().map(|f| (*f).to_owned()).collect();
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.subscriptions_of(client);
            if now == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{client} subscribed to {now:?}, expected {want:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Publishes with `mosquitto_pub` (`-V mqttv311`).
    pub fn publish(&self, topic: &str, payload: &[u8], qos: u8) {
        let out = self
            .pub_command(topic, qos)
            .arg("-m")
            .arg(bytes_arg(payload))
            .output()
            .unwrap();
        assert!(out.status.success(), "mosquitto_pub: {out:?}");
    }

    /// Publishes each of `lines` as one message, in order, on one
    /// connection (`mosquitto_pub -l`).
    pub fn publish_lines(&self, topic: &str, lines: &[String], qos: u8) {
        use std::io::Write;
        let mut child = self
            .pub_command(topic, qos)
            .arg("-l")
            .stdin(Stdio::piped())
            .spawn()
            .expect("start mosquitto_pub");
        let mut stdin = child.stdin.take().expect("stdin");
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
        drop(stdin);
        assert!(child.wait().unwrap().success(), "mosquitto_pub -l failed");
    }

    /// A `mosquitto_pub` command for `topic` without its message argument.
    pub fn pub_command(&self, topic: &str, qos: u8) -> Command {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-V",
            "mqttv311",
        ])
        .args(["-q", &qos.to_string(), "-t", topic]);
        cmd
    }

    /// Starts `mosquitto_sub` on `filters` printing `topic payload` lines
    /// (`-v`), ending after `count` messages or `timeout`; waits until it
    /// is subscribed.
    pub fn subscriber(&self, filters: &[&str], count: usize, timeout: Duration) -> Subscriber {
        self.subscriber_with(filters, count, timeout, &[])
    }

    /// Like [`subscriber`](Self::subscriber) with extra arguments
    /// (`-c -i <id>` for a persistent session, `-F` for a format).
    pub fn subscriber_with(
        &self,
        filters: &[&str],
        count: usize,
        timeout: Duration,
        extra: &[&str],
    ) -> Subscriber {
        let id = format!("obs{}", free_port());
        let mut cmd = Command::new("mosquitto_sub");
        cmd.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-V",
            "mqttv311",
            "-q",
            "1",
        ])
        .args(["-i", &id, "-v", "-C", &count.to_string(), "-W"])
        .arg(timeout.as_secs().max(1).to_string())
        .args(extra);
        for f in filters {
            cmd.args(["-t", f]);
        }
        let id = extra
            .windows(2)
            .find(|w| w[0] == "-i")
            .map_or(id, |w| w[1].to_owned());
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mosquitto_sub");
        let deadline = Instant::now() + Duration::from_secs(10);
        let sub = Subscriber { child: Some(child) };
        while self.subscriptions_of(&id).len() < filters.len() {
            assert!(Instant::now() < deadline, "mosquitto_sub did not subscribe");
            std::thread::sleep(Duration::from_millis(10));
        }
        sub
    }
}

/// `mosquitto_pub -m` takes text; tests use text payloads.
fn bytes_arg(payload: &[u8]) -> String {
    String::from_utf8(payload.to_vec()).expect("mosquitto_pub -m takes UTF-8 text")
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `mosquitto_sub`.
#[derive(Debug)]
pub struct Subscriber {
    child: Option<Child>,
}

impl Subscriber {
    /// Waits for it to end (count reached or timeout) and returns its
    /// `topic payload` lines.
    pub fn lines(mut self) -> Vec<String> {
        let out = self.output();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn output(&mut self) -> Output {
        self.child
            .take()
            .expect("running")
            .wait_with_output()
            .expect("mosquitto_sub output")
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_free_and_below_the_ephemeral_range() {
        let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        for p in &ports {
            assert!(*p < low || low < 12_000, "{p} is in the ephemeral range");
            assert!(std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok());
        }
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 10, "draws repeat: {ports:?}");
    }
}

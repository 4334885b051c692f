//! The `iotCore` section of the deployment document.
//!
//! ```yaml
//! iotCore:
//!   endpoint: mqtts://abc123-ats.iot.eu-west-1.amazonaws.com:8883
//!   certificateFilePath: certs/thing.cert.pem   # mutual TLS (mqtts only)
//!   privateKeyPath: certs/thing.private.key
//!   rootCaPath: certs/AmazonRootCA1.pem          # default system.rootCaPath
//!   clientId: my-thing                           # default system.thingName
//!   mqttVersion: mqtt5                           # or mqtt3 (3.1.1)
//!   keepAliveTimeoutMs: 60000
//!   connectTimeoutMs: 10000
//!   operationTimeoutMs: 30000                    # longest wait for a SUBACK
//!   maxMessageSizeInBytes: 131072
//!   maxInFlightPublishes: 5
//!   maxPublishRetry: 100                         # -1: forever
//!   minimumReconnectDelayMs: 1000
//!   maximumReconnectDelayMs: 120000
//!   minimumConnectedTimeBeforeRetryResetMs: 30000
//!   spooler:
//!     maxSizeInBytes: 2621440
//!     keepQos0WhenOffline: false
//!   mqttTopicMapping:
//!     Commands: {topic: "cmd/#", source: IotCore, target: Pubsub}
//!     Telemetry: {topic: "sensors/+/temp", source: Pubsub, target: IotCore, targetTopicPrefix: "site1/"}
//! ```
//!
//! `endpoint` is `mqtts://host[:port]` (port 8883 by default; on 443 the
//! connection offers ALPN `x-amzn-mqtt-ca`, as AWS IoT Core requires
//! there), `mqtt://host[:port]` (plain TCP, port 1883 by default, for a
//! local test broker) or `unix:///path/to/socket`. A bare host name means
//! `mqtts://host:8883`. Relative paths are taken from the document's folder.
//! The names follow the nucleus' `mqtt` configuration where it has one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{ConfigError, Deployment};

/// The nucleus' cap on `maxMessageSizeInBytes`.
const MAX_MESSAGE_SIZE_CAP: u64 = 256 * 1024 * 1024;
/// The nucleus' cap on `maxInFlightPublishes`.
const MAX_IN_FLIGHT_CAP: u64 = 100;

/// Where the MQTT peer is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Plain TCP.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
    /// TLS with a client certificate.
    Tls {
        /// Host name (also the name the server certificate must carry).
        host: String,
        /// Port; 443 adds ALPN `x-amzn-mqtt-ca`.
        port: u16,
        /// Client certificate chain, PEM.
        certificate: PathBuf,
        /// Private key, PEM. Its content is never logged.
        private_key: PathBuf,
        /// Trusted roots, PEM.
        root_ca: PathBuf,
    },
    /// A Unix socket.
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp { host, port } => write!(f, "mqtt://{host}:{port}"),
            Self::Tls { host, port, .. } => write!(f, "mqtts://{host}:{port}"),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// Which side of a topic mapping a message comes from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Local publish/subscribe.
    Pubsub,
    /// The MQTT link.
    IotCore,
}

/// One entry of `mqttTopicMapping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMapping {
    /// Its name in the document.
    pub name: String,
    /// The source filter.
    pub topic: String,
    /// Where messages come from.
    pub source: Side,
    /// Where they go.
    pub target: Side,
    /// Prepended to the source topic to make the target topic.
    pub target_topic_prefix: String,
}

/// Reconnection delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// First delay.
    pub min_delay: Duration,
    /// Largest delay.
    pub max_delay: Duration,
    /// A connection that lasted this long resets the delay to the first.
    pub stable_after: Duration,
}

/// The parsed `iotCore` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IotCoreConfig {
    /// The peer.
    pub endpoint: Endpoint,
    /// MQTT client id.
    pub client_id: String,
    /// MQTT 5 (true) or 3.1.1.
    pub mqtt5: bool,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// Longest wait for TCP, TLS and CONNACK.
    pub connect_timeout: Duration,
    /// Longest wait for a SUBACK once the SUBSCRIBE is written.
    pub operation_timeout: Duration,
    /// Largest payload accepted for IoT Core.
    pub max_message_bytes: usize,
    /// Most QoS 1 publishes awaiting PUBACK.
    pub max_in_flight: u16,
    /// Times a publish is retried after a retryable failure (-1: forever).
    pub max_publish_retry: i64,
    /// Reconnection delays.
    pub reconnect: Reconnect,
    /// Spool size in bytes.
    pub spool_bytes: usize,
    /// Whether QoS 0 messages wait in the spool while offline.
    pub keep_qos0_offline: bool,
    /// `mqttTopicMapping`, in the document's order.
    pub mappings: Vec<TopicMapping>,
}

impl IotCoreConfig {
    /// Defaults for `endpoint` and `client_id`, for tests and the
    /// benchmark.
    pub fn new(endpoint: Endpoint, client_id: impl Into<String>) -> Self {
        Self {
            endpoint,
            client_id: client_id.into(),
            mqtt5: true,
            keep_alive: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_message_bytes: 128 * 1024,
            max_in_flight: 5,
            max_publish_retry: 100,
            reconnect: Reconnect {
                min_delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(120),
                stable_after: Duration::from_secs(30),
            },
            spool_bytes: 2_621_440,
            keep_qos0_offline: false,
            mappings: Vec::new(),
        }
    }
}

/// Reads the deployment's `iotCore` section; `Ok(None)` when it has none.
/// Unknown keys come back as warnings.
pub fn from_deployment(
    deployment: &Deployment,
) -> Result<Option<(IotCoreConfig, Vec<String>)>, ConfigError> {
    let Some(section) = &deployment.iot_core else {
        return Ok(None);
    };
    let base = deployment
        .file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut reader = Reader {
        file: &deployment.file,
        warnings: Vec::new(),
    };
    let config = reader.section(
        section,
        base,
        deployment.thing_name.as_deref(),
        deployment.root_ca_path.as_deref(),
    )?;
    Ok(Some((config, reader.warnings)))
}

struct Reader<'a> {
    file: &'a Path,
    warnings: Vec<String>,
}

const KNOWN_KEYS: &[&str] = &[
    "endpoint",
    "certificateFilePath",
    "privateKeyPath",
    "rootCaPath",
    "clientId",
    "mqttVersion",
    "keepAliveTimeoutMs",
    "connectTimeoutMs",
    "operationTimeoutMs",
    "maxMessageSizeInBytes",
    "maxInFlightPublishes",
    "maxPublishRetry",
    "minimumReconnectDelayMs",
    "maximumReconnectDelayMs",
    "minimumConnectedTimeBeforeRetryResetMs",
    "spooler",
    "mqttTopicMapping",
];

fn get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

impl Reader<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: format!("iotCore.{key}"),
            reason: reason.into(),
        }
    }

    fn warn_unknown(&mut self, map: &Map<String, Value>, prefix: &str, known: &[&str]) {
        for key in map.keys() {
            if !known.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                self.warnings.push(format!(
                    "{}: iotCore.{prefix}{key}: unknown key, ignored",
                    self.file.display()
                ));
            }
        }
    }

    fn object<'v>(&self, v: &'v Value, key: &str) -> Result<&'v Map<String, Value>, ConfigError> {
        v.as_object()
            .ok_or_else(|| self.err(key, format!("expected a map, found {v}")))
    }

    fn string(&self, map: &Map<String, Value>, key: &str) -> Result<Option<String>, ConfigError> {
        match get(map, key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.err(key, format!("expected a string, found {other}"))),
        }
    }

    /// A whole number in `min..=max`, or `default`. Numbers written as
    /// strings are accepted, as the nucleus' configuration does.
    fn number(
        &self,
        map: &Map<String, Value>,
        key: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, ConfigError> {
        let n = match get(map, key) {
            None | Some(Value::Null) => return Ok(default),
            Some(Value::Number(n)) => n.as_i64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.err(key, format!("expected a whole number from {min} to {max}"))),
        }
    }

    fn millis(
        &self,
        map: &Map<String, Value>,
        key: &str,
        default: Duration,
        min_ms: i64,
    ) -> Result<Duration, ConfigError> {
        let default_ms = i64::try_from(default.as_millis()).unwrap_or(i64::MAX);
        let ms = self.number(map, key, default_ms, min_ms, 86_400_000)?;
        Ok(Duration::from_millis(ms.unsigned_abs()))
    }

    fn path(&self, base: &Path, value: String) -> PathBuf {
        base.join(value)
    }

    fn section(
        &mut self,
        section: &Value,
        base: &Path,
        thing_name: Option<&str>,
        system_root_ca: Option<&str>,
    ) -> Result<IotCoreConfig, ConfigError> {
        let map = section.as_object().ok_or_else(|| ConfigError {
            file: self.file.to_path_buf(),
            key: "iotCore".to_owned(),
            reason: format!("expected a map, found {section}"),
        })?;
        self.warn_unknown(map, "", KNOWN_KEYS);
        let endpoint_text = self
            .string(map, "endpoint")?
            .ok_or_else(|| self.err("endpoint", "required"))?;
        let endpoint = self.endpoint(&endpoint_text, map, base, system_root_ca)?;
        let client_id = match self.string(map, "clientId")? {
            Some(id) => id,
            None => thing_name
                .map(str::to_owned)
                .ok_or_else(|| self.err("clientId", "required when system.thingName is not set"))?,
        };
        if client_id.is_empty() || client_id.starts_with(' ') {
            return Err(self.err("clientId", "must not be empty or start with a space"));
        }
        let mqtt5 = match self.string(map, "mqttVersion")?.as_deref() {
            None | Some("mqtt5" | "5" | "5.0") => true,
            Some("mqtt3" | "3.1.1" | "mqtt311" | "3") => false,
            Some(other) => {
                return Err(self.err(
                    "mqttVersion",
                    format!("expected mqtt5 or mqtt3, found {other:?}"),
                ));
            }
        };
        let defaults = IotCoreConfig::new(endpoint.clone(), client_id.clone());
        let keep_alive = self.millis(map, "keepAliveTimeoutMs", defaults.keep_alive, 0)?;
        // The MQTT keep-alive is whole seconds; zero turns it off.
        if !keep_alive.is_zero() && keep_alive < Duration::from_secs(1) {
            return Err(self.err("keepAliveTimeoutMs", "must be 0 or at least 1000"));
        }
        let connect_timeout =
            self.millis(map, "connectTimeoutMs", defaults.connect_timeout, 1000)?;
        let operation_timeout =
            self.millis(map, "operationTimeoutMs", defaults.operation_timeout, 100)?;
        let max_message_bytes = self.number(
            map,
            "maxMessageSizeInBytes",
            128 * 1024,
            1,
            MAX_MESSAGE_SIZE_CAP as i64,
        )?;
        let max_in_flight =
            self.number(map, "maxInFlightPublishes", 5, 1, MAX_IN_FLIGHT_CAP as i64)?;
        let max_publish_retry =
            self.number(map, "maxPublishRetry", 100, -1, i64::from(u32::MAX))?;
        let min_delay = self.millis(
            map,
            "minimumReconnectDelayMs",
            defaults.reconnect.min_delay,
            10,
        )?;
        let max_delay = self.millis(
            map,
            "maximumReconnectDelayMs",
            defaults.reconnect.max_delay,
            10,
        )?;
        if max_delay < min_delay {
            return Err(self.err(
                "maximumReconnectDelayMs",
                "must not be less than minimumReconnectDelayMs",
            ));
        }
        let stable_after = self.millis(
            map,
            "minimumConnectedTimeBeforeRetryResetMs",
            defaults.reconnect.stable_after,
            0,
        )?;
        let (spool_bytes, keep_qos0_offline) = match get(map, "spooler") {
            None | Some(Value::Null) => (defaults.spool_bytes, false),
            Some(v) => {
                let spooler = self.object(v, "spooler")?;
                self.warn_unknown(
                    spooler,
                    "spooler.",
                    &["maxSizeInBytes", "keepQos0WhenOffline", "storageType"],
                );
                if let Some(kind) = self.string(spooler, "storageType")?
                    && !kind.eq_ignore_ascii_case("Memory")
                {
                    return Err(self.err(
                        "spooler.storageType",
                        format!("only Memory is supported, found {kind:?}"),
                    ));
                }
                let bytes = self.number(
                    spooler,
                    "maxSizeInBytes",
                    defaults.spool_bytes as i64,
                    1,
                    i64::MAX,
                )?;
                let keep = match get(spooler, "keepQos0WhenOffline") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
                    Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
                    Some(other) => {
                        return Err(self.err(
                            "spooler.keepQos0WhenOffline",
                            format!("expected true or false, found {other}"),
                        ));
                    }
                };
                (usize::try_from(bytes).unwrap_or(usize::MAX), keep)
            }
        };
        let mappings = match get(map, "mqttTopicMapping") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => self.mappings(v, mqtt5)?,
        };
        Ok(IotCoreConfig {
            endpoint,
            client_id,
            mqtt5,
            keep_alive,
            connect_timeout,
            operation_timeout,
            max_message_bytes: usize::try_from(max_message_bytes).unwrap_or(usize::MAX),
            max_in_flight: u16::try_from(max_in_flight).unwrap_or(u16::MAX),
            max_publish_retry,
            reconnect: Reconnect {
                min_delay,
                max_delay,
                stable_after,
            },
            spool_bytes,
            keep_qos0_offline,
            mappings,
        })
    }

    fn endpoint(
        &mut self,
        text: &str,
        map: &Map<String, Value>,
        base: &Path,
        system_root_ca: Option<&str>,
    ) -> Result<Endpoint, ConfigError> {
        let tls_keys = ["certificateFilePath", "privateKeyPath", "rootCaPath"];
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(self.err("endpoint", "unix:// needs a socket path"));
            }
            self.no_tls_keys(map, &tls_keys, "a Unix socket");
            return Ok(Endpoint::Unix(self.path(base, path.to_owned())));
        }
        let (tls, rest) = if let Some(rest) = text.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("ssl://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("mqtt://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("tcp://") {
            (false, rest)
        } else if text.contains("://") {
            return Err(self.err(
                "endpoint",
                format!("unknown scheme in {text:?}: use mqtts://, mqtt:// or unix://"),
            ));
        } else {
            (true, text)
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 address in brackets keeps its colons.
            Some((host, port)) if !port.contains(']') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| self.err("endpoint", format!("{port:?} is not a port number")))?;
                (host.to_owned(), port)
            }
            _ => (rest.to_owned(), if tls { 8883 } else { 1883 }),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(self.err("endpoint", "no host"));
        }
        if !tls {
            self.no_tls_keys(map, &tls_keys, "plain mqtt://");
            return Ok(Endpoint::Tcp { host, port });
        }
        let required = |reader: &Self, key: &str| -> Result<PathBuf, ConfigError> {
            reader
                .string(map, key)?
                .map(|p| reader.path(base, p))
                .ok_or_else(|| reader.err(key, "required for mqtts:// (mutual TLS)"))
        };
        let certificate = required(self, "certificateFilePath")?;
        let private_key = required(self, "privateKeyPath")?;
        let root_ca = match self.string(map, "rootCaPath")? {
            Some(p) => self.path(base, p),
            None => system_root_ca
                .map(|p| self.path(base, p.to_owned()))
                .ok_or_else(|| {
                    self.err(
                        "rootCaPath",
                        "required for mqtts:// when system.rootCaPath is not set",
                    )
                })?,
        };
        Ok(Endpoint::Tls {
            host,
            port,
            certificate,
            private_key,
            root_ca,
        })
    }

    fn no_tls_keys(&mut self, map: &Map<String, Value>, keys: &[&str], what: &str) {
        for key in keys {
            if get(map, key).is_some() {
                self.warnings.push(format!(
                    "{}: iotCore.{key}: not used with {what}, ignored",
                    self.file.display()
                ));
            }
        }
    }

    fn mappings(&mut self, v: &Value, mqtt5: bool) -> Result<Vec<TopicMapping>, ConfigError> {
        let entries = self.object(v, "mqttTopicMapping")?;
        let mut out = Vec::new();
        for (name, entry) in entries {
            let key = format!("mqttTopicMapping.{name}");
            let entry = self.object(entry, &key)?;
            self.warn_unknown(
                entry,
                &format!("{key}."),
                &["topic", "source", "target", "targetTopicPrefix"],
            );
            let topic = self
                .string(entry, "topic")?
                .ok_or_else(|| self.err(&format!("{key}.topic"), "required"))?;
            let side = |reader: &Self, field: &str| -> Result<Side, ConfigError> {
                let k = format!("{key}.{field}");
                match reader.string(entry, field)?.as_deref() {
                    Some(s) if s.eq_ignore_ascii_case("Pubsub") => Ok(Side::Pubsub),
                    Some(s) if s.eq_ignore_ascii_case("IotCore") => Ok(Side::IotCore),
                    Some(s) if s.eq_ignore_ascii_case("LocalMqtt") => Err(reader.err(
                        &k,
                        "LocalMqtt needs a local MQTT broker for client devices, which ggipc does not run",
                    )),
                    Some(s) => Err(reader.err(&k, format!("expected Pubsub or IotCore, found {s:?}"))),
                    None => Err(reader.err(&k, "required")),
                }
            };
            let source = side(self, "source")?;
            let target = side(self, "target")?;
            if source == target {
                return Err(self.err(&key, "source and target must differ"));
            }
            let prefix = self.string(entry, "targetTopicPrefix")?.unwrap_or_default();
            let check = match source {
                Side::IotCore => {
                    super::topics::check_subscribe(&topic, mqtt5).map_err(|e| e.to_string())
                }
                Side::Pubsub => {
                    ggipc_protocol::topic::validate_filter(&topic).map_err(|e| e.to_string())
                }
            };
            check.map_err(|e| self.err(&format!("{key}.topic"), e))?;
            if prefix.contains(['+', '#']) {
                return Err(self.err(
                    &format!("{key}.targetTopicPrefix"),
                    "must not contain wildcards",
                ));
            }
            out.push(TopicMapping {
                name: name.clone(),
                topic,
                source,
                target,
                target_topic_prefix: prefix,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(section: Value) -> Result<(IotCoreConfig, Vec<String>), ConfigError> {
        let mut d = Deployment::empty(PathBuf::from("/r"));
        d.file = PathBuf::from("/etc/ggipc/deployment.yaml");
        d.thing_name = Some("thing-1".into());
        d.iot_core = Some(section);
        from_deployment(&d).map(|c| c.expect("section present"))
    }

    #[test]
    fn defaults_and_plain_endpoint() {
        let (c, warnings) = parse(json!({"endpoint": "mqtt://127.0.0.1:1884"})).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            c.endpoint,
            Endpoint::Tcp {
                host: "127.0.0.1".into(),
                port: 1884
            }
        );
        assert_eq!(c.client_id, "thing-1");
        assert!(c.mqtt5);
        assert_eq!(c.max_message_bytes, 131_072);
        assert_eq!(c.spool_bytes, 2_621_440);
        assert_eq!(c.max_in_flight, 5);
    }

    #[test]
    fn tls_endpoint_resolves_paths_and_needs_files() {
        let (c, _) = parse(json!({
            "endpoint": "abc-ats.iot.eu-west-1.amazonaws.com",
            "certificateFilePath": "c.pem", "privateKeyPath": "/k.pem", "rootCaPath": "ca.pem",
        }))
        .unwrap();
        assert_eq!(
            c.endpoint,
            Endpoint::Tls {
                host: "abc-ats.iot.eu-west-1.amazonaws.com".into(),
                port: 8883,
                certificate: "/etc/ggipc/c.pem".into(),
                private_key: "/k.pem".into(),
                root_ca: "/etc/ggipc/ca.pem".into(),
            }
        );
        let e =
            parse(json!({"endpoint": "mqtts://h:443", "certificateFilePath": "c"})).unwrap_err();
        assert_eq!(e.key, "iotCore.privateKeyPath");
        assert!(
            e.to_string()
                .starts_with("/etc/ggipc/deployment.yaml: iotCore.privateKeyPath")
        );
    }

    #[test]
    fn unix_endpoint_and_mappings() {
        let (c, _) = parse(json!({
            "endpoint": "unix:///tmp/m.sock", "mqttVersion": "mqtt3",
            "mqttTopicMapping": {
                "a": {"topic": "cmd/#", "source": "IotCore", "target": "Pubsub"},
                "b": {"topic": "sensors/+/temp", "source": "Pubsub", "target": "IotCore", "targetTopicPrefix": "site1/"},
            },
        }))
        .unwrap();
        assert_eq!(c.endpoint, Endpoint::Unix("/tmp/m.sock".into()));
        assert!(!c.mqtt5);
        assert_eq!(c.mappings.len(), 2);
        assert_eq!(c.mappings[1].target_topic_prefix, "site1/");
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            (json!({}), "iotCore.endpoint"),
            (json!({"endpoint": "http://x"}), "iotCore.endpoint"),
            (json!({"endpoint": "mqtt://x:99999"}), "iotCore.endpoint"),
            (
                json!({"endpoint": "mqtt://x", "mqttVersion": "4"}),
                "iotCore.mqttVersion",
            ),
            (
                json!({"endpoint": "mqtt://x", "maxInFlightPublishes": 0}),
                "iotCore.maxInFlightPublishes",
            ),
            (
                json!({"endpoint": "mqtt://x", "keepAliveTimeoutMs": 500}),
                "iotCore.keepAliveTimeoutMs",
            ),
            (
                json!({"endpoint": "mqtt://x", "spooler": {"storageType": "Disk"}}),
                "iotCore.spooler.storageType",
            ),
            (
                json!({"endpoint": "mqtt://x", "mqttTopicMapping": {"m": {"topic": "a", "source": "Pubsub", "target": "Pubsub"}}}),
                "iotCore.mqttTopicMapping.m",
            ),
            (
                json!({"endpoint": "mqtt://x", "mqttTopicMapping": {"m": {"topic": "a", "source": "LocalMqtt", "target": "Pubsub"}}}),
                "iotCore.mqttTopicMapping.m.source",
            ),
            (
                json!({"endpoint": "mqtt://x", "mqttTopicMapping": {"m": {"topic": "a/#/b", "source": "IotCore", "target": "Pubsub"}}}),
                "iotCore.mqttTopicMapping.m.topic",
            ),
        ];
        for (section, key) in cases {
            let e = parse(section.clone()).unwrap_err();
            assert_eq!(e.key, key, "{section}: {e}");
        }
    }

    #[test]
    fn unknown_keys_warn() {
        let (_, warnings) = parse(json!({"endpoint": "mqtt://x", "bogus": 1})).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("iotCore.bogus"));
    }
}

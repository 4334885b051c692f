//! `ggipc`: the command-line tool for people on a Greengrass device.
//!
//! `pub`/`sub` in the spirit of `mosquitto_pub`/`mosquitto_sub`, `component`
//! as `greengrass-cli component` prints it, and `decode`/`encode` for raw
//! event-stream bytes. Exit status: 0 on success, 1 when the server or the
//! connection fails, 2 for bad arguments.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};
use clap::error::ErrorKind;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use ggipc_client::{Client, ClientBuilder, Error, Payload, SOCKET_ENV, TOKEN_ENV, TopicMessage};
use ggipc_protocol::frame::{self, DEFAULT_MAX_DECODE_LEN, DEFAULT_MAX_ENCODE_LEN};
use ggipc_protocol::frame_json::JsonFrame;
use ggipc_protocol::model::{
    ComponentDetails, GetComponentDetailsRequest, ReceiveMode, RequestStatus,
    RestartComponentRequest, StopComponentRequest, SubscribeToTopicRequest,
};
use ggipc_protocol::{FrameCodec, Limits};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    name = "ggipc",
    version,
    about = "Greengrass IPC from the command line",
    after_help = "The socket and token come from the environment Greengrass gives a component \
                  (AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT, SVCUID) unless \
                  --socket and --token-file say otherwise. Outside a component, the operator \
                  identity the broker writes under <root>/cli_ipc_info/ is used, as \
                  greengrass-cli does."
)]
struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ConnArgs {
    /// IPC socket [default: $AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT].
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// File holding the authentication token [default: the token in $SVCUID].
    #[arg(long, global = true, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// The broker's root, where `cli_ipc_info/` holds the operator identity.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        default_value = "/greengrass/v2"
    )]
    root: PathBuf,
    /// Seconds to wait for the connection and for each answer.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Publish one message to a local topic.
    Pub {
        /// The topic (no wildcards).
        topic: String,
        #[command(flatten)]
        body: Body,
    },
    /// Print the messages published to a topic filter until interrupted.
    Sub {
        /// The topic filter; `+` and a trailing `#` are wildcards.
        filter: String,
        /// Exit after this many messages.
        #[arg(long, short = 'C', value_name = "N")]
        count: Option<u64>,
        /// One JSON object per message: {"topic", "json"} or {"topic", "binary" (base64)}.
        #[arg(long)]
        jsonl: bool,
        /// Whether to receive this client's own messages [default: the server's choice:
        /// others' only when the filter has a wildcard].
        #[arg(long, value_enum)]
        receive_mode: Option<Receive>,
    },
    /// Inspect and control components, as `greengrass-cli component` does.
    Component {
        #[command(subcommand)]
        action: ComponentAction,
    },
    /// Print raw event-stream bytes as JSON, one object per message.
    Decode {
        /// File to read; standard input when absent or `-`.
        file: Option<PathBuf>,
        /// Indent the JSON.
        #[arg(long)]
        pretty: bool,
        /// Largest message accepted, in bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_DECODE_LEN)]
        max_message_bytes: usize,
    },
    /// Turn JSON objects as `decode` prints them back into event-stream bytes.
    Encode {
        /// File to read; standard input when absent or `-`.
        file: Option<PathBuf>,
        /// Largest message produced, in bytes.
        #[arg(long, default_value_t = DEFAULT_MAX_ENCODE_LEN)]
        max_message_bytes: usize,
    },
}

/// The message of `pub`: exactly one of the three.
#[derive(Args)]
#[group(required = true, multiple = false)]
struct Body {
    /// Publish this JSON as a JSON message.
    #[arg(long, value_name = "TEXT", value_parser = parse_json)]
    json: Option<Box<RawValue>>,
    /// Publish this text as a binary message (UTF-8), as `greengrass-cli pubsub pub` does.
    #[arg(long, short = 'm', value_name = "TEXT")]
    message: Option<String>,
    /// Publish the bytes of this file as a binary message.
    #[arg(long, short = 'f', value_name = "PATH")]
    file: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Receive {
    /// RECEIVE_ALL_MESSAGES.
    All,
    /// RECEIVE_MESSAGES_FROM_OTHERS.
    Others,
}

#[derive(Subcommand)]
enum ComponentAction {
    /// List every component with its version, state and configuration.
    List,
    /// Show one component.
    Details {
        /// The component's name.
        #[arg(long = "name", short = 'n')]
        name: String,
    },
    /// Restart components.
    Restart {
        /// Component names, separated by commas.
        #[arg(long = "names", short = 'n')]
        names: String,
    },
    /// Stop components.
    Stop {
        /// Component names, separated by commas.
        #[arg(long = "names", short = 'n')]
        names: String,
    },
}

/// Checks the text is JSON and keeps it as typed, so that object members
/// go out in the order given (a `Value` would sort them).
fn parse_json(text: &str) -> Result<Box<RawValue>, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}

/// A failure and the exit status it calls for.
enum Failure {
    /// Bad arguments or missing configuration: usage and status 2.
    Usage(String),
    /// The server, the connection or the input failed: status 1.
    Failed(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        // A modeled error displays as "<ErrorType>: <message>".
        Self::Failed(e.to_string())
    }
}

// ===== decode / encode =====

fn read_input(file: Option<&PathBuf>) -> io::Result<Vec<u8>> {
    match file {
        Some(path) if path.as_os_str() != "-" => std::fs::read(path),
        _ => {
            let mut buf = Vec::new();
            io::stdin().read_to_end(&mut buf)?;
            Ok(buf)
        }
    }
}

fn decode(input: &[u8], pretty: bool, max: usize, out: &mut impl Write) -> Result<(), String> {
    let mut codec = FrameCodec::with_limits(Limits {
        max_decode_len: max,
        ..Limits::default()
    });
    let mut buf = BytesMut::from(input);
    let mut offset = 0usize;
    let mut index = 0usize;
    loop {
        match codec.decode_with_info(&mut buf) {
            Ok(Some((message, info))) => {
                let json = JsonFrame::from_message(&message, Some(info));
                let text = if pretty {
                    serde_json::to_string_pretty(&json)
                } else {
                    serde_json::to_string(&json)
                }
                .map_err(|e| e.to_string())?;
                writeln!(out, "{text}").map_err(|e| e.to_string())?;
                offset += info.total_length as usize;
                index += 1;
            }
            Ok(None) if buf.is_empty() => return Ok(()),
            Ok(None) => {
                return Err(format!(
                    "message {index} at byte {offset} is truncated: {} bytes left over",
                    buf.len()
                ));
            }
            Err(e) => return Err(format!("message {index} at byte {offset}: {e}")),
        }
    }
}

fn encode(input: &[u8], max: usize, out: &mut impl Write) -> Result<(), String> {
    let mut bytes = BytesMut::new();
    let stream = serde_json::Deserializer::from_slice(input).into_iter::<JsonFrame>();
    for (index, item) in stream.enumerate() {
        let json = item.map_err(|e| format!("message {index}: {e}"))?;
        let message = json
            .to_message()
            .map_err(|e| format!("message {index}: {e}"))?;
        frame::encode(&message, max, &mut bytes).map_err(|e| format!("message {index}: {e}"))?;
    }
    out.write_all(&bytes).map_err(|e| e.to_string())
}

// ===== IPC commands =====

/// The operator identity in `<root>/cli_ipc_info/`: the file for this user,
/// else one for a group this user is in (`{"cli_auth_token": …,
/// "domain_socket_path": …}`, as the Greengrass CLI component writes them).
fn cli_identity(root: &std::path::Path) -> Option<(PathBuf, String)> {
    let dir = root.join("cli_ipc_info");
    let uid = rustix::process::geteuid().as_raw();
    let mut candidates = vec![dir.join(format!("user-{uid}"))];
    let mut groups = vec![rustix::process::getegid().as_raw()];
    groups.extend(
        rustix::process::getgroups()
            .unwrap_or_default()
            .iter()
            .map(|g| g.as_raw()),
    );
    candidates.extend(groups.iter().map(|g| dir.join(format!("group-{g}"))));
    candidates.into_iter().find_map(|path| {
        let info: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        Some((
            PathBuf::from(info["domain_socket_path"].as_str()?),
            info["cli_auth_token"].as_str()?.to_owned(),
        ))
    })
}

fn builder(conn: &ConnArgs) -> Result<ClientBuilder, Failure> {
    let env_socket = std::env::var_os(SOCKET_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let env_token = std::env::var(TOKEN_ENV).ok().filter(|v| !v.is_empty());
    // Flags first, then the component environment, then the operator file.
    let operator = if conn.socket.is_none() && env_socket.is_none()
        || conn.token_file.is_none() && env_token.is_none()
    {
        cli_identity(&conn.root)
    } else {
        None
    };
    let socket = conn
        .socket
        .clone()
        .or(env_socket)
        .or_else(|| operator.as_ref().map(|(s, _)| s.clone()))
        .ok_or_else(|| {
            Failure::Usage(format!(
                "no socket: pass --socket, set {SOCKET_ENV}, or run where {}/cli_ipc_info/ \
                 names you",
                conn.root.display()
            ))
        })?;
    let builder = ClientBuilder::new(socket);
    let builder = match (&conn.token_file, env_token, operator) {
        (Some(path), _, _) => builder.token_file(path),
        (None, Some(token), _) => builder.token(token),
        (None, None, Some((_, token))) => builder.token(token),
        (None, None, None) => {
            return Err(Failure::Usage(format!(
                "no token: pass --token-file or set {TOKEN_ENV}"
            )));
        }
    };
    let timeout = Duration::from_secs(conn.timeout);
    Ok(builder.connect_timeout(timeout).operation_timeout(timeout))
}

async fn publish(client: &Client, topic: &str, body: Body) -> Result<(), Failure> {
    if let Some(json) = body.json {
        client.publish_json(topic, &json).await?;
    } else if let Some(text) = body.message {
        client.publish_binary(topic, text.into_bytes()).await?;
    } else if let Some(path) = body.file {
        let bytes = std::fs::read(&path)
            .map_err(|e| Failure::Failed(format!("cannot read {}: {e}", path.display())))?;
        client.publish_binary(topic, bytes).await?;
    }
    Ok(())
}

/// Binary text is shown as is when it is printable UTF-8, else as base64.
fn binary_as_text(bytes: &Bytes) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text)
            if !text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')) =>
        {
            text.to_owned()
        }
        _ => format!("base64:{}", BASE64.encode(bytes)),
    }
}

fn format_message(message: &TopicMessage, jsonl: bool) -> String {
    match (&message.payload, jsonl) {
        (Payload::Json(value), true) => json!({"topic": message.topic, "json": value}).to_string(),
        (Payload::Binary(bytes), true) => {
            json!({"topic": message.topic, "binary": BASE64.encode(bytes)}).to_string()
        }
        (Payload::Json(value), false) => {
            let pretty = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
            format!("{}: {pretty}", message.topic)
        }
        (Payload::Binary(bytes), false) => format!("{}: {}", message.topic, binary_as_text(bytes)),
    }
}

async fn subscribe(
    client: &Client,
    filter: String,
    count: Option<u64>,
    jsonl: bool,
    receive_mode: Option<Receive>,
) -> Result<(), Failure> {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            return Err(Failure::Failed(format!("cannot handle signals: {e}")));
        }
    };
    let request = SubscribeToTopicRequest {
        topic: Some(filter.clone()),
        receive_mode: receive_mode.map(|r| match r {
            Receive::All => ReceiveMode::ReceiveAllMessages,
            Receive::Others => ReceiveMode::ReceiveMessagesFromOthers,
        }),
    };
    let mut messages = client.subscribe_messages(&request).await?;
    // On stderr, so that stdout holds only messages; scripts can wait for it.
    eprintln!("subscribed to {filter}");
    let mut received = 0u64;
    let mut failed = false;
    while count.is_none_or(|n| received < n) {
        let next = tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            next = messages.recv() => next,
        };
        match next {
            Some(Ok(message)) => {
                received += 1;
                let mut out = io::stdout().lock();
                // A closed stdout (`ggipc sub … | head`) ends the command.
                if writeln!(out, "{}", format_message(&message, jsonl))
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    break;
                }
            }
            Some(Err(e)) => {
                eprintln!("ggipc: {e}");
                failed = true;
            }
            None if failed => return Err(Failure::Failed(String::new())),
            None => return Err(Failure::Failed("the subscription ended".into())),
        }
    }
    messages.close().await;
    Ok(())
}

/// Splits `-n a,b` as greengrass-cli does: on runs of `,` and `&`, with the
/// spaces around them.
fn split_names(names: &str) -> Vec<&str> {
    names
        .split([',', '&'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect()
}

/// The block greengrass-cli prints per component (its `ComponentCommand`):
/// absent values print as `null`, the configuration as compact JSON. Known
/// difference: object keys come out sorted, where Jackson keeps the order
/// the server sent.
fn print_component(out: &mut impl Write, c: &ComponentDetails) -> io::Result<()> {
    let configuration = c
        .configuration
        .as_ref()
        .map_or_else(|| "null".to_owned(), Value::to_string);
    writeln!(out, "Component Name: {}", c.component_name)?;
    writeln!(
        out,
        "    Version: {}",
        c.version.as_deref().unwrap_or("null")
    )?;
    writeln!(out, "    State: {}", c.state)?;
    writeln!(out, "    Configuration: {configuration}")
}

async fn component(client: &Client, action: ComponentAction) -> Result<(), Failure> {
    let write_failed = |e: io::Error| Failure::Failed(format!("cannot write: {e}"));
    match action {
        ComponentAction::List => {
            let response = client.list_components().await?;
            let mut out = io::stdout().lock();
            writeln!(out, "Components currently running in Greengrass:").map_err(write_failed)?;
            for c in response.components.unwrap_or_default() {
                print_component(&mut out, &c).map_err(write_failed)?;
            }
        }
        ComponentAction::Details { name } => {
            let request = GetComponentDetailsRequest {
                component_name: Some(name),
            };
            let response = client.get_component_details(&request).await?;
            print_component(&mut io::stdout().lock(), &response.component_details)
                .map_err(write_failed)?;
        }
        // greengrass-cli prints nothing for these and ignores a FAILED
        // status; we say so on stderr and exit 1, stdout staying the same.
        ComponentAction::Restart { names } => {
            for name in split_names(&names) {
                let request = RestartComponentRequest {
                    component_name: Some(name.to_owned()),
                };
                let response = client.restart_component(&request).await?;
                if response.restart_status == RequestStatus::Failed {
                    return Err(Failure::Failed(format!(
                        "restarting {name} failed: {}",
                        response.message.unwrap_or_default()
                    )));
                }
            }
        }
        ComponentAction::Stop { names } => {
            for name in split_names(&names) {
                let request = StopComponentRequest {
                    component_name: Some(name.to_owned()),
                };
                let response = client.stop_component(&request).await?;
                if response.stop_status == RequestStatus::Failed {
                    return Err(Failure::Failed(format!(
                        "stopping {name} failed: {}",
                        response.message.unwrap_or_default()
                    )));
                }
            }
        }
    }
    Ok(())
}

async fn ipc(conn: ConnArgs, command: Command) -> Result<(), Failure> {
    let client = builder(&conn)?.connect().await?;
    let result = match command {
        Command::Pub { topic, body } => publish(&client, &topic, body).await,
        Command::Sub {
            filter,
            count,
            jsonl,
            receive_mode,
        } => subscribe(&client, filter, count, jsonl, receive_mode).await,
        Command::Component { action } => component(&client, action).await,
        Command::Decode { .. } | Command::Encode { .. } => Ok(()),
    };
    client.close().await;
    result
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Decode {
            file,
            pretty,
            max_message_bytes,
        } => read_input(file.as_ref())
            .map_err(|e| format!("cannot read input: {e}"))
            .and_then(|input| decode(&input, pretty, max_message_bytes, &mut io::stdout()))
            .map_err(Failure::Failed),
        Command::Encode {
            file,
            max_message_bytes,
        } => read_input(file.as_ref())
            .map_err(|e| format!("cannot read input: {e}"))
            .and_then(|input| encode(&input, max_message_bytes, &mut io::stdout().lock()))
            .map_err(Failure::Failed),
        command => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
            runtime.block_on(ipc(cli.conn, command))
        }
    }
}

/// The usage line of the deepest subcommand named in `args`.
fn usage_for(args: &[String]) -> String {
    let mut command = Cli::command();
    command.build();
    let mut path = Vec::new();
    let mut current = &command;
    // Words that name no subcommand are option values or positionals.
    for arg in args.iter().skip(1).filter(|a| !a.starts_with('-')) {
        if let Some(sub) = current.find_subcommand(arg) {
            path.push(arg.as_str());
            current = sub;
        }
    }
    let mut target = &mut command;
    for name in path {
        target = target
            .find_subcommand_mut(name)
            .expect("found on the way down");
    }
    target.render_usage().to_string()
}

/// Parses the command line. Every argument error exits 2 with the usage
/// line; clap leaves it out of some (an invalid value), so it is added.
fn parse() -> Cli {
    let args: Vec<String> = std::env::args().collect();
    Cli::try_parse_from(&args).unwrap_or_else(|e| {
        let rendered = e.render().to_string();
        if e.use_stderr() && !rendered.contains("Usage:") {
            eprint!("{rendered}");
            eprintln!("\n{}", usage_for(&args));
            std::process::exit(2);
        }
        e.exit()
    })
}

fn main() -> ExitCode {
    match run(parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // Printed with the usage line, exit status 2.
        Err(Failure::Usage(message)) => Cli::command()
            .error(ErrorKind::MissingRequiredArgument, message)
            .exit(),
        Err(Failure::Failed(message)) => {
            if !message.is_empty() {
                eprintln!("ggipc: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use ggipc_protocol::model::LifecycleState;

    use super::*;

    #[test]
    fn json_to_publish_keeps_its_member_order() {
        let json = parse_json(" {\"b\": 1, \"a\": {\"z\": 2, \"y\": 3}} ").unwrap();
        assert_eq!(json.get(), "{\"b\": 1, \"a\": {\"z\": 2, \"y\": 3}}");
        assert!(parse_json("{\"a\": ").is_err());
    }

    #[test]
    fn names_split_like_greengrass_cli() {
        assert_eq!(split_names("a,b"), ["a", "b"]);
        assert_eq!(split_names(" a , b&&c ,"), ["a", "b", "c"]);
        assert_eq!(split_names("com.example.A"), ["com.example.A"]);
    }

    #[test]
    fn component_block_matches_greengrass_cli() {
        let mut out = Vec::new();
        let c = ComponentDetails {
            component_name: "com.example.A".into(),
            version: Some("1.0.0".into()),
            state: LifecycleState::Running,
            configuration: Some(json!({"k": [1, "v"]})),
        };
        print_component(&mut out, &c).unwrap();
        let c = ComponentDetails {
            component_name: "main".into(),
            version: None,
            state: LifecycleState::Finished,
            configuration: None,
        };
        print_component(&mut out, &c).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Component Name: com.example.A\n    Version: 1.0.0\n    State: RUNNING\n    \
             Configuration: {\"k\":[1,\"v\"]}\n\
             Component Name: main\n    Version: null\n    State: FINISHED\n    \
             Configuration: null\n"
        );
    }

    #[test]
    fn binary_prints_as_text_when_printable() {
        assert_eq!(
            binary_as_text(&Bytes::from_static(b"hi\tthere\n")),
            "hi\tthere\n"
        );
        assert_eq!(
            binary_as_text(&Bytes::from_static(b"\x00\x01")),
            "base64:AAE="
        );
        assert_eq!(binary_as_text(&Bytes::from_static(b"\xff")), "base64:/w==");
    }

    #[test]
    fn messages_format_with_their_topic() {
        let m = TopicMessage {
            topic: "t".into(),
            payload: Payload::Json(json!({"a": 1})),
        };
        assert_eq!(format_message(&m, false), "t: {\n  \"a\": 1\n}");
        assert_eq!(format_message(&m, true), r#"{"json":{"a":1},"topic":"t"}"#);
        let m = TopicMessage {
            topic: "t".into(),
            payload: Payload::Binary(Bytes::from_static(b"\x00")),
        };
        assert_eq!(format_message(&m, true), r#"{"binary":"AA==","topic":"t"}"#);
    }
}

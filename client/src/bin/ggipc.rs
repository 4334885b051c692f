//! `ggipc`: the command-line tool for people on a Greengrass device.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use bytes::BytesMut;
use clap::{Parser, Subcommand};
use ggipc_protocol::frame::{self, DEFAULT_MAX_DECODE_LEN, DEFAULT_MAX_ENCODE_LEN};
use ggipc_protocol::frame_json::JsonFrame;
use ggipc_protocol::{FrameCodec, Limits};

#[derive(Parser)]
#[command(
    name = "ggipc",
    version,
    about = "Greengrass IPC from the command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Decode {
            file,
            pretty,
            max_message_bytes,
        } => read_input(file.as_ref())
            .map_err(|e| format!("cannot read input: {e}"))
            .and_then(|input| decode(&input, *pretty, *max_message_bytes, &mut io::stdout())),
        Command::Encode {
            file,
            max_message_bytes,
        } => read_input(file.as_ref())
            .map_err(|e| format!("cannot read input: {e}"))
            .and_then(|input| encode(&input, *max_message_bytes, &mut io::stdout().lock())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ggipc: {e}");
            ExitCode::FAILURE
        }
    }
}

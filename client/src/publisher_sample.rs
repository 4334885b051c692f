//! The publisher sample (`ggipc-publisher-sample`): a Greengrass component
//! that publishes a JSON message to a local topic at a fixed period.
//!
//! It connects with the socket and token Greengrass puts in its environment,
//! publishes `{"key1": "value1", "key2": "value2", "key3": "value3"}` to
//! `local/topic` every 5 seconds (all three configurable), logs each publish
//! and each failure, and exits 0 on SIGTERM or SIGINT. Its recipe is
//! `client/recipes/com.example.Publisher-1.0.0.yaml`.
//!
//! A lost connection ends the process with status 1: Greengrass restarts a
//! component whose run step fails, and the fresh process connects again.
//!
//! It lives in the library so that the broker's built-in demo can run it
//! from the broker's own binary when the separate one was not built.

use std::process::ExitCode;
use std::time::Duration;

use crate::Error;
use clap::Parser;
use serde_json::Value;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser, Debug)]
#[command(
    name = "ggipc-publisher-sample",
    version,
    about = "Publishes a JSON message to a local topic periodically (a sample Greengrass component)"
)]
struct Args {
    /// Topic to publish to.
    #[arg(long, default_value = "local/topic")]
    topic: String,
    /// JSON message to publish.
    #[arg(
        long,
        value_parser = parse_json,
        default_value = r#"{"key1": "value1", "key2": "value2", "key3": "value3"}"#
    )]
    message: Value,
    /// Time between publishes, in milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    period_ms: u64,
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

async fn run(args: Args) -> Result<(), String> {
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => return Err(format!("cannot handle signals: {e}")),
    };
    let client = crate::connect()
        .await
        .map_err(|e| format!("cannot connect to Greengrass IPC: {e}"))?;
    println!(
        "connected; publishing to {} every {} ms",
        args.topic, args.period_ms
    );

    let mut ticks = tokio::time::interval(Duration::from_millis(args.period_ms));
    // After a stall, carry on at the period rather than publishing a burst.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = ticks.tick() => {}
        }
        match client.publish_json(&args.topic, &args.message).await {
            Ok(()) => println!("published {} to {}", args.message, args.topic),
            Err(e @ (Error::ConnectionClosed(_) | Error::Io(_))) => {
                return Err(format!("lost the connection: {e}"));
            }
            // Denied, invalid, timed out: worth a line in the log, not the
            // end of the component.
            Err(e) => eprintln!("failed to publish to {}: {e}", args.topic),
        }
    }
    println!("stopping");
    client.close().await;
    Ok(())
}

/// Runs the sample with the process' arguments; returns its exit status.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ggipc-publisher-sample: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ggipc-publisher-sample: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Connects to the broker the way a component does (socket and token from
//! the environment) and prints `connected` or `refused`. The tests run it as
//! another user to check the socket's permissions.

use std::process::ExitCode;

use ggipc_tests::RawConn;

fn main() -> ExitCode {
    let (Ok(socket), Ok(token)) = (
        std::env::var("AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT"),
        std::env::var("SVCUID"),
    ) else {
        eprintln!("connect_probe: socket and SVCUID must be set");
        return ExitCode::from(2);
    };
    let Ok(mut conn) = RawConn::try_open(std::path::Path::new(&socket)) else {
        println!("unreachable");
        return ExitCode::SUCCESS;
    };
    conn.send(&ggipc_protocol::rpc::connect(&token));
    match conn.recv() {
        Some(ack) if ack.is_accepted_ack() => println!("connected"),
        _ => println!("refused"),
    }
    ExitCode::SUCCESS
}

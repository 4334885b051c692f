//! `ggipc-publisher-sample`: see [`ggipc_client::publisher_sample`].

fn main() -> std::process::ExitCode {
    ggipc_client::publisher_sample::main()
}

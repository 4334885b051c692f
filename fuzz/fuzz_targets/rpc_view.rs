//! Raw bytes into the decoder and then the eventstream-RPC message view.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ggipc_protocol::fuzzing::rpc_view(data));

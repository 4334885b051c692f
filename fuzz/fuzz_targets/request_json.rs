//! JSON bytes into every request shape's parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ggipc_protocol::fuzzing::request_json(data));

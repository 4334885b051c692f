//! Raw bytes into the frame decoder, whole and split across two reads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ggipc_protocol::fuzzing::frame_decode(data));

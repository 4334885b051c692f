//! Structured messages through encode and decode.
#![no_main]

use ggipc_protocol::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|message: Message| ggipc_protocol::fuzzing::frame_roundtrip(&message));

//! A filter and a topic (split at the first NUL) against the reference
//! matcher, through `filter_matches` and the subscription index.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ggipc_protocol::fuzzing::topic_match(data));

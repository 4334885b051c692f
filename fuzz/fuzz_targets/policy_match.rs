//! A policy resource and a request (split at the first NUL) against the
//! reference matcher in both styles, and the bytes as `accessControl` JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ggipc_protocol::fuzzing::policy_match(data));

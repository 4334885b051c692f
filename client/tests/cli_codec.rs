//! `ggipc decode` and `ggipc encode` against the conformance vectors.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GGIPC_SHARED") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared"))
        .find(|p| p.join("conformance").is_dir())
        .expect("no shared/conformance folder above the crate; set GGIPC_SHARED")
}

fn ggipc(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ggipc"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn cases() -> serde_json::Value {
    let text =
        std::fs::read_to_string(shared_dir().join("conformance/eventstream/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn decode_prints_each_vector_as_listed_in_cases_json() {
    let dir = shared_dir().join("conformance/eventstream");
    let cases = cases();
    let positive = cases["positive"].as_array().unwrap();
    assert!(!positive.is_empty());
    for case in positive {
        let file = dir.join(case["file"].as_str().unwrap());
        let out = ggipc(&["decode", file.to_str().unwrap()], b"");
        assert!(
            out.status.success(),
            "{file:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut expected = case.clone();
        expected.as_object_mut().unwrap().remove("file");
        assert_eq!(printed, expected, "{file:?}");
    }
}

#[test]
fn encode_reverses_decode_for_a_stream_of_messages() {
    let dir = shared_dir().join("conformance/eventstream");
    let mut stream = Vec::new();
    for case in cases()["positive"].as_array().unwrap() {
        stream.extend(std::fs::read(dir.join(case["file"].as_str().unwrap())).unwrap());
    }
    let decoded = ggipc(&["decode"], &stream);
    assert!(decoded.status.success());
    let lines = String::from_utf8(decoded.stdout.clone()).unwrap();
    assert_eq!(
        lines.lines().count(),
        cases()["positive"].as_array().unwrap().len()
    );
    let encoded = ggipc(&["encode", "-"], &decoded.stdout);
    assert!(
        encoded.status.success(),
        "{}",
        String::from_utf8_lossy(&encoded.stderr)
    );
    assert_eq!(encoded.stdout, stream);
    // Pretty output encodes back as well.
    let pretty = ggipc(&["decode", "--pretty"], &stream);
    assert_eq!(ggipc(&["encode"], &pretty.stdout).stdout, stream);
}

#[test]
fn decode_of_a_malformed_vector_fails_with_the_reason() {
    let dir = shared_dir().join("conformance/eventstream");
    for case in cases()["negative"].as_array().unwrap() {
        let bytes = std::fs::read(dir.join(case["file"].as_str().unwrap())).unwrap();
        let out = ggipc(&["decode"], &bytes);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("checksum mismatch"), "{err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn decode_reports_a_truncated_tail() {
    let dir = shared_dir().join("conformance/eventstream");
    let mut bytes = std::fs::read(dir.join("string_header.bin")).unwrap();
    let full = bytes.clone();
    bytes.extend_from_slice(&full[..10]);
    let out = ggipc(&["decode"], &bytes);
    assert_eq!(out.status.code(), Some(1));
    // The whole first message was printed before the failure.
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
}

#[test]
fn encode_rejects_bad_values_and_bad_arguments_exit_2() {
    let bad = br#"{"headers":[{"name":"x","type":"byte","value":300}],"payload_base64":""}"#;
    let out = ggipc(&["encode"], bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid byte"));
    let out = ggipc(&["decode", "--no-such-flag"], b"");
    assert_eq!(out.status.code(), Some(2));
    let out = ggipc(&["frobnicate"], b"");
    assert_eq!(out.status.code(), Some(2));
}
